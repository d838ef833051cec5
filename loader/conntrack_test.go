package loader

import (
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
)

// TestOVSTCPState: nf_conntrack's states in OVS's terms, as
// lib/netlink-conntrack.c maps them for the kernel datapath.
func TestOVSTCPState(t *testing.T) {
	for s, want := range map[bpf.DatapathTcpCtState]dpctl.TCPState{
		bpf.DatapathTcpCtStateTCP_CT_NONE: dpctl.TCPClosed, bpf.DatapathTcpCtStateTCP_CT_SYN_SENT: dpctl.TCPSynSent,
		bpf.DatapathTcpCtStateTCP_CT_SYN_SENT2: dpctl.TCPSynSent, bpf.DatapathTcpCtStateTCP_CT_SYN_RECV: dpctl.TCPSynRecv,
		bpf.DatapathTcpCtStateTCP_CT_ESTABLISHED: dpctl.TCPEstablished, bpf.DatapathTcpCtStateTCP_CT_FIN_WAIT: dpctl.TCPFinWait1,
		bpf.DatapathTcpCtStateTCP_CT_CLOSE_WAIT: dpctl.TCPCloseWait, bpf.DatapathTcpCtStateTCP_CT_LAST_ACK: dpctl.TCPLastAck,
		bpf.DatapathTcpCtStateTCP_CT_TIME_WAIT: dpctl.TCPTimeWait, bpf.DatapathTcpCtStateTCP_CT_CLOSE: dpctl.TCPClosing,
		bpf.DatapathTcpCtStateTCP_CT_MAX: dpctl.TCPClosed,
	} {
		if got := ovsTCPState(s); got != want {
			t.Errorf("state %d is %s, want %s", s, got, want)
		}
	}
}

// TestCounterNames: every counter of enum counter has a name to print.
func TestCounterNames(t *testing.T) {
	for c := bpf.DatapathCounter(0); c < bpf.DatapathCounterCNT_MAX; c++ {
		if counterNames[c] == "" {
			t.Errorf("counter %d has no name in counterNames", c)
		}
	}
}
