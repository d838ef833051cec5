package ctl_test

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// Timeouts are tested by moving the times the bridge's maps store back,
// as bpf/clock_test.go does, not by sleeping: a test that sleeps past a
// timeout is slow, and one that needs a flow or a connection to outlive a
// few steps breaks when a slow VM takes longer than the timeout between
// them. The datapath keeps every time as CLOCK_MONOTONIC_COARSE
// nanoseconds, the loader as CLOCK_MONOTONIC (monotonicNow).

// agingCoarseLag bounds how far the datapath's clock lags CLOCK_MONOTONIC:
// a tick (10 ms at HZ=100), with room for a late one in a VM.
const agingCoarseLag = 50 * time.Millisecond

// monotonicNow is CLOCK_MONOTONIC in nanoseconds, the loader's clock.
func (c *cli) monotonicNow() uint64 {
	c.t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		c.t.Fatalf("clock_gettime(CLOCK_MONOTONIC): %v", err)
	}
	return uint64(ts.Nano())
}

// bridgeMap opens one of the bridge's pinned maps (newCLI's --bpffs and
// -b); the caller closes it.
func (c *cli) bridgeMap(name string) *ebpf.Map {
	c.t.Helper()
	if len(c.global) < 4 || c.global[0] != "--bpffs" || c.global[2] != "-b" {
		c.t.Fatalf("bridgeMap: global flags %q, want --bpffs DIR -b BRIDGE first", c.global)
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(c.global[1], c.global[3], name), nil)
	if err != nil {
		c.t.Fatalf("open the bridge's map %s: %v", name, err)
	}
	return m
}

// flowID is the id of the only installed flow whose normalized text (its
// stored record, printed) contains s.
func (c *cli) flowID(s string) uint32 {
	c.t.Helper()
	m := c.bridgeMap("flow_meta")
	defer m.Close()
	var id, found uint32
	var rec bpf.DatapathFlowRecord
	var matched []string
	it := m.Iterate()
	for it.Next(&id, &rec) {
		f, err := ofctl.UnmarshalFlow(rec.Data[:rec.Len])
		if err != nil {
			c.t.Fatalf("flow_meta: flow %d: %v", id, err)
		}
		if text := f.String(); strings.Contains(text, s) {
			found = id
			matched = append(matched, text)
		}
	}
	if err := it.Err(); err != nil {
		c.t.Fatalf("flow_meta: iterate: %v", err)
	}
	if len(matched) != 1 {
		c.t.Fatalf("flows containing %q: %q, want exactly one", s, matched)
	}
	return found
}

// ageFlow makes flow id older by by, as if by had passed since it was
// installed and last used: its install time (flow_meta, what the loader
// expires it by), its last use (flow_used) and its hard deadline (the
// flow_ref copies in flows and flow_cache, what the datapath expires it
// by) all move back by by. No packet may use the flow meanwhile.
func (c *cli) ageFlow(id uint32, by time.Duration) {
	c.t.Helper()
	meta, used := c.bridgeMap("flow_meta"), c.bridgeMap("flow_used")
	defer meta.Close()
	defer used.Close()
	var rec bpf.DatapathFlowRecord
	if err := meta.Lookup(id, &rec); err != nil {
		c.t.Fatalf("flow_meta: flow %d: %v", id, err)
	}
	rec.CreatedNs -= uint64(by)
	if err := meta.Put(id, &rec); err != nil {
		c.t.Fatalf("flow_meta: age flow %d: %v", id, err)
	}
	var u uint64
	if err := used.Lookup(id, &u); err != nil {
		c.t.Fatalf("flow_used: flow %d: %v", id, err)
	}
	if err := used.Put(id, u-uint64(by)); err != nil {
		c.t.Fatalf("flow_used: age flow %d: %v", id, err)
	}
	ageRefs[bpf.DatapathFlowLookup](c, "flows", id, by)
	ageRefs[bpf.DatapathCacheKey](c, "flow_cache", id, by)
}

// ageRefs ages flow id's refs in the bridge's map name (flows, or
// flow_cache): testenv.AgeFlowRefs.
func ageRefs[K any](c *cli, name string, id uint32, by time.Duration) {
	c.t.Helper()
	m := c.bridgeMap(name)
	defer m.Close()
	if err := testenv.AgeFlowRefs[K](m, id, by); err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
}

// eachConn calls fn once per live connection with its slot number and
// entry: a connection with two keys (NAT) holds one slot, visited once.
// fn may write the entry back through slots.
func (c *cli) eachConn(fn func(slots *ebpf.Map, slot uint32, e *bpf.DatapathCtEntry)) {
	c.t.Helper()
	ct, slots := c.bridgeMap("conntrack"), c.bridgeMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	var k bpf.DatapathCtKey
	var r bpf.DatapathCtRef
	seen := map[uint32]bool{}
	it := ct.Iterate()
	for it.Next(&k, &r) {
		if seen[r.Slot] {
			continue
		}
		seen[r.Slot] = true
		var e bpf.DatapathCtEntry
		if err := slots.Lookup(r.Slot, &e); err != nil {
			c.t.Fatalf("ct_slots: slot %d: %v", r.Slot, err)
		}
		if e.Gen == r.Gen {
			fn(slots, r.Slot, &e)
		}
	}
	if err := it.Err(); err != nil {
		c.t.Fatalf("conntrack: iterate: %v", err)
	}
}

// connExpiries is each live connection's expiry (CLOCK_MONOTONIC ns) as
// the datapath stored it at the connection's last packet.
func (c *cli) connExpiries() []uint64 {
	c.t.Helper()
	var exp []uint64
	c.eachConn(func(_ *ebpf.Map, _ uint32, e *bpf.DatapathCtEntry) { exp = append(exp, e.ExpiresNs) })
	return exp
}

// ageConns makes every connection older by by, as if by had passed since
// its last packet: its start and expiry move back by by. No packet may
// use the connections meanwhile.
func (c *cli) ageConns(by time.Duration) {
	c.t.Helper()
	n := 0
	c.eachConn(func(slots *ebpf.Map, slot uint32, e *bpf.DatapathCtEntry) {
		e.StartNs -= uint64(by)
		e.ExpiresNs -= uint64(by)
		if err := slots.Put(slot, e); err != nil {
			c.t.Fatalf("ct_slots: age slot %d: %v", slot, err)
		}
		n++
	})
	if n == 0 {
		c.t.Fatal("ageConns: no connection to age")
	}
}
