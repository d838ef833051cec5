package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoPlottingInBinary: the benchmark's plotting libraries (gonum/plot
// and what it pulls in: fonts, PDF, LaTeX, SVG) share the module with the
// product but must never be linked into the ebpfovs binary. go list -deps
// is what the linker sees.
func TestNoPlottingInBinary(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool here (a VM guest runs test binaries only)")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	banned := []string{"gonum.org/", "codeberg.org/go-pdf/", "codeberg.org/go-latex/", "codeberg.org/go-fonts/",
		"github.com/ajstarks/svgo", "github.com/golang/freetype", "git.sr.ht/~sbinet/gg", "golang.org/x/image"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(pkg, b) {
				t.Errorf("ebpfovs links %s (a plotting dependency of bench/)", pkg)
			}
		}
	}
}
