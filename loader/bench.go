package loader

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// RunIngress runs frame through the bridge's attached program (tc_ingress)
// repeat times with BPF_PROG_TEST_RUN, as if it arrived on ifindex (which
// must exist in the calling thread's namespace), and returns the time per
// run and the verdict. For benchmarks: state changes as for real packets.
func (b *Bridge) RunIngress(frame []byte, ifindex int, repeat uint32) (time.Duration, uint32, error) {
	prog, err := loadPinnedProgram(b.dir, pinProgIngress)
	if err != nil {
		return 0, 0, err
	}
	defer prog.Close()
	return timeRun(prog, frame, ifindex, repeat)
}

// RunEmpty runs the same frame through a program that only returns
// TC_ACT_OK: the baseline cost of BPF_PROG_TEST_RUN itself.
func RunEmpty(frame []byte, ifindex int, repeat uint32) (time.Duration, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, TCActOK), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return 0, fmt.Errorf("load empty program: %w", err)
	}
	defer prog.Close()
	d, _, err := timeRun(prog, frame, ifindex, repeat)
	return d, err
}

func timeRun(prog *ebpf.Program, frame []byte, ifindex int, repeat uint32) (time.Duration, uint32, error) {
	ctx := skbContext{IngressIfindex: uint32(ifindex), Ifindex: uint32(ifindex)}
	start := time.Now()
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame, Context: ctx, Repeat: repeat})
	if err != nil {
		return 0, 0, fmt.Errorf("run program: %w", err)
	}
	return time.Since(start) / time.Duration(repeat), ret, nil
}

// RunIngressOnce runs frame once through the attached pipeline's entry
// program (tc_ingress, the exact-match cache included, which tc_trace
// never uses) and returns its verdict and the packet as it left it.
func (b *Bridge) RunIngressOnce(frame []byte, ifindex int) (uint32, []byte, error) {
	prog, err := loadPinnedProgram(b.dir, pinProgIngress)
	if err != nil {
		return 0, nil, err
	}
	defer prog.Close()
	out := make([]byte, len(frame)+256)
	ctx := skbContext{IngressIfindex: uint32(ifindex), Ifindex: uint32(ifindex)}
	opts := &ebpf.RunOptions{Data: frame, DataOut: out, Context: ctx}
	ret, err := prog.Run(opts)
	if err != nil {
		return 0, nil, fmt.Errorf("run program: %w", err)
	}
	return ret, opts.DataOut, nil
}
