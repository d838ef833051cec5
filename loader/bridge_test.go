package loader

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// The error shows the verifier's last line; the file keeps every line.
func TestSaveVerifierLog(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	ve := &ebpf.VerifierError{Cause: errors.New("permission denied"), Log: []string{"0: (b7) r0 = 0", "1: first", "R0 max value is outside of the allowed memory range"}}
	got := saveVerifierLog(ve)
	path, ok := strings.CutPrefix(got, " (full log: ")
	if !ok || !strings.HasSuffix(path, ")") {
		t.Fatalf("saveVerifierLog = %q, want \" (full log: PATH)\"", got)
	}
	data, err := os.ReadFile(strings.TrimSuffix(path, ")"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range ve.Log {
		if !strings.Contains(string(data), line) {
			t.Errorf("log file lacks %q:\n%s", line, data)
		}
	}
}

// TestOwnPin: detach removes only the names ebpfovs pins.
func TestOwnPin(t *testing.T) {
	for _, n := range []string{"prog_tc_ingress", "prog_ct_delete", "link_port1", "xdp_link_port255", "conntrack", "tc_stages", "config"} {
		if !ownPin(n) {
			t.Errorf("%s is ebpfovs's", n)
		}
	}
	for _, n := range []string{"", "maps.debug", "progs.debug", "link_port", "link_portx", "mymap", "prog_other", "conntrack2", "..", "br0"} {
		if ownPin(n) {
			t.Errorf("%s is not ebpfovs's", n)
		}
	}
}
