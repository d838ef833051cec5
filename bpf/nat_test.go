package bpf_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// natTuple is an IPv4 frame's addresses and ports (ICMP: the echo
// identifier in both).
type natTuple struct {
	src, dst     string
	sport, dport uint16
}

func frameTuple(t testing.TB, frame []byte) natTuple {
	t.Helper()
	if len(frame) >= 14 && binary.BigEndian.Uint16(frame[12:]) == 0x86dd {
		return frameTuple6(t, frame)
	}
	if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		t.Fatalf("not an IPv4 frame: % x", frame)
	}
	ip := frame[14:]
	l4 := ip[int(ip[0]&0x0f)*4:]
	tp := natTuple{src: net.IP(ip[12:16]).String(), dst: net.IP(ip[16:20]).String()}
	switch ip[9] {
	case 1:
		tp.sport = binary.BigEndian.Uint16(l4[4:])
		tp.dport = tp.sport
	default:
		tp.sport, tp.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	}
	return tp
}

// natRun sends frame in at port in and returns what left, checked: one
// output, on out, with every checksum right.
func (d *dp) natRun(in, out uint32, frame []byte) (natTuple, *loader.TraceResult) {
	d.t.Helper()
	res := d.run(in, frame)
	if got := outPorts(&res.Trace); !slices.Equal(got, []uint32{out}) {
		d.t.Fatalf("out %v, want [%d] (ct_state %#x)", got, out, res.Trace.CtState)
	}
	if err := testenv.VerifyChecksums(res.Packet); err != nil {
		d.t.Fatalf("checksums after NAT: %v", err)
	}
	return frameTuple(d.t, res.Packet), res
}

// keysInTable counts the conntrack hash's keys: two per NATed connection.
func (d *dp) keysInTable() int {
	d.t.Helper()
	m := d.pinnedMap("conntrack")
	defer m.Close()
	n := 0
	var k [40]byte
	var v [8]byte
	for it := m.Iterate(); it.Next(&k, &v); {
		n++
	}
	return n
}

// expireAll marks every connection expired, straight in its slot.
func (d *dp) expireAll() {
	d.t.Helper()
	ct, slots := d.pinnedMap("conntrack"), d.pinnedMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	var k bpf.DatapathCtKey
	var r bpf.DatapathCtRef
	for it := ct.Iterate(); it.Next(&k, &r); {
		var e bpf.DatapathCtEntry
		if err := slots.Lookup(r.Slot, &e); err != nil {
			d.t.Fatal(err)
		}
		e.ExpiresNs = 1
		if err := slots.Put(r.Slot, &e); err != nil {
			d.t.Fatal(err)
		}
	}
}

const (
	csSNAT = 0x40
	csDNAT = 0x80
)

