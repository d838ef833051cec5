package loader

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/flowtable"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// Limits of the datapath's maps (bpf/common.h's enum limit).
const (
	maxSubtables = int(bpf.DatapathLimitMAX_SUBTABLES)
	maxTables    = uint32(bpf.DatapathLimitMAX_TABLES)
	generations  = uint32(bpf.DatapathLimitGENERATIONS)
)

// InstalledFlow is a flow in the bridge, with its counters.
type InstalledFlow struct {
	*ofctl.Flow
	ID       uint32
	Seq      uint32        // install order
	Duration time.Duration // since installed
	Packets  uint64
	Bytes    uint64
	Learned  bool // added by a learn action in the datapath (learn.go)
}

// identity is what makes two flows "the same flow" for add-flow: table,
// priority and match (OpenFlow's overlap rule for an identical match). The
// match is normalized by the parser, so its fields' bytes identify it.
func identity(f *ofctl.Flow) string {
	var buf [64]byte
	return string(f.Match.AppendKey(append(buf[:0], f.Table, byte(f.Priority>>8), byte(f.Priority))))
}

type record struct {
	id   uint32
	rec  bpf.DatapathFlowRecord
	flow *ofctl.Flow
	comp *flowtable.Compiled // the flow compiled, when the caller already did it
	// reset: the flow's counters start at 0 although its id was in use
	// before the change (replace-flows: a changed flow, or a new one that
	// takes the id of one it removes).
	reset bool
}

// newRecord stores f typed (ofctl's binary record): no command parses
// the installed table's text again.
func newRecord(f *ofctl.Flow, seq uint32) (bpf.DatapathFlowRecord, error) {
	r := bpf.DatapathFlowRecord{CreatedNs: monotonicNow(), Seq: seq}
	data, err := f.MarshalBinary()
	if err != nil {
		return r, err
	}
	if len(data) > len(r.Data) {
		return r, fmt.Errorf("flow too long to store: %d bytes as a record, at most %d", len(data), len(r.Data))
	}
	r.Len = uint16(copy(r.Data[:], data))
	return r, nil
}

// expired says whether a flow is past its hard_timeout or idle longer than
// its idle_timeout: the datapath no longer matches it.
func (b *Bridge) expired(r *record, now uint64) bool {
	if h := r.flow.HardTimeout; h != 0 && now >= r.rec.CreatedNs+uint64(h)*1e9 {
		return true
	}
	if i := r.flow.IdleTimeout; i != 0 {
		var used uint64
		if err := b.maps.FlowUsed.Lookup(r.id, &used); err == nil && now >= used+uint64(i)*1e9 {
			return true
		}
	}
	return false
}

// records reads every live flow, in install order. Flows whose timeout
// has passed are removed here: whichever ebpfovs call comes next cleans
// up, no daemon is needed.
func (b *Bridge) records() ([]record, error) {
	all, err := b.allRecords()
	if err != nil {
		return nil, err
	}
	now := monotonicNow()
	live := all[:0:0]
	for i := range all {
		if !b.expired(&all[i], now) {
			live = append(live, all[i])
		}
	}
	if len(live) != len(all) {
		if err := b.commit(all, live, nil); err != nil {
			return nil, fmt.Errorf("remove expired flows: %w", err)
		}
	}
	return live, nil
}

func (b *Bridge) allRecords() ([]record, error) {
	ids, recs, err := readAll[uint32, bpf.DatapathFlowRecord](b.maps.FlowMeta)
	if err != nil {
		return nil, fmt.Errorf("read flows: %w", err)
	}
	out := make([]record, 0, len(ids))
	for i, id := range ids {
		n := min(int(recs[i].Len), len(recs[i].Data))
		f, err := ofctl.UnmarshalFlow(recs[i].Data[:n])
		if err != nil {
			return nil, fmt.Errorf("stored flow %d is unreadable: %w", id, err)
		}
		out = append(out, record{id: id, rec: recs[i], flow: f})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Seq < out[j].rec.Seq })
	return out, nil
}

