package ofctl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// recordVersion is the first byte of a binary flow record (MarshalBinary).
// Any change of the layout below bumps it.
//
// Layout (integers fixed-width, big-endian like the match values):
//
//	u8   recordVersion
//	u8   table
//	u16  priority
//	u64  cookie
//	u16  idle_timeout, hard_timeout, importance
//	u8   flags (FlowFlags)
//	u8   number of matched fields, then for each, in FieldID order:
//	       u8 FieldID, or'ed with fieldExact when the mask is the field's
//	          exact mask (Field.Info().Exact)
//	       value, then the mask unless fieldExact (Field.Info().Bytes each)
//	actions: u16 count, then for each a u8 tag (tagOutput, ...) and the
//	       fields of its type (see recWriter.action)
//
// Byte slices and lists carry a u16 length and strings a u8 one.  An empty
// slice decodes as nil, which is what the parser produces.
//
// A new action type gets a new tag after the others (as tagLearn and
// tagFinTimeout came after tagExit) and a new match field a FieldID after
// the stored ones: the records already written keep their meaning and
// still decode, so neither bumps recordVersion.  Changing the meaning of a
// byte that records already use does.
const recordVersion = 1

// fieldExact flags a matched field whose mask is omitted (exact match).
const fieldExact = 0x80

// Action tags.  Tags are only appended: renumbering one is a change of
// format (recordVersion).
const (
	tagOutput byte = iota + 1
	tagOutputReg
	tagDrop
	tagController
	tagCT
	tagNAT
	tagCTClear
	tagResubmit
	tagGotoTable
	tagNote
	tagLoad
	tagMove
	tagSetField
	tagModVlanVid
	tagModVlanPcp
	tagStripVlan
	tagPushVlan
	tagModDlSrc
	tagModDlDst
	tagModNwSrc
	tagModNwDst
	tagModNwTos
	tagModTpSrc
	tagModTpDst
	tagDecTTL
	tagSetTunnel
	tagSetQueue
	tagPopQueue
	tagExit
	tagLearn
	tagFinTimeout
)

// Bits of CT's first byte: two flags, then one presence bit for each
// optional part that follows, in this order.  A field at its default (no
// table, zone 0, nil pointer, no alg, no exec) takes no room: "ct()" is two
// bytes.
const (
	ctCommit = 1 << iota
	ctForce
	ctTable     // u8 Table (absent: -1)
	ctZone      // u16 Zone (absent: 0)
	ctZoneField // Subfield ZoneField (absent: nil)
	ctAlg       // u16 Alg (absent: 0)
	ctNAT       // NAT (absent: nil)
	ctExec      // action list Exec (absent: empty)
)

// Bits of Resubmit's first byte.
const (
	resubmitCT    = 1 << iota
	resubmitTable // u8 Table follows the port (absent: -1)
)

// Bits of a learn spec's flags byte (after its kind): Immediate, then one
// presence bit for each optional part that follows, in this order.
const (
	specImmediate = 1 << iota
	specDst       // Subfield Dst (absent: the zero Subfield)
	specSrc       // Subfield Src (absent: the zero Subfield)
	specValue     // bytes Value (absent: nil)
	specAll       = 1<<iota - 1
)

// Bits of NAT's first byte.
const (
	natSrc = 1 << iota
	natDst
	natPersistent
	natHash
	natRandom
	natAll = 1<<iota - 1
)

