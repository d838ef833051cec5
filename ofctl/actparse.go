package ofctl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

const maxActionDepth = 100 // OVS's MAX_OFPACT_PARSE_DEPTH

// actionNames are OVS's action keywords (matched case-insensitively).  The
// ones mapped to false are valid in OVS but not supported here.
var actionNames = map[string]bool{
	"output": true, "controller": true, "set_field": true, "set_vlan_vid": true,
	"set_vlan_pcp": true, "strip_vlan": true, "push_vlan": true, "mod_dl_src": true,
	"mod_dl_dst": true, "mod_nw_src": true, "mod_nw_dst": true, "mod_nw_tos": true,
	"mod_nw_ecn": true, "mod_nw_ttl": true, "mod_tp_src": true, "mod_tp_dst": true,
	"move": true, "dec_ttl": true, "set_tunnel": true, "set_queue": true,
	"pop_queue": true, "resubmit": true, "note": true, "exit": true, "ct": true,
	"ct_clear": true, "nat": true, "goto_table": true, "learn": true,

	"group": false, "enqueue": false, "output_reg": false, "bundle": false,
	"push": false, "pop": false, "set_mpls_label": false, "set_mpls_tc": false,
	"set_mpls_ttl": false, "dec_mpls_ttl": false, "push_mpls": false, "pop_mpls": false,
	"dec_nsh_ttl": false, "delete_field": false, "encap": false, "decap": false,
	"fin_timeout": false, "conjunction": false, "multipath": false,
	"sample": false, "unroll_xlate": false, "output_trunc": false, "clone": false,
	"check_pkt_larger": false, "debug_recirc": false, "debug_slow": false,
	"meter": false, "clear_actions": false, "write_actions": false, "write_metadata": false,
}

// parseActions emulates ofpacts_parse__() for the actions of a flow
// ("outer" is "" at top level or "ct" inside ct(exec(...))).
func parseActions(s string, ports PortMap, outer string, depth int) ([]Action, error) {
	if depth >= maxActionDepth {
		return nil, errors.New("Action nested too deeply")
	}
	var acts []Action
	drop := false
	pos := 0
	for {
		t, ok := nextToken(s, &pos)
		if !ok {
			break
		}
		key := strings.ToLower(t.key)
		var err error
		var add []Action
		if supported, known := actionNames[key]; known {
			if !supported {
				return nil, fmt.Errorf("action %s is not supported", t.key)
			}
			add, err = parseAction(key, t, ports, outer, depth)
		} else {
			switch key {
			case "mod_vlan_vid":
				add, err = parseAction("set_vlan_vid", t, ports, outer, depth)
			case "mod_vlan_pcp":
				add, err = parseAction("set_vlan_pcp", t, ports, outer, depth)
			case "set_nw_ttl":
				add, err = parseAction("mod_nw_ttl", t, ports, outer, depth)
			case "pop_vlan":
				add = []Action{StripVlan{}}
			case "set_tunnel64":
				var id uint64
				id, err = strToU64(t.value)
				add = []Action{SetTunnel{ID: id, Use64: true}}
			case "load":
				add, err = parseLoad(t.value)
			case "bundle_load":
				return nil, fmt.Errorf("action %s is not supported", t.key)
			case "drop":
				drop = true
			case "apply_actions":
				return nil, errors.New("apply_actions is the default instruction")
			default:
				p, ok := parsePort(t.key, ports)
				if !ok {
					return nil, fmt.Errorf("unknown action %s", t.key)
				}
				add = []Action{Output{Port: p}}
			}
		}
		if err != nil {
			if depth == 0 {
				err = withToken(err, t)
			}
			return nil, err
		}
		acts = append(acts, add...)
		if err := verifyActions(acts, outer); err != nil {
			return nil, withToken(err, t)
		}
	}
	if drop && len(acts) > 0 {
		return nil, errors.New("\"drop\" must not be accompanied by any other action or instruction")
	}
	return acts, nil
}

