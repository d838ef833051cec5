package bpf_test

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// runXDP runs xdp_ingress on frame as received on port in, on CPU 0, where
// the exact-match cache of the TC runs before it is (runTC, ingress).
func (d *dp) runXDP(in uint32, frame []byte) uint32 {
	d.t.Helper()
	var verdict uint32
	d.onCPU0(func() (err error) {
		verdict, err = d.b.RunXDP(frame, d.ifindex[in])
		return err
	})
	return verdict
}

// setMTU sets the MTU of port in's device (a jumbo frame comes in only
// through a device whose MTU lets it: xdp_ingress passes longer ones to
// TC, bpf/xdp.h's xdp_oversized).
func (d *dp) setMTU(in uint32, mtu int) {
	d.t.Helper()
	h := d.ns.MustHandle(d.t)
	l, err := h.LinkByIndex(d.ifindex[in])
	if err == nil {
		err = h.LinkSetMTU(l, mtu)
	}
	if err != nil {
		d.t.Fatalf("port %d: MTU %d: %v", in, mtu, err)
	}
}

// txCounts reads every port's tx packet counter.
func (d *dp) txCounts() map[uint32]uint64 {
	d.t.Helper()
	ports, err := d.b.Ports()
	if err != nil {
		d.t.Fatal(err)
	}
	out := map[uint32]uint64{}
	for _, p := range ports {
		out[p.OFPort] = p.Stats.TxPackets
	}
	return out
}

