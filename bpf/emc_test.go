package bpf_test

import (
	"testing"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
	"golang.org/x/sys/unix"
)

// The exact-match cache (emc.h) lives in tc_ingress only (tc_trace never
// uses it), so these tests run the attached program and read what it did
// from the counters: the emc_hits counter, the ports' tx counters (a test
// run does not carry out redirects), the flows' and connections' counters.

const (
	tcActShot     = 2
	tcActRedirect = 7
)

// ingress runs frame once through tc_ingress, as arriving on port in, on
// CPU 0: the cache is per CPU, and the scheduler may move a thread.
func (d *dp) ingress(in uint32, frame []byte) uint32 {
	d.t.Helper()
	var verdict uint32
	d.onCPU0(func() (err error) {
		_, verdict, err = d.b.RunIngress(frame, d.ifindex[in], 1)
		return err
	})
	return verdict
}

// onCPU0 runs f in the bridge's namespace on CPU 0, failing the test on
// its error: the exact-match cache is per CPU, and the scheduler may move
// a thread between two runs.
func (d *dp) onCPU0(f func() error) {
	d.t.Helper()
	err := d.ns.Do(func() error {
		var old, cpu0 unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return err
		}
		cpu0.Set(0)
		if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
			return err
		}
		defer unix.SchedSetaffinity(0, &old)
		return f()
	})
	if err != nil {
		d.t.Fatal(err)
	}
}

// flowPackets is n_packets by flow, in dump-flows order.
func (d *dp) flowPackets() []uint64 {
	d.t.Helper()
	fs, err := d.b.Flows()
	if err != nil {
		d.t.Fatal(err)
	}
	var out []uint64
	for _, f := range fs {
		out = append(out, f.Packets)
	}
	return out
}

// step sends frame in on port in and checks what happened: the port it
// went out of (the highest of several; 0: dropped) and whether the cache
// carried it.
func (d *dp) step(what string, in uint32, frame []byte, wantOut uint32, wantHit bool) {
	d.t.Helper()
	hits, tx := d.counter("emc_hits"), d.txCounts()
	verdict := d.ingress(in, frame)
	gotHit := d.counter("emc_hits") > hits
	after := d.txCounts()
	var out uint32
	for p, n := range after {
		if n > tx[p] && p > out {
			out = p // the highest, when there are several
		}
	}
	if wantOut == 0 && verdict != tcActShot || wantOut != 0 && verdict != tcActRedirect {
		d.t.Errorf("%s: verdict %d", what, verdict)
	}
	if out != wantOut || gotHit != wantHit {
		d.t.Errorf("%s: out port %d, cache hit %v; want %d, %v", what, out, gotHit, wantOut, wantHit)
	}
}

// TestEMC: a repeated key replays its walk, counters and all; a flow-table
// change, a field a flow looks at, or a walk that cannot be replayed all
// take the full walk.
func TestEMC(t *testing.T) {
	d := newDP(t)
	udp := func(dport uint16, ttl uint8) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: dport, TTL: ttl})
	}
	d.setFlows(
		"table=0, priority=10, udp, tp_dst=9, actions=load:1->NXM_NX_REG0[],resubmit(,1)",
		"table=0, priority=5, actions=p2",
		"table=1, priority=10, reg0=1, actions=p3",
	)
	d.step("first packet", 1, udp(9, 0), 3, false)
	d.step("same key", 1, udp(9, 0), 3, true)
	d.step("another TTL, which no flow looks at", 1, udp(9, 9), 3, true)
	d.step("another port, which a flow looks at", 1, udp(10, 0), 2, false)
	if got := d.flowPackets(); len(got) != 3 || got[0] != 3 || got[1] != 1 || got[2] != 3 {
		t.Errorf("n_packets %v, want [3 1 3]: a hit counts every flow of its walk", got)
	}
	if got := d.counter("packets"); got != 4 {
		t.Errorf("packets = %d, want 4: hits count too", got)
	}

	// A change of flows: the stored walk is stale.
	d.setFlows("priority=10, udp, tp_dst=9, actions=p2", "priority=20, udp, nw_ttl=9, tp_dst=9, actions=p3")
	d.step("after a change", 1, udp(9, 0), 2, false)
	d.step("after a change, again", 1, udp(9, 0), 2, true)
	d.step("TTL matters now", 1, udp(9, 9), 3, false)
	d.step("a miss is replayed too", 1, udp(11, 0), 0, false)
	d.step("a miss, again", 1, udp(11, 0), 0, true)

	// Walks a replay cannot repeat are never stored.
	for _, flow := range []string{
		"priority=10, udp, actions=NORMAL",
		"priority=10, udp, actions=mod_nw_tos:4,p2",
		"priority=10, udp, actions=ct(commit),p2",
		"priority=10, hard_timeout=60, udp, actions=p2",
		"priority=10, udp, actions=p2,p3,in_port,p2,p3", // five outputs
	} {
		d.setFlows(flow)
		for i := 0; i < 2; i++ {
			hits := d.counter("emc_hits")
			d.ingress(1, udp(9, 0))
			if d.counter("emc_hits") != hits {
				t.Errorf("%q: packet %d replayed", flow, i)
			}
		}
	}
	d.setFlows("priority=10, udp, actions=p2,p3")
	d.step("two outputs", 1, udp(9, 0), 3, false)
	tx := d.txCounts()
	d.step("two outputs, replayed", 1, udp(9, 0), 3, true)
	if got := d.txCounts(); got[2] != tx[2]+1 {
		t.Errorf("the replay's first output (a clone) was not sent: p2 tx %d -> %d", tx[2], got[2])
	}
}

