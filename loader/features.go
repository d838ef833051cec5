package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// kernelNeed is one thing the datapath needs of the kernel, and how to
// find out whether it has it (nil: yes).
type kernelNeed struct {
	what  string
	probe func() error
}

// datapathNeeds is what checkKernel probes before a bridge is created, so
// that a kernel without one gets a line naming it rather than a verifier
// log. The attach modes' own needs (TCX, XDP on a device) are checked
// where a port is attached.
var datapathNeeds = []kernelNeed{
	{"BTF (the datapath's global functions are typed by it)", haveBTF},
	{"bounded loops (Linux 5.3)", features.HaveBoundedLoops},
	{"tc programs (BPF_PROG_TYPE_SCHED_CLS)", func() error { return features.HaveProgramType(ebpf.SchedCLS) }},
	{"XDP programs", func() error { return features.HaveProgramType(ebpf.XDP) }},
	{"prog arrays (BPF_MAP_TYPE_PROG_ARRAY)", func() error { return features.HaveMapType(ebpf.ProgramArray) }},
	{"tail calls from tc programs", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnTailCall) }},
	{"tail calls from XDP programs", func() error { return features.HaveProgramHelper(ebpf.XDP, asm.FnTailCall) }},
	{"bpf_for_each_map_elem (Linux 5.13)", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnForEachMapElem) }},
	{"bpf_loop (Linux 5.17)", func() error { return features.HaveProgramHelper(ebpf.SchedCLS, asm.FnLoop) }},
}

// haveBTF loads a one-type BTF blob into the kernel.
func haveBTF() error {
	b, err := btf.NewBuilder([]btf.Type{&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}, nil)
	if err != nil {
		return err
	}
	h, err := btf.NewHandle(b)
	if err != nil {
		return err
	}
	return h.Close()
}

// checkKernel returns the first of needs the kernel lacks, as one line
// with the kernel release, or nil. A probe that cannot tell (not
// ErrNotSupported) does not stop the load: the load itself will say.
func checkKernel(needs []kernelNeed) error {
	for _, n := range needs {
		if err := n.probe(); errors.Is(err, ebpf.ErrNotSupported) {
			return fmt.Errorf("this kernel (Linux %s) lacks %s, which the datapath needs", KernelRelease(), n.what)
		}
	}
	return nil
}
