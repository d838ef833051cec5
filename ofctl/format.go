package ofctl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MatchString returns the match as "ovs-ofctl dump-flows" prints it,
// including "priority=N" first unless it is 32768 (OVS's match_format()).
// The table, cookie and timeouts are not included.
func (f *Flow) MatchString(ports PortMap) string {
	return formatMatch(&f.Match, ports, int(f.Priority))
}

// ActionsString returns the actions as "ovs-ofctl dump-flows" prints them
// ("drop" when there are none).
func (f *Flow) ActionsString(ports PortMap) string {
	return formatActions(f.Actions, ports)
}

// String returns a canonical text for the flow that ParseFlow (or, for a
// flow from ParseMatch, ParseMatch) parses back into an equal flow: port
// numbers, not names; table, cookie, timeouts, importance and flags only when
// they are not the defaults.
func (f *Flow) String() string {
	var parts []string
	if f.filter {
		if f.Table != TableAll {
			parts = append(parts, fmt.Sprintf("table=%d", f.Table))
		}
		if f.CookieMask != 0 {
			parts = append(parts, fmt.Sprintf("cookie=%#x/%#x", f.Cookie, f.CookieMask))
		}
		if f.OutPort != 0 {
			parts = append(parts, "out_port="+formatPort(f.OutPort, nil))
		}
	} else {
		if f.Table != 0 {
			parts = append(parts, fmt.Sprintf("table=%d", f.Table))
		}
		if f.Cookie != 0 {
			parts = append(parts, fmt.Sprintf("cookie=%#x", f.Cookie))
		}
		if f.IdleTimeout != 0 {
			parts = append(parts, fmt.Sprintf("idle_timeout=%d", f.IdleTimeout))
		}
		if f.HardTimeout != 0 {
			parts = append(parts, fmt.Sprintf("hard_timeout=%d", f.HardTimeout))
		}
		if f.Importance != 0 {
			parts = append(parts, fmt.Sprintf("importance=%d", f.Importance))
		}
		for _, fl := range flagNames {
			if f.Flags&fl.flag != 0 {
				parts = append(parts, fl.name)
			}
		}
	}
	m := formatMatch(&f.Match, nil, int(f.Priority))
	if m != "" {
		parts = append(parts, m)
	}
	s := strings.Join(parts, ",")
	if f.filter {
		return s
	}
	if s != "" {
		s += " "
	}
	return s + "actions=" + f.ActionsString(nil)
}

// Stats are the counters "ovs-ofctl dump-flows" prints for a flow.
type Stats struct {
	Duration time.Duration
	Packets  uint64
	Bytes    uint64
	// Ages tells whether idle_age and hard_age are known.  OVS only has
	// them in OpenFlow 1.0 + Nicira extension replies (the default of
	// ovs-ofctl); with OpenFlow 1.1+ they are not printed.
	Ages    bool
	IdleAge time.Duration
	HardAge time.Duration // printed only when its seconds differ from Duration's
}

// DumpLine returns the flow's line as "ovs-ofctl dump-flows" prints it,
// leading space included, e.g.
//
//	" cookie=0x0, duration=15.038s, table=0, n_packets=15, n_bytes=1037, priority=50,ct_state=-trk,tcp,in_port=vnet1 actions=ct(table=0)"
//
// With st == nil it prints what "ovs-ofctl --no-stats dump-flows" prints:
// cookie only when non-zero, table only when non-zero, no counters.
func (f *Flow) DumpLine(ports PortMap, st *Stats) string {
	var sb strings.Builder
	sb.WriteByte(' ')
	show := st != nil
	if show || f.Cookie != 0 {
		fmt.Fprintf(&sb, "cookie=0x%x, ", f.Cookie)
	}
	if show {
		sb.WriteString("duration=" + formatDuration(st.Duration) + ", ")
	}
	if show || f.Table != 0 {
		fmt.Fprintf(&sb, "table=%d, ", f.Table)
	}
	if show {
		fmt.Fprintf(&sb, "n_packets=%d, n_bytes=%d, ", st.Packets, st.Bytes)
	}
	if f.IdleTimeout != 0 {
		fmt.Fprintf(&sb, "idle_timeout=%d, ", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(&sb, "hard_timeout=%d, ", f.HardTimeout)
	}
	for _, fl := range flagNames {
		if f.Flags&fl.flag != 0 {
			sb.WriteString(fl.name + " ")
		}
	}
	if f.Importance != 0 {
		fmt.Fprintf(&sb, "importance=%d, ", f.Importance)
	}
	if show && st.Ages {
		fmt.Fprintf(&sb, "idle_age=%d, ", int64(st.IdleAge/time.Second))
		if int64(st.HardAge/time.Second) != int64(st.Duration/time.Second) {
			fmt.Fprintf(&sb, "hard_age=%d, ", int64(st.HardAge/time.Second))
		}
	}
	if m := f.MatchString(ports); m != "" {
		sb.WriteString(m + " ")
	}
	sb.WriteString("actions=" + f.ActionsString(ports))
	return sb.String()
}

// formatDuration emulates ofp_print_duration().
func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	sec := int64(d / time.Second)
	nsec := int64(d % time.Second)
	s := strconv.FormatInt(sec, 10)
	if nsec > 0 {
		if nsec%1000000 == 0 {
			s += fmt.Sprintf(".%03d", nsec/1000000)
		} else {
			s += strings.TrimRight(fmt.Sprintf(".%09d", nsec), "0")
		}
	}
	return s + "s"
}

