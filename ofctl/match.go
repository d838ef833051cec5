package ofctl

import (
	"fmt"
	"strings"
)

// FieldMatch is a match on one field.  Value and Mask are big-endian and
// Field.Info().Bytes long.  Value is already masked (Value &= Mask), as OVS
// normalizes it, and Mask only has bits within Field.Info().Exact; a Mask
// equal to Exact is an exact match.
type FieldMatch struct {
	Field FieldID
	Value []byte
	Mask  []byte
}

// Exact tells whether the match is on all the field's significant bits.
func (fm FieldMatch) Exact() bool {
	return equalBytes(fm.Mask, fieldDefs[fm.Field].exact)
}

// Match is a set of field matches, at most one per stored field.  The zero
// Match matches every packet.
type Match struct {
	f [numStoredFields]*FieldMatch
}

// Get returns the match on field f.  For a view field (dl_vlan, vlan_vid,
// dl_vlan_pcp, ip_dscp, in_port_oxm) it derives the value from the
// underlying field and reports false if none of the view's bits are matched.
func (m *Match) Get(f FieldID) (FieldMatch, bool) {
	if f < 0 || f >= numFields {
		return FieldMatch{}, false
	}
	if f < numStoredFields {
		e := m.f[f]
		if e == nil {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: append([]byte(nil), e.Value...), Mask: append([]byte(nil), e.Mask...)}, true
	}
	if f == FieldInPortOXM {
		e := m.f[FieldInPort]
		if e == nil {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: putBE(uint64(portToOF11(uint32(beUint(e.Value)))), 4), Mask: onesBits(4, 32)}, true
	}
	var v, mk uint16
	if e := m.f[FieldVlanTCI]; e != nil {
		v, mk = uint16(beUint(e.Value)), uint16(beUint(e.Mask))
	}
	switch f {
	case FieldDlVlan:
		if mk&0x0fff == 0 {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: putBE(uint64(v&0x0fff), 2), Mask: putBE(uint64(mk&0x0fff), 2)}, true
	case FieldVlanVID:
		if mk&0x1fff == 0 {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: putBE(uint64(v&0x1fff), 2), Mask: putBE(uint64(mk&0x1fff), 2)}, true
	case FieldVlanPCP:
		if mk&0xe000 == 0 {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: []byte{byte(v >> 13)}, Mask: []byte{byte(mk >> 13)}}, true
	case FieldIPDSCP:
		e := m.f[FieldNwTos]
		if e == nil {
			return FieldMatch{}, false
		}
		return FieldMatch{Field: f, Value: []byte{e.Value[0] >> 2}, Mask: []byte{e.Mask[0] >> 2}}, true
	}
	return FieldMatch{}, false
}

// Fields returns all field matches in FieldID order: copies, in one
// allocation for the slice and one for all values and masks (add-flows
// formats every flow it installs).
func (m *Match) Fields() []FieldMatch {
	n, size := 0, 0
	for _, e := range m.f {
		if e != nil {
			n++
			size += len(e.Value) + len(e.Mask)
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]FieldMatch, 0, n)
	buf := make([]byte, 0, size)
	for i, e := range m.f {
		if e == nil {
			continue
		}
		v := len(buf)
		buf = append(buf, e.Value...)
		k := len(buf)
		buf = append(buf, e.Mask...)
		out = append(out, FieldMatch{Field: FieldID(i), Value: buf[v:k:k], Mask: buf[k:len(buf):len(buf)]})
	}
	return out
}

// AppendKey appends bytes that identify the match (each matched field's
// id, value and mask): equal matches give equal keys, the parser having
// normalized values and masks. It copies nothing else.
func (m *Match) AppendKey(b []byte) []byte {
	for i, e := range m.f {
		if e != nil {
			b = append(b, byte(i))
			b = append(b, e.Value...)
			b = append(b, e.Mask...)
		}
	}
	return b
}

// Len returns the number of matched fields.
func (m *Match) Len() int {
	n := 0
	for _, e := range m.f {
		if e != nil {
			n++
		}
	}
	return n
}