// MarshalBinary encodes a flow from ParseFlow (or AsAdd) as a binary record
// that UnmarshalFlow decodes into an equal flow (reflect.DeepEqual, same
// String).  It implements encoding.BinaryMarshaler.  A filter (ParseMatch,
// ParseModFlow) cannot be encoded.
//
// The installed table is stored in this typed form so that commands never
// parse it again.  The format is private to ebpfovs's bpffs (the loader
// refuses a bridge pinned with an older layout), so a change of the format
// bumps its version byte (recordVersion) instead of staying compatible.
func (f *Flow) MarshalBinary() ([]byte, error) {
	if f.filter {
		return nil, errors.New("flow record: a flow filter has no binary encoding")
	}
	if f.CookieMask != 0 || f.OutPort != 0 {
		return nil, errors.New("flow record: a cookie mask or out_port belongs to a filter, not to a flow")
	}
	if f.Flags&^allFlags() != 0 {
		return nil, fmt.Errorf("flow record: unknown flow flags %#x", uint8(f.Flags&^allFlags()))
	}
	w := &recWriter{b: make([]byte, 0, 128)}
	w.u8(recordVersion)
	w.u8(f.Table)
	w.u16(f.Priority)
	w.u64(f.Cookie)
	w.u16(f.IdleTimeout)
	w.u16(f.HardTimeout)
	w.u16(f.Importance)
	w.u8(uint8(f.Flags))
	w.match(&f.Match)
	w.actions(f.Actions)
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// UnmarshalFlow decodes a record written by MarshalBinary.  It checks the
// record's structure (version, lengths, tags, field ids, subfield names and
// ranges, normalized match values) but not the flow's semantics, which the
// parser checked before the record was written.
func UnmarshalFlow(data []byte) (*Flow, error) {
	r := &recReader{b: data}
	if v := r.u8(); r.err == nil && v != recordVersion {
		return nil, fmt.Errorf("flow record: format version %d, want %d", v, recordVersion)
	}
	f := &Flow{}
	f.Table = r.u8()
	f.Priority = r.u16()
	f.Cookie = r.u64()
	f.IdleTimeout = r.u16()
	f.HardTimeout = r.u16()
	f.Importance = r.u16()
	f.Flags = FlowFlags(r.u8())
	if f.Flags&^allFlags() != 0 {
		r.fail("unknown flow flags %#x", uint8(f.Flags&^allFlags()))
	}
	r.match(&f.Match)
	f.Actions = r.actions(0)
	if r.err == nil && r.off != len(data) {
		r.fail("%d trailing bytes", len(data)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}

func allFlags() FlowFlags {
	var all FlowFlags
	for _, fl := range flagNames {
		all |= fl.flag
	}
	return all
}

// recWriter appends a record; the first error sticks.
type recWriter struct {
	b   []byte
	err error
}

func (w *recWriter) fail(format string, args ...any) {
	if w.err == nil {
		w.err = fmt.Errorf("flow record: "+format, args...)
	}
}

func (w *recWriter) u8(v uint8)   { w.b = append(w.b, v) }
func (w *recWriter) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *recWriter) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *recWriter) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }

func (w *recWriter) bool(v bool) { w.u8(flagBits(v)) }

// flagBits packs booleans into a byte, the first one into bit 0 (as the
// ct*, resubmit* and nat* constants number them).
func flagBits(v ...bool) uint8 {
	var b uint8
	for i, on := range v {
		if on {
			b |= 1 << i
		}
	}
	return b
}

// count writes the u16 length of a slice or list.
func (w *recWriter) count(n int) {
	if n > 0xffff {
		w.fail("%d elements do not fit a record (at most 65535)", n)
	}
	w.u16(uint16(n))
}

func (w *recWriter) bytes(p []byte) {
	w.count(len(p))
	w.b = append(w.b, p...)
}

func (w *recWriter) str(s string) {
	if len(s) > 0xff {
		w.fail("string %.20q... is longer than 255 bytes", s)
	}
	w.u8(uint8(len(s)))
	w.b = append(w.b, s...)
}

// table writes an int table (CT.Table, Resubmit.Table) whose presence bit
// is set: -1 (none) is never written.
func (w *recWriter) table(t int) {
	if t < 0 || t > 255 {
		w.fail("table %d out of range", t)
	}
	w.u8(uint8(t))
}

func (w *recWriter) match(m *Match) {
	w.u8(uint8(m.Len()))
	for i, e := range m.f {
		if e == nil {
			continue
		}
		d := &fieldDefs[i]
		if len(e.Value) != d.bytes || len(e.Mask) != d.bytes {
			w.fail("%s: value and mask must be %d bytes", d.name, d.bytes)
			return
		}
		if bytes.Equal(e.Mask, d.exact) {
			w.u8(uint8(i) | fieldExact)
			w.b = append(w.b, e.Value...)
		} else {
			w.u8(uint8(i))
			w.b = append(w.b, e.Value...)
			w.b = append(w.b, e.Mask...)
		}
	}
}

// subfield writes the name, offset and width.  The name alone identifies
// the field and the unexported mf and prereq, which the decoder looks up
// as the parser does.
func (w *recWriter) subfield(s Subfield) {
	if s.Ofs < 0 || s.Ofs > 0xff || s.NBits < 0 || s.NBits > 0xff {
		w.fail("subfield %s: bits out of range", s.Name)
	}
	w.str(s.Name)
	w.u8(uint8(s.Ofs))
	w.u8(uint8(s.NBits))
}

