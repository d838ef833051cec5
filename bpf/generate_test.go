package bpf_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestGeneratedUpToDate regenerates the bpf2go output into a temporary
// directory, with the exact //go:generate line of gen.go, and fails when
// the committed files differ: someone changed the C without `make generate`.
func TestGeneratedUpToDate(t *testing.T) {
	if testenv.InVM() {
		t.Skip("in a vmtest guest: no source tree, clang-19 or go tool here; the host's `make test` checks the generated files")
	}
	if _, err := exec.LookPath("clang-19"); err != nil {
		if os.Getenv("EBPFOVS_REQUIRE_PRIVILEGED") == "1" {
			t.Fatal("clang-19 is missing (make deps installs it)")
		}
		t.Skip("clang-19 is missing: cannot check the generated files (make deps installs it)")
	}
	src, err := os.ReadFile("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^//go:generate go tool bpf2go (.*)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no bpf2go //go:generate line in gen.go")
	}
	out := t.TempDir()
	args := append([]string{"tool", "bpf2go", "-output-dir", out}, splitQuoted(string(m[1]))...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, b)
	}
	for _, f := range []string{"datapath_bpfel.go", "datapath_bpfel.o"} {
		want, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		have, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, have) {
			t.Errorf("%s is stale: run `make generate` and commit the result", f)
		}
	}
}

// splitQuoted splits a command line on spaces, keeping "double quoted" words.
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQ, have = !inQ, true
		case r == ' ' && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
