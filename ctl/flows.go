package ctl

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

func init() {
	register(&command{
		name:    "add-flow",
		args:    "FLOW",
		summary: "add a flow (ovs-ofctl syntax)",
		root:    true,
		help: `DESCRIPTION
    Adds one flow, written as for 'ovs-ofctl add-flow', e.g.
      "table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit),vnet2"
    Ports may be given by name or number. A flow with the same table,
    priority and match as an existing one replaces it. A flow that cannot be
    parsed, or uses what the datapath does not implement yet, is refused
    with one line naming the token, and the table is left unchanged.
`,
		run: runAddFlow,
	})
	register(&command{
		name:    "add-flows",
		args:    "FILE|-",
		summary: "add the flows in FILE (or stdin), all or nothing",
		root:    true,
		help: `DESCRIPTION
    Adds one flow per line of FILE ('-' reads standard input). Blank lines
    and lines starting with '#' are ignored. If any line is bad, none of
    the file is installed and the error names the line.
`,
		run: runAddFlows,
	})
	register(&command{
		name:    "mod-flows",
		args:    "[--strict] FLOW",
		summary: "change the actions of the flows FLOW's match covers",
		root:    true,
		help: `DESCRIPTION
    Modifies flows as 'ovs-ofctl mod-flows' does: every flow whose match is
    at least as specific as FLOW's (in every table unless table= is given;
    cookie=VALUE/MASK selects by cookie) gets FLOW's actions, keeping its
    counters and age. If no flow is covered, FLOW is added, as OpenFlow 1.0
    (ovs-ofctl's default protocol) does.

OPTIONS
    --strict   modify only the flow whose match and priority are exactly FLOW's
`,
		flags: func(fs *pflag.FlagSet) { fs.Bool("strict", false, "") },
		run:   runModFlows,
	})
	register(&command{
		name:    "replace-flows",
		args:    "FILE|-",
		summary: "make the flow table exactly FILE's flows, in one atomic change",
		root:    true,
		help: `DESCRIPTION
    Replaces the bridge's flows with those of FILE ('-': stdin; one flow a
    line, '#' comments), as 'ovs-ofctl replace-flows' does: flows not in FILE
    go, new ones are added, changed ones are replaced; flows that stay the
    same keep their counters, changed and new ones start at 0. Packets see
    the old table or the new one, never a mix. A bad line changes nothing.
`,
		run: runReplaceFlows,
	})
	register(&command{
		name:    "diff-flows",
		args:    "[--names] FILE|-",
		summary: "show how the flow table differs from FILE",
		root:    true,
		help: `DESCRIPTION
    Compares the bridge's flows with FILE's as 'ovs-ofctl diff-flows BRIDGE
    FILE' does. For each flow (same table, priority and match) that only one
    side has, or whose cookie, timeouts or actions differ, prints
      -FLOW as the bridge has it
      +FLOW as FILE has it
    in the form [table=N ]MATCH[ cookie=0x..] actions=ACTIONS.

OPTIONS
    --names   print ports by name

EXIT STATUS
    0 when they are the same, 2 when they differ (as ovs-ofctl), 1 on errors.
`,
		flags: func(fs *pflag.FlagSet) { fs.Bool("names", false, "") },
		run:   runDiffFlows,
	})
	register(&command{
		name:    "del-flows",
		args:    "[--strict] [MATCH]",
		summary: "delete the flows MATCH covers (all without MATCH)",
		root:    true,
		help: `DESCRIPTION
    Deletes flows as 'ovs-ofctl del-flows' does. Without MATCH every flow
    goes (including the default NORMAL flow). With MATCH, every flow whose
    match is at least as specific as MATCH goes; cookie=VALUE/MASK limits
    it to flows whose cookie matches.

OPTIONS
    --strict   delete only the flow whose match and priority are exactly
               MATCH's (priority defaults to 32768, as in OVS)
`,
		flags: func(fs *pflag.FlagSet) { fs.Bool("strict", false, "") },
		run:   runDelFlows,
	})
	register(&command{
		name:    "dump-flows",
		args:    "[--no-stats] [--names|--no-names] [MATCH]",
		summary: "print the flows as ovs-ofctl dump-flows does",
		root:    true,
		help: `DESCRIPTION
    Prints every flow (or those MATCH covers) in 'ovs-ofctl dump-flows'
    format and normalization, ordered by table, then priority (highest
    first), then age:
      cookie=0x0, duration=15.038s, table=0, n_packets=15, n_bytes=1037, priority=50,ct_state=-trk,tcp,in_port=vnet1 actions=ct(table=0)

OPTIONS
    --no-stats   leave out duration, table 0, cookie 0 and the counters
    --names      print ports by name (the default when stdout is a terminal)
    --no-names   print ports by number (the default otherwise)
`,
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("no-stats", false, "")
			fs.Bool("names", false, "")
			fs.Bool("no-names", false, "")
		},
		run: runDumpFlows,
	})
}