// addr writes a netip.Addr as a u8 length (0 = invalid, 4 or 16) and its
// bytes.
func (w *recWriter) addr(a netip.Addr) {
	switch {
	case !a.IsValid():
		w.u8(0)
	case a.Is4():
		b := a.As4()
		w.u8(4)
		w.b = append(w.b, b[:]...)
	default:
		if a.Zone() != "" {
			w.fail("nat address %s: zones have no binary encoding", a)
		}
		b := a.As16()
		w.u8(16)
		w.b = append(w.b, b[:]...)
	}
}

func (w *recWriter) nat(n NAT) {
	w.u8(flagBits(n.Src, n.Dst, n.Persistent, n.Hash, n.Random))
	w.addr(n.AddrMin)
	w.addr(n.AddrMax)
	w.u16(n.PortMin)
	w.u16(n.PortMax)
}

func (w *recWriter) actions(acts []Action) {
	w.count(len(acts))
	for _, a := range acts {
		w.action(a)
	}
}

// action writes one action: its tag, then its fields in declaration order.
func (w *recWriter) action(a Action) {
	switch a := a.(type) {
	case Output:
		w.u8(tagOutput)
		w.u32(a.Port)
		w.u16(a.MaxLen)
	case OutputReg:
		w.u8(tagOutputReg)
		w.subfield(a.Src)
	case Drop:
		w.u8(tagDrop)
	case Controller:
		w.u8(tagController)
		w.u16(a.MaxLen)
		w.str(a.Reason)
		w.u16(a.ID)
		w.bytes(a.Userdata)
		w.bool(a.Pause)
		w.u32(a.MeterID)
	case CT:
		w.u8(tagCT)
		w.u8(flagBits(a.Commit, a.Force, a.Table != -1, a.Zone != 0, a.ZoneField != nil, a.Alg != 0, a.NAT != nil, len(a.Exec) > 0))
		if a.Table != -1 {
			w.table(a.Table)
		}
		if a.Zone != 0 {
			w.u16(a.Zone)
		}
		if a.ZoneField != nil {
			w.subfield(*a.ZoneField)
		}
		if a.Alg != 0 {
			w.u16(a.Alg)
		}
		if a.NAT != nil {
			w.nat(*a.NAT)
		}
		if len(a.Exec) > 0 {
			w.actions(a.Exec)
		}
	case NAT:
		w.u8(tagNAT)
		w.nat(a)
	case CTClear:
		w.u8(tagCTClear)
	case Resubmit:
		w.u8(tagResubmit)
		w.u8(flagBits(a.CT, a.Table != -1))
		w.u32(a.Port)
		if a.Table != -1 {
			w.table(a.Table)
		}
	case GotoTable:
		w.u8(tagGotoTable)
		w.u8(a.Table)
	case Note:
		w.u8(tagNote)
		w.bytes(a.Data)
	case Load:
		w.u8(tagLoad)
		w.subfield(a.Dst)
		w.u64(a.Value)
	case Move:
		w.u8(tagMove)
		w.subfield(a.Src)
		w.subfield(a.Dst)
	case SetField:
		w.u8(tagSetField)
		if a.Field < 0 || a.Field >= numFields {
			w.fail("set_field: invalid field %d", int(a.Field))
		}
		w.u8(uint8(a.Field))
		w.bytes(a.Value)
		w.bytes(a.Mask)
	case ModVlanVid:
		w.u8(tagModVlanVid)
		w.u16(a.VID)
	case ModVlanPcp:
		w.u8(tagModVlanPcp)
		w.u8(a.PCP)
	case StripVlan:
		w.u8(tagStripVlan)
	case PushVlan:
		w.u8(tagPushVlan)
		w.u16(a.EtherType)
	case ModDlSrc:
		w.u8(tagModDlSrc)
		w.b = append(w.b, a.MAC[:]...)
	case ModDlDst:
		w.u8(tagModDlDst)
		w.b = append(w.b, a.MAC[:]...)
	case ModNwSrc:
		w.u8(tagModNwSrc)
		w.b = append(w.b, a.IP[:]...)
	case ModNwDst:
		w.u8(tagModNwDst)
		w.b = append(w.b, a.IP[:]...)
	case ModNwTos:
		w.u8(tagModNwTos)
		w.u8(a.TOS)
	case ModTpSrc:
		w.u8(tagModTpSrc)
		w.u16(a.Port)
	case ModTpDst:
		w.u8(tagModTpDst)
		w.u16(a.Port)
	case DecTTL:
		w.u8(tagDecTTL)
		w.count(len(a.ControllerIDs))
		for _, id := range a.ControllerIDs {
			w.u16(id)
		}
	case SetTunnel:
		w.u8(tagSetTunnel)
		w.u64(a.ID)
		w.bool(a.Use64)
	case SetQueue:
		w.u8(tagSetQueue)
		w.u32(a.Queue)
	case PopQueue:
		w.u8(tagPopQueue)
	case Exit:
		w.u8(tagExit)
	case Learn:
		w.u8(tagLearn)
		w.learn(a)
	case FinTimeout:
		w.u8(tagFinTimeout)
		w.u16(a.IdleTimeout)
		w.u16(a.HardTimeout)
	default:
		w.fail("no binary encoding for action %T", a)
	}
}

