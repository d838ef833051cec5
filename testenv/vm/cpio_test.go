package vm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// cpioEntry is one entry read back by readCPIO.
type cpioEntry struct {
	name         string
	mode         uint32
	data         string
	rmaj, rmin   uint32
	headerOffset int
}

// readCPIO parses a newc archive the way the kernel's initramfs unpacker
// does: headers and data aligned to 4 bytes, up to TRAILER!!!.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var out []cpioEntry
	off := 0
	for {
		if off%4 != 0 {
			t.Fatalf("header at offset %d is not 4-byte aligned", off)
		}
		if len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at offset %d", off)
		}
		field := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatalf("header at %d, field %d: %v", off, i, err)
			}
			return uint32(v)
		}
		e := cpioEntry{mode: field(1), rmaj: field(9), rmin: field(10), headerOffset: off}
		size, namesize := int(field(6)), int(field(11))
		nameStart := off + 110
		e.name = string(b[nameStart : nameStart+namesize-1])
		if b[nameStart+namesize-1] != 0 {
			t.Fatalf("%s: name not NUL-terminated", e.name)
		}
		dataStart := (nameStart + namesize + 3) &^ 3
		e.data = string(b[dataStart : dataStart+size])
		off = (dataStart + size + 3) &^ 3
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		out = append(out, e)
	}
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf)
	host := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(host, []byte("#!/bin/sh\necho hi\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	steps := []error{
		c.Bytes("/etc/a/b/file", 0o644, []byte("12345")), // odd size: padding
		c.Dir("/etc/a", 0o700),                           // exists already: no entry
		c.Symlink("bin/sh", "/bin/busybox"),
		c.CharDev("/dev/console", 0o600, 5, 1),
		c.HostFile("/usr/local/bin/tool", host),
		c.Bytes("/empty", 0o600, nil),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := c.Bytes("/etc/a/b/file", 0o644, nil); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("a second /etc/a/b/file: %v, want an error", err)
	}
	if err := c.Bytes("/bin/sh/x", 0o644, nil); err == nil {
		t.Error("a file below a symlink: no error")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readCPIO(t, buf.Bytes()) {
		got = append(got, fmt.Sprintf("%s %o %q %d:%d", e.name, e.mode, e.data, e.rmaj, e.rmin))
	}
	want := []string{
		`etc 40755 "" 0:0`,
		`etc/a 40755 "" 0:0`,
		`etc/a/b 40755 "" 0:0`,
		`etc/a/b/file 100644 "12345" 0:0`,
		`bin 40755 "" 0:0`,
		`bin/sh 120777 "/bin/busybox" 0:0`,
		`dev 40755 "" 0:0`,
		`dev/console 20600 "" 5:1`,
		`usr 40755 "" 0:0`,
		`usr/local 40755 "" 0:0`,
		`usr/local/bin 40755 "" 0:0`,
		`usr/local/bin/tool 100750 "#!/bin/sh\necho hi\n" 0:0`,
		`empty 100600 "" 0:0`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