func openBridge(e *env, cmd string) (*loader.Bridge, *loader.PortMap, error) {
	b, err := loader.Open(e.opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	pm, err := b.PortMap()
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return b, pm, nil
}

// openWithFilter opens the bridge and parses the optional MATCH argument
// of del-flows and dump-flows (nil filter: none given).
func openWithFilter(e *env, cmd string, args []string) (*loader.Bridge, *loader.PortMap, *ofctl.Flow, error) {
	b, pm, err := openBridge(e, cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(args) == 0 {
		return b, pm, nil, nil
	}
	filter, err := ofctl.ParseMatch(args[0], pm)
	if err != nil {
		b.Close()
		return nil, nil, nil, usagef("%s: %v", cmd, err)
	}
	return b, pm, filter, nil
}

func runAddFlow(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usagef("add-flow: expects exactly one FLOW argument (quote it), got %d", len(args))
	}
	b, pm, err := openBridge(e, "add-flow")
	if err != nil {
		return err
	}
	defer b.Close()
	f, err := ofctl.ParseFlow(args[0], pm)
	if err != nil {
		return usagef("add-flow: %v", err)
	}
	if err := b.AddFlows([]*ofctl.Flow{f}); err != nil {
		return fmt.Errorf("add-flow: %w", err)
	}
	return nil
}

// readFlows reads one flow a line from FILE ('-': stdin), skipping blank
// lines and '#' comments; a bad line is a usage error naming its number.
func readFlows(e *env, cmd, file string, pm *loader.PortMap) ([]*ofctl.Flow, error) {
	var r io.Reader = e.stdin
	name := "stdin"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		defer f.Close()
		r, name = f, file
	}
	var flows []*ofctl.Flow
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f, err := ofctl.ParseFlow(text, pm)
		if err != nil {
			return nil, usagef("%s: %s:%d: %v (nothing changed)", cmd, name, line, err)
		}
		flows = append(flows, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cmd, name, err)
	}
	return flows, nil
}

func oneFileArg(cmd string, args []string) error {
	if len(args) != 1 {
		return usagef("%s: expects one FILE argument ('-' for stdin)", cmd)
	}
	return nil
}

// fileFlowsCommand runs add-flows or replace-flows: read FILE whole, then
// apply it in one change.
func fileFlowsCommand(e *env, cmd string, args []string, apply func(*loader.Bridge, []*ofctl.Flow) error, unchanged string) error {
	if err := oneFileArg(cmd, args); err != nil {
		return err
	}
	b, pm, err := openBridge(e, cmd)
	if err != nil {
		return err
	}
	defer b.Close()
	flows, err := readFlows(e, cmd, args[0], pm)
	if err != nil {
		return err
	}
	if err := apply(b, flows); err != nil {
		return fmt.Errorf("%s: %s: %w (%s)", cmd, args[0], err, unchanged)
	}
	return nil
}

func runAddFlows(e *env, fs *pflag.FlagSet, args []string) error {
	return fileFlowsCommand(e, "add-flows", args, (*loader.Bridge).AddFlows, "nothing installed")
}

