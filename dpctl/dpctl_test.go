package dpctl

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
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
		{[]string{"ct_nw_src=1.2.3.4,ct_ipv6_dst=fd00::1"}, "the L3 protocol does not match fd00::1"},
		{[]string{"ct_nw_src=1.2.3.4", "ct_ipv6_dst=fd00::1"}, "the L3 protocol does not match fd00::1"}, // one family for both tuples
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

// flushConns are the connections of TestCTFilterFlushRules: the same UDP
// connection and the same ICMP echo in zones 0 and 5, an ICMPv6 echo, a
// TCP connection and a GRE one (tracked without ports).
func flushConns() map[string]Conn {
	u0 := conn(17, "10.0.10.1", "10.0.10.2", 40000, 6000)
	u5 := u0
	u5.Zone = 5
	i0 := conn(1, "10.0.10.1", "10.0.10.2", 4660, 4660)
	i0.ICMPType = 8
	i5 := i0
	i5.Zone = 5
	i6 := conn(58, "fd00:10::1", "fd00:10::2", 17185, 17185)
	i6.ICMPType = 128
	return map[string]Conn{
		"u0": u0, "u5": u5, "i0": i0, "i5": i5, "i6": i6,
		"t0":  conn(6, "10.0.10.1", "10.0.10.2", 48001, 5000),
		"gre": conn(47, "10.0.10.1", "10.0.10.2", 0, 0),
	}
}