// TestEMCConntrack: a stored walk with a ct() replays it on every packet
// and is used only when conntrack says the same again; otherwise the packet
// takes the full walk, which must not track it a second time.
func TestEMCConntrack(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, udp, ct_state=+trk+new, in_port=p1, actions=ct(commit, exec(set_field:1->ct_mark)),p2",
		"table=1, priority=10, udp, ct_state=+trk+est-rpl, ct_mark=1, actions=p2",
		"table=1, priority=10, udp, ct_state=+trk+est-rpl, ct_mark=2, actions=p3",
		"table=1, priority=10, udp, ct_state=+trk+est+rpl, actions=p1",
		"table=1, priority=20, udp, ct_state=+trk+est+rpl, nw_ttl=7, actions=ct(commit, exec(set_field:2->ct_mark)),p1",
	)
	fwd := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 5000, DstPort: 53})
	rev := func(ttl uint8) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: 53, DstPort: 5000, TTL: ttl})
	}
	d.step("new (commit: not stored)", 1, fwd, 2, false)
	d.step("reply", 2, rev(0), 1, false)
	d.step("reply again", 2, rev(0), 1, true)
	d.step("established", 1, fwd, 2, false)
	d.step("established again", 1, fwd, 2, true)
	d.step("the reply that sets ct_mark=2", 2, rev(7), 1, false)
	// The stored walk saw ct_mark=1: the replayed ct() now gives 2, so the
	// full walk decides, with the result the replay already got.
	d.step("established, mark changed", 1, fwd, 3, false)
	d.step("established, mark changed, again", 1, fwd, 3, true)

	conns := d.conns()
	if len(conns) != 1 {
		t.Fatalf("connections: %v", format(conns))
	}
	// Orig: new, 2 established, 2 after the mark; reply: 3. Each counted once.
	if c := conns[0]; c.Packets != [2]uint64{5, 3} || c.Mark != 2 {
		t.Errorf("connection packets %v mark %d, want [5 3] and 2: %v", c.Packets, c.Mark, format(conns))
	}
}

// TestEMCPorts: a port's change starts a new epoch, so no stored walk
// names a port by its old number.
func TestEMCPorts(t *testing.T) {
	d := newDP(t)
	d.setFlows("priority=10, udp, actions=p2")
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: 9})
	d.step("first", 1, frame, 2, false)
	d.step("again", 1, frame, 2, true)
	d.b.Close() // an open handle holds the bridge's lock
	if _, err := loader.Detach(d.opts, []string{"p3"}); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.b, err = loader.Open(d.opts); err != nil {
		t.Fatal(err)
	}
	d.step("after a detach", 1, frame, 2, false)
}

