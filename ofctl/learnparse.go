package ofctl

import (
	"fmt"
	"math"
	"strings"
)

// Parsing and checking of learn(...), as OVS 3.1's learn_parse() and
// learn_check() (lib/learn.c) do it.  OVS names the whole argument of
// learn ("orig" below) in most of its messages; so do we.

// parseLearn emulates learn_parse__(): the learned flow's options, and a
// spec for any other key.
func parseLearn(arg string, ports PortMap) (Learn, error) {
	l := Learn{Table: 1, Priority: DefaultPriority}
	pos := 0
	for {
		t, ok := nextToken(arg, &pos)
		if !ok {
			return l, nil
		}
		if err := l.parseOption(arg, t, ports); err != nil {
			return Learn{}, err
		}
	}
}

// parseOption parses one key of learn(...).  The numbers are read with C's
// atoi() and strtoull() as OVS does: no error, garbage is 0 and values
// wrap ("priority=70000" is priority 4464).
func (l *Learn) parseOption(orig string, t token, ports PortMap) error {
	switch t.key {
	case "table":
		tbl, ok := parseTable(t.value)
		if !ok {
			return fmt.Errorf("unknown table \"%s\"", t.value)
		}
		if tbl == 255 {
			return fmt.Errorf("%s: table id 255 not valid for `learn' action", orig)
		}
		l.Table = tbl
	case "priority":
		l.Priority = uint16(cAtoi(t.value))
	case "idle_timeout":
		l.IdleTimeout = uint16(cAtoi(t.value))
	case "hard_timeout":
		l.HardTimeout = uint16(cAtoi(t.value))
	case "fin_idle_timeout":
		l.FinIdleTimeout = uint16(cAtoi(t.value))
	case "fin_hard_timeout":
		l.FinHardTimeout = uint16(cAtoi(t.value))
	case "cookie":
		l.Cookie, _, _ = strtoull(t.value, 0)
	case "delete_learned":
		l.DeleteLearned = true
	case "limit":
		// limit=0 is OVS's default (no limit) and prints as nothing.
		if uint32(cAtoi(t.value)) != 0 {
			return learnUnsupported(orig, t)
		}
	case "send_flow_rem", "result_dst":
		return learnUnsupported(orig, t)
	default:
		spec, err := parseLearnSpec(orig, t, ports)
		if err != nil {
			return err
		}
		l.Specs = append(l.Specs, spec)
	}
	return nil
}

// learnUnsupported refuses the options of OVS's learn that Learn cannot
// hold.
func learnUnsupported(orig string, t token) error {
	return fmt.Errorf("%s: learn option %s is not supported", orig, t.text())
}

// cAtoi emulates glibc's atoi(): (int) strtol(s, NULL, 10), so leading
// white space and a sign are allowed, garbage is 0 and an overflow clamps
// to the 64-bit range before the conversion to int keeps its low 32 bits.
func cAtoi(s string) int32 {
	mag, neg, _, err := scanC(s, 10)
	if err == errSyntax {
		return 0
	}
	// scanC gives the largest magnitude on an overflow: it clamps too.
	var l int64
	switch {
	case !neg && mag > math.MaxInt64:
		l = math.MaxInt64
	case neg && mag > 1<<63:
		l = math.MinInt64
	case neg:
		l = -int64(mag)
	default:
		l = int64(mag)
	}
	return int32(l)
}

// parseLearnSpec emulates learn_parse_spec(): a key that is a subfield is
// a match on it; "load" and "output" are the learned flow's actions.
func parseLearnSpec(orig string, t token, ports PortMap) (LearnSpec, error) {
	if dst, err := parseSubfield(t.key); err == nil {
		return parseLearnMatch(orig, t.key, t.value, dst, ports)
	}
	switch t.key {
	case "load":
		return parseLearnLoad(t.value)
	case "output":
		src, err := parseSubfield(t.value)
		if err != nil {
			return LearnSpec{}, err
		}
		return LearnSpec{Kind: LearnOutput, Src: src}, nil
	}
	return LearnSpec{}, fmt.Errorf("%s: unknown keyword %s", orig, t.key)
}

