package loader

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/ebpfovs/ebpfovs/bpf"
)

// A cache hit does not touch the counters its walk counts (flows, table
// misses, ports, emc_hits, packets): its entry in the exact-match cache counts it
// (hit_packets, hit_bytes), and the datapath folds that into the counters
// when the entry is replaced (bpf/emc.h: emc_fold). Until then, readers
// add the entries' hits themselves; this file does that, as the fold
// would, for Flows, Ports and Counters. docs/design.md says why.

// emcReadTries bounds the reads withEMCHits retries while folds run.
const emcReadTries = 8

type packetsBytes struct{ packets, bytes uint64 }

// emcHits is what the cache's entries hold: by flow id, by port (rx, tx,
// rx_dropped) and for the datapath counters.
type emcHits struct {
	flows     map[uint32]packetsBytes
	rx, tx    map[uint32]packetsBytes
	rxDropped map[uint32]uint64
	hits      uint64 // emc_hits, and packets
	misses    uint64 // table_miss
}

// withEMCHits runs read, which reads counters and adds h, between two reads
// of every CPU's fold sequence (CNT_EMC_FOLD_SEQ, odd while a fold runs),
// and again while a fold ran meanwhile: a fold moves counts from an entry
// to the counters, so a read across one would count them twice or not at
// all. After emcReadTries the last read stands (folds that often mean the
// counts are changing faster than they can be read anyway).
func (b *Bridge) withEMCHits(read func(h *emcHits) error) error {
	for try := 1; ; try++ {
		before, err := b.foldSeq()
		if err != nil {
			return err
		}
		h, err := b.readEMCHits()
		if err != nil {
			return err
		}
		if err := read(h); err != nil {
			return err
		}
		after, err := b.foldSeq()
		if err != nil {
			return err
		}
		if try >= emcReadTries || (slices.Equal(before, after) && !slices.ContainsFunc(after, isOdd)) {
			return nil
		}
	}
}

func isOdd(v uint64) bool { return v&1 == 1 }

// foldSeq is every CPU's fold sequence (nil on a bridge without one).
func (b *Bridge) foldSeq() ([]uint64, error) {
	i := uint32(bpf.DatapathCounterCNT_EMC_FOLD_SEQ)
	if i >= b.maps.Counters.MaxEntries() {
		return nil, nil
	}
	var per []uint64
	if err := b.maps.Counters.Lookup(i, &per); err != nil {
		return nil, fmt.Errorf("read the cache's fold sequence: %w", err)
	}
	return per, nil
}

// readEMCHits reads the hits every CPU's cache entries hold, giving each
// flow and port only those of entries stored since it was installed or
// attached (its birth epoch), as emc_fold does.
func (b *Bridge) readEMCHits() (*emcHits, error) {
	h := &emcHits{
		flows: map[uint32]packetsBytes{}, rx: map[uint32]packetsBytes{},
		tx: map[uint32]packetsBytes{}, rxDropped: map[uint32]uint64{},
	}
	entries, err := readPerCPUArray[bpf.DatapathEmcEntry](b.maps.Emc)
	if err != nil {
		return nil, fmt.Errorf("read the flow cache: %w", err)
	}
	flowBirth := birthOf[bpf.DatapathFlowCounts](b.maps.FlowStats, func(c *bpf.DatapathFlowCounts) uint32 { return c.Birth })
	portBirth := birthOf[bpf.DatapathPortCounts](b.maps.PortStats, func(c *bpf.DatapathPortCounts) uint32 { return c.Birth })
	add := func(m map[uint32]packetsBytes, k uint32, n, bytes uint64) {
		v := m[k]
		v.packets += n
		v.bytes += bytes
		m[k] = v
	}
	for i := range entries {
		e := &entries[i]
		n, bytes := e.HitPackets, e.HitBytes
		if n == 0 {
			continue
		}
		for _, id := range e.Flows[:min(int(e.Nflows), len(e.Flows))] {
			if born(e.Epoch, flowBirth(id)) {
				add(h.flows, id, n, bytes)
			}
		}
		h.misses += n * uint64(e.Nmiss)
		if born(e.Epoch, portBirth(e.InPort)) {
			add(h.rx, e.InPort, n, bytes)
			if e.Nout == 0 {
				h.rxDropped[e.InPort] += n
			}
		}
		for _, p := range e.Out[:min(int(e.Nout), len(e.Out))] {
			if born(e.Epoch, portBirth(p)) {
				add(h.tx, p, n, bytes)
			}
		}
		h.hits += n
	}
	return h, nil
}

// born is emc_born: whether what was born at epoch birth was there for an
// entry of epoch (31-bit serial arithmetic). A birth that could not be
// read (the flow or port is gone) is never there.
func born(epoch uint32, birth *uint32) bool {
	return birth != nil && (epoch-*birth)&0x7fffffff < 0x40000000
}

// birthOf looks up (once per key) the birth epoch in a per-CPU counters
// map; every CPU's copy holds the same.
func birthOf[V any](m *ebpf.Map, birth func(*V) uint32) func(uint32) *uint32 {
	seen := map[uint32]*uint32{}
	return func(k uint32) *uint32 {
		if b, ok := seen[k]; ok {
			return b
		}
		var per []V
		var b *uint32
		if err := m.Lookup(k, &per); err == nil && len(per) > 0 {
			v := birth(&per[0])
			b = &v
		}
		seen[k] = b
		return b
	}
}
