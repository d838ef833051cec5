package loader

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
)

func conn(proto uint8, src, dst string, sp, dp uint16) Conn {
	return Conn{Proto: proto, OrigSrc: netip.MustParseAddr(src), OrigDst: netip.MustParseAddr(dst), OrigSport: sp, OrigDport: dp,
		TCPState: bpf.DatapathTcpCtStateTCP_CT_ESTABLISHED}
}

func TestParseCTFilterErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // OVS's words (lib/ofp-ct.c), after the token
	}{
		{[]string{"zone=x"}, "zone=x: failed to parse zone"},
		{[]string{"zone=70000"}, "failed to parse zone"},
		{[]string{"mark=zz"}, "failed to parse mark"},
		{[]string{"labels=0x1/zz"}, "failed to parse labels"},
		{[]string{"ct_nw_src=1.2.3"}, "failed to parse field ct_nw_src"},
		{[]string{"ct_nw_src=1.2.3.4,ct_nw_src=1.2.3.5"}, "ct_nw_src is set multiple times"},
		{[]string{"ct_nw_src="}, "field ct_nw_src missing value"},
		{[]string{"ct_tp_src=80"}, "port is set without protocol"},
		{[]string{"ct_nw_proto=6,icmp_id=3"}, "invalid L4 fields"},
		{[]string{"bogus=1"}, "invalid conntrack tuple field: bogus"},
		{[]string{"ct_nw_proto=6", "ct_nw_proto=6", "extra"}, "extra: invalid arguments"}, // the protocol may be in both tuples
	} {
		_, err := ParseCTFilter(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
	}
}

func TestCTFilterMatches(t *testing.T) {
	tcp := conn(6, "10.0.10.1", "10.0.10.2", 40000, 5000)
	udp := conn(17, "10.0.10.1", "10.0.10.2", 3333, 53)
	for _, c := range []struct {
		args     []string
		tcp, udp bool
	}{
		{nil, true, true},
		{[]string{"zone=0"}, true, true},
		{[]string{"zone=3"}, false, false},
		{[]string{"ct_nw_src=10.0.10.1"}, true, true},
		{[]string{"ct_nw_src=10.0.10.2"}, false, false},
		{[]string{"ct_nw_proto=6"}, true, false},
		{[]string{"ct_nw_proto=6,ct_tp_dst=5000"}, true, false},
		{[]string{"ct_nw_proto=6,ct_tp_dst=5001"}, false, false},
		{[]string{"", "ct_nw_src=10.0.10.2,ct_nw_proto=17,ct_tp_src=53"}, false, true}, // reply tuple only
		{[]string{"mark=0"}, true, true},
		{[]string{"mark=1/1"}, false, false},
	} {
		f, err := ParseCTFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if got := f.matches(&tcp); got != c.tcp {
			t.Errorf("%q on tcp: %v, want %v", c.args, got, c.tcp)
		}
		if got := f.matches(&udp); got != c.udp {
			t.Errorf("%q on udp: %v, want %v", c.args, got, c.udp)
		}
	}
}

func TestConnFormat(t *testing.T) {
	c := conn(6, "10.0.10.1", "10.0.10.2", 55838, 5000)
	c.TCPState = bpf.DatapathTcpCtStateTCP_CT_SYN_SENT
	c.Zone, c.Mark = 5, 7
	c.Labels[14], c.Labels[15] = 0x01, 0x02
	want := "tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=55838,dport=5000),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5000,dport=55838),zone=5,mark=7,labels=0x102,protoinfo=(state=SYN_SENT)"
	if got := c.Format(FormatOptions{}); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// OVS prints nf_conntrack's states through its own names, coalesced.
	for s, name := range map[bpf.DatapathTcpCtState]string{
		bpf.DatapathTcpCtStateTCP_CT_NONE: "CLOSED", bpf.DatapathTcpCtStateTCP_CT_SYN_SENT2: "SYN_SENT",
		bpf.DatapathTcpCtStateTCP_CT_SYN_RECV: "ESTABLISHED", bpf.DatapathTcpCtStateTCP_CT_FIN_WAIT: "FIN_WAIT_1",
		bpf.DatapathTcpCtStateTCP_CT_CLOSE_WAIT: "CLOSE_WAIT", bpf.DatapathTcpCtStateTCP_CT_LAST_ACK: "LAST_ACK",
		bpf.DatapathTcpCtStateTCP_CT_TIME_WAIT: "TIME_WAIT", bpf.DatapathTcpCtStateTCP_CT_CLOSE: "CLOSING",
	} {
		if got := tcpStateName(s); got != name {
			t.Errorf("state %d prints %s, want %s", s, got, name)
		}
	}
	// -m: OVS's verbose TCP protoinfo, and -s's counters and timeout.
	v := conn(6, "10.0.10.1", "10.0.10.2", 1, 2)
	v.TCPState = bpf.DatapathTcpCtStateTCP_CT_SYN_RECV
	v.ID, v.SeenReply = 77, true
	v.WScale = [2]uint8{7, 0}
	v.TCPFlags = [2]uint8{0x01 | 0x02 | 0x20, 0}
	want = "tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=1,dport=2),reply=(src=10.0.10.2,dst=10.0.10.1,sport=2,dport=1),id=77,status=SEEN_REPLY|CONFIRMED,protoinfo=(state_orig=SYN_RECV,state_reply=SYN_RECV,wscale_orig=7,wscale_reply=0,flags_orig=WINDOW_SCALE|SACK_PERM|MAXACK_SET,flags_reply=0)"
	if got := v.Format(FormatOptions{Verbose: true}); got != want {
		t.Errorf("-m:\n got  %s\nwant %s", got, want)
	}
	icmp := conn(1, "10.0.10.1", "10.0.10.2", 9, 9)
	icmp.ICMPType = 8
	if got, want := icmp.Format(FormatOptions{}), "icmp,orig=(src=10.0.10.1,dst=10.0.10.2,id=9,type=8,code=0),reply=(src=10.0.10.2,dst=10.0.10.1,id=9,type=0,code=0)"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	other := conn(47, "10.0.10.1", "10.0.10.2", 0, 0)
	if got := other.Format(FormatOptions{}); !strings.HasPrefix(got, "47,orig=(") {
		t.Errorf("a protocol without a name prints its number: %s", got)
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