// Set sets the match on field f to value/mask (mask nil means exact).  The
// value and mask are normalized as OVS does: the mask is limited to the
// field's significant bits, the value is masked, and an all-zero mask
// removes the match.  Views update their underlying field.  Setting one of
// two fields that share storage in OVS (nw_src/arp_spa, tp_src/icmp_type,
// ...) clears the other one.
func (m *Match) Set(f FieldID, value, mask []byte) error {
	if f < 0 || f >= numFields {
		return fmt.Errorf("invalid field %d", int(f))
	}
	d := &fieldDefs[f]
	if len(value) != d.bytes || (mask != nil && len(mask) != d.bytes) {
		return fmt.Errorf("%s: value and mask must be %d bytes", d.name, d.bytes)
	}
	if mask == nil {
		mask = onesBits(d.bytes, 8*d.bytes)
	}
	if f >= numStoredFields {
		m.setView(f, value, mask)
		return nil
	}
	if f == FieldIPFrag {
		// mf_from_frag_string forces the upper bits of the mask on.
		mask = []byte{mask[0] & 3}
	}
	mask = andBytes(mask, d.exact)
	if f == FieldNwTos || f == FieldNwEcn {
		if !isAllZeros(mask) {
			mask = d.exact
		}
	}
	m.setStored(f, andBytes(value, mask), mask)
	return nil
}

// Clear removes any match on field f (for a view, on the view's bits).
func (m *Match) Clear(f FieldID) {
	if f < 0 || f >= numFields {
		return
	}
	if f < numStoredFields {
		m.f[f] = nil
		return
	}
	d := &fieldDefs[f]
	m.setView(f, make([]byte, d.bytes), make([]byte, d.bytes))
}

var sharedStorage = map[FieldID]FieldID{
	FieldNwSrc: FieldArpSpa, FieldArpSpa: FieldNwSrc,
	FieldNwDst: FieldArpTpa, FieldArpTpa: FieldNwDst,
	FieldNwProto: FieldArpOp, FieldArpOp: FieldNwProto,
	FieldTpSrc: FieldIcmpType, FieldIcmpType: FieldTpSrc,
	FieldTpDst: FieldIcmpCode, FieldIcmpCode: FieldTpDst,
}

func (m *Match) setStored(f FieldID, value, mask []byte) {
	if s, ok := sharedStorage[f]; ok {
		m.f[s] = nil
	}
	if isAllZeros(mask) {
		m.f[f] = nil
		return
	}
	m.f[f] = &FieldMatch{Field: f, Value: value, Mask: mask}
}

func (m *Match) tci() (uint16, uint16) {
	if e := m.f[FieldVlanTCI]; e != nil {
		return uint16(beUint(e.Value)), uint16(beUint(e.Mask))
	}
	return 0, 0
}

func (m *Match) setTCI(v, mk uint16) {
	m.setStored(FieldVlanTCI, putBE(uint64(v&mk), 2), putBE(uint64(mk), 2))
}

// setView implements OVS's match_set_dl_vlan(), match_set_vlan_vid_masked(),
// match_set_dl_vlan_pcp(), match_set_nw_dscp() and their wildcarding
// counterparts.
func (m *Match) setView(f FieldID, value, mask []byte) {
	wild := isAllZeros(mask)
	switch f {
	case FieldDlVlan:
		tv, tm := m.tci()
		if wild {
			m.anyVID()
			return
		}
		vid := uint16(beUint(value))
		if vid == 0xffff { // OFP10_VLAN_NONE: no VLAN header
			m.setTCI(0, 0xffff)
			return
		}
		tv = tv&^0x0fff | 0x1000 | vid&0x0fff
		m.setTCI(tv, tm|0x1fff)
	case FieldVlanVID:
		if wild {
			m.anyVID()
			return
		}
		tv, tm := m.tci()
		mk := uint16(beUint(mask)) & 0x1fff
		vid := uint16(beUint(value)) & mk
		tv = tv&^0x1fff | vid
		m.setTCI(tv, mk|tm&0xe000)
	case FieldVlanPCP:
		tv, tm := m.tci()
		if wild {
			// match_set_any_pcp()
			if tm&0x0fff != 0 {
				m.setTCI(tv&^0xe000, tm&^0xe000)
			} else {
				m.setTCI(0, 0)
			}
			return
		}
		pcp := uint16(value[0] & 7)
		tv = tv&^0xe000 | pcp<<13 | 0x1000
		m.setTCI(tv, tm|0xf000)
	case FieldIPDSCP:
		if wild {
			m.f[FieldNwTos] = nil
			return
		}
		m.setStored(FieldNwTos, []byte{value[0] << 2 & 0xfc}, []byte{0xfc})
	case FieldInPortOXM:
		// mf_set_value(MFF_IN_PORT_OXM): not maskable.
		if wild {
			m.f[FieldInPort] = nil
			return
		}
		m.setStored(FieldInPort, putBE(uint64(portFromOF11(uint32(beUint(value)))), 4), onesBits(4, 32))
	}
}

