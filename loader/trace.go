package loader

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// skbContext is the head of struct __sk_buff that BPF_PROG_TEST_RUN lets a
// caller set for a tc program: here only the receiving interface.
type skbContext struct {
	Len            uint32
	PktType        uint32
	Mark           uint32
	QueueMapping   uint32
	Protocol       uint32
	VlanPresent    uint32
	VlanTci        uint32
	VlanProto      uint32
	Priority       uint32
	IngressIfindex uint32
	Ifindex        uint32
}

// TraceResult is what one packet did in the datapath.
type TraceResult struct {
	Verdict uint32 // TC_ACT_* the program returned
	Trace   bpf.DatapathTrace
	Packet  []byte // the packet as the program left it
}

// TC verdicts.
const (
	TCActOK       = 0
	TCActShot     = 2
	TCActRedirect = 7
)

// RunTrace runs frame through the bridge's tc_trace program (the attached
// pipeline, compiled with tracing) with BPF_PROG_TEST_RUN, as if it had
// arrived on the interface ifindex, which must exist in the calling
// thread's network namespace. The packet really goes through the bridge's
// maps: conntrack and MAC learning see it. Redirects are not executed.
func (b *Bridge) RunTrace(frame []byte, ifindex int) (*TraceResult, error) {
	prog, err := loadPinnedProgram(b.dir, pinProgTrace)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	return runTrace(prog, b.maps.TraceBuf, frame, ifindex)
}

func runTrace(prog *ebpf.Program, buf *ebpf.Map, frame []byte, ifindex int) (*TraceResult, error) {
	if len(frame) < 14 {
		return nil, fmt.Errorf("trace: a frame needs at least 14 bytes (Ethernet header), got %d", len(frame))
	}
	out := make([]byte, len(frame)+256)
	ctx := skbContext{IngressIfindex: uint32(ifindex), Ifindex: uint32(ifindex)}
	ret, err := prog.Run(&ebpf.RunOptions{
		Data:    frame,
		DataOut: out,
		Context: ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("trace: run datapath: %w", err)
	}
	res := &TraceResult{Verdict: ret}
	if err := buf.Lookup(uint32(0), &res.Trace); err != nil {
		return nil, fmt.Errorf("trace: read result: %w", err)
	}
	res.Packet = out
	return res, nil
}