// Flows lists the installed flows with their counters, ordered as
// dump-flows prints them: by table, then priority (highest first), then
// install order.
func (b *Bridge) Flows() ([]InstalledFlow, error) {
	recs, err := b.records()
	if err != nil {
		return nil, err
	}
	var out []InstalledFlow
	err = b.withEMCHits(func(h *emcHits) error {
		out = b.flowsWithStats(recs, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	ls, err := b.learnedFlows()
	if err != nil {
		return nil, err
	}
	learnedOnes, err := b.installedLearned(ls)
	if err != nil {
		return nil, err
	}
	out = append(out, learnedOnes...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		return out[i].Priority > out[j].Priority
	})
	return out, nil
}

// flowsWithStats is recs with their counters and the hits the flow
// cache's entries hold for them (emchits.go), in recs' order.
func (b *Bridge) flowsWithStats(recs []record, h *emcHits) []InstalledFlow {
	now := monotonicNow()
	out := make([]InstalledFlow, 0, len(recs))
	for _, r := range recs {
		// OVS keeps flow ages in milliseconds, so dump-flows shows "15.038s".
		age := time.Duration(now - r.rec.CreatedNs).Truncate(time.Millisecond)
		f := InstalledFlow{Flow: r.flow, ID: r.id, Seq: r.rec.Seq, Duration: age}
		var per []bpf.DatapathFlowCounts
		if err := b.maps.FlowStats.Lookup(r.id, &per); err == nil {
			for _, c := range per {
				f.Packets += c.Packets
				f.Bytes += c.Bytes
			}
		}
		f.Packets += h.flows[r.id].packets
		f.Bytes += h.flows[r.id].bytes
		out = append(out, f)
	}
	return out
}

func (b *Bridge) installDefaultFlow() error {
	f, err := ofctl.ParseFlow("priority=0 actions=NORMAL", nil)
	if err != nil {
		return err
	}
	return b.AddFlows([]*ofctl.Flow{f})
}

// AddFlows installs flows, all or none. A flow with the same table,
// priority and match as an installed one replaces it (keeping its counters,
// as OVS does without reset_counts).
func (b *Bridge) AddFlows(flows []*ofctl.Flow) error {
	recs, err := b.records()
	if err != nil {
		return err
	}
	byIdentity := make(map[string]int, len(recs)+len(flows))
	used := make(map[uint32]bool, len(recs)+len(flows))
	var seq uint32
	for i, r := range recs {
		byIdentity[identity(r.flow)] = i
		used[r.id] = true
		if r.rec.Seq >= seq {
			seq = r.rec.Seq + 1
		}
	}
	old := recs
	recs = make([]record, len(old), len(old)+len(flows))
	copy(recs, old)
	dirty := make(map[uint32]bool, len(flows))
	nextID := uint32(0)
	for n, f := range flows {
		c, err := flowtable.Compile(f)
		if err != nil {
			return flowError(n, len(flows), err)
		}
		rec, err := newRecord(f, seq)
		if err != nil {
			return flowError(n, len(flows), err)
		}
		seq++
		id := identity(f)
		if i, ok := byIdentity[id]; ok {
			recs[i] = record{id: recs[i].id, rec: rec, flow: f, comp: c}
			dirty[recs[i].id] = true
			continue
		}
		for used[nextID] {
			nextID++
		}
		if nextID >= b.maxFlows() {
			return fmt.Errorf("flow table full: at most %d flows", b.maxFlows())
		}
		used[nextID] = true
		byIdentity[id] = len(recs)
		recs = append(recs, record{id: nextID, rec: rec, flow: f, comp: c})
		dirty[nextID] = true
	}
	return b.commit(old, recs, dirty)
}

// ModFlows gives the flows spec covers (OVS's loose or strict matching,
// cookie mask included) spec's actions, keeping their counters and age.
// When it covers none it adds spec as a flow, as OpenFlow 1.0's modify
// (ovs-ofctl's default protocol) does. It returns how many it modified.
func (b *Bridge) ModFlows(spec *ofctl.Flow, strict bool) (int, error) {
	if err := flowtable.CheckActions(spec.Actions); err != nil {
		return 0, err
	}
	recs, err := b.records()
	if err != nil {
		return 0, err
	}
	want := append([]record(nil), recs...)
	dirty := map[uint32]bool{}
	for i, r := range recs {
		if !spec.Covers(r.flow, strict) {
			continue
		}
		f := *r.flow
		f.Actions = spec.Actions
		rec, err := newRecord(&f, r.rec.Seq)
		if err != nil {
			return 0, err
		}
		rec.CreatedNs = r.rec.CreatedNs
		want[i] = record{id: r.id, rec: rec, flow: &f}
		dirty[r.id] = true
	}
	if len(dirty) == 0 {
		return 0, b.AddFlows([]*ofctl.Flow{spec.AsAdd()})
	}
	return len(dirty), b.commit(recs, want, dirty)
}

// ReplaceFlows makes the bridge hold exactly these flows, in one change
// packets see atomically (ovs-ofctl replace-flows). Flows whose table,
// priority and match are unchanged keep their counters and age when their
// actions and cookie are unchanged too; changed and new flows start at 0.
func (b *Bridge) ReplaceFlows(flows []*ofctl.Flow) error {
	recs, err := b.records()
	if err != nil {
		return err
	}
	existing := map[string]record{}
	var seq uint32
	for _, r := range recs {
		existing[identity(r.flow)] = r
		if r.rec.Seq >= seq {
			seq = r.rec.Seq + 1
		}
	}
	used := map[uint32]bool{}
	want := make([]record, 0, len(flows))
	dirty := map[uint32]bool{}
	seen := map[string]bool{}
	var fresh []int // indexes in want that need a new id
	for n, f := range flows {
		if _, err := flowtable.Compile(f); err != nil {
			return flowError(n, len(flows), err)
		}
		id := identity(f)
		if seen[id] {
			continue // a later duplicate in the input: OVS keeps one
		}
		seen[id] = true
		if old, ok := existing[id]; ok {
			used[old.id] = true
			if old.flow.SameVersion(f) {
				want = append(want, old)
				continue
			}
			rec, err := newRecord(f, old.rec.Seq)
			if err != nil {
				return flowError(n, len(flows), err)
			}
			// A changed flow starts anew, counters included, as ovs-ofctl's
			// replace-flows adds it (an OpenFlow 1.0 add resets them).
			want = append(want, record{id: old.id, rec: rec, flow: f, reset: true})
			dirty[old.id] = true
			continue
		}
		rec, err := newRecord(f, seq)
		if err != nil {
			return flowError(n, len(flows), err)
		}
		seq++
		fresh = append(fresh, len(want))
		want = append(want, record{rec: rec, flow: f})
	}
	next := uint32(0)
	for _, i := range fresh {
		for used[next] {
			next++
		}
		if next >= b.maxFlows() {
			return fmt.Errorf("flow table full: at most %d flows", b.maxFlows())
		}
		used[next] = true
		want[i].id = next
		want[i].reset = true // the id may be that of a flow this change removes
		dirty[next] = true
	}
	if err := b.commit(recs, want, dirty); err != nil {
		return err
	}
	// No learned flow is in the file: they go, as ovs-ofctl's
	// replace-flows deletes every flow the file does not hold.
	_, err = b.deleteLearned(func(*ofctl.Flow, *ofctl.Learn) bool { return true })
	return err
}

func flowError(n, total int, err error) error {
	if total == 1 {
		return err
	}
	return fmt.Errorf("flow %d: %w", n+1, err)
}

// DelFlows deletes the flows the filter covers (OVS's loose or strict
// matching); a nil filter deletes every flow. It returns how many went.
func (b *Bridge) DelFlows(filter *ofctl.Flow, strict bool) (int, error) {
	recs, err := b.records()
	if err != nil {
		return 0, err
	}
	var keep []record
	for _, r := range recs {
		if filter != nil && !filter.Covers(r.flow, strict) {
			keep = append(keep, r)
		}
	}
	if len(keep) != len(recs) {
		if err := b.commit(recs, keep, nil); err != nil {
			return 0, err
		}
	}
	// Learned flows are flows like the others here, as in OVS.
	n, err := b.deleteLearned(func(f *ofctl.Flow, _ *ofctl.Learn) bool {
		return filter == nil || filter.Covers(f, strict)
	})
	return len(recs) - len(keep) + n, err
}

// commit makes the datapath hold exactly `want`, then stores the records.
// If the maps cannot be written it tries to restore `old`.
func (b *Bridge) commit(old, want []record, dirty map[uint32]bool) error {
	had := make(map[uint32]bool, len(old))
	for _, r := range old {
		had[r.id] = true
	}
	reset := map[uint32]bool{}
	for _, r := range want {
		if r.reset || !had[r.id] {
			reset[r.id] = true
		}
	}
	if err := b.sync(want, dirty, reset); err != nil {
		if rerr := b.sync(old, nil, nil); rerr != nil {
			return fmt.Errorf("%w (and restoring the previous flows failed: %v)", err, rerr)
		}
		return err
	}
	keep := make(map[uint32]bool, len(want))
	ids := make([]uint32, 0, len(want))
	recs := make([]bpf.DatapathFlowRecord, 0, len(want))
	for _, r := range want {
		keep[r.id] = true
		if dirty[r.id] || !had[r.id] {
			ids = append(ids, r.id)
			recs = append(recs, r.rec)
		}
	}
	if err := putAll(b.maps.FlowMeta, ids, recs); err != nil {
		return fmt.Errorf("store flows: %w", err)
	}
	b.step("flows: records stored")
	var gone []uint32
	for _, r := range old {
		if !keep[r.id] {
			gone = append(gone, r.id)
		}
	}
	if err := deleteAll(b.maps.FlowMeta, gone); err != nil {
		return fmt.Errorf("remove flow records: %w", err)
	}
	return b.deleteLearnedCookies(old, want)
}

// Bridge-wide switches in bridge_config.flags (bpf/common.h's enum cfg_flag).
const (
	cfgNoCache    = uint32(bpf.DatapathCfgFlagCFG_NO_CACHE)
	cfgTCPLiberal = uint32(bpf.DatapathCfgFlagCFG_TCP_LIBERAL)
	cfgCTPolicies = uint32(bpf.DatapathCfgFlagCFG_CT_POLICIES) // some zone has a timeout policy
)

func (b *Bridge) setConfigFlag(flag uint32, on bool) error {
	var cfg bpf.DatapathBridgeConfig
	if err := b.maps.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read bridge config: %w", err)
	}
	if on {
		cfg.Flags |= flag
	} else {
		cfg.Flags &^= flag
	}
	if err := b.maps.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write bridge config: %w", err)
	}
	return nil
}

