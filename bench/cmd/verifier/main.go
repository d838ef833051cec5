// Command verifier loads every program of the ebpfovs datapath on its own
// and prints what the kernel's verifier reported for each: processed
// instructions (against the budget of 250,000), peak states, verification
// time and JITed size, with the kernel release. `make verifier-report`
// runs it; docs/verifier.md keeps its table per kernel.
//
// Exit status: 0 when every program is within the budget, 1 when one is
// over it or was rejected, 2 for a usage error.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/loader"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("verifier", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	md := fs.Bool("markdown", false, "print a Markdown table (for docs/verifier.md)")
	funcs := fs.String("functions", "", "print where the verifier's work on this `PROGRAM` goes, by function, and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: verifier [--markdown] [--functions PROGRAM]\n\n"+
			"Loads every datapath program on its own (nothing pinned or attached) and\n"+
			"prints the verifier's figures for each. Exit 1 when a program is over\n"+
			"the budget of %d processed instructions or rejected. Needs root.\n\n", loader.VerifierBudget)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "verifier: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *funcs != "" {
		fc, err := loader.MeasureFunctions(*funcs)
		if err != nil {
			fmt.Fprintf(stderr, "verifier: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "Linux %s: %s, instructions the verifier processed per function\n", loader.KernelRelease(), *funcs)
		for _, f := range fc {
			fmt.Fprintf(stdout, "%10d  %s\n", f.Insns, f.Function)
		}
		return 0
	}
	costs, err := loader.MeasureVerifier()
	if err != nil {
		fmt.Fprintf(stderr, "verifier: %v\n", err)
		return 1
	}
	write(stdout, loader.KernelRelease(), costs, *md)
	for _, c := range costs {
		if c.OverBudget() {
			return 1
		}
	}
	return 0
}

func write(w io.Writer, release string, costs []loader.ProgramCost, md bool) {
	if md {
		fmt.Fprintf(w, "Linux %s (budget %d processed instructions)\n\n", release, loader.VerifierBudget)
		fmt.Fprintln(w, "| program | processed insns | of budget | peak states | verification | JITed bytes |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	} else {
		fmt.Fprintf(w, "Linux %s: the verifier's work per program (budget %d processed instructions)\n",
			release, loader.VerifierBudget)
		fmt.Fprintf(w, "%-16s %10s %7s %7s %10s %7s\n", "program", "insns", "budget", "peak", "time", "jited")
	}
	for _, c := range costs {
		mark := ""
		if c.Err != nil {
			mark = " REJECTED"
		} else if c.OverBudget() {
			mark = " OVER BUDGET"
		}
		pct := fmt.Sprintf("%.0f%%", 100*float64(c.Insns)/loader.VerifierBudget)
		ms := fmt.Sprintf("%.0f ms", float64(c.Time.Microseconds())/1000)
		if md {
			fmt.Fprintf(w, "| %s%s | %d | %s | %d | %s | %d |\n", c.Program, mark, c.Insns, pct, c.PeakStates, ms, c.JitedSize)
		} else {
			fmt.Fprintf(w, "%-16s %10d %7s %7d %10s %7d%s\n", c.Program, c.Insns, pct, c.PeakStates, ms, c.JitedSize, mark)
		}
	}
}