// TestNATSource: ct(commit,nat(src=...)) on TCP: the original direction
// leaves with the new source, the reply comes back to the original one,
// dump-conntrack shows the translated reply tuple, ports collide into
// others of the range until it is full, and every way out of the table
// takes both of a connection's keys.
func TestNATSource(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, tcp, actions=ct(commit,nat(src=10.0.0.100:5000-5003)),p2",
		"table=0, priority=10, in_port=p2, tcp, actions=ct(nat),p1",
	)
	syn := func(sport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: sport, DstPort: 80, TCPFlags: "S"})
	}
	out, res := d.natRun(1, 2, syn(40000))
	if out.src != "10.0.0.100" || out.sport < 5000 || out.sport > 5003 || out.dst != ip2.String() || out.dport != 80 {
		t.Fatalf("SYN left as %+v, want from 10.0.0.100:5000-5003", out)
	}
	if res.Trace.CtState != csTrk|csNew|csSNAT {
		t.Errorf("SYN's ct_state %#x, want +trk+new+snat", res.Trace.CtState)
	}
	port := out.sport
	want := fmt.Sprintf("tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=40000,dport=80),reply=(src=10.0.10.2,dst=10.0.0.100,sport=80,dport=%d),protoinfo=(state=SYN_SENT)", port)
	if got := format(d.conns()); !slices.Equal(got, []string{want}) {
		t.Fatalf("dump %q, want %q", got, want)
	}
	if verbose := d.conns()[0].Format(dpctl.FormatOptions{Verbose: true}); !contains(verbose, "status=CONFIRMED|SRC_NAT|SRC_NAT_DONE") {
		t.Errorf("dump -m: %s, want status SRC_NAT|SRC_NAT_DONE", verbose)
	}
	if n := d.keysInTable(); n != 2 {
		t.Fatalf("%d keys in the table, want 2: the original tuple's and the reply's", n)
	}

	// The reply, to the translated address, goes back to VM1's.
	synack := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: net.ParseIP("10.0.0.100").To4(),
		Proto: "tcp", SrcPort: 80, DstPort: port, TCPFlags: "SA"})
	back, res := d.natRun(2, 1, synack)
	if back != (natTuple{src: ip2.String(), dst: ip1.String(), sport: 80, dport: 40000}) {
		t.Fatalf("SYN-ACK came back as %+v, want to 10.0.10.1:40000", back)
	}
	if res.Trace.CtState != csTrk|csEst|csRpl|csDNAT {
		t.Errorf("SYN-ACK's ct_state %#x, want +trk+est+rpl+dnat", res.Trace.CtState)
	}

	// Three more connections take the range's other three ports; a fifth
	// finds none free: +inv, counted, nothing committed.
	seen := map[uint16]bool{port: true}
	for i := uint16(1); i <= 3; i++ {
		o, _ := d.natRun(1, 2, syn(40000+i))
		if o.sport < 5000 || o.sport > 5003 || seen[o.sport] {
			t.Fatalf("connection %d left as %+v: want from a free port of 5000-5003 (taken: %v); %s, ct_nat_failed %d", i, o, seen, d.counterLine(), d.counter("ct_nat_failed"))
		}
		seen[o.sport] = true
	}
	res = d.run(1, syn(40010))
	if res.Trace.CtState != csTrk|csInv || d.counter("ct_nat_failed") != 1 {
		t.Errorf("with the range full: ct_state %#x, ct_nat_failed %d; want +inv and 1", res.Trace.CtState, d.counter("ct_nat_failed"))
	}
	// Dropped, as nf_nat drops it: the flow's output after the ct() is
	// never reached, so nothing leaves untranslated.
	if got := outPorts(&res.Trace); len(got) != 0 || res.Verdict != loader.TCActShot {
		t.Errorf("with the range full the SYN went out %v (verdict %d): want it dropped", got, res.Verdict)
	}
	if n := len(d.conns()); n != 4 {
		t.Errorf("%d connections, want 4", n)
	}

	// flush-conntrack takes both keys of every connection.
	if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
		t.Fatal(err)
	}
	if n := d.keysInTable(); n != 0 {
		t.Fatalf("after flush-conntrack: %d keys left in the table", n)
	}
	// So the range is free again.
	if o, _ := d.natRun(1, 2, syn(40020)); o.sport < 5000 || o.sport > 5003 {
		t.Fatalf("after the flush: from port %d", o.sport)
	}
}

// TestNATReset: a RST that is a connection's only reply -- a server's
// closed port, or the client giving up before any answer -- ends it at
// once (nf_conntrack's rule) and is translated like its other packets, in
// either direction; both keys go with it. (It went out untranslated: the
// connection was gone from the table before its translation was looked
// up, so a client behind SNAT never saw the refusal, only timeouts.)
func TestNATReset(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, tcp, actions=ct(commit,nat(src=10.0.0.100:5000-5003)),p2",
		"table=0, priority=10, in_port=p2, tcp, actions=ct(nat),p1",
	)
	nat := net.ParseIP("10.0.0.100").To4()
	for i, fromVM1 := range []bool{false, true} {
		sport := uint16(41000 + i)
		fwd := func(flags string, seq, ack uint32) []byte {
			return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp",
				SrcPort: sport, DstPort: 80, TCPFlags: flags, Seq: seq, Ack: ack})
		}
		out, _ := d.natRun(1, 2, fwd("S", 1000, 0))
		if fromVM1 {
			if got, _ := d.natRun(1, 2, fwd("R", 1001, 0)); got != out {
				t.Errorf("VM1's RST left as %+v, want as its SYN: %+v", got, out)
			}
		} else {
			rst := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: nat, Proto: "tcp",
				SrcPort: 80, DstPort: out.sport, TCPFlags: "RA", Seq: 0, Ack: 1001})
			want := natTuple{src: ip2.String(), dst: ip1.String(), sport: 80, dport: sport}
			if got, _ := d.natRun(2, 1, rst); got != want {
				t.Errorf("the server's RST came back as %+v, want %+v", got, want)
			}
		}
		if n := d.keysInTable(); n != 0 {
			t.Errorf("RST from VM1 %v: %d keys left in the table, want 0: %v", fromVM1, n, format(d.conns()))
		}
	}
}

