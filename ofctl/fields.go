package ofctl

import (
	"fmt"
	"strings"
)

// FieldID identifies a match field.
//
// Most IDs name a field that is stored in a Match (see Match.Fields).  A few
// IDs are "views" that OVS also accepts by name but that live inside another
// field, exactly as in OVS's struct flow:
//
//	dl_vlan, vlan_vid, dl_vlan_pcp/vlan_pcp  are bits of vlan_tci
//	ip_dscp                                  is nw_tos >> 2
//	in_port_oxm                              is in_port, as a 32-bit OpenFlow 1.1+ port
//
// Setting a view updates the underlying field; Match.Get on a view derives the
// value from the underlying field.
//
// Some stored fields share their storage in OVS (nw_src/arp_spa,
// nw_dst/arp_tpa, nw_proto/arp_op, tp_src/icmp_type, tp_dst/icmp_code).  Here
// they are separate IDs so that each prints under the name OVS prints it with;
// setting one clears its sibling ("last one wins", as in OVS), and after
// parsing the value is filed under the ID that matches the flow's protocol
// (e.g. "arp,nw_src=1.2.3.4" is stored and printed as arp_spa).
type FieldID int

// Match fields.  The order of the constants is the order of Match.Fields.
const (
	FieldInPort FieldID = iota
	FieldDlSrc
	FieldDlDst
	FieldDlType
	FieldVlanTCI
	FieldNwSrc
	FieldNwDst
	FieldNwProto
	FieldNwTos // DSCP bits of the IP TOS byte (mask 0xfc), as OVS's nw_tos
	FieldNwEcn // ECN bits of the IP TOS byte (mask 0x03)
	FieldNwTTL
	FieldIPFrag // nw_frag / ip_frag; FLOW_NW_FRAG_ANY=1, FLOW_NW_FRAG_LATER=2
	FieldTpSrc
	FieldTpDst
	FieldTCPFlags
	FieldIcmpType
	FieldIcmpCode
	FieldArpOp
	FieldArpSpa
	FieldArpTpa
	FieldArpSha
	FieldArpTha
	FieldIPv6Src
	FieldIPv6Dst
	FieldIPv6Label
	FieldMetadata
	FieldReg0
	FieldReg1
	FieldReg2
	FieldReg3
	FieldReg4
	FieldReg5
	FieldReg6
	FieldReg7
	FieldReg8
	FieldReg9
	FieldReg10
	FieldReg11
	FieldReg12
	FieldReg13
	FieldReg14
	FieldReg15
	FieldCtState
	FieldCtZone
	FieldCtMark
	FieldCtLabel
	FieldTunID
	FieldPktMark
	// The connection's original-direction tuple (OVS 2.8+), appended:
	// records store fields by number.
	FieldCtNwProto
	FieldCtNwSrc
	FieldCtNwDst
	FieldCtIPv6Src
	FieldCtIPv6Dst
	FieldCtTpSrc
	FieldCtTpDst
	// The tunnel's outer IPv4 addresses (a packet from a tunnel port; set
	// for one output to a tunnel port), appended.
	FieldTunSrc
	FieldTunDst

	numStoredFields

	// Views (never returned by Match.Fields).

	FieldDlVlan    FieldID = iota - 1 // "dl_vlan": VID bits of vlan_tci (0xffff = no VLAN)
	FieldVlanVID                      // "vlan_vid": OXM VID with the 0x1000 "present" bit
	FieldVlanPCP                      // "dl_vlan_pcp" / "vlan_pcp": PCP bits of vlan_tci
	FieldIPDSCP                       // "ip_dscp": nw_tos >> 2
	FieldInPortOXM                    // "in_port_oxm" / OXM_OF_IN_PORT: in_port as a 32-bit OpenFlow 1.1+ port

	numFields
)

// FieldInfo describes a field.
type FieldInfo struct {
	// Name is the name ovs-ofctl prints the field with in a match.
	Name string
	// Bytes is the width of FieldMatch.Value and FieldMatch.Mask.
	Bytes int
	// Bits is the field's width in bits as OVS's meta-flow defines it (used
	// for subfields "NAME[start..end]").  It may be less than 8*Bytes.
	Bits int
	// Maskable tells whether arbitrary bitwise masks are accepted.
	Maskable bool
	// Exact is the mask of an exact match on the field: all the field's
	// significant bits (e.g. 0xfc for nw_tos, 0x03 for nw_ecn, 0x0fff for
	// tcp_flags, 0x000000ff for ct_state, all ones for most fields).
	Exact []byte
	// Prerequisites describes what the match must contain for the field to
	// be matched, in the words of the error message ("" if none).
	Prerequisites string
	// NXM is the NXM or OXM name used for the field in subfield syntax, as
	// OVS prints it in "load" and "move" actions ("" if it has none).
	NXM string
	// View is true for fields that are bits of another stored field.
	View bool
}

