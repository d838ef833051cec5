package ctl

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
)

func init() {
	register(&command{
		name:    "ct-set-maxconns",
		args:    "MAXCONNS",
		summary: "set the most connections tracked at once (dpctl/ct-set-maxconns)",
		root:    true,
		help: `DESCRIPTION
    Sets the maximum number of connections conntrack holds at once, in all
    zones, as 'ovs-appctl dpctl/ct-set-maxconns' does, and prints "setting
    maxconns successful". A commit beyond it is refused: the packet stays
    +trk+new and nothing is stored (ct-stats-show counts it under "refused
    at maxconns"). If more connections are live than the new maximum, they
    stay; new ones wait until the count falls below it. 0 refuses every
    commit. The maximum cannot exceed the connection table, whose size is
    fixed when the bridge is created (attach --max-conns, default 262144);
    a new bridge's maxconns is that size.

EXAMPLE
    ebpfovs ct-set-maxconns 1000
`,
		run: runCTSetMaxConns,
	})
	register(&command{
		name:    "ct-get-maxconns",
		args:    "",
		summary: "print the most connections tracked at once (dpctl/ct-get-maxconns)",
		root:    true,
		help: `DESCRIPTION
    Prints maxconns (see ct-set-maxconns), as 'ovs-appctl
    dpctl/ct-get-maxconns' does.
`,
		run: runCTGetMaxConns,
	})
	register(&command{
		name:    "ct-get-nconns",
		args:    "",
		summary: "print the number of tracked connections (dpctl/ct-get-nconns)",
		root:    true,
		help: `DESCRIPTION
    Prints how many connections are tracked, in all zones, as 'ovs-appctl
    dpctl/ct-get-nconns' does. Expired connections are removed first and
    not counted.
`,
		run: runCTGetNConns,
	})
	register(&command{
		name:    "ct-set-limits",
		args:    "[default=LIMIT] [zone=ZONE,limit=LIMIT]...",
		summary: "set per-zone connection limits (dpctl/ct-set-limits)",
		root:    true,
		help: `DESCRIPTION
    Sets the most connections a conntrack zone may hold, with the syntax of
    'ovs-appctl dpctl/ct-set-limits'. zone=ZONE,limit=LIMIT sets one zone's
    own limit; default=LIMIT (first, if given) sets the limit of every zone
    without one of its own. Each zone counts its own connections against
    it. 0 is unlimited, and the default starts unlimited. A commit beyond
    its zone's limit is refused: the packet stays +trk+new and nothing is
    stored (ct-stats-show counts it under "refused at zone limit").
    Connections over a lowered limit stay until they end.

EXAMPLES
    ebpfovs ct-set-limits default=1000
    ebpfovs ct-set-limits zone=5,limit=10 zone=6,limit=0
`,
		run: runCTSetLimits,
	})
	register(&command{
		name:    "ct-get-limits",
		args:    "[zone=ZONE[,ZONE]...]",
		summary: "print per-zone connection limits and counts (dpctl/ct-get-limits)",
		root:    true,
		help: `DESCRIPTION
    Prints the default limit, then, for every zone with a limit of its own
    (or for the zones given), its limit and how many connections it holds,
    as 'ovs-appctl dpctl/ct-get-limits' does:
      default limit=0
      zone=5,limit=10,count=3
    A zone without a limit of its own shows the default. Expired
    connections are removed first and not counted.
`,
		run: runCTGetLimits,
	})
	register(&command{
		name:    "ct-del-limits",
		args:    "zone=ZONE[,ZONE]...",
		summary: "remove zones' own connection limits (dpctl/ct-del-limits)",
		root:    true,
		help: `DESCRIPTION
    Removes the limits of their own of the zones given, with the syntax of
    'ovs-appctl dpctl/ct-del-limits': they take the default limit again.
    A zone without a limit of its own is no error.
`,
		run: runCTDelLimits,
	})
}

// openBridge opens the bridge for cmd, wrapping errors with its name.
func openCTBridge(e *env, cmd string) (*loader.Bridge, error) {
	b, err := loader.Open(e.opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return b, nil
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usagef("%s: %s: unexpected argument (the command takes none)", cmd, args[0])
	}
	return nil
}

func runCTSetMaxConns(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usagef("ct-set-maxconns: expects one argument, MAXCONNS (see 'ebpfovs ct-set-maxconns --help')")
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return usagef("ct-set-maxconns: %s: maxconns missing or malformed", args[0])
	}
	b, err := openCTBridge(e, "ct-set-maxconns")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.SetMaxConns(uint32(n)); err != nil {
		return fmt.Errorf("ct-set-maxconns: %w", err)
	}
	fmt.Fprintln(e.stdout, "setting maxconns successful")
	return nil
}

func runCTGetMaxConns(e *env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs("ct-get-maxconns", args); err != nil {
		return err
	}
	b, err := openCTBridge(e, "ct-get-maxconns")
	if err != nil {
		return err
	}
	defer b.Close()
	n, err := b.MaxConns()
	if err != nil {
		return fmt.Errorf("ct-get-maxconns: %w", err)
	}
	fmt.Fprintln(e.stdout, n)
	return nil
}

func runCTGetNConns(e *env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs("ct-get-nconns", args); err != nil {
		return err
	}
	b, err := openCTBridge(e, "ct-get-nconns")
	if err != nil {
		return err
	}
	defer b.Close()
	n, err := b.NConns()
	if err != nil {
		return fmt.Errorf("ct-get-nconns: %w", err)
	}
	fmt.Fprintln(e.stdout, n)
	return nil
}

func runCTSetLimits(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) == 0 {
		return usagef("ct-set-limits: expects default=LIMIT or zone=ZONE,limit=LIMIT (see 'ebpfovs ct-set-limits --help')")
	}
	set, err := dpctl.ParseLimits(args)
	if err != nil {
		return usagef("ct-set-limits: %v", err)
	}
	b, err := openCTBridge(e, "ct-set-limits")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.SetCTLimits(set); err != nil {
		return fmt.Errorf("ct-set-limits: failed to set conntrack limit: %w", err)
	}
	return nil
}

func runCTDelLimits(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usagef("ct-del-limits: expects one argument, zone=ZONE[,ZONE]... (see 'ebpfovs ct-del-limits --help')")
	}
	zones, err := dpctl.ParseZones(args[0])
	if err != nil {
		return usagef("ct-del-limits: %v", err)
	}
	b, err := openCTBridge(e, "ct-del-limits")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.DelCTLimits(zones); err != nil {
		return fmt.Errorf("ct-del-limits: failed to delete conntrack limit: %w", err)
	}
	return nil
}

func runCTGetLimits(e *env, fs *pflag.FlagSet, args []string) error {
	var zones []uint16
	switch len(args) {
	case 0:
	case 1:
		var err error
		if zones, err = dpctl.ParseZones(args[0]); err != nil {
			return usagef("ct-get-limits: %v", err)
		}
	default:
		return usagef("ct-get-limits: %s: unexpected argument (zones go in one zone=ZONE[,ZONE]...)", args[1])
	}
	b, err := openCTBridge(e, "ct-get-limits")
	if err != nil {
		return err
	}
	defer b.Close()
	l, err := b.GetCTLimits(zones)
	if err != nil {
		return fmt.Errorf("ct-get-limits: failed to get conntrack limit: %w", err)
	}
	_, err = fmt.Fprint(e.stdout, l.Format())
	return err
}
