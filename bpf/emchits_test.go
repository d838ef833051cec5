package bpf_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
	"github.com/vishvananda/netlink"
)

// A cache hit's counts wait in its entry until the entry is replaced
// (emc.h: emc_fold), and the loader's readers add the entries' counts
// meanwhile (loader/emchits.go). These tests check that every counter
// reads as the full walk would have counted it, either way, and that a
// flow id or port number reused since an entry was stored gets nothing
// of it.

// countSnap is every counter a walk counts, as the loader reads them.
type countSnap struct {
	flows map[uint32][2]uint64 // by flow id: packets, bytes
	ports map[uint32]bpf.DatapathPortCounts
	miss  uint64 // table_miss
	pkts  uint64 // packets
}

func (d *dp) counts() countSnap {
	d.t.Helper()
	fs, err := d.b.Flows()
	if err != nil {
		d.t.Fatal(err)
	}
	ps, err := d.b.Ports()
	if err != nil {
		d.t.Fatal(err)
	}
	s := countSnap{flows: map[uint32][2]uint64{}, ports: map[uint32]bpf.DatapathPortCounts{}, miss: d.counter("table_miss"), pkts: d.counter("packets")}
	for _, f := range fs {
		s.flows[f.ID] = [2]uint64{f.Packets, f.Bytes}
	}
	for _, p := range ps {
		p.Stats.Birth = 0
		s.ports[p.OFPort] = p.Stats
	}
	return s
}

// minus is what s counted since before, as text.
func (s countSnap) minus(before countSnap) string {
	out := fmt.Sprintf("packets +%d, table_miss +%d", s.pkts-before.pkts, s.miss-before.miss)
	for id := uint32(0); id < 8; id++ {
		if f, ok := s.flows[id]; ok {
			out += fmt.Sprintf("; flow %d +%d packets +%d bytes", id, f[0]-before.flows[id][0], f[1]-before.flows[id][1])
		}
	}
	for n := uint32(1); n <= nPorts; n++ {
		p, b := s.ports[n], before.ports[n]
		out += fmt.Sprintf("; p%d rx +%d/+%dB tx +%d/+%dB rx_dropped +%d", n,
			p.RxPackets-b.RxPackets, p.RxBytes-b.RxBytes, p.TxPackets-b.TxPackets, p.TxBytes-b.TxBytes, p.RxDropped-b.RxDropped)
	}
	return out
}

// TestEMCHitCounts: the three checks below, on one datapath (in the VMs
// of the kernel matrix every load of the datapath costs seconds).
func TestEMCHitCounts(t *testing.T) {
	d := newDP(t)
	emcHitCountsOnOff(t, d)
	emcHitCountsReused(t, d)
	emcFoldSeq(t, d)
}

// emcHitCountsOnOff sends the same packets with the cache on and off and
// compares every counter after each: packets, flows (through a resubmit),
// table misses, rx, tx (one output and two), rx_dropped. Flow-table changes in
// the middle leave stale entries with hits that the next packet's store
// folds.
func emcHitCountsOnOff(t *testing.T, d *dp) {
	d.setFlows(
		"table=0, priority=10, udp, tp_dst=9, actions=load:1->NXM_NX_REG0[],resubmit(,1)",
		"table=0, priority=8, udp, tp_dst=12, actions=p2,p3",
		"table=0, priority=5, udp, tp_dst=10, actions=p2",
		"table=1, priority=10, reg0=1, actions=p3",
	)
	udp := func(dport uint16, size int) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2,
			Proto: "udp", SrcPort: 7, DstPort: dport, Payload: make([]byte, size)})
	}
	// dport 11 matches nothing: a table miss, dropped.
	dports := []uint16{9, 9, 10, 11, 9, 12, 11, 12, 10, 9, 11, 12}
	unrelated := "table=7, priority=1, udp, tp_dst=99, actions=drop"
	run := func(cache bool) (log []string, hits uint64) {
		if err := d.b.SetFlowCache(cache); err != nil {
			t.Fatal(err)
		}
		hits0 := d.counter("emc_hits")
		for round := 0; round < 3; round++ {
			for i, dp := range dports {
				before := d.counts()
				d.ingress(1, udp(dp, 10*i+round))
				log = append(log, fmt.Sprintf("round %d, packet %d (dport %d): %s", round, i, dp, d.counts().minus(before)))
			}
			// A new epoch: every entry goes stale with its hits, folded
			// when the next packet of its slot is stored.
			f, err := ofctl.ParseFlow(unrelated, d.pm)
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				err = d.b.AddFlows([]*ofctl.Flow{f})
			} else {
				_, err = d.b.DelFlows(f, true)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return log, d.counter("emc_hits") - hits0
	}
	with, hits := run(true)
	without, nohits := run(false)
	for i := range with {
		if with[i] != without[i] {
			t.Errorf("with the cache:\n%s\nwithout:\n%s", with[i], without[i])
		}
	}
	// Each round: 4 keys' first packets walk, the other 8 are hits.
	if hits != 24 || nohits != 0 {
		t.Errorf("emc_hits +%d with the cache, +%d without; want 24, 0", hits, nohits)
	}
	if err := d.b.SetFlowCache(true); err != nil {
		t.Fatal(err)
	}
}