// TestNATNothingLeftBehind: the other ways a connection goes take both
// its keys too -- the datapath's own sweep when the table is at its
// limit (ct-set-maxconns), and ct(force) replacing a connection seen the
// other way round -- so no reply key, and no port, outlives it.
func TestNATNothingLeftBehind(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, udp, actions=ct(commit,nat(src=10.0.0.100:7000-7001)),p2",
		"table=0, priority=10, in_port=p2, udp, actions=ct(commit,force),p1",
	)
	udp := func(sport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: sport, DstPort: 53})
	}
	if err := d.b.SetMaxConns(1); err != nil {
		t.Fatal(err)
	}
	d.natRun(1, 2, udp(3000))
	// Expired but still in the table; the next commit finds the table at
	// its limit and sweeps it.
	d.expireAll()
	second, _ := d.natRun(1, 2, udp(3001))
	if second.src != "10.0.0.100" {
		t.Fatalf("the second connection left as %+v", second)
	}
	if n, conns := d.keysInTable(), d.conns(); n != 2 || len(conns) != 1 || conns[0].OrigSport != 3001 {
		t.Fatalf("after the sweep: %d keys, connections %v; want 2 keys of the second connection only", n, format(conns))
	}

	// ct(force) from the server's side: the connection was committed the
	// other way round, so it goes and a new one starts, without NAT.
	if err := d.b.SetMaxConns(16); err != nil {
		t.Fatal(err)
	}
	reply := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: net.ParseIP("10.0.0.100").To4(),
		Proto: "udp", SrcPort: 53, DstPort: second.sport})
	d.run(2, reply)
	conns := d.conns()
	if n := d.keysInTable(); n != 1 || len(conns) != 1 || conns[0].OrigSport != 53 {
		t.Fatalf("after ct(force): %d keys, connections %v; want the server's new one alone (1 key)", n, format(conns))
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestNATDestination: ct(commit,nat(dst=...)) on UDP, a floating address
// in front of a VM: the original direction reaches the VM, its replies
// come from the floating address; an expired connection takes both keys.
func TestNATDestination(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, udp, actions=ct(commit,nat(dst=10.0.10.3:53)),p3",
		"table=0, priority=10, in_port=p3, udp, actions=ct(nat),p1",
	)
	floating := net.ParseIP("10.0.0.200").To4()
	q := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac3, SrcIP: ip1, DstIP: floating, Proto: "udp", SrcPort: 1000, DstPort: 5353})
	out, res := d.natRun(1, 3, q)
	if out != (natTuple{src: ip1.String(), dst: ip3.String(), sport: 1000, dport: 53}) {
		t.Fatalf("query left as %+v, want to 10.0.10.3:53", out)
	}
	if res.Trace.CtState != csTrk|csNew|csDNAT {
		t.Errorf("query's ct_state %#x, want +trk+new+dnat", res.Trace.CtState)
	}
	a := testenv.Build(testenv.PacketSpec{SrcMAC: mac3, DstMAC: mac1, SrcIP: ip3, DstIP: ip1, Proto: "udp", SrcPort: 53, DstPort: 1000})
	back, res := d.natRun(3, 1, a)
	if back != (natTuple{src: "10.0.0.200", dst: ip1.String(), sport: 5353, dport: 1000}) {
		t.Fatalf("answer came back as %+v, want from 10.0.0.200:5353", back)
	}
	if res.Trace.CtState != csTrk|csEst|csRpl|csSNAT {
		t.Errorf("answer's ct_state %#x, want +trk+est+rpl+snat", res.Trace.CtState)
	}
	want := "udp,orig=(src=10.0.10.1,dst=10.0.0.200,sport=1000,dport=5353),reply=(src=10.0.10.3,dst=10.0.10.1,sport=53,dport=1000)"
	if got := format(d.conns()); !slices.Equal(got, []string{want}) {
		t.Fatalf("dump %q, want %q", got, want)
	}
	// Expired: the loader's sweep (ct_gc) removes the connection, both keys.
	d.expireAll()
	if n := len(d.conns()); n != 0 {
		t.Fatalf("%d connections after expiry", n)
	}
	if n := d.keysInTable(); n != 0 {
		t.Fatalf("after expiry: %d keys left in the table", n)
	}
}

