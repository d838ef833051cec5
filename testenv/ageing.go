package testenv

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// AgeFlowRefs moves back by `by` the hard deadline of flow id's refs in
// m, a bridge's flows or flow_cache map (keys of type K): the tests age a
// flow instead of sleeping past its timeout. Traffic may change
// flow_cache (an LRU) while it is read, which aborts an iteration, so the
// refs are collected first (again, if the iteration was aborted), then
// written; a ref evicted in between needs no ageing.
func AgeFlowRefs[K any](m *ebpf.Map, id uint32, by time.Duration) error {
	var keys []K
	var refs []bpf.DatapathFlowRef
	for try := 0; ; try++ {
		keys, refs = nil, nil
		var k K
		var r bpf.DatapathFlowRef
		it := m.Iterate()
		for it.Next(&k, &r) {
			if r.FlowId == id && r.HardDeadlineNs != 0 {
				keys, refs = append(keys, k), append(refs, r)
			}
		}
		err := it.Err()
		if err == nil {
			break
		}
		if !errors.Is(err, ebpf.ErrIterationAborted) || try == 10 {
			return fmt.Errorf("iterate: %w", err)
		}
	}
	for i := range keys {
		refs[i].HardDeadlineNs -= uint64(by)
		if err := m.Update(&keys[i], &refs[i], ebpf.UpdateExist); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("age flow %d: %w", id, err)
		}
	}
	return nil
}
