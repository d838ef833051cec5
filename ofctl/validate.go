package ofctl

import "fmt"

// Validation of a parsed flow: match prerequisites, ct_state consistency and
// the action checks of OVS's ofpacts_check().

// prereqOK tells whether match m satisfies prerequisite p.
func prereqOK(p prereq, m *Match) bool {
	dl := m.dlType()
	proto, hasProto := m.nwProto()
	ip4 := dl == ethTypeIP
	ip6 := dl == ethTypeIPv6
	arp := dl == ethTypeARP || dl == ethTypeRARP
	ipAny := ip4 || ip6
	switch p {
	case preNone:
		return true
	case preIPv4:
		return ip4
	case preIPv4Arp:
		return ip4 || arp
	case preIPAny:
		return ipAny
	case preIPAnyArp:
		return ipAny || arp
	case preIPv6:
		return ip6
	case preArp:
		return arp
	case preL4:
		return ipAny && hasProto && (proto == ipProtoTCP || proto == ipProtoUDP || proto == ipProtoSCTP)
	case preTCP:
		return ipAny && hasProto && proto == ipProtoTCP
	case preUDP:
		return ipAny && hasProto && proto == ipProtoUDP
	case preSCTP:
		return ipAny && hasProto && proto == ipProtoSCTP
	case preICMPAny:
		return hasProto && ((ip4 && proto == ipProtoICMP) || (ip6 && proto == ipProtoICMPv6))
	case preICMPv4:
		return hasProto && ip4 && proto == ipProtoICMP
	case preICMPv6:
		return hasProto && ip6 && proto == ipProtoICMPv6
	case preVLAN:
		v, mk := m.tci()
		return v&mk&0x1000 != 0
	case preCT:
		return ctValid(m)
	}
	return false
}

// canonicalize files the fields that share storage in OVS under the name
// OVS prints them with for the flow's protocol (arp: arp_spa, arp_tpa,
// arp_op; icmp/icmp6: icmp_type, icmp_code).  origin maps fields to the
// tokens that set them and is updated too.
func (m *Match) canonicalize(origin map[FieldID]string) error {
	move := func(from, to FieldID) error {
		e := m.f[from]
		if e == nil {
			return nil
		}
		w := fieldDefs[to].bytes
		v := beUint(e.Value)
		mk := beUint(e.Mask)
		if w < len(e.Value) && (v>>(8*w) != 0 || mk>>(8*w) != 0 && mk != 0xffff) {
			return fmt.Errorf("%s: value too large for %d-byte field %s", origin[from], w, fieldDefs[to].mf)
		}
		newMask := putBE(mk, w)
		if e.Exact() {
			newMask = fieldDefs[to].exact
		}
		m.f[from] = nil
		m.f[to] = &FieldMatch{Field: to, Value: putBE(v, w), Mask: newMask}
		if o, ok := origin[from]; ok {
			origin[to] = o
			delete(origin, from)
		}
		return nil
	}
	dl := m.dlType()
	proto, hasProto := m.nwProto()
	var err error
	switch {
	case dl == ethTypeARP || dl == ethTypeRARP:
		for _, p := range [][2]FieldID{{FieldNwSrc, FieldArpSpa}, {FieldNwDst, FieldArpTpa}, {FieldNwProto, FieldArpOp}} {
			if err == nil {
				err = move(p[0], p[1])
			}
		}
	case hasProto && ((dl == ethTypeIP && proto == ipProtoICMP) || (dl == ethTypeIPv6 && proto == ipProtoICMPv6)):
		for _, p := range [][2]FieldID{{FieldTpSrc, FieldIcmpType}, {FieldTpDst, FieldIcmpCode}} {
			if err == nil {
				err = move(p[0], p[1])
			}
		}
	}
	return err
}

// validateMatch checks every field's prerequisites and the ct_state.
func validateMatch(m *Match, origin map[FieldID]string) error {
	if err := validateCtTuple(m, origin); err != nil {
		return err
	}
	for i := range m.f {
		e := m.f[i]
		if e == nil {
			continue
		}
		d := &fieldDefs[i]
		if !prereqOK(d.prereq, m) {
			tok := origin[FieldID(i)]
			if tok == "" {
				tok = d.name
			}
			return fmt.Errorf("%s: prerequisites not met for setting %s (the match must specify %s)", tok, d.name, prereqText[d.prereq])
		}
	}
	if e := m.f[FieldCtState]; e != nil {
		if err := validateCtState(uint32(beUint(e.Value)), uint32(beUint(e.Mask)), origin[FieldCtState]); err != nil {
			return err
		}
	}
	return nil
}

