package flowtable

import (
	"fmt"
	"sort"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// Limits of the datapath's flow table (bpf/common.h's enum limit).
const (
	maxMasks     = uint32(bpf.DatapathLimitMAX_MASKS)
	maxSubtables = int(bpf.DatapathLimitMAX_SUBTABLES)
	maxTables    = uint32(bpf.DatapathLimitMAX_TABLES)
	// Tables is how many tables entries a generation has (the last one,
	// EMC_TABLE, holds the exact-match cache's shape).
	Tables = maxTables
	// MaxPort is the highest OpenFlow port number a bridge can hold.
	MaxPort = uint32(bpf.DatapathLimitMAX_PORTS) - 1 // 255
	noTable = uint32(bpf.DatapathNoTableNO_TABLE)
	// cfgXDPGen0 is CFG_XDP_GEN0; CFG_XDP_GEN1 is the next bit.
	cfgXDPGen0 = uint32(bpf.DatapathCfgFlagCFG_XDP_GEN0)
)

// Flow is one installed flow, as the image needs it.
type Flow struct {
	ID             uint32 // flow_stats index; its action slot is ID + gen*maxFlows
	HardDeadlineNs uint64 // hard_timeout's end, CLOCK_MONOTONIC; 0: none
	*Compiled
}

// Mask is a subtable's mask as the masks map holds it.
type Mask = bpf.DatapathFlowMask

// Image is what the datapath reads for one generation of the flow table:
// the contents of its maps' entries for that generation.
type Image struct {
	Gen     uint32
	Masks   map[uint32]Mask                                // the masks its tables use, by id
	Lookups map[bpf.DatapathFlowLookup]bpf.DatapathFlowRef // the flows hash (not learned flows')
	Tables  [maxTables]bpf.DatapathTable                   // tables[gen*MAX_TABLES + t]
	Actions map[uint32]bpf.DatapathActionList              // flow_actions, by slot
	XDP     uint32                                         // the generation's CFG_XDP_GEN bit, or 0
	// Templates are the learn templates to hold after this change, by
	// id: the held ones with this generation's bit in Gens updated, and
	// new ones (whose learn actions are in NewLearns, for learn_meta).
	// FreeTemplates are held ids no generation and no learned flow uses.
	Templates     map[uint32]Template
	NewLearns     map[uint32]*ofctl.Learn
	FreeTemplates []uint32
}

// Held is what the maps hold that an image must keep: masks keep their
// ids, templates their ids while a generation or a learned flow uses them,
// and learned flows their subtables.
type Held struct {
	Masks     map[uint32]Mask     // the masks either generation's tables use, by id
	Templates map[uint32]Template // learn_templates' entries in use, by id
	Learned   []LearnedUse        // the live learned flows
}

// LearnedUse is what a live learned flow needs of the tables: its
// subtable, with a priority at least its own, and its template.
type LearnedUse struct {
	Table    uint32
	MaskID   uint32
	Priority uint32
	Template uint32
}

// maskIdentity tells masks apart: a learned subtable's mask never shares
// an id with installed flows' masks of the same bits (their entries would
// share hash keys).
type maskIdentity struct {
	bits    keyBytes
	learned bool
}

// Build makes the image of flows (in install order: on equal priority and
// match, the older flow wins) for generation gen. held are the masks the
// maps hold now, in either generation, by id: a mask keeps its id, and a
// new mask never takes an id the running generation uses. maxFlows is the
// flow_stats size, the stride of the action slots.
func Build(flows []Flow, gen, maxFlows uint32, held Held) (*Image, error) {
	img := &Image{Gen: gen, Masks: map[uint32]Mask{}, Lookups: map[bpf.DatapathFlowLookup]bpf.DatapathFlowRef{},
		Actions:   make(map[uint32]bpf.DatapathActionList, len(flows)),
		Templates: map[uint32]Template{}, NewLearns: map[uint32]*ofctl.Learn{}}
	idOf := map[maskIdentity]uint32{}
	taken := map[uint32]bool{}
	for id, m := range held.Masks {
		idOf[maskIdentity{keyBytesOf(&m.Bits), m.Learned != 0}] = id
		taken[id] = true
	}
	next := uint32(0)
	maskID := func(m keyBytes, learned bool) (uint32, error) {
		if id, ok := idOf[maskIdentity{m, learned}]; ok {
			return id, nil
		}
		for taken[next] {
			next++
		}
		if next >= maxMasks {
			return 0, fmt.Errorf("too many distinct masks: the datapath holds at most %d", maxMasks)
		}
		idOf[maskIdentity{m, learned}], taken[next] = next, true
		return next, nil
	}
	tpls := newTemplateIDs(held.Templates, gen)

	subtables := map[uint32]map[uint32]uint32{} // table -> mask id -> max priority
	unions := map[uint32]*keyBytes{}            // table -> the union of its masks
	var reads keyBytes                          // the key bits actions read
	compiled := make([]*Compiled, 0, len(flows))
	learnedTables := map[uint32]bool{}
	addSubtable := func(table, id, priority uint32) {
		st := subtables[table]
		if st == nil {
			st = map[uint32]uint32{}
			subtables[table] = st
		}
		if p, ok := st[id]; !ok || priority > p {
			st[id] = priority
		}
	}
	for _, f := range flows {
		compiled = append(compiled, f.Compiled)
		acts := f.actions
		for _, lt := range f.learns {
			mid, err := maskID(lt.mask, true)
			if err != nil {
				return nil, err
			}
			m := maskEntry(&lt.mask)
			m.Learned = 1
			img.Masks[mid] = m
			tpl := lt.tpl
			tpl.MaskId, tpl.FlowBase = mid, maxFlows
			tid, fresh, err := tpls.id(tpl)
			if err != nil {
				return nil, err
			}
			if fresh {
				img.NewLearns[tid] = lt.learn
			}
			acts.A[lt.act].Arg = tid
			addSubtable(tpl.Table, mid, tpl.Priority)
			learnedTables[tpl.Table] = true
		}
		img.Actions[f.ID+gen*maxFlows] = acts
		actionReads(&f.actions, &reads)
		id, err := maskID(f.mask, false)
		if err != nil {
			return nil, err
		}
		img.Masks[id] = maskEntry(&f.mask)
		u := unions[f.table]
		if u == nil {
			u = new(keyBytes)
			unions[f.table] = u
		}
		for i := range u {
			u[i] |= f.mask[i]
		}
		lk := bpf.DatapathFlowLookup{Table: uint16(f.table), Gen: uint16(gen), MaskId: id, W: f.key.gather(f.mask.words())}
		if ref, ok := img.Lookups[lk]; ok && ref.Priority >= f.priority {
			continue
		}
		img.Lookups[lk] = bpf.DatapathFlowRef{FlowId: f.ID, Priority: f.priority, Acts: f.ID + gen*maxFlows,
			IdleTimeout: f.idle, HardDeadlineNs: f.HardDeadlineNs}
		addSubtable(f.table, id, f.priority)
	}
	// Learned flows keep their subtables, their learning flows gone or not.
	for _, u := range held.Learned {
		m, ok := held.Masks[u.MaskID]
		if !ok {
			continue
		}
		img.Masks[u.MaskID] = m
		addSubtable(u.Table, u.MaskID, u.Priority)
		learnedTables[u.Table] = true
		tpls.keep(u.Template)
	}
	img.Templates, img.FreeTemplates = tpls.result()
	for t, st := range subtables {
		if len(st) > maxSubtables {
			return nil, fmt.Errorf("table %d: too many distinct match masks (%d): the datapath handles %d per table", t, len(st), maxSubtables)
		}
		var list []bpf.DatapathSubtable
		for id, p := range st {
			list = append(list, bpf.DatapathSubtable{MaskId: id, MaxPriority: p})
		}
		sort.Slice(list, func(i, j int) bool {
			if list[i].MaxPriority != list[j].MaxPriority {
				return list[i].MaxPriority > list[j].MaxPriority
			}
			return list[i].MaskId < list[j].MaskId
		})
		tbl := &img.Tables[t]
		tbl.Nsubtables = uint32(len(list))
		copy(tbl.St[:], list)
		// The flow cache keys on the words any flow of the table looks at,
		// masked by their union; a table needing more words skips the cache.
		if u := unions[t]; u != nil {
			setCacheShape(tbl, u)
		}
		if learnedTables[t] {
			// Packets may learn flows into it at any time: no cached
			// answers, no exact-match cache for walks through it.
			tbl.Learned = 1
			tbl.CacheNwords = 0
			tbl.CacheWords = [maxGather]uint8{}
			tbl.CacheMask = [maxGather]uint64{}
		}
	}
	img.Tables[emcTable] = emcShape(unions, &reads)
	img.XDP = xdpFlag(gen, compiled)
	if len(held.Learned) > 0 {
		// Learned flows' actions are the datapath's, in no generation:
		// XDP cannot vouch for them (a learning flow itself is not XDP's).
		img.XDP = 0
	}
	return img, nil
}

// maskEntry is a mask as the masks map holds it.
func maskEntry(m *keyBytes) Mask {
	fm := Mask{Bits: m.flowKey()}
	ws := m.words()
	fm.Nwords = uint8(len(ws))
	// The datapath gathers every word without a branch: unused ones name
	// a word of the mask that is always zero (bpf/common.h).
	for i := range fm.Words {
		fm.Words[i] = maskWordZero
	}
	copy(fm.Words[:], ws)
	return fm
}

// Changes are the writes that turn one image of a generation into another.
type Changes struct {
	Masks        map[uint32]Mask // new masks (a mask's id never changes content)
	StaleLookups []bpf.DatapathFlowLookup
	LookupKeys   []bpf.DatapathFlowLookup // new or changed entries
	LookupRefs   []bpf.DatapathFlowRef
	Tables       map[uint32]bpf.DatapathTable // changed tables, by table number
	ActionSlots  []uint32                     // every slot of the new image: a slot may
	ActionLists  []bpf.DatapathActionList     // hold what a flow had two changes ago
	Templates    map[uint32]Template          // new or changed learn templates
}

// Diff computes the writes that turn old (what the maps hold for the
// generation) into img. Masks old does not hold are written; action lists
// are all written, as the maps' old contents are not read.
func Diff(old, img *Image) Changes {
	ch := Changes{Masks: map[uint32]Mask{}, Tables: map[uint32]bpf.DatapathTable{}}
	for id, m := range img.Masks {
		if om, ok := old.Masks[id]; !ok || om != m {
			ch.Masks[id] = m
		}
	}
	for k := range old.Lookups {
		if _, ok := img.Lookups[k]; !ok {
			ch.StaleLookups = append(ch.StaleLookups, k)
		}
	}
	for k, v := range img.Lookups {
		if h, ok := old.Lookups[k]; !ok || h != v {
			ch.LookupKeys = append(ch.LookupKeys, k)
			ch.LookupRefs = append(ch.LookupRefs, v)
		}
	}
	for t := range img.Tables {
		if old.Tables[t] != img.Tables[t] {
			ch.Tables[uint32(t)] = img.Tables[t]
		}
	}
	for slot, l := range img.Actions {
		ch.ActionSlots = append(ch.ActionSlots, slot)
		ch.ActionLists = append(ch.ActionLists, l)
	}
	ch.Templates = map[uint32]Template{}
	for id, t := range img.Templates {
		if ot, ok := old.Templates[id]; !ok || ot != t {
			ch.Templates[id] = t
		}
	}
	return ch
}
