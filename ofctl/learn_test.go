package ofctl

import (
	"reflect"
	"strings"
	"testing"
)

// learnedCase is a flow in table 10 with one learn into table 20, a packet
// that runs it (written as ovs-appctl ofproto/trace takes it) and the line
// "ovs-ofctl --no-stats --names dump-flows br0 table=20" prints for the flow
// it learns.  TestCompareLearnedFlowsWithOVS checks each want against Open
// vSwitch 3.1 (which the wants were recorded from); TestLearned checks
// Learned.
type learnedCase struct {
	flow, packet, want string
}

var learnedCases = []learnedCase{
	// Neutron's br-tun MAC learning.
	{"table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x5,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1",
		"in_port=2,dl_src=fa:16:3e:00:00:01,dl_vlan=5,tun_id=0x3e9",
		" cookie=0x5, table=20, hard_timeout=300, priority=1,vlan_tci=0x0005/0x0fff,dl_dst=fa:16:3e:00:00:01 actions=load:0->NXM_OF_VLAN_TCI[],load:0x3e9->NXM_NX_TUN_ID[],output:vnet2"},
	// A TCP connection's reverse direction; fin_timeout comes first.
	{"table=10,tcp,actions=learn(table=20,idle_timeout=10,fin_idle_timeout=5,fin_hard_timeout=7,eth_type=0x800,nw_proto=6,NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],NXM_OF_TCP_SRC[]=NXM_OF_TCP_DST[],NXM_OF_TCP_DST[]=NXM_OF_TCP_SRC[],output:NXM_OF_IN_PORT[])",
		"in_port=1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.2,tp_src=1000,tp_dst=80",
		" table=20, idle_timeout=10, tcp,nw_src=10.0.0.2,nw_dst=10.0.0.1,tp_src=80,tp_dst=1000 actions=fin_timeout(idle_timeout=5,hard_timeout=7),output:vnet1"},
	{"table=10,actions=learn(table=20,fin_hard_timeout=9,NXM_OF_ETH_SRC[])",
		"in_port=1,dl_src=00:00:00:00:00:09",
		" table=20, dl_src=00:00:00:00:00:09 actions=fin_timeout(hard_timeout=9)"},
	// ARP: timeouts, cookie, priority 0; loads of the packet's values
	// and of immediates.
	{"table=10,actions=learn(table=20,priority=0,idle_timeout=60,hard_timeout=600,cookie=0x1234,eth_type=0x806,arp_op=2,arp_tpa=10.0.0.1,NXM_NX_ARP_SHA[]=NXM_OF_ETH_SRC[],dl_dst=ff:ff:ff:ff:ff:ff,load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0xa000001->NXM_OF_ARP_SPA[],output:NXM_OF_IN_PORT[])",
		"in_port=3,dl_src=00:00:00:00:00:09",
		" cookie=0x1234, table=20, idle_timeout=60, hard_timeout=600, priority=0,arp,dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa=10.0.0.1,arp_op=2,arp_sha=00:00:00:00:00:09 actions=load:0x9->NXM_OF_ETH_DST[],load:0xa000001->NXM_OF_ARP_SPA[],output:\"br-ex\""},
	// A match on part of in_port adds nothing (in_port cannot be masked)
	// until a whole in_port is matched; an output whose port is beyond 16
	// bits, NORMAL or CONTROLLER adds no action; ALL, LOCAL, IN_PORT and
	// FLOOD do.
	{"table=10,actions=learn(table=20,NXM_OF_IN_PORT[0..7],in_port=vnet2,reg1[0..7]=0x5,NXM_NX_REG2[4..11]=NXM_NX_REG3[0..7],load:0x1234->NXM_NX_REG0[0..15],load:NXM_NX_REG1[0..7]->NXM_NX_REG0[8..15],load:NXM_OF_IN_PORT[]->NXM_NX_REG4[16..31],output:NXM_NX_REG0[],output:NXM_NX_REG5[0..15],output:NXM_NX_REG6[],output:NXM_NX_REG7[16..31],output:NXM_NX_REG7[0..15],output:NXM_NX_REG8[0..15],output:NXM_NX_REG8[16..31])",
		"in_port=1,reg0=0x10002,reg1=0xab,reg3=0xcd,reg5=0xfffc,reg6=0xfffe,reg7=0xfff8fffa,reg8=0xfffbfffd",
		" table=20, reg1=0x5/0xff,reg2=0xcd0/0xff0,in_port=vnet2 actions=load:0x1234->NXM_NX_REG0[0..15],load:0xab->NXM_NX_REG0[8..15],load:0x1->NXM_NX_REG4[16..31],ALL,LOCAL,IN_PORT,FLOOD"},
	{"table=10,actions=learn(table=20,in_port=vnet2,NXM_OF_IN_PORT[0..7])",
		"in_port=1",
		" table=20, in_port=vnet1 actions=drop"},
	// IPv6: a load wider than 64 bits is two; nw_ecn and ip_dscp (not
	// maskable, fewer bits than their byte) add nothing.
	{"table=10,ipv6,actions=learn(table=20,eth_type=0x86dd,NXM_NX_IPV6_SRC[],ipv6_dst=fe80::1,load:NXM_NX_IPV6_SRC[]->NXM_NX_IPV6_DST[],NXM_NX_IP_ECN[],nw_ttl=5,ip_dscp=3,nw_tos=8)",
		"in_port=1,ipv6,ipv6_src=2001:db8::5,nw_ecn=2",
		" table=20, ipv6,ipv6_src=2001:db8::5,ipv6_dst=fe80::1,nw_tos=8,nw_ttl=5 actions=load:0x5->NXM_NX_IPV6_DST[0..63],load:0x20010db800000000->NXM_NX_IPV6_DST[64..127]"},
	// vlan_vid=0x1005 matches the VID bits only (12 bits); OXM_OF_IN_PORT,
	// part of tun_id, metadata from tun_id.
	{"table=10,actions=learn(table=20,vlan_vid=0x1005,OXM_OF_IN_PORT[],NXM_NX_TUN_ID[0..31],OXM_OF_METADATA[]=NXM_NX_TUN_ID[],eth_type=0x800,nw_proto=6,tcp_flags=0x12)",
		"in_port=1,dl_vlan=7,tun_id=0x123456789",
		" table=20, tcp,tun_id=0x23456789/0xffffffff,metadata=0x123456789,in_port=vnet1,vlan_tci=0x0005/0x0fff,tcp_flags=syn|ack actions=drop"},
	{"table=10,actions=learn(table=20,OXM_OF_VLAN_VID[],NXM_OF_VLAN_TCI[12]=1)",
		"in_port=1,dl_vlan=7",
		" table=20, dl_vlan=7 actions=drop"},
	// The learned match is normalized: icmp_type, arp_spa; fields whose
	// prerequisites a later eth_type took away are not printed.
	{"table=10,icmp,actions=learn(table=20,eth_type=0x800,nw_proto=1,NXM_OF_ICMP_TYPE[],icmp_code=0)",
		"in_port=1,icmp,icmp_type=8",
		" table=20, icmp,icmp_type=8,icmp_code=0 actions=drop"},
	{"table=10,ip,actions=learn(table=20,eth_type=0x800,NXM_OF_IP_SRC[],eth_type=0x86dd)",
		"in_port=1,ip,nw_src=1.2.3.4",
		" table=20, ipv6 actions=drop"},
	{"table=10,ip,actions=learn(table=20,eth_type=0x800,NXM_OF_IP_SRC[],eth_type=0x806)",
		"in_port=1,ip,nw_src=1.2.3.4",
		" table=20, arp,arp_spa=1.2.3.4 actions=drop"},
	{"table=10,actions=learn(table=20,ct_state=0x21,NXM_NX_CT_MARK[0..7]=NXM_NX_REG0[8..15],NXM_NX_CT_LABEL[100]=1,load:NXM_NX_REG0[0..7]->NXM_NX_PKT_MARK[24..31])",
		"in_port=1,reg0=0x1234",
		" table=20, ct_state=new|trk,ct_mark=0x12/0xff,ct_label=0x10000000000000000000000000/0x10000000000000000000000000 actions=load:0x34->NXM_NX_PKT_MARK[24..31]"},
	// The connection's original tuple; ct_nw_proto=0, and the ports
	// without a nonzero one, are not printed (nor encoded) by OVS.
	{"table=10,actions=learn(table=20,ct_state=0x22,ct_nw_proto=6,NXM_NX_CT_TP_SRC[]=NXM_NX_REG0[0..15],eth_type=0x800,NXM_NX_CT_NW_SRC[]=NXM_NX_REG1[])",
		"in_port=1,reg0=5,reg1=0x01020304",
		" table=20, ct_state=est|trk,ct_nw_src=1.2.3.4,ct_nw_proto=6,ct_tp_src=5,ip actions=drop"},
	{"table=10,ct_state=+est+trk,actions=learn(table=20,ct_state=0x22,NXM_NX_CT_NW_PROTO[],NXM_NX_CT_TP_SRC[]=NXM_NX_REG0[0..15])",
		"in_port=1,reg0=5,ct_state=est|trk",
		" table=20, ct_state=est|trk actions=drop"},
}

