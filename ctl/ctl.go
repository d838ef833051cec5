// Package ctl is the ebpfovs command line: global options, help texts,
// exit codes (0 success, 1 runtime error, 2 usage), and the subcommands,
// one file per family, named as Open vSwitch's tools group them:
// ports.go (attach, detach, show: ovs-vsctl's), flows.go (add-flow(s),
// mod-flows, replace-flows, diff-flows, del-flows, dump-flows: ovs-ofctl's),
// conntrack.go and ctlimits.go (dump-conntrack, flush-conntrack, ct-*:
// ovs-appctl dpctl/'s), trace.go (trace: ofproto/trace's). Each file
// registers its commands in its init.
package ctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/loader"
)

// Exit statuses.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// exitError ends the command with a status and no message (diff-flows'
// "they differ").
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// env is what every subcommand gets: the global options and the streams.
type env struct {
	opts   loader.Options
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	isTTY  bool // stdout is a terminal
	// progressTTY: stderr is a terminal, where long operations show progress.
	progressTTY bool
}

type command struct {
	name     string
	args     string // synopsis after the name
	summary  string // one line for the command list
	help     string // the body of `ebpfovs CMD --help`
	root     bool   // needs root
	flags    func(fs *pflag.FlagSet)
	run      func(e *env, fs *pflag.FlagSet, args []string) error
	hideHelp bool
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

const globalHelp = `NAME
    ebpfovs - an Open vSwitch-style switch whose datapath is eBPF

SYNOPSIS
    ebpfovs [-b|--bridge NAME] [--netns NAME] [--bpffs DIR] COMMAND [ARGS]

DESCRIPTION
    ebpfovs attaches an eBPF datapath (TC/TCX) to the ports of VMs and
    containers (tap or veth devices such as vnet1, vnet2) and runs
    OpenFlow-style flow tables on their traffic, with connection tracking,
    in the kernel. Flows are written in ovs-ofctl syntax; dump-conntrack
    prints what 'ovs-appctl dpctl/dump-conntrack' prints. There is no
    daemon: state is pinned under bpffs, and every call finds it there.

GLOBAL OPTIONS
    -b, --bridge NAME   the switch instance to work on (default br0). Each
                        bridge has its own ports, flows and connections,
                        pinned under DIR/NAME/. NAME is up to 15 letters,
                        digits, '_', '.', '-' (a network device's name, as
                        in Open vSwitch), never . or ..
        --bpffs DIR     where state is pinned (default /sys/fs/bpf/ebpfovs,
                        or $EBPFOVS_BPFFS). A BPF filesystem is mounted
                        there if none is.
        --netns NAME    the ports live in the network namespace that
                        'ip netns' calls NAME (or $EBPFOVS_NETNS). ebpfovs
                        itself stays in the caller's mount namespace.
    -h, --help          this help; 'ebpfovs COMMAND --help' for a command.

COMMANDS
%s
EXIT STATUS
    0 success, 1 runtime error, 2 usage error. Errors are one line on
    stderr, naming what is wrong.

EXAMPLE
    The Open vSwitch conntrack lab:
      ebpfovs attach vnet1 vnet2
      ebpfovs add-flow "table=0, priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0)"
      ebpfovs add-flow "table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit),vnet2"
      ebpfovs dump-conntrack
`

func commandList() string {
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if !c.hideHelp {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, n := range names {
		fmt.Fprintf(&sb, "    %-16s %s\n", n, commands[n].summary)
	}
	return sb.String()
}

// Main runs ebpfovs with the given arguments and returns the exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(args, stdin, stdout, stderr)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, pflag.ErrHelp) {
		return ExitOK
	}
	var xe *exitError
	if errors.As(err, &xe) {
		return xe.code
	}
	fmt.Fprintf(stderr, "ebpfovs: %s\n", oneLine(err.Error()))
	var ue *usageError
	var ie *loader.InputError
	if errors.As(err, &ue) || errors.As(err, &ie) {
		return ExitUsage
	}
	return ExitFailure
}

// oneLine makes an error one line of printable text: whitespace runs
// become one space, and control and escape bytes (which an argument or a
// file may carry into the message) are shown escaped, never sent to the
// terminal.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case unicode.IsPrint(r) || r == ' ':
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	e.isTTY = isTerminal(stdout)
	e.progressTTY = isTerminal(stderr)

	gfs := pflag.NewFlagSet("ebpfovs", pflag.ContinueOnError)
	gfs.SetInterspersed(false)
	gfs.SetOutput(io.Discard)
	gfs.StringVarP(&e.opts.Bridge, "bridge", "b", loader.DefaultBridge, "")
	gfs.StringVar(&e.opts.BPFFS, "bpffs", envOr("EBPFOVS_BPFFS", loader.DefaultBPFFS), "")
	gfs.StringVar(&e.opts.NetNS, "netns", os.Getenv("EBPFOVS_NETNS"), "")
	help := gfs.BoolP("help", "h", false, "")
	if err := gfs.Parse(args); err != nil {
		return usagef("%v (see 'ebpfovs --help')", err)
	}
	e.opts.LockWait = func(holder string) {
		fmt.Fprintf(stderr, "ebpfovs: waiting for %s, which holds the lock on %s\n", oneLine(holder), oneLine(e.opts.BPFFS))
	}
	e.opts.Steps = testSteps
	rest := gfs.Args()
	if *help || (len(rest) > 0 && rest[0] == "help" && len(rest) == 1) {
		fmt.Fprintf(stdout, globalHelp, commandList())
		return nil
	}
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "usage: ebpfovs [-b BRIDGE] [--netns NAME] [--bpffs DIR] COMMAND [ARGS]\n\ncommands:\n%s\n", commandList())
		return usagef("no command given (see 'ebpfovs --help')")
	}
	if rest[0] == "help" {
		rest = []string{rest[1], "--help"}
	}
	cmd, ok := commands[rest[0]]
	if !ok {
		return usagef("%s: unknown command (see 'ebpfovs --help')", rest[0])
	}

	fs := pflag.NewFlagSet(cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	chelp := fs.BoolP("help", "h", false, "")
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	if err := fs.Parse(rest[1:]); err != nil {
		return usagef("%s: %v (see 'ebpfovs %s --help')", cmd.name, err, cmd.name)
	}
	if *chelp {
		fmt.Fprintf(stdout, "NAME\n    ebpfovs %s - %s\n\nSYNOPSIS\n    ebpfovs [GLOBAL OPTIONS] %s %s\n\n%s", cmd.name, cmd.summary, cmd.name, cmd.args, cmd.help)
		return nil
	}
	if cmd.root && os.Geteuid() != 0 {
		return fmt.Errorf("%s: must run as root (loading and attaching eBPF programs needs CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)", cmd.name)
	}
	return cmd.run(e, fs, fs.Args())
}

// testSteps is set by the fault-injection tests only (export_test.go):
// they kill or pause the command at a step of a change to the kernel's
// state (loader.Options.Steps).
var testSteps func(step string)

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