// withToken makes sure an error names the token it is about: OVS's message
// is kept and, when it mentions neither the token's key nor its value, the
// token is appended.
func withToken(err error, t token) error {
	msg := err.Error()
	if strings.Contains(msg, t.key) || (t.value != "" && strings.Contains(msg, t.value)) {
		return err
	}
	return fmt.Errorf("%s (in \"%s\")", msg, t.text())
}

// verifyActions emulates the parts of ofpacts_verify() that apply to the
// supported actions: nesting rules and goto_table being last.
func verifyActions(acts []Action, outer string) error {
	sawGoto := false
	for _, a := range acts {
		if sawGoto {
			if _, ok := a.(GotoTable); ok {
				return errors.New("instruction goto_table may be specified only once")
			}
			return errors.New("invalid instruction ordering: apply_actions must appear before goto_table, for OpenFlow 1.1+ compatibility")
		}
		dst, hasDst := actionDstField(a)
		if hasDst && (dst == FieldCtMark || dst == FieldCtLabel) && outer != "ct" {
			return errors.New("cannot set CT fields outside of ct action")
		}
		if l, ok := a.(Learn); ok {
			if err := l.verify(); err != nil {
				return err
			}
		}
		if _, ok := a.(NAT); ok {
			if outer != "ct" {
				return errors.New("Cannot have NAT action outside of \"ct\" action")
			}
			continue
		}
		if outer == "ct" {
			if !hasDst {
				return fmt.Errorf("ct action doesn't support nested action %s", actionName(a))
			}
			if dst != FieldCtMark && dst != FieldCtLabel {
				return fmt.Errorf("ct action doesn't support nested modification of %s", fieldDefs[dst].mf)
			}
		}
		if _, ok := a.(GotoTable); ok {
			if outer != "" {
				return fmt.Errorf("%s action doesn't support nested action goto_table", outer)
			}
			sawGoto = true
		}
	}
	return nil
}

// actionDstField returns the field an action writes, as OVS's
// ofpact_get_mf_dst() does.
func actionDstField(a Action) (FieldID, bool) {
	switch a := a.(type) {
	case Load:
		return a.Dst.Field, true
	case Move:
		return a.Dst.Field, true
	case SetField:
		return a.Field, true
	case setFieldCheck:
		return a.sf.Field, true
	}
	return 0, false
}

// actionName returns OVS's name of an action type (for messages).
func actionName(a Action) string {
	switch a.(type) {
	case Output, OutputReg:
		return "output"
	case Controller:
		return "controller"
	case CT:
		return "ct"
	case CTClear:
		return "ct_clear"
	case NAT:
		return "nat"
	case Resubmit:
		return "resubmit"
	case GotoTable:
		return "goto_table"
	case Note:
		return "note"
	case Load, SetField:
		return "set_field"
	case Move:
		return "move"
	case ModVlanVid:
		return "set_vlan_vid"
	case ModVlanPcp:
		return "set_vlan_pcp"
	case StripVlan:
		return "strip_vlan"
	case PushVlan:
		return "push_vlan"
	case ModDlSrc:
		return "mod_dl_src"
	case ModDlDst:
		return "mod_dl_dst"
	case ModNwSrc:
		return "mod_nw_src"
	case ModNwDst:
		return "mod_nw_dst"
	case ModNwTos:
		return "mod_nw_tos"
	case ModTpSrc:
		return "mod_tp_src"
	case ModTpDst:
		return "mod_tp_dst"
	case DecTTL:
		return "dec_ttl"
	case SetTunnel:
		return "set_tunnel"
	case SetQueue:
		return "set_queue"
	case PopQueue:
		return "pop_queue"
	case Exit:
		return "exit"
	case Drop:
		return "drop"
	case Learn:
		return "learn"
	case FinTimeout:
		return "fin_timeout"
	}
	return fmt.Sprintf("%T", a)
}

