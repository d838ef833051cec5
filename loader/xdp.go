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
