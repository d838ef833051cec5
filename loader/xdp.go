package loader

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// Which flow tables the XDP program may carry out (docs/design.md, "XDP
// mode"). XDP has no skb: it cannot clone a packet to several ports one by
// one, nor use the skb helpers the rewrites need. So xdp_ingress handles a
// packet only when the flow-table generation in use lets every packet reach
// at most one output-like action (output, output:REG, in_port, NORMAL,
// FLOOD/ALL: the last three go to one port or, as a devmap broadcast, to
// all but in_port) and change nothing in the packet. Otherwise it passes
// every packet on to the TC program before touching any state.

const (
	cfgXDPGen0 = uint32(bpf.DatapathCfgFlagCFG_XDP_GEN0) // CFG_XDP_GEN1 is the next bit
)

// xdpCapable reports whether a flow's actions fit XDP. With at most one
// action per flow that outputs or continues elsewhere (resubmit,
// goto_table, ct(table=N)), a packet's walk is a chain that ends in at most
// one output. Action types not listed here (rewrites, and any added later)
// need the TC program.
func xdpCapable(acts *bpf.DatapathActionList) bool {
	n := 0
	for i := uint32(0); i < acts.N && i < uint32(len(acts.A)); i++ {
		a := acts.A[i]
		switch bpf.DatapathActionType(a.Type) {
		case bpf.DatapathActionTypeACT_OUTPUT, bpf.DatapathActionTypeACT_OUTPUT_REG,
			bpf.DatapathActionTypeACT_NORMAL, bpf.DatapathActionTypeACT_FLOOD,
			bpf.DatapathActionTypeACT_RESUBMIT:
			n++
		case bpf.DatapathActionTypeACT_CT:
			if a.Arg != noTable {
				n++
			}
		case bpf.DatapathActionTypeACT_LOAD, bpf.DatapathActionTypeACT_MOVE,
			bpf.DatapathActionTypeACT_CT_CLEAR, bpf.DatapathActionTypeACT_EXIT:
		default:
			return false
		}
	}
	return n <= 1
}

// xdpFlag is the CFG_XDP_GEN bit of generation gen, set when XDP may
// handle every flow in it: its actions fit (xdpCapable), and it does not
// match pkt_mark, which XDP has no skb to read.
func xdpFlag(gen uint32, flows []compiled) uint32 {
	for i := range flows {
		if !xdpCapable(&flows[i].actions) || flows[i].mask.flowKey().PktMark != 0 {
			return 0
		}
	}
	return cfgXDPGen0 << gen
}

// xdpContext is struct xdp_md as BPF_PROG_TEST_RUN takes it: the frame
// from data to data_end, received on ingress_ifindex.
type xdpContext struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// XDP verdicts.
const (
	XDPAborted  = 0
	XDPDrop     = 1
	XDPPass     = 2
	XDPTx       = 3
	XDPRedirect = 4
)

// RunXDP runs frame through the bridge's XDP program once with
// BPF_PROG_TEST_RUN, as if it had arrived on ifindex (which must exist in
// the calling thread's network namespace), and returns its verdict.
// Redirects are not executed; state changes as for a real packet.
func (b *Bridge) RunXDP(frame []byte, ifindex int) (uint32, error) {
	prog, err := loadPinnedProgram(b.dir, pinProgXDP)
	if err != nil {
		return 0, err
	}
	defer prog.Close()
	ctx := xdpContext{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame, Context: ctx})
	if err != nil {
		return 0, fmt.Errorf("run xdp program: %w", err)
	}
	return ret, nil
}
