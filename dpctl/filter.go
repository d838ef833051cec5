package dpctl

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// Tuple is one side of a flush-conntrack filter, kept as Open vSwitch
// keeps it (struct ofp_ct_tuple): an address not given is invalid (a
// wildcard), and the two L4 fields are shared. For ICMP and ICMPv6,
// SrcPort is the identifier and DstPort holds the type (low byte) and
// the code (high byte): OVS keeps them in a union with the ports, so
// icmp_id= and ct_tp_src= set one field, ct_tp_dst= sets type and code,
// and ICMP fields parsed before the protocol changed read as ports.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// ICMPID, ICMPType and ICMPCode read an ICMP tuple's fields.
func (t *Tuple) ICMPID() uint16  { return t.SrcPort }
func (t *Tuple) ICMPType() uint8 { return uint8(t.DstPort) }
func (t *Tuple) ICMPCode() uint8 { return uint8(t.DstPort >> 8) }

// zero is ofp_ct_tuple_is_zero: no address and, unless the protocol is
// ICMP, no port (an ICMP tuple with fields but no address is zero).
func (t *Tuple) zero(proto uint8) bool {
	return !t.Src.IsValid() && !t.Dst.IsValid() && (isICMP(proto) || t.SrcPort == 0 && t.DstPort == 0)
}

// full is ofp_ct_tuple_is_five_tuple: both addresses and, unless the
// protocol is ICMP, both ports (ICMP fields left out are 0).
func (t *Tuple) full(proto uint8) bool {
	return t.Src.IsValid() && t.Dst.IsValid() && (isICMP(proto) || t.SrcPort != 0 && t.DstPort != 0)
}

func isICMP(proto uint8) bool { return proto == 1 || proto == 58 }

// Filter selects connections for flush-conntrack, with the syntax and
// semantics of `ovs-appctl dpctl/flush-conntrack` in Open vSwitch 3.1
// (lib/dpctl.c, lib/ct-dpif.c ct_dpif_flush_tuple) on its kernel datapath:
// [zone=N] [mark=X[/M]] [labels=Y[/M]] [ORIG-TUPLE [REPLY-TUPLE]], where a
// tuple is "ct_nw_src=A,ct_nw_dst=B,ct_nw_proto=P,ct_tp_src=S,ct_tp_dst=D"
// (ct_ipv6_src/ct_ipv6_dst for IPv6) or, for ICMP, icmp_id/icmp_type/
// icmp_code instead of the ports. mark= and labels= are OVS 3.2's.
//
// A full tuple (FullTuple) names one connection, which is looked up as
// ctnetlink looks it up: in zone N, or zone 0 without zone=, by its
// original or its reply tuple. Anything else is compared with every
// connection (of zone N, or of all zones), as ct_dpif_entry_cmp does:
// each tuple with that direction's tuple, an address or port left out
// matching any, but ICMP's identifier, type and code always compared,
// 0 where left out, in both tuples (a reply tuple left out too).
type Filter struct {
	Zone            *uint16
	Mark, MarkMask  uint32
	Labels, LabelsM [16]byte
	Proto           uint8
	Family          uint8 // 4 or 6 once an address was given, as OVS's l3_type; else 0
	Orig, Reply     Tuple
}

// ParseFilter parses flush-conntrack's arguments. Errors use OVS's words
// (lib/ofp-ct.c), after the token.
func ParseFilter(args []string) (Filter, error) {
	var f Filter
	i := 0
	if i < len(args) && strings.HasPrefix(args[i], "zone=") {
		z, err := strconv.ParseUint(args[i][5:], 10, 16)
		if err != nil {
			return f, fmt.Errorf("%s: failed to parse zone", args[i])
		}
		zone := uint16(z)
		f.Zone = &zone
		i++
	}
	if i < len(args) && strings.HasPrefix(args[i], "mark=") {
		v, m, err := parseMasked(args[i][5:], 4)
		if err != nil {
			return f, fmt.Errorf("%s: failed to parse mark", args[i])
		}
		f.Mark = uint32(new(big.Int).SetBytes(v).Uint64())
		f.MarkMask = uint32(new(big.Int).SetBytes(m).Uint64())
		i++
	}
	if i < len(args) && strings.HasPrefix(args[i], "labels=") {
		v, m, err := parseMasked(args[i][7:], 16)
		if err != nil {
			return f, fmt.Errorf("%s: failed to parse labels", args[i])
		}
		copy(f.Labels[:], v)
		copy(f.LabelsM[:], m)
		i++
	}
	for t := 0; t < 2 && i < len(args); t++ {
		tp := &f.Orig
		if t == 1 {
			tp = &f.Reply
		}
		if args[i] != "" {
			if err := parseTuple(args[i], tp, &f.Proto, &f.Family); err != nil {
				return f, fmt.Errorf("%s: %w", args[i], err)
			}
		}
		i++
	}
	if i < len(args) {
		return f, fmt.Errorf("%s: invalid arguments", args[i])
	}
	return f, nil
}