// The protocol shorthands dump-flows prints for dl_type plus nw_proto.
var (
	ipv4Shorthands = map[uint8]string{ipProtoICMP: "icmp", ipProtoTCP: "tcp", ipProtoUDP: "udp", ipProtoSCTP: "sctp"}
	ipv6Shorthands = map[uint8]string{ipProtoICMPv6: "icmp6", ipProtoTCP: "tcp6", ipProtoUDP: "udp6", ipProtoSCTP: "sctp6"}
)

// formatMatch emulates OVS's match_format() for the supported fields.
func formatMatch(m *Match, ports PortMap, priority int) string {
	var parts []string
	add := func(format string, args ...interface{}) {
		parts = append(parts, fmt.Sprintf(format, args...))
	}
	get := func(f FieldID) (uint64, uint64, bool) {
		e := m.f[f]
		if e == nil {
			return 0, 0, false
		}
		return beUint(e.Value), beUint(e.Mask), true
	}
	if priority != DefaultPriority {
		add("priority=%d", priority)
	}
	uint32Masked := func(name string, f FieldID) {
		if v, mk, ok := get(f); ok {
			if mk == 0xffffffff {
				add("%s=%s", name, hexC(v))
			} else {
				add("%s=%s/%s", name, hexC(v), hexC(mk))
			}
		}
	}
	uint32Masked("pkt_mark", FieldPktMark)
	if v, mk, ok := get(FieldCtState); ok {
		if mk&0xff == 0xff {
			add("ct_state=%s", formatFlags(ctStateNames, uint32(v)))
		} else {
			add("ct_state=%s", formatFlagsMasked(ctStateNames, uint32(v), uint32(mk), 0xff))
		}
	}
	if v, mk, ok := get(FieldCtZone); ok {
		if mk == 0xffff {
			add("ct_zone=%d", v)
		} else {
			add("ct_zone=0x%x/0x%x", v, mk)
		}
	}
	uint32Masked("ct_mark", FieldCtMark)
	if e := m.f[FieldCtLabel]; e != nil {
		if isAllOnes(e.Mask) {
			add("ct_label=%s", putHex(e.Value))
		} else {
			add("ct_label=%s/%s", putHex(e.Value), putHex(e.Mask))
		}
	}
	ipv4 := func(name string, f FieldID) {
		if e := m.f[f]; e != nil {
			add("%s=%s", name, formatIPv4Masked(e.Value, e.Mask))
		}
	}
	ipv6 := func(name string, f FieldID) {
		if e := m.f[f]; e != nil {
			add("%s=%s", name, formatIPv6Masked(e.Value, e.Mask))
		}
	}
	be16 := func(name string, f FieldID) {
		if v, mk, ok := get(f); ok {
			full := uint64(1)<<(8*uint(fieldDefs[f].bytes)) - 1
			if mk == full {
				add("%s=%d", name, v)
			} else {
				add("%s=0x%x/0x%x", name, v, mk)
			}
		}
	}
	// OVS prints ct_tp_src and ct_tp_dst only with ct_nw_proto, which the
	// parser requires for them (validateCtTuple).
	ipv4("ct_nw_src", FieldCtNwSrc)
	ipv6("ct_ipv6_src", FieldCtIPv6Src)
	ipv4("ct_nw_dst", FieldCtNwDst)
	ipv6("ct_ipv6_dst", FieldCtIPv6Dst)
	if v, _, ok := get(FieldCtNwProto); ok {
		add("ct_nw_proto=%d", v)
	}
	be16("ct_tp_src", FieldCtTpSrc)
	be16("ct_tp_dst", FieldCtTpDst)

	dlType := m.dlType()
	proto, hasProto := m.nwProto()
	skipType, skipProto := false, false
	if _, _, ok := get(FieldDlType); ok {
		skipType = true
		switch dlType {
		case ethTypeIP, ethTypeIPv6:
			names, base := ipv4Shorthands, "ip"
			if dlType == ethTypeIPv6 {
				names, base = ipv6Shorthands, "ipv6"
			}
			if n, ok := names[proto]; hasProto && ok {
				add("%s", n)
				skipProto = true
			} else {
				add("%s", base)
			}
		case ethTypeARP:
			add("arp")
		case ethTypeRARP:
			add("rarp")
		case ethTypeMPLS:
			add("mpls")
		case ethTypeMPLSM:
			add("mplsm")
		default:
			skipType = false
		}
	}
	for i := 0; i < 16; i++ {
		if m.f[FieldReg0+FieldID(i)] != nil {
			uint32Masked(fmt.Sprintf("reg%d", i), FieldReg0+FieldID(i))
		}
	}
	if v, mk, ok := get(FieldTunID); ok {
		if mk == ^uint64(0) {
			add("tun_id=%s", hexC(v))
		} else {
			add("tun_id=%s/%s", hexC(v), hexC(mk))
		}
	}
	// As OVS's format_flow_tunnel: after tun_id.
	for _, f := range []FieldID{FieldTunSrc, FieldTunDst} {
		if e := m.f[f]; e != nil {
			add("%s=%s", fieldDefs[f].name, formatIPv4Masked(e.Value, e.Mask))
		}
	}
	if v, mk, ok := get(FieldMetadata); ok {
		if mk == ^uint64(0) {
			add("metadata=%s", hexC(v))
		} else {
			add("metadata=%s/%s", hexC(v), hexC(mk))
		}
	}
	if v, _, ok := get(FieldInPort); ok {
		add("in_port=%s", formatPort(uint32(v), ports))
	}
	if v, mk, ok := get(FieldVlanTCI); ok {
		tci, mask := uint16(v), uint16(mk)
		vidMask, pcpMask, cfi := mask&0x0fff, mask&0xe000, mask&0x1000
		if cfi != 0 && tci&0x1000 != 0 && (vidMask == 0 || vidMask == 0x0fff) &&
			(pcpMask == 0 || pcpMask == 0xe000) && (vidMask != 0 || pcpMask != 0) {
			if vidMask != 0 {
				add("dl_vlan=%d", tci&0x0fff)
			}
			if pcpMask != 0 {
				add("dl_vlan_pcp=%d", tci>>13)
			}
		} else if mask == 0xffff {
			add("vlan_tci=0x%04x", tci)
		} else {
			add("vlan_tci=0x%04x/0x%04x", tci, mask)
		}
	}
	eth := func(name string, f FieldID) {
		if e := m.f[f]; e != nil {
			if isAllOnes(e.Mask) {
				add("%s=%s", name, formatMAC(e.Value))
			} else {
				add("%s=%s/%s", name, formatMAC(e.Value), formatMAC(e.Mask))
			}
		}
	}
	eth("dl_src", FieldDlSrc)
	eth("dl_dst", FieldDlDst)
	if !skipType {
		if v, _, ok := get(FieldDlType); ok {
			add("dl_type=0x%04x", v)
		}
	}
	// OVS prints these according to dl_type; after canonicalize() only the
	// fields consistent with dl_type are present, so print them all in
	// OVS's order.
	ipv6("ipv6_src", FieldIPv6Src)
	ipv6("ipv6_dst", FieldIPv6Dst)
	if v, mk, ok := get(FieldIPv6Label); ok {
		if mk == 0xfffff {
			add("ipv6_label=0x%05x", v)
		} else {
			add("ipv6_label=0x%05x/0x%05x", v, mk)
		}
	}
	ipv4("arp_spa", FieldArpSpa)
	ipv4("arp_tpa", FieldArpTpa)
	ipv4("nw_src", FieldNwSrc)
	ipv4("nw_dst", FieldNwDst)
	if v, _, ok := get(FieldNwProto); ok && !skipProto {
		add("nw_proto=%d", v)
	}
	if v, _, ok := get(FieldArpOp); ok {
		add("arp_op=%d", v&0xff)
	}
	eth("arp_sha", FieldArpSha)
	eth("arp_tha", FieldArpTha)
	if v, _, ok := get(FieldNwTos); ok {
		add("nw_tos=%d", v)
	}
	if v, _, ok := get(FieldNwEcn); ok {
		add("nw_ecn=%d", v)
	}
	if v, _, ok := get(FieldNwTTL); ok {
		add("nw_ttl=%d", v)
	}
	if v, mk, ok := get(FieldIPFrag); ok {
		add("nw_frag=%s", formatFrag(byte(v), byte(mk)))
	}
	be16("icmp_type", FieldIcmpType)
	be16("icmp_code", FieldIcmpCode)
	be16("tp_src", FieldTpSrc)
	be16("tp_dst", FieldTpDst)
	if v, mk, ok := get(FieldTCPFlags); ok {
		add("tcp_flags=%s", formatFlagsMasked(tcpFlagNames, uint32(v), uint32(mk)&0x0fff, 0x0fff))
	}
	return strings.Join(parts, ",")
}