// packetSource reads subfields of a packet written as a match (as
// ofproto/trace takes it): the values the match gives, 0 for the rest.
func packetSource(t testing.TB, packet string) func(Subfield) []byte {
	t.Helper()
	p, err := ParseMatch(packet, testPorts)
	if err != nil {
		t.Fatalf("packet %q: %v", packet, err)
	}
	return func(sf Subfield) []byte {
		out := make([]byte, (sf.NBits+7)/8)
		if fm, ok := p.Match.Get(sf.Field); ok {
			copyBits(out, 0, fm.Value, sf.Ofs, sf.NBits)
		}
		return out
	}
}

// learnedLine returns the dump-flows line of the flow c's learn learns.
func learnedLine(t testing.TB, c learnedCase) (string, *Flow) {
	t.Helper()
	f, err := ParseFlow(c.flow, testPorts)
	if err != nil {
		t.Fatalf("ParseFlow(%q): %v", c.flow, err)
	}
	for _, a := range f.Actions {
		if l, ok := a.(Learn); ok {
			g, err := l.Learned(packetSource(t, c.packet))
			if err != nil {
				t.Fatalf("%q: Learned: %v", c.flow, err)
			}
			return g.DumpLine(testPorts, nil), g
		}
	}
	t.Fatalf("%q has no learn", c.flow)
	return "", nil
}