// portToOF11 emulates ofputil_port_to_ofp11(): the reserved ports
// (0xff00 and up) move to 0xffffff00 and up.
func portToOF11(p uint32) uint32 {
	if p < PortMax {
		return p
	}
	return p + 0xffff0000
}

// portFromOF11 emulates ofputil_port_from_ofp11(), which makes a number
// in neither range OFPP_NONE.
func portFromOF11(p uint32) uint32 {
	switch {
	case p < PortMax:
		return p
	case p >= 0xffffff00:
		return p - 0xffff0000
	}
	return PortNone
}

// anyVID implements match_set_any_vid().
func (m *Match) anyVID() {
	tv, tm := m.tci()
	if tm&0xe000 != 0 {
		m.setTCI(tv&^0x0fff, tm&^0x0fff)
	} else {
		m.setTCI(0, 0)
	}
}

// exact returns the value of an exactly matched stored field.
func (m *Match) exact(f FieldID) (uint64, bool) {
	e := m.f[f]
	if e == nil || !e.Exact() {
		return 0, false
	}
	return beUint(e.Value), true
}

// dlType returns the exactly matched Ethernet type, or 0.
func (m *Match) dlType() uint16 {
	v, _ := m.exact(FieldDlType)
	return uint16(v)
}

// nwProto returns the exactly matched IP protocol and whether there is one.
func (m *Match) nwProto() (uint8, bool) {
	v, ok := m.exact(FieldNwProto)
	return uint8(v), ok
}

// Ethernet types and IP protocols with names.
const (
	ethTypeIP    = 0x0800
	ethTypeARP   = 0x0806
	ethTypeRARP  = 0x8035
	ethTypeIPv6  = 0x86dd
	ethTypeMPLS  = 0x8847
	ethTypeMPLSM = 0x8848

	ipProtoICMP   = 1
	ipProtoTCP    = 6
	ipProtoUDP    = 17
	ipProtoSCTP   = 132
	ipProtoICMPv6 = 58
)

type protocol struct {
	name    string
	dlType  uint16
	nwProto uint8
}

// protocols are the shorthand keywords ovs-ofctl accepts in a match.
var protocols = []protocol{
	{"ip", ethTypeIP, 0},
	{"ipv4", ethTypeIP, 0},
	{"ip4", ethTypeIP, 0},
	{"arp", ethTypeARP, 0},
	{"icmp", ethTypeIP, ipProtoICMP},
	{"tcp", ethTypeIP, ipProtoTCP},
	{"udp", ethTypeIP, ipProtoUDP},
	{"sctp", ethTypeIP, ipProtoSCTP},
	{"ipv6", ethTypeIPv6, 0},
	{"ip6", ethTypeIPv6, 0},
	{"icmp6", ethTypeIPv6, ipProtoICMPv6},
	{"tcp6", ethTypeIPv6, ipProtoTCP},
	{"udp6", ethTypeIPv6, ipProtoUDP},
	{"sctp6", ethTypeIPv6, ipProtoSCTP},
	{"rarp", ethTypeRARP, 0},
	{"mpls", ethTypeMPLS, 0},
	{"mplsm", ethTypeMPLSM, 0},
}

func lookupProtocol(name string) (protocol, bool) {
	for _, p := range protocols {
		if p.name == name {
			return p, true
		}
	}
	return protocol{}, false
}

