package ofctl

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultPriority is OpenFlow's default flow priority.
const DefaultPriority = 32768

// TableAll in a filter (ParseMatch) means "all tables" (OpenFlow's
// OFPTT_ALL).  It is not a valid table for a flow.
const TableAll = 255

// FlowFlags are the flow_mod flags ovs-ofctl accepts on add-flow.
type FlowFlags uint8

// Flow flags, printed in this order.
const (
	FlagSendFlowRem FlowFlags = 1 << iota
	FlagCheckOverlap
	FlagResetCounts
	FlagNoPacketCounts
	FlagNoByteCounts
)

var flagNames = []struct {
	flag FlowFlags
	name string
}{
	{FlagSendFlowRem, "send_flow_rem"},
	{FlagCheckOverlap, "check_overlap"},
	{FlagResetCounts, "reset_counts"},
	{FlagNoPacketCounts, "no_packet_counts"},
	{FlagNoByteCounts, "no_byte_counts"},
}

// Flow is a parsed flow (ParseFlow) or flow filter (ParseMatch).
type Flow struct {
	Table       uint8  // TableAll in a filter that names no table
	Priority    uint16 // default 32768
	Cookie      uint64
	CookieMask  uint64 // only meaningful for del/dump matching (cookie=V/M); 0 when no mask given
	IdleTimeout uint16
	HardTimeout uint16
	Importance  uint16
	Flags       FlowFlags
	// OutPort restricts a filter to flows that output to this port
	// ("out_port=N" in ParseMatch); 0 means any.
	OutPort uint32
	Match   Match
	Actions []Action // empty list == drop

	filter bool // parsed by ParseMatch: String() prints filter syntax
}

// ParseFlow parses a flow as "ovs-ofctl add-flow" does.  "actions=" is
// required.  Port names are resolved with ports (nil: numbers only).  The
// result is normalized: see the package documentation.
func ParseFlow(s string, ports PortMap) (*Flow, error) {
	return parseFlow(s, ports, false)
}

// ParseMatch parses a flow filter as "ovs-ofctl del-flows" and "dump-flows"
// (and del-flows --strict, for priority) do: no actions, timeouts or
// importance; "cookie=V/M" matches cookies; "table=N" and "out_port=P"
// restrict the flows; the table defaults to TableAll.
func ParseMatch(s string, ports PortMap) (*Flow, error) {
	return parseFlow(s, ports, true)
}

// ParseModFlow parses a flow as "ovs-ofctl mod-flows" does: a filter (the
// table defaults to TableAll, "cookie=V/M" selects cookies) that also
// carries the new actions, which are required.
func ParseModFlow(s string, ports PortMap) (*Flow, error) {
	matchPart, actPart, ok := extractActions(s)
	if !ok {
		return nil, errors.New("must specify an action")
	}
	f, err := parseFlow(matchPart, ports, true)
	if err != nil {
		return nil, err
	}
	acts, err := parseActions(actPart, ports, "", 0)
	if err != nil {
		return nil, err
	}
	table := -1
	if f.Table != TableAll {
		table = int(f.Table)
	}
	if err := checkActions(acts, &f.Match, table); err != nil {
		return nil, err
	}
	f.Actions = stripChecks(acts)
	return f, nil
}

// AsAdd returns the flow a filter-style flow (from ParseModFlow) adds when
// it modifies nothing, as OpenFlow 1.0's modify does: table 0 unless one
// was given, the cookie without its mask.
func (f *Flow) AsAdd() *Flow {
	g := *f
	g.filter = false
	g.CookieMask = 0
	g.OutPort = 0
	if g.Table == TableAll {
		g.Table = 0
	}
	g.Actions = append([]Action(nil), f.Actions...)
	return &g
}

func parseFlow(s string, ports PortMap, filter bool) (*Flow, error) {
	f := &Flow{Priority: DefaultPriority, filter: filter}
	if filter {
		f.Table = TableAll
	}
	matchPart, actPart := s, ""
	if !filter {
		var ok bool
		matchPart, actPart, ok = extractActions(s)
		if !ok {
			return nil, errors.New("must specify an action")
		}
	}
	origin := map[FieldID]string{}
	tableGiven := false
	pos := 0
	for {
		t, ok := nextToken(matchPart, &pos)
		if !ok {
			break
		}
		if err := f.parseMatchToken(t, ports, filter, origin, &tableGiven); err != nil {
			return nil, withToken(err, t)
		}
	}
	if err := f.Match.canonicalize(origin); err != nil {
		return nil, err
	}
	if err := validateMatch(&f.Match, origin); err != nil {
		return nil, err
	}
	if filter {
		return f, nil
	}
	acts, err := parseActions(actPart, ports, "", 0)
	if err != nil {
		return nil, err
	}
	table := -1
	if tableGiven {
		table = int(f.Table)
	}
	if err := checkActions(acts, &f.Match, table); err != nil {
		return nil, err
	}
	f.Actions = stripChecks(acts)
	return f, nil
}