func parseAction(key string, t token, ports PortMap, outer string, depth int) ([]Action, error) {
	arg := t.value
	one := func(a Action, err error) ([]Action, error) {
		if err != nil {
			return nil, err
		}
		return []Action{a}, nil
	}
	switch key {
	case "output":
		if strings.Contains(arg, "port") && strings.Contains(arg, "max_len") {
			return nil, errors.New("action output_trunc is not supported")
		}
		if p, ok := parsePort(arg, ports); ok {
			o := Output{Port: p}
			if p == PortController {
				o.MaxLen = 65535
			}
			return []Action{o}, nil
		}
		if sf, err := parseSubfield(arg); err == nil {
			return []Action{OutputReg{Src: sf}}, nil
		}
		return nil, fmt.Errorf("%s: output to unknown port", arg)
	case "controller":
		return parseController(arg)
	case "set_field":
		return parseSetField(arg, ports)
	case "set_vlan_vid":
		vid, err := strToU16(arg, "VLAN VID")
		if err != nil {
			return nil, err
		}
		if vid&^0x0fff != 0 {
			return nil, fmt.Errorf("%s: not a valid VLAN VID", arg)
		}
		return []Action{ModVlanVid{VID: vid}}, nil
	case "set_vlan_pcp":
		pcp, err := strToU8(arg, "VLAN PCP")
		if err != nil {
			return nil, err
		}
		if pcp&^7 != 0 {
			return nil, fmt.Errorf("%s: not a valid VLAN PCP", arg)
		}
		return []Action{ModVlanPcp{PCP: pcp}}, nil
	case "strip_vlan":
		return []Action{StripVlan{}}, nil
	case "push_vlan":
		et, err := strToU16(arg, "ethertype")
		if err != nil {
			return nil, err
		}
		if et != 0x8100 && et != 0x88a8 {
			return nil, fmt.Errorf("%s: not a valid VLAN ethertype", arg)
		}
		return []Action{PushVlan{EtherType: et}}, nil
	case "mod_dl_src", "mod_dl_dst":
		mac, ok := parseMAC(arg)
		if !ok {
			return nil, fmt.Errorf("invalid mac address %s", arg)
		}
		if key == "mod_dl_src" {
			return []Action{ModDlSrc{MAC: mac}}, nil
		}
		return []Action{ModDlDst{MAC: mac}}, nil
	case "mod_nw_src", "mod_nw_dst":
		ip, n, ok := scanIPv4(arg)
		if !ok || n != len(arg) {
			return nil, fmt.Errorf("%s: could not convert to IP address", arg)
		}
		if key == "mod_nw_src" {
			return []Action{ModNwSrc{IP: ip}}, nil
		}
		return []Action{ModNwDst{IP: ip}}, nil
	case "mod_nw_tos":
		tos, err := strToU8(arg, "TOS")
		if err != nil {
			return nil, err
		}
		if tos&^0xfc != 0 {
			return nil, fmt.Errorf("%s: not a valid TOS", arg)
		}
		return []Action{ModNwTos{TOS: tos}}, nil
	case "mod_nw_ecn":
		ecn, err := strToU8(arg, "ECN")
		if err != nil {
			return nil, err
		}
		if ecn&^3 != 0 {
			return nil, fmt.Errorf("%s: not a valid ECN", arg)
		}
		// OpenFlow 1.0 encodes it as a load (as dump-flows shows it).
		return loadSegments(FieldNwEcn, "NXM_NX_IP_ECN", "nw_ecn", preIPAny, []byte{ecn}, []byte{3}), nil
	case "mod_nw_ttl":
		ttl, err := strToU8(arg, "TTL")
		if err != nil {
			return nil, err
		}
		return loadSegments(FieldNwTTL, "NXM_NX_IP_TTL", "nw_ttl", preIPAny, []byte{ttl}, []byte{0xff}), nil
	case "mod_tp_src":
		p, err := strToU16(arg, "source port")
		return one(ModTpSrc{Port: p}, err)
	case "mod_tp_dst":
		p, err := strToU16(arg, "destination port")
		return one(ModTpDst{Port: p}, err)
	case "move":
		return parseMove(arg)
	case "dec_ttl":
		if arg == "" {
			return []Action{DecTTL{}}, nil
		}
		var ids []uint16
		for _, f := range strings.FieldsFunc(arg, func(r rune) bool { return r == ',' || r == ' ' }) {
			ids = append(ids, uint16(atoi(f)))
		}
		if len(ids) == 0 {
			return nil, errors.New("dec_ttl_cnt_ids: expected at least one controller id.")
		}
		return []Action{DecTTL{ControllerIDs: ids}}, nil
	case "set_tunnel":
		id, err := strToU64(arg)
		return one(SetTunnel{ID: id, Use64: id > 0xffffffff}, err)
	case "set_queue":
		q, err := strToU32(arg)
		return one(SetQueue{Queue: q}, err)
	case "pop_queue":
		return []Action{PopQueue{}}, nil
	case "exit":
		return []Action{Exit{}}, nil
	case "resubmit":
		return one(parseResubmit(arg, ports))
	case "note":
		data, rest := parseHexBytes(arg)
		if rest != "" {
			return nil, errors.New("bad hex digit in `note' argument")
		}
		return []Action{Note{Data: padNote(data)}}, nil
	case "ct":
		return one(parseCT(arg, ports, depth))
	case "ct_clear":
		return []Action{CTClear{}}, nil
	case "nat":
		n, err := parseNAT(arg)
		if err != nil {
			return nil, err
		}
		return []Action{*n}, nil
	case "goto_table":
		tbl, ok := parseTable(arg)
		if !ok {
			return nil, fmt.Errorf("unknown table \"%s\"", arg)
		}
		return []Action{GotoTable{Table: tbl}}, nil
	case "learn":
		return one(parseLearn(arg, ports))
	}
	return nil, fmt.Errorf("unknown action %s", key)
}

