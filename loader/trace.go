package loader

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// skbContext is the head of struct __sk_buff that BPF_PROG_TEST_RUN lets a
// caller set for a tc program: here the receiving interface and the mark
// (pkt_mark), which it also reports back as the program left it.
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
	TcIndex        uint32
	Cb             [5]uint32 // cb[0] bit 0: dry run (tc_trace only)
}

// TraceResult is what one packet did in the datapath.
type TraceResult struct {
	Verdict uint32 // TC_ACT_* the program returned
	Trace   bpf.DatapathTrace
	Packet  []byte // the packet as the program left it
	Mark    uint32 // skb->mark as the program left it (pkt_mark)
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
// thread's network namespace. Redirects are not executed. Without dryRun
// the packet really goes through the bridge: conntrack commits, MAC
// learning, counters and FLOOD's clones happen. With dryRun nothing
// changes and nothing is sent: the trace only explains.
func (b *Bridge) RunTrace(frame []byte, ifindex int, dryRun bool) (*TraceResult, error) {
	return b.RunTraceMark(frame, ifindex, dryRun, 0)
}

// RunTraceMark is RunTrace for a packet that arrives with skb->mark set
// to mark (what a pkt_mark match sees).
func (b *Bridge) RunTraceMark(frame []byte, ifindex int, dryRun bool, mark uint32) (*TraceResult, error) {
	prog, err := loadPinnedProgram(b.dir, pinProgTrace)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	return runTrace(prog, b.maps.TraceBuf, frame, ifindex, dryRun, mark)
}

func runTrace(prog *ebpf.Program, buf *ebpf.Map, frame []byte, ifindex int, dryRun bool, mark uint32) (*TraceResult, error) {
	if len(frame) < 14 {
		return nil, fmt.Errorf("trace: a frame needs at least 14 bytes (Ethernet header), got %d", len(frame))
	}
	out := make([]byte, len(frame)+256)
	ctx := skbContext{Mark: mark, IngressIfindex: uint32(ifindex), Ifindex: uint32(ifindex)}
	if dryRun {
		ctx.Cb[0] = 1
	}
	// The kernel copies back its whole struct __sk_buff (ENOSPC if it
	// does not fit): room for it, and the mark read from its place.
	ctxOut := make([]byte, 512)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out, Context: ctx, ContextOut: &ctxOut}
	ret, err := prog.Run(opts)
	if err != nil {
		return nil, fmt.Errorf("trace: run datapath: %w", err)
	}
	res := &TraceResult{Verdict: ret, Mark: binary.NativeEndian.Uint32(ctxOut[unsafe.Offsetof(ctx.Mark):])}
	if err := buf.Lookup(uint32(0), &res.Trace); err != nil {
		return nil, fmt.Errorf("trace: read result: %w", err)
	}
	res.Packet = opts.DataOut // the packet as the program left it
	return res, nil
}

// Trace builds the packet desc describes (see BuildPacket) and runs it
// through the bridge as if it had arrived on its in_port, in the ports'
// network namespace. With dryRun nothing changes: a pure explanation.
func (b *Bridge) Trace(desc *ofctl.Flow, dryRun bool) (*TraceResult, error) {
	frame, inPort, err := BuildPacket(desc)
	if err != nil {
		return nil, err
	}
	var p bpf.DatapathPort
	if inPort > MaxPort || b.maps.Ports.Lookup(inPort, &p) != nil || !portPresent(&p) {
		return nil, fmt.Errorf("in_port=%d: no such port on bridge %s", inPort, b.opts.Bridge)
	}
	if p.Type == typePatch || p.Type == typeTunnel {
		return nil, inputErrorf("in_port=%d: a %s port: trace starts only at a port with a device of its own (not yet from patch and tunnel ports)", inPort, portMode(&p))
	}
	var mark uint32
	if fm, ok := desc.Match.Get(ofctl.FieldPktMark); ok {
		mark = binary.BigEndian.Uint32(fm.Value)
	}
	var res *TraceResult
	err = inNetNS(b.opts.NetNS, func() (err error) {
		res, err = b.RunTraceMark(frame, int(p.Ifindex), dryRun, mark)
		return err
	})
	return res, err
}