type fmtKind int

const (
	fmtDecimal fmtKind = iota
	fmtHex
	fmtEth
	fmtIPv4
	fmtIPv6
	fmtPort
	fmtPortOXM // a port as a 32-bit OpenFlow 1.1+ number (reserved ports 0xffffff00 and up)
	fmtCtState
	fmtTCPFlags
	fmtFrag
)

// prereq is a match prerequisite class.
type prereq int

const (
	preNone     prereq = iota
	preIPv4            // ip
	preIPv4Arp         // ip, arp or rarp (nw_src/nw_dst, as OVS normalizes)
	preIPAny           // ip or ipv6
	preIPAnyArp        // ip, ipv6, arp or rarp (nw_proto)
	preIPv6            // ipv6
	preArp             // arp or rarp
	preL4              // tcp, udp or sctp over ip or ipv6
	preTCP             // tcp or tcp6
	preUDP             // udp or udp6
	preSCTP            // sctp or sctp6
	preICMPAny         // icmp or icmp6
	preICMPv4          // icmp
	preICMPv6          // icmp6
	preVLAN            // a VLAN header (vlan_tci with the 0x1000 bit set)
	preCT              // a valid connection state (OVS's MFP_CT_VALID, is_ct_valid())
)

var prereqText = map[prereq]string{
	preIPv4:     "ip",
	preIPv4Arp:  "ip, arp or rarp",
	preIPAny:    "ip or ipv6",
	preIPAnyArp: "ip, ipv6, arp or rarp",
	preIPv6:     "ipv6",
	preArp:      "arp or rarp",
	preL4:       "tcp, udp or sctp (or tcp6, udp6, sctp6)",
	preTCP:      "tcp or tcp6",
	preUDP:      "udp or udp6",
	preSCTP:     "sctp or sctp6",
	preICMPAny:  "icmp or icmp6",
	preICMPv4:   "icmp",
	preICMPv6:   "icmp6",
	preVLAN:     "a VLAN header (e.g. vlan_tci=0x1000/0x1000)",
	preCT:       "a valid connection state: ct_state with +new, +est, +rel, +rpl, +snat or +dnat, or +trk-inv",
}

// fieldDef is the static description of a FieldID.
type fieldDef struct {
	name     string // match_format name
	mf       string // OVS meta-flow name (error messages, set_field)
	bytes    int
	bits     int
	maskable bool
	format   fmtKind
	prereq   prereq
	nxm      string
	exact    []byte // nil = all ones
	view     bool
}

var fieldDefs [numFields]fieldDef

// nameEntry is one name accepted for a field (OVS mf name or alias, or an
// NXM/OXM name usable in subfield syntax).
type nameEntry struct {
	id     FieldID
	mf     string // meta-flow name for messages
	nxm    string // NXM/OXM name printed in subfields
	prereq prereq // meta-flow prerequisite (for actions)
}

var (
	fieldByName = map[string]nameEntry{} // names accepted as match keys
	fieldByNXM  = map[string]nameEntry{} // NXM/OXM names (subfields only)
)

func defField(id FieldID, d fieldDef, names ...string) {
	if d.exact == nil {
		d.exact = onesBits(d.bytes, d.bits)
	}
	fieldDefs[id] = d
	for _, n := range names {
		fieldByName[n] = nameEntry{id: id, mf: d.mf, nxm: d.nxm, prereq: d.prereq}
	}
	if d.nxm != "" {
		fieldByNXM[d.nxm] = nameEntry{id: id, mf: d.mf, nxm: d.nxm, prereq: d.prereq}
	}
}

// alias registers an extra meta-flow field that OVS stores in the same place
// as 'id' but that has its own name, NXM name and prerequisites.
func alias(id FieldID, mf, nxm string, pre prereq, names ...string) {
	e := nameEntry{id: id, mf: mf, nxm: nxm, prereq: pre}
	for _, n := range names {
		fieldByName[n] = e
	}
	if nxm != "" {
		fieldByNXM[nxm] = e
	}
}