// atoi emulates C's atoi(): leading digits, 0 if none.
func atoi(s string) int {
	v, _, err := scanInt(strings.TrimLeft(s, " \t"))
	if err != nil {
		return 0
	}
	return int(v)
}

// padNote pads note data as OVS's NXAST_NOTE encoding does: the 10-byte
// action header plus the data is rounded up to a multiple of 8.
func padNote(data []byte) []byte {
	n := (10+len(data)+7)/8*8 - 10
	out := make([]byte, n)
	copy(out, data)
	return out
}

// parseTable emulates ofputil_table_from_string() without a table map:
// decimal 0..255.
func parseTable(s string) (uint8, bool) {
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	v, ok := strToUint(s)
	if !ok || v > 255 {
		return 0, false
	}
	return uint8(v), true
}

var packetInReasons = []string{"no_match", "action", "invalid_ttl", "action_set", "group", "packet_out"}

func parseController(arg string) ([]Action, error) {
	c := Controller{MaxLen: 65535}
	if arg == "" {
		// defaults
	} else if strings.Trim(arg, "0123456789") == "" {
		ml, err := strToU16(arg, "max_len")
		if err != nil {
			return nil, err
		}
		c.MaxLen = ml
	} else {
		pos := 0
		for {
			t, ok := nextToken(arg, &pos)
			if !ok {
				break
			}
			switch t.key {
			case "reason":
				found := false
				for _, r := range packetInReasons {
					if t.value == r {
						found = true
					}
				}
				if !found {
					return nil, fmt.Errorf("unknown reason \"%s\"", t.value)
				}
				c.Reason = t.value
				if c.Reason == "action" {
					c.Reason = ""
				}
			case "max_len":
				ml, err := strToU16(t.value, "max_len")
				if err != nil {
					return nil, err
				}
				c.MaxLen = ml
			case "id":
				id, err := strToU16(t.value, "id")
				if err != nil {
					return nil, err
				}
				c.ID = id
			case "userdata":
				data, rest := parseHexBytes(t.value)
				if rest != "" {
					return nil, errors.New("bad hex digit in `controller' action `userdata'")
				}
				c.Userdata = data
			case "pause":
				c.Pause = true
			case "meter_id":
				m, err := strToU32(t.value)
				if err != nil {
					return nil, err
				}
				c.MeterID = m
			default:
				return nil, fmt.Errorf("unknown key \"%s\" parsing controller action", t.key)
			}
		}
	}
	if c.Reason == "" && c.ID == 0 && len(c.Userdata) == 0 && !c.Pause && c.MeterID == 0 {
		return []Action{Output{Port: PortController, MaxLen: c.MaxLen}}, nil
	}
	return []Action{c}, nil
}

