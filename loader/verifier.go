package loader

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// VerifierBudget is the most processed instructions any program of the
// datapath may take the kernel's verifier: a quarter of its limit
// (1,000,000), so that a kernel whose verifier works harder, or the next
// feature, still has room (docs/verifier.md).
const VerifierBudget = 250_000

// ProgramCost is what the kernel's verifier reported for one program.
type ProgramCost struct {
	Program     string
	Insns       int           // processed instructions
	PeakStates  int           // the most verifier states alive at once
	TotalStates int           // states created
	Time        time.Duration // verification time
	JitedSize   uint32        // bytes of machine code (0 when rejected)
	// Err is the verifier's rejection, if it rejected the program; Insns,
	// PeakStates and TotalStates are then what it did before giving up.
	Err error
}

// OverBudget reports whether the program took more than VerifierBudget.
func (c ProgramCost) OverBudget() bool { return c.Err != nil || c.Insns > VerifierBudget }

var (
	statsRE = regexp.MustCompile(`processed (\d+) insns \(limit \d+\) max_states_per_insn \d+ total_states (\d+) peak_states (\d+)`)
	timeRE  = regexp.MustCompile(`verification time (\d+) usec`)
)

// parseVerifierStats reads the counts from the last lines of a verifier log.
func parseVerifierStats(log string, c *ProgramCost) {
	if m := statsRE.FindAllStringSubmatch(log, -1); m != nil {
		last := m[len(m)-1]
		c.Insns, _ = strconv.Atoi(last[1])
		c.TotalStates, _ = strconv.Atoi(last[2])
		c.PeakStates, _ = strconv.Atoi(last[3])
	}
	if m := timeRE.FindAllStringSubmatch(log, -1); m != nil {
		us, _ := strconv.Atoi(m[len(m)-1][1])
		c.Time = time.Duration(us) * time.Microsecond
	}
}

// datapathSpec is the datapath as create() loads it, before sizes.
func datapathSpec(atomicRelease bool) (*ebpf.CollectionSpec, error) {
	spec, err := bpf.LoadDatapath()
	if err != nil {
		return nil, fmt.Errorf("load datapath: %w", err)
	}
	if releasePlain(atomicRelease) {
		// x86 keeps stores in order: a connection's owner releases it
		// with a plain store (bpf/ct_table.h, ct_release).
		if err := spec.Variables[bpf.DatapathVarCtReleasePlain].Set(uint32(1)); err != nil {
			return nil, fmt.Errorf("load datapath: ct_release_plain: %w", err)
		}
	}
	return spec, nil
}

// MeasureVerifier loads every program of the datapath on its own, with the
// verifier's statistics on, and returns what it reported for each, in
// name order. The maps are created once, unpinned, and shared; nothing is
// pinned or attached, and everything is closed before it returns. A
// program the verifier rejects is reported with Err set; the error
// returned is for anything else.
func MeasureVerifier() ([]ProgramCost, error) {
	spec, err := datapathSpec(false)
	if err != nil {
		return nil, err
	}
	mapSpec := spec.Copy()
	mapSpec.Programs = nil
	for _, m := range mapSpec.Maps {
		m.Pinning = ebpf.PinNone
	}
	mapsColl, err := ebpf.NewCollection(mapSpec)
	if err != nil {
		return nil, fmt.Errorf("create maps: %w", err)
	}
	defer mapsColl.Close()

	var out []ProgramCost
	for _, name := range slices.Sorted(maps.Keys(spec.Programs)) {
		one := spec.Copy()
		for n := range one.Programs {
			if n != name {
				delete(one.Programs, n)
			}
		}
		c := ProgramCost{Program: name}
		coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
			MapReplacements: mapsColl.Maps,
			Programs:        ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats},
		})
		if err != nil {
			var ve *ebpf.VerifierError
			if !errors.As(err, &ve) {
				return nil, fmt.Errorf("load program %s: %w", name, err)
			}
			parseVerifierStats(strings.Join(ve.Log, "\n"), &c)
			c.Err = ve
			out = append(out, c)
			continue
		}
		p := coll.Programs[name]
		parseVerifierStats(p.VerifierLog, &c)
		if info, err := p.Info(); err == nil {
			c.JitedSize, _ = info.JitedSize()
		}
		coll.Close()
		out = append(out, c)
	}
	return out, nil
}

// FunctionCost is the share of one function in a program's verification.
type FunctionCost struct {
	Function string // "main" for the program's own code
	Insns    int    // instructions the verifier's log shows it processing
}

var (
	validatingRE = regexp.MustCompile(`^Validating (\w+)\(\) func#\d+\.\.\.`)
	insnLineRE   = regexp.MustCompile(`^\d+: \(`)
)

// functionCosts splits a level-2 verifier log by the function being
// verified. The kernel logs each processed instruction once, and a
// "Validating F() func#N..." line before each global function it checks
// on its own; the rest (the program itself, and the static functions it
// calls) counts as "main". The sum is close to, not exactly, the
// processed-instruction count (the log prints some instructions in other
// forms).
func functionCosts(log string) []FunctionCost {
	out := []FunctionCost{{Function: "main"}}
	for _, l := range strings.Split(log, "\n") {
		if m := validatingRE.FindStringSubmatch(l); m != nil {
			out = append(out, FunctionCost{Function: m[1]})
			continue
		}
		if insnLineRE.MatchString(l) {
			out[len(out)-1].Insns++
		}
	}
	slices.SortStableFunc(out, func(a, b FunctionCost) int { return b.Insns - a.Insns })
	return out
}

// MeasureFunctions loads one program of the datapath with the verifier's
// instruction log on and returns where its work went, by function, most
// first: what to look at when a program's figure grows. The log runs to
// hundreds of megabytes for a program near the budget.
func MeasureFunctions(program string) ([]FunctionCost, error) {
	spec, err := datapathSpec(false)
	if err != nil {
		return nil, err
	}
	if _, ok := spec.Programs[program]; !ok {
		return nil, fmt.Errorf("no program %s in the datapath", program)
	}
	for n := range spec.Programs {
		if n != program {
			delete(spec.Programs, n)
		}
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelInstruction | ebpf.LogLevelStats, LogSizeStart: 64 << 20},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return functionCosts(strings.Join(ve.Log, "\n")), nil
		}
		return nil, fmt.Errorf("load program %s: %w", program, err)
	}
	defer coll.Close()
	return functionCosts(coll.Programs[program].VerifierLog), nil
}

// KernelRelease is the running kernel's release (uname -r).
func KernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}