// TestXDP runs xdp_ingress with BPF_PROG_TEST_RUN: which flow tables it
// carries out itself (the verdict, and the port counters show where the
// packet went), and which it leaves to TC untouched.
func TestXDP(t *testing.T) {
	d := newDP(t)
	arp := testenv.Build(testenv.PacketSpec{Proto: "arp", SrcMAC: mac1, DstMAC: bcast, SrcIP: ip1, DstIP: ip2})
	udp := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 2})
	syn := testenv.Build(tcp("S", 40000, 5000))

	for _, tc := range []struct {
		name    string
		flows   []string
		in      uint32
		frame   []byte
		verdict uint32
		tx      []uint32 // ports whose tx counter went up by one
		toTC    bool     // passed to TC before any state changed
	}{
		{"NORMAL floods a broadcast", []string{"priority=0 actions=NORMAL"}, 1, arp, loader.XDPRedirect, []uint32{2, 3}, false},
		{"FLOOD", []string{"actions=FLOOD"}, 2, udp, loader.XDPRedirect, []uint32{1, 3}, false},
		{"one output", []string{"in_port=1, actions=output:3"}, 1, udp, loader.XDPRedirect, []uint32{3}, false},
		{"output:REG", []string{"in_port=1, actions=load:2->NXM_NX_REG0[],output:NXM_NX_REG0[]"}, 1, udp, loader.XDPRedirect, []uint32{2}, false},
		{"resubmit then output", []string{"in_port=1, actions=resubmit(,1)", "table=1, actions=output:2"}, 1, udp, loader.XDPRedirect, []uint32{2}, false},
		{"the lab's flows, a SYN", labFlows, 1, syn, loader.XDPRedirect, []uint32{2}, false},
		{"no match: drop", []string{"in_port=2, actions=output:1"}, 1, udp, loader.XDPDrop, nil, false},
		{"output to the in_port is dropped", []string{"actions=output:1"}, 1, udp, loader.XDPDrop, nil, false},
		{"in_port", []string{"actions=in_port"}, 1, udp, loader.XDPRedirect, []uint32{1}, false},
		{"a rewrite anywhere: TC", []string{"in_port=1, actions=output:2", "in_port=3, actions=mod_dl_src:02:00:00:00:00:09,output:1"}, 1, udp, loader.XDPPass, nil, true},
		{"two outputs in a flow: TC", []string{"actions=output:2,output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"output and resubmit in a flow: TC", []string{"actions=output:2,resubmit(,1)", "table=1, actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"a pkt_mark match: TC", []string{"pkt_mark=5, actions=output:2", "actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"set_field to pkt_mark: TC", []string{"actions=set_field:5->pkt_mark,output:2"}, 1, udp, loader.XDPPass, nil, true},
		{"output and ct(table=N) in a flow: TC", []string{"ip, actions=ct(table=1),output:2", "table=1, actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.setFlows(tc.flows...)
			if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
				t.Fatal(err)
			}
			before, toTC, xdp := d.txCounts(), d.counter("xdp_to_tc"), d.counter("xdp_packets")
			if got := d.runXDP(tc.in, tc.frame); got != tc.verdict {
				t.Fatalf("verdict %d, want %d", got, tc.verdict)
			}
			after := d.txCounts()
			want := maps.Clone(before)
			for _, p := range tc.tx {
				want[p]++
			}
			if !maps.Equal(after, want) {
				t.Errorf("tx counters %v -> %v, want %v", before, after, want)
			}
			if got := d.counter("xdp_to_tc") - toTC; got != map[bool]uint64{true: 1}[tc.toTC] {
				t.Errorf("xdp_to_tc went up by %d", got)
			}
			if got := d.counter("xdp_packets") - xdp; got != map[bool]uint64{false: 1}[tc.toTC] {
				t.Errorf("xdp_packets went up by %d", got)
			}
			if tc.toTC && len(d.conns()) != 0 {
				t.Errorf("passed to TC but conntrack changed: %v", d.conns())
			}
		})
	}
	// The lab's SYN committed its connection in XDP.
	d.setFlows(labFlows...)
	d.runXDP(1, syn)
	if got := format(d.conns()); len(got) != 1 {
		t.Fatalf("after the SYN through XDP: %v, want one connection", got)
	}
}

// xdpFastFlows: a stateful firewall whose table needs TC (one flow
// rewrites), so XDP walks nothing and only its fast path carries packets:
// TCP and UDP connections from p1 committed and answered, a policy that
// drops new connections to port 22 (a SYN flood's target), and a
// stateless flow.
var xdpFastFlows = []string{
	"table=0, priority=100, ip, nw_tos=4, actions=mod_nw_tos:8,p3",
	"table=0, priority=20, udp, tp_dst=9, actions=p3",
	"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
	"table=1, priority=30, tcp, tp_dst=22, ct_state=+trk+new, actions=drop",
	"table=1, priority=20, ip, in_port=p1, ct_state=+trk+new, actions=ct(commit),p2",
	"table=1, priority=10, in_port=p1, ct_state=+trk+est-rpl, actions=p2",
	"table=1, priority=10, in_port=p2, ct_state=+trk+est+rpl, actions=p1",
}

// TestXDPFastPath: the same traffic through TC alone and through XDP mode
// (XDP's fast path, TC for what it passes on) leaves the same flow, port
// and connection counters and the same connection table, and the fast
// path carries what it is for: an established TCP connection's segments,
// a UDP exchange, a SYN flood dropped by policy, a stateless flow.
func TestXDPFastPath(t *testing.T) {
	tcOnly, xdp := newDP(t), newDP(t)
	for _, d := range []*dp{tcOnly, xdp} {
		d.setFlows(xdpFastFlows...)
	}
	type pkt struct {
		what  string
		in    uint32
		frame []byte
	}
	var pkts []pkt
	s := newTCPSession()
	for _, st := range []struct {
		side  int
		flags string
	}{{client, "S"}, {server, "SA"}, {client, "A"}, {client, "PA"}, {server, "A"}, {client, "PA"}, {server, "PA"},
		{client, "A"}, {client, "PA"}, {server, "A"}, {client, "FA"}, {server, "FA"}, {client, "A"}} {
		in, frame := s.seg(st.side, st.flags, false)
		pkts = append(pkts, pkt{"tcp " + st.flags, in, frame})
	}
	udp := func(fromP1 bool, dport uint16) []byte {
		if fromP1 {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 4000, DstPort: dport, Payload: make([]byte, 30)})
		}
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: dport, DstPort: 4000, Payload: make([]byte, 60)})
	}
	for i := 0; i < 4; i++ {
		pkts = append(pkts, pkt{"udp query", 1, udp(true, 53)}, pkt{"udp answer", 2, udp(false, 53)})
		pkts = append(pkts, pkt{"stateless udp", 1, udp(true, 9)})
	}
	for i := 0; i < 8; i++ {
		syn := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp",
			SrcPort: uint16(30000 + i), DstPort: 22, TCPFlags: "S", Seq: 7})
		pkts = append(pkts, pkt{"syn flood", 1, syn})
	}

	fast := map[string]int{}
	for _, p := range pkts {
		tcOnly.ingress(p.in, p.frame)
		if _, f := xdp.sendXDP(p.in, p.frame); f {
			fast[p.what]++
		}
	}
	t.Logf("finished in XDP: %v", fast)

	if a, b := tcOnly.flowPackets(), xdp.flowPackets(); !slices.Equal(a, b) {
		t.Errorf("flow n_packets: TC %v, XDP mode %v", a, b)
	}
	portStats := func(d *dp) map[uint32]bpf.DatapathPortCounts {
		ports, err := d.b.Ports()
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint32]bpf.DatapathPortCounts{}
		for _, p := range ports {
			out[p.OFPort] = p.Stats
		}
		return out
	}
	if a, b := portStats(tcOnly), portStats(xdp); !maps.Equal(a, b) {
		t.Errorf("port counters: TC %+v, XDP mode %+v", a, b)
	}
	conns := func(d *dp) []string {
		var out []string
		for _, c := range d.conns() {
			out = append(out, fmt.Sprintf("%s packets %v bytes %v", c.Format(dpctl.FormatOptions{}), c.Packets, c.Bytes))
		}
		return out
	}
	if a, b := conns(tcOnly), conns(xdp); !slices.Equal(a, b) {
		t.Errorf("connections:\nTC   %v\nXDP  %v", a, b)
	}
	// The first packet of each kind takes a walk (TC's, stored; a commit
	// is never stored: the first query's); the rest are XDP's: the data
	// and ACKs of the established connection, the exchange, the flood,
	// the stateless flow.
	for what, min := range map[string]int{"tcp A": 2, "tcp PA": 3, "udp query": 2, "udp answer": 3, "stateless udp": 3, "syn flood": 7} {
		if fast[what] < min {
			t.Errorf("%s: %d packets finished in XDP, want at least %d", what, fast[what], min)
		}
	}
}