// splitArrow emulates set_field_split_str().
func splitArrow(arg string) (value, key string, err error) {
	i := strings.Index(arg, "->")
	if i < 0 {
		return "", "", fmt.Errorf("%s: missing `->'", arg)
	}
	if len(arg[i:]) <= 2 {
		return "", "", fmt.Errorf("%s: missing field name following `->'", arg)
	}
	return arg[:i], arg[i+2:], nil
}

// parseLoad emulates parse_reg_load() followed by OVS's encoding of the
// result as one load per contiguous segment of at most 64 bits.
func parseLoad(arg string) ([]Action, error) {
	valueStr, key, err := splitArrow(arg)
	if err != nil {
		return nil, err
	}
	dst, err := parseSubfield(key)
	if err != nil {
		return nil, err
	}
	d := &fieldDefs[dst.Field]
	// OVS parses the value with the "->..." still attached and ignores
	// whatever follows the number.
	val, _, perr := parseIntString(valueStr+"->", d.bytes)
	if perr != nil {
		return nil, fmt.Errorf("%s: cannot parse integer value", arg)
	}
	for i := dst.NBits; i < 8*d.bytes; i++ {
		if bitSet(val, i) {
			return nil, fmt.Errorf("%s: value %s does not fit into %d bits", arg, formatFieldValue(dst.Field, val, nil, nil), dst.NBits)
		}
	}
	value := make([]byte, d.bytes)
	for i := 0; i < dst.NBits; i++ {
		if bitSet(val, i) {
			setBits(value, dst.Ofs+i, 1, 1)
		}
	}
	return loadSegments(dst.Field, dst.Name, dst.mf, dst.prereq, value, subfieldMask(dst)), nil
}

func parseMove(arg string) ([]Action, error) {
	src, rest, err := parseSubfieldPrefix(arg)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(rest, "->") {
		return nil, fmt.Errorf("%s: missing `->' following source", arg)
	}
	dst, err := parseSubfield(rest[2:])
	if err != nil {
		return nil, err
	}
	if src.NBits != dst.NBits {
		return nil, fmt.Errorf("%s: source field is %d bits wide but destination is %d bits wide", arg, src.NBits, dst.NBits)
	}
	return []Action{Move{Src: src, Dst: dst}}, nil
}

// writable lists the fields set_field may write.
var notWritable = map[FieldID]bool{
	FieldDlType: true, FieldNwProto: true, FieldIPFrag: true, FieldTCPFlags: true,
	FieldCtState: true, FieldCtZone: true,
	FieldCtNwProto: true, FieldCtNwSrc: true, FieldCtNwDst: true, FieldCtIPv6Src: true, FieldCtIPv6Dst: true,
	FieldCtTpSrc: true, FieldCtTpDst: true,
}

