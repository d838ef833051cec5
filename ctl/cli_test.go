package ctl_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ebpfovs/ebpfovs/ctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

func main(args ...string) (string, string, int) {
	var o, e bytes.Buffer
	code := ctl.Main(args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

var subcommands = []string{"attach", "detach", "show", "add-flow", "add-flows", "mod-flows", "replace-flows", "diff-flows", "del-flows", "dump-flows", "dump-conntrack", "flush-conntrack", "ct-set-tcp-liberal", "ct-set-timeouts", "ct-stats-show", "trace", "ct-set-maxconns", "ct-get-maxconns", "ct-get-nconns", "ct-set-limits", "ct-get-limits", "ct-del-limits"}

// TestHelp: --help and -h work everywhere, need no root, and exit 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		o, e, code := main(args...)
		if code != 0 || e != "" || !strings.Contains(o, "SYNOPSIS") {
			t.Errorf("%v: exit %d, stderr %q", args, code, e)
		}
		for _, c := range subcommands {
			if !strings.Contains(o, "    "+c+" ") {
				t.Errorf("%v does not list %s", args, c)
			}
		}
	}
	for _, c := range subcommands {
		for _, h := range []string{"-h", "--help"} {
			o, e, code := main(c, h)
			if code != 0 || e != "" || !strings.Contains(o, "SYNOPSIS\n    ebpfovs [GLOBAL OPTIONS] "+c) || !strings.Contains(o, "DESCRIPTION") {
				t.Errorf("%s %s: exit %d, stderr %q, stdout %q", c, h, code, e, o)
			}
		}
		if o, _, code := main("help", c); code != 0 || !strings.Contains(o, "ebpfovs "+c) {
			t.Errorf("help %s: exit %d", c, code)
		}
	}
}

// TestUsageErrors: misuse exits 2 with one line on stderr, naming the problem.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, "frobnicate: unknown command"},
		{[]string{"--nosuchflag", "show"}, "unknown flag: --nosuchflag"},
		{[]string{"dump-flows", "--bogus"}, "dump-flows: unknown flag: --bogus"},
		{[]string{"attach", "--mode"}, "flag needs an argument"},
		// Bridge names are directories under --bpffs: never outside it.
		{[]string{"-b", "..", "attach", "lo"}, `invalid bridge name ".."`},
		{[]string{"-b", ".", "detach"}, `invalid bridge name "."`},
		{[]string{"-b", "a/b", "show"}, `invalid bridge name "a/b"`},
		{[]string{"-b", "sixteen-bytes-xx", "show"}, `invalid bridge name "sixteen-bytes-xx"`},
		{[]string{"--bpffs", "/nonexistent/ebpfovs", "attach", "--max-conns", "4294967295", "lo"}, "--max-conns 4294967295: at most 16777216 connections"},
		// Control and escape bytes from the input are shown escaped.
		{[]string{"-b", "x\x1b[2Jy", "show"}, `invalid bridge name "x\x1b[2Jy"`},
		{[]string{"frob\x1b]0;t\x07"}, `frob\x1b]0;t\x07: unknown command`},
	} {
		_, e, code := main(c.args...)
		if code != 2 || !strings.Contains(e, c.want) || !strings.HasSuffix(e, "\n") || strings.Count(e, "ebpfovs: ") != 1 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, e, c.want)
		}
		if strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 && r != '\n' }) {
			t.Errorf("%q: control bytes in stderr %q", c.args, e)
		}
	}
}

// TestNotRoot runs the real binary as nobody: one line, exit 1, nothing done.
func TestNotRoot(t *testing.T) {
	if testenv.InVM() {
		t.Skip("in a vmtest guest: no go tool to build the binary; the host's `make test` runs this test")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	bin := filepath.Join(t.TempDir(), "ebpfovs")
	if out, err := exec.Command("go", "build", "-o", bin, "./ebpfovs").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// nobody must be able to reach the binary.
	for d := filepath.Dir(bin); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bpffs := filepath.Join(t.TempDir(), "pins")
	for _, args := range [][]string{{"attach", "vnet1"}, {"dump-conntrack"}, {"add-flow", "actions=drop"}} {
		cmd := exec.Command(bin, append([]string{"--bpffs", bpffs}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("%v as nobody: %v, want exit 1", args, err)
		}
		if want := "ebpfovs: " + args[0] + ": must run as root"; !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v as nobody: stderr %q, want one line starting %q", args, stderr.String(), want)
		}
	}
	if _, err := os.Stat(bpffs); !os.IsNotExist(err) {
		t.Errorf("an unprivileged call created %s", bpffs)
	}
}