// validateCtTuple applies OVS's rules for the connection's original tuple
// (ct_nw_src ... ct_tp_dst), in the order a flow meets them there:
//
//  1. nx_put_raw() encodes ct_nw_proto, ct_tp_src and ct_tp_dst only
//     when ct_nw_proto is not 0, and the switch's NXM decoder
//     (nx_pull_raw(), mf_are_match_prereqs_ok()) refuses any encoded one
//     whose prerequisite, a valid connection state (is_ct_valid()), the
//     match lacks: OFPBMC_BAD_PREREQ;
//  2. ofputil_decode_flow_mod() refuses ct_nw_src/ct_nw_dst in a match
//     that is not ip and ct_ipv6_src/ct_ipv6_dst in one that is not ipv6:
//     OFPBAC_MATCH_INCONSISTENT;
//  3. what OVS encodes not at all (ct_nw_proto=0; ct_tp_src or ct_tp_dst
//     without a nonzero ct_nw_proto) it drops without a word, as it drops
//     fields whose prerequisites ofputil_normalize_match() finds missing:
//     an error here, as those are.
func validateCtTuple(m *Match, origin map[FieldID]string) error {
	tok := func(f FieldID) string {
		if o := origin[f]; o != "" {
			return o
		}
		return fieldDefs[f].name
	}
	proto, hasProto := m.exact(FieldCtNwProto)
	// In nx_put_raw()'s order: the first the decoder refuses is named.
	encoded := []FieldID{FieldCtNwSrc, FieldCtIPv6Src, FieldCtNwDst, FieldCtIPv6Dst}
	if hasProto && proto != 0 {
		encoded = append(encoded, FieldCtNwProto, FieldCtTpSrc, FieldCtTpDst)
	}
	if !ctValid(m) {
		for _, f := range encoded {
			if m.f[f] != nil {
				return fmt.Errorf("%s: prerequisites not met for setting %s (the match must specify %s): OFPBMC_BAD_PREREQ",
					tok(f), fieldDefs[f].name, prereqText[preCT])
			}
		}
	}
	dl := m.dlType()
	for _, c := range []struct {
		f      FieldID
		dlType uint16
		pre    prereq
	}{
		{FieldCtNwSrc, ethTypeIP, preIPv4}, {FieldCtNwDst, ethTypeIP, preIPv4},
		{FieldCtIPv6Src, ethTypeIPv6, preIPv6}, {FieldCtIPv6Dst, ethTypeIPv6, preIPv6},
	} {
		if m.f[c.f] != nil && dl != c.dlType {
			return fmt.Errorf("%s: prerequisites not met for setting %s (the match must specify %s): OFPBAC_MATCH_INCONSISTENT",
				tok(c.f), fieldDefs[c.f].name, prereqText[c.pre])
		}
	}
	if hasProto && proto == 0 {
		return fmt.Errorf("%s: Open vSwitch cannot match ct_nw_proto=0: its flow encoding carries ct_nw_proto, ct_tp_src and ct_tp_dst only when ct_nw_proto is not 0",
			tok(FieldCtNwProto))
	}
	for _, f := range []FieldID{FieldCtTpSrc, FieldCtTpDst} {
		if m.f[f] != nil && !hasProto {
			return fmt.Errorf("%s: prerequisites not met for setting %s (the match must specify ct_nw_proto)", tok(f), fieldDefs[f].name)
		}
	}
	return nil
}

const (
	csNew     = 0x01
	csEst     = 0x02
	csRel     = 0x04
	csRpl     = 0x08
	csInv     = 0x10
	csTrk     = 0x20
	csSrcNAT  = 0x40
	csDstNAT  = 0x80
	csAllMask = 0xff
)

// validateCtState rejects ct_state matches that can never match, with the
// messages of OVS's validate_ct_state().
func validateCtState(v, mask uint32, tok string) error {
	state := formatFlags(ctStateNames, v)
	bad := func(why string) error {
		if tok == "" {
			tok = "ct_state=" + state
		}
		return fmt.Errorf("%s: %s: invalid connection state: %s", tok, state, why)
	}
	if mask&csTrk != 0 && v&csTrk == 0 && v != 0 {
		return bad("If \"trk\" is unset, no other flags are set")
	}
	if v&csInv != 0 && v&^(csTrk|csInv) != 0 {
		return bad("when \"inv\" is set, only \"trk\" may also be set")
	}
	if v&csNew != 0 && v&csEst != 0 {
		return bad("\"new\" and \"est\" are mutually exclusive")
	}
	if v&csNew != 0 && v&csRpl != 0 {
		return bad("\"new\" and \"rpy\" are mutually exclusive")
	}
	return nil
}

func inconsistent(format string, args ...interface{}) error {
	return fmt.Errorf("actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT): "+format, args...)
}

// checkActions emulates ofpacts_check() for the supported actions.  table is
// the flow's table, or -1 if the flow did not specify one.
func checkActions(acts []Action, m *Match, table int) error {
	for _, a := range acts {
		if err := checkAction(a, m, table); err != nil {
			return err
		}
		// As OVS's ofpact_check__: the actions after push_vlan see a
		// frame with a VLAN header (set_field:N->vlan_vid needs one),
		// those after strip_vlan one without.
		switch a.(type) {
		case PushVlan, StripVlan:
			withTag := *m
			tci := []byte{0x10, 0x00}
			if _, ok := a.(StripVlan); ok {
				tci = []byte{0, 0}
			}
			withTag.f[FieldVlanTCI] = &FieldMatch{Field: FieldVlanTCI, Value: tci, Mask: []byte{0x10, 0x00}}
			m = &withTag
		}
	}
	return nil
}