// parseSetField emulates set_field_parse__() and then normalizes the action
// the way ovs-ofctl dump-flows (OpenFlow 1.0 + Nicira extensions) shows it.
func parseSetField(arg string, ports PortMap) ([]Action, error) {
	valueStr, key, err := splitArrow(arg)
	if err != nil {
		return nil, err
	}
	e, ok := fieldByName[key]
	if !ok {
		return nil, fmt.Errorf("%s is not a valid OXM field name", key)
	}
	if notWritable[e.id] {
		return nil, fmt.Errorf("%s is read-only", key)
	}
	f := e.id
	value, mask, err := parseFieldValue(f, e.mf, valueStr, ports)
	if err != nil {
		return nil, err
	}
	if !setFieldValueValid(f, value) {
		return nil, fmt.Errorf("%s is not a valid value for field %s", valueStr, key)
	}
	d := &fieldDefs[f]
	exact := isAllOnes(mask)
	sf := Subfield{Field: f, Name: e.nxm, Ofs: 0, NBits: d.bits, mf: e.mf, prereq: e.prereq}
	check := setFieldCheck{sf: sf}
	wrap := func(acts ...Action) ([]Action, error) {
		return append([]Action{check}, acts...), nil
	}
	if exact {
		switch f {
		case FieldDlSrc:
			var m [6]byte
			copy(m[:], value)
			return wrap(ModDlSrc{MAC: m})
		case FieldDlDst:
			var m [6]byte
			copy(m[:], value)
			return wrap(ModDlDst{MAC: m})
		case FieldNwSrc:
			var ip [4]byte
			copy(ip[:], value)
			return wrap(ModNwSrc{IP: ip})
		case FieldNwDst:
			var ip [4]byte
			copy(ip[:], value)
			return wrap(ModNwDst{IP: ip})
		case FieldNwTos:
			return wrap(ModNwTos{TOS: value[0] & 0xfc})
		case FieldIPDSCP:
			return wrap(ModNwTos{TOS: value[0] << 2})
		case FieldTpSrc:
			if e.mf != "sctp_src" {
				return wrap(ModTpSrc{Port: uint16(beUint(value))})
			}
		case FieldTpDst:
			if e.mf != "sctp_dst" {
				return wrap(ModTpDst{Port: uint16(beUint(value))})
			}
		case FieldVlanTCI:
			tci := uint16(beUint(value))
			if tci&0x1000 != 0 {
				return wrap(ModVlanVid{VID: tci & 0x0fff}, ModVlanPcp{PCP: uint8(tci >> 13)})
			}
			return wrap(StripVlan{})
		case FieldVlanVID, FieldDlVlan:
			return wrap(ModVlanVid{VID: uint16(beUint(value)) & 0x0fff})
		case FieldVlanPCP:
			return wrap(ModVlanPcp{PCP: value[0] & 7})
		}
	}
	switch f {
	case FieldDlVlan, FieldVlanPCP, FieldVlanVID, FieldIPDSCP:
		// Views without an NXM encoding of their own: write the
		// underlying field.
		var m Match
		m.Set(f, value, mask)
		if f == FieldIPDSCP {
			fm := m.f[FieldNwTos]
			if fm == nil {
				return wrap()
			}
			return wrap(loadSegments(FieldNwTos, "NXM_OF_IP_TOS", "nw_tos", preIPAny, fm.Value, fm.Mask)...)
		}
		fm := m.f[FieldVlanTCI]
		if fm == nil {
			return wrap()
		}
		return wrap(loadSegments(FieldVlanTCI, "NXM_OF_VLAN_TCI", "vlan_tci", preNone, fm.Value, fm.Mask)...)
	}
	return wrap(loadSegments(f, e.nxm, e.mf, e.prereq, value, andBytes(mask, onesBits(d.bytes, d.bits)))...)
}

// setFieldCheck carries the prerequisites of a set_field action until the
// actions are checked against the match; it is removed from the final list.
type setFieldCheck struct{ sf Subfield }

func (setFieldCheck) String(PortMap) string { return "" }

// setFieldValueValid emulates mf_is_value_valid() for the supported fields.
func setFieldValueValid(f FieldID, v []byte) bool {
	switch f {
	case FieldNwTos:
		return v[0]&^0xfc == 0
	case FieldIPDSCP:
		return v[0]&^0x3f == 0
	case FieldNwEcn, FieldIPFrag:
		return v[0]&^3 == 0
	case FieldVlanPCP:
		return v[0]&^7 == 0
	case FieldDlVlan:
		return beUint(v)&^0x0fff == 0
	case FieldVlanVID:
		return beUint(v)&^0x1fff == 0
	case FieldIPv6Label:
		return beUint(v)&^0xfffff == 0
	case FieldTCPFlags:
		return beUint(v)&^0x0fff == 0
	case FieldInPort:
		return beUint(v) <= 0xffff
	}
	return true
}