// TestNATICMPAndPortKept: without a port range a source keeps its port
// (an echo its identifier) while no other connection of the zone uses the
// translated tuple; a second echo with the same identifier from another
// VM gets another one. A UDP checksum of 0 stays 0.
func TestNATICMPAndPortKept(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, ip, in_port=p1, actions=ct(commit,nat(src=10.0.0.100)),p2",
		"table=0, priority=10, ip, in_port=p3, actions=ct(commit,nat(src=10.0.0.100)),p2",
		"table=0, priority=10, ip, in_port=p2, actions=ct(nat),NORMAL",
	)
	echo := func(src net.IP, mac net.HardwareAddr) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac, DstMAC: mac2, SrcIP: src, DstIP: ip2, Proto: "icmp", ICMPType: 8, ICMPID: 777, ICMPSeq: 1})
	}
	o1, _ := d.natRun(1, 2, echo(ip1, mac1))
	if o1 != (natTuple{src: "10.0.0.100", dst: ip2.String(), sport: 777, dport: 777}) {
		t.Fatalf("VM1's echo left as %+v, want from 10.0.0.100 with id 777", o1)
	}
	o3, _ := d.natRun(3, 2, echo(ip3, mac3))
	if o3.src != "10.0.0.100" || o3.sport == 777 {
		t.Fatalf("VM3's echo left as %+v, want from 10.0.0.100 with another id than 777; %s", o3, d.counterLine())
	}
	// Each reply finds its own VM.
	reply := func(id uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: net.ParseIP("10.0.0.100").To4(), Proto: "icmp", ICMPType: 0, ICMPID: id, ICMPSeq: 1})
	}
	res := d.run(2, reply(o3.sport))
	if err := testenv.VerifyChecksums(res.Packet); err != nil {
		t.Fatal(err)
	}
	if got := frameTuple(t, res.Packet); got != (natTuple{src: ip2.String(), dst: ip3.String(), sport: 777, dport: 777}) {
		t.Fatalf("the reply to VM3's echo came back as %+v", got)
	}
	res = d.run(2, reply(777))
	if got := frameTuple(t, res.Packet); got.dst != ip1.String() || got.sport != 777 {
		t.Fatalf("the reply to VM1's echo came back as %+v", got)
	}

	// UDP: the port stays; a zero checksum stays zero.
	u := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 4444, DstPort: 53})
	u[14+20+6], u[14+20+7] = 0, 0
	res = d.run(1, u)
	if got := frameTuple(t, res.Packet); got != (natTuple{src: "10.0.0.100", dst: ip2.String(), sport: 4444, dport: 53}) {
		t.Fatalf("UDP left as %+v, want from 10.0.0.100:4444", got)
	}
	if c := res.Packet[14+20+6:][:2]; c[0] != 0 || c[1] != 0 {
		t.Errorf("UDP checksum %x after NAT: a zero checksum must stay zero", c)
	}
}

