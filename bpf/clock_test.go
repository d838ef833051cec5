package bpf_test

import (
	"strings"
	"time"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// Timeouts are tested by moving the times the maps store back, not by
// sleeping: a test that sleeps past a timeout is slow, and one that
// counts on a flow or a connection outliving a few runs of the program
// breaks when a slow VM takes longer than the timeout between two of
// them. The datapath keeps every time as CLOCK_MONOTONIC_COARSE
// nanoseconds (maps.h's dp_now), the loader as CLOCK_MONOTONIC (monoNow):
// what a test writes counts from either.

// coarseLag bounds how far the datapath's clock lags CLOCK_MONOTONIC: a
// tick (10 ms at HZ=100), with room for a late one in a VM.
const coarseLag = 50 * time.Millisecond

// flowID is the id of the only installed flow whose normalized text
// (its stored record, printed) contains s.
func (d *dp) flowID(s string) uint32 {
	d.t.Helper()
	m := d.pinnedMap("flow_meta")
	defer m.Close()
	var id, found uint32
	var rec bpf.DatapathFlowRecord
	n := 0
	it := m.Iterate()
	for it.Next(&id, &rec) {
		f, err := ofctl.UnmarshalFlow(rec.Data[:rec.Len])
		if err != nil {
			d.t.Fatalf("flow %d: %v", id, err)
		}
		if strings.Contains(f.String(), s) {
			found = id
			n++
		}
	}
	if err := it.Err(); err != nil {
		d.t.Fatalf("flow records: iterate: %v", err)
	}
	if n != 1 {
		d.t.Fatalf("%d flows contain %q, want 1", n, s)
	}
	return found
}

// flowTimes reads a flow's stored times: its install time (flow_meta,
// the loader's), its hard deadline (its entries in flows; 0: none) and
// its last use (flow_used).
func (d *dp) flowTimes(id uint32) (created, deadline, used uint64) {
	d.t.Helper()
	meta, flows, usedMap := d.pinnedMap("flow_meta"), d.pinnedMap("flows"), d.pinnedMap("flow_used")
	defer meta.Close()
	defer flows.Close()
	defer usedMap.Close()
	var rec bpf.DatapathFlowRecord
	if err := meta.Lookup(id, &rec); err != nil {
		d.t.Fatal(err)
	}
	if err := usedMap.Lookup(id, &used); err != nil {
		d.t.Fatal(err)
	}
	var k bpf.DatapathFlowLookup
	var r bpf.DatapathFlowRef
	it := flows.Iterate()
	for it.Next(&k, &r) {
		if r.FlowId == id && k.Gen == d.gen()&1 {
			deadline = r.HardDeadlineNs
		}
	}
	if err := it.Err(); err != nil {
		d.t.Fatalf("flows: iterate: %v", err)
	}
	return rec.CreatedNs, deadline, used
}

// gen is the flow-table generation packets use (flows keys hold it
// modulo GENERATIONS, 2).
func (d *dp) gen() uint16 {
	d.t.Helper()
	m := d.pinnedMap("config")
	defer m.Close()
	var c bpf.DatapathBridgeConfig
	if err := m.Lookup(uint32(0), &c); err != nil {
		d.t.Fatal(err)
	}
	return uint16(c.Gen)
}

// ageFlow makes a flow by older, as if by had passed since it was
// installed and last used: its install time, last use and hard deadline
// move back by by, wherever they are stored -- flow_meta (what the loader
// expires it by), flow_used, and the flow_ref copies in flows and in
// flow_cache (what the datapath expires it by).
func (d *dp) ageFlow(id uint32, by time.Duration) {
	d.t.Helper()
	meta, used := d.pinnedMap("flow_meta"), d.pinnedMap("flow_used")
	defer meta.Close()
	defer used.Close()
	var rec bpf.DatapathFlowRecord
	if err := meta.Lookup(id, &rec); err != nil {
		d.t.Fatal(err)
	}
	rec.CreatedNs -= uint64(by)
	if err := meta.Put(id, &rec); err != nil {
		d.t.Fatal(err)
	}
	var u uint64
	if err := used.Lookup(id, &u); err != nil {
		d.t.Fatal(err)
	}
	if err := used.Put(id, u-uint64(by)); err != nil {
		d.t.Fatal(err)
	}
	ageFlowRefs[bpf.DatapathFlowLookup](d, "flows", id, by)
	ageFlowRefs[bpf.DatapathCacheKey](d, "flow_cache", id, by)
}

// ageFlowRefs ages flow id's refs in the lookup map name:
// testenv.AgeFlowRefs.
func ageFlowRefs[K any](d *dp, name string, id uint32, by time.Duration) {
	d.t.Helper()
	m := d.pinnedMap(name)
	defer m.Close()
	if err := testenv.AgeFlowRefs[K](m, id, by); err != nil {
		d.t.Fatalf("%s: %v", name, err)
	}
}

// ageConns makes every connection by older, as if by had passed since
// its last packet: its start and expiry move back by by.
func (d *dp) ageConns(by time.Duration) {
	d.t.Helper()
	ct, slots := d.pinnedMap("conntrack"), d.pinnedMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	var k bpf.DatapathCtKey
	var r bpf.DatapathCtRef
	n := 0
	it := ct.Iterate()
	for it.Next(&k, &r) {
		var e bpf.DatapathCtEntry
		if err := slots.Lookup(r.Slot, &e); err != nil {
			d.t.Fatal(err)
		}
		if e.Gen != r.Gen {
			continue
		}
		e.StartNs -= uint64(by)
		e.ExpiresNs -= uint64(by)
		if err := slots.Put(r.Slot, &e); err != nil {
			d.t.Fatal(err)
		}
		n++
	}
	if err := it.Err(); err != nil {
		d.t.Fatalf("conntrack: iterate: %v", err)
	}
	if n == 0 {
		d.t.Fatal("ageConns: no connection")
	}
}