// parseFieldValue parses s as a (possibly masked) value of field f (mf is the
// name used in messages), like OVS's mf_parse().  A nil mask means exact.
func parseFieldValue(f FieldID, mf string, s string, ports PortMap) (value, mask []byte, err error) {
	d := &fieldDefs[f]
	if s == "*" {
		return make([]byte, d.bytes), make([]byte, d.bytes), nil
	}
	switch d.format {
	case fmtDecimal, fmtHex:
		value, mask, err = parseIntegerValue(s, d.bytes, mf)
	case fmtEth:
		var v, mk [6]byte
		v, mk, err = parseMACMasked(s)
		value, mask = v[:], mk[:]
	case fmtIPv4:
		var v, mk [4]byte
		v, mk, err = parseIPv4Masked(s)
		value, mask = v[:], mk[:]
	case fmtIPv6:
		var v, mk [16]byte
		v, mk, err = parseIPv6Masked(s)
		value, mask = v[:], mk[:]
	case fmtPort:
		p, ok := parsePort(s, ports)
		if !ok {
			return nil, nil, fmt.Errorf("%s: invalid or unknown port for %s", s, mf)
		}
		value, mask = putBE(uint64(p), 4), onesBits(4, 32)
	case fmtPortOXM:
		// mf_from_ofp_port_string32()
		p, ok := parsePort(s, ports)
		if !ok {
			return nil, nil, fmt.Errorf("%s: port value out of range for %s", s, mf)
		}
		value, mask = putBE(uint64(portToOF11(p)), 4), onesBits(4, 32)
	case fmtCtState:
		var v, mk uint32
		v, mk, err = parseFlags(s, ctStateNames, "ct_state", 0xff)
		value, mask = putBE(uint64(v), 4), putBE(uint64(mk), 4)
	case fmtTCPFlags:
		var v, mk uint32
		v, mk, err = parseFlags(s, tcpFlagNames, "TCP", 0x0fff)
		value, mask = putBE(uint64(v), 2), putBE(uint64(mk&0xffff), 2)
	case fmtFrag:
		var v, mk byte
		v, mk, err = parseFrag(s)
		value, mask = []byte{v}, []byte{mk | 0xfc}
	}
	if err != nil {
		return nil, nil, err
	}
	if !d.maskable && !isAllOnes(mask) && !isAllZeros(mask) {
		return nil, nil, fmt.Errorf("%s: invalid mask for field %s", s, mf)
	}
	return value, mask, nil
}

// parseIntegerValue emulates mf_from_integer_string().
func parseIntegerValue(s string, width int, mf string) ([]byte, []byte, error) {
	synErr := func(err error, what string) error {
		if err == errRange {
			return fmt.Errorf("%s: %s too large for %d-byte field %s", s, what, width, mf)
		}
		return fmt.Errorf("%s: bad syntax for %s %s", s, mf, what)
	}
	v, tail, err := parseIntString(s, width)
	if err != nil || (tail != "" && tail[0] != '/') {
		if err == nil {
			err = errSyntax
		}
		return nil, nil, synErr(err, "value")
	}
	if tail == "" {
		return v, onesBits(width, 8*width), nil
	}
	mk, tail, err := parseIntString(tail[1:], width)
	if err != nil || tail != "" {
		if err == nil {
			err = errSyntax
		}
		return nil, nil, synErr(err, "mask")
	}
	return v, mk, nil
}

var fragNames = []struct {
	name        string
	mask, value byte
}{
	{"no", 3, 0},
	{"first", 3, 1},
	{"later", 3, 3},
	{"no", 1, 0},
	{"yes", 1, 1},
	{"not_later", 2, 0},
	{"later", 2, 2},
}

func parseFrag(s string) (byte, byte, error) {
	for _, h := range fragNames {
		if strings.EqualFold(s, h.name) {
			return h.value, h.mask, nil
		}
	}
	return 0, 0, fmt.Errorf("%s: unknown fragment type (valid types are \"no\", \"yes\", \"first\", \"later\", \"not_later\"", s)
}

func formatFrag(value, mask byte) string {
	mask &= 3
	value &= mask
	for _, h := range fragNames {
		if h.value == value && h.mask == mask {
			return h.name
		}
	}
	return "<error>"
}

// ctStateNames are the ct_state flags by bit number (OVS's CS_STATES).
var ctStateNames = []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// tcpFlagNames are the TCP flags by bit number (packet_tcp_flag_to_string).
var tcpFlagNames = []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns", "[200]", "[400]", "[800]"}

func flagName(names []string, bit uint32) string {
	for i := range names {
		if bit == 1<<uint(i) {
			return names[i]
		}
	}
	return ""
}

