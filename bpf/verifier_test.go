package bpf_test

import (
	"fmt"
	"testing"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestVerifierBudget loads every program of the datapath on its own and
// fails when the verifier processed more than loader.VerifierBudget
// (250,000) instructions for one, or rejected it, naming the program and
// its figure. It prints one EBPFOVS-VERIFIER line per program, which the
// VM kernel-matrix runner (testenv/vm) gathers into a table per kernel.
func TestVerifierBudget(t *testing.T) {
	testenv.RequirePrivileged(t)
	costs, err := loader.MeasureVerifier()
	if err != nil {
		t.Fatal(err)
	}
	release := loader.KernelRelease()
	want := map[string]bool{"tc_ingress": false, "tc_trace": false, "tc_patch": false, "tc_tunnel": false, "tc_walk": false,
		"xdp_ingress": false, "xdp_walk": false, "ct_gc": false, "ct_flush": false, "ct_delete_keys": false}
	for _, c := range costs {
		want[c.Program] = true
		fmt.Printf("EBPFOVS-VERIFIER prog=%s insns=%d peak_states=%d time_us=%d jited=%d budget=%d kernel=%s\n",
			c.Program, c.Insns, c.PeakStates, c.Time.Microseconds(), c.JitedSize, loader.VerifierBudget, release)
		switch {
		case c.Err != nil:
			t.Errorf("%s: rejected by the verifier of Linux %s after %d processed instructions: %v",
				c.Program, release, c.Insns, c.Err)
		case c.OverBudget():
			t.Errorf("%s: %d processed instructions on Linux %s, over the budget of %d",
				c.Program, c.Insns, release, loader.VerifierBudget)
		case c.Insns == 0:
			t.Errorf("%s: no processed-instruction count in the verifier's log", c.Program)
		}
		if c.Insns > loader.VerifierBudget/2 {
			// Where the work went, for whoever must bring it down.
			fs, err := loader.MeasureFunctions(c.Program)
			if err != nil {
				t.Errorf("%s: %v", c.Program, err)
				continue
			}
			for _, f := range fs {
				fmt.Printf("EBPFOVS-VERIFIER-FUNC prog=%s func=%s insns=%d kernel=%s\n", c.Program, f.Function, f.Insns, release)
			}
		}
	}
	for p, seen := range want {
		if !seen {
			t.Errorf("program %s not measured", p)
		}
	}
}