// TestXDPMultiBuffer: a jumbo frame, which XDP sees in several buffers
// (the program is xdp.frags), is parsed from its first buffer and counted
// whole, walked and then replayed from the cache: forwarded both times,
// and the in_port's rx counters go up by the whole frame. (TC's test run
// takes no frame over a page.)
func TestXDPMultiBuffer(t *testing.T) {
	d := newDP(t)
	d.setMTU(1, 9000-14)
	d.setFlows("priority=10, in_port=p1, udp, actions=p2")
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp",
		SrcPort: 5, DstPort: 6, Payload: make([]byte, 9000-42)})
	if len(frame) != 9000 {
		t.Fatalf("frame of %d bytes", len(frame))
	}
	rx := func() (uint64, uint64) {
		ports, err := d.b.Ports()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if p.OFPort == 1 {
				return p.Stats.RxPackets, p.Stats.RxBytes
			}
		}
		t.Fatal("no port 1")
		return 0, 0
	}
	for i, run := range []struct {
		what string
		do   func() bool // whether it forwarded
	}{
		{"xdp_ingress: the walk", func() bool { return d.runXDP(1, frame) == loader.XDPRedirect }},
		{"xdp_ingress: the cache", func() bool { return d.runXDP(1, frame) == loader.XDPRedirect }},
	} {
		p0, b0 := rx()
		if !run.do() {
			t.Errorf("%s: not forwarded", run.what)
		}
		if p1, b1 := rx(); p1 != p0+1 || b1 != b0+9000 {
			t.Errorf("%s: rx %d packets %d bytes more, want 1 and 9000", run.what, p1-p0, b1-b0)
		}
		if i == 1 && d.counter("xdp_fast") == 0 {
			t.Errorf("%s: not XDP's fast path", run.what)
		}
	}
	// Longer than its device's MTU allows (MTU + Ethernet + a VLAN tag):
	// a GSO packet in generic XDP, which no XDP redirect can carry. Passed
	// to TC untouched: nothing counted but xdp_to_tc.
	d.setMTU(1, 9000-14-4-1)
	p0, b0 := rx()
	toTC := d.counter("xdp_to_tc")
	if v := d.runXDP(1, frame); v != loader.XDPPass {
		t.Errorf("over the MTU: verdict %d, want XDP_PASS", v)
	}
	if p1, b1 := rx(); p1 != p0 || b1 != b0 || d.counter("xdp_to_tc") != toTC+1 {
		t.Errorf("over the MTU: rx %d packets %d bytes more, xdp_to_tc %d more; want 0, 0 and 1", p1-p0, b1-b0, d.counter("xdp_to_tc")-toTC)
	}
	// At the limit (a tagged frame of the MTU): XDP's.
	d.setMTU(1, 9000-14-4)
	if v := d.runXDP(1, frame); v != loader.XDPRedirect {
		t.Errorf("at the MTU with a tag's allowance: verdict %d, want a redirect", v)
	}
}