// parseLearnMatch parses "FIELD[..]" (match the packet's own bits),
// "FIELD[..]=SRC[..]" or "FIELD[..]=VALUE".
func parseLearnMatch(orig, name, value string, dst Subfield, ports PortMap) (LearnSpec, error) {
	if !hasNXM(dst) {
		return LearnSpec{}, fmt.Errorf("%s: experimenter OXM field '%s' not supported", orig, name)
	}
	spec := LearnSpec{Kind: LearnMatch, Dst: dst, Src: dst}
	if value == "" {
		return spec, nil
	}
	src, serr := parseSubfield(value)
	if serr == nil {
		if src.NBits != dst.NBits {
			// OVS prints each width after the other one's name.
			return LearnSpec{}, fmt.Errorf("%s: bit widths of %s (%d) and %s (%d) differ", orig, name, src.NBits, value, dst.NBits)
		}
		spec.Src = src
		return spec, nil
	}
	imm, ierr := parseLearnImmediate(orig, value, dst, ports)
	if ierr != nil {
		return LearnSpec{}, fmt.Errorf("%s: %s value %s cannot be parsed as a subfield (%v) or an immediate value (%v)", orig, name, value, serr, ierr)
	}
	return LearnSpec{Kind: LearnMatch, Dst: dst, Immediate: true, Value: imm}, nil
}

// parseLearnImmediate parses a match spec's immediate: a whole field's
// value in the field's syntax (no mask), or a number for part of a field.
// It returns the value right-aligned in (dst.NBits+7)/8 bytes.
func parseLearnImmediate(orig, value string, dst Subfield, ports PortMap) ([]byte, error) {
	n := (dst.NBits + 7) / 8
	if dst.whole() {
		// mf_parse_value()
		v, mask, err := parseFieldValue(dst.Field, dst.mf, value, ports)
		if err != nil {
			return nil, err
		}
		if !isAllOnes(mask) {
			return nil, fmt.Errorf("%s: wildcards not allowed here", value)
		}
		return append([]byte(nil), v[len(v)-n:]...), nil
	}
	v, tail, err := parseIntString(value, mfBytes(dst.Field))
	if err != nil || tail != "" {
		return nil, fmt.Errorf("%s: cannot parse integer value", orig)
	}
	if !isAllZeros(andBytes(v, highBits(len(v), dst.NBits))) {
		full := make([]byte, fieldDefs[dst.Field].bytes)
		copy(full[len(full)-len(v):], v)
		return nil, fmt.Errorf("%s: value %s does not fit into %d bits", orig, formatFieldValue(dst.Field, full, nil, nil), dst.NBits)
	}
	return append([]byte(nil), v[len(v)-n:]...), nil
}

// mfBytes is OVS's mf->n_bytes of a field: in_port takes 2 bytes there
// (4 in a Match, for OpenFlow 1.1+ port numbers).
func mfBytes(f FieldID) int {
	if f == FieldInPort {
		return 2
	}
	return fieldDefs[f].bytes
}

// highBits returns an n-byte mask of the bits above the low 'bits' ones.
func highBits(n, bits int) []byte {
	m := onesBits(n, 8*n)
	for i := 0; i < bits && i < 8*n; i++ {
		m[n-1-i/8] &^= 1 << (i % 8)
	}
	return m
}

// parseLearnLoad emulates the "load" case of learn_parse_spec():
// "load:VALUE->DST[..]" or "load:SRC[..]->DST[..]".
func parseLearnLoad(value string) (LearnSpec, error) {
	arrow := strings.Index(value, "->")
	switch {
	case arrow == 0:
		return LearnSpec{}, fmt.Errorf("load: missing source before `->' in `%s'", value)
	case arrow < 0:
		return LearnSpec{}, fmt.Errorf("load: missing `->' in `%s'", value)
	}
	const immBytes = 128 // sizeof(union mf_subvalue)
	imm, tail, err := parseIntString(value, immBytes)
	if err == nil && tail != value {
		if len(value)-len(tail) != arrow {
			return LearnSpec{}, fmt.Errorf("load: garbage before `->' in `%s'", value)
		}
		return parseLearnLoadImmediate(imm, value[arrow+2:], value)
	}
	acts, err := parseMove(value)
	if err != nil {
		return LearnSpec{}, err
	}
	mv := acts[0].(Move)
	return LearnSpec{Kind: LearnLoad, Src: mv.Src, Dst: mv.Dst}, nil
}