func runReplaceFlows(e *env, fs *pflag.FlagSet, args []string) error {
	return fileFlowsCommand(e, "replace-flows", args, (*loader.Bridge).ReplaceFlows, "nothing changed")
}

// errDiffer is diff-flows' "the tables differ": exit status 2, as ovs-ofctl.
var errDiffer = &exitError{code: ExitUsage}

func runDiffFlows(e *env, fs *pflag.FlagSet, args []string) error {
	if err := oneFileArg("diff-flows", args); err != nil {
		return err
	}
	names, _ := fs.GetBool("names")
	b, pm, err := openBridge(e, "diff-flows")
	if err != nil {
		return err
	}
	defer b.Close()
	file, err := readFlows(e, "diff-flows", args[0], pm)
	if err != nil {
		return err
	}
	installed, err := b.Flows()
	if err != nil {
		return fmt.Errorf("diff-flows: %w", err)
	}
	var have []*ofctl.Flow
	for _, f := range installed {
		have = append(have, f.Flow)
	}
	var printMap ofctl.PortMap
	if names {
		printMap = pm
	}
	lines := ofctl.Diff(have, file, printMap)
	for _, l := range lines {
		fmt.Fprintln(e.stdout, l)
	}
	if len(lines) > 0 {
		return errDiffer
	}
	return nil
}

func runModFlows(e *env, fs *pflag.FlagSet, args []string) error {
	strict, _ := fs.GetBool("strict")
	if len(args) != 1 {
		return usagef("mod-flows: expects exactly one FLOW argument (quote it), got %d", len(args))
	}
	b, pm, err := openBridge(e, "mod-flows")
	if err != nil {
		return err
	}
	defer b.Close()
	spec, err := ofctl.ParseModFlow(args[0], pm)
	if err != nil {
		return usagef("mod-flows: %v", err)
	}
	if _, err := b.ModFlows(spec, strict); err != nil {
		return fmt.Errorf("mod-flows: %w", err)
	}
	return nil
}

func runDelFlows(e *env, fs *pflag.FlagSet, args []string) error {
	strict, _ := fs.GetBool("strict")
	if len(args) > 1 {
		return usagef("del-flows: expects at most one MATCH argument (quote it)")
	}
	b, pm, filter, err := openWithFilter(e, "del-flows", args)
	if err != nil {
		return err
	}
	defer b.Close()
	if filter == nil && strict {
		// OVS: a strict delete without a match deletes the flow with an
		// empty match and the default priority.
		if filter, err = ofctl.ParseMatch("", pm); err != nil {
			return err
		}
	}
	if _, err := b.DelFlows(filter, strict); err != nil {
		return fmt.Errorf("del-flows: %w", err)
	}
	return nil
}

func runDumpFlows(e *env, fs *pflag.FlagSet, args []string) error {
	noStats, _ := fs.GetBool("no-stats")
	names, _ := fs.GetBool("names")
	noNames, _ := fs.GetBool("no-names")
	if names && noNames {
		return usagef("dump-flows: --names and --no-names exclude each other")
	}
	if len(args) > 1 {
		return usagef("dump-flows: expects at most one MATCH argument (quote it)")
	}
	b, pm, filter, err := openWithFilter(e, "dump-flows", args)
	if err != nil {
		return err
	}
	defer b.Close()
	flows, err := b.Flows()
	if err != nil {
		return fmt.Errorf("dump-flows: %w", err)
	}
	var printMap ofctl.PortMap
	if names || (e.isTTY && !noNames) {
		printMap = pm
	}
	w := bufio.NewWriter(e.stdout)
	for _, f := range flows {
		if filter != nil && !filter.Covers(f.Flow, false) {
			continue
		}
		var st *ofctl.Stats
		if !noStats {
			st = &ofctl.Stats{Duration: f.Duration, Packets: f.Packets, Bytes: f.Bytes}
		}
		fmt.Fprintln(w, f.DumpLine(printMap, st))
	}
	return w.Flush()
}