// SetFlowCache turns the datapath's exact-match flow cache on or off (on
// by default). Off, every packet takes the tuple space search: for
// benchmarks of the classifier itself.
func (b *Bridge) SetFlowCache(on bool) error { return b.setConfigFlag(cfgNoCache, !on) }

// SetTCPLiberal is nf_conntrack_tcp_be_liberal: on, TCP segments outside
// the window are not +inv (only the state machine judges them). Off by
// default, as in the kernel.
func (b *Bridge) SetTCPLiberal(on bool) error { return b.setConfigFlag(cfgTCPLiberal, on) }

// TCPLiberal reports SetTCPLiberal's setting.
func (b *Bridge) TCPLiberal() (bool, error) {
	var cfg bpf.DatapathBridgeConfig
	if err := b.maps.Config.Lookup(uint32(0), &cfg); err != nil {
		return false, fmt.Errorf("read bridge config: %w", err)
	}
	return cfg.Flags&cfgTCPLiberal != 0, nil
}

// maxFlows is how many flows the bridge's maps were created for (learned
// flows' ids come after them).
func (b *Bridge) maxFlows() uint32 { return b.maps.FlowStats.MaxEntries() - learnMax }

// sync makes the datapath run exactly the given flows. It fills the
// generation packets are not using -- action lists, masks, flow entries,
// tables -- and then flips bridge_config.gen, one 32-bit write: a packet
// reads the generation once, so it sees the flow table before or after the
// change, never a mix. The old generation stays intact until the next
// change rewrites it, long after any packet that was using it is gone.
// The dirty flows among reset start with their counters at 0.
func (b *Bridge) sync(recs []record, dirty, reset map[uint32]bool) error {
	flows := make([]flowtable.Flow, 0, len(recs))
	for _, r := range recs {
		c := r.comp
		if c == nil {
			var err error
			if c, err = flowtable.Compile(r.flow); err != nil {
				return err
			}
		}
		f := flowtable.Flow{ID: r.id, Compiled: c}
		if r.flow.HardTimeout != 0 {
			f.HardDeadlineNs = r.rec.CreatedNs + uint64(r.flow.HardTimeout)*1e9
		}
		flows = append(flows, f)
	}
	var cfg bpf.DatapathBridgeConfig
	if err := b.maps.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read bridge config: %w", err)
	}
	gen := (cfg.Gen ^ 1) & 1 // the generation to fill
	old, held, err := b.readImage(gen)
	if err != nil {
		return err
	}
	live, err := b.learnedFlows()
	if err != nil {
		return err
	}
	held.Learned = learnedUses(live)
	img, err := flowtable.Build(flows, gen, b.maxFlows(), held)
	if err != nil {
		return err
	}
	ch := flowtable.Diff(old, img)
	if err := b.writeTemplates(ch.Templates, img.NewLearns); err != nil {
		return err
	}

	// Fill the idle generation: every action slot of this generation (it
	// may hold what a flow had two changes ago), the new flows' counters and
	// the changed flows' idle timers.
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return err
	}
	now := monotonicNow()
	var usedIDs []uint32
	var usedAt []uint64
	var newIDs []uint32
	for _, f := range flows {
		if dirty != nil && dirty[f.ID] {
			usedIDs = append(usedIDs, f.ID)
			usedAt = append(usedAt, now)
			if reset[f.ID] {
				newIDs = append(newIDs, f.ID)
			}
		}
	}
	if err := putAll(b.maps.FlowActions, ch.ActionSlots, ch.ActionLists); err != nil {
		return fmt.Errorf("write actions: %w", err)
	}
	if err := putAll(b.maps.FlowUsed, usedIDs, usedAt); err != nil {
		return fmt.Errorf("write flow use times: %w", err)
	}
	// Born in the current epoch: cache entries of an older one counted
	// the id's previous flow (emc_fold, emcHits).
	born := make([]bpf.DatapathFlowCounts, len(newIDs)*ncpu)
	for i := range born {
		born[i].Birth = cfg.Epoch
	}
	if err := putAll(b.maps.FlowStats, newIDs, born); err != nil {
		return fmt.Errorf("reset counters: %w", err)
	}
	for id, m := range ch.Masks {
		if err := b.maps.Masks.Put(id, &m); err != nil {
			return fmt.Errorf("write mask: %w", err)
		}
	}
	if err := deleteAll(b.maps.Flows, ch.StaleLookups); err != nil {
		return fmt.Errorf("remove flow entries: %w", err)
	}
	if err := putAll(b.maps.Flows, ch.LookupKeys, ch.LookupRefs); err != nil {
		if errors.Is(err, errNoSpace) {
			return fmt.Errorf("flow table full: %w", err)
		}
		return fmt.Errorf("write flow entries: %w", err)
	}
	for t, tbl := range ch.Tables {
		if err := b.maps.Tables.Put(gen*maxTables+t, &tbl); err != nil {
			return fmt.Errorf("write table %d: %w", t, err)
		}
	}

	// Whether XDP may run the new generation: written before the flip, so
	// no packet reads the new generation with the old verdict.
	flags := cfg.Flags&^(cfgXDPGen0<<gen) | img.XDP
	if flags != cfg.Flags {
		cfg.Flags = flags
		if err := b.maps.Config.Put(uint32(0), &cfg); err != nil {
			return fmt.Errorf("write bridge config: %w", err)
		}
	}

	b.step("flows: new generation written")
	// Flip, and start a new epoch: flow_cache entries of the old one are stale.
	cfg.Gen = gen
	cfg.Epoch = (cfg.Epoch + 1) & 0x7fffffff
	if err := b.maps.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("switch flow table generation: %w", err)
	}
	b.step("flows: generation switched")
	// Templates neither generation nor a learned flow uses.
	return b.freeTemplates(img.FreeTemplates)
}

