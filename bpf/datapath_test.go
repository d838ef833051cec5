package bpf_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// dp is a bridge on three veth ports (OpenFlow 1..3) in a namespace of
// the test's own, driven through BPF_PROG_TEST_RUN of the trace program:
// the real pipeline and maps, with redirects reported instead of done.
type dp struct {
	t       testing.TB
	ns      *testenv.NS
	b       *loader.Bridge
	pm      *loader.PortMap
	ifindex map[uint32]int
	opts    loader.Options
}

const nPorts = 3

func newDP(t testing.TB) *dp {
	return newDPSized(t, 4096)
}

func newDPSized(t testing.TB, maxFlows uint32) *dp {
	t.Helper()
	return newDPWith(t, maxFlows, 16384)
}

// newDPWith is newDP with room for maxFlows flows and maxConns
// connections, and the Attach options as edit leaves them.
func newDPWith(t testing.TB, maxFlows, maxConns uint32, edit ...func(*loader.Options)) *dp {
	t.Helper()
	testenv.RequirePrivileged(t)
	ns := testenv.NewNS(t, "dp")
	h := ns.MustHandle(t)
	// No IPv6 on the ports: a link-local address would send router
	// solicitations and MLD reports into the datapath, counted by whatever
	// flow matches them (a test counting packets would flake).
	if err := ns.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	var specs []loader.PortSpec
	for i := 1; i <= nPorts; i++ {
		name := fmt.Sprintf("p%d", i)
		// This kernel has no dummy driver; a veth pair whose peer stays in
		// the namespace is a port that swallows what it is sent.
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "x"}
		if err := h.LinkAdd(veth); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{name, name + "x"} {
			l, err := h.LinkByName(n)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		specs = append(specs, loader.PortSpec{Name: name, OFPort: uint32(i)})
	}
	opts := loader.Options{BPFFS: testenv.TempBPFFS(t), Bridge: "dp", NetNS: ns.Path, MaxFlows: maxFlows, MaxConns: maxConns}
	for _, e := range edit {
		e(&opts)
	}
	ports, err := loader.Attach(opts, specs, loader.ModeAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := loader.Detach(opts, nil); err != nil {
			t.Errorf("detach: %v", err)
		}
	})
	d := &dp{t: t, ns: ns, ifindex: map[uint32]int{}, opts: opts}
	for _, p := range ports {
		d.ifindex[p.OFPort] = p.Ifindex
	}
	if d.b, err = loader.Open(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.b.Close() })
	if d.pm, err = d.b.PortMap(); err != nil {
		t.Fatal(err)
	}
	return d
}