// parseMasked parses an integer (decimal or 0x hex) with an optional /mask
// into big-endian byte slices of width n; no mask means all ones.
func parseMasked(s string, n int) (val, mask []byte, err error) {
	vs, ms, hasMask := strings.Cut(s, "/")
	val, err = parseIntBytes(vs, n)
	if err != nil {
		return nil, nil, err
	}
	if !hasMask {
		mask = make([]byte, n)
		for i := range mask {
			mask[i] = 0xff
		}
		return val, mask, nil
	}
	mask, err = parseIntBytes(ms, n)
	return val, mask, err
}

func parseIntBytes(s string, n int) ([]byte, error) {
	v := new(big.Int)
	var ok bool
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		_, ok = v.SetString(s[2:], 16)
	} else {
		_, ok = v.SetString(s, 10)
	}
	if !ok || v.Sign() < 0 || v.BitLen() > 8*n {
		return nil, fmt.Errorf("bad integer %q", s)
	}
	out := make([]byte, n)
	v.FillBytes(out)
	return out, nil
}

// parseTuple is ofp_ct_tuple_parse: proto and family are the match's,
// shared by both tuples.
func parseTuple(s string, t *Tuple, proto, family *uint8) error {
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		key, value, _ := strings.Cut(kv, "=")
		if value == "" {
			return fmt.Errorf("field %s missing value", key)
		}
		bad := fmt.Errorf("failed to parse field %s", key)
		switch key {
		case "ct_nw_src", "ct_nw_dst", "ct_ipv6_src", "ct_ipv6_dst":
			fam := uint8(4)
			if strings.HasPrefix(key, "ct_ipv6") {
				fam = 6
			}
			if *family != 0 && *family != fam {
				return fmt.Errorf("the L3 protocol does not match %s", value)
			}
			dst := &t.Src
			if strings.HasSuffix(key, "_dst") {
				dst = &t.Dst
			}
			if dst.IsValid() {
				return fmt.Errorf("%s is set multiple times", key)
			}
			a, err := netip.ParseAddr(value)
			if err != nil || a.Is4() != (fam == 4) || a.Zone() != "" {
				return bad
			}
			*family = fam
			// OVS keeps addresses as IPv6 ones (IPv4 mapped) and takes
			// all zeros for "not given": "::" is a wildcard, 0.0.0.0
			// (mapped, not zero) is not.
			if !(fam == 6 && a.IsUnspecified()) {
				*dst = a
			}
		case "ct_nw_proto":
			// Both tuples may name the protocol; OVS keeps the last one.
			v, err := strconv.ParseUint(value, 0, 8)
			if err != nil {
				return bad
			}
			*proto = uint8(v)
		case "ct_tp_src", "ct_tp_dst":
			v, err := strconv.ParseUint(value, 0, 16)
			if err != nil {
				return bad
			}
			if key == "ct_tp_src" {
				t.SrcPort = uint16(v)
			} else {
				t.DstPort = uint16(v)
			}
		case "icmp_type", "icmp_code", "icmp_id":
			if !isICMP(*proto) {
				return fmt.Errorf("invalid L4 fields")
			}
			bits := 8
			if key == "icmp_id" {
				bits = 16
			}
			v, err := strconv.ParseUint(value, 0, bits)
			if err != nil {
				return bad
			}
			switch key {
			case "icmp_type":
				t.DstPort = t.DstPort&0xff00 | uint16(v)
			case "icmp_code":
				t.DstPort = t.DstPort&0x00ff | uint16(v)<<8
			default:
				t.SrcPort = uint16(v)
			}
		default:
			return fmt.Errorf("invalid conntrack tuple field: %s", key)
		}
	}
	if *proto == 0 && (t.SrcPort != 0 || t.DstPort != 0) {
		return fmt.Errorf("port is set without protocol")
	}
	return nil
}

// ZoneOnly reports whether f selects by zone (or nothing) alone, so a
// flush needs no connection decoded: OVS's ofp_ct_match_is_zero.
func (f *Filter) ZoneOnly() bool {
	return f.Proto == 0 && f.Family == 0 && f.Orig.zero(0) && f.Reply.zero(0) &&
		f.MarkMask == 0 && f.LabelsM == [16]byte{}
}

// FullTuple reports whether f names one connection by a full tuple (OVS's
// ofp_ct_match_is_five_tuple): an original tuple with both addresses and,
// but for ICMP, both ports; no reply tuple (for ICMP: no reply address);
// no mark or labels. OVS then deletes that tuple through ctnetlink
// (nl_ct_flush_tuple) instead of comparing it with every connection.
func (f *Filter) FullTuple() bool {
	return f.Orig.full(f.Proto) && f.Reply.zero(f.Proto) && f.MarkMask == 0 && f.LabelsM == [16]byte{}
}