// readImage reads what the maps hold for generation gen (its flow entries
// and tables, and the masks its tables use), and the masks either
// generation uses, by id: flowtable.Build keeps their ids.
func (b *Bridge) readImage(gen uint32) (*flowtable.Image, flowtable.Held, error) {
	img := &flowtable.Image{Gen: gen, Masks: map[uint32]flowtable.Mask{}, Lookups: map[bpf.DatapathFlowLookup]bpf.DatapathFlowRef{}}
	held := map[uint32]flowtable.Mask{}
	none := flowtable.Held{}
	for g := uint32(0); g < generations; g++ {
		for t := uint32(0); t < maxTables; t++ {
			var tbl bpf.DatapathTable
			if err := b.maps.Tables.Lookup(g*maxTables+t, &tbl); err != nil {
				return nil, none, fmt.Errorf("read table %d: %w", t, err)
			}
			if g == gen {
				img.Tables[t] = tbl
			}
			for i := uint32(0); i < tbl.Nsubtables && i < uint32(maxSubtables); i++ {
				id := tbl.St[i].MaskId
				if _, ok := held[id]; ok {
					continue
				}
				var fm flowtable.Mask
				if err := b.maps.Masks.Lookup(id, &fm); err != nil {
					return nil, none, fmt.Errorf("read mask %d: %w", id, err)
				}
				held[id] = fm
			}
		}
	}
	img.Masks = held
	lks, refs, err := readAll[bpf.DatapathFlowLookup, bpf.DatapathFlowRef](b.maps.Flows)
	if err != nil {
		return nil, none, fmt.Errorf("read flow entries: %w", err)
	}
	for i, lk := range lks {
		// Learned flows' entries are the datapath's (learn.go), not the image's.
		if m, ok := held[lk.MaskId]; uint32(lk.Gen) == gen && ok && m.Learned == 0 {
			img.Lookups[lk] = refs[i]
		}
	}
	tpls, err := b.templates()
	if err != nil {
		return nil, none, err
	}
	img.Templates = tpls
	return img, flowtable.Held{Masks: held, Templates: tpls}, nil
}
