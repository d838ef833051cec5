package loader

import (
	"fmt"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// counterNames are the names `show` and `ct-stats-show` print for the
// datapath's counters (bpf/common.h's enum counter, whose values bpf2go
// exports): a name per counter, not a copy of the enum's order.
var counterNames = map[bpf.DatapathCounter]string{
	bpf.DatapathCounterCNT_PACKETS:          "packets",
	bpf.DatapathCounterCNT_NOT_OURS:         "not_ours",
	bpf.DatapathCounterCNT_MISS:             "table_miss",
	bpf.DatapathCounterCNT_PASS_LIMIT:       "pass_limit",
	bpf.DatapathCounterCNT_TRUNCATED:        "truncated",
	bpf.DatapathCounterCNT_CT_INVALID:       "ct_invalid",
	bpf.DatapathCounterCNT_CT_FULL:          "ct_table_full",
	bpf.DatapathCounterCNT_OUTPUT_NOPORT:    "output_no_port",
	bpf.DatapathCounterCNT_DEPTH_LIMIT:      "depth_limit",
	bpf.DatapathCounterCNT_STEP_LIMIT:       "step_limit",
	bpf.DatapathCounterCNT_CT_MAXCONNS:      "ct_maxconns_refused",
	bpf.DatapathCounterCNT_CT_ZONE_LIMIT:    "ct_zone_limit_refused",
	bpf.DatapathCounterCNT_CT_EXPIRED:       "ct_expired_removed",
	bpf.DatapathCounterCNT_CT_RACE:          "ct_race",
	bpf.DatapathCounterCNT_XDP_PACKETS:      "xdp_packets",
	bpf.DatapathCounterCNT_XDP_TO_TC:        "xdp_to_tc",
	bpf.DatapathCounterCNT_XDP_ABORTED:      "xdp_aborted",
	bpf.DatapathCounterCNT_EMC_HITS:         "emc_hits",
	bpf.DatapathCounterCNT_CT_FLUSHED:       "ct_flushed",
	bpf.DatapathCounterCNT_STAGE_FAIL:       "stage_fail",
	bpf.DatapathCounterCNT_CT_NAT_FAIL:      "ct_nat_failed",
	bpf.DatapathCounterCNT_XDP_FAST:         "xdp_fast",
	bpf.DatapathCounterCNT_NORMAL_VLAN_DROP: "normal_vlan_drop",
	bpf.DatapathCounterCNT_PATCH_NO_PEER:    "patch_no_peer",
	bpf.DatapathCounterCNT_PATCH_LOOP:       "patch_loop",
	bpf.DatapathCounterCNT_PATCH_EXTRA:      "patch_extra",
	bpf.DatapathCounterCNT_TUNNEL_NO_PORT:   "tunnel_no_port",
	bpf.DatapathCounterCNT_TUNNEL_NO_REMOTE: "tunnel_no_remote",
	bpf.DatapathCounterCNT_LEARNED:          "learned",
	bpf.DatapathCounterCNT_LEARN_FULL:       "learn_full",
	bpf.DatapathCounterCNT_EMC_FOLD_SEQ:     "emc_fold_seq", // not shown: the readers' own (emchits.go)
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
		c := Counter{Name: counterNames[bpf.DatapathCounter(i)]}
		if c.Name == "" {
			c.Name = fmt.Sprint(i)
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