// onesBits returns an n-byte big-endian value whose low 'bits' bits are set.
func onesBits(n, bits int) []byte {
	b := make([]byte, n)
	for i := 0; i < bits; i++ {
		b[n-1-i/8] |= 1 << (i % 8)
	}
	return b
}

func init() {
	defField(FieldInPort, fieldDef{name: "in_port", mf: "in_port", bytes: 4, bits: 16, format: fmtPort, nxm: "NXM_OF_IN_PORT", exact: onesBits(4, 32)}, "in_port")
	defField(FieldDlSrc, fieldDef{name: "dl_src", mf: "eth_src", bytes: 6, bits: 48, maskable: true, format: fmtEth, nxm: "NXM_OF_ETH_SRC"}, "eth_src", "dl_src")
	defField(FieldDlDst, fieldDef{name: "dl_dst", mf: "eth_dst", bytes: 6, bits: 48, maskable: true, format: fmtEth, nxm: "NXM_OF_ETH_DST"}, "eth_dst", "dl_dst")
	defField(FieldDlType, fieldDef{name: "dl_type", mf: "eth_type", bytes: 2, bits: 16, format: fmtHex, nxm: "NXM_OF_ETH_TYPE"}, "eth_type", "dl_type")
	defField(FieldVlanTCI, fieldDef{name: "vlan_tci", mf: "vlan_tci", bytes: 2, bits: 16, maskable: true, format: fmtHex, nxm: "NXM_OF_VLAN_TCI"}, "vlan_tci")
	defField(FieldNwSrc, fieldDef{name: "nw_src", mf: "ip_src", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preIPv4Arp, nxm: "NXM_OF_IP_SRC"}, "ip_src", "nw_src")
	defField(FieldNwDst, fieldDef{name: "nw_dst", mf: "ip_dst", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preIPv4Arp, nxm: "NXM_OF_IP_DST"}, "ip_dst", "nw_dst")
	defField(FieldNwProto, fieldDef{name: "nw_proto", mf: "nw_proto", bytes: 1, bits: 8, format: fmtDecimal, prereq: preIPAnyArp, nxm: "NXM_OF_IP_PROTO"}, "nw_proto", "ip_proto")
	defField(FieldNwTos, fieldDef{name: "nw_tos", mf: "nw_tos", bytes: 1, bits: 8, format: fmtDecimal, prereq: preIPAny, nxm: "NXM_OF_IP_TOS", exact: []byte{0xfc}}, "nw_tos")
	defField(FieldNwEcn, fieldDef{name: "nw_ecn", mf: "nw_ecn", bytes: 1, bits: 2, format: fmtDecimal, prereq: preIPAny, nxm: "NXM_NX_IP_ECN"}, "nw_ecn", "ip_ecn")
	defField(FieldNwTTL, fieldDef{name: "nw_ttl", mf: "nw_ttl", bytes: 1, bits: 8, format: fmtDecimal, prereq: preIPAny, nxm: "NXM_NX_IP_TTL"}, "nw_ttl")
	defField(FieldIPFrag, fieldDef{name: "nw_frag", mf: "ip_frag", bytes: 1, bits: 2, maskable: true, format: fmtFrag, prereq: preIPAny, nxm: "NXM_NX_IP_FRAG"}, "ip_frag", "nw_frag")
	defField(FieldTpSrc, fieldDef{name: "tp_src", mf: "tcp_src", bytes: 2, bits: 16, maskable: true, format: fmtDecimal, prereq: preL4, nxm: "NXM_OF_TCP_SRC"}, "tcp_src", "tp_src")
	defField(FieldTpDst, fieldDef{name: "tp_dst", mf: "tcp_dst", bytes: 2, bits: 16, maskable: true, format: fmtDecimal, prereq: preL4, nxm: "NXM_OF_TCP_DST"}, "tcp_dst", "tp_dst")
	defField(FieldTCPFlags, fieldDef{name: "tcp_flags", mf: "tcp_flags", bytes: 2, bits: 12, maskable: true, format: fmtTCPFlags, prereq: preTCP, nxm: "NXM_NX_TCP_FLAGS"}, "tcp_flags")
	defField(FieldIcmpType, fieldDef{name: "icmp_type", mf: "icmp_type", bytes: 1, bits: 8, format: fmtDecimal, prereq: preICMPAny, nxm: "NXM_OF_ICMP_TYPE"}, "icmp_type")
	defField(FieldIcmpCode, fieldDef{name: "icmp_code", mf: "icmp_code", bytes: 1, bits: 8, format: fmtDecimal, prereq: preICMPAny, nxm: "NXM_OF_ICMP_CODE"}, "icmp_code")
	defField(FieldArpOp, fieldDef{name: "arp_op", mf: "arp_op", bytes: 2, bits: 16, format: fmtDecimal, prereq: preArp, nxm: "NXM_OF_ARP_OP"}, "arp_op")
	defField(FieldArpSpa, fieldDef{name: "arp_spa", mf: "arp_spa", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preArp, nxm: "NXM_OF_ARP_SPA"}, "arp_spa")
	defField(FieldArpTpa, fieldDef{name: "arp_tpa", mf: "arp_tpa", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preArp, nxm: "NXM_OF_ARP_TPA"}, "arp_tpa")
	defField(FieldArpSha, fieldDef{name: "arp_sha", mf: "arp_sha", bytes: 6, bits: 48, maskable: true, format: fmtEth, prereq: preArp, nxm: "NXM_NX_ARP_SHA"}, "arp_sha")
	defField(FieldArpTha, fieldDef{name: "arp_tha", mf: "arp_tha", bytes: 6, bits: 48, maskable: true, format: fmtEth, prereq: preArp, nxm: "NXM_NX_ARP_THA"}, "arp_tha")
	defField(FieldIPv6Src, fieldDef{name: "ipv6_src", mf: "ipv6_src", bytes: 16, bits: 128, maskable: true, format: fmtIPv6, prereq: preIPv6, nxm: "NXM_NX_IPV6_SRC"}, "ipv6_src")
	defField(FieldIPv6Dst, fieldDef{name: "ipv6_dst", mf: "ipv6_dst", bytes: 16, bits: 128, maskable: true, format: fmtIPv6, prereq: preIPv6, nxm: "NXM_NX_IPV6_DST"}, "ipv6_dst")
	defField(FieldIPv6Label, fieldDef{name: "ipv6_label", mf: "ipv6_label", bytes: 4, bits: 20, maskable: true, format: fmtHex, prereq: preIPv6, nxm: "NXM_NX_IPV6_LABEL"}, "ipv6_label")
	defField(FieldMetadata, fieldDef{name: "metadata", mf: "metadata", bytes: 8, bits: 64, maskable: true, format: fmtHex, nxm: "OXM_OF_METADATA"}, "metadata")
	for i := 0; i < 16; i++ {
		n := fmt.Sprintf("reg%d", i)
		defField(FieldReg0+FieldID(i), fieldDef{name: n, mf: n, bytes: 4, bits: 32, maskable: true, format: fmtHex, nxm: fmt.Sprintf("NXM_NX_REG%d", i)}, n)
	}
	defField(FieldCtState, fieldDef{name: "ct_state", mf: "ct_state", bytes: 4, bits: 32, maskable: true, format: fmtCtState, nxm: "NXM_NX_CT_STATE", exact: []byte{0, 0, 0, 0xff}}, "ct_state")
	defField(FieldCtZone, fieldDef{name: "ct_zone", mf: "ct_zone", bytes: 2, bits: 16, format: fmtHex, nxm: "NXM_NX_CT_ZONE"}, "ct_zone")
	defField(FieldCtMark, fieldDef{name: "ct_mark", mf: "ct_mark", bytes: 4, bits: 32, maskable: true, format: fmtHex, nxm: "NXM_NX_CT_MARK"}, "ct_mark")
	defField(FieldCtLabel, fieldDef{name: "ct_label", mf: "ct_label", bytes: 16, bits: 128, maskable: true, format: fmtHex, nxm: "NXM_NX_CT_LABEL"}, "ct_label")
	defField(FieldTunID, fieldDef{name: "tun_id", mf: "tun_id", bytes: 8, bits: 64, maskable: true, format: fmtHex, nxm: "NXM_NX_TUN_ID"}, "tun_id", "tunnel_id")
	defField(FieldTunSrc, fieldDef{name: "tun_src", mf: "tun_src", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, nxm: "NXM_NX_TUN_IPV4_SRC"}, "tun_src")
	defField(FieldTunDst, fieldDef{name: "tun_dst", mf: "tun_dst", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, nxm: "NXM_NX_TUN_IPV4_DST"}, "tun_dst")
	defField(FieldPktMark, fieldDef{name: "pkt_mark", mf: "pkt_mark", bytes: 4, bits: 32, maskable: true, format: fmtHex, nxm: "NXM_NX_PKT_MARK"}, "pkt_mark")
	// Their meta-flow prerequisite is CT alone; a match adds ip or ipv6
	// for the addresses and ct_nw_proto for the ports (validateCtTuple).
	defField(FieldCtNwProto, fieldDef{name: "ct_nw_proto", mf: "ct_nw_proto", bytes: 1, bits: 8, format: fmtDecimal, prereq: preCT, nxm: "NXM_NX_CT_NW_PROTO"}, "ct_nw_proto")
	defField(FieldCtNwSrc, fieldDef{name: "ct_nw_src", mf: "ct_nw_src", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preCT, nxm: "NXM_NX_CT_NW_SRC"}, "ct_nw_src")
	defField(FieldCtNwDst, fieldDef{name: "ct_nw_dst", mf: "ct_nw_dst", bytes: 4, bits: 32, maskable: true, format: fmtIPv4, prereq: preCT, nxm: "NXM_NX_CT_NW_DST"}, "ct_nw_dst")
	defField(FieldCtIPv6Src, fieldDef{name: "ct_ipv6_src", mf: "ct_ipv6_src", bytes: 16, bits: 128, maskable: true, format: fmtIPv6, prereq: preCT, nxm: "NXM_NX_CT_IPV6_SRC"}, "ct_ipv6_src")
	defField(FieldCtIPv6Dst, fieldDef{name: "ct_ipv6_dst", mf: "ct_ipv6_dst", bytes: 16, bits: 128, maskable: true, format: fmtIPv6, prereq: preCT, nxm: "NXM_NX_CT_IPV6_DST"}, "ct_ipv6_dst")
	defField(FieldCtTpSrc, fieldDef{name: "ct_tp_src", mf: "ct_tp_src", bytes: 2, bits: 16, maskable: true, format: fmtDecimal, prereq: preCT, nxm: "NXM_NX_CT_TP_SRC"}, "ct_tp_src")
	defField(FieldCtTpDst, fieldDef{name: "ct_tp_dst", mf: "ct_tp_dst", bytes: 2, bits: 16, maskable: true, format: fmtDecimal, prereq: preCT, nxm: "NXM_NX_CT_TP_DST"}, "ct_tp_dst")

	defField(FieldDlVlan, fieldDef{name: "dl_vlan", mf: "dl_vlan", bytes: 2, bits: 12, format: fmtDecimal, view: true}, "dl_vlan")
	defField(FieldVlanVID, fieldDef{name: "vlan_vid", mf: "vlan_vid", bytes: 2, bits: 12, maskable: true, format: fmtDecimal, nxm: "OXM_OF_VLAN_VID", exact: []byte{0x1f, 0xff}, view: true}, "vlan_vid")
	defField(FieldVlanPCP, fieldDef{name: "dl_vlan_pcp", mf: "dl_vlan_pcp", bytes: 1, bits: 3, format: fmtDecimal, view: true}, "dl_vlan_pcp")
	alias(FieldVlanPCP, "vlan_pcp", "OXM_OF_VLAN_PCP", preVLAN, "vlan_pcp")
	defField(FieldIPDSCP, fieldDef{name: "ip_dscp", mf: "ip_dscp", bytes: 1, bits: 6, format: fmtDecimal, prereq: preIPAny, nxm: "OXM_OF_IP_DSCP", view: true}, "ip_dscp")
	// OVS's MFF_IN_PORT_OXM: the same port as in_port, 32 bits wide
	// (OXM_OF_IN_PORT[16..31] exists), valued as OpenFlow 1.1+ numbers.
	defField(FieldInPortOXM, fieldDef{name: "in_port_oxm", mf: "in_port_oxm", bytes: 4, bits: 32, format: fmtPortOXM, nxm: "OXM_OF_IN_PORT", view: true}, "in_port_oxm")

	// Meta-flow fields that OVS stores in the same place as another one.
	alias(FieldTpSrc, "udp_src", "NXM_OF_UDP_SRC", preUDP, "udp_src")
	alias(FieldTpDst, "udp_dst", "NXM_OF_UDP_DST", preUDP, "udp_dst")
	alias(FieldTpSrc, "sctp_src", "OXM_OF_SCTP_SRC", preSCTP, "sctp_src")
	alias(FieldTpDst, "sctp_dst", "OXM_OF_SCTP_DST", preSCTP, "sctp_dst")
	alias(FieldIcmpType, "icmpv6_type", "NXM_NX_ICMPV6_TYPE", preICMPv6, "icmpv6_type")
	alias(FieldIcmpCode, "icmpv6_code", "NXM_NX_ICMPV6_CODE", preICMPv6, "icmpv6_code")
	// The meta-flow prerequisites of these are stricter than the ones OVS
	// enforces on matches (which follow ofputil_normalize_match()).
	for _, n := range []string{"tcp_src", "tp_src"} {
		e := fieldByName[n]
		e.prereq = preTCP
		fieldByName[n] = e
	}
	for _, n := range []string{"tcp_dst", "tp_dst"} {
		e := fieldByName[n]
		e.prereq = preTCP
		fieldByName[n] = e
	}
	fieldByNXM["NXM_OF_TCP_SRC"] = fieldByName["tcp_src"]
	fieldByNXM["NXM_OF_TCP_DST"] = fieldByName["tcp_dst"]
	for _, n := range []string{"icmp_type", "icmp_code"} {
		e := fieldByName[n]
		e.prereq = preICMPv4
		fieldByName[n] = e
		fieldByNXM[e.nxm] = e
	}
	for _, n := range []string{"ip_src", "nw_src", "ip_dst", "nw_dst"} {
		e := fieldByName[n]
		e.prereq = preIPv4
		fieldByName[n] = e
		fieldByNXM[e.nxm] = e
	}
	for _, n := range []string{"nw_proto", "ip_proto"} {
		e := fieldByName[n]
		e.prereq = preIPAny
		fieldByName[n] = e
		fieldByNXM[e.nxm] = e
	}
	// OXM names of fields whose preferred name is an NXM one.
	for oxm, n := range map[string]string{
		"OXM_OF_ETH_SRC": "eth_src", "OXM_OF_ETH_DST": "eth_dst", "OXM_OF_ETH_TYPE": "eth_type",
		"OXM_OF_IPV4_SRC": "ip_src", "OXM_OF_IPV4_DST": "ip_dst", "OXM_OF_IPV6_SRC": "ipv6_src",
		"OXM_OF_IPV6_DST": "ipv6_dst", "OXM_OF_IPV6_FLABEL": "ipv6_label", "OXM_OF_IP_PROTO": "nw_proto",
		"OXM_OF_IP_ECN": "nw_ecn", "OXM_OF_ARP_OP": "arp_op", "OXM_OF_ARP_SPA": "arp_spa",
		"OXM_OF_ARP_TPA": "arp_tpa", "OXM_OF_ARP_SHA": "arp_sha", "OXM_OF_ARP_THA": "arp_tha",
		"OXM_OF_TCP_SRC": "tcp_src", "OXM_OF_TCP_DST": "tcp_dst", "OXM_OF_UDP_SRC": "udp_src",
		"OXM_OF_UDP_DST": "udp_dst", "OXM_OF_ICMPV4_TYPE": "icmp_type", "OXM_OF_ICMPV4_CODE": "icmp_code",
		"OXM_OF_ICMPV6_TYPE": "icmpv6_type", "OXM_OF_ICMPV6_CODE": "icmpv6_code",
		"OXM_OF_TUNNEL_ID": "tun_id", "OXM_OF_TCP_FLAGS": "tcp_flags",
	} {
		fieldByNXM[oxm] = fieldByName[n]
	}
}

