package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TestPackage is one Go package's compiled tests.
type TestPackage struct {
	// Name is the import path relative to the module ("ctl",
	// "ofctl", "loader"); it prefixes the package's lines in the guest.
	Name string
	// Dir is the package directory on the host. The guest runs the binary
	// in a copy of it (regular files and testdata/), as `go test` would.
	Dir string
	// Binary is the compiled test binary on the host.
	Binary string
}

// GuestBinary is the test binary's path inside the guest.
func (p TestPackage) GuestBinary() string {
	return guestTestDir + "/bin/" + strings.ReplaceAll(p.Name, "/", "_") + ".test"
}

// GuestDir is the directory the binary runs in inside the guest.
func (p TestPackage) GuestDir() string { return guestTestDir + "/src/" + p.Name }

// guestTestDir holds the test binaries and package copies in the guest.
const guestTestDir = "/ebpfovs"

// GoTool returns the go command to build with: `go` from PATH, else
// /usr/local/go/bin/go (where the project expects Go).
func GoTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// ExcludedPackages are left out of the default package set ("./..."): the
// runner's own unit tests, which need no VM, and the benchmarks (bench/),
// whose timing assertions mean nothing under emulation. Name them in
// -packages to run them anyway.
var ExcludedPackages = []string{"testenv/vm", "bench"}

// BuildTests compiles the tests of the packages matching patterns (`go
// list` patterns such as "./ctl", resolved in moduleRoot) into outDir, with
// CGO_ENABLED=0 so the binaries are static. No patterns means "./..."
// without ExcludedPackages (and what is below them). Packages without test
// files are left out. It fails if nothing is left.
func BuildTests(ctx context.Context, moduleRoot string, patterns []string, outDir string, log io.Writer) ([]TestPackage, error) {
	exclude := len(patterns) == 0
	if exclude {
		patterns = []string{"./..."}
	}
	gotool := GoTool()
	mod, err := runIn(ctx, moduleRoot, gotool, "list", "-m")
	if err != nil {
		return nil, err
	}
	mod = strings.TrimSpace(mod)
	out, err := runIn(ctx, moduleRoot, gotool, append([]string{"list", "-f", "{{.ImportPath}}\t{{.Dir}}\t{{len .TestGoFiles}}\t{{len .XTestGoFiles}}"}, patterns...)...)
	if err != nil {
		return nil, err
	}
	var pkgs []TestPackage
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 || (f[2] == "0" && f[3] == "0") {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(f[0], mod), "/")
		if name == "" {
			name = filepath.Base(mod)
		}
		if exclude && excluded(name) {
			continue
		}
		pkgs = append(pkgs, TestPackage{Name: name, Dir: f[1]})
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no package with tests matches %s", strings.Join(patterns, " "))
	}
	start := time.Now()
	for i := range pkgs {
		p := &pkgs[i]
		p.Binary = filepath.Join(outDir, strings.ReplaceAll(p.Name, "/", "_")+".test")
		// -s -w drop the symbol table and DWARF: panics and t.Error keep
		// their file:line (pclntab), and the image is a third smaller.
		if _, err := runIn(ctx, moduleRoot, gotool, "test", "-c", "-ldflags=-s -w", "-o", p.Binary, "./"+relDir(moduleRoot, p.Dir)); err != nil {
			return nil, fmt.Errorf("build the tests of %s: %w", p.Name, err)
		}
	}
	fmt.Fprintf(log, "vmtest: built %d test binaries in %s\n", len(pkgs), time.Since(start).Round(100*time.Millisecond))
	return pkgs, nil
}

func excluded(name string) bool {
	for _, e := range ExcludedPackages {
		if name == e || strings.HasPrefix(name, e+"/") {
			return true
		}
	}
	return false
}

// relDir is dir relative to root ("." for root itself).
func relDir(root, dir string) string {
	r, err := filepath.Rel(root, dir)
	if err != nil {
		return dir
	}
	return filepath.ToSlash(r)
}

// runIn runs a go command in dir with CGO_ENABLED=0 and returns its stdout.
func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