// TestXDPMalformedMultiBuffer: malformed jumbo frames, which XDP sees in
// several buffers, get what their malformation gets from conntrack in
// TC: an IPv4 total length past the frame's end (truncated, +inv), a UDP
// length past it (+inv), and, as the control, a well-formed one
// (committed). Lengths are checked against the whole frame, not its
// first buffer.
func TestXDPMalformedMultiBuffer(t *testing.T) {
	d := newDP(t)
	d.setMTU(1, 9000-14)
	d.setFlows(
		"priority=10, ip, ct_state=-trk, actions=ct(table=1)",
		"priority=0, actions=drop",
		"table=1, priority=10, ct_state=+trk+inv, actions=p3",
		"table=1, priority=5, ip, ct_state=+trk+new, actions=ct(commit),p2",
	)
	jumbo := func(sport uint16, edit func(f []byte)) []byte {
		f := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp",
			SrcPort: sport, DstPort: 53, Payload: make([]byte, 9000-42)})
		edit(f)
		return f
	}
	be16 := func(f []byte, off int, v uint16) { f[off], f[off+1] = byte(v>>8), byte(v) }
	for _, c := range []struct {
		name      string
		frame     []byte
		out       uint32 // p3: +inv, p2: committed
		truncated bool
	}{
		{"IPv4 total length past the end", jumbo(6001, func(f []byte) { be16(f, 14+2, 9100) }), 3, true},
		{"UDP length past the end", jumbo(6002, func(f []byte) { be16(f, 14+20+4, 9000) }), 3, false},
		{"well-formed", jumbo(6003, func([]byte) {}), 2, false},
	} {
		trunc, tx := d.counter("truncated"), d.txCounts()
		if v := d.runXDP(1, c.frame); v != loader.XDPRedirect {
			t.Errorf("%s: verdict %d, want a redirect to p%d", c.name, v, c.out)
			continue
		}
		if got := d.txCounts(); got[c.out] != tx[c.out]+1 {
			t.Errorf("%s: p%d tx %d -> %d, want one more", c.name, c.out, tx[c.out], got[c.out])
		}
		if got := d.counter("truncated") - trunc; got != map[bool]uint64{true: 1}[c.truncated] {
			t.Errorf("%s: truncated moved by %d", c.name, got)
		}
	}
	if n := len(d.conns()); n != 1 {
		t.Errorf("%d connections, want the well-formed frame's one", n)
	}
}