// TestCTFilterFlushRules: what flush-conntrack removes, rule by rule, as
// Open vSwitch 3.1 removes it on its kernel datapath (lib/ct-dpif.c
// ct_dpif_flush_tuple; a full tuple through nl_ct_flush_tuple to the
// kernel's ctnetlink_del_conntrack). The sandboxed OVS 3.1 (userspace
// datapath) removed the same in each UDP and ICMP case over IPv4
// (TestDpctlFlushCompareWithOVS checks many on real connections).
func TestCTFilterFlushRules(t *testing.T) {
	const (
		uOrig  = "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=40000,ct_tp_dst=6000"
		uReply = "ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=17,ct_tp_src=6000,ct_tp_dst=40000"
		iOrig  = "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,icmp_id=4660,icmp_type=8"
	)
	conns := flushConns()
	for _, c := range []struct {
		args []string
		want string // the connections removed, by name
		full bool   // FullTuple: looked up, not compared with every connection
	}{
		// A full tuple without zone= is looked up in zone 0 only
		// (nl_ct_flush_tuple sends CTA_ZONE 0).
		{[]string{uOrig}, "u0", true},
		// ... by either of its tuples: the reply tuple given as the
		// original one finds the connection (the kernel's hash holds
		// both directions; ctnetlink_del_conntrack).
		{[]string{uReply}, "u0", true},
		// zone=N: the lookup is in zone N.
		{[]string{"zone=5", uOrig}, "u5", true},
		{[]string{"zone=5", uReply}, "u5", true},
		{[]string{"zone=7", uOrig}, "", true},
		// A port 0 or left out is no full tuple: compared with every
		// connection of every zone, in its direction only.
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=40000"}, "u0 u5", false},
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=40000,ct_tp_dst=0"}, "u0 u5", false},
		{[]string{"ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=17,ct_tp_src=6000"}, "", false},
		{[]string{"ct_nw_proto=17,ct_tp_src=40000"}, "u0 u5", false},
		{[]string{"zone=5", "ct_nw_proto=17,ct_tp_src=40000"}, "u5", false},
		// No protocol: every protocol, IPv4 only (an address sets the
		// family).
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2"}, "u0 u5 i0 i5 t0 gre", false},
		// "::" is no address, but IPv6 all the same.
		{[]string{"ct_ipv6_src=::"}, "i6", false},
		// With a reply tuple, both are compared, each with its own
		// direction, in every zone (zone=N: in N).
		{[]string{uOrig, uReply}, "u0 u5", false},
		{[]string{uReply, uOrig}, "", false},
		{[]string{"", uReply}, "u0 u5", false},
		{[]string{"", uOrig}, "", false},
		{[]string{"zone=5", "", uReply}, "u5", false},
		{[]string{"", "ct_nw_src=10.0.10.2"}, "u0 u5 i0 i5 t0 gre", false},
		// mark= or labels= (OVS 3.2's): never a lookup.
		{[]string{"mark=0", uOrig}, "u0 u5", false},
		// ICMP: a full tuple needs the addresses only; identifier, type
		// and code are 0 where left out, and looked up as given.
		{[]string{iOrig}, "i0", true},
		{[]string{"zone=5", iOrig}, "i5", true},
		{[]string{"ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=1,icmp_id=4660"}, "i0", true}, // the reply: type 0
		{[]string{"ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=1,icmp_id=4660,icmp_type=8"}, "", true},
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,icmp_id=4660"}, "", true}, // type 0 from .1: none
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,icmp_type=8"}, "", true},  // identifier 0
		{[]string{iOrig + ",icmp_code=1"}, "", true},
		{[]string{"ct_ipv6_src=fd00:10::2,ct_ipv6_dst=fd00:10::1,ct_nw_proto=58,icmp_id=17185,icmp_type=129"}, "i6", true},
		// ct_tp_src/ct_tp_dst share OVS's union with the ICMP fields:
		// the identifier, and the type (low byte) and code (high byte).
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,ct_tp_src=4660,ct_tp_dst=8"}, "i0", true},
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,ct_tp_src=4660,ct_tp_dst=264"}, "", true}, // code 1
		// For ICMP, a reply tuple without an address is no reply tuple
		// (ofp_ct_tuple_is_zero): still the lookup, its fields unused.
		{[]string{iOrig, "icmp_id=9"}, "i0", true},
		// ICMP compared with every connection: identifier, type and
		// code are compared, 0 where left out, in both tuples -- the
		// reply tuple's too when it is left out (ct_dpif_entry_cmp).
		{[]string{"ct_nw_proto=1"}, "", false},
		{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8"}, "", false},
		{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8", "icmp_id=4660"}, "i0 i5", false},
		{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8", "ct_nw_src=10.0.10.2,icmp_id=4660"}, "i0 i5", false},
		{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8", "icmp_id=4660,icmp_type=8"}, "", false},
		{[]string{"zone=5", "ct_nw_proto=1,icmp_id=4660,icmp_type=8", "icmp_id=4660"}, "i5", false},
		{[]string{"ct_nw_proto=58,icmp_id=17185,icmp_type=128", "icmp_id=17185,icmp_type=129"}, "i6", false},
		// Other protocols: OVS's kernel datapath cannot look a full
		// tuple up (CheckLookup); compared, their ports are 0.
		{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=47,ct_tp_src=1,ct_tp_dst=2"}, "", true},
		{[]string{"ct_nw_proto=47,ct_tp_src=1"}, "", false},
		{[]string{"ct_nw_proto=47"}, "gre", false},
		{[]string{"ct_ipv6_src=fd00:10::1,ct_ipv6_dst=fd00:10::2,ct_nw_proto=1,icmp_id=17185,icmp_type=128"}, "", true}, // ICMP over IPv6
	} {
		f, err := ParseFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if f.FullTuple() != c.full {
			t.Errorf("%q: FullTuple() = %v, want %v", c.args, f.FullTuple(), c.full)
		}
		var got []string
		for _, name := range slices.Sorted(maps.Keys(conns)) {
			cn := conns[name]
			if f.Matches(&cn) {
				got = append(got, name)
			}
		}
		want := strings.Fields(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("flush-conntrack %q removes %v, want %v", c.args, got, want)
		}
	}
}

func TestCTFilterKinds(t *testing.T) {
	for _, c := range []struct {
		args     []string
		zoneOnly bool
		zone     uint16
		lookup   error // CheckLookup
	}{
		{nil, true, 0, nil},
		{[]string{"zone=5"}, true, 5, nil},
		{[]string{""}, true, 0, nil},
		{[]string{"ct_tp_src=0"}, true, 0, nil}, // OVS: a zero match flushes all
		{[]string{"ct_nw_proto=0"}, true, 0, nil},
		{[]string{"ct_ipv6_dst=::"}, false, 0, nil}, // IPv6 only
		{[]string{"ct_nw_proto=6"}, false, 0, nil},
		{[]string{"mark=0/1"}, false, 0, nil},
		{[]string{"zone=9", "ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=1"}, false, 9, nil}, // type 0, an echo reply
		{[]string{"ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=1,icmp_type=3"}, false, 0, syscall.EINVAL},
		{[]string{"ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=1,icmp_type=18"}, false, 0, nil},
		{[]string{"ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,ct_nw_proto=58,icmp_type=1"}, false, 0, syscall.EINVAL},
		{[]string{"ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,ct_nw_proto=58,icmp_type=140"}, false, 0, nil},
		{[]string{"ct_nw_proto=1,icmp_type=3"}, false, 0, nil}, // compared, not looked up: no error
		{[]string{"ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=6,ct_tp_src=1,ct_tp_dst=2"}, false, 0, nil},
		{[]string{"ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=132,ct_tp_src=1,ct_tp_dst=2"}, false, 0, syscall.EOPNOTSUPP},
		{[]string{"ct_nw_src=10.0.0.1,ct_nw_dst=10.0.0.2,ct_nw_proto=58,icmp_type=128"}, false, 0, syscall.EOPNOTSUPP},
		{[]string{"ct_ipv6_src=fd00::1,ct_ipv6_dst=fd00::2,ct_nw_proto=1,icmp_type=8"}, false, 0, syscall.EOPNOTSUPP},
	} {
		f, err := ParseFilter(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if f.ZoneOnly() != c.zoneOnly || f.LookupZone() != c.zone {
			t.Errorf("%q: ZoneOnly %v, LookupZone %d; want %v, %d", c.args, f.ZoneOnly(), f.LookupZone(), c.zoneOnly, c.zone)
		}
		if err := f.CheckLookup(); err != c.lookup {
			t.Errorf("%q: CheckLookup() = %v, want %v", c.args, err, c.lookup)
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
