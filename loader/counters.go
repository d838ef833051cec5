package loader

import (
	"fmt"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// Counter names, in enum counter order (bpf/common.h).
var counterNames = []string{
	"packets", "not_ours", "table_miss", "pass_limit", "truncated",
	"ct_invalid", "ct_table_full", "output_no_port", "depth_limit", "step_limit",
	"ct_maxconns_refused", "ct_zone_limit_refused", "ct_expired_removed", "ct_race",
	"xdp_packets", "xdp_to_tc", "xdp_aborted", "emc_hits", "ct_flushed",
	"stage_fail",
	"emc_fold_seq", // not shown: the readers' own (emchits.go)
}

// Counter is one datapath counter, summed over CPUs.
type Counter struct {
	Name  string
	Value uint64
}

// Counters reads the datapath's counters (enum counter), in order, with
// the hits the flow cache's entries hold (emchits.go).
func (b *Bridge) Counters() ([]Counter, error) {
	var out []Counter
	err := b.withEMCHits(func(h *emcHits) (err error) {
		if out, err = b.readCounters(); err != nil {
			return err
		}
		for i := range out {
			switch out[i].Name {
			case "emc_hits", "packets":
				out[i].Value += h.hits
			case "table_miss":
				out[i].Value += h.misses
			}
		}
		return nil
	})
	return out, err
}

// readCounters reads the counters as they are in the map.
func (b *Bridge) readCounters() ([]Counter, error) {
	var out []Counter
	// A bridge pinned by an older ebpfovs has fewer counters: those it
	// has. The fold sequence is the readers' own (withEMCHits).
	n := min(uint32(bpf.DatapathCounterCNT_EMC_FOLD_SEQ), b.maps.Counters.MaxEntries())
	for i := uint32(0); i < n; i++ {
		var per []uint64
		if err := b.maps.Counters.Lookup(i, &per); err != nil {
			return nil, fmt.Errorf("read counter %d: %w", i, err)
		}
		c := Counter{Name: fmt.Sprint(i)}
		if int(i) < len(counterNames) {
			c.Name = counterNames[i]
		}
		for _, v := range per {
			c.Value += v
		}
		out = append(out, c)
	}
	return out, nil
}

// FlowCacheEntries counts the exact-match cache's entries (all epochs).
func (b *Bridge) FlowCacheEntries() (int, error) {
	keys, _, err := readAll[bpf.DatapathCacheKey, bpf.DatapathFlowRef](b.maps.FlowCache)
	if err != nil {
		return 0, fmt.Errorf("read flow cache: %w", err)
	}
	return len(keys), nil
}
