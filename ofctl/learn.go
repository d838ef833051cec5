package ofctl

import (
	"errors"
	"fmt"
	"strings"
)

// Learn is learn(...) (OVS's NXAST_LEARN, lib/learn.c): every packet that
// runs it adds the flow its specs describe to Table, or refreshes that
// flow when it is already there.  The learned flow's match fields and mask
// come from the specs alone; only their values come from the packet.
type Learn struct {
	Table          uint8  // default 1
	Priority       uint16 // default 32768
	IdleTimeout    uint16
	HardTimeout    uint16
	FinIdleTimeout uint16
	FinHardTimeout uint16
	Cookie         uint64
	DeleteLearned  bool
	Specs          []LearnSpec
}

// LearnSpecKind is what a learn spec adds to the learned flow.
type LearnSpecKind uint8

const (
	// LearnMatch: the learned flow matches Dst against Src's value in
	// the packet that learns (or against Value).
	LearnMatch LearnSpecKind = iota
	// LearnLoad: the learned flow loads Src's value (or Value) into Dst.
	LearnLoad
	// LearnOutput: the learned flow outputs to the port in Src.
	LearnOutput
)

// LearnSpec is one spec of a learn action.
type LearnSpec struct {
	Kind LearnSpecKind
	// Dst is the learned flow's field (LearnMatch) or the destination
	// of its load (LearnLoad); unused for LearnOutput.
	Dst Subfield
	// Src is read from the packet that learns, unless Immediate.
	Src       Subfield
	Immediate bool
	// Value is the immediate, big-endian, right-aligned in
	// (Dst.NBits+7)/8 bytes.
	Value []byte
}

// FinTimeout is fin_timeout(idle_timeout=N,hard_timeout=N): a TCP packet
// with FIN or RST that runs it shortens its flow's timeouts to these.  A
// learn with fin_idle_timeout or fin_hard_timeout puts one first in the
// flows it learns.
type FinTimeout struct {
	IdleTimeout uint16
	HardTimeout uint16
}

// String implements Action: fin_timeout(...) as OVS's format_FIN_TIMEOUT()
// prints it, the timeouts that are 0 left out.
func (a FinTimeout) String(PortMap) string {
	var parts []string
	if a.IdleTimeout != 0 {
		parts = append(parts, fmt.Sprintf("idle_timeout=%d", a.IdleTimeout))
	}
	if a.HardTimeout != 0 {
		parts = append(parts, fmt.Sprintf("hard_timeout=%d", a.HardTimeout))
	}
	return "fin_timeout(" + strings.Join(parts, ",") + ")"
}

// String implements Action: learn(...) as OVS's learn_format() prints it.
// The table always comes first; the timeouts, priority, delete_learned and
// cookie follow, in that order and only when they are not the defaults
// (0, 32768, false, 0); then the specs, in their order.
func (l Learn) String(ports PortMap) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "learn(table=%d", l.Table)
	for _, o := range []struct {
		name  string
		value uint16
		skip  uint16
	}{
		{"idle_timeout", l.IdleTimeout, 0},
		{"hard_timeout", l.HardTimeout, 0},
		{"fin_idle_timeout", l.FinIdleTimeout, 0},
		{"fin_hard_timeout", l.FinHardTimeout, 0},
		{"priority", l.Priority, DefaultPriority},
	} {
		if o.value != o.skip {
			fmt.Fprintf(&sb, ",%s=%d", o.name, o.value)
		}
	}
	if l.DeleteLearned {
		sb.WriteString(",delete_learned")
	}
	if l.Cookie != 0 {
		fmt.Fprintf(&sb, ",cookie=%#x", l.Cookie)
	}
	for _, s := range l.Specs {
		sb.WriteByte(',')
		sb.WriteString(s.format(ports))
	}
	sb.WriteByte(')')
	return sb.String()
}

// format prints a spec as learn_format() does:
//
//	NXM_OF_VLAN_TCI[0..11]              match a field on its own value
//	NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[]   match a field on another one
//	eth_type=0x800, in_port=vnet1       match a whole field on an immediate:
//	                                    its meta-flow name, the value in
//	                                    the field's syntax
//	NXM_OF_VLAN_TCI[12]=0x1             match part of a field on an
//	                                    immediate: hex
//	load:0x3e9->NXM_NX_TUN_ID[]         load an immediate (hex)
//	load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[]
//	output:NXM_OF_IN_PORT[]
func (s LearnSpec) format(ports PortMap) string {
	switch {
	case s.Kind == LearnMatch && s.Immediate && s.Dst.whole():
		_, mf := subfieldMeta(s.Dst)
		if s.Dst.Field == FieldCtState {
			// OVS prints "+new-est-...-[Unknown]" (a mask of 32 bits
			// for 16 flags), which nothing parses; the flags syntax
			// parses back to the same value.
			return mf + "=" + formatFlags(ctStateNames, uint32(beUint(s.fieldValue())))
		}
		return mf + "=" + formatFieldValue(s.Dst.Field, s.fieldValue(), nil, ports)
	case s.Kind == LearnMatch && s.Immediate:
		return s.Dst.String() + "=" + putHex(s.Value)
	case s.Kind == LearnMatch:
		// A source that is the destination itself (the same field from
		// the same bit) is not printed.
		if s.Src.Field == s.Dst.Field && s.Src.Name == s.Dst.Name && s.Src.Ofs == s.Dst.Ofs {
			return s.Dst.String()
		}
		return s.Dst.String() + "=" + s.Src.String()
	case s.Kind == LearnLoad && s.Immediate:
		return "load:" + putHex(s.Value) + "->" + s.Dst.String()
	case s.Kind == LearnLoad:
		return "load:" + s.Src.String() + "->" + s.Dst.String()
	}
	return "output:" + s.Src.String()
}

