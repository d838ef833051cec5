package bpf_test

import (
	"encoding/binary"
	"testing"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestConntrackUDPLength: a UDP length field shorter than the header or
// longer than the IP payload makes the datagram +inv to conntrack, counted
// (ct_invalid) and never committed, as nf_conntrack's udp_error and OVS's
// check_l4_udp have it; a length that covers the header but stops short
// of the payload (trailing bytes) is valid there, and here.
func TestConntrackUDPLength(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, udp, ct_state=+trk+inv, actions=p3",
		"table=1, priority=5, udp, ct_state=+trk+new, actions=ct(commit),p2",
	)
	for i, c := range []struct {
		name string
		len  int // -1: the right one
		inv  bool
	}{
		{"0", 0, true},
		{"4: shorter than the header", 4, true},
		{"500: longer than the payload", 500, true},
		{"one past the payload", 8 + 20 + 1, true},
		{"the payload's", -1, false},
		{"short of the payload", 12, false},
		{"the header alone", 8, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp",
				SrcPort: uint16(3000 + i), DstPort: 53, Payload: make([]byte, 20)})
			if c.len >= 0 {
				binary.BigEndian.PutUint16(frame[14+20+4:], uint16(c.len))
			}
			d.checkUDPLength(frame, c.inv)
		})
	}
}

// checkUDPLength runs frame through the flows of the UDP length tests:
// +inv to p3, counted and not committed, or committed and to p2.
func (d *dp) checkUDPLength(frame []byte, wantInv bool) {
	t := d.t
	t.Helper()
	before, conns := d.counter("ct_invalid"), len(d.conns())
	res := d.run(1, frame)
	if inv := res.Trace.CtState&csInv != 0; inv != wantInv {
		t.Errorf("ct_state %#x, want +inv %v", res.Trace.CtState, wantInv)
	}
	wantOut, wantCount, wantConns := uint32(2), uint64(0), conns+1
	if wantInv {
		wantOut, wantCount, wantConns = 3, 1, conns
	}
	if out := outPorts(&res.Trace); len(out) != 1 || out[0] != wantOut {
		t.Errorf("out %v, want [%d]", out, wantOut)
	}
	if got := d.counter("ct_invalid") - before; got != wantCount {
		t.Errorf("ct_invalid moved by %d, want %d", got, wantCount)
	}
	if got := len(d.conns()); got != wantConns {
		t.Errorf("%d connections, want %d", got, wantConns)
	}
}

// TestConntrackUDPLengthIPv6: the same over IPv6, where the UDP length is
// checked against the payload after the extension headers: a datagram
// behind an 8-byte hop-by-hop header whose UDP length counts that header
// too is past the payload, +inv.
func TestConntrackUDPLengthIPv6(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp6, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, udp6, ct_state=+trk+inv, actions=p3",
		"table=1, priority=5, udp6, ct_state=+trk+new, actions=ct(commit),p2",
	)
	// 40-byte IPv6 header, 8-byte hop-by-hop header, 8-byte UDP header,
	// 4 bytes of data: a payload length of 20, 12 of them UDP's.
	const udpOff = 40 + 8
	for i, c := range []struct {
		name string
		len  int
		inv  bool
	}{
		{"0", 0, true},
		{"4: shorter than the header", 4, true},
		{"one past the payload", 13, true},
		{"counting the extension header", 20, true},
		{"the payload's", 12, false},
		{"short of the payload", 10, false},
		{"the header alone", 8, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			ip := append(ipv6HopByHopUDP(53), 1, 2, 3, 4)
			binary.BigEndian.PutUint16(ip[4:], 8+8+4)
			binary.BigEndian.PutUint16(ip[udpOff:], uint16(4000+i))
			binary.BigEndian.PutUint16(ip[udpOff+4:], uint16(c.len))
			frame := testenv.Build(testenv.PacketSpec{Proto: "eth", SrcMAC: mac1, DstMAC: mac2, EtherType: 0x86dd, Payload: ip})
			d.checkUDPLength(frame, c.inv)
		})
	}
}
