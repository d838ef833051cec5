package bpf_test

import (
	"net"
	"testing"

	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestConntrackBytes: a connection's byte counters count what
// nf_conntrack_acct counts (and OVS's kernel datapath and `conntrack -L -o
// extended` show): the IP packet, its header on -- IPv4's total length,
// IPv6's payload length + 40 --, neither the Ethernet header nor a VLAN
// tag, nor the padding of a short frame (the kernel trims the skb to the IP
// length before conntrack). TestCTDiff compares the counters with the
// kernel's on untagged frames; the tagged ones here it cannot send (its
// router takes untagged frames only). Each case's frame opens a connection
// of its own, and a second frame the other way answers it.
func TestConntrackBytes(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, ip, ct_state=-trk, actions=ct(table=1)",
		"table=0, priority=10, ipv6, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, ip, ct_state=+trk+new, actions=ct(commit),p2",
		"table=1, priority=10, ipv6, ct_state=+trk+new, actions=ct(commit),p2",
		"table=1, priority=5, actions=p2",
	)
	ip61, ip62 := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	for _, c := range []struct {
		name        string
		spec        testenv.PacketSpec // the client's; the reply swaps addresses and ports
		reply       string             // the reply's TCP flags, or its ICMP type ("0", "129")
		frame, want int                // the frame's length and the bytes counted, each way
	}{
		{"ipv4 tcp syn", testenv.PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: 41000, DstPort: 80, TCPFlags: "S", Seq: 1},
			"SA", 14 + 40, 40},
		{"ipv4 tcp with ip options", testenv.PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: 41001, DstPort: 80, TCPFlags: "S", Seq: 1,
			IPOptions: []byte{1, 1, 1, 0}}, "SA", 14 + 44, 44},
		{"ipv4 udp", testenv.PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 41002, DstPort: 53, Payload: make([]byte, 100)},
			"", 14 + 128, 128},
		{"ipv4 icmp echo", testenv.PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "icmp", ICMPType: 8, ICMPID: 7, Payload: make([]byte, 56)},
			"0", 14 + 84, 84},
		{"ipv6 tcp syn", testenv.PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "tcp", SrcPort: 41003, DstPort: 80, TCPFlags: "S", Seq: 1},
			"SA", 14 + 60, 60},
		{"ipv6 udp", testenv.PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "udp", SrcPort: 41004, DstPort: 53, Payload: make([]byte, 100)},
			"", 14 + 148, 148},
		{"ipv6 icmpv6 echo", testenv.PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "icmpv6", ICMPType: 128, ICMPID: 7, Payload: make([]byte, 56)},
			"129", 14 + 104, 104},
		{"vlan-tagged ipv4 udp", testenv.PacketSpec{VLAN: 10, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 41005, DstPort: 53, Payload: make([]byte, 100)},
			"", 18 + 128, 128},
		{"vlan-tagged ipv6 tcp syn", testenv.PacketSpec{VLAN: 10, SrcIP: ip61, DstIP: ip62, Proto: "tcp", SrcPort: 41006, DstPort: 80, TCPFlags: "S", Seq: 1},
			"SA", 18 + 60, 60},
		// 14 + 20 + 8 + 4 = 46 bytes, padded to 60.
		{"padded ipv4 udp", testenv.PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 41007, DstPort: 53, Payload: make([]byte, 4), Pad: true},
			"", 60, 32},
		// 18 + 20 + 20 = 58 bytes, padded to 60: the tag and the padding.
		{"padded vlan-tagged ipv4 tcp syn", testenv.PacketSpec{VLAN: 10, SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: 41008, DstPort: 80, TCPFlags: "S", Seq: 1, Pad: true},
			"SA", 60, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
				t.Fatal(err)
			}
			req := c.spec
			req.SrcMAC, req.DstMAC = mac1, mac2
			rep := req
			rep.SrcMAC, rep.DstMAC, rep.SrcIP, rep.DstIP, rep.SrcPort, rep.DstPort = mac2, mac1, req.DstIP, req.SrcIP, req.DstPort, req.SrcPort
			switch {
			case req.Proto == "tcp":
				rep.TCPFlags, rep.Seq, rep.Ack = c.reply, 5000, req.Seq+1
			case c.reply == "0":
				rep.ICMPType = 0
			case c.reply == "129":
				rep.ICMPType = 129
			}
			for i, f := range [][]byte{testenv.Build(req), testenv.Build(rep)} {
				if len(f) != c.frame {
					t.Fatalf("frame %d is %d bytes, want %d", i+1, len(f), c.frame)
				}
				if st := d.run(uint32(1+i), f).Trace.CtState; st&csInv != 0 || st == 0 {
					t.Fatalf("frame %d: ct_state %#x", i+1, st)
				}
			}
			conns := d.conns()
			if len(conns) != 1 {
				t.Fatalf("%d connections, want 1", len(conns))
			}
			w := uint64(c.want)
			if got := conns[0]; got.Packets != [2]uint64{1, 1} || got.Bytes != [2]uint64{w, w} {
				t.Errorf("packets %v bytes %v, want [1 1] [%d %d] (frames of %d bytes)", got.Packets, got.Bytes, w, w, c.frame)
			}
		})
	}
}