func formatIPv4Masked(v, mask []byte) string {
	s := formatIPv4(v)
	if !isAllOnes(mask) {
		if n, ok := cidrLen(mask); ok {
			s += "/" + strconv.Itoa(n)
		} else {
			s += "/" + formatIPv4(mask)
		}
	}
	return s
}

func formatIPv6Masked(v, mask []byte) string {
	s := formatIPv6(v)
	if !isAllOnes(mask) {
		if n, ok := cidrLen(mask); ok {
			s += "/" + strconv.Itoa(n)
		} else {
			s += "/" + formatIPv6(mask)
		}
	}
	return s
}

// formatFieldValue emulates mf_format(): the value of field f under mask
// (nil = exact) in the field's own syntax.
func formatFieldValue(f FieldID, value, mask []byte, ports PortMap) string {
	d := &fieldDefs[f]
	if mask != nil {
		if isAllZeros(mask) {
			return "ANY"
		}
		if isAllOnes(mask) {
			mask = nil
		}
	}
	switch d.format {
	case fmtPort:
		if mask == nil {
			return formatPort(uint32(beUint(value)), ports)
		}
		return strconv.FormatUint(beUint(value), 10) + "/" + putHex(mask)
	case fmtPortOXM:
		if mask == nil {
			return formatPort(portFromOF11(uint32(beUint(value))), ports)
		}
		return putHex(value) + "/" + putHex(mask)
	case fmtDecimal, fmtHex:
		var s string
		if d.format == fmtHex {
			s = putHex(value)
		} else {
			s = strconv.FormatUint(beUint(value), 10)
		}
		if mask != nil {
			s += "/" + putHex(mask)
		}
		return s
	case fmtEth:
		s := formatMAC(value)
		if mask != nil {
			s += "/" + formatMAC(mask)
		}
		return s
	case fmtIPv4:
		if mask == nil {
			return formatIPv4(value)
		}
		return formatIPv4Masked(value, mask)
	case fmtIPv6:
		if mask == nil {
			return formatIPv6(value)
		}
		return formatIPv6Masked(value, mask)
	case fmtCtState:
		mk := uint32(0xffffffff)
		if mask != nil {
			mk = uint32(beUint(mask))
		}
		return formatFlagsMasked(ctStateNames, uint32(beUint(value)), mk, 0xffff)
	case fmtTCPFlags:
		mk := uint32(0xffff)
		if mask != nil {
			mk = uint32(beUint(mask))
		}
		return formatFlagsMasked(tcpFlagNames, uint32(beUint(value)), mk&0x0fff, 0x0fff)
	case fmtFrag:
		mk := byte(0xff)
		if mask != nil {
			mk = mask[0]
		}
		return formatFrag(value[0], mk)
	}
	return putHex(value)
}