// learn writes a Learn's fields in declaration order, the specs as a list.
func (w *recWriter) learn(l Learn) {
	w.u8(l.Table)
	w.u16(l.Priority)
	w.u16(l.IdleTimeout)
	w.u16(l.HardTimeout)
	w.u16(l.FinIdleTimeout)
	w.u16(l.FinHardTimeout)
	w.u64(l.Cookie)
	w.bool(l.DeleteLearned)
	w.count(len(l.Specs))
	for _, s := range l.Specs {
		w.learnSpec(s)
	}
}

// learnSpec writes the kind, the flags byte (spec*) and the parts present.
func (w *recWriter) learnSpec(s LearnSpec) {
	hasDst, hasSrc := s.Dst != (Subfield{}), s.Src != (Subfield{})
	w.u8(uint8(s.Kind))
	w.u8(flagBits(s.Immediate, hasDst, hasSrc, len(s.Value) > 0))
	if hasDst {
		w.namedSubfield(s.Dst)
	}
	if hasSrc {
		w.namedSubfield(s.Src)
	}
	if len(s.Value) > 0 {
		w.bytes(s.Value)
	}
}

// namedSubfield writes a subfield that must have a name: the decoder finds
// the field by its name.
func (w *recWriter) namedSubfield(s Subfield) {
	if s.Name == "" {
		w.fail("learn spec: subfield of %s without a name", s.Field)
	}
	w.subfield(s)
}

// recReader reads a record.  The first error sticks: after it every read
// returns zero values, so decoding code need not check after each read.
type recReader struct {
	b   []byte
	off int
	err error
}

func (r *recReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("flow record: byte %d: %s", r.off, fmt.Sprintf(format, args...))
	}
}

// take returns the next n bytes (nil after an error or when fewer remain).
func (r *recReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b)-r.off {
		r.fail("truncated: %d bytes needed, %d left", n, len(r.b)-r.off)
		return nil
	}
	p := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return p
}

// fixed returns the next n bytes, or n zero bytes after an error (so that
// converting them to an array cannot panic).
func (r *recReader) fixed(n int) []byte {
	if p := r.take(n); p != nil {
		return p
	}
	return make([]byte, n)
}

func (r *recReader) u8() uint8   { return r.fixed(1)[0] }
func (r *recReader) u16() uint16 { return binary.BigEndian.Uint16(r.fixed(2)) }
func (r *recReader) u32() uint32 { return binary.BigEndian.Uint32(r.fixed(4)) }
func (r *recReader) u64() uint64 { return binary.BigEndian.Uint64(r.fixed(8)) }

func (r *recReader) bool() bool {
	v := r.u8()
	if v > 1 {
		r.fail("boolean %d is neither 0 nor 1", v)
	}
	return v == 1
}

// bytes reads a u16-length byte slice into a copy of its own (the flow must
// not share the caller's buffer); empty is nil.
func (r *recReader) bytes() []byte {
	n := int(r.u16())
	p := r.take(n)
	if len(p) == 0 {
		return nil
	}
	return bytes.Clone(p)
}

func (r *recReader) str() string {
	return string(r.take(int(r.u8())))
}

func (r *recReader) match(m *Match) {
	n := int(r.u8())
	last := FieldID(-1)
	for i := 0; i < n && r.err == nil; i++ {
		b := r.u8()
		id := FieldID(b &^ fieldExact)
		if r.err != nil {
			return
		}
		if id >= numStoredFields {
			r.fail("match field id %d out of range", id)
			return
		}
		if id <= last {
			r.fail("match field %s after %s (out of order or repeated)", id, last)
			return
		}
		last = id
		d := &fieldDefs[id]
		value := bytes.Clone(r.take(d.bytes))
		mask := bytes.Clone(d.exact)
		if b&fieldExact == 0 {
			mask = bytes.Clone(r.take(d.bytes))
		}
		if r.err != nil {
			return
		}
		if isAllZeros(mask) || !equalBytes(andBytes(mask, d.exact), mask) || !equalBytes(andBytes(value, mask), value) {
			r.fail("match field %s: value %x mask %x not normalized", d.name, value, mask)
			return
		}
		m.f[id] = &FieldMatch{Field: id, Value: value, Mask: mask}
	}
}