// Info describes the field.  It panics if f is not a valid FieldID.
func (f FieldID) Info() FieldInfo {
	d := &fieldDefs[f]
	return FieldInfo{
		Name:          d.name,
		Bytes:         d.bytes,
		Bits:          d.bits,
		Maskable:      d.maskable,
		Exact:         append([]byte(nil), d.exact...),
		Prerequisites: prereqText[d.prereq],
		NXM:           d.nxm,
		View:          d.view,
	}
}

// String returns the field's name as ovs-ofctl prints it in a match.
func (f FieldID) String() string {
	if f < 0 || f >= numFields {
		return fmt.Sprintf("FieldID(%d)", int(f))
	}
	return fieldDefs[f].name
}

// FieldByName looks up a field by any of the names ovs-ofctl accepts for it
// in a match ("nw_src", "ip_src", "tp_dst", "udp_dst", "dl_vlan", ...).
func FieldByName(name string) (FieldID, bool) {
	e, ok := fieldByName[name]
	return e.id, ok
}

// lookupSubfieldName resolves a field name in subfield syntax: an NXM/OXM
// name (optionally with the "_W" suffix) or a meta-flow name.
func lookupSubfieldName(name string) (nameEntry, bool) {
	n := strings.TrimSuffix(name, "_W")
	if e, ok := fieldByNXM[n]; ok && len(name) > 2 {
		return e, true
	}
	e, ok := fieldByName[name]
	return e, ok
}