// quoted is the whole IP packet of frame, as an ICMP error quotes it.
func quoted(frame []byte) []byte { return append([]byte(nil), frame[14:]...) }

// innerOK checks the quoted packet of an ICMP error frame: its IP header
// and L4 checksums, by wrapping it in an Ethernet header of its own.
func innerOK(t *testing.T, frame []byte) natTuple {
	t.Helper()
	hdr := 20
	if binary.BigEndian.Uint16(frame[12:]) == 0x86dd {
		hdr = 40
	}
	inner := append(append([]byte(nil), frame[:14]...), frame[14+hdr+8:]...)
	if err := testenv.VerifyChecksums(inner); err != nil {
		t.Fatalf("the quoted packet's checksums: %v", err)
	}
	return frameTuple(t, inner)
}

// TestNATICMPErrors: an ICMP error about a NATed connection is +rel, and
// is translated as nf_nat translates it -- the outer header as a packet of
// its direction, the quoted packet on its other side, every checksum
// (outer IP and ICMP, quoted IP and UDP) right.
func TestNATICMPErrors(t *testing.T) {
	d := newDP(t)
	unreach := func(src, dst net.IP, smac, dmac net.HardwareAddr, q []byte) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: smac, DstMAC: dmac, SrcIP: src, DstIP: dst, Proto: "icmp",
			ICMPType: 3, ICMPCode: 3, Payload: q})
	}
	t.Run("SNAT: port unreachable back to the source", func(t *testing.T) {
		d.t = t
		d.setFlows(
			"table=0, priority=10, in_port=p1, ip, actions=ct(commit,nat(src=10.0.0.100)),p2",
			"table=0, priority=10, in_port=p2, ip, actions=ct(nat),p1",
		)
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		u := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 4444, DstPort: 53, Payload: []byte("abcd")})
		res := d.run(1, u)
		if got := frameTuple(t, res.Packet); got.src != "10.0.0.100" {
			t.Fatalf("UDP left as %+v", got)
		}
		// VM2 answers the translated packet with an error.
		out, res := d.natRun(2, 1, unreach(ip2, net.ParseIP("10.0.0.100").To4(), mac2, mac1, quoted(res.Packet)))
		if out.src != ip2.String() || out.dst != ip1.String() {
			t.Fatalf("the error left as %+v, want to 10.0.10.1", out)
		}
		if in := innerOK(t, res.Packet); in != (natTuple{src: ip1.String(), dst: ip2.String(), sport: 4444, dport: 53}) {
			t.Fatalf("the quoted packet is %+v, want VM1's own 10.0.10.1:4444 -> 10.0.10.2:53", in)
		}
		if res.Trace.CtState&(csTrk|0x04|csRpl) != csTrk|0x04|csRpl {
			t.Errorf("the error's ct_state %#x, want +trk+rel+rpl", res.Trace.CtState)
		}
	})
	t.Run("DNAT: port unreachable from the real server", func(t *testing.T) {
		d.t = t
		// OVS's "ICMP related NAT with single port" case: a floating
		// 10.1.1.240:80 in front of a server on 8080.
		d.setFlows(
			"table=0, priority=10, in_port=p1, ip, actions=ct(commit,nat(dst=10.0.10.3:8080)),p3",
			"table=0, priority=10, in_port=p3, ip, actions=ct(nat),p1",
		)
		t.Cleanup(func() { d.b.FlushConntrack(dpctl.Filter{}) })
		floating := net.ParseIP("10.1.1.240").To4()
		u := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac3, SrcIP: ip1, DstIP: floating, Proto: "udp", SrcPort: 1234, DstPort: 80, Payload: []byte("0123456789")})
		res := d.run(1, u)
		if got := frameTuple(t, res.Packet); got.dst != ip3.String() || got.dport != 8080 {
			t.Fatalf("UDP left as %+v", got)
		}
		out, res := d.natRun(3, 1, unreach(ip3, ip1, mac3, mac1, quoted(res.Packet)))
		if out.src != "10.1.1.240" || out.dst != ip1.String() {
			t.Fatalf("the error left as %+v, want from 10.1.1.240", out)
		}
		if in := innerOK(t, res.Packet); in != (natTuple{src: ip1.String(), dst: "10.1.1.240", sport: 1234, dport: 80}) {
			t.Fatalf("the quoted packet is %+v, want 10.0.10.1:1234 -> 10.1.1.240:80", in)
		}
	})
}