// whole tells whether the subfield is its whole field (OVS's ofs == 0 &&
// n_bits == field->n_bits).
func (s Subfield) whole() bool {
	return s.Ofs == 0 && s.NBits == fieldDefs[s.Field].bits
}

// fieldValue returns the immediate as a value of Dst's whole field
// (right-aligned in the field's bytes), as learn_format() rebuilds it.
func (s LearnSpec) fieldValue() []byte {
	v := make([]byte, fieldDefs[s.Dst.Field].bytes)
	imm := s.Value
	if len(imm) > len(v) {
		imm = imm[len(imm)-len(v):]
	}
	copy(v[len(v)-len(imm):], imm)
	return v
}

// width is the spec's number of bits (OVS's spec->n_bits): its
// destination's, or its source's for an output.
func (s LearnSpec) width() int {
	if s.Kind == LearnOutput {
		return s.Src.NBits
	}
	return s.Dst.NBits
}

// Learned returns the flow the learn adds for a packet, as OVS's
// learn_execute() composes it: the learn's table, priority, timeouts and
// cookie; a match built from the LearnMatch specs, in order (a later spec
// overwrites the bits an earlier one set), normalized as ParseFlow
// normalizes a match; and the actions fin_timeout (when fin_idle_timeout
// or fin_hard_timeout is set), then one Load (more for a field wider than
// 64 bits, as OVS encodes it) per LearnLoad spec and one Output per
// LearnOutput spec, in the specs' order.
//
// src returns the value of a source subfield in the packet that learned,
// big-endian, right-aligned in (NBits+7)/8 bytes.
//
// As OVS does, a match spec on part of a field that cannot be masked
// (in_port, nw_ttl, nw_ecn, ip_dscp, ...) adds nothing unless the learned
// match then covers all of the field, and an output spec adds no action
// when its port is not a physical port, IN_PORT, FLOOD, ALL or LOCAL.
func (l *Learn) Learned(src func(Subfield) []byte) (*Flow, error) {
	f := &Flow{Table: l.Table, Priority: l.Priority, IdleTimeout: l.IdleTimeout,
		HardTimeout: l.HardTimeout, Cookie: l.Cookie}
	if l.FinIdleTimeout != 0 || l.FinHardTimeout != 0 {
		f.Actions = append(f.Actions, FinTimeout{IdleTimeout: l.FinIdleTimeout, HardTimeout: l.FinHardTimeout})
	}
	for _, s := range l.Specs {
		value, err := s.value(src)
		if err != nil {
			return nil, err
		}
		switch s.Kind {
		case LearnMatch:
			f.Match.writeSubfield(s.Dst, value)
		case LearnLoad:
			f.Actions = append(f.Actions, learnedLoad(s.Dst, value)...)
		case LearnOutput:
			if p, ok := learnedPort(value); ok {
				f.Actions = append(f.Actions, Output{Port: p})
			}
		default:
			return nil, fmt.Errorf("learn: unknown spec kind %d", s.Kind)
		}
	}
	f.Match.normalizeLearned()
	return f, nil
}

// value returns what a spec puts in the learned flow: its immediate or its
// source's value in the packet, right-aligned in (width+7)/8 bytes.
func (s LearnSpec) value(src func(Subfield) []byte) ([]byte, error) {
	n := (s.width() + 7) / 8
	if s.Immediate {
		if len(s.Value) != n {
			return nil, fmt.Errorf("learn: %s: immediate of %d bytes for %d bits", s.format(nil), len(s.Value), s.width())
		}
		// Bits above the width stay (vlan_vid=0x1005 keeps 0x1000), as
		// in OVS; only the width's bits are written.
		return s.Value, nil
	}
	if src == nil {
		return nil, errors.New("learn: no packet to read the sources from")
	}
	v := src(s.Src)
	if len(v) != n {
		return nil, fmt.Errorf("learn: %s: source %s read as %d bytes, want %d", s.format(nil), s.Src, len(v), n)
	}
	out := make([]byte, n)
	copyBits(out, 0, v, 0, s.width())
	return out, nil
}