// LookupZone is the zone a full tuple is looked up in: zone=N, or 0
// (nl_ct_flush_tuple's CTA_ZONE without zone=).
func (f *Filter) LookupZone() uint16 {
	if f.Zone != nil {
		return *f.Zone
	}
	return 0
}

// CheckLookup returns the error OVS's kernel datapath gives a full tuple
// it cannot look up: EOPNOTSUPP for a protocol other than TCP, UDP, ICMP
// over IPv4 and ICMPv6 over IPv6 (netlink-conntrack.c
// nl_ct_put_tuple_proto cannot put its fields); EINVAL for an ICMP type
// that is neither a query nor a query's reply (the kernel's
// icmp_nlattr_to_tuple and its invmap). Other full tuples are valid.
func (f *Filter) CheckLookup() error {
	if !f.FullTuple() {
		return nil
	}
	switch {
	case f.Proto == 6 || f.Proto == 17:
	case f.Proto == 1 && f.Family == 4, f.Proto == 58 && f.Family == 6:
		if !icmpInvertible(f.Proto, f.Orig.ICMPType()) {
			return syscall.EINVAL
		}
	default:
		return syscall.EOPNOTSUPP
	}
	return nil
}

// icmpInvertible reports whether an ICMP (proto 1) or ICMPv6 (58) type is
// a query or a query's reply, the types the kernel's invmap knows: echo,
// timestamp, information and address mask for ICMP; echo and node
// information for ICMPv6.
func icmpInvertible(proto, t uint8) bool {
	switch {
	case proto == 1 && (t == 0 || t == 14 || t == 16 || t == 18):
		return true
	case proto == 58 && (t == 129 || t == 140):
		return true
	}
	return ICMPReplyType(proto, t) != t
}

// Matches reports whether f selects c, as dpctl/flush-conntrack does.
func (f *Filter) Matches(c *Conn) bool {
	if f.FullTuple() {
		return f.lookup(c)
	}
	if f.Zone != nil && c.Zone != *f.Zone {
		return false
	}
	if f.Family != 0 && c.OrigSrc.Is4() != (f.Family == 4) {
		return false
	}
	if f.Proto != 0 && c.Proto != f.Proto {
		return false
	}
	if c.Mark&f.MarkMask != f.Mark&f.MarkMask {
		return false
	}
	for i := range c.Labels {
		if c.Labels[i]&f.LabelsM[i] != f.Labels[i]&f.LabelsM[i] {
			return false
		}
	}
	rs, rd, rsp, rdp := c.Reply()
	return f.partial(&f.Orig, c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport, c.ICMPType, c.ICMPCode) &&
		f.partial(&f.Reply, rs, rd, rsp, rdp, ICMPReplyType(c.Proto, c.ICMPType), c.ICMPCode)
}

// partial is ct_dpif_tuple_ip_cmp_partial: t against one direction's
// tuple. Addresses and ports left out match any; with ICMP as the
// filter's protocol, identifier, type and code must be equal, 0 where
// left out. For ICMP, sport is the identifier.
func (f *Filter) partial(t *Tuple, src, dst netip.Addr, sport, dport uint16, icmpType, icmpCode uint8) bool {
	if t.Src.IsValid() && t.Src != src || t.Dst.IsValid() && t.Dst != dst {
		return false
	}
	if isICMP(f.Proto) {
		return t.ICMPID() == sport && t.ICMPType() == icmpType && t.ICMPCode() == icmpCode
	}
	return (t.SrcPort == 0 || t.SrcPort == sport) && (t.DstPort == 0 || t.DstPort == dport)
}

// lookup is ctnetlink's delete by tuple (ctnetlink_del_conntrack): the
// connection in the lookup zone whose original or reply tuple is f's
// original one -- ports for TCP and UDP; identifier, type and code for
// ICMP. A tuple CheckLookup refuses finds nothing.
func (f *Filter) lookup(c *Conn) bool {
	t := &f.Orig
	if c.Zone != f.LookupZone() || c.Proto != f.Proto || f.CheckLookup() != nil {
		return false
	}
	for _, reply := range []bool{false, true} {
		src, dst, sport, dport, typ := c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport, c.ICMPType
		if reply {
			src, dst, sport, dport = c.Reply()
			typ = ICMPReplyType(c.Proto, c.ICMPType)
		}
		if t.Src != src || t.Dst != dst {
			continue
		}
		switch {
		case isICMP(c.Proto):
			if t.ICMPID() == sport && t.ICMPType() == typ && t.ICMPCode() == c.ICMPCode {
				return true
			}
		default:
			if t.SrcPort == sport && t.DstPort == dport {
				return true
			}
		}
	}
	return false
}
