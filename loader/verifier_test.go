package loader

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

func TestParseVerifierStats(t *testing.T) {
	log := "func#0 @0\n...\nverification time 661305 usec\nstack depth 80+184\n" +
		"processed 628016 insns (limit 1000000) max_states_per_insn 31 total_states 30398 peak_states 3257 mark_read 0\n"
	var c ProgramCost
	parseVerifierStats(log, &c)
	want := ProgramCost{Insns: 628016, TotalStates: 30398, PeakStates: 3257, Time: 661305 * time.Microsecond}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if !c.OverBudget() {
		t.Error("628016 insns not over budget")
	}
	c.Insns = VerifierBudget
	if c.OverBudget() {
		t.Error("exactly the budget counted as over it")
	}
}

// TestLoadError: a verifier rejection is one line naming the program, the
// instructions processed, the kernel release and the full log's path,
// without the log's control bytes.
func TestLoadError(t *testing.T) {
	ve := &ebpf.VerifierError{Cause: errors.New("argument list too long"), Log: []string{
		"Validating ct_execute() func#1...",
		"BPF program is too large. Processed 1000001 insn\x1b[0m",
		"processed 1000001 insns (limit 1000000) max_states_per_insn 31 total_states 30398 peak_states 90879 mark_read 0",
	}}
	err := loadError(fmt.Errorf("program tc_walk: load program: %w", ve))
	msg := err.Error()
	want := regexp.MustCompile(`^load datapath: the verifier of Linux \S+ rejected program tc_walk after 1000001 processed instructions: processed 1000001 insns .* \(full log: (\S+)\)$`)
	m := want.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("error %q, want it to match %s", msg, want)
	}
	defer os.Remove(m[1])
	body, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "Validating ct_execute()") {
		t.Errorf("the saved log lacks the verifier's lines: %q", body)
	}
	if strings.ContainsAny(msg, "\n\x1b") {
		t.Errorf("control bytes in %q", msg)
	}
}

func TestCheckKernel(t *testing.T) {
	needs := []kernelNeed{
		{"something it has", func() error { return nil }},
		{"a probe that cannot tell", func() error { return errors.New("EPERM") }},
		{"tail calls from XDP programs", func() error { return fmt.Errorf("probe: %w", ebpf.ErrNotSupported) }},
		{"never probed", func() error { t.Error("probed past the first missing feature"); return nil }},
	}
	err := checkKernel(needs)
	if err == nil || !regexp.MustCompile(`^this kernel \(Linux \S+\) lacks tail calls from XDP programs, which the datapath needs$`).MatchString(err.Error()) {
		t.Errorf("got %v", err)
	}
	if err := checkKernel(needs[:2]); err != nil {
		t.Errorf("got %v for a kernel with everything", err)
	}
}

func TestFunctionCosts(t *testing.T) {
	log := strings.Join([]string{
		"func#0 @0",
		"0: (b7) r0 = 0",
		"1: (95) exit",
		"Validating probe() func#2...",
		"2: (b7) r0 = 1",
		"2: R1=ctx() R10=fp0",
		"3: (95) exit",
		"4: (95) exit",
		"Validating ct_own() func#3...",
		"5: (95) exit",
		"processed 7 insns (limit 1000000)",
	}, "\n")
	got := functionCosts(log)
	want := []FunctionCost{{"probe", 3}, {"main", 2}, {"ct_own", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
