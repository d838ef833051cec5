package flowtable

import "github.com/ebpfovs/ebpfovs/bpf"

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
			bpf.DatapathActionTypeACT_CT_CLEAR, bpf.DatapathActionTypeACT_EXIT,
			bpf.DatapathActionTypeACT_CT_END:
		default:
			return false
		}
	}
	return n <= 1
}

// xdpFlag is the CFG_XDP_GEN bit of generation gen, set when XDP may
// handle every flow in it: its actions fit (xdpCapable), and it does not
// match pkt_mark, which XDP has no skb to read.
func xdpFlag(gen uint32, flows []*Compiled) uint32 {
	for i := range flows {
		if !xdpCapable(&flows[i].actions) || flows[i].mask.flowKey().PktMark != 0 {
			return 0
		}
	}
	return cfgXDPGen0 << gen
}