// setFlows replaces the whole flow table.
func (d *dp) setFlows(lines ...string) {
	d.t.Helper()
	if _, err := d.b.DelFlows(nil, false); err != nil {
		d.t.Fatal(err)
	}
	var flows []*ofctl.Flow
	for _, l := range lines {
		f, err := ofctl.ParseFlow(l, d.pm)
		if err != nil {
			d.t.Fatalf("%q: %v", l, err)
		}
		flows = append(flows, f)
	}
	if err := d.b.AddFlows(flows); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dp) run(in uint32, frame []byte) *loader.TraceResult {
	d.t.Helper()
	var res *loader.TraceResult
	err := d.ns.Do(func() (err error) {
		res, err = d.b.RunTrace(frame, d.ifindex[in], false)
		return err
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return res
}

func (d *dp) conns() []loader.Conn {
	d.t.Helper()
	c, err := d.b.Conntrack(nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return c
}

var (
	ip1, ip2, ip3    = testenv.VMIP(1), testenv.VMIP(2), testenv.VMIP(3)
	mac1, mac2, mac3 = testenv.VMMAC(1), testenv.VMMAC(2), testenv.VMMAC(3)
	bcast            = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

func tcp6(flags string, sport, dport uint16, src, dst string) testenv.PacketSpec {
	return testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst), Proto: "tcp",
		SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: 1000}
}

// ipv6HopByHopUDP is an IPv6 packet (from its IPv6 header on) whose next
// header is an 8-byte hop-by-hop options header, then UDP to dport.
func ipv6HopByHopUDP(dport uint16) []byte {
	b := []byte{0x60, 0, 0, 0, 0, 16, 0 /* hop-by-hop */, 64}
	b = append(b, net.ParseIP("2001:db8::1")...)
	b = append(b, net.ParseIP("2001:db8::2")...)
	b = append(b, 17 /* UDP */, 0, 1, 4, 0, 0, 0, 0) // PadN option
	return append(b, 0, 9, byte(dport>>8), byte(dport), 0, 8, 0, 0)
}

// ipv4FragUDP is an IPv4 packet from 10.0.10.1 to 10.0.10.2 with the
// given fragment flags and offset (8-byte units) whose payload starts with
// a UDP header to dport (a later fragment's data only looks like one).
func ipv4FragUDP(mf bool, off, dport uint16) []byte {
	fo := off
	if mf {
		fo |= 0x2000
	}
	b := []byte{0x45, 0, 0, 36, 0x12, 0x34, byte(fo >> 8), byte(fo), 64, 17, 0, 0, 10, 0, 10, 1, 10, 0, 10, 2}
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	b[10], b[11] = byte(^sum>>8), byte(^sum)
	return append(b, 0, 9, byte(dport>>8), byte(dport), 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
}

// ipv6FragUDP is an IPv6 packet with a fragment header (offset in 8-byte
// units, M flag) before a UDP header to dport.
func ipv6FragUDP(m bool, off, dport uint16) []byte {
	fo := off << 3
	if m {
		fo |= 1
	}
	b := []byte{0x60, 0, 0, 0, 0, 24, 44 /* fragment */, 64}
	b = append(b, net.ParseIP("2001:db8::1")...)
	b = append(b, net.ParseIP("2001:db8::2")...)
	b = append(b, 17 /* UDP */, 0, byte(fo>>8), byte(fo), 0, 0, 0x56, 0x78)
	return append(b, 0, 9, byte(dport>>8), byte(dport), 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8)
}

// ipv6LabelUDP is ipv6HopByHopUDP(53) with flow label 0x12345; with
// badExt, its hop-by-hop header claims 2048 bytes, more than the packet has.
func ipv6LabelUDP(badExt bool) []byte {
	b := ipv6HopByHopUDP(53)
	b[1], b[2], b[3] = 0x01, 0x23, 0x45
	if badExt {
		b[40+1] = 255 // after the IPv6 header: next header, length in 8-byte units less 1
	}
	return b
}

// arpFrame is an Ethernet/IPv4 ARP frame from dlSrc whose body carries
// the given addresses (sha may differ from dlSrc; a nil tha is zero).
func arpFrame(dlSrc net.HardwareAddr, op uint16, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) testenv.PacketSpec {
	if tha == nil {
		tha = make(net.HardwareAddr, 6)
	}
	b := []byte{0, 1, 8, 0, 6, 4, byte(op >> 8), byte(op)}
	b = append(append(append(append(b, sha...), spa.To4()...), tha...), tpa.To4()...)
	return testenv.PacketSpec{Proto: "eth", SrcMAC: dlSrc, DstMAC: bcast, EtherType: 0x0806, Payload: b}
}

func tcp(flags string, sport, dport uint16) testenv.PacketSpec {
	return testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp",
		SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: 1000}
}

// pass is one classifier pass: the table looked up and the priority of the
// flow that matched there (-1: none matched).
type pass struct {
	table uint32
	prio  int
}

const (
	csNew = 0x01
	csEst = 0x02
	csRpl = 0x08
	csInv = 0x10
	csTrk = 0x20
)

func outPorts(tr *bpf.DatapathTrace) []uint32 {
	n := min(int(tr.Nout), len(tr.OutPort))
	return slices.Clone(tr.OutPort[:n])
}

// passes lists the lookups a packet made: passes and resubmits, in order.
func passes(tr *bpf.DatapathTrace) []pass {
	var out []pass
	for i := 0; i < int(tr.Nlookups) && i < len(tr.Lookup); i++ {
		p := pass{table: tr.Lookup[i].Table, prio: -1}
		if tr.Lookup[i].FlowId != 0xffffffff {
			p.prio = int(tr.Lookup[i].Priority)
		}
		out = append(out, p)
	}
	return out
}

var labFlows = []string{
	"table=0, priority=50, ct_state=-trk, tcp, in_port=p1, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+new, tcp, in_port=p1, actions=ct(commit),p2",
	"table=0, priority=50, ct_state=-trk, tcp, in_port=p2, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=p2, actions=p1",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=p1, actions=p2",
	"priority=0 actions=NORMAL",
}

// TestPipeline is the datapath's table: flows, packet in, then the passes it
// took, the verdict, the ports it went out of and its final ct_state.
func TestPipeline(t *testing.T) {
	d := newDP(t)
	cases := []struct {
		name    string
		flows   []string
		in      uint32
		pkt     testenv.PacketSpec
		passes  []pass
		verdict uint32
		out     []uint32
		ct      uint32 // 0: not checked
	}{
		{name: "NORMAL floods a broadcast ARP to every other port",
			flows: []string{"priority=0 actions=NORMAL"},
			in:    1, pkt: testenv.PacketSpec{Proto: "arp", SrcMAC: mac1, DstMAC: bcast, SrcIP: ip1, DstIP: ip2},
			passes: []pass{{0, 0}}, verdict: loader.TCActRedirect, out: []uint32{2, 3}},
		{name: "no matching flow drops",
			flows: []string{"priority=10, in_port=p2, actions=p1"},
			in:    1, pkt: tcp("S", 40000, 80),
			passes: []pass{{0, -1}}, verdict: loader.TCActShot},
		{name: "output by name", flows: []string{"in_port=p1, actions=p3"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "output:N", flows: []string{"in_port=1, actions=output:2"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "several outputs, in order", flows: []string{"actions=p3,p2"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3, 2}},
		{name: "output to the in_port is dropped", flows: []string{"actions=p1"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActShot},
		{name: "IN_PORT sends it back", flows: []string{"actions=in_port"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{1}},
		{name: "drop action", flows: []string{"priority=100, tcp, actions=drop", "priority=1, actions=p2"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 100}}, verdict: loader.TCActShot},
		{name: "FLOOD", flows: []string{"actions=FLOOD"},
			in: 2, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{1, 3}},
		{name: "ALL excludes the in_port too", flows: []string{"actions=ALL"},
			in: 3, pkt: tcp("S", 40000, 80), passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{1, 2}},
		{name: "highest priority wins (more specific, higher)",
			flows: []string{"priority=10, ip, nw_src=10.0.0.0/8, actions=p2", "priority=20, ip, nw_src=10.0.10.0/24, actions=p3"},
			in:    1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 20}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "highest priority wins (less specific, higher)",
			flows: []string{"priority=30, ip, nw_src=10.0.0.0/8, actions=p2", "priority=20, ip, nw_src=10.0.10.0/24, actions=p3"},
			in:    1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "CIDR miss falls to the lower flow",
			flows: []string{"priority=20, ip, nw_src=10.0.11.0/24, actions=p3", "priority=10, ip, actions=p2"},
			in:    1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 10}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "tp_dst", flows: []string{"priority=30, tcp, tp_dst=80, actions=p3", "priority=20, tcp, actions=p2"},
			in: 1, pkt: tcp("S", 40000, 80), passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "tp_dst other port", flows: []string{"priority=30, tcp, tp_dst=80, actions=p3", "priority=20, tcp, actions=p2"},
			in: 1, pkt: tcp("S", 40000, 81), passes: []pass{{0, 20}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "udp tp_src", flows: []string{"priority=30, udp, tp_src=53, actions=p3", "priority=20, tcp, tp_src=53, actions=p2"},
			in: 1, pkt: testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 53, DstPort: 999},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "nw_proto and nw_dst", flows: []string{"ip, nw_proto=1, nw_dst=10.0.10.3, actions=p3"},
			in: 1, pkt: testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac3, SrcIP: ip1, DstIP: ip3, Proto: "icmp", ICMPType: 8, ICMPID: 7},
			passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "icmp shorthand does not match tcp", flows: []string{"icmp, actions=p3"},
			in: 1, pkt: tcp("S", 1, 2), passes: []pass{{0, -1}}, verdict: loader.TCActShot},
		{name: "dl_type", flows: []string{"dl_type=0x0806, actions=p2"},
			in: 1, pkt: testenv.PacketSpec{Proto: "arp", SrcMAC: mac1, DstMAC: bcast, SrcIP: ip1, DstIP: ip2},
			passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "arp shorthand with arp_tpa", flows: []string{"priority=5, arp, arp_tpa=10.0.10.3, actions=p3", "priority=1, arp, actions=p2"},
			in: 1, pkt: testenv.PacketSpec{Proto: "arp", SrcMAC: mac1, DstMAC: bcast, SrcIP: ip1, DstIP: ip3},
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "arp_sha: the ARP body's sender address, not dl_src",
			flows: []string{"priority=5, arp, arp_sha=02:00:00:00:0a:07, actions=p3", "priority=1, arp, actions=p2"},
			in:    1, pkt: arpFrame(mac1, 1, testenv.VMMAC(7), ip1, nil, ip2),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "arp_sha: dl_src equal to the value does not match",
			flows: []string{"priority=5, arp, arp_sha=02:00:00:00:0a:01, actions=p3", "priority=1, arp, actions=p2"},
			in:    1, pkt: arpFrame(mac1, 1, testenv.VMMAC(7), ip1, nil, ip2),
			passes: []pass{{0, 1}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "arp_tha of a reply",
			flows: []string{"priority=5, arp, arp_op=2, arp_tha=02:00:00:00:0a:03, actions=p3", "priority=1, arp, actions=p2"},
			in:    2, pkt: arpFrame(mac2, 2, mac2, ip2, mac3, ip3),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "arp_tha masked (OUI)",
			flows: []string{"priority=5, arp, arp_tha=02:00:00:00:00:00/ff:ff:ff:00:00:00, actions=p3", "priority=1, arp, actions=p2"},
			in:    2, pkt: arpFrame(mac2, 2, mac2, ip2, mac3, ip3),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "arp_tha of a request is zero",
			flows: []string{"priority=5, arp, arp_tha=02:00:00:00:00:00/ff:ff:ff:00:00:00, actions=p3", "priority=1, arp, arp_tha=00:00:00:00:00:00, actions=p2"},
			in:    1, pkt: arpFrame(mac1, 1, mac1, ip1, nil, ip2),
			passes: []pass{{0, 1}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "arp_sha and arp_tha with arp_spa and arp_tpa",
			flows: []string{"priority=5, arp, arp_sha=02:00:00:00:0a:02, arp_spa=10.0.10.2, arp_tha=02:00:00:00:0a:03, arp_tpa=10.0.10.3, actions=p3",
				"priority=4, arp, arp_sha=02:00:00:00:0a:02, arp_spa=10.0.10.2, arp_tha=02:00:00:00:0a:03, arp_tpa=10.0.10.4, actions=p1",
				"priority=1, arp, actions=p1"},
			in: 2, pkt: arpFrame(mac2, 2, mac2, ip2, mac3, ip3),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "tun_id=0 matches every packet (no tunnels)",
			flows: []string{"priority=5, tun_id=0, tcp, actions=p3", "priority=1, actions=p2"},
			in:    1, pkt: tcp("S", 40000, 80),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "802.1Q-tagged IPv4 matches ip flows by its inner type", flows: []string{"tcp, tp_dst=80, actions=p2"},
			in: 1, pkt: func() testenv.PacketSpec { p := tcp("S", 40000, 80); p.VLAN = 10; return p }(),
			passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "lab: SYN is tracked, recirculated, committed and output",
			flows: labFlows, in: 1, pkt: tcp("S", 40001, 5000),
			passes: []pass{{0, 50}, {0, 50}}, verdict: loader.TCActRedirect, out: []uint32{2}, ct: csTrk | csNew},
		{name: "lab: SYN-ACK without a connection is +inv and takes NORMAL",
			flows: labFlows, in: 2,
			pkt:    testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "tcp", SrcPort: 5000, DstPort: 40999, TCPFlags: "SA"},
			passes: []pass{{0, 50}, {0, 0}}, ct: csTrk | csInv},
		{name: "ct(table=1) continues in table 1",
			flows: []string{"ip, actions=ct(table=1)", "table=1, ct_state=+trk+new, ip, actions=p3"},
			in:    1, pkt: tcp("S", 40002, 80),
			passes: []pass{{0, 32768}, {1, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}, ct: csTrk | csNew},
		{name: "ct_zone is set for the recirculated packet",
			flows: []string{"ip, actions=ct(zone=7,table=1)", "table=1, priority=10, ct_zone=7, ip, actions=p3", "table=1, priority=5, ip, actions=p2"},
			in:    1, pkt: tcp("S", 40003, 80),
			passes: []pass{{0, 32768}, {1, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "ct(zone=REG) takes the zone from a register (OVN)",
			flows: []string{"ip, actions=load:0x2a->NXM_NX_REG13[0..15],ct(zone=NXM_NX_REG13[0..15],table=1)",
				"table=1, priority=10, ct_zone=42, ip, actions=p3", "table=1, priority=5, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40050, 80),
			passes: []pass{{0, 32768}, {1, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "recirculation is bounded",
			flows: []string{"ip, actions=ct(table=0)"},
			in:    1, pkt: tcp("S", 40004, 80),
			passes: []pass{{0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}}, verdict: loader.TCActShot},
		{name: "resubmit runs another table's actions, then goes on",
			flows: []string{"table=0, ip, actions=resubmit(,1),p3", "table=1, ip, actions=p2"},
			in:    1, pkt: tcp("S", 40005, 80),
			passes: []pass{{0, 32768}, {1, 32768}}, verdict: loader.TCActRedirect, out: []uint32{2, 3}},
		{name: "goto_table",
			flows: []string{"table=0, ip, actions=goto_table:2", "table=2, priority=7, ip, actions=p3"},
			in:    1, pkt: tcp("S", 40006, 80),
			passes: []pass{{0, 32768}, {2, 7}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "resubmit with another in_port, restored afterwards",
			flows: []string{"table=0, in_port=p1, ip, actions=resubmit(p2,1),in_port",
				"table=1, priority=10, in_port=p2, ip, actions=p3", "table=1, priority=5, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40007, 80),
			passes: []pass{{0, 32768}, {1, 10}}, verdict: loader.TCActRedirect, out: []uint32{3, 1}},
		{name: "a resubmit that misses is no actions",
			flows: []string{"table=0, ip, actions=resubmit(,5),p2"},
			in:    1, pkt: tcp("S", 40008, 80),
			passes: []pass{{0, 32768}, {5, -1}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "resubmit nesting is bounded",
			flows: []string{"table=0, ip, actions=resubmit(,0)"},
			in:    1, pkt: tcp("S", 40009, 80),
			passes: []pass{{0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}, {0, 32768}}, verdict: loader.TCActShot},
		{name: "ct(table=N) inside a resubmit recirculates after the pass",
			flows: []string{"table=0, ip, ct_state=-trk, actions=resubmit(,1),p3", "table=1, ip, actions=ct(table=2)", "table=2, ip, ct_state=+trk, actions=p2"},
			in:    1, pkt: tcp("S", 40010, 80),
			passes: []pass{{0, 32768}, {1, 32768}, {2, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3, 2}},
		{name: "load into a register, matched after a resubmit",
			flows: []string{"table=0, ip, actions=load:0x2a->NXM_NX_REG3[],resubmit(,1)", "table=1, priority=5, reg3=42, actions=p3", "table=1, priority=1, actions=p2"},
			in:    1, pkt: tcp("S", 40020, 80),
			passes: []pass{{0, 32768}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "subfield load, masked register match",
			flows: []string{"table=0, ip, actions=load:0x5->NXM_NX_REG0[4..7],resubmit(,1)", "table=1, priority=5, reg0=0x50/0xf0, actions=p3", "table=1, priority=1, actions=p2"},
			in:    1, pkt: tcp("S", 40021, 80),
			passes: []pass{{0, 32768}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "64-bit metadata",
			flows: []string{"table=0, ip, actions=load:0x1122334455667788->OXM_OF_METADATA[],resubmit(,1)", "table=1, priority=5, metadata=0x1122334455667788, actions=p3", "table=1, priority=1, actions=p2"},
			in:    1, pkt: tcp("S", 40022, 80),
			passes: []pass{{0, 32768}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "move between registers",
			flows: []string{"table=0, ip, actions=load:7->NXM_NX_REG1[],move:NXM_NX_REG1[0..15]->NXM_NX_REG2[16..31],resubmit(,1)", "table=1, priority=5, reg2=0x70000, actions=p3", "table=1, priority=1, actions=p2"},
			in:    1, pkt: tcp("S", 40023, 80),
			passes: []pass{{0, 32768}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "move from packet fields: a port, a MAC address across two key words",
			flows: []string{"table=0, tcp, actions=move:NXM_OF_TCP_DST[]->NXM_NX_REG3[8..23],move:NXM_OF_ETH_SRC[]->OXM_OF_METADATA[8..55],resubmit(,1)",
				"table=1, priority=5, reg3=0x5000, metadata=0x20000000a0100, actions=p3", "table=1, priority=1, actions=p2"},
			in: 1, pkt: tcp("S", 40025, 80),
			passes: []pass{{0, 32768}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "ct(zone=NXM_OF_IN_PORT[]) takes the zone from a packet field",
			flows: []string{"ip, actions=ct(zone=NXM_OF_IN_PORT[],table=1)",
				"table=1, priority=10, ct_zone=2, ip, actions=p3", "table=1, priority=5, ip, actions=p1"},
			in: 2, pkt: tcp("S", 40051, 80),
			passes: []pass{{0, 32768}, {1, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "ct(zone=OXM_OF_IN_PORT[0..15]): the same port, as OVS's 32-bit OXM field",
			flows: []string{"ip, actions=ct(zone=OXM_OF_IN_PORT[0..15],table=1)",
				"table=1, priority=10, ct_zone=3, ip, actions=p2", "table=1, priority=5, ip, actions=p1"},
			in: 3, pkt: tcp("S", 40053, 80),
			passes: []pass{{0, 32768}, {1, 10}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "ct(zone=NXM_NX_CT_ZONE[]) reuses the zone of the last ct()",
			flows: []string{"ip, ct_state=-trk, actions=ct(zone=9,table=1)", "table=1, ip, actions=load:0->NXM_NX_REG0[],ct(zone=NXM_NX_CT_ZONE[],table=2)",
				"table=2, priority=10, ct_zone=9, ip, actions=p3", "table=2, priority=5, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40052, 80),
			passes: []pass{{0, 32768}, {1, 32768}, {2, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "output to the port in a register",
			flows: []string{"table=0, ip, actions=load:3->NXM_NX_REG5[],output:NXM_NX_REG5[]"},
			in:    1, pkt: tcp("S", 40024, 80),
			passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "registers are set per packet (udp sets reg0)", flows: []string{"table=0, priority=10, udp, actions=load:1->NXM_NX_REG0[],resubmit(,1)", "table=0, priority=5, ip, actions=resubmit(,1)", "table=1, priority=5, reg0=1, actions=p3", "table=1, priority=0, actions=p2"},
			in: 1, pkt: testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 2},
			passes: []pass{{0, 10}, {1, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "registers start at zero for the next packet (tcp does not set reg0)", flows: []string{"table=0, priority=10, udp, actions=load:1->NXM_NX_REG0[],resubmit(,1)", "table=0, priority=5, ip, actions=resubmit(,1)", "table=1, priority=5, reg0=1, actions=p3", "table=1, priority=0, actions=p2"},
			in: 1, pkt: tcp("S", 40025, 80),
			passes: []pass{{0, 5}, {1, 0}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "note does nothing",
			flows: []string{"ip, actions=note:01.02,p3"},
			in:    1, pkt: tcp("S", 40040, 80),
			passes: []pass{{0, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "exit stops all processing, earlier outputs stand",
			flows: []string{"table=0, ip, actions=p3,resubmit(,1),p2", "table=1, ip, actions=exit"},
			in:    1, pkt: tcp("S", 40041, 80),
			passes: []pass{{0, 32768}, {1, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "ct_clear forgets the conntrack result",
			flows: []string{"table=0, ip, ct_state=-trk, actions=ct(table=1)", "table=1, ip, ct_state=+trk, actions=ct_clear,resubmit(,2)",
				"table=2, priority=5, ip, ct_state=-trk, actions=p3", "table=2, priority=1, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40042, 80),
			passes: []pass{{0, 32768}, {1, 32768}, {2, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "ct_clear forgets ct_label too (every ct_* field, as OVS)",
			flows: []string{"table=0, ip, ct_state=-trk, actions=ct(commit,exec(set_field:0x5->ct_label),table=1)", "table=1, ip, ct_label=0x5, actions=ct_clear,resubmit(,2)",
				"table=2, priority=5, ip, ct_label=0, actions=p3", "table=2, priority=1, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40043, 80),
			passes: []pass{{0, 32768}, {1, 32768}, {2, 5}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "each ct(table=N) forks its own copy, in order, with the registers it had (OVS's recirculation)",
			flows: []string{"table=0, ip, ct_state=-trk, actions=load:1->NXM_NX_REG0[],ct(zone=1,table=1),load:2->NXM_NX_REG0[],ct(zone=2,table=2)",
				"table=1, priority=10, ip, ct_zone=1, reg0=1, actions=p2", "table=2, priority=10, ip, ct_zone=2, reg0=2, actions=p3",
				"table=1, priority=5, ip, actions=drop", "table=2, priority=5, ip, actions=drop"},
			in: 1, pkt: tcp("S", 40060, 80),
			passes: []pass{{0, 32768}, {1, 10}, {2, 10}}, verdict: loader.TCActRedirect, out: []uint32{2, 3}},
		{name: "the packet goes on untracked after a ct()",
			flows: []string{"table=0, ip, ct_state=-trk, actions=ct(table=1),resubmit(,3)",
				"table=3, priority=10, ip, ct_state=-trk, actions=p3", "table=3, priority=5, ip, actions=drop",
				"table=1, ip, actions=p2"},
			in: 1, pkt: tcp("S", 40061, 80),
			passes: []pass{{0, 32768}, {3, 10}, {1, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3, 2}},
		{name: "IPv6: ipv6_src prefix",
			flows: []string{"priority=10, ipv6, ipv6_src=2001:db8::/32, actions=p3", "priority=5, ipv6, actions=p2"},
			in:    1, pkt: tcp6("S", 40030, 80, "2001:db8::1", "2001:db8::2"),
			passes: []pass{{0, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: another prefix falls through",
			flows: []string{"priority=10, ipv6, ipv6_src=2001:db8::/32, actions=p3", "priority=5, ipv6, actions=p2"},
			in:    1, pkt: tcp6("S", 40031, 80, "2001:db9::1", "2001:db8::2"),
			passes: []pass{{0, 5}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "IPv6: tcp6 and tp_dst",
			flows: []string{"priority=10, tcp6, tp_dst=80, actions=p3", "priority=5, tcp, tp_dst=80, actions=p2"},
			in:    1, pkt: tcp6("S", 40032, 80, "2001:db8::1", "2001:db8::2"),
			passes: []pass{{0, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: icmp6 type",
			flows: []string{"priority=10, icmp6, icmp_type=128, actions=p3", "priority=5, ipv6, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
				Proto: "icmp6", ICMPType: 128, ICMPID: 5, ICMPSeq: 1},
			passes: []pass{{0, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: a hop-by-hop header is walked to reach UDP",
			flows: []string{"priority=10, udp6, tp_dst=53, actions=p3", "priority=5, ipv6, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6HopByHopUDP(53)},
			passes: []pass{{0, 10}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		// ip_frag and what a fragment's key holds, as OVS's miniflow_extract.
		{name: "IPv4: not a fragment is ip_frag=no",
			flows: []string{"priority=30, ip, ip_frag=yes, actions=p3", "priority=20, udp, ip_frag=no, tp_dst=53, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x0800, Payload: ipv4FragUDP(false, 0, 53)},
			passes: []pass{{0, 20}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "IPv4: a first fragment has its ports",
			flows: []string{"priority=30, udp, ip_frag=first, tp_dst=53, actions=p3", "priority=20, ip, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x0800, Payload: ipv4FragUDP(true, 0, 53)},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv4: a later fragment keeps nw_proto, has no ports",
			flows: []string{"priority=40, udp, tp_dst=53, actions=p1", "priority=30, udp, ip_frag=later, tp_dst=0, actions=p3", "priority=20, ip, actions=p2"},
			in:    2, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x0800, Payload: ipv4FragUDP(false, 185, 53)},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: a first fragment walks on to UDP",
			flows: []string{"priority=30, udp6, ip_frag=first, tp_dst=53, actions=p3", "priority=20, ipv6, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6FragUDP(true, 0, 53)},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: a later fragment's nw_proto is 44",
			flows: []string{"priority=40, udp6, actions=p1", "priority=30, ipv6, nw_proto=44, ip_frag=later, actions=p3", "priority=20, ipv6, actions=p2"},
			in:    2, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6FragUDP(false, 185, 53)},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: an atomic fragment is no fragment",
			flows: []string{"priority=30, ipv6, ip_frag=yes, actions=p3", "priority=20, udp6, ip_frag=no, tp_dst=53, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6FragUDP(false, 0, 53)},
			passes: []pass{{0, 20}}, verdict: loader.TCActRedirect, out: []uint32{2}},
		{name: "IPv6: ipv6_label is the header's flow label",
			flows: []string{"priority=30, ipv6, ipv6_label=0x12345, actions=p3", "priority=20, ipv6, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6LabelUDP(false)},
			passes: []pass{{0, 30}}, verdict: loader.TCActRedirect, out: []uint32{3}},
		{name: "IPv6: failed extension headers leave ipv6_label 0, the addresses set",
			flows: []string{"priority=30, ipv6, ipv6_label=0x12345, actions=p3", "priority=20, ipv6, ipv6_src=2001:db8::1, ipv6_dst=2001:db8::2, ipv6_label=0, actions=p1", "priority=10, ipv6, actions=p2"},
			in:    2, pkt: testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ipv6LabelUDP(true)},
			passes: []pass{{0, 20}}, verdict: loader.TCActRedirect, out: []uint32{1}},
		{name: "a bad TCP data offset is +inv",
			flows: []string{"ip, ct_state=-trk, actions=ct(table=1)", "table=1, ct_state=+inv+trk, actions=p3", "table=1, priority=1, actions=p2"},
			in:    1, pkt: testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "ip", IPProto: 6, Payload: make([]byte, 10)},
			passes: []pass{{0, 32768}, {1, 32768}}, verdict: loader.TCActRedirect, out: []uint32{3}, ct: csTrk | csInv},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			d.setFlows(c.flows...)
			frame := testenv.Build(c.pkt)
			res := d.run(c.in, frame)
			tr := &res.Trace
			if got := passes(tr); !slices.Equal(got, c.passes) {
				t.Errorf("passes = %v, want %v", got, c.passes)
			}
			if c.verdict != 0 || c.out != nil {
				if res.Verdict != c.verdict {
					t.Errorf("verdict = %d, want %d", res.Verdict, c.verdict)
				}
				if got := outPorts(tr); !slices.Equal(got, c.out) {
					t.Errorf("out = %v, want %v", got, c.out)
				}
			}
			if c.ct != 0 && tr.CtState != c.ct {
				t.Errorf("ct_state = %#x, want %#x", tr.CtState, c.ct)
			}
		})
	}
}

// TestAtomicFlowChanges swaps between two multi-table flow sets while
// packets run on the other CPU: each packet must see one whole set, never a
// table of one and a table of the other (which would show as a miss).
func TestAtomicFlowChanges(t *testing.T) {
	d := newDP(t)
	setA := []string{"table=0, ip, actions=resubmit(,1)", "table=1, priority=10, ip, actions=p2"}
	setB := []string{"table=0, ip, actions=resubmit(,2)", "table=2, priority=20, tcp, actions=p3", "table=2, priority=10, ip, actions=p3"}
	parse := func(lines []string) []*ofctl.Flow {
		var fs []*ofctl.Flow
		for _, l := range lines {
			f, err := ofctl.ParseFlow(l, d.pm)
			if err != nil {
				t.Fatal(err)
			}
			fs = append(fs, f)
		}
		return fs
	}
	a, b := parse(setA), parse(setB)
	d.setFlows(setA...)
	frame := testenv.Build(tcp("S", 40100, 80))
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			set := a
			if i%2 == 0 {
				set = b
			}
			if err := d.b.ReplaceFlows(set); err != nil {
				errc <- err
				return
			}
		}
	}()
	seen := map[string]int{}
	for i := 0; i < 3000; i++ {
		res := d.run(1, frame)
		out := fmt.Sprint(outPorts(&res.Trace))
		seen[out]++
		if out != "[2]" && out != "[3]" {
			close(stop)
			<-errc
			t.Fatalf("packet %d saw a half-changed flow table: lookups %v, out %v (after %v)", i, passes(&res.Trace), out, seen)
		}
	}
	close(stop)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if seen["[2]"] == 0 || seen["[3]"] == 0 {
		t.Fatalf("the swaps never showed both sets to packets: %v", seen)
	}
	t.Logf("outputs seen: %v", seen)
}

// TestFlowTimeouts: a flow past its hard_timeout, or idle longer than its
// idle_timeout, stops matching in the datapath by itself; a packet keeps
// an idle_timeout flow alive; the loader removes expired flows when it
// next reads the table. Time passes by ageFlow, not by sleeping.
func TestFlowTimeouts(t *testing.T) {
	d := newDP(t)
	before := monoNow(t)
	d.setFlows(
		"priority=100, hard_timeout=1, udp, tp_dst=1, actions=p3",
		"priority=100, idle_timeout=1, udp, tp_dst=2, actions=p3",
		"priority=0, actions=p2",
	)
	after := monoNow(t)
	hard, idle := d.flowID("tp_dst=1"), d.flowID("tp_dst=2")
	udp := func(dport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 9, DstPort: dport})
	}
	out := func(dport uint16) string { return fmt.Sprint(outPorts(&d.run(1, udp(dport)).Trace)) }

	// The loader stamps both at install: the hard deadline a second on,
	// the idle flow as used then.
	created, deadline, _ := d.flowTimes(hard)
	if created < before || created > after || deadline != created+uint64(time.Second) {
		t.Fatalf("hard_timeout=1 flow installed in [%d, %d]: created %d, deadline %d", before, after, created, deadline)
	}
	if _, _, used := d.flowTimes(idle); used < before || used > after {
		t.Fatalf("idle_timeout=1 flow installed in [%d, %d]: used %d", before, after, used)
	}

	// Half a second on, both match; the packet stamps the idle flow used.
	// Then 0.6 s more: the hard flow is past its second, the busy idle
	// one is not, and its packet stamps it again.
	for i, age := range []struct {
		by       time.Duration
		hardWant string
	}{{500 * time.Millisecond, "[3]"}, {600 * time.Millisecond, "[2]"}} {
		d.ageFlow(hard, age.by)
		d.ageFlow(idle, age.by)
		if got := out(1); got != age.hardWant {
			t.Errorf("step %d, %v later: the hard_timeout=1 flow, installed %v before: out %s, want %s",
				i, age.by, time.Duration(monoNow(t)-created)+age.by, got, age.hardWant)
		}
		sent := monoNow(t)
		if got := out(2); got != "[3]" {
			t.Fatalf("step %d, %v later: the busy idle_timeout=1 flow stopped matching: out %s", i, age.by, got)
		}
		if _, _, used := d.flowTimes(idle); used+uint64(coarseLag) < sent {
			t.Fatalf("step %d: a packet of the idle_timeout=1 flow at %d left it last used at %d: not refreshed", i, sent, used)
		}
	}
	// Idle for 1.1 s: it no longer matches, and the packet that missed it
	// does not refresh it.
	d.ageFlow(idle, 1100*time.Millisecond)
	_, _, used := d.flowTimes(idle)
	if got := out(2); got != "[2]" {
		t.Errorf("1.1 s idle, the idle_timeout=1 flow still matches: out %s", got)
	}
	if _, _, now := d.flowTimes(idle); now != used {
		t.Errorf("a packet refreshed the expired idle_timeout=1 flow: used %d, was %d", now, used)
	}
	flows, err := d.b.Flows()
	if err != nil {
		t.Fatal(err)
	}
	if len(flows) != 1 || flows[0].Priority != 0 {
		t.Errorf("expired flows were not removed when the loader read the table: %d flows", len(flows))
	}
}

// TestRewrite: actions that change the packet. The expected frame is built
// independently, so comparing bytes also checks every checksum.
func TestRewrite(t *testing.T) {
	d := newDP(t)
	base := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp",
		SrcPort: 40000, DstPort: 80, TCPFlags: "PA", Seq: 7, Ack: 9, TOS: 0x03, TTL: 64, Payload: []byte("hello")}
	udp := base
	udp.Proto, udp.TCPFlags, udp.Seq, udp.Ack = "udp", "", 0, 0
	with := func(p testenv.PacketSpec, f func(*testenv.PacketSpec)) testenv.PacketSpec { f(&p); return p }
	for _, c := range []struct {
		name  string
		flows []string
		in    testenv.PacketSpec
		want  testenv.PacketSpec
		out   []uint32
	}{
		{"mod_dl_src and mod_dl_dst", []string{"actions=mod_dl_src:02:aa:00:00:00:01,mod_dl_dst:02:bb:00:00:00:02,p2"}, base,
			with(base, func(p *testenv.PacketSpec) {
				p.SrcMAC = net.HardwareAddr{2, 0xaa, 0, 0, 0, 1}
				p.DstMAC = net.HardwareAddr{2, 0xbb, 0, 0, 0, 2}
			}), []uint32{2}},
		{"mod_nw_src on TCP", []string{"ip, actions=mod_nw_src:192.168.7.9,p2"}, base,
			with(base, func(p *testenv.PacketSpec) { p.SrcIP = net.IPv4(192, 168, 7, 9) }), []uint32{2}},
		{"mod_nw_dst on UDP", []string{"ip, actions=mod_nw_dst:172.16.0.1,p2"}, udp,
			with(udp, func(p *testenv.PacketSpec) { p.DstIP = net.IPv4(172, 16, 0, 1) }), []uint32{2}},
		{"mod_tp_src and mod_tp_dst on TCP", []string{"tcp, actions=mod_tp_src:1234,mod_tp_dst:8080,p2"}, base,
			with(base, func(p *testenv.PacketSpec) { p.SrcPort, p.DstPort = 1234, 8080 }), []uint32{2}},
		{"mod_tp_dst on UDP", []string{"udp, actions=mod_tp_dst:5353,p2"}, udp,
			with(udp, func(p *testenv.PacketSpec) { p.DstPort = 5353 }), []uint32{2}},
		{"mod_nw_tos keeps ECN", []string{"ip, actions=mod_nw_tos:32,p2"}, base,
			with(base, func(p *testenv.PacketSpec) { p.TOS = 0x23 }), []uint32{2}},
		{"dec_ttl", []string{"ip, actions=dec_ttl,p2"}, base,
			with(base, func(p *testenv.PacketSpec) { p.TTL = 63 }), []uint32{2}},
		{"mod_nw_ttl", []string{"ip, actions=mod_nw_ttl:9,p2"}, base,
			with(base, func(p *testenv.PacketSpec) { p.TTL = 9 }), []uint32{2}},
		{"dec_ttl at TTL 1 stops the packet", []string{"ip, actions=p3,dec_ttl,p2"},
			with(base, func(p *testenv.PacketSpec) { p.TTL = 1 }), with(base, func(p *testenv.PacketSpec) { p.TTL = 1 }), []uint32{3}},
		{"a resubmit sees the rewritten packet",
			[]string{"table=0, ip, nw_dst=10.0.10.2, actions=mod_nw_dst:10.0.10.3,resubmit(,1)", "table=1, priority=5, ip, nw_dst=10.0.10.3, actions=p3", "table=1, priority=1, ip, actions=p2"},
			base, with(base, func(p *testenv.PacketSpec) { p.DstIP = ip3 }), []uint32{3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			d.setFlows(c.flows...)
			res := d.run(1, testenv.Build(c.in))
			if got := outPorts(&res.Trace); !slices.Equal(got, c.out) {
				t.Fatalf("out %v, want %v", got, c.out)
			}
			want := testenv.Build(c.want)
			if !bytes.Equal(res.Packet, want) {
				t.Fatalf("packet\n% x\nwant\n% x", res.Packet, want)
			}
			if err := testenv.VerifyChecksums(res.Packet); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRewriteIPv6: set_field on ipv6_src, ipv6_dst (whole, masked, as
// subfield loads) and ipv6_label. Expected frames are built independently:
// equal bytes mean the TCP/UDP/ICMPv6 checksum followed the pseudo-header.
func TestRewriteIPv6(t *testing.T) {
	d := newDP(t)
	v6 := func(proto string, f func(*testenv.PacketSpec)) []byte {
		p := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
			Proto: proto, SrcPort: 40000, DstPort: 80, TOS: 0x03, Payload: []byte("hello")}
		switch proto {
		case "tcp":
			p.TCPFlags, p.Seq, p.Ack = "PA", 7, 9
		case "icmp6":
			p.ICMPType, p.ICMPID, p.ICMPSeq = 128, 5, 1
		}
		if f != nil {
			f(&p)
		}
		return testenv.Build(p)
	}
	src := func(a string) func(*testenv.PacketSpec) {
		return func(p *testenv.PacketSpec) { p.SrcIP = net.ParseIP(a) }
	}
	dst := func(a string) func(*testenv.PacketSpec) {
		return func(p *testenv.PacketSpec) { p.DstIP = net.ParseIP(a) }
	}
	label := func(b []byte, l uint32) []byte { // the label's 20 bits of the IPv6 header at 14
		b = slices.Clone(b)
		b[15] = b[15]&0xf0 | byte(l>>16)
		b[16], b[17] = byte(l>>8), byte(l)
		return b
	}
	tagged := func(p *testenv.PacketSpec) { p.VLAN = 10 }
	for _, c := range []struct {
		name     string
		flows    []string
		in, want []byte
		out      []uint32
	}{
		{"ipv6_src on TCP", []string{"ipv6, actions=set_field:2001:db8:1::9->ipv6_src,p2"},
			v6("tcp", nil), v6("tcp", src("2001:db8:1::9")), []uint32{2}},
		{"ipv6_dst on UDP", []string{"ipv6, actions=set_field:fd00::1:2:3:4->ipv6_dst,p2"},
			v6("udp", nil), v6("udp", dst("fd00::1:2:3:4")), []uint32{2}},
		{"ipv6_dst on ICMPv6 (pseudo-header too)", []string{"ipv6, actions=set_field:2001:db8::99->ipv6_dst,p2"},
			v6("icmp6", nil), v6("icmp6", dst("2001:db8::99")), []uint32{2}},
		{"ipv6_src masked: 48 high bits, two partial words", []string{"ipv6, actions=set_field:2001:db8:ffff::/ffff:ffff:ffff::->ipv6_src,p2"},
			v6("tcp", nil), v6("tcp", src("2001:db8:ffff::1")), []uint32{2}},
		{"load into a subfield of ipv6_dst", []string{"ipv6, actions=load:0xabcd->NXM_NX_IPV6_DST[0..15],p2"},
			v6("udp", nil), v6("udp", dst("2001:db8::abcd")), []uint32{2}},
		{"ipv6_src and ipv6_dst of a tagged packet", []string{"ipv6, actions=set_field:2001:db8::7->ipv6_src,set_field:2001:db8::8->ipv6_dst,p2"},
			v6("tcp", tagged), v6("tcp", func(p *testenv.PacketSpec) { tagged(p); src("2001:db8::7")(p); dst("2001:db8::8")(p) }), []uint32{2}},
		{"ipv6_label keeps the traffic class", []string{"ipv6, actions=set_field:0x12345->ipv6_label,p2"},
			v6("tcp", nil), label(v6("tcp", nil), 0x12345), []uint32{2}},
		{"ipv6_dst after a hop-by-hop header", []string{"ipv6, actions=set_field:2001:db8::3->ipv6_dst,p2"},
			hopByHopUDP("2001:db8::1", "2001:db8::2"), hopByHopUDP("2001:db8::1", "2001:db8::3"), []uint32{2}},
		{"a resubmit sees the rewritten address",
			[]string{"table=0, ipv6, actions=set_field:2001:db8::3->ipv6_dst,resubmit(,1)",
				"table=1, priority=5, ipv6, ipv6_dst=2001:db8::3, actions=p3", "table=1, priority=1, actions=p2"},
			v6("tcp", nil), v6("tcp", dst("2001:db8::3")), []uint32{3}},
		{"mod_tp_dst on IPv6 TCP (checksum)", []string{"tcp6, actions=mod_tp_dst:8080,p2"},
			v6("tcp", nil), v6("tcp", func(p *testenv.PacketSpec) { p.DstPort = 8080 }), []uint32{2}},
		{"mod_tp_src on IPv6 UDP after a hop-by-hop header", []string{"udp6, actions=mod_tp_src:7,p2"},
			hopByHopUDP("2001:db8::1", "2001:db8::2"), hopByHopUDPFrom(7, "2001:db8::1", "2001:db8::2"), []uint32{2}},
		{"mod_nw_tos on IPv6 keeps ECN", []string{"ipv6, actions=mod_nw_tos:0x28,p2"},
			v6("udp", nil), v6("udp", func(p *testenv.PacketSpec) { p.TOS = 0x2b }), []uint32{2}},
		{"dec_ttl on IPv6: the hop limit", []string{"ipv6, actions=dec_ttl,p2"},
			v6("tcp", nil), v6("tcp", func(p *testenv.PacketSpec) { p.TTL = 63 }), []uint32{2}},
		{"mod_nw_ttl on IPv6", []string{"ipv6, actions=mod_nw_ttl:9,p2"},
			v6("icmp6", nil), v6("icmp6", func(p *testenv.PacketSpec) { p.TTL = 9 }), []uint32{2}},
		{"a resubmit sees the rewritten label",
			[]string{"table=0, ipv6, actions=set_field:0x5->ipv6_label,resubmit(,1)",
				"table=1, priority=5, ipv6, ipv6_label=5, actions=p3", "table=1, priority=1, actions=p2"},
			v6("udp", nil), label(v6("udp", nil), 5), []uint32{3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			d.setFlows(c.flows...)
			res := d.run(1, c.in)
			if got := outPorts(&res.Trace); !slices.Equal(got, c.out) {
				t.Fatalf("out %v, want %v", got, c.out)
			}
			if !bytes.Equal(res.Packet, c.want) {
				t.Fatalf("packet\n% x\nwant\n% x", res.Packet, c.want)
			}
		})
	}
}

// hopByHopUDP is an Ethernet/IPv6 frame with a hop-by-hop options header
// and then UDP (port 9 to 53, "hi"), its checksum computed here.
func hopByHopUDP(src, dst string) []byte { return hopByHopUDPFrom(9, src, dst) }

// hopByHopUDPFrom is hopByHopUDP from UDP port sport.
func hopByHopUDPFrom(sport uint16, src, dst string) []byte {
	s, dd := net.ParseIP(src).To16(), net.ParseIP(dst).To16()
	udp := []byte{byte(sport >> 8), byte(sport), 0, 53, 0, 10, 0, 0, 'h', 'i'}
	ip := []byte{0x60, 0, 0, 0, 0, byte(8 + len(udp)), 0 /* hop-by-hop */, 64}
	ip = append(append(ip, s...), dd...)
	ip = append(ip, 17 /* UDP */, 0, 1, 4, 0, 0, 0, 0) // PadN option
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	add(s)
	add(dd)
	sum += uint32(len(udp)) + 17
	add(udp)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	cs := ^uint16(sum)
	udp[6], udp[7] = byte(cs>>8), byte(cs)
	eth := append(append(slices.Clone([]byte(mac2)), mac1...), 0x86, 0xdd)
	return append(append(eth, ip...), udp...)
}

// TestPktMark: pkt_mark is skb->mark. Flows match it and set_field, load
// and move change it: the key (later lookups) and the packet's mark.
func TestPktMark(t *testing.T) {
	d := newDP(t)
	for _, c := range []struct {
		name     string
		flows    []string
		mark     uint32 // skb->mark as the packet arrives
		out      []uint32
		wantMark uint32
	}{
		{"pkt_mark matches skb->mark", []string{"priority=10, pkt_mark=5, actions=p3", "priority=1, actions=p2"}, 5, []uint32{3}, 5},
		{"an unmarked packet does not match pkt_mark=5", []string{"priority=10, pkt_mark=5, actions=p3", "priority=1, actions=p2"}, 0, []uint32{2}, 0},
		{"pkt_mark masked", []string{"priority=10, pkt_mark=0x10/0xf0, actions=p3", "priority=1, actions=p2"}, 0x1f, []uint32{3}, 0x1f},
		{"pkt_mark masked, other bits", []string{"priority=10, pkt_mark=0x10/0xf0, actions=p3", "priority=1, actions=p2"}, 0x2f, []uint32{2}, 0x2f},
		{"set_field sets the mark; a resubmit matches it",
			[]string{"table=0, actions=set_field:0xab->pkt_mark,resubmit(,1)", "table=1, priority=10, pkt_mark=0xab, actions=p3", "table=1, priority=1, actions=p2"},
			0, []uint32{3}, 0xab},
		{"set_field with a mask keeps the other bits", []string{"actions=set_field:0x5/0xff->pkt_mark,p2"}, 0x1234, []uint32{2}, 0x1205},
		{"load into a subfield", []string{"actions=load:0x3->NXM_NX_PKT_MARK[8..9],p2"}, 0x10000, []uint32{2}, 0x10300},
		{"move from a register into pkt_mark",
			[]string{"table=0, actions=load:0x77->NXM_NX_REG1[],move:NXM_NX_REG1[]->NXM_NX_PKT_MARK[],resubmit(,1)",
				"table=1, priority=10, pkt_mark=0x77, actions=p3", "table=1, priority=1, actions=p2"},
			0, []uint32{3}, 0x77},
		{"move pkt_mark into a register, output to it", []string{"actions=move:NXM_NX_PKT_MARK[0..15]->NXM_NX_REG0[0..15],output:NXM_NX_REG0[0..15]"},
			3, []uint32{3}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			d.setFlows(c.flows...)
			var res *loader.TraceResult
			err := d.ns.Do(func() (err error) {
				res, err = d.b.RunTraceMark(testenv.Build(tcp("S", 40000, 80)), d.ifindex[1], false, c.mark)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := outPorts(&res.Trace); !slices.Equal(got, c.out) {
				t.Errorf("out %v, want %v", got, c.out)
			}
			if res.Mark != c.wantMark {
				t.Errorf("skb->mark %#x, want %#x", res.Mark, c.wantMark)
			}
		})
	}
}

// TestFlowCache: tables with several masks answer from the exact-match
// cache, and no cached answer survives a flow-table change or a timeout.
func TestFlowCache(t *testing.T) {
	d := newDP(t)
	masks := []string{ // three masks in table 0: the cache is used
		"priority=30, udp, nw_src=10.0.10.1, tp_dst=9, actions=p3",
		"priority=20, udp, tp_dst=9, actions=p2",
		"priority=10, ip, actions=p2",
	}
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 9})
	out := func() string { return fmt.Sprint(outPorts(&d.run(1, frame).Trace)) }
	d.setFlows(masks...)
	for i := 0; i < 3; i++ {
		if got := out(); got != "[3]" {
			t.Fatalf("run %d: out %s, want [3]", i, got)
		}
	}
	// A change of flows: the cached answer must not be used any more.
	if _, err := d.b.DelFlows(mustMatch(t, d, "priority=30, udp, nw_src=10.0.10.1, tp_dst=9"), true); err != nil {
		t.Fatal(err)
	}
	if got := out(); got != "[2]" {
		t.Fatalf("after deleting the cached flow: out %s, want [2]", got)
	}
	// A cached miss must not survive an added flow.
	d.setFlows("priority=30, tcp, actions=p3", "priority=20, udp, tp_dst=99, actions=p3", "priority=10, arp, actions=p3")
	if got := out(); got != "[]" {
		t.Fatalf("no flow matches: out %s", got)
	}
	if err := d.b.AddFlows([]*ofctl.Flow{mustFlow(t, d, "priority=5, udp, actions=p2")}); err != nil {
		t.Fatal(err)
	}
	if got := out(); got != "[2]" {
		t.Fatalf("a cached miss survived an added flow: out %s, want [2]", got)
	}
	// A cached flow past its hard_timeout stops matching: the cache holds
	// the flow with its deadline (ageFlow moves that copy too) and checks
	// it on every hit.
	d.setFlows("priority=30, hard_timeout=1, udp, tp_dst=9, actions=p3", "priority=20, tcp, actions=p2", "priority=10, ip, nw_src=10.0.0.0/8, actions=p2")
	for _, what := range []string{"first", "from the cache"} {
		if got := out(); got != "[3]" {
			t.Fatalf("%s: out %s, want [3]", what, got)
		}
	}
	d.ageFlow(d.flowID("hard_timeout=1"), 1100*time.Millisecond)
	if got := out(); got != "[2]" {
		t.Fatalf("a cached flow outlived its hard_timeout: out %s, want [2]", got)
	}
}

// TestFlowCacheKey: the cache keys on what the table's flows look at, so
// packets that differ only elsewhere (here the source port) share an entry.
func TestFlowCacheKey(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"priority=30, tcp, tp_dst=80, actions=p3",
		"priority=20, udp, actions=p2",
		"priority=10, ip, actions=p2",
	)
	for sport := uint16(1000); sport < 1010; sport++ {
		if got := outPorts(&d.run(1, testenv.Build(tcp("S", sport, 80))).Trace); !slices.Equal(got, []uint32{3}) {
			t.Fatalf("sport %d: out %v", sport, got)
		}
	}
	if n, err := d.b.FlowCacheEntries(); err != nil || n != 1 {
		t.Fatalf("ten source ports, no flow looking at them: %d cache entries (%v), want 1", n, err)
	}
	if got := outPorts(&d.run(1, testenv.Build(tcp("S", 1000, 81))).Trace); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("another destination port must not share the entry: out %v", got)
	}
}

func mustFlow(t *testing.T, d *dp, s string) *ofctl.Flow {
	t.Helper()
	f, err := ofctl.ParseFlow(s, d.pm)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mustMatch(t *testing.T, d *dp, s string) *ofctl.Flow {
	t.Helper()
	f, err := ofctl.ParseMatch(s, d.pm)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWideMatchRefused: a match spanning more key words than a subtable
// hashes is refused with a reason, and nothing is installed.
func TestWideMatchRefused(t *testing.T) {
	d := newDP(t)
	d.setFlows("priority=0 actions=NORMAL")
	wide := mustFlow(t, d, "in_port=p1,dl_src=02:00:00:00:0a:01,tcp,nw_src=10.0.10.1,tp_dst=80,ct_zone=1,metadata=1,reg0=1,reg2=1,actions=p2")
	err := d.b.AddFlows([]*ofctl.Flow{wide})
	if err == nil || !strings.Contains(err.Error(), "the match spans 9 8-byte words of the flow key; the datapath hashes at most 8 per mask") {
		t.Fatalf("a 9-word match: %v", err)
	}
	if fl, _ := d.b.Flows(); len(fl) != 1 {
		t.Fatalf("a refused flow changed the table: %d flows", len(fl))
	}
}

// TestFlowTableFull: a bridge made for N flows refuses the (N+1)th, and a
// batch that does not fit installs nothing.
func TestFlowTableFull(t *testing.T) {
	d := newDPSized(t, 64)
	d.setFlows("priority=0 actions=NORMAL")
	more := classifierFlows(t, 64, 4)
	err := d.b.AddFlows(more)
	if err == nil || !strings.Contains(err.Error(), "flow table full: at most 64 flows") {
		t.Fatalf("65 flows in a 64-flow bridge: %v", err)
	}
	if fl, err := d.b.Flows(); err != nil || len(fl) != 1 {
		t.Fatalf("a batch that did not fit changed the table: %d flows, %v", len(fl), err)
	}
	if err := d.b.AddFlows(more[:63]); err != nil {
		t.Fatalf("63 more flows must fit: %v", err)
	}
	res := d.run(1, benchFrame(net.IPv4(11, 0, 0, 5)))
	if got := outPorts(&res.Trace); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("a flow of the full table does not forward: out %v", got)
	}
}

// TestMalformedFrames runs every malformed frame of testenv through the
// trace program, the attached TC program (twice: a cache miss, then what
// it stored) and the XDP program, with flows that tell the outcomes apart:
// not IP (dropped in table 0), IP that conntrack finds invalid (+inv, to
// p3), IP that is a new connection (committed, to p2). Per frame: that
// outcome, whether the parser counted it truncated, and that only a new
// connection was committed. Frames BPF_PROG_TEST_RUN refuses go through
// a real port in ctl's TestTapLab.
func TestMalformedFrames(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"priority=10, ip, ct_state=-trk, actions=ct(table=1)",
		"priority=0, actions=drop",
		"table=1, priority=10, ct_state=+trk+inv, actions=p3",
		"table=1, priority=5, ip, ct_state=+trk+new, actions=ct(commit),p2",
	)
	const (
		notIP = iota
		invalid
		committed
	)
	want := map[string]struct {
		outcome   int
		truncated bool
	}{
		testenv.MalVLANTruncated:     {notIP, true},
		testenv.MalIPv4IHLLessThan5:  {invalid, true},
		testenv.MalIPv4IHLPastEnd:    {invalid, true},
		testenv.MalIPv4TotLenPastEnd: {invalid, true},
		testenv.MalIPv4TotLenLessIHL: {invalid, true},
		testenv.MalIPv4BadVersion:    {invalid, true},
		// The IPv4 header checksum is not checked (the kernel's stack
		// checked it before netfilter; OVS's kernel datapath neither).
		testenv.MalIPv4BadChecksum:   {committed, false},
		testenv.MalTCPDataOffLess5:   {invalid, true},
		testenv.MalTCPDataOffPastEnd: {invalid, true},
		testenv.MalTCPTruncated:      {invalid, true},
		testenv.MalUDPTruncated:      {invalid, true},
		testenv.MalUDPLenPastEnd:     {invalid, false}, // nf_conntrack's udp_error
		testenv.MalICMPTruncated:     {invalid, true},
		testenv.MalARPTruncated:      {notIP, true},
		testenv.MalIPv4FragMF:        {invalid, false}, // fragments: not tracked
		testenv.MalIPv4FragOffset:    {invalid, false},
		testenv.MalIPv4Options:       {committed, false},
	}
	seen := map[string]bool{}
	for name, frame := range testenv.MalformedFrames() {
		t.Run(name, func(t *testing.T) {
			d.t = t
			if len(frame) < 14 {
				t.Skipf("%d bytes: BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header", len(frame))
			}
			w, ok := want[name]
			// Two frames are the same SYN: each starts with an empty table.
			if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
				t.Fatal(err)
			}
			truncBefore, invBefore, conns := d.counter("truncated"), d.counter("ct_invalid"), 0
			var res *loader.TraceResult
			err := d.ns.Do(func() (err error) {
				res, err = d.b.RunTrace(frame, d.ifindex[1], false)
				return err
			})
			if errors.Is(err, unix.EINVAL) && !ok {
				// The kernel checks IP frames before running the program;
				// ctl's TestTapLab sends these through a real port.
				t.Skipf("BPF_PROG_TEST_RUN refuses this %d-byte frame: %v", len(frame), err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				t.Fatalf("no expectation for this frame (passes %v out %v ct_state %#x)", passes(&res.Trace), outPorts(&res.Trace), res.Trace.CtState)
			}
			seen[name] = true
			wantVerdict, wantOut, wantInv, wantConns := uint32(loader.TCActShot), []uint32(nil), uint64(0), conns
			switch w.outcome {
			case invalid:
				wantVerdict, wantOut, wantInv = loader.TCActRedirect, []uint32{3}, 1
			case committed:
				wantVerdict, wantOut, wantConns = loader.TCActRedirect, []uint32{2}, conns+1
			}
			if res.Verdict != wantVerdict || !slices.Equal(outPorts(&res.Trace), wantOut) {
				t.Errorf("verdict %d out %v, want %d out %v (ct_state %#x, passes %v)",
					res.Verdict, outPorts(&res.Trace), wantVerdict, wantOut, res.Trace.CtState, passes(&res.Trace))
			}
			if got := d.counter("truncated") - truncBefore; got != map[bool]uint64{true: 1}[w.truncated] {
				t.Errorf("truncated moved by %d, want it counted: %v", got, w.truncated)
			}
			if got := d.counter("ct_invalid") - invBefore; got != wantInv {
				t.Errorf("ct_invalid moved by %d, want %d", got, wantInv)
			}
			if got := len(d.conns()); got != wantConns {
				t.Errorf("%d connections, want %d", got, wantConns)
			}
			// The attached programs' stages too: the TC entry with the
			// cache (twice: a miss, then what it stored) and XDP's, with
			// the same verdict; nothing more is committed.
			for i := 0; i < 2; i++ {
				if v := d.ingress(1, frame); v != wantVerdict {
					t.Errorf("tc_ingress, run %d: verdict %d, want %d", i+1, v, wantVerdict)
				}
			}
			// XDP: TC's verdict, counted truncated as TC counts it. XDP's
			// own walk (xdp_walk) finishes each of these frames: none is
			// passed on to TC.
			wantXDP := uint32(loader.XDPRedirect)
			if wantVerdict == loader.TCActShot {
				wantXDP = loader.XDPDrop
			}
			truncBefore, toTCBefore := d.counter("truncated"), d.counter("xdp_to_tc")
			if v := d.runXDP(1, frame); v != wantXDP {
				t.Errorf("xdp_ingress: verdict %d, want %d", v, wantXDP)
			}
			if got := d.counter("xdp_to_tc") - toTCBefore; got != 0 {
				t.Errorf("xdp_to_tc moved by %d: XDP passed the frame on to TC", got)
			}
			if got := d.counter("truncated") - truncBefore; got != map[bool]uint64{true: 1}[w.truncated] {
				t.Errorf("xdp_ingress: truncated moved by %d, want it counted: %v", got, w.truncated)
			}
			if got := len(d.conns()); got != wantConns {
				t.Errorf("after tc_ingress and xdp_ingress: %d connections, want %d", got, wantConns)
			}
		})
	}
	d.t = t
	for name := range want {
		if !seen[name] {
			t.Errorf("%s: no such frame in testenv.MalformedFrames, or it did not run", name)
		}
	}
	if n := d.counter("stage_fail"); n != 0 {
		t.Errorf("stage_fail = %d: a stage's tail call failed", n)
	}
}

// TestMACLearning: NORMAL learns where a MAC lives and stops flooding to it.
func TestMACLearning(t *testing.T) {
	d := newDP(t)
	d.setFlows("priority=0 actions=NORMAL")
	uni := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 2}
	if got := outPorts(&d.run(1, testenv.Build(uni)).Trace); !slices.Equal(got, []uint32{2, 3}) {
		t.Fatalf("unknown destination: out %v, want flood [2 3]", got)
	}
	back := testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: 2, DstPort: 1}
	if got := outPorts(&d.run(2, testenv.Build(back)).Trace); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("learned destination: out %v, want [1]", got)
	}
	if got := outPorts(&d.run(1, testenv.Build(uni)).Trace); !slices.Equal(got, []uint32{2}) {
		t.Fatalf("learned destination: out %v, want [2]", got)
	}
	// A MAC that moves is relearned.
	moved := back
	if got := outPorts(&d.run(3, testenv.Build(moved)).Trace); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("from port 3: out %v, want [1]", got)
	}
	if got := outPorts(&d.run(1, testenv.Build(uni)).Trace); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("after the move: out %v, want [3]", got)
	}
	// Never back out of the in_port: a frame to a MAC learned on its own port is dropped.
	self := testenv.PacketSpec{SrcMAC: mac3, DstMAC: mac2, SrcIP: ip3, DstIP: ip2, Proto: "udp", SrcPort: 3, DstPort: 2}
	if res := d.run(3, testenv.Build(self)); res.Verdict != loader.TCActShot {
		t.Fatalf("destination on the in_port: verdict %d out %v, want drop", res.Verdict, outPorts(&res.Trace))
	}
}

// TestUncommittedStaysNew: without commit, nothing is stored and every
// packet of the connection is +new.
func TestUncommittedStaysNew(t *testing.T) {
	d := newDP(t)
	d.setFlows("ip, ct_state=-trk, actions=ct(table=1)", "table=1, ip, actions=p2")
	for i, f := range []string{"S", "A", "PA"} {
		res := d.run(1, testenv.Build(tcp(f, 41000, 80)))
		want := uint32(csTrk | csNew)
		if f != "S" {
			want = csTrk | csNew // an ACK without a connection is picked up mid-stream as new (nf_conntrack_tcp_loose)
		}
		if res.Trace.CtState != want {
			t.Errorf("packet %d (%s): ct_state %#x, want %#x", i, f, res.Trace.CtState, want)
		}
	}
	if c := d.conns(); len(c) != 0 {
		t.Fatalf("conntrack has %d entries, want none: %v", len(c), c)
	}
}

func format(c []loader.Conn) []string {
	var out []string
	for i := range c {
		out = append(out, c[i].Format(dpctl.FormatOptions{}))
	}
	return out
}

// tcpSession makes the segments of one TCP connection between VM1 (the
// client, port 1) and VM2 (the server, port 2) with consistent sequence
// and acknowledgement numbers, as conntrack's window tracking expects.
type tcpSession struct {
	next, last [2]uint32 // per side: next sequence number, last one sent
	ip         [2]net.IP // per side: its address (ip1, ip2 unless set)
}

const (
	client = 0
	server = 1
)

func newTCPSession() *tcpSession {
	return &tcpSession{next: [2]uint32{1000, 5000}, last: [2]uint32{1000, 5000}, ip: [2]net.IP{ip1, ip2}}
}

// seg makes a segment from side with flags ("S", "SA", "A", "PA" carries 10
// bytes, "FA", "R"...). retrans resends the side's last sequence number.
func (s *tcpSession) seg(side int, flags string, retrans bool) (uint32, []byte) {
	seq := s.next[side]
	if retrans {
		seq = s.last[side]
	}
	spec := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: s.ip[client], DstIP: s.ip[server], Proto: "tcp",
		SrcPort: 42000, DstPort: 5000, TCPFlags: flags, Seq: seq}
	if side == server {
		spec = testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: s.ip[server], DstIP: s.ip[client], Proto: "tcp",
			SrcPort: 5000, DstPort: 42000, TCPFlags: flags, Seq: seq}
	}
	if strings.Contains(flags, "A") {
		spec.Ack = s.next[1-side]
	}
	n := uint32(0)
	if strings.Contains(flags, "P") {
		spec.Payload = make([]byte, 10)
		n = 10
	}
	if strings.Contains(flags, "S") {
		n++
	}
	if strings.Contains(flags, "F") {
		n++
	}
	s.last[side] = seq
	if !retrans {
		s.next[side] = seq + n
	}
	return uint32(side + 1), testenv.Build(spec)
}

// TestConntrackTCPStates walks connections through nf_conntrack's TCP
// states, with window tracking, and checks each packet's ct_state and the
// state stored after it (gone: the connection was removed).
func TestConntrackTCPStates(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit),NORMAL",
		"table=1, priority=5, ip, ct_state=+trk, actions=NORMAL",
	)
	type step struct {
		side    int
		flags   string
		retrans bool
		ct      uint32
		state   bpf.DatapathTcpCtState
	}
	const (
		SS   = bpf.DatapathTcpCtStateTCP_CT_SYN_SENT
		SR   = bpf.DatapathTcpCtStateTCP_CT_SYN_RECV
		ES   = bpf.DatapathTcpCtStateTCP_CT_ESTABLISHED
		FW   = bpf.DatapathTcpCtStateTCP_CT_FIN_WAIT
		CW   = bpf.DatapathTcpCtStateTCP_CT_CLOSE_WAIT
		LA   = bpf.DatapathTcpCtStateTCP_CT_LAST_ACK
		TW   = bpf.DatapathTcpCtStateTCP_CT_TIME_WAIT
		CL   = bpf.DatapathTcpCtStateTCP_CT_CLOSE
		S2   = bpf.DatapathTcpCtStateTCP_CT_SYN_SENT2
		gone = bpf.DatapathTcpCtState(0xff)
	)
	run := func(t *testing.T, sess *tcpSession, steps []step) {
		if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
			t.Fatal(err)
		}
		for i, s := range steps {
			in, frame := sess.seg(s.side, s.flags, s.retrans)
			res := d.run(in, frame)
			if res.Trace.CtState != s.ct {
				t.Errorf("step %d (%s from port %d): ct_state %#x, want %#x", i, s.flags, in, res.Trace.CtState, s.ct)
			}
			conns := d.conns()
			if s.state == gone {
				if len(conns) != 0 {
					t.Errorf("step %d (%s): connection still there, want it removed", i, s.flags)
				}
				continue
			}
			if len(conns) != 1 {
				t.Fatalf("step %d (%s): %d connections, want 1", i, s.flags, len(conns))
			}
			if conns[0].KernelTCPState != s.state {
				t.Errorf("step %d (%s from port %d): state %d, want %d", i, s.flags, in, conns[0].KernelTCPState, s.state)
			}
		}
	}
	t.Run("open, transfer, close", func(t *testing.T) {
		d.t = t
		sess := newTCPSession()
		run(t, sess, []step{
			{client, "S", false, csTrk | csNew, SS},
			{client, "S", true, csTrk | csNew, SS}, // retransmitted SYN
			{server, "SA", false, csTrk | csEst | csRpl, SR},
			{client, "A", false, csTrk | csEst, ES},
			{server, "PA", false, csTrk | csEst | csRpl, ES},
			{client, "PA", false, csTrk | csEst, ES},
			{client, "FA", false, csTrk | csEst, FW},
			{server, "A", false, csTrk | csEst | csRpl, CW},
			{server, "FA", false, csTrk | csEst | csRpl, LA},
			{client, "A", false, csTrk | csEst, TW},
		})
		// A new SYN reopens the TIME_WAIT connection: it is new again.
		sess.next[client] += 100000
		run2 := []step{{client, "S", false, csTrk | csNew, SS}}
		in, frame := sess.seg(run2[0].side, run2[0].flags, false)
		if res := d.run(in, frame); res.Trace.CtState != csTrk|csNew {
			t.Errorf("SYN to TIME_WAIT: ct_state %#x, want new", res.Trace.CtState)
		}
		if got, want := format(d.conns()), []string{"tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=42000,dport=5000),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5000,dport=42000),protoinfo=(state=SYN_SENT)"}; !slices.Equal(got, want) {
			t.Errorf("dump = %q, want %q", got, want)
		}
	})
	t.Run("reset", func(t *testing.T) {
		d.t = t
		run(t, newTCPSession(), []step{
			{client, "S", false, csTrk | csNew, SS},
			{server, "SA", false, csTrk | csEst | csRpl, SR},
			{client, "A", false, csTrk | csEst, ES},
			{server, "R", false, csTrk | csEst | csRpl, CL},
		})
		if got := format(d.conns()); !strings.HasSuffix(got[0], "protoinfo=(state=CLOSING)") {
			t.Errorf("dump = %q, want state CLOSING", got)
		}
	})
	t.Run("a RST as the only answer removes the connection", func(t *testing.T) {
		d.t = t
		run(t, newTCPSession(), []step{
			{client, "S", false, csTrk | csNew, SS},
			{server, "R", false, csTrk | csEst | csRpl, gone},
		})
	})
	t.Run("simultaneous open", func(t *testing.T) {
		d.t = t
		run(t, newTCPSession(), []step{
			{client, "S", false, csTrk | csNew, SS},
			{server, "S", false, csTrk | csEst | csRpl, S2},
			{client, "SA", true, csTrk | csEst, SR},
			{server, "SA", true, csTrk | csEst | csRpl, SR}, // sIG: tracked, state kept
			{client, "A", false, csTrk | csEst, ES},
		})
	})
	t.Run("invalid segments do not change the state", func(t *testing.T) {
		d.t = t
		run(t, newTCPSession(), []step{
			{client, "S", false, csTrk | csNew, SS},
			{client, "A", false, csTrk | csInv, SS},  // ACK before the SYN-ACK
			{client, "FA", false, csTrk | csInv, SS}, // FIN before the handshake
			{client, "SF", false, csTrk | csInv, SS}, // SYN+FIN is never valid
		})
	})
	t.Run("ignored segments are tracked without a state change", func(t *testing.T) {
		d.t = t
		sess := newTCPSession()
		run(t, sess, []step{
			{client, "S", false, csTrk | csNew, SS},
			{server, "A", false, csTrk | csEst | csRpl, SS}, // a bare ACK from the server: sIG, accepted
			{client, "S", true, csTrk | csEst, SS},          // the reply was seen: +est from now on
			{server, "SA", false, csTrk | csEst | csRpl, SR},
			{client, "A", false, csTrk | csEst, ES},
			{server, "SA", true, csTrk | csEst | csRpl, ES}, // a late SYN-ACK: sIG
		})
	})
	t.Run("window tracking", func(t *testing.T) {
		d.t = t
		sess := newTCPSession()
		run(t, sess, []step{
			{client, "S", false, csTrk | csNew, SS},
			{server, "SA", false, csTrk | csEst | csRpl, SR},
			{client, "A", false, csTrk | csEst, ES},
			{client, "PA", false, csTrk | csEst, ES},
		})
		// Data far beyond the receiver's window is invalid and changes nothing.
		sess.next[client] += 10000000
		in, frame := sess.seg(client, "PA", false)
		if res := d.run(in, frame); res.Trace.CtState != csTrk|csInv {
			t.Errorf("data 10 MB beyond the window: ct_state %#x, want +inv", res.Trace.CtState)
		}
		sess.next[client] -= 10000000 + 10 // back to where the connection is
		// An ACK for data the server never sent is invalid.
		saved := sess.next[server]
		sess.next[server] += 50000
		in, frame = sess.seg(client, "A", false)
		if res := d.run(in, frame); res.Trace.CtState != csTrk|csInv {
			t.Errorf("ACK of data not seen: ct_state %#x, want +inv", res.Trace.CtState)
		}
		sess.next[server] = saved
		// Old data, far behind what the server acked, is ignored: tracked
		// (+est) but changes nothing -- Linux 6.1's "SEQ is under the lower bound".
		sess.next[client] -= 200000
		in, frame = sess.seg(client, "PA", false)
		if res := d.run(in, frame); res.Trace.CtState != csTrk|csEst {
			t.Errorf("retransmitted old data: ct_state %#x, want +est (ignored)", res.Trace.CtState)
		}
		if c := d.conns(); len(c) != 1 || c[0].KernelTCPState != ES {
			t.Errorf("the connection after out-of-window packets: %v", c)
		}
		// be_liberal: the same out-of-window data is accepted.
		if err := d.b.SetTCPLiberal(true); err != nil {
			t.Fatal(err)
		}
		defer d.b.SetTCPLiberal(false)
		sess.next[client] += 10000000
		in, frame = sess.seg(client, "PA", false)
		if res := d.run(in, frame); res.Trace.CtState != csTrk|csEst {
			t.Errorf("be_liberal, data beyond the window: ct_state %#x, want +est", res.Trace.CtState)
		}
	})
}

// TestConntrackTimeouts: a zone's timeout policy shortens its connections'
// lives; an expired connection never matches and a new packet is +new.
func TestConntrackTimeouts(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, ip, ct_state=-trk, actions=ct(zone=5,table=1)",
		"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit,zone=5),NORMAL",
		"table=1, priority=5, ip, ct_state=+trk, actions=NORMAL",
	)
	set, err := loader.ParseTimeouts([]string{"udp_first=1", "tcp_syn_sent=1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.b.SetCTTimeouts(5, set); err != nil {
		t.Fatal(err)
	}
	udp := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: 9})
	d.run(1, udp)
	if res := d.run(1, udp); res.Trace.CtState != csTrk|csNew {
		t.Fatalf("second packet: ct_state %#x", res.Trace.CtState)
	}
	z := uint16(5)
	if c, _ := d.b.Conntrack(&z); len(c) != 1 || c[0].Timeout > time.Second {
		t.Fatalf("zone 5: %d connections, timeout %v, want 1 with at most 1 s", len(c), c)
	}
	// 1.2 s on (ageConns, not a sleep): the dump leaves it out, and its
	// ct_gc removed it (a counter that moved).
	removed := d.counter("ct_expired_removed")
	d.ageConns(1200 * time.Millisecond)
	if c, _ := d.b.Conntrack(&z); len(c) != 0 {
		t.Fatalf("after 1.2 s, with udp_first=1: %d connections, want none", len(c))
	}
	if got := d.counter("ct_expired_removed"); got != removed+1 {
		t.Errorf("ct_expired_removed went from %d to %d: the expired connection was not removed", removed, got)
	}
	// Back to the defaults: 30 s.
	if err := d.b.SetCTTimeouts(5, map[string]uint32{"udp_first": 0, "tcp_syn_sent": 0}); err != nil {
		t.Fatal(err)
	}
	d.run(1, udp)
	if c, _ := d.b.Conntrack(&z); len(c) != 1 || c[0].Timeout < 29*time.Second {
		t.Fatalf("default timeout: %v", c)
	}
	if _, err := loader.ParseTimeouts([]string{"tcp_bogus=1"}); err == nil || !strings.Contains(err.Error(), "unknown timeout") {
		t.Fatalf("unknown name: %v", err)
	}
}

// TestConntrackMarkLabelForceRelated: ct_mark and ct_label set by
// ct(commit, exec(...)) on the connection, seen by both directions and
// matched; ct(force); ICMP errors related to a connection.
func TestConntrackMarkLabelForceRelated(t *testing.T) {
	d := newDP(t)
	udp := func(in uint32, sp, dp uint16) []byte {
		src, dst := ip1, ip2
		if in == 2 {
			src, dst = ip2, ip1
		}
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "udp", SrcPort: sp, DstPort: dp})
	}
	t.Run("mark and label", func(t *testing.T) {
		d.t = t
		d.setFlows(
			"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
			"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit,exec(set_field:0x2a->ct_mark,set_field:0x1020304->ct_label),table=2)",
			"table=1, priority=5, ip, ct_state=+trk+est, actions=resubmit(,2)",
			"table=2, priority=20, ip, ct_mark=42, ct_label=0x1020304, actions=p3",
			"table=2, priority=5, ip, actions=in_port",
		)
		if got := outPorts(&d.run(1, udp(1, 1000, 53)).Trace); !slices.Equal(got, []uint32{3}) {
			t.Fatalf("the committing packet, recirculated: out %v, want [3] (ct_mark and ct_label set)", got)
		}
		if got := outPorts(&d.run(2, udp(2, 53, 1000)).Trace); !slices.Equal(got, []uint32{3}) {
			t.Fatalf("the reply: out %v, want [3] (the connection's mark and label)", got)
		}
		want := []string{"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=1000,dport=53),reply=(src=10.0.10.2,dst=10.0.10.1,sport=53,dport=1000),mark=42,labels=0x1020304"}
		if got := format(d.conns()); !slices.Equal(got, want) {
			t.Fatalf("dump %q, want %q", got, want)
		}
		mark := dpctl.Filter{}
		if f, err := dpctl.ParseFilter([]string{"mark=0x2a/0xff"}); err == nil {
			mark = f
		} else {
			t.Fatal(err)
		}
		if n, err := d.b.FlushConntrack(mark); err != nil || n != 1 {
			t.Fatalf("flush mark=0x2a/0xff: %d, %v", n, err)
		}
	})
	t.Run("exec moves from packet fields", func(t *testing.T) {
		d.t = t
		// The source port into ct_mark's bits 8..23; the source MAC across
		// two label words (bits 16..63), the IPv4 source into bits 96..127.
		d.setFlows(
			"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
			"table=1, priority=10, udp, ct_state=+trk+new, actions=ct(commit,exec(move:NXM_OF_UDP_SRC[]->NXM_NX_CT_MARK[8..23],move:NXM_OF_ETH_SRC[]->NXM_NX_CT_LABEL[16..63],move:NXM_OF_IP_SRC[]->NXM_NX_CT_LABEL[96..127]),table=2)",
			"table=1, priority=5, ip, ct_state=+trk+est, actions=resubmit(,2)",
			"table=2, priority=20, ip, ct_mark=0x4d200, ct_label=0x0a000a0100000000020000000a010000, actions=p3",
			"table=2, priority=5, ip, actions=in_port",
		)
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		if got := outPorts(&d.run(1, udp(1, 1234, 53)).Trace); !slices.Equal(got, []uint32{3}) {
			t.Fatalf("the committing packet, recirculated: out %v, want [3] (ct_mark and ct_label moved from the packet)", got)
		}
		if got := outPorts(&d.run(2, udp(2, 53, 1234)).Trace); !slices.Equal(got, []uint32{3}) {
			t.Fatalf("the reply: out %v, want [3] (the connection's mark and label)", got)
		}
		want := []string{"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=1234,dport=53),reply=(src=10.0.10.2,dst=10.0.10.1,sport=53,dport=1234),mark=315904,labels=0xa000a0100000000020000000a010000"}
		if got := format(d.conns()); !slices.Equal(got, want) {
			t.Fatalf("dump %q, want %q", got, want)
		}
	})
	t.Run("force", func(t *testing.T) {
		d.t = t
		d.setFlows(
			"table=0, ip, ct_state=-trk, actions=ct(table=1)",
			"table=1, in_port=p1, ip, actions=ct(commit),p2",
			"table=1, in_port=p2, ip, ct_state=+trk+rpl, actions=ct(commit,force),p1",
		)
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.run(1, udp(1, 2000, 53))
		// The reply is +est+rpl at the first ct(); ct(commit,force) then
		// replaces the connection, so the packet ends up +new.
		res := d.run(2, udp(2, 53, 2000))
		if got := passes(&res.Trace); len(got) != 2 || res.Trace.Lookup[1].CtState != csTrk|csEst|csRpl {
			t.Fatalf("the reply's lookups: %v", res.Trace.Lookup[:res.Trace.Nlookups])
		}
		if res.Trace.CtState != csTrk|csNew {
			t.Fatalf("after ct(commit,force): ct_state %#x, want new", res.Trace.CtState)
		}
		want := []string{"udp,orig=(src=10.0.10.2,dst=10.0.10.1,sport=53,dport=2000),reply=(src=10.0.10.1,dst=10.0.10.2,sport=2000,dport=53)"}
		if got := format(d.conns()); !slices.Equal(got, want) {
			t.Fatalf("after ct(force): %q, want the connection re-opened by VM2: %q", got, want)
		}
	})
	t.Run("related", func(t *testing.T) {
		d.t = t
		d.setFlows(
			"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
			"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit),NORMAL",
			"table=1, priority=5, ip, ct_state=+trk, actions=NORMAL",
		)
		d.run(1, testenv.Build(tcp("S", 43000, 5000)))
		quote := func(spec testenv.PacketSpec) []byte { return testenv.Build(spec)[14 : 14+28] }
		icmpErr := func(src, dst net.IP, inner testenv.PacketSpec) []byte {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: src, DstIP: dst, Proto: "icmp",
				ICMPType: 3, ICMPCode: 3, Payload: quote(inner)})
		}
		synToServer := tcp("S", 43000, 5000)
		back := testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "tcp", SrcPort: 5000, DstPort: 43000, TCPFlags: "SA"}
		for _, c := range []struct {
			name  string
			in    uint32
			frame []byte
			ct    uint32
		}{
			{"an error about VM1's packet, back to VM1", 2, icmpErr(ip2, ip1, synToServer), csTrk | 0x04 | csRpl},
			{"an error about VM2's packet, to VM2", 1, icmpErr(ip1, ip2, back), csTrk | 0x04},
			{"an error about no connection", 2, icmpErr(ip2, ip1, tcp("S", 43999, 5000)), csTrk | csInv},
		} {
			if res := d.run(c.in, c.frame); res.Trace.CtState != c.ct {
				t.Errorf("%s: ct_state %#x, want %#x", c.name, res.Trace.CtState, c.ct)
			}
		}
		if got := len(d.conns()); got != 1 {
			t.Errorf("related packets changed the table: %d connections: %q", got, format(d.conns()))
		}
	})
}

// TestConntrackUDPAndICMP: UDP and ICMP echo connections, both directions,
// as dump-conntrack prints them.
func TestConntrackUDPAndICMP(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit),NORMAL",
		"table=1, priority=5, ip, ct_state=+trk, actions=NORMAL",
		"table=0, priority=10, ipv6, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, ipv6, ct_state=+trk+new, actions=ct(commit),NORMAL",
		"table=1, priority=5, ipv6, ct_state=+trk, actions=NORMAL",
	)
	udp := func(src, dst net.IP, sp, dp uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "udp", SrcPort: sp, DstPort: dp})
	}
	icmp := func(src, dst net.IP, typ uint8) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "icmp", ICMPType: typ, ICMPID: 4242, ICMPSeq: 1})
	}
	steps := []struct {
		in    uint32
		frame []byte
		ct    uint32
	}{
		{1, udp(ip1, ip2, 3333, 53), csTrk | csNew},
		{1, udp(ip1, ip2, 3333, 53), csTrk | csNew},
		{2, udp(ip2, ip1, 53, 3333), csTrk | csEst | csRpl},
		{1, udp(ip1, ip2, 3333, 53), csTrk | csEst},
		{2, icmp(ip2, ip1, 0), csTrk | csInv}, // an echo reply nobody asked for
		{1, icmp(ip1, ip2, 8), csTrk | csNew},
		{2, icmp(ip2, ip1, 0), csTrk | csEst | csRpl},
		{2, icmp(ip2, ip1, 3), csTrk | csInv}, // ICMP errors: related comes later
	}
	for i, s := range steps {
		if res := d.run(s.in, s.frame); res.Trace.CtState != s.ct {
			t.Errorf("step %d: ct_state %#x, want %#x", i, res.Trace.CtState, s.ct)
		}
	}
	want := []string{
		"icmp,orig=(src=10.0.10.1,dst=10.0.10.2,id=4242,type=8,code=0),reply=(src=10.0.10.2,dst=10.0.10.1,id=4242,type=0,code=0)",
		"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=3333,dport=53),reply=(src=10.0.10.2,dst=10.0.10.1,sport=53,dport=3333)",
	}
	if got := format(d.conns()); !slices.Equal(got, want) {
		t.Errorf("dump:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// IPv6: TCP and ICMPv6 echo, printed as OVS prints them.
	v6a, v6b := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	v6tcp := func(src, dst net.IP, sp, dp uint16, flags string) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "tcp", SrcPort: sp, DstPort: dp, TCPFlags: flags})
	}
	icmp6 := func(src, dst net.IP, typ uint8) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "icmp6", ICMPType: typ, ICMPID: 77, ICMPSeq: 1})
	}
	for i, s := range []struct {
		in    uint32
		frame []byte
		ct    uint32
	}{
		{1, v6tcp(v6b, v6a, 5555, 22, "S"), csTrk | csNew}, // the higher address opens: the key is canonical either way
		{2, v6tcp(v6a, v6b, 22, 5555, "SA"), csTrk | csEst | csRpl},
		{1, v6tcp(v6b, v6a, 5555, 22, "A"), csTrk | csEst},
		{2, icmp6(v6b, v6a, 129), csTrk | csInv},
		{1, icmp6(v6a, v6b, 128), csTrk | csNew},
		{2, icmp6(v6b, v6a, 129), csTrk | csEst | csRpl},
	} {
		if res := d.run(s.in, s.frame); res.Trace.CtState != s.ct {
			t.Errorf("IPv6 step %d: ct_state %#x, want %#x", i, res.Trace.CtState, s.ct)
		}
	}
	// Dumps are ordered by zone, protocol number, then addresses.
	v6tcpLine := "tcp,orig=(src=2001:db8::2,dst=2001:db8::1,sport=5555,dport=22),reply=(src=2001:db8::1,dst=2001:db8::2,sport=22,dport=5555),protoinfo=(state=ESTABLISHED)"
	icmp6Line := "icmpv6,orig=(src=2001:db8::1,dst=2001:db8::2,id=77,type=128,code=0),reply=(src=2001:db8::2,dst=2001:db8::1,id=77,type=129,code=0)"
	want = []string{want[0], v6tcpLine, want[1], icmp6Line}
	if got := format(d.conns()); !slices.Equal(got, want) {
		t.Errorf("dump:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f6, err := dpctl.ParseFilter([]string{"ct_ipv6_src=2001:db8::2,ct_nw_proto=6"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.b.FlushConntrack(f6); err != nil || n != 1 {
		t.Fatalf("flush by IPv6 tuple: %d, %v", n, err)
	}

	// Zones keep connections apart; dump and flush select by zone.
	d.setFlows(
		"table=0, priority=10, ip, ct_state=-trk, actions=ct(zone=9,table=1)",
		"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit,zone=9),NORMAL",
	)
	if res := d.run(1, udp(ip1, ip2, 3333, 53)); res.Trace.CtState != csTrk|csNew {
		t.Errorf("zone 9: ct_state %#x, want new: the zone-0 connection must not be seen", res.Trace.CtState)
	}
	zone := uint16(9)
	z, err := d.b.Conntrack(&zone)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := format(z), []string{"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=3333,dport=53),reply=(src=10.0.10.2,dst=10.0.10.1,sport=53,dport=3333),zone=9"}; !slices.Equal(got, want) {
		t.Errorf("zone 9 dump = %q, want %q", got, want)
	}
	if n, err := d.b.FlushConntrack(dpctl.Filter{Zone: &zone}); err != nil || n != 1 {
		t.Fatalf("flush zone 9: %d, %v", n, err)
	}
	if got := len(d.conns()); got != 3 {
		t.Errorf("after flushing zone 9: %d connections, want the 3 left in zone 0", got)
	}
}

// TestConntrackOrigTuple: ct_nw_src, ct_nw_dst, ct_ipv6_src, ct_ipv6_dst,
// ct_nw_proto, ct_tp_src and ct_tp_dst after a ct(table=N) pass are the
// connection's original-direction tuple, as OVS's kernel datapath reports
// them: a new packet's own, the originator's for a reply, the quoted
// connection's for a related ICMP error, an ICMP echo's type and code in
// the ports for both directions; 0 after ct_clear. Each flow that matches
// a tuple has its own priority (the pass's) and port; a higher flow
// matching what a wrong tuple would hold (the packet's own, for a reply)
// catches a mistake.
func TestConntrackOrigTuple(t *testing.T) {
	d := newDP(t)
	type step struct {
		name  string
		in    uint32
		frame []byte
		ct    uint32 // the ct_state of the pass in table 1
		prio  int    // the flow that matched there
		out   []uint32
	}
	run := func(t *testing.T, steps []step) {
		t.Helper()
		for _, s := range steps {
			res := d.run(s.in, s.frame)
			p := passes(&res.Trace)
			if len(p) < 2 || p[1] != (pass{1, s.prio}) || res.Trace.Lookup[1].CtState != s.ct {
				t.Errorf("%s: passes %v (ct_state %#x), want table 1 priority %d (ct_state %#x)", s.name, p, res.Trace.Lookup[1].CtState, s.prio, s.ct)
			}
			if got := outPorts(&res.Trace); !slices.Equal(got, s.out) {
				t.Errorf("%s: out %v, want %v", s.name, got, s.out)
			}
		}
	}
	const csRel = 0x04
	ct := "table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)"

	t.Run("TCP: original direction, reply, new", func(t *testing.T) {
		d.t = t
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.setFlows(ct,
			// (c) the first packet, not committed yet at this pass: its own tuple.
			"table=1, priority=100, tcp, ct_state=+new+trk, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=6, ct_tp_src=42000, ct_tp_dst=5000, actions=ct(commit),p2",
			// (a) the original direction, established.
			"table=1, priority=90, tcp, ct_state=+est+trk-rpl, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=6, ct_tp_src=42000, ct_tp_dst=5000, actions=p2",
			// (b) the reply: still the originator's tuple.
			"table=1, priority=91, tcp, ct_state=+est+rpl+trk, ct_nw_src=10.0.10.0/24, ct_nw_dst=10.0.10.2, ct_nw_proto=6, ct_tp_src=0xa400/0xff00, ct_tp_dst=5000, actions=p1",
			// What the reply's own tuple would match.
			"table=1, priority=200, ip, ct_state=+trk-inv, ct_nw_src=10.0.10.2, actions=p3",
			"table=1, priority=201, ip, ct_state=+trk-inv, ct_nw_dst=10.0.10.1, actions=p3",
			"table=1, priority=202, ip, ct_state=+trk-inv, ct_nw_proto=6, ct_tp_src=5000, actions=p3",
			"table=1, priority=203, ip, ct_state=+trk-inv, ct_nw_proto=6, ct_tp_dst=42000, actions=p3",
			"table=1, priority=1, ip, actions=drop",
		)
		s := newTCPSession()
		seg := func(side int, flags string) (uint32, []byte) { return s.seg(side, flags, false) }
		in, syn := seg(client, "S")
		steps := []step{{"SYN", in, syn, csTrk | csNew, 100, []uint32{2}}}
		in, synack := seg(server, "SA")
		steps = append(steps, step{"SYN-ACK", in, synack, csTrk | csEst | csRpl, 91, []uint32{1}})
		in, ack := seg(client, "A")
		steps = append(steps, step{"ACK", in, ack, csTrk | csEst, 90, []uint32{2}})
		in, data := seg(server, "PA")
		steps = append(steps, step{"server data", in, data, csTrk | csEst | csRpl, 91, []uint32{1}})
		run(t, steps)
	})

	t.Run("new and never committed: the packet's own tuple, either way", func(t *testing.T) {
		d.t = t
		d.setFlows(ct,
			"table=1, priority=100, udp, ct_state=+new+trk, ct_nw_src=10.0.10.2, ct_nw_dst=10.0.10.1, ct_nw_proto=17, ct_tp_src=53, ct_tp_dst=3333, actions=p3",
			"table=1, priority=90, udp, ct_state=+new+trk, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=17, ct_tp_src=3333, ct_tp_dst=53, actions=p2",
			"table=1, priority=1, ip, actions=drop",
		)
		udp := func(src, dst net.IP, sp, dp uint16) []byte {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: src, DstIP: dst, Proto: "udp", SrcPort: sp, DstPort: dp})
		}
		run(t, []step{
			{"from VM2", 2, udp(ip2, ip1, 53, 3333), csTrk | csNew, 100, []uint32{3}},
			{"from VM2 again", 2, udp(ip2, ip1, 53, 3333), csTrk | csNew, 100, []uint32{3}},
			{"from VM1", 1, udp(ip1, ip2, 3333, 53), csTrk | csNew, 90, []uint32{2}},
		})
		if c := d.conns(); len(c) != 0 {
			t.Errorf("%d connections, want none", len(c))
		}
	})

	t.Run("move from the tuple into registers (a reply)", func(t *testing.T) {
		d.t = t
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.setFlows(ct,
			"table=1, priority=100, udp, ct_state=+new+trk, actions=ct(commit),p2",
			"table=1, priority=90, ip, ct_state=+est+trk, actions=move:NXM_NX_CT_NW_SRC[]->NXM_NX_REG0[],move:NXM_NX_CT_NW_DST[]->NXM_NX_REG1[],"+
				"move:NXM_NX_CT_TP_SRC[]->NXM_NX_REG2[16..31],move:NXM_NX_CT_TP_DST[]->NXM_NX_REG2[0..15],move:NXM_NX_CT_NW_PROTO[]->NXM_NX_REG3[8..15],"+
				"move:NXM_NX_CT_IPV6_SRC[32..63]->NXM_NX_REG4[],resubmit(,2)",
			// 10.0.10.1, 10.0.10.2; 3334, 53; 17; the IPv6 slot's word 1 (0 for IPv4).
			"table=2, priority=10, reg0=0x0a000a01, reg1=0x0a000a02, reg2=0x0d060035, reg3=0x1100, reg4=0, actions=p3",
			"table=2, priority=1, actions=drop",
		)
		udp := func(in uint32) []byte {
			if in == 2 {
				return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: 53, DstPort: 3334})
			}
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 3334, DstPort: 53})
		}
		run(t, []step{
			{"request", 1, udp(1), csTrk | csNew, 100, []uint32{2}},
			{"reply", 2, udp(2), csTrk | csEst | csRpl, 90, []uint32{3}},
			{"request again", 1, udp(1), csTrk | csEst, 90, []uint32{3}},
		})
	})

	t.Run("ICMP echo: type and code of the request, both ways", func(t *testing.T) {
		d.t = t
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.setFlows(ct,
			"table=1, priority=100, icmp, ct_state=+new+trk, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=1, ct_tp_src=8, ct_tp_dst=0, actions=ct(commit),p2",
			"table=1, priority=91, icmp, ct_state=+est+rpl+trk, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=1, ct_tp_src=8, ct_tp_dst=0, actions=p1",
			"table=1, priority=90, icmp, ct_state=+est+trk-rpl, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=1, ct_tp_src=8, ct_tp_dst=0, actions=p2",
			// The reply's own type (0), or addresses.
			"table=1, priority=200, ip, ct_state=+trk-inv, ct_nw_proto=1, ct_tp_src=0, actions=p3",
			"table=1, priority=201, ip, ct_state=+trk-inv, ct_nw_src=10.0.10.2, actions=p3",
			"table=1, priority=1, ip, actions=drop",
		)
		icmp := func(src, dst net.IP, typ uint8) []byte {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: dst, Proto: "icmp", ICMPType: typ, ICMPID: 4243, ICMPSeq: 1})
		}
		run(t, []step{
			{"echo request", 1, icmp(ip1, ip2, 8), csTrk | csNew, 100, []uint32{2}},
			{"echo reply", 2, icmp(ip2, ip1, 0), csTrk | csEst | csRpl, 91, []uint32{1}},
			{"echo request again", 1, icmp(ip1, ip2, 8), csTrk | csEst, 90, []uint32{2}},
		})
	})

	t.Run("a related ICMP error: the quoted connection's original tuple", func(t *testing.T) {
		d.t = t
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.setFlows(ct,
			"table=1, priority=100, tcp, ct_state=+new+trk, actions=ct(commit),p2",
			"table=1, priority=90, icmp, ct_state=+rel+trk, ct_nw_src=10.0.10.1, ct_nw_dst=10.0.10.2, ct_nw_proto=6, ct_tp_src=43000, ct_tp_dst=5000, actions=p3",
			// The error's own protocol, its own addresses.
			"table=1, priority=200, ip, ct_state=+trk-inv, ct_nw_proto=1, actions=p1",
			"table=1, priority=201, ip, ct_state=+rel+rpl+trk, ct_nw_src=10.0.10.2, actions=p1",
			"table=1, priority=1, ip, actions=drop",
		)
		quote := func(spec testenv.PacketSpec) []byte { return testenv.Build(spec)[14 : 14+28] }
		icmpErr := func(src, dst net.IP, inner testenv.PacketSpec) []byte {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: src, DstIP: dst, Proto: "icmp",
				ICMPType: 3, ICMPCode: 3, Payload: quote(inner)})
		}
		syn := tcp("S", 43000, 5000)
		back := testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "tcp", SrcPort: 5000, DstPort: 43000, TCPFlags: "SA"}
		run(t, []step{
			{"SYN", 1, testenv.Build(syn), csTrk | csNew, 100, []uint32{2}},
			{"an error about VM1's packet, back to VM1", 2, icmpErr(ip2, ip1, syn), csTrk | csRel | csRpl, 90, []uint32{3}},
			{"the same again", 2, icmpErr(ip2, ip1, syn), csTrk | csRel | csRpl, 90, []uint32{3}},
			{"an error about VM2's packet, to VM2", 1, icmpErr(ip1, ip2, back), csTrk | csRel, 90, []uint32{3}},
		})
	})

	t.Run("IPv6: ct_ipv6_src and ct_ipv6_dst", func(t *testing.T) {
		d.t = t
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		d.setFlows("table=0, priority=10, ipv6, ct_state=-trk, actions=ct(table=1)",
			// ipv6, not tcp6: with nw_proto the match would span 9 key words.
			"table=1, priority=100, ipv6, ct_state=+new+trk, ct_ipv6_src=2001:db8::1, ct_ipv6_dst=2001:db8::2, ct_nw_proto=6, ct_tp_src=44000, ct_tp_dst=80, actions=ct(commit),p2",
			"table=1, priority=91, ipv6, ct_state=+est+rpl+trk, ct_ipv6_src=2001:db8::/64, ct_ipv6_dst=2001:db8::2, ct_nw_proto=6, ct_tp_src=44000, ct_tp_dst=80, actions=p1",
			"table=1, priority=200, ipv6, ct_state=+trk-inv, ct_ipv6_src=2001:db8::2, actions=p3",
			"table=1, priority=201, ipv6, ct_state=+trk-inv, ct_ipv6_dst=2001:db8::1, actions=p3",
			"table=1, priority=1, ipv6, actions=drop",
		)
		a, b := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
		syn := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: a, DstIP: b, Proto: "tcp", SrcPort: 44000, DstPort: 80, TCPFlags: "S", Seq: 1000}
		synack := testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: b, DstIP: a, Proto: "tcp", SrcPort: 80, DstPort: 44000, TCPFlags: "SA", Seq: 5000, Ack: 1001}
		run(t, []step{
			{"SYN", 1, testenv.Build(syn), csTrk | csNew, 100, []uint32{2}},
			{"SYN-ACK", 2, testenv.Build(synack), csTrk | csEst | csRpl, 91, []uint32{1}},
		})
	})

	t.Run("after ct_clear the tuple is 0", func(t *testing.T) {
		d.t = t
		// The moves read the tuple after ct_clear (or, for the control
		// flow, without it); table 2 says whether all of it was 0.
		moves := "move:NXM_NX_CT_NW_SRC[]->NXM_NX_REG0[],move:NXM_NX_CT_NW_DST[]->NXM_NX_REG1[],move:NXM_NX_CT_TP_SRC[]->NXM_NX_REG2[16..31]," +
			"move:NXM_NX_CT_TP_DST[]->NXM_NX_REG2[0..15],move:NXM_NX_CT_NW_PROTO[]->NXM_NX_REG3[0..7],move:NXM_NX_CT_IPV6_SRC[96..127]->NXM_NX_REG4[],resubmit(,2)"
		for _, c := range []struct {
			name  string
			clear string
			prio  int
		}{{"with ct_clear", "ct_clear,", 10}, {"without", "", 1}} {
			d.setFlows(ct,
				"table=1, priority=100, tcp, ct_state=+new+trk, actions="+c.clear+moves,
				"table=2, priority=10, reg0=0, reg1=0, reg2=0, reg3=0, reg4=0, actions=p3",
				"table=2, priority=1, actions=p2",
			)
			res := d.run(1, testenv.Build(tcp("S", 45000, 80)))
			if p := passes(&res.Trace); len(p) != 3 || p[2] != (pass{2, c.prio}) {
				t.Errorf("%s: passes %v, want table 2 priority %d", c.name, p, c.prio)
			}
		}
	})
}

// TestRecircOwnResult: each ct(table=N) copy keeps its own conntrack
// result, as OVS's recirculated clone keeps its skb's connection: a ct()
// of the copy in its zone reuses it, though the packet was tracked in
// another zone since. (The copies shared one result, and each re-tracked
// the packet: a connection counted 3 packets for 2.)
func TestRecircOwnResult(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, udp, ct_state=-trk, actions=ct(zone=1,table=1),ct(zone=2,table=2)",
		"table=1, udp, ct_state=+trk, ct_zone=1, actions=ct(zone=1,commit),p2",
		"table=2, udp, ct_state=+trk, ct_zone=2, actions=ct(zone=2,commit),p3",
	)
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 5000, DstPort: 53})
	for i := 0; i < 2; i++ {
		if got := outPorts(&d.run(1, frame).Trace); !slices.Equal(got, []uint32{2, 3}) {
			t.Fatalf("packet %d: out %v, want [2 3]", i, got)
		}
	}
	conns := d.conns()
	if len(conns) != 2 {
		t.Fatalf("connections: %v", format(conns))
	}
	for _, c := range conns {
		if c.Packets[0] != 2 {
			t.Errorf("zone %d: %d packets, want 2 (each tracked once): %v", c.Zone, c.Packets[0], format(conns))
		}
	}
}