// frameTuple6 is an IPv6 frame's addresses and ports (no extension
// headers; ICMPv6: the echo identifier in both). frameTuple calls it.
func frameTuple6(t testing.TB, frame []byte) natTuple {
	t.Helper()
	if len(frame) < 14+40+8 || binary.BigEndian.Uint16(frame[12:]) != 0x86dd {
		t.Fatalf("not an IPv6 frame: % x", frame)
	}
	ip := frame[14:]
	l4 := ip[40:]
	tp := natTuple{src: net.IP(ip[8:24]).String(), dst: net.IP(ip[24:40]).String()}
	if ip[6] == 58 {
		tp.sport = binary.BigEndian.Uint16(l4[4:])
		tp.dport = tp.sport
	} else {
		tp.sport, tp.dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
	}
	return tp
}

// TestNATIPv6: source NAT of TCP, destination NAT of UDP and source NAT
// of an ICMPv6 echo, over IPv6, with every checksum right.
func TestNATIPv6(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, ipv6, actions=ct(commit,nat(src=[2001:db8:ff::100]:7000-7001)),p2",
		"table=0, priority=10, in_port=p2, ipv6, actions=ct(nat),p1",
		"table=0, priority=10, in_port=p3, ipv6, actions=ct(commit,nat(dst=[2001:db8::2]:53)),p2",
	)
	run := d.natRun
	syn := testenv.Build(tcp6("S", 40000, 80, "2001:db8::1", "2001:db8::2"))
	out, res := run(1, 2, syn)
	if out.src != "2001:db8:ff::100" || out.sport < 7000 || out.sport > 7001 || out.dst != "2001:db8::2" {
		t.Fatalf("SYN left as %+v", out)
	}
	if res.Trace.CtState != csTrk|csNew|csSNAT {
		t.Errorf("SYN's ct_state %#x", res.Trace.CtState)
	}
	synack := testenv.Build(tcp6("SA", 80, out.sport, "2001:db8::2", "2001:db8:ff::100"))
	if back, _ := run(2, 1, synack); back != (natTuple{src: "2001:db8::2", dst: "2001:db8::1", sport: 80, dport: 40000}) {
		t.Fatalf("SYN-ACK came back as %+v", back)
	}
	want := fmt.Sprintf("tcp,orig=(src=2001:db8::1,dst=2001:db8::2,sport=40000,dport=80),reply=(src=2001:db8::2,dst=2001:db8:ff::100,sport=80,dport=%d),protoinfo=(state=ESTABLISHED)", out.sport) // SYN_RECV, shown as OVS shows it
	if got := format(d.conns()); !slices.Contains(got, want) {
		t.Errorf("dump %q, want %q in it", got, want)
	}

	// DNAT: a floating address in front of VM2.
	q := testenv.Build(testenv.PacketSpec{SrcMAC: mac3, DstMAC: mac2, SrcIP: net.ParseIP("2001:db8::3"), DstIP: net.ParseIP("2001:db8:ff::200"),
		Proto: "udp", SrcPort: 1000, DstPort: 5353})
	if o, _ := run(3, 2, q); o != (natTuple{src: "2001:db8::3", dst: "2001:db8::2", sport: 1000, dport: 53}) {
		t.Fatalf("the query left as %+v", o)
	}

	// ICMPv6 echo: the identifier kept while free.
	echo := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
		Proto: "icmp6", ICMPType: 128, ICMPID: 4242, ICMPSeq: 1})
	if o, _ := run(1, 2, echo); o.src != "2001:db8:ff::100" || o.sport < 7000 || o.sport > 7001 {
		t.Fatalf("the echo left as %+v, want from 2001:db8:ff::100, id in 7000-7001", o)
	}
}

