package flowtable

import (
	"errors"
	"fmt"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// learn() in the datapath (bpf/learn.h): a learn action becomes a template
// the datapath fills from the packet that runs it. A learned flow's match
// fields and mask are the specs' alone, so the template fixes its subtable
// (a mask of its own, marked learned), table, priority, timeouts and the
// shape of its actions; ops copy the packet's bits into the learned key
// (match specs) and into its actions' arguments (load and output specs).

// Template is a learn action compiled, as learn_templates holds it.
type Template = bpf.DatapathLearnTemplate

// Datapath numbers of learn ops (bpf/common.h's enum learn_op_kind).
const (
	lopMatch = uint8(bpf.DatapathLearnOpKindLOP_MATCH)
	lopAct   = uint8(bpf.DatapathLearnOpKindLOP_ACT)
	lopImm   = uint8(bpf.DatapathLearnOpKindLOP_IMM)
	// LearnMax is how many learned flows a bridge holds (LEARN_MAX).
	LearnMax     = uint32(bpf.DatapathLearnLimitLEARN_MAX)
	maxTemplates = uint32(bpf.DatapathLearnLimitLEARN_TEMPLATES)
)

// learnTpl is one learn action of a flow, compiled: the template but for
// what Build decides (its mask id, the flow ids' base), the learned
// flows' mask, and where the flow's ACT_LEARN naming it is.
type learnTpl struct {
	tpl   Template
	mask  keyBytes
	act   int
	learn *ofctl.Learn
}

// compileLearn compiles a learn action into its template.
func compileLearn(l *ofctl.Learn) (learnTpl, error) {
	lt := learnTpl{learn: l}
	t := &lt.tpl
	t.Table, t.Priority = uint32(l.Table), uint32(l.Priority)
	t.IdleTimeout, t.HardTimeout = l.IdleTimeout, l.HardTimeout
	addOp := func(op bpf.DatapathLearnOp) error {
		if int(t.Nops) >= len(t.Ops) {
			return inputErrorf("learn: the specs take more than %d copies of at most 32 bits: the datapath's limit", len(t.Ops))
		}
		t.Ops[t.Nops] = op
		t.Nops++
		return nil
	}
	addAct := func(a bpf.DatapathAction) error {
		if int(t.Acts.N) >= len(t.Acts.A) {
			return inputErrorf("learn: the learned flow would have more than %d actions: the datapath's limit", len(t.Acts.A))
		}
		t.Acts.A[t.Acts.N] = a
		t.Acts.N++
		return nil
	}
	if l.FinIdleTimeout != 0 || l.FinHardTimeout != 0 {
		// fin_timeout comes first, as OVS's learn puts it; the datapath
		// writes the flow's slot into the low 16 bits of its argument.
		err := addAct(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_FIN_TIMEOUT),
			Aux: l.FinIdleTimeout, Arg: uint32(l.FinHardTimeout) << 16})
		if err != nil {
			return lt, err
		}
	}
	for _, sp := range l.Specs {
		var err error
		switch sp.Kind {
		case ofctl.LearnMatch:
			err = learnMatch(&lt, sp, addOp)
		case ofctl.LearnLoad:
			err = learnLoad(t, sp, addOp, addAct)
		case ofctl.LearnOutput:
			var src []piece
			if src, err = keyPieces(sp.Src); err != nil {
				return lt, errUnsupported("learn: output:" + sp.Src.String())
			}
			at := int(t.Acts.N)
			if err = addAct(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_OUTPUT)}); err == nil {
				err = holes(src, 0, sp.Src.NBits, at, addOp)
			}
		default:
			err = fmt.Errorf("learn: unknown spec kind %d", sp.Kind)
		}
		if err != nil {
			return lt, err
		}
	}
	if n := len(lt.mask.words()); n > maxGather {
		return lt, inputErrorf("learn: the learned match spans %d 8-byte words of the flow key; the datapath hashes at most %d per mask", n, maxGather)
	}
	return lt, nil
}

