package vm

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain/path.test":   "plain/path.test",
		"-test.run=TestLab": "-test.run=TestLab",
		"Test(A|B)$":        "'Test(A|B)$'",
		"it's":              `'it'\''s'`,
		"":                  "''",
	} {
		if got := shQuote(in); got != want {
			t.Errorf("shQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestInitScript renders /init and has the shell check its syntax.
func TestInitScript(t *testing.T) {
	pkgs := []TestPackage{{Name: "ctl"}, {Name: "ofctl"}, {Name: "bpf"}}
	script, err := InitScript(pkgs, []string{"/lib/modules/r/kernel/veth.ko"}, []string{"-test.run=Test(Lab|Tap)"}, 5*time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	s := string(script)
	for _, want := range []string{
		"export EBPFOVS_REQUIRE_PRIVILEGED=1 EBPFOVS_IN_VM=1\n",
		"for m in /lib/modules/r/kernel/veth.ko; do",
		`-test.v -test.timeout=5m0s '-test.run=Test(Lab|Tap)';`,
		"(\n\trun_pkg ctl /ebpfovs/bin/ctl.test /ebpfovs/src/ctl\n\trun_pkg bpf /ebpfovs/bin/bpf.test /ebpfovs/src/bpf\n) &\n",
		"(\n\trun_pkg ofctl /ebpfovs/bin/ofctl.test /ebpfovs/src/ofctl\n) &\nwait\n",
		`say "done kernel=`,
		"mount -t bpf",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("/init lacks %q:\n%s", want, s)
		}
	}
	for _, sh := range []string{"/bin/busybox", "/bin/sh"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		args := []string{"-n", "-c", s}
		if filepath.Base(sh) == "busybox" {
			args = append([]string{"sh"}, args...)
		}
		if out, err := exec.Command(sh, args...).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
}

func TestModprobeScript(t *testing.T) {
	if !strings.HasPrefix(modprobeScript, "#!/bin/sh\n") || !strings.Contains(modprobeScript, unstagedFile) {
		t.Errorf("modprobe wrapper:\n%s", modprobeScript)
	}
	if out, err := exec.Command("/bin/sh", "-n", "-c", modprobeScript).CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}

func TestLddLine(t *testing.T) {
	for line, want := range map[string]string{
		"\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f9bbda1d000)": "/lib/x86_64-linux-gnu/libc.so.6",
		"\t/lib64/ld-linux-x86-64.so.2 (0x00007f9bbdda9000)":                  "/lib64/ld-linux-x86-64.so.2",
		"\tlinux-vdso.so.1 (0x00007ffd5b3f2000)":                              "",
	} {
		got := ""
		if m := lddLine.FindStringSubmatch(line); m != nil {
			got = m[1]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
}