// TestNATExactMatchCache: a NATed connection's packets are carried by the
// exact-match cache (tc_ingress) once its walk is stored, translated as
// the walk translated them, checksums right; a hit whose connection now
// gives another translation takes the walk.
func TestNATExactMatchCache(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, tcp, ct_state=-trk, actions=ct(table=1,nat)",
		"table=0, priority=10, in_port=p2, tcp, ct_state=-trk, actions=ct(table=1,nat)",
		"table=1, priority=10, in_port=p1, tcp, ct_state=+trk+new, actions=ct(commit,nat(src=10.0.0.100:30000-30009)),p2",
		"table=1, priority=10, in_port=p1, tcp, ct_state=+trk+est, actions=p2",
		"table=1, priority=10, in_port=p2, tcp, ct_state=+trk+est, actions=p1",
	)
	once := func(in uint32, frame []byte) natTuple {
		t.Helper()
		var verdict uint32
		var out []byte
		d.onCPU0(func() (err error) {
			verdict, out, err = d.b.RunIngressOnce(frame, d.ifindex[in])
			return err
		})
		if verdict != tcActRedirect {
			t.Fatalf("verdict %d", verdict)
		}
		if err := testenv.VerifyChecksums(out); err != nil {
			t.Fatalf("checksums: %v", err)
		}
		return frameTuple(t, out)
	}
	vm1Port := uint16(41000)
	seg := func(fromVM1 bool, flags string, port uint16) []byte {
		s := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: vm1Port, DstPort: 80, TCPFlags: flags, Seq: 1000, Ack: 5001}
		if !fromVM1 {
			s = testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: net.ParseIP("10.0.0.100").To4(), Proto: "tcp", SrcPort: 80, DstPort: port, TCPFlags: flags, Seq: 5000, Ack: 1001}
		}
		if flags == "S" {
			s.Ack = 0
		}
		return testenv.Build(s)
	}
	out := once(1, seg(true, "S", 0))
	port := out.sport
	if out.src != "10.0.0.100" || port < 30000 || port > 30009 {
		t.Fatalf("SYN left as %+v", out)
	}
	if back := once(2, seg(false, "SA", port)); back.dst != ip1.String() || back.dport != 41000 {
		t.Fatalf("SYN-ACK came back as %+v", back)
	}
	// Established both ways: the first of each direction is stored, the
	// next ones are hits, and each is translated as the walk did.
	for i := 0; i < 3; i++ {
		hits := d.counter("emc_hits")
		if o := once(1, seg(true, "A", 0)); o.src != "10.0.0.100" || o.sport != port {
			t.Fatalf("ACK %d left as %+v", i, o)
		}
		if b := once(2, seg(false, "A", port)); b.dst != ip1.String() || b.dport != 41000 {
			t.Fatalf("ACK %d came back as %+v", i, b)
		}
		if got := d.counter("emc_hits") - hits; i > 0 && got != 2 {
			t.Errorf("round %d: %d cache hits, want 2 (both directions replayed)", i, got)
		}
	}

	// A second connection gets another port, which no flow looks at: its
	// packets replay the first one's walks, each with its own translation.
	vm1Port = 41001
	out2 := once(1, seg(true, "S", 0))
	if out2.src != "10.0.0.100" || out2.sport == port || out2.sport < 30000 || out2.sport > 30009 {
		t.Fatalf("second SYN left as %+v (first: port %d)", out2, port)
	}
	hits := d.counter("emc_hits")
	if back := once(2, seg(false, "SA", out2.sport)); back.dst != ip1.String() || back.dport != 41001 {
		t.Fatalf("second SYN-ACK came back as %+v", back)
	}
	for i := 0; i < 2; i++ {
		if o := once(1, seg(true, "A", 0)); o.src != "10.0.0.100" || o.sport != out2.sport {
			t.Fatalf("second connection's ACK %d left as %+v, want port %d", i, o, out2.sport)
		}
		if b := once(2, seg(false, "A", out2.sport)); b.dst != ip1.String() || b.dport != 41001 {
			t.Fatalf("second connection's ACK %d came back as %+v", i, b)
		}
	}
	if got := d.counter("emc_hits") - hits; got != 5 {
		t.Errorf("second connection: %d cache hits, want 5 (every packet after its SYN)", got)
	}
}