// parseFlags emulates OVS's parse_flags() with a mask: "0xV/0xM",
// "+flag-flag..." or "flag|flag|0xN" (the last form is an exact match).
func parseFlags(s string, names []string, fieldName string, allowed uint32) (uint32, uint32, error) {
	unknown := func(at string) error {
		return fmt.Errorf("%s: unknown %s flag(s)", at, fieldName)
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		f, ftail, err1 := scanCInt32(s[:i])
		mk, mtail, err2 := scanCInt32(s[i+1:])
		if err1 == nil && err2 == nil && ftail == "" && mtail == "" {
			if f&^allowed != 0 || mk&^allowed != 0 {
				return 0, 0, unknown(s)
			}
			return f, mk, nil
		}
	}
	if s != "" && (s[0] == '+' || s[0] == '-') {
		var flags, mask uint32
		for s != "" {
			set := s[0] == '+'
			if s[0] != '+' && s[0] != '-' {
				return 0, 0, fmt.Errorf("%s: %s must be preceded by '+' (for SET) or '-' (NOT SET)", s, fieldName)
			}
			s = s[1:]
			found := false
			for i, name := range names {
				bit := uint32(1) << uint(i)
				if !strings.HasPrefix(s, name) {
					continue
				}
				if r := s[len(name):]; r != "" && r[0] != '+' && r[0] != '-' {
					continue
				}
				if mask&bit != 0 {
					return 0, 0, fmt.Errorf("%s: Each %s flag can be specified only once", s, fieldName)
				}
				if bit&allowed == 0 {
					return 0, 0, unknown(s)
				}
				if set {
					flags |= bit
				}
				mask |= bit
				s = s[len(name):]
				found = true
				break
			}
			if !found {
				return 0, 0, unknown(s)
			}
		}
		return flags, mask, nil
	}
	orig := s
	var result uint32
	for s != "" {
		if v, _, tail, err := scanC(s, 0); err == nil && (tail == "" || tail[0] == '|') {
			if v&^uint64(allowed) != 0 {
				return 0, 0, unknown(orig)
			}
			result |= uint32(v)
			s = strings.TrimPrefix(tail, "|")
			continue
		}
		found := false
		for i, name := range names {
			bit := uint32(1) << uint(i)
			if strings.HasPrefix(s, name) && (len(s) == len(name) || s[len(name)] == '|') {
				if bit&allowed == 0 {
					return 0, 0, unknown(orig)
				}
				result |= bit
				s = strings.TrimPrefix(s[len(name):], "|")
				found = true
				break
			}
		}
		if !found {
			return 0, 0, unknown(orig)
		}
	}
	return result, 0xffffffff, nil
}

// scanCInt32 scans a "%i" integer (C syntax: decimal, 0x hex, 0 octal).
func scanCInt32(s string) (uint32, string, error) {
	v, neg, tail, err := scanC(s, 0)
	if err != nil {
		return 0, s, err
	}
	if neg {
		v = -v
	}
	return uint32(v), tail, nil
}

// formatFlags emulates format_flags() with '|' as delimiter.
func formatFlags(names []string, flags uint32) string {
	if flags == 0 {
		return "0"
	}
	var parts []string
	var bad uint32
	for flags != 0 {
		bit := flags & -flags
		if n := flagName(names, bit); n != "" {
			parts = append(parts, n)
		} else {
			bad |= bit
		}
		flags &^= bit
	}
	if bad != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", bad))
	}
	return strings.Join(parts, "|")
}

// formatFlagsMasked emulates format_flags_masked() without the name.
func formatFlagsMasked(names []string, flags, mask, maxMask uint32) string {
	if mask == maxMask {
		return formatFlags(names, flags)
	}
	if mask == 0 {
		return "0/0"
	}
	var sb strings.Builder
	for mask != 0 {
		bit := mask & -mask
		if flags&bit != 0 {
			sb.WriteByte('+')
		} else {
			sb.WriteByte('-')
		}
		if n := flagName(names, bit); n != "" {
			sb.WriteString(n)
		} else {
			sb.WriteString("[Unknown]")
		}
		mask &^= bit
	}
	return sb.String()
}

// equal tells whether two matches are identical.
func (m *Match) equal(o *Match) bool {
	for i := range m.f {
		a, b := m.f[i], o.f[i]
		if (a == nil) != (b == nil) {
			return false
		}
		if a != nil && (!equalBytes(a.Value, b.Value) || !equalBytes(a.Mask, b.Mask)) {
			return false
		}
	}
	return true
}

// Equal tells whether two matches match exactly the same fields with the
// same values and masks.
func (m *Match) Equal(o *Match) bool { return m.equal(o) }