// learnMatch: the learned flow matches sp.Dst, with the packet's sp.Src
// bits (or the immediate) as its value.
func learnMatch(lt *learnTpl, sp ofctl.LearnSpec, addOp func(bpf.DatapathLearnOp) error) error {
	slot, ok := fieldSlots[sp.Dst.Field]
	if !ok || sp.Dst.Field == ofctl.FieldNwEcn || sp.Dst.Field == ofctl.FieldInPortOXM {
		return errUnsupported("learn: matching " + sp.Dst.String())
	}
	for b := sp.Dst.Ofs; b < sp.Dst.Ofs+sp.Dst.NBits; b++ {
		lt.mask[slot.off+slot.size-1-b/8] |= 1 << (b % 8)
	}
	dst, err := keyPieces(sp.Dst)
	if err != nil {
		return errUnsupported("learn: matching " + sp.Dst.String())
	}
	if sp.Immediate {
		for _, d := range dst {
			err := addOp(bpf.DatapathLearnOp{Kind: lopMatch | lopImm, Nbits: uint8(d.n),
				DstWord: uint8(d.field - pfKey), DstOfs: uint8(d.ofs), Value: bitsOf(sp.Value, d.at, d.n)})
			if err != nil {
				return err
			}
		}
		return nil
	}
	src, err := keyPieces(sp.Src)
	if err != nil {
		return errUnsupported("learn: reading " + sp.Src.String())
	}
	for _, s := range src {
		for _, d := range dst {
			lo, hi := max(s.at, d.at), min(s.at+s.n, d.at+d.n)
			if lo >= hi {
				continue
			}
			err := addOp(bpf.DatapathLearnOp{Kind: lopMatch, Nbits: uint8(hi - lo),
				SrcWord: uint8(s.field - pfKey), SrcOfs: uint8(s.ofs + lo - s.at),
				DstWord: uint8(d.field - pfKey), DstOfs: uint8(d.ofs + lo - d.at)})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// learnLoad: the learned flow loads the packet's sp.Src bits (or the
// immediate) into sp.Dst. An immediate compiles as any load does. A
// packet's value goes into loads whose arguments hold the value's bits
// unshifted, a run of bits each (registers, metadata, the tunnel and
// header fields' key words, pkt_mark): the load is compiled with every
// bit set and each argument checked to be such a run; ops fill them in.
func learnLoad(t *Template, sp ofctl.LearnSpec, addOp func(bpf.DatapathLearnOp) error, addAct func(bpf.DatapathAction) error) error {
	if sp.Immediate {
		if len(sp.Value) > 8 {
			return errUnsupported("learn: load of more than 64 bits into " + sp.Dst.String())
		}
		list, err := compileActions([]ofctl.Action{ofctl.Load{Dst: sp.Dst, Value: uint64(bitsOf(sp.Value, 32, 32))<<32 | uint64(bitsOf(sp.Value, 0, 32))}})
		if err != nil {
			return err
		}
		for _, a := range list.A[:list.N] {
			if err := addAct(a); err != nil {
				return err
			}
		}
		return nil
	}
	unsupported := errUnsupported("learn: load:" + sp.Src.String() + "->" + sp.Dst.String())
	src, err := keyPieces(sp.Src)
	if err != nil || sp.Dst.NBits > 64 {
		return unsupported
	}
	list, err := compileActions([]ofctl.Action{ofctl.Load{Dst: sp.Dst, Value: lowBits(sp.Dst.NBits)}})
	if err != nil {
		return err
	}
	at := 0
	for _, a := range list.A[:list.N] {
		idx := int(t.Acts.N)
		switch bpf.DatapathActionType(a.Type) {
		case bpf.DatapathActionTypeACT_LOAD, bpf.DatapathActionTypeACT_SET_MARK:
			n := int(a.Flags)
			if n == 0 || uint64(a.Arg) != lowBits(n) {
				return unsupported
			}
			a.Arg = 0
			if err := addAct(a); err != nil {
				return err
			}
			if err := holes(src, at, n, idx, addOp); err != nil {
				return err
			}
			at += n
		case bpf.DatapathActionTypeACT_HDR_COMMIT:
			if err := addAct(a); err != nil {
				return err
			}
		default:
			return unsupported
		}
	}
	if at != sp.Dst.NBits {
		return unsupported
	}
	return nil
}

// holes adds the ops that copy the source's bits [at, at+n) into bits
// [0, n) of action idx's argument.
func holes(src []piece, at, n, idx int, addOp func(bpf.DatapathLearnOp) error) error {
	for _, s := range src {
		lo, hi := max(s.at, at), min(s.at+s.n, at+n)
		if lo >= hi {
			continue
		}
		err := addOp(bpf.DatapathLearnOp{Kind: lopAct, Nbits: uint8(hi - lo),
			SrcWord: uint8(s.field - pfKey), SrcOfs: uint8(s.ofs + lo - s.at),
			DstWord: uint8(idx), DstOfs: uint8(lo - at)})
		if err != nil {
			return err
		}
	}
	return nil
}

// bitsOf is bits [at, at+n) of a big-endian value (bit 0 the last byte's
// least significant), n <= 32; bits past the value are 0.
func bitsOf(v []byte, at, n int) uint32 {
	var out uint32
	for i := 0; i < n; i++ {
		b := at + i
		if byteIdx := len(v) - 1 - b/8; byteIdx >= 0 && v[byteIdx]&(1<<(b%8)) != 0 {
			out |= 1 << i
		}
	}
	return out
}

// SubfieldOf reads subfield sf from a packet's key (a learned flow's
// source), big-endian, right-aligned in (NBits+7)/8 bytes: what
// ofctl.Learn.Learned asks for.
func SubfieldOf(k *bpf.DatapathFlowKey, sf ofctl.Subfield) ([]byte, error) {
	slot, ok := fieldSlots[sf.Field]
	if !ok {
		return nil, errUnsupported("reading " + sf.String())
	}
	kb := keyBytesOf(k)
	out := make([]byte, (sf.NBits+7)/8)
	for i := 0; i < sf.NBits; i++ {
		b := sf.Ofs + i
		if kb[slot.off+slot.size-1-b/8]&(1<<(b%8)) != 0 {
			out[len(out)-1-i/8] |= 1 << (i % 8)
		}
	}
	return out, nil
}

// compileLearnAction adds ACT_LEARN (its template id is Build's to give)
// and records the template.
func compileLearnAction(l *ofctl.Learn, learns *[]learnTpl, at int, add func(bpf.DatapathAction) error) error {
	if learns == nil {
		return errUnsupported("learn inside a learned flow or ct(exec(...))")
	}
	lt, err := compileLearn(l)
	if err != nil {
		// A learn spec the datapath cannot hold is the flow's fault, as
		// a malformed one is: exit 2, as the issue asks.
		var ie *InputError
		if !errors.As(err, &ie) {
			err = &InputError{Msg: err.Error()}
		}
		return err
	}
	lt.act = at
	*learns = append(*learns, lt)
	return add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_LEARN)})
}