// parseResubmit emulates parse_RESUBMIT().
func parseResubmit(arg string, ports PortMap) (Action, error) {
	parts := strings.SplitN(arg, ",", 3)
	r := Resubmit{Port: PortInPort, Table: -1}
	if parts[0] != "" {
		p, ok := parsePort(parts[0], ports)
		if !ok {
			return nil, fmt.Errorf("%s: resubmit to unknown port", parts[0])
		}
		r.Port = p
	}
	if len(parts) > 1 && parts[1] != "" {
		t, ok := parseTable(parts[1])
		if !ok {
			return nil, fmt.Errorf("%s: resubmit to unknown table", parts[1])
		}
		if t != 255 {
			r.Table = int(t)
		}
	}
	if len(parts) > 2 && parts[2] != "" {
		ct := parts[2]
		if i := strings.IndexByte(ct, ','); i >= 0 {
			ct = ct[:i]
		}
		if ct != "ct" {
			return nil, fmt.Errorf("%s: unknown parameter", ct)
		}
		r.CT = true
	}
	if r.Port == PortInPort && r.Table < 0 {
		return nil, errors.New("at least one \"in_port\" or \"table\" must be specified on resubmit")
	}
	return r, nil
}

// parseCT emulates parse_CT().
func parseCT(arg string, ports PortMap, depth int) (Action, error) {
	ct := CT{Table: -1}
	var nested []Action // OVS's nested action list: nat and exec actions in order
	pos := 0
	for {
		t, ok := nextToken(arg, &pos)
		if !ok {
			break
		}
		switch t.key {
		case "commit":
			ct.Commit = true
		case "force":
			ct.Force = true
		case "table":
			tbl, ok := parseTable(t.value)
			if !ok {
				return nil, fmt.Errorf("unknown table %s", t.value)
			}
			if tbl == 255 {
				return nil, fmt.Errorf("invalid table 0xff")
			}
			ct.Table = int(tbl)
		case "zone":
			if z, err := strToU16(t.value, "zone"); err == nil {
				ct.Zone = z
				ct.ZoneField = nil
			} else {
				sf, err := parseSubfield(t.value)
				if err != nil {
					return nil, err
				}
				ct.ZoneField = &sf
				ct.Zone = 0
			}
		case "alg":
			switch t.value {
			case "ftp":
				ct.Alg = 21
			case "tftp":
				ct.Alg = 69
			default:
				return nil, fmt.Errorf("invalid conntrack helper \"%s\"", t.value)
			}
		case "nat":
			n, err := parseNAT(t.value)
			if err != nil {
				return nil, err
			}
			nested = append(nested, *n)
		case "exec":
			acts, err := parseActions(t.value, ports, "ct", depth+1)
			if err != nil {
				return nil, err
			}
			nested = append(nested, acts...)
		default:
			return nil, fmt.Errorf("invalid argument to \"ct\" action: `%s'", t.key)
		}
	}
	if ct.Force && !ct.Commit {
		return nil, errors.New("\"force\" flag requires \"commit\" flag.")
	}
	if len(nested) > 0 {
		if n, ok := nested[0].(NAT); ok {
			ct.NAT = &n
			nested = nested[1:]
		}
	}
	ct.Exec = nested
	if !ct.Commit {
		// The switch rejects this (decode_NXAST_RAW_CT()).
		check := ct.Exec
		if ct.NAT != nil {
			check = append([]Action{*ct.NAT}, check...)
		}
		for _, a := range check {
			if n, ok := a.(NAT); !ok || n.Src || n.Dst {
				return nil, fmt.Errorf("ct(%s): CT action requires commit flag if actions other than NAT without arguments are specified.", arg)
			}
		}
	}
	return ct, nil
}