// parseLearnLoadImmediate emulates learn_parse_load_immediate().
func parseLearnLoadImmediate(imm []byte, dstStr, full string) (LearnSpec, error) {
	dst, err := parseSubfield(dstStr)
	if err != nil {
		return LearnSpec{}, err
	}
	if !hasNXM(dst) {
		return LearnSpec{}, fmt.Errorf("%s: experimenter OXM field '%s' not supported", full, dstStr)
	}
	if !isAllZeros(andBytes(imm, highBits(len(imm), dst.NBits))) {
		return LearnSpec{}, fmt.Errorf("%s: value does not fit into %d bits", full, dst.NBits)
	}
	n := (dst.NBits + 7) / 8
	return LearnSpec{Kind: LearnLoad, Dst: dst, Immediate: true, Value: append([]byte(nil), imm[len(imm)-n:]...)}, nil
}

// check emulates learn_check() on the flow's match m: each source must
// have its prerequisites in m; each field of the learned flow (a match
// spec's, a load's destination) in the learned flow's match as the
// immediates of the specs before it build it.  Then, as the switch's
// decoding of the action would, it refuses fields that have no NXM or OXM
// number (dl_vlan, dl_vlan_pcp) in loads and sources.
func (l Learn) check(m *Match) error {
	var learned Match
	for _, s := range l.Specs {
		if err := s.check(m, &learned); err != nil {
			return err
		}
	}
	for _, s := range l.Specs {
		if err := s.checkEncodable(); err != nil {
			return err
		}
	}
	return nil
}

func (s LearnSpec) check(m, learned *Match) error {
	text := s.format(nil)
	if !s.Immediate {
		if pre, mf := subfieldMeta(s.Src); !prereqOK(pre, m) {
			return inconsistent("learn: %s: source field %s lacks correct prerequisites", text, mf)
		}
	}
	pre, mf := subfieldMeta(s.Dst)
	switch s.Kind {
	case LearnMatch:
		if !prereqOK(pre, learned) {
			return inconsistent("learn: %s: field %s lacks correct prerequisites in the learned flow: the specs before it must make its match %s", text, mf, prereqText[pre])
		}
		if s.Immediate {
			learned.writeSubfield(s.Dst, s.Value)
		}
	case LearnLoad:
		if !prereqOK(pre, learned) {
			return inconsistent("learn: %s: destination field %s lacks correct prerequisites in the learned flow: the specs before it must make its match %s", text, mf, prereqText[pre])
		}
		if notWritable[s.Dst.Field] {
			return fmt.Errorf("actions are invalid with specified match (OFPBAC_BAD_SET_ARGUMENT): learn: %s: destination field %s is not writable", text, mf)
		}
	}
	return nil
}

// verify refuses a learn whose flows OVS's own decoding would refuse: a
// load of ct_mark or ct_label, which ofpacts_verify() allows only inside
// ct.  OVS accepts the learn (it verifies nothing inside it) and installs
// the flows it learns, but then fails to dump them ("cannot set CT fields
// outside of ct action", and dump-flows stops with a protocol error).
func (l Learn) verify() error {
	for _, s := range l.Specs {
		if s.Kind == LearnLoad && (s.Dst.Field == FieldCtMark || s.Dst.Field == FieldCtLabel) {
			return fmt.Errorf("learn: %s: cannot set CT fields outside of ct action (Open vSwitch would learn flows that its dump-flows cannot read)", s.format(nil))
		}
	}
	return nil
}

// checkEncodable refuses a spec whose source or load destination has no
// NXM/OXM header: OVS encodes it as 0, which the switch refuses
// (OFPBAC_BAD_SET_TYPE).  A match destination without one is refused at
// parse time.
func (s LearnSpec) checkEncodable() error {
	var fields []Subfield
	if !s.Immediate {
		fields = append(fields, s.Src)
	}
	if s.Kind != LearnOutput {
		fields = append(fields, s.Dst)
	}
	for _, sf := range fields {
		if !hasNXM(sf) {
			return fmt.Errorf("actions are invalid with specified match (OFPBAC_BAD_SET_TYPE): learn: %s: field %s has no NXM or OXM header", s.format(nil), sf.Name)
		}
	}
	return nil
}