// TestEMCSpread: keys that differ only in a word's top bytes -- a port's
// low byte, the last octet of an IPv4 destination, both stored in the
// high byte of their key word -- must land in different slots of the
// direct-mapped cache. (Its hash once took the index from the product's
// low bits, which those bytes never reach: 8 such keys shared one slot and
// evicted each other, and no packet of a round-robin hit.) Each key is sent
// twice, round-robin; the second round must hit, but for the odd pair of
// keys that share a slot by chance (about 1 in 600 runs).
func TestEMCSpread(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp, nw_dst=10.0.10.2, tp_dst=53, actions=p3",
		"table=0, priority=5, actions=p2",
	)
	for _, c := range []struct {
		name string
		pkt  func(i int) testenv.PacketSpec
	}{
		{"tp_dst", func(i int) testenv.PacketSpec {
			return testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: uint16(1000 + i)}
		}},
		{"nw_dst", func(i int) testenv.PacketSpec {
			return testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: testenv.VMIP(100 + i), Proto: "udp", SrcPort: 7, DstPort: 53}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.t = t
			const n = 8
			hits := 0
			for round := 0; round < 2; round++ {
				before := d.counter("emc_hits")
				for i := 0; i < n; i++ {
					if v := d.ingress(1, testenv.Build(c.pkt(i))); v != tcActRedirect {
						t.Fatalf("key %d: verdict %d", i, v)
					}
				}
				hits = int(d.counter("emc_hits") - before)
			}
			if hits < n-2 {
				t.Errorf("second round: %d of %d keys hit the cache, want at least %d", hits, n, n-2)
			}
		})
	}
}

// TestEMCActionReads: a field no flow matches but an action reads -- a
// move's source, output:FIELD, ct(zone=FIELD) -- decides the walk, so it
// is part of the key. (It was not: a packet to UDP port 10 replayed the
// walk of one to port 9.)
func TestEMCActionReads(t *testing.T) {
	d := newDP(t)
	udp := func(dport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: dport})
	}
	for _, flows := range [][]string{
		{"table=0, priority=10, udp, actions=move:NXM_OF_UDP_DST[]->NXM_NX_REG0[0..15],resubmit(,1)",
			"table=1, priority=10, reg0=3, actions=p3",
			"table=1, priority=5, actions=p2"},
		{"table=0, priority=10, udp, actions=output:NXM_OF_UDP_DST[0..3]"},
		{"table=0, priority=10, udp, actions=ct(zone=NXM_OF_UDP_DST[],table=1)",
			"table=1, priority=10, ct_zone=3, actions=p3",
			"table=1, priority=5, actions=p2"},
	} {
		d.setFlows(flows...)
		d.step(flows[0]+": first", 1, udp(3), 3, false)
		d.step(flows[0]+": again", 1, udp(3), 3, true)
		d.step(flows[0]+": another port", 1, udp(2), 2, false)
		d.step(flows[0]+": another port, again", 1, udp(2), 2, true)
	}
}

// TestEMCConntrackTuple: a flow on the connection's tuple (ct_tp_dst...)
// looks at the packet's ports, though no flow matches them: a connection
// to another port must not replay the walk of one to port 9.
func TestEMCConntrackTuple(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, udp, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, udp, ct_state=+trk+new, actions=ct(commit),p2",
		"table=1, priority=10, udp, ct_state=+trk+est-rpl, ct_nw_proto=17, ct_tp_dst=9, actions=p3",
		"table=1, priority=5, udp, ct_state=+trk+est-rpl, actions=p2",
		"table=1, priority=5, udp, ct_state=+trk+est+rpl, actions=p1",
	)
	udp := func(dport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 7, DstPort: dport})
	}
	reply := func(sport uint16) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: sport, DstPort: 7})
	}
	d.step("to 9: new", 1, udp(9), 2, false)
	d.step("from 9: reply", 2, reply(9), 1, false)
	d.step("to 9: established", 1, udp(9), 3, false)
	d.step("to 9: established, again", 1, udp(9), 3, true)
	d.step("to 10: new", 1, udp(10), 2, false)
	d.step("from 10: reply", 2, reply(10), 1, false)
	d.step("to 10: established", 1, udp(10), 2, false)
	d.step("to 10: established, again", 1, udp(10), 2, true)
}