// learnedLoad is what learn_execute() makes of a load spec: a load of the
// whole of Dst's bits, encoded (and so printed) as OVS's NXAST_REG_LOAD,
// one per 64 bits.
func learnedLoad(dst Subfield, bits []byte) []Action {
	d := &fieldDefs[dst.Field]
	value := make([]byte, d.bytes)
	copyBits(value, dst.Ofs, bits, 0, dst.NBits)
	pre, mf := subfieldMeta(dst)
	return loadSegments(dst.Field, dst.Name, mf, pre, value, subfieldMask(dst))
}

// learnedPort is learn_execute()'s choice of the port of an output spec:
// the value's low 16 bits when nothing above them is set, if that is a
// physical port, IN_PORT, FLOOD, LOCAL or ALL.
func learnedPort(value []byte) (uint32, bool) {
	if len(value) > 2 && !isAllZeros(value[:len(value)-2]) {
		return 0, false
	}
	p := uint32(beUint(value))
	switch p {
	case PortInPort, PortFlood, PortLocal, PortAll:
		return p, true
	}
	return p, p < PortMax
}

// normalizeLearned normalizes a learned flow's match as the parser
// normalizes a flow's (shared fields filed under the flow's protocol:
// arp_spa, icmp_type, ...).  What OVS's NXM encoding of the flow leaves out
// of dump-flows is left out: fields whose prerequisites the learned match
// lacks (a later spec set another eth_type), ct_nw_proto=0, and ct_tp_src
// and ct_tp_dst without a nonzero ct_nw_proto (nx_put_raw()).
func (m *Match) normalizeLearned() {
	m.canonicalize(map[FieldID]string{})
	for i, e := range m.f {
		if e != nil && !prereqOK(fieldDefs[i].prereq, m) {
			m.f[i] = nil
		}
	}
	if proto, ok := m.exact(FieldCtNwProto); !ok || proto == 0 {
		m.f[FieldCtNwProto], m.f[FieldCtTpSrc], m.f[FieldCtTpDst] = nil, nil, nil
	}
}

// writeSubfield emulates OVS's mf_write_subfield(): sf's bits of m's field
// take the low sf.NBits bits of value (big-endian, right-aligned) and are
// matched exactly, the field's other bits as they were.  As mf_set() does,
// a field that is not maskable changes only when it is then matched on all
// of its bytes: otherwise m is left as it was and the result is false.
func (m *Match) writeSubfield(sf Subfield, value []byte) bool {
	d := &fieldDefs[sf.Field]
	cur, ok := m.Get(sf.Field)
	if !ok {
		cur = FieldMatch{Value: make([]byte, d.bytes), Mask: make([]byte, d.bytes)}
	}
	copyBits(cur.Value, sf.Ofs, value, 0, sf.NBits)
	copyBits(cur.Mask, sf.Ofs, onesBits(d.bytes, 8*d.bytes), 0, sf.NBits)
	mask := cur.Mask
	if !d.maskable {
		// OVS's n_bytes: the bytes the field's bits take (in_port's two).
		whole := onesBits(d.bytes, min(8*d.bytes, (d.bits+7)/8*8))
		if !equalBytes(andBytes(mask, whole), whole) {
			return false
		}
		mask = nil
	}
	return m.Set(sf.Field, cur.Value, mask) == nil
}

// copyBits emulates OVS's bitwise_copy(): n bits of src from bit srcOfs
// to dst from bit dstOfs, both big-endian with bit 0 the least significant
// bit of the last byte.  Bits beyond either slice are not copied.
func copyBits(dst []byte, dstOfs int, src []byte, srcOfs, n int) {
	for i := 0; i < n; i++ {
		s, d := srcOfs+i, dstOfs+i
		if s/8 >= len(src) || d/8 >= len(dst) {
			continue
		}
		bit := byte(1) << (d % 8)
		if src[len(src)-1-s/8]&(1<<(s%8)) != 0 {
			dst[len(dst)-1-d/8] |= bit
		} else {
			dst[len(dst)-1-d/8] &^= bit
		}
	}
}

// subfieldMeta returns the meta-flow prerequisites and name of a subfield,
// looked up by its name for a Subfield built by hand.
func subfieldMeta(sf Subfield) (prereq, string) {
	if sf.mf != "" {
		return sf.prereq, sf.mf
	}
	if e, ok := lookupSubfieldName(sf.Name); ok {
		return e.prereq, e.mf
	}
	d := &fieldDefs[sf.Field]
	return d.prereq, d.mf
}

// hasNXM tells whether a subfield's field has an NXM or OXM header
// (OVS's mf_nxm_header() != 0), which the learn action's encoding needs.
func hasNXM(sf Subfield) bool {
	e, ok := lookupSubfieldName(sf.Name)
	return ok && e.nxm != ""
}