// templateIDs gives learn templates ids that stay while a generation or a
// learned flow uses them (a running packet's ACT_LEARN names one), as
// masks keep theirs: by content, Gens aside.
type templateIDs struct {
	gen   uint32
	held  map[uint32]Template
	idOf  map[Template]uint32
	used  map[uint32]bool // by the image being built
	kept  map[uint32]bool // by live learned flows
	added map[uint32]Template
}

func newTemplateIDs(held map[uint32]Template, gen uint32) *templateIDs {
	ti := &templateIDs{gen: gen, held: held, idOf: map[Template]uint32{}, used: map[uint32]bool{},
		kept: map[uint32]bool{}, added: map[uint32]Template{}}
	for id, t := range held {
		t.Gens = 0
		ti.idOf[t] = id
	}
	return ti
}

// id is t's id, and whether it is new.
func (ti *templateIDs) id(t Template) (uint32, bool, error) {
	t.Gens = 0
	if id, ok := ti.idOf[t]; ok {
		ti.used[id] = true
		return id, false, nil
	}
	for id := uint32(0); id < maxTemplates; id++ {
		if _, ok := ti.held[id]; ok {
			continue
		}
		if _, ok := ti.added[id]; ok {
			continue
		}
		ti.added[id], ti.idOf[t], ti.used[id] = t, id, true
		return id, true, nil
	}
	return 0, false, fmt.Errorf("too many distinct learn actions: the datapath holds at most %d", maxTemplates)
}

func (ti *templateIDs) keep(id uint32) { ti.kept[id] = true }

// result: every template to hold, its Gens bit for this generation set
// as this image uses it, and the ids nothing uses any longer.
func (ti *templateIDs) result() (map[uint32]Template, []uint32) {
	out := map[uint32]Template{}
	var free []uint32
	bit := uint32(1) << ti.gen
	for id, t := range ti.held {
		t.Gens &^= bit
		if ti.used[id] {
			t.Gens |= bit
		}
		if t.Gens == 0 && !ti.kept[id] {
			free = append(free, id)
			continue
		}
		out[id] = t
	}
	for id, t := range ti.added {
		t.Gens = bit
		out[id] = t
	}
	return out, free
}