// subfield reads what recWriter.subfield wrote and rebuilds the Subfield
// as parseSubfieldPrefix does.
func (r *recReader) subfield() Subfield {
	name := r.str()
	ofs, nbits := int(r.u8()), int(r.u8())
	if r.err != nil {
		return Subfield{}
	}
	e, ok := lookupSubfieldName(name)
	if !ok || e.printName() != name {
		r.fail("unknown subfield name %q", name)
		return Subfield{}
	}
	if nbits == 0 || ofs+nbits > fieldDefs[e.id].bits {
		r.fail("subfield %s: bits %d..%d out of range", name, ofs, ofs+nbits-1)
		return Subfield{}
	}
	return Subfield{Field: e.id, Name: name, Ofs: ofs, NBits: nbits, mf: e.mf, prereq: e.prereq}
}

func (r *recReader) addr() netip.Addr {
	switch n := r.u8(); n {
	case 0:
		return netip.Addr{}
	case 4:
		return netip.AddrFrom4([4]byte(r.fixed(4)))
	case 16:
		return netip.AddrFrom16([16]byte(r.fixed(16)))
	default:
		r.fail("nat address length %d", n)
		return netip.Addr{}
	}
}

func (r *recReader) nat() NAT {
	fl := r.u8()
	if fl&^natAll != 0 {
		r.fail("unknown nat flags %#x", fl&^natAll)
	}
	n := NAT{Src: fl&natSrc != 0, Dst: fl&natDst != 0, Persistent: fl&natPersistent != 0, Hash: fl&natHash != 0, Random: fl&natRandom != 0}
	n.AddrMin = r.addr()
	n.AddrMax = r.addr()
	n.PortMin = r.u16()
	n.PortMax = r.u16()
	return n
}

// actions reads a list; depth counts ct(exec(...)) nesting as the parser
// does, so that a hostile record cannot recurse without bound.
func (r *recReader) actions(depth int) []Action {
	n := int(r.u16())
	if depth >= maxActionDepth {
		r.fail("actions nested too deeply")
	}
	if n > len(r.b)-r.off {
		// Each action takes at least its tag byte: refuse before
		// allocating for a count the record cannot hold.
		r.fail("truncated: %d actions, %d bytes left", n, len(r.b)-r.off)
	}
	if r.err != nil || n == 0 {
		return nil
	}
	acts := make([]Action, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		acts = append(acts, r.action(depth))
	}
	if r.err != nil {
		return nil
	}
	return acts
}

