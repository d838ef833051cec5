package dpctl

import (
	"fmt"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
)

// Tuple is one side of a flush-conntrack filter; zero fields are wildcards.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	ICMPID           uint16
	ICMPType         uint8
	ICMPCode         uint8
	hasICMPType      bool
	hasICMPCode      bool
}

// Filter selects connections for flush-conntrack, with the syntax and
// partial-tuple semantics of `ovs-appctl dpctl/flush-conntrack`:
// [zone=N] [mark=X[/M]] [labels=Y[/M]] [ORIG-TUPLE [REPLY-TUPLE]], where a
// tuple is "ct_nw_src=A,ct_nw_dst=B,ct_nw_proto=P,ct_tp_src=S,ct_tp_dst=D"
// or, for ICMP, icmp_id/icmp_type/icmp_code; any field may be left out.
type Filter struct {
	Zone             *uint16
	Mark, MarkMask   uint32
	Labels, LabelsM  [16]byte
	Proto            uint8
	Orig, Reply      Tuple
	hasOrig, hasRepl bool
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
			if err := parseTuple(args[i], tp, &f.Proto); err != nil {
				return f, fmt.Errorf("%s: %w", args[i], err)
			}
			if t == 0 {
				f.hasOrig = true
			} else {
				f.hasRepl = true
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

func parseTuple(s string, t *Tuple, proto *uint8) error {
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
			v6 := strings.HasPrefix(key, "ct_ipv6")
			a, err := netip.ParseAddr(value)
			if err != nil || a.Is4() == v6 || a.Zone() != "" {
				return bad
			}
			if (t.Src.IsValid() && t.Src.Is4() == v6) || (t.Dst.IsValid() && t.Dst.Is4() == v6) {
				return fmt.Errorf("the L3 protocol does not match %s", value)
			}
			dst := &t.Src
			if strings.HasSuffix(key, "_dst") {
				dst = &t.Dst
			}
			if dst.IsValid() {
				return fmt.Errorf("%s is set multiple times", key)
			}
			*dst = a
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
			if *proto != 1 && *proto != 58 {
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
				t.ICMPType, t.hasICMPType = uint8(v), true
			case "icmp_code":
				t.ICMPCode, t.hasICMPCode = uint8(v), true
			default:
				t.ICMPID = uint16(v)
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

func (t *Tuple) matches(proto uint8, src, dst netip.Addr, sport, dport uint16, icmpType, icmpCode uint8) bool {
	if t.Src.IsValid() && t.Src != src || t.Dst.IsValid() && t.Dst != dst {
		return false
	}
	if proto == 1 || proto == 58 {
		return (t.ICMPID == 0 || t.ICMPID == sport) &&
			(!t.hasICMPType || t.ICMPType == icmpType) &&
			(!t.hasICMPCode || t.ICMPCode == icmpCode)
	}
	return (t.SrcPort == 0 || t.SrcPort == sport) && (t.DstPort == 0 || t.DstPort == dport)
}

// ZoneOnly reports whether f selects by zone (or nothing) alone, so a
// flush needs no connection decoded.
func (f *Filter) ZoneOnly() bool {
	return f.Proto == 0 && f.MarkMask == 0 && f.LabelsM == [16]byte{} && !f.hasOrig && !f.hasRepl
}

// Matches reports whether f selects c, as dpctl/flush-conntrack does.
func (f *Filter) Matches(c *Conn) bool {
	if f.Zone != nil && c.Zone != *f.Zone {
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
	if f.hasOrig && !f.Orig.matches(c.Proto, c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport, c.ICMPType, c.ICMPCode) {
		return false
	}
	if f.hasRepl && !f.Reply.matches(c.Proto, c.OrigDst, c.OrigSrc, c.OrigDport, c.OrigSport, ICMPReplyType(c.Proto, c.ICMPType), c.ICMPCode) {
		return false
	}
	return true
}