// TestNATExactMatchCacheKeyed: where a flow after the ct(nat) looks at a
// field the translation writes, a connection translated otherwise there
// takes its own walk. Two connections from one source, to destinations no
// flow looks at, get different addresses of a range; a flow sends each
// address out of its own port.
func TestNATExactMatchCacheKeyed(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp, ct_state=-trk, actions=ct(table=1,nat)",
		"table=1, priority=10, in_port=p1, udp, ct_state=+trk+new, actions=ct(commit,nat(src=10.0.0.100-10.0.0.101)),p2",
		"table=1, priority=10, in_port=p1, udp, ct_state=+trk+est, nw_src=10.0.0.100, actions=p2",
		"table=1, priority=10, in_port=p1, udp, ct_state=+trk+est, nw_src=10.0.0.101, actions=p3",
		"table=1, priority=10, in_port=p2, udp, ct_state=+trk+est, actions=p1",
	)
	out := func(dst net.IP) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: dst, Proto: "udp", SrcPort: 4000, DstPort: 53})
	}
	// A destination for each address (the address is a hash of both),
	// and a reply to each connection, which makes it established.
	dsts := map[string]net.IP{}
	for i := 2; i < 64 && len(dsts) < 2; i++ {
		dst := net.IPv4(10, 0, 1, byte(i)).To4()
		res := d.run(1, out(dst))
		if res.Packet == nil {
			t.Fatalf("to %s: dropped", dst)
		}
		nat := frameTuple(t, res.Packet)
		if dsts[nat.src] != nil {
			continue
		}
		dsts[nat.src] = dst
		reply := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: dst, DstIP: net.ParseIP(nat.src).To4(),
			Proto: "udp", SrcPort: 53, DstPort: nat.sport})
		d.step("reply from "+dst.String(), 2, reply, 1, false)
	}
	a, b := dsts["10.0.0.100"], dsts["10.0.0.101"]
	if a == nil || b == nil {
		t.Fatalf("no destinations mapped to each address: %v", dsts)
	}
	d.step("to .100's destination", 1, out(a), 2, false)
	d.step("to .100's destination, again", 1, out(a), 2, true)
	d.step("to .101's destination: the other address", 1, out(b), 3, false)
	d.step("to .101's destination, again", 1, out(b), 3, true)
}

// TestNATICMPv6Error: an ICMPv6 error about a NATed IPv6 connection is
// translated too: the outer destination (its checksum's pseudo-header
// with it), the quoted packet's source and its UDP checksum.
func TestNATICMPv6Error(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, ipv6, actions=ct(commit,nat(src=[2001:db8:ff::100])),p2",
		"table=0, priority=10, in_port=p2, ipv6, actions=ct(nat),p1",
	)
	u := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2"),
		Proto: "udp", SrcPort: 4444, DstPort: 53, Payload: []byte("abcd")})
	res := d.run(1, u)
	if got := frameTuple(t, res.Packet); got.src != "2001:db8:ff::100" {
		t.Fatalf("UDP left as %+v", got)
	}
	e := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: net.ParseIP("2001:db8::2"), DstIP: net.ParseIP("2001:db8:ff::100"),
		Proto: "icmp6", ICMPType: 1, ICMPCode: 4, Payload: append(make([]byte, 4), quoted(res.Packet)...)}) // the 4 unused bytes first
	out, res := d.natRun(2, 1, e)
	if out.src != "2001:db8::2" || out.dst != "2001:db8::1" {
		t.Fatalf("the error left as %+v (ct_state %#x), want to 2001:db8::1", out, res.Trace.CtState)
	}
	if in := innerOK(t, res.Packet); in != (natTuple{src: "2001:db8::1", dst: "2001:db8::2", sport: 4444, dport: 53}) {
		t.Fatalf("the quoted packet is %+v, want 2001:db8::1:4444's own", in)
	}
}
