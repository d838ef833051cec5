package ofctl

import (
	"fmt"
	"strconv"
	"strings"
)

// Subfield is a range of bits of a field, written "NAME[start..end]" as in
// OVS's load, move and ct(zone=...) syntax.  Ofs counts from the least
// significant bit.
type Subfield struct {
	Field FieldID
	Name  string // NXM/OXM name printed for the field, e.g. "NXM_NX_REG0"
	Ofs   int
	NBits int

	mf     string // meta-flow name (messages)
	prereq prereq // meta-flow prerequisites
}

// String formats the subfield like OVS's mf_format_subfield().
func (s Subfield) String() string {
	bits := fieldDefs[s.Field].bits
	switch {
	case s.Ofs == 0 && s.NBits == bits:
		return s.Name + "[]"
	case s.NBits == 1:
		return fmt.Sprintf("%s[%d]", s.Name, s.Ofs)
	default:
		return fmt.Sprintf("%s[%d..%d]", s.Name, s.Ofs, s.Ofs+s.NBits-1)
	}
}

// parseSubfieldPrefix emulates mf_parse_subfield__(): it parses a subfield
// at the start of s and returns the rest of s.
func parseSubfieldPrefix(s string) (Subfield, string, error) {
	nameLen := strings.IndexAny(s, "[-")
	if nameLen < 0 {
		nameLen = len(s)
	}
	name := s[:nameLen]
	e, ok := lookupSubfieldName(name)
	if !ok {
		return Subfield{}, s, fmt.Errorf("%s: unknown field `%s'", s, name)
	}
	d := &fieldDefs[e.id]
	start, end := 0, d.bits-1
	rest := s[nameLen:]
	if strings.HasPrefix(rest, "[") {
		close := strings.IndexByte(rest, ']')
		inner := ""
		if close >= 0 {
			inner = rest[1:close]
		}
		bad := close < 0
		if !bad && inner != "" {
			if i := strings.Index(inner, ".."); i >= 0 {
				a, ok1 := scanLeadingInt(inner[:i])
				b, ok2 := scanLeadingInt(inner[i+2:])
				bad = !ok1 || !ok2
				start, end = a, b
			} else {
				a, ok1 := scanLeadingInt(inner)
				bad = !ok1
				start, end = a, a
			}
		}
		if bad {
			return Subfield{}, s, fmt.Errorf("%s: syntax error expecting [] or [<bit>] or [<start>..<end>]", s)
		}
		rest = rest[close+1:]
	}
	switch {
	case start > end:
		return Subfield{}, s, fmt.Errorf("%s: starting bit %d is after ending bit %d", s, start, end)
	case start >= d.bits:
		return Subfield{}, s, fmt.Errorf("%s: starting bit %d is not valid because field is only %d bits wide", s, start, d.bits)
	case end >= d.bits:
		return Subfield{}, s, fmt.Errorf("%s: ending bit %d is not valid because field is only %d bits wide", s, end, d.bits)
	}
	return Subfield{Field: e.id, Name: e.printName(), Ofs: start, NBits: end - start + 1, mf: e.mf, prereq: e.prereq}, rest, nil
}

// printName is the name a subfield of e prints with: its NXM/OXM name, or
// its meta-flow name when it has none.
func (e nameEntry) printName() string {
	if e.nxm == "" {
		return e.mf
	}
	return e.nxm
}

// scanLeadingInt parses a whole "%d" number (white space allowed before).
func scanLeadingInt(s string) (int, bool) {
	v, err := strconv.Atoi(strings.TrimLeft(s, " \t\n"))
	return v, err == nil
}

// parseSubfield emulates mf_parse_subfield(): the whole string.
func parseSubfield(s string) (Subfield, error) {
	sf, rest, err := parseSubfieldPrefix(s)
	if err != nil {
		return sf, err
	}
	if rest != "" {
		return sf, fmt.Errorf("unexpected input following field syntax")
	}
	return sf, nil
}

// subfieldBits returns the field-wide mask of the subfield's bits.
func subfieldMask(sf Subfield) []byte {
	d := &fieldDefs[sf.Field]
	m := make([]byte, d.bytes)
	for i := sf.Ofs; i < sf.Ofs+sf.NBits; i++ {
		m[d.bytes-1-i/8] |= 1 << (i % 8)
	}
	return m
}

// getBits extracts n bits at offset ofs (from the LSB) of a big-endian value.
func getBits(b []byte, ofs, n int) uint64 {
	var v uint64
	for i := n - 1; i >= 0; i-- {
		bit := ofs + i
		v <<= 1
		if bit/8 < len(b) && b[len(b)-1-bit/8]&(1<<(bit%8)) != 0 {
			v |= 1
		}
	}
	return v
}

// setBits stores the low n bits of v at offset ofs of a big-endian value.
func setBits(b []byte, ofs, n int, v uint64) {
	for i := 0; i < n; i++ {
		bit := ofs + i
		idx := len(b) - 1 - bit/8
		if v&(1<<uint(i)) != 0 {
			b[idx] |= 1 << (bit % 8)
		} else {
			b[idx] &^= 1 << (bit % 8)
		}
	}
}

// bitSet tells whether bit i (from the LSB) of b is set.
func bitSet(b []byte, i int) bool {
	return b[len(b)-1-i/8]&(1<<(i%8)) != 0
}

// loadSegments splits a field-wide value/mask into the contiguous (at most
// 64-bit) "load" actions OVS encodes it as (next_load_segment()).
func loadSegments(f FieldID, name, mf string, pre prereq, value, mask []byte) []Action {
	d := &fieldDefs[f]
	var out []Action
	start := 0
	for start < d.bits {
		ofs := start
		for ofs < d.bits && !bitSet(mask, ofs) {
			ofs++
		}
		if ofs >= d.bits {
			break
		}
		limit := ofs + 64
		if limit > d.bits {
			limit = d.bits
		}
		end := ofs + 1
		for end < limit && bitSet(mask, end) {
			end++
		}
		sf := Subfield{Field: f, Name: name, Ofs: ofs, NBits: end - ofs, mf: mf, prereq: pre}
		out = append(out, Load{Dst: sf, Value: getBits(value, ofs, end-ofs)})
		start = end
	}
	return out
}

// ParseSubfield parses a subfield in OVS's syntax ("NXM_NX_REG0[0..15]",
// "reg0[]", ...), as actions and ct(zone=...) write them.
func ParseSubfield(s string) (Subfield, error) { return parseSubfield(s) }