func (r *recReader) action(depth int) Action {
	tag := r.u8()
	switch tag {
	case tagOutput:
		a := Output{Port: r.u32()}
		a.MaxLen = r.u16()
		return a
	case tagOutputReg:
		return OutputReg{Src: r.subfield()}
	case tagDrop:
		return Drop{}
	case tagController:
		a := Controller{MaxLen: r.u16()}
		a.Reason = r.str()
		a.ID = r.u16()
		a.Userdata = r.bytes()
		a.Pause = r.bool()
		a.MeterID = r.u32()
		return a
	case tagCT:
		fl := r.u8()
		a := CT{Commit: fl&ctCommit != 0, Force: fl&ctForce != 0, Table: -1}
		if fl&ctTable != 0 {
			a.Table = int(r.u8())
		}
		if fl&ctZone != 0 {
			a.Zone = r.u16()
		}
		if fl&ctZoneField != 0 {
			sf := r.subfield()
			a.ZoneField = &sf
		}
		if fl&ctAlg != 0 {
			a.Alg = r.u16()
		}
		if fl&ctNAT != 0 {
			n := r.nat()
			a.NAT = &n
		}
		if fl&ctExec != 0 {
			a.Exec = r.actions(depth + 1)
		}
		return a
	case tagNAT:
		return r.nat()
	case tagCTClear:
		return CTClear{}
	case tagResubmit:
		fl := r.u8()
		if fl&^(resubmitCT|resubmitTable) != 0 {
			r.fail("unknown resubmit flags %#x", fl)
		}
		a := Resubmit{CT: fl&resubmitCT != 0, Port: r.u32(), Table: -1}
		if fl&resubmitTable != 0 {
			a.Table = int(r.u8())
		}
		return a
	case tagGotoTable:
		return GotoTable{Table: r.u8()}
	case tagNote:
		return Note{Data: r.bytes()}
	case tagLoad:
		a := Load{Dst: r.subfield()}
		a.Value = r.u64()
		return a
	case tagMove:
		a := Move{Src: r.subfield()}
		a.Dst = r.subfield()
		return a
	case tagSetField:
		id := FieldID(r.u8())
		value, mask := r.bytes(), r.bytes()
		if r.err != nil {
			return nil
		}
		if id >= numFields {
			r.fail("set_field field id %d out of range", id)
			return nil
		}
		if n := fieldDefs[id].bytes; len(value) != n || (mask != nil && len(mask) != n) {
			r.fail("set_field %s: value of %d bytes and mask of %d, want %d", id, len(value), len(mask), n)
			return nil
		}
		return SetField{Field: id, Value: value, Mask: mask}
	case tagModVlanVid:
		return ModVlanVid{VID: r.u16()}
	case tagModVlanPcp:
		return ModVlanPcp{PCP: r.u8()}
	case tagStripVlan:
		return StripVlan{}
	case tagPushVlan:
		return PushVlan{EtherType: r.u16()}
	case tagModDlSrc:
		return ModDlSrc{MAC: [6]byte(r.fixed(6))}
	case tagModDlDst:
		return ModDlDst{MAC: [6]byte(r.fixed(6))}
	case tagModNwSrc:
		return ModNwSrc{IP: [4]byte(r.fixed(4))}
	case tagModNwDst:
		return ModNwDst{IP: [4]byte(r.fixed(4))}
	case tagModNwTos:
		return ModNwTos{TOS: r.u8()}
	case tagModTpSrc:
		return ModTpSrc{Port: r.u16()}
	case tagModTpDst:
		return ModTpDst{Port: r.u16()}
	case tagDecTTL:
		p := r.take(2 * int(r.u16()))
		var ids []uint16
		for i := 0; i+1 < len(p); i += 2 {
			ids = append(ids, binary.BigEndian.Uint16(p[i:]))
		}
		return DecTTL{ControllerIDs: ids}
	case tagSetTunnel:
		a := SetTunnel{ID: r.u64()}
		a.Use64 = r.bool()
		return a
	case tagSetQueue:
		return SetQueue{Queue: r.u32()}
	case tagPopQueue:
		return PopQueue{}
	case tagExit:
		return Exit{}
	case tagLearn:
		return r.learn()
	case tagFinTimeout:
		a := FinTimeout{IdleTimeout: r.u16()}
		a.HardTimeout = r.u16()
		return a
	}
	if r.err == nil {
		r.fail("unknown action tag %d", tag)
	}
	return nil
}

// learn reads what recWriter.learn wrote.
func (r *recReader) learn() Learn {
	l := Learn{Table: r.u8(), Priority: r.u16()}
	l.IdleTimeout = r.u16()
	l.HardTimeout = r.u16()
	l.FinIdleTimeout = r.u16()
	l.FinHardTimeout = r.u16()
	l.Cookie = r.u64()
	l.DeleteLearned = r.bool()
	n := int(r.u16())
	if n > len(r.b)-r.off {
		// Each spec takes at least two bytes: refuse before allocating.
		r.fail("truncated: %d learn specs, %d bytes left", n, len(r.b)-r.off)
	}
	for i := 0; i < n && r.err == nil; i++ {
		l.Specs = append(l.Specs, r.learnSpec())
	}
	if r.err != nil {
		return Learn{}
	}
	return l
}

// learnSpec reads what recWriter.learnSpec wrote.
func (r *recReader) learnSpec() LearnSpec {
	s := LearnSpec{Kind: LearnSpecKind(r.u8())}
	fl := r.u8()
	if s.Kind > LearnOutput {
		r.fail("unknown learn spec kind %d", s.Kind)
	}
	if fl&^specAll != 0 {
		r.fail("unknown learn spec flags %#x", fl)
	}
	s.Immediate = fl&specImmediate != 0
	if fl&specDst != 0 {
		s.Dst = r.subfield()
	}
	if fl&specSrc != 0 {
		s.Src = r.subfield()
	}
	if fl&specValue != 0 {
		s.Value = r.bytes()
	}
	return s
}