func checkSubfield(sf Subfield, m *Match, kind string) error {
	pre, mf := subfieldMeta(sf)
	if !prereqOK(pre, m) {
		return inconsistent("%s field %s lacks correct prerequisites", kind, mf)
	}
	if kind == "destination" && notWritable[sf.Field] {
		return fmt.Errorf("actions are invalid with specified match (OFPBAC_BAD_SET_ARGUMENT): destination field %s is not writable", mf)
	}
	return nil
}

func checkAction(a Action, m *Match, table int) error {
	switch a := a.(type) {
	case Output:
		if !validOutputPort(a.Port) {
			return fmt.Errorf("actions are invalid with specified match (OFPBAC_BAD_OUT_PORT): %s: invalid output port", a.String(nil))
		}
	case OutputReg:
		return checkSubfield(a.Src, m, "source")
	case CT:
		dl := m.dlType()
		if dl != ethTypeIP && dl != ethTypeIPv6 {
			return inconsistent("%s: ct requires ip or ipv6 in the match", a.String(nil))
		}
		if e := m.f[FieldCtState]; e != nil && a.Commit && beUint(e.Value)&csInv != 0 {
			return inconsistent("%s: cannot commit with ct_state +inv in the match", a.String(nil))
		}
		proto, _ := m.nwProto()
		if a.Alg == 21 && proto != ipProtoTCP {
			return inconsistent("%s: alg=ftp requires tcp", a.String(nil))
		}
		if a.Alg == 69 && proto != ipProtoUDP {
			return inconsistent("%s: alg=tftp requires udp", a.String(nil))
		}
		if sf := a.ZoneField; sf != nil {
			if sf.NBits != 16 {
				return fmt.Errorf("actions are invalid with specified match (OFPBAC_BAD_SET_LEN): %s: zone field must be 16 bits wide", sf)
			}
			return checkSubfield(*sf, m, "source")
		}
		if a.NAT != nil {
			if err := checkAction(*a.NAT, m, table); err != nil {
				return err
			}
		}
		return checkActions(a.Exec, m, table)
	case NAT:
		dl := m.dlType()
		if (dl != ethTypeIP && dl != ethTypeIPv6) ||
			(a.AddrMin.IsValid() && a.AddrMin.Is4() && dl != ethTypeIP) ||
			(a.AddrMin.IsValid() && !a.AddrMin.Is4() && dl != ethTypeIPv6) {
			return inconsistent("%s: the address family does not match the flow", a.String(nil))
		}
	case Resubmit:
		if a.CT && !ctValid(m) {
			return inconsistent("%s: the match must imply a valid conntrack entry (e.g. ct_state=+trk+est or ct_state=+trk-inv)", a.String(nil))
		}
	case GotoTable:
		if table >= 0 && int(a.Table) <= table {
			return fmt.Errorf("actions are invalid with specified match (OFPBIC_BAD_TABLE_ID): %s: table must be greater than %d", a.String(nil), table)
		}
		if a.Table == 255 {
			return fmt.Errorf("actions are invalid with specified match (OFPBIC_BAD_TABLE_ID): %s", a.String(nil))
		}
	case Load:
		return checkSubfield(a.Dst, m, "destination")
	case Learn:
		return a.check(m)
	case Move:
		if err := checkSubfield(a.Src, m, "source"); err != nil {
			return err
		}
		return checkSubfield(a.Dst, m, "destination")
	case setFieldCheck:
		pre := a.sf.prereq
		if (a.sf.Field == FieldVlanVID || a.sf.Field == FieldDlVlan) && a.sf.mf == "vlan_vid" {
			pre = preVLAN
		}
		if !prereqOK(pre, m) {
			return inconsistent("set_field %s lacks correct prerequisites", a.sf.mf)
		}
	}
	return nil
}

// ctValid emulates is_ct_valid() for a match: it must match at least one
// of the bits that imply a valid conntrack entry, or an explicit not-invalid.
func ctValid(m *Match) bool {
	e := m.f[FieldCtState]
	if e == nil {
		return false
	}
	v, mk := beUint(e.Value), beUint(e.Mask)
	return v&(csNew|csEst|csRel|csRpl|csSrcNAT|csDstNAT) != 0 ||
		(v&csTrk != 0 && mk&csInv != 0 && v&csInv == 0)
}

// validOutputPort emulates ofpact_check_output_port() with OFPP_MAX ports.
func validOutputPort(p uint32) bool {
	switch p {
	case PortInPort, PortTable, PortNormal, PortFlood, PortAll, PortController, PortLocal:
		return true
	}
	return p < PortMax
}

// stripChecks removes the internal setFieldCheck markers.
func stripChecks(acts []Action) []Action {
	var out []Action
	for _, a := range acts {
		switch x := a.(type) {
		case setFieldCheck:
			continue
		case CT:
			x.Exec = stripChecks(x.Exec)
			a = x
		}
		out = append(out, a)
	}
	return out
}
