package loader

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/flowtable"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// Flows the datapath learned (bpf/learn.h): each lives in a learned slot
// (its key, the packet that learned it, its template) and in the flows
// hash, once per generation, under its learn's own subtable. The loader
// reads them to print them, keeps their subtables while they live,
// removes the expired ones (as it removes expired installed flows: no
// daemon), and deletes them on del-flows, replace-flows and when a
// learning flow with delete_learned goes.

// learnMax is LEARN_MAX: learned flows per bridge.
const learnMax = flowtable.LearnMax

// learnedLive is LEARNED_LIVE, learned_slot.state's bit for a slot in use.
const learnedLive = uint64(bpf.DatapathLearnedStateLEARNED_LIVE)

// learned is one learned flow as the maps hold it.
type learned struct {
	slot uint32
	s    bpf.DatapathLearnedSlot
	ref  bpf.DatapathFlowRef
}

func (l *learned) flowID(base uint32) uint32 { return base + l.slot }

// learnedFlows reads the live learned flows. Those that expired, or whose
// entry another slot took, are removed (their slots freed) unless keep.
func (b *Bridge) learnedFlows() ([]learned, error) {
	slots, err := readArray[bpf.DatapathLearnedSlot](b.maps.LearnedSlots, b.maps.LearnedSlots.MaxEntries())
	if err != nil {
		return nil, fmt.Errorf("read learned flows: %w", err)
	}
	base, now := b.maxFlows(), monotonicNow()
	var out []learned
	for i, s := range slots {
		if s.State&learnedLive == 0 {
			continue
		}
		l := learned{slot: uint32(i), s: s}
		err := b.maps.Flows.Lookup(&s.Key, &l.ref)
		if err == nil && l.ref.FlowId == l.flowID(base) && !b.learnedExpired(&l, now) {
			out = append(out, l)
			continue
		}
		if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil, fmt.Errorf("read learned flow: %w", err)
		}
		if err := b.forgetLearned(&l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// learnedExpired: past its hard timeout, or idle longer than its idle
// timeout (classifier.h's flow_expired).
func (b *Bridge) learnedExpired(l *learned, now uint64) bool {
	if d := l.ref.HardDeadlineNs; d != 0 && now >= d {
		return true
	}
	if i := l.ref.IdleTimeout; i != 0 {
		var used uint64
		if err := b.maps.FlowUsed.Lookup(l.flowID(b.maxFlows()), &used); err == nil && now >= used+uint64(i)*1e9 {
			return true
		}
	}
	return false
}

// forgetLearned removes a learned flow: its entries (in both generations,
// while they are still its own), then its slot's live bit. A packet that
// learns it again meanwhile takes another slot.
func (b *Bridge) forgetLearned(l *learned) error {
	id := l.flowID(b.maxFlows())
	for g := uint32(0); g < generations; g++ {
		k := l.s.Key
		k.Gen = uint16(g)
		var ref bpf.DatapathFlowRef
		if err := b.maps.Flows.Lookup(&k, &ref); err != nil || ref.FlowId != id {
			continue
		}
		if err := b.maps.Flows.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("remove learned flow: %w", err)
		}
	}
	var now bpf.DatapathLearnedSlot
	if err := b.maps.LearnedSlots.Lookup(l.slot, &now); err != nil {
		return fmt.Errorf("read learned slot: %w", err)
	}
	if now.State != l.s.State {
		return nil // the datapath took the slot back already
	}
	now.State &^= learnedLive
	if err := b.maps.LearnedSlots.Put(l.slot, &now); err != nil {
		return fmt.Errorf("free learned slot: %w", err)
	}
	return nil
}

// learnedUses are what the flow table's next image must keep for the
// live learned flows.
func learnedUses(ls []learned) []flowtable.LearnedUse {
	out := make([]flowtable.LearnedUse, 0, len(ls))
	for _, l := range ls {
		out = append(out, flowtable.LearnedUse{Table: uint32(l.s.Key.Table), MaskID: l.s.Key.MaskId,
			Priority: l.ref.Priority, Template: l.s.Template})
	}
	return out
}

// templates reads learn_templates' entries in use, by id.
func (b *Bridge) templates() (map[uint32]flowtable.Template, error) {
	all, err := readArray[flowtable.Template](b.maps.LearnTemplates, b.maps.LearnTemplates.MaxEntries())
	if err != nil {
		return nil, fmt.Errorf("read learn templates: %w", err)
	}
	out := map[uint32]flowtable.Template{}
	for id, t := range all {
		if t.FlowBase != 0 { // written by Build: never 0 in use
			out[uint32(id)] = t
		}
	}
	return out, nil
}

// writeTemplates stores new and changed templates, and the learn actions
// of new ones (learn_meta, for dump-flows), before any flow names them.
func (b *Bridge) writeTemplates(ch map[uint32]flowtable.Template, learns map[uint32]*ofctl.Learn) error {
	for id, l := range learns {
		f := ofctl.Flow{Actions: []ofctl.Action{*l}}
		rec, err := newRecord(&f, 0)
		if err != nil {
			return fmt.Errorf("learn action: %w", err)
		}
		if err := b.maps.LearnMeta.Put(id, &rec); err != nil {
			return fmt.Errorf("write learn action: %w", err)
		}
	}
	for id, t := range ch {
		if err := b.maps.LearnTemplates.Put(id, &t); err != nil {
			return fmt.Errorf("write learn template: %w", err)
		}
	}
	return nil
}

// freeTemplates zeroes templates nothing uses any longer.
func (b *Bridge) freeTemplates(ids []uint32) error {
	var zero flowtable.Template
	for _, id := range ids {
		if err := b.maps.LearnTemplates.Put(id, &zero); err != nil {
			return fmt.Errorf("free learn template: %w", err)
		}
	}
	return nil
}

// learnOf is the learn action a template was compiled from.
func (b *Bridge) learnOf(tpl uint32, cache map[uint32]*ofctl.Learn) (*ofctl.Learn, error) {
	if l, ok := cache[tpl]; ok {
		return l, nil
	}
	var rec bpf.DatapathFlowRecord
	if err := b.maps.LearnMeta.Lookup(tpl, &rec); err != nil {
		return nil, fmt.Errorf("read learn action %d: %w", tpl, err)
	}
	f, err := ofctl.UnmarshalFlow(rec.Data[:min(int(rec.Len), len(rec.Data))])
	if err != nil {
		return nil, fmt.Errorf("stored learn action %d is unreadable: %w", tpl, err)
	}
	for _, a := range f.Actions {
		switch a := a.(type) {
		case ofctl.Learn:
			cache[tpl] = &a
			return &a, nil
		case *ofctl.Learn:
			cache[tpl] = a
			return a, nil
		}
	}
	return nil, fmt.Errorf("stored learn action %d holds no learn", tpl)
}

// learnedFlow is a learned flow as dump-flows prints it: its learn's
// specs applied to the packet that learned it.
func (b *Bridge) learnedFlow(l *learned, cache map[uint32]*ofctl.Learn) (*ofctl.Flow, *ofctl.Learn, error) {
	lrn, err := b.learnOf(l.s.Template, cache)
	if err != nil {
		return nil, nil, err
	}
	src := l.s.Src
	f, err := lrn.Learned(func(sf ofctl.Subfield) []byte {
		v, err := flowtable.SubfieldOf(&src, sf)
		if err != nil {
			return make([]byte, (sf.NBits+7)/8)
		}
		return v
	})
	if err != nil {
		return nil, nil, fmt.Errorf("learned flow: %w", err)
	}
	// The learn's timeouts, shortened since by fin_timeout if so.
	f.IdleTimeout = l.ref.IdleTimeout
	return f, lrn, nil
}

// installedLearned lists the live learned flows with their counters.
func (b *Bridge) installedLearned(ls []learned) ([]InstalledFlow, error) {
	now, base := monotonicNow(), b.maxFlows()
	cache := map[uint32]*ofctl.Learn{}
	out := make([]InstalledFlow, 0, len(ls))
	for i := range ls {
		l := &ls[i]
		f, _, err := b.learnedFlow(l, cache)
		if err != nil {
			return nil, err
		}
		fl := InstalledFlow{Flow: f, ID: l.flowID(base), Seq: ^uint32(0),
			Duration: time.Duration(now - l.s.CreatedNs).Truncate(time.Millisecond), Learned: true}
		var per []bpf.DatapathFlowCounts
		if err := b.maps.FlowStats.Lookup(fl.ID, &per); err == nil {
			for _, c := range per {
				// Another CPU's counts of the slot's earlier flow stay
				// until a packet of this one comes there (lookup_push).
				if c.Birth == uint32(l.ref.Birth) {
					fl.Packets += c.Packets
					fl.Bytes += c.Bytes
				}
			}
		}
		out = append(out, fl)
	}
	return out, nil
}

// deleteLearned removes the live learned flows for which del says so,
// and returns how many went.
func (b *Bridge) deleteLearned(del func(f *ofctl.Flow, l *ofctl.Learn) bool) (int, error) {
	ls, err := b.learnedFlows()
	if err != nil {
		return 0, err
	}
	cache := map[uint32]*ofctl.Learn{}
	n := 0
	for i := range ls {
		f, lrn, err := b.learnedFlow(&ls[i], cache)
		if err != nil {
			return n, err
		}
		if !del(f, lrn) {
			continue
		}
		if err := b.forgetLearned(&ls[i]); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// deleteLearnedCookies is delete_learned: when the last learning flow
// whose learn(delete_learned) has a table and cookie goes, the flows
// learned with that table and cookie go too (OVS's learned cookies).
func (b *Bridge) deleteLearnedCookies(old, want []record) error {
	type tc struct {
		table  uint8
		cookie uint64
	}
	cookies := func(rs []record) map[tc]bool {
		out := map[tc]bool{}
		for _, r := range rs {
			for _, a := range r.flow.Actions {
				var l *ofctl.Learn
				switch a := a.(type) {
				case ofctl.Learn:
					l = &a
				case *ofctl.Learn:
					l = a
				}
				if l != nil && l.DeleteLearned {
					out[tc{l.Table, l.Cookie}] = true
				}
			}
		}
		return out
	}
	had, have := cookies(old), cookies(want)
	gone := map[tc]bool{}
	for k := range had {
		if !have[k] {
			gone[k] = true
		}
	}
	if len(gone) == 0 {
		return nil
	}
	_, err := b.deleteLearned(func(f *ofctl.Flow, l *ofctl.Learn) bool {
		return gone[tc{l.Table, l.Cookie}]
	})
	return err
}

// initLearnLimit gives a new bridge its learn limit: every learned slot.
func (b *Bridge) initLearnLimit() error {
	return b.SetLearnLimit(learnMax)
}

// SetLearnLimit sets the most flows learn() keeps at once (at most
// LEARN_MAX, 8192): past it, learning stops and is counted (learn_full);
// the flows learned already stay until they expire or are deleted. 0
// learns nothing.
func (b *Bridge) SetLearnLimit(n uint32) error {
	if n > learnMax {
		return inputErrorf("learn limit %d: at most %d learned flows per bridge", n, learnMax)
	}
	var st bpf.DatapathLearnAllocState
	if err := b.maps.LearnState.Lookup(uint32(0), &st); err != nil {
		return fmt.Errorf("read learn state: %w", err)
	}
	st.Limit = n
	if err := b.maps.LearnState.Put(uint32(0), &st); err != nil {
		return fmt.Errorf("write learn limit: %w", err)
	}
	return nil
}

// LearnLimit reports SetLearnLimit's setting and how many learned flows
// live (the expired ones removed first).
func (b *Bridge) LearnLimit() (limit uint32, live int, err error) {
	var st bpf.DatapathLearnAllocState
	if err := b.maps.LearnState.Lookup(uint32(0), &st); err != nil {
		return 0, 0, fmt.Errorf("read learn state: %w", err)
	}
	ls, err := b.learnedFlows()
	if err != nil {
		return 0, 0, err
	}
	return st.Limit, len(ls), nil
}
