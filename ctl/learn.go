package ctl

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"
)

// The learn limit: how many flows learn() keeps at once (docs/learn.md).

func init() {
	register(&command{
		name:    "set-learn-limit",
		args:    "N",
		summary: "set the most flows learn() keeps at once (0..8192)",
		root:    true,
		help: `DESCRIPTION
    Sets how many flows learn() actions may have learned at once on the
    bridge, at most 8192 (a new bridge's limit). Past it a packet's learn()
    adds nothing, and the counter learn_full (show) counts it; the flows
    learned already stay until their timeouts or a del-flows, and traffic
    that uses them is not affected. Lowering the limit below the flows
    live removes none of them. 0 stops all learning. Open vSwitch has no
    such command: its learned flows count against the flow table's
    limits.

EXIT STATUS
    0 set, 1 a system error, 2 N missing, malformed or above 8192.

EXAMPLE
    ebpfovs -b br-tun set-learn-limit 4096
`,
		run: runSetLearnLimit,
	})
	register(&command{
		name:    "get-learn-limit",
		args:    "",
		summary: "print the learn limit and how many learned flows live",
		root:    true,
		help: `DESCRIPTION
    Prints the learn limit (see set-learn-limit) and the number of flows
    learn() actions have learned that live now (expired ones are removed
    first), as two lines:

        learn_limit: 8192
        learned_flows: 12
`,
		run: runGetLearnLimit,
	})
}

func runSetLearnLimit(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) != 1 {
		return usagef("set-learn-limit: expects one argument, N (see 'ebpfovs set-learn-limit --help')")
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return usagef("set-learn-limit: %s: not a number of flows", args[0])
	}
	b, err := openCTBridge(e, "set-learn-limit")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.SetLearnLimit(uint32(n)); err != nil {
		return fmt.Errorf("set-learn-limit: %w", err)
	}
	return nil
}

func runGetLearnLimit(e *env, fs *pflag.FlagSet, args []string) error {
	if err := noArgs("get-learn-limit", args); err != nil {
		return err
	}
	b, err := openCTBridge(e, "get-learn-limit")
	if err != nil {
		return err
	}
	defer b.Close()
	limit, live, err := b.LearnLimit()
	if err != nil {
		return fmt.Errorf("get-learn-limit: %w", err)
	}
	fmt.Fprintf(e.stdout, "learn_limit: %d\nlearned_flows: %d\n", limit, live)
	return nil
}
