package dpctl

import (
	"net/netip"
	"strings"
	"testing"
)

func conn(proto uint8, src, dst string, sp, dp uint16) Conn {
	return Conn{Proto: proto, OrigSrc: netip.MustParseAddr(src), OrigDst: netip.MustParseAddr(dst), OrigSport: sp, OrigDport: dp,
		TCPState: TCPEstablished}
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
		_, err := ParseFilter(c.args)
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
		f, err := ParseFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if got := f.Matches(&tcp); got != c.tcp {
			t.Errorf("%q on tcp: %v, want %v", c.args, got, c.tcp)
		}
		if got := f.Matches(&udp); got != c.udp {
			t.Errorf("%q on udp: %v, want %v", c.args, got, c.udp)
		}
	}
}

func TestConnFormat(t *testing.T) {
	c := conn(6, "10.0.10.1", "10.0.10.2", 55838, 5000)
	c.TCPState = TCPSynSent
	c.Zone, c.Mark = 5, 7
	c.Labels[14], c.Labels[15] = 0x01, 0x02
	want := "tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=55838,dport=5000),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5000,dport=55838),zone=5,mark=7,labels=0x102,protoinfo=(state=SYN_SENT)"
	if got := c.Format(FormatOptions{}); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Without -m, SYN_RECV is shown as ESTABLISHED; the rest as they are.
	for s := TCPClosed; s < tcpStates; s++ {
		want := tcpStateNames[s]
		if s == TCPSynRecv {
			want = "ESTABLISHED"
		}
		c.TCPState = s
		if got := c.Format(FormatOptions{}); !strings.HasSuffix(got, ",protoinfo=(state="+want+")") {
			t.Errorf("state %d prints %s, want state=%s", s, got, want)
		}
	}
	// -m: OVS's verbose TCP protoinfo, and -s's counters and timeout.
	v := conn(6, "10.0.10.1", "10.0.10.2", 1, 2)
	v.TCPState = TCPSynRecv
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

func TestParseLimits(t *testing.T) {
	l, err := ParseLimits([]string{"default=10", "zone=5,limit=3", "limit=7,zone=6"})
	if err != nil || l.Default == nil || *l.Default != 10 || len(l.Zones) != 2 ||
		l.Zones[0] != (ZoneLimit{Zone: 5, Limit: 3}) || l.Zones[1] != (ZoneLimit{Zone: 6, Limit: 7}) {
		t.Fatalf("got %+v, %v", l, err)
	}
	if l.Zones[1].Count = 2; l.Format() != "default limit=10\nzone=5,limit=3,count=0\nzone=6,limit=7,count=2\n" {
		t.Errorf("format: %q", l.Format())
	}
	for args, want := range map[string]string{
		"default=x":          "default=x: invalid default limit",
		"zone=1":             "zone=1: failed to parse zone limit",
		"zone=1,limit=":      "zone=1,limit=: field limit missing value",
		"zone=70000,limit=1": "failed to parse field zone",
		"zone=1,limit=1,x=2": "invalid zone limit field: x",
	} {
		if _, err := ParseLimits([]string{args}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", args, err, want)
		}
	}
	if z, err := ParseZones("zone=1,,3"); err != nil || len(z) != 2 || z[0] != 1 || z[1] != 3 {
		t.Errorf("ParseZones: %v %v", z, err)
	}
	for _, bad := range []string{"zones=1", "zone=", "zone=a"} {
		if _, err := ParseZones(bad); err == nil {
			t.Errorf("ParseZones(%q) accepted", bad)
		}
	}
	if z, ok, err := ParseZone("zone=65535"); !ok || err != nil || z != 65535 {
		t.Errorf("ParseZone: %d %v %v", z, ok, err)
	}
	if _, ok, err := ParseZone("zone=65536"); !ok || err == nil {
		t.Errorf("ParseZone(65536): %v %v", ok, err)
	}
	if _, ok, _ := ParseZone("mark=1"); ok {
		t.Error("ParseZone took mark=1")
	}
}

func TestFormatStats(t *testing.T) {
	a := conn(6, "10.0.10.1", "10.0.10.2", 1, 2)
	b := conn(6, "10.0.10.1", "10.0.10.2", 3, 2)
	b.TCPState = TCPSynRecv // counted as ESTABLISHED, as OVS does
	c := conn(6, "10.0.10.1", "10.0.10.2", 4, 2)
	c.TCPState = TCPTimeWait
	conns := []Conn{a, b, c, conn(17, "10.0.10.1", "10.0.10.2", 5, 53), conn(58, "fd00::1", "fd00::2", 1, 0), conn(47, "10.0.10.1", "10.0.10.2", 0, 0)}
	want := "Connections Stats:\n    Total: 6\n  TCP: 3\n  UDP: 1\n  Other: 1\n"
	if got := FormatStats(conns, false); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	want = "Connections Stats:\n    Total: 6\n  TCP: 3\n    Conn per TCP states:\n\t  [ESTABLISHED]=2\n\t  [TIME_WAIT]=1\n  UDP: 1\n  Other: 1\n"
	if got := FormatStats(conns, true); got != want {
		t.Errorf("verbose: got\n%s\nwant\n%s", got, want)
	}
}