func (f *Flow) parseMatchToken(t token, ports PortMap, filter bool, origin map[FieldID]string, tableGiven *bool) error {
	name, value := t.key, t.value
	if p, ok := lookupProtocol(name); ok {
		f.Match.setStored(FieldDlType, putBE(uint64(p.dlType), 2), []byte{0xff, 0xff})
		origin[FieldDlType] = name
		if p.nwProto != 0 {
			f.Match.setStored(FieldNwProto, []byte{p.nwProto}, []byte{0xff})
			origin[FieldNwProto] = name
		}
		return nil
	}
	switch name {
	case "eth", "no_readonly_table", "allow_hidden_fields":
		return nil
	}
	if !filter {
		for _, fl := range flagNames {
			if name == fl.name {
				f.Flags |= fl.flag
				return nil
			}
		}
	}
	if e, ok := fieldByName[name]; ok {
		return f.parseFieldToken(e, t, ports, origin)
	}
	if strings.Contains(name, "[") {
		return f.parseSubfieldToken(t, origin)
	}
	if value == "" {
		return fmt.Errorf("field %s missing value", name)
	}
	var err error
	switch {
	case name == "table":
		tbl, ok := parseTable(value)
		if !ok {
			return fmt.Errorf("unknown table \"%s\"", value)
		}
		if !filter && tbl == TableAll {
			return fmt.Errorf("invalid table \"%s\" (tables are numbered 0 through 254)", value)
		}
		f.Table = tbl
		*tableGiven = tbl != TableAll
	case filter && name == "out_port":
		p, ok := parsePort(value, ports)
		if !ok {
			return fmt.Errorf("%s is not a valid OpenFlow port", value)
		}
		if p == PortNone {
			p = 0
		}
		f.OutPort = p
	case name == "priority":
		f.Priority, err = strToU16(value, name)
	case !filter && name == "idle_timeout":
		f.IdleTimeout, err = strToU16(value, name)
	case !filter && name == "hard_timeout":
		f.HardTimeout, err = strToU16(value, name)
	case !filter && name == "importance":
		f.Importance, err = strToU16(value, name)
	case name == "cookie":
		if i := strings.IndexByte(value, '/'); i >= 0 {
			if !filter {
				return errors.New("flow additions cannot use a cookie mask")
			}
			if f.Cookie, err = strToU64(value[:i]); err != nil {
				return err
			}
			f.CookieMask, err = strToU64(value[i+1:])
			f.Cookie &= f.CookieMask
		} else {
			if filter {
				return fmt.Errorf("cannot set cookie (to match on a cookie, specify a mask, e.g. cookie=%s/-1)", value)
			}
			f.Cookie, err = strToU64(value)
		}
	case name == "duration", name == "n_packets", name == "n_bytes", name == "idle_age", name == "hard_age":
		// Ignored, so that dump-flows output can be fed back.
	default:
		err = fmt.Errorf("unknown keyword %s", name)
	}
	return err
}

// parseFieldToken emulates ofp_parse_field(): "name=value[/mask]", with an
// empty value meaning "0/0".
func (f *Flow) parseFieldToken(e nameEntry, t token, ports PortMap, origin map[FieldID]string) error {
	s := t.value
	if s == "" {
		s = "0/0"
	}
	value, mask, err := parseFieldValue(e.id, e.mf, s, ports)
	if err != nil {
		return err
	}
	if err := f.Match.Set(e.id, value, mask); err != nil {
		return err
	}
	origin[storedField(e.id)] = t.text()
	return nil
}

// storedField returns the stored field behind a view.
func storedField(id FieldID) FieldID {
	switch id {
	case FieldDlVlan, FieldVlanVID, FieldVlanPCP:
		return FieldVlanTCI
	case FieldIPDSCP:
		return FieldNwTos
	case FieldInPortOXM:
		return FieldInPort
	}
	return id
}

// parseSubfieldToken emulates parse_subfield(): "NAME[start..end]=value".
func (f *Flow) parseSubfieldToken(t token, origin map[FieldID]string) error {
	sf, err := parseSubfield(t.key)
	if err != nil {
		return err
	}
	d := &fieldDefs[sf.Field]
	val, tail, perr := parseIntString(t.value, d.bytes)
	if perr != nil || tail != "" {
		return fmt.Errorf("%s: cannot parse integer value: %s", t.key, t.value)
	}
	for i := sf.NBits; i < 8*d.bytes; i++ {
		if bitSet(val, i) {
			return fmt.Errorf("%s: value %s does not fit into %d bits", t.key, formatFieldValue(sf.Field, val, nil, nil), sf.NBits)
		}
	}
	id := sf.Field
	if d.view && id != FieldInPortOXM {
		return fmt.Errorf("%s: subfields of %s are not supported in a match", t.key, d.name)
	}
	if !f.Match.writeSubfield(sf, val) {
		// mf_write_subfield() then mf_set(): a field that is not maskable
		// is matched on all its bytes (OVS's n_bytes, here the bytes its
		// bits take: in_port's two) or no protocol can carry the match.
		return fmt.Errorf("actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT): %s: field %s is not maskable: a match takes all its bits", t.key, sf.mf)
	}
	origin[storedField(id)] = t.text()
	return nil
}

// Equal tells whether two flows are identical (same table, priority,
// cookie, timeouts, flags, match and canonical actions).
func (f *Flow) Equal(g *Flow) bool {
	return f.Table == g.Table && f.Priority == g.Priority && f.Cookie == g.Cookie &&
		f.CookieMask == g.CookieMask && f.IdleTimeout == g.IdleTimeout &&
		f.HardTimeout == g.HardTimeout && f.Importance == g.Importance &&
		f.Flags == g.Flags && f.OutPort == g.OutPort && f.Match.equal(&g.Match) &&
		f.ActionsString(nil) == g.ActionsString(nil)
}