// parseNAT emulates parse_NAT().
func parseNAT(arg string) (*NAT, error) {
	n := &NAT{}
	hasRange := false
	pos := 0
	for {
		t, ok := nextToken(arg, &pos)
		if !ok {
			break
		}
		switch t.key {
		case "src", "dst":
			if t.key == "src" {
				n.Src = true
			} else {
				n.Dst = true
			}
			r, err := parseNATRange(t.value, n)
			if err != nil {
				return nil, err
			}
			hasRange = r
		case "persistent":
			n.Persistent = true
		case "hash":
			n.Hash = true
		case "random":
			n.Random = true
		default:
			return nil, fmt.Errorf("invalid key \"%s\" in \"nat\" argument", t.key)
		}
	}
	if n.Src && n.Dst {
		return nil, errors.New("May only specify one of \"src\" or \"dst\".")
	}
	if !n.Src && !n.Dst {
		if n.Persistent || n.Hash || n.Random {
			return nil, errors.New("Flags allowed only with \"src\" or \"dst\".")
		}
		if hasRange {
			return nil, errors.New("Range allowed only with \"src\" or \"dst\".")
		}
	}
	if n.Hash && n.Random {
		return nil, errors.New("Both \"hash\" and \"random\" are not allowed.")
	}
	if !n.AddrMin.IsValid() {
		// OVS prints the flags only together with a range.
		n.Persistent, n.Hash, n.Random = false, false, false
	}
	return n, nil
}

// parseNATRange emulates str_to_nat_range().
func parseNATRange(s string, n *NAT) (bool, error) {
	bad := fmt.Errorf("invalid nat range \"%s\"", s)
	pos := 0
	n.AddrMin, n.AddrMax, n.PortMin, n.PortMax = netip.Addr{}, netip.Addr{}, 0, 0
	if ip, k, ok := scanIPv4(s); ok {
		n.AddrMin = netip.AddrFrom4(ip)
		pos = k
		if pos < len(s) && s[pos] == '-' {
			ip2, k2, ok := scanIPv4(s[pos+1:])
			if !ok {
				return false, bad
			}
			max := netip.AddrFrom4(ip2)
			if max.Less(n.AddrMin) {
				return false, bad
			}
			n.AddrMax = max
			pos += 1 + k2
		}
	} else if a, k, ok := scanIPv6Bracket(s); ok {
		n.AddrMin = a
		pos = k
		if pos < len(s) && s[pos] == '-' {
			a2, k2, ok := scanIPv6Bracket(s[pos+1:])
			if !ok || a2.Less(a) {
				return false, bad
			}
			n.AddrMax = a2
			pos += 1 + k2
		}
	}
	if n.AddrMin.IsValid() && pos < len(s) && s[pos] == ':' {
		pos++
		p, k, ok := scanU16(s[pos:])
		if !ok {
			return false, bad
		}
		n.PortMin = p
		pos += k
		if p == 0 {
			// OVS prints ":0" as no port and refuses ":0-N" at decode
			// (OFPBAC_BAD_ARGUMENT); a port is 1-65535 here (README).
			return false, bad
		}
		if pos < len(s) && s[pos] == '-' {
			pos++
			p2, k2, ok := scanU16(s[pos:])
			if !ok || p2 < n.PortMin {
				return false, bad
			}
			n.PortMax = p2
			pos += k2
		}
	}
	if pos != len(s) {
		return false, fmt.Errorf("garbage (%s) after nat range \"%s\" (pos: %d)", s[pos:], s, pos)
	}
	if n.AddrMax == n.AddrMin {
		n.AddrMax = netip.Addr{}
	}
	if n.PortMax == n.PortMin || n.PortMin == 0 {
		// Printed as a single port, or (port 0) not at all, by OVS.
		n.PortMax = 0
	}
	return n.AddrMin.IsValid(), nil
}

func scanIPv6Bracket(s string) (netip.Addr, int, bool) {
	if a, k, ok := scanIPv6(s); ok {
		return a, k, true
	}
	if strings.HasPrefix(s, "[") {
		if a, k, ok := scanIPv6(s[1:]); ok && 1+k < len(s) && s[1+k] == ']' {
			return a, k + 2, true
		}
	}
	return netip.Addr{}, 0, false
}

func scanU16(s string) (uint16, int, bool) {
	n := 0
	v := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		v = v*10 + int(s[n]-'0')
		if v > 65535 {
			return 0, 0, false
		}
		n++
	}
	return uint16(v), n, n > 0
}