// emcHitCountsReused: an entry's hits go to the flow and ports it was
// stored for, never to a flow or port that took the same id or number
// since -- neither when a reader adds them nor when the entry is folded.
func emcHitCountsReused(t *testing.T, d *dp) {
	udp := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2,
		Proto: "udp", SrcPort: 7, DstPort: 9})
	flowOf := func() loader.InstalledFlow {
		fs, err := d.b.Flows()
		if err != nil || len(fs) != 1 {
			t.Fatalf("flows %v, %v; want one", fs, err)
		}
		return fs[0]
	}

	// Three packets to p2: one walk, two hits held in the entry.
	d.setFlows("priority=10, udp, tp_dst=9, actions=p2")
	rx0 := d.counts().ports[1].RxPackets
	old := flowOf()
	for range 3 {
		d.ingress(1, udp)
	}
	if f := flowOf(); f.Packets != 3 {
		t.Fatalf("flow: %d packets, want 3", f.Packets)
	}

	// Another flow takes the id; p2 is detached and another device
	// attached as port 2.
	d.setFlows("priority=10, udp, tp_dst=9, actions=p2")
	if f := flowOf(); f.ID != old.ID {
		t.Fatalf("the new flow has id %d, the old %d: the test needs an id reused", f.ID, old.ID)
	}
	h := d.ns.MustHandle(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p4"}, PeerName: "p4x"}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"p4", "p4x"} {
		l, err := h.LinkByName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	d.b.Close() // Detach and Attach take the bridge's lock
	if _, err := loader.Detach(d.opts, []string{"p2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := loader.Attach(d.opts, []loader.PortSpec{{Name: "p4", OFPort: 2}}, loader.ModeAuto); err != nil {
		t.Fatal(err)
	}
	var err error
	if d.b, err = loader.Open(d.opts); err != nil {
		t.Fatal(err)
	}
	check := func(when string, flowPackets, p1rx, p2tx uint64) {
		t.Helper()
		s := d.counts()
		if f := flowOf(); f.Packets != flowPackets || s.ports[1].RxPackets-rx0 != p1rx || s.ports[2].TxPackets != p2tx {
			t.Errorf("%s: new flow %d packets, p1 rx +%d, port 2 tx %d; want %d, +%d, %d", when,
				f.Packets, s.ports[1].RxPackets-rx0, s.ports[2].TxPackets, flowPackets, p1rx, p2tx)
		}
	}
	// p1 was there all along: its rx keeps the held hits.
	check("read with the old entry in the cache", 0, 3, 0)
	// The next packet walks (a new epoch) and its store folds the old
	// entry into the counters: still only where it belongs.
	d.ingress(1, udp)
	check("after the old entry was folded", 1, 4, 1)
	d.ingress(1, udp)
	check("after a hit of the new entry", 2, 5, 2)
}

// emcFoldSeq: while a CPU's fold sequence is odd (a fold running, or,
// here, stuck) readers retry, but only so often: they still answer. The
// sequence is the readers' own, not one of the counters shown.
func emcFoldSeq(t *testing.T, d *dp) {
	m := d.pinnedMap("counters")
	defer m.Close()
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		t.Fatal(err)
	}
	per := make([]uint64, ncpu)
	per[0] = 1
	if err := m.Put(uint32(bpf.DatapathCounterCNT_EMC_FOLD_SEQ), per); err != nil {
		t.Fatal(err)
	}
	cs, err := d.b.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == "emc_fold_seq" || c.Name == fmt.Sprint(int(bpf.DatapathCounterCNT_EMC_FOLD_SEQ)) {
			t.Errorf("Counters shows the fold sequence as %q", c.Name)
		}
	}
	if len(cs) != int(bpf.DatapathCounterCNT_EMC_FOLD_SEQ) {
		t.Errorf("%d counters, want %d", len(cs), bpf.DatapathCounterCNT_EMC_FOLD_SEQ)
	}
}