func TestLearned(t *testing.T) {
	for _, c := range learnedCases {
		got, g := learnedLine(t, c)
		if got != c.want {
			t.Errorf("%q on %q learns:\n got %q\nwant %q", c.flow, c.packet, got, c.want)
		}
		// The learned match is the one ParseFlow makes of its text.
		var acts []Action
		for _, a := range g.Actions {
			if _, fin := a.(FinTimeout); !fin {
				acts = append(acts, a)
			}
		}
		h := *g
		h.Actions = acts
		p, err := ParseFlow(h.String(), nil)
		if err != nil {
			t.Errorf("%q learns %q, which does not parse: %v", c.flow, h.String(), err)
		} else if !reflect.DeepEqual(p, &h) {
			t.Errorf("%q learns %#v\nwhich prints %q, parsed as %#v", c.flow, h, h.String(), p)
		}
	}
}

func TestLearnedErrors(t *testing.T) {
	f, err := ParseFlow("actions=learn(NXM_OF_ETH_SRC[],load:0x5->NXM_NX_REG0[0..7])", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := f.Actions[0].(Learn)
	for _, c := range []struct {
		l    Learn
		src  func(Subfield) []byte
		want string
	}{
		{l, nil, "no packet to read the sources from"},
		{l, func(Subfield) []byte { return []byte{1} }, "learn: NXM_OF_ETH_SRC[]: source NXM_OF_ETH_SRC[] read as 1 bytes, want 6"},
		{Learn{Specs: []LearnSpec{{Kind: LearnLoad, Dst: l.Specs[1].Dst, Immediate: true, Value: []byte{0, 5}}}}, nil, "immediate of 2 bytes for 8 bits"},
		{Learn{Specs: []LearnSpec{{Kind: 7, Dst: l.Specs[1].Dst, Immediate: true, Value: []byte{5}}}}, nil, "unknown spec kind 7"},
	} {
		if g, err := c.l.Learned(c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s.Learned() = %v, %v; want error containing %q", c.l.String(nil), g, err, c.want)
		}
	}
	// A source's bits above its width are not the learned flow's.
	g, err := l.Learned(func(sf Subfield) []byte { return []byte{0xff, 1, 2, 3, 4, 5} })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.DumpLine(nil, nil), " table=1, dl_src=ff:01:02:03:04:05 actions=load:0x5->NXM_NX_REG0[0..7]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCAtoi(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
	}{
		{"", 0}, {"x", 0}, {"12x", 12}, {" 7", 7}, {"-5", -5}, {"+3", 3}, {"70000", 70000},
		{"0x10", 0}, {"010", 10}, {"4294967297", 1},
		{"99999999999999999999", -1}, {"-99999999999999999999", 0},
		{"9223372036854775807", -1}, {"-9223372036854775808", 0},
	} {
		if got := cAtoi(c.in); got != c.want {
			t.Errorf("cAtoi(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
