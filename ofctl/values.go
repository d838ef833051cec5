package ofctl

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Number and address parsing with the semantics of the C library functions
// OVS uses (strtoull with base 0, parse_int_string, ovs_scan formats).

var (
	errRange  = errors.New("out of range")
	errSyntax = errors.New("syntax")
)

// scanC emulates the parsing done by C's strtoull()/strtoll() with base 0
// or 10: leading white space, an optional sign, then (base 0) "0x" hex, "0"
// octal or decimal digits.  It returns the magnitude, the sign, the unparsed
// tail and an error if there were no digits (errSyntax) or the magnitude
// overflowed 64 bits (errRange).
func scanC(s string, base int) (uint64, bool, string, error) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	b := uint64(base)
	if base == 0 {
		b = 10
		if i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && isHexDigit(s[i+2]) {
			b = 16
			i += 2
		} else if i < len(s) && s[i] == '0' {
			b = 8
		}
	}
	start := i
	var v uint64
	overflow := false
	for i < len(s) {
		d, ok := digitVal(s[i])
		if !ok || uint64(d) >= b {
			break
		}
		if v > (math.MaxUint64-uint64(d))/b {
			overflow = true
		}
		v = v*b + uint64(d)
		i++
	}
	if i == start {
		return 0, false, s, errSyntax
	}
	if overflow {
		return math.MaxUint64, neg, s[i:], errRange
	}
	return v, neg, s[i:], nil
}

// strtoull emulates C's strtoull(s, &tail, base); a '-' sign negates the
// result modulo 2^64, as C does.
func strtoull(s string, base int) (uint64, string, error) {
	v, neg, tail, err := scanC(s, base)
	if err == nil && neg {
		v = -v
	}
	return v, tail, err
}

func digitVal(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// strToLLong emulates OVS's str_to_llong(): strtoll with the whole string
// consumed and no overflow.
func strToLLong(s string, base int) (int64, bool) {
	v, neg, tail, err := scanC(s, base)
	if err != nil || tail != "" {
		return 0, false
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// strToU16 emulates str_to_u16(): "invalid NAME \"VALUE\"".
func strToU16(s, name string) (uint16, error) {
	v, ok := strToLLong(s, 0)
	if !ok || v < 0 || v > 65535 {
		return 0, fmt.Errorf("invalid %s \"%s\"", name, s)
	}
	return uint16(v), nil
}

// strToU8 emulates str_to_u8().
func strToU8(s, name string) (uint8, error) {
	v, ok := strToLLong(s, 0)
	if !ok || v < 0 || v > 255 {
		return 0, fmt.Errorf("invalid %s \"%s\"", name, s)
	}
	return uint8(v), nil
}

// strToU32 emulates str_to_u32().
func strToU32(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("missing required numeric argument")
	}
	v, tail, err := strtoull(s, 0)
	if err != nil || tail != "" || v > math.MaxUint32 {
		return 0, fmt.Errorf("invalid numeric format %s", s)
	}
	return uint32(v), nil
}

// strToU64 emulates str_to_u64().
func strToU64(s string) (uint64, error) {
	if s == "" {
		return 0, errors.New("missing required numeric argument")
	}
	v, tail, err := strtoull(s, 0)
	if err != nil || tail != "" {
		return 0, fmt.Errorf("invalid numeric format %s", s)
	}
	return v, nil
}

// strToUint emulates OVS's str_to_uint(s, 10, ...): decimal, 0..UINT_MAX.
func strToUint(s string) (uint32, bool) {
	v, ok := strToLLong(s, 10)
	if !ok || v < 0 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// parseIntString emulates OVS's parse_int_string(): "0x" followed by any
// number of hex digits (leading zeros ignored) or a strtoull base-0 number,
// into a width-byte big-endian value.  It returns the value and the tail.
func parseIntString(s string, width int) ([]byte, string, error) {
	val := make([]byte, width)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
		var hexits []byte
		for {
			s = strings.TrimLeft(s, " \t\r\n")
			if s == "" {
				break
			}
			d, ok := digitVal(s[0])
			if !ok {
				break
			}
			if d != 0 || len(hexits) > 0 {
				if (len(hexits)+2)/2 > width {
					return nil, s, errRange
				}
				hexits = append(hexits, byte(d))
			}
			s = s[1:]
		}
		idx := width
		for i := len(hexits) - 1; i >= 0; i -= 2 {
			idx--
			val[idx] = hexits[i]
			if i > 0 {
				val[idx] += hexits[i-1] << 4
			}
		}
		return val, s, nil
	}
	v, tail, err := strtoull(s, 0)
	if err != nil {
		return nil, tail, err
	}
	for i := width - 1; i >= 0; i-- {
		val[i] = byte(v)
		v >>= 8
		if width-i == 8 {
			break
		}
	}
	if width < 8 && v != 0 {
		return nil, tail, errRange
	}
	return val, tail, nil
}

// scanUint8Dec scans 1-3 decimal digits forming a value 0..255 at the start
// of s, returning the value and the number of bytes used.
func scanUint8Dec(s string) (byte, int, bool) {
	n := 0
	v := 0
	for n < len(s) && n < 3 && s[n] >= '0' && s[n] <= '9' {
		v = v*10 + int(s[n]-'0')
		n++
	}
	if n == 0 || v > 255 || (n < len(s) && s[n] >= '0' && s[n] <= '9') {
		return 0, 0, false
	}
	return byte(v), n, true
}

// scanIPv4 scans a dotted-quad address at the start of s.
func scanIPv4(s string) ([4]byte, int, bool) {
	var ip [4]byte
	n := 0
	for i := 0; i < 4; i++ {
		if i > 0 {
			if n >= len(s) || s[n] != '.' {
				return ip, 0, false
			}
			n++
		}
		b, m, ok := scanUint8Dec(s[n:])
		if !ok {
			return ip, 0, false
		}
		ip[i] = b
		n += m
	}
	return ip, n, true
}

// parseIPv4Masked emulates ip_parse_masked(): "A.B.C.D", "A.B.C.D/N" or
// "A.B.C.D/E.F.G.H".
func parseIPv4Masked(s string) (ip, mask [4]byte, err error) {
	ip, n, ok := scanIPv4(s)
	if !ok {
		return ip, mask, fmt.Errorf("%s: invalid IP address", s)
	}
	rest := s[n:]
	switch {
	case rest == "":
		mask = [4]byte{255, 255, 255, 255}
	case rest[0] == '/':
		if m, k, ok := scanIPv4(rest[1:]); ok {
			if rest[1+k:] != "" {
				return ip, mask, fmt.Errorf("%s: invalid IP address", s)
			}
			mask = m
			break
		}
		v, tail, e := scanInt(rest[1:])
		if e != nil {
			return ip, mask, fmt.Errorf("%s: invalid IP address", s)
		}
		if v < 0 || v > 32 {
			return ip, mask, fmt.Errorf("%s: IPv4 network prefix bits not between 0 and 32, inclusive", s)
		}
		if tail != "" {
			return ip, mask, fmt.Errorf("%s: invalid IP address", s)
		}
		m := prefixMask(4, int(v))
		copy(mask[:], m)
	default:
		return ip, mask, fmt.Errorf("%s: invalid IP address", s)
	}
	return ip, mask, nil
}

// scanInt scans a "%d" integer (optional sign, decimal digits).
func scanInt(s string) (int64, string, error) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, s, errSyntax
	}
	v, err := strconv.ParseInt(s[:j], 10, 64)
	if err != nil {
		return 0, s, errRange
	}
	return v, s[j:], nil
}

// prefixMask returns an n-byte mask with the top 'bits' bits set.
func prefixMask(n, bits int) []byte {
	m := make([]byte, n)
	for i := 0; i < bits && i < 8*n; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// cidrLen returns the prefix length of mask if it is a CIDR mask.
func cidrLen(mask []byte) (int, bool) {
	n := 0
	for n < 8*len(mask) && mask[n/8]&(0x80>>(n%8)) != 0 {
		n++
	}
	for i := n; i < 8*len(mask); i++ {
		if mask[i/8]&(0x80>>(i%8)) != 0 {
			return 0, false
		}
	}
	return n, true
}

const ipv6Chars = "0123456789abcdefABCDEF:."

// scanIPv6 scans an IPv6 address made of the characters OVS's IPV6_SCAN_FMT
// accepts (at most 46 of them) at the start of s.
func scanIPv6(s string) (netip.Addr, int, bool) {
	n := 0
	for n < len(s) && n < 46 && strings.IndexByte(ipv6Chars, s[n]) >= 0 {
		n++
	}
	if n == 0 {
		return netip.Addr{}, 0, false
	}
	a, err := netip.ParseAddr(s[:n])
	if err != nil || !a.Is6() {
		return netip.Addr{}, 0, false
	}
	return a, n, true
}

// parseIPv6Masked emulates ipv6_parse_masked().
func parseIPv6Masked(s string) (ip, mask [16]byte, err error) {
	t := strings.TrimLeft(s, " \t\r\n")
	a, n, ok := scanIPv6(t)
	if !ok {
		return ip, mask, fmt.Errorf("%s: invalid IPv6 address", s)
	}
	ip = a.As16()
	rest := t[n:]
	switch {
	case rest == "":
		for i := range mask {
			mask[i] = 0xff
		}
	case rest[0] == '/':
		if v, tail, e := scanInt(rest[1:]); e == nil {
			if v < 0 || v > 128 {
				return ip, mask, fmt.Errorf("%s: IPv6 network prefix bits not between 0 and 128, inclusive", s)
			}
			if tail != "" {
				return ip, mask, fmt.Errorf("%s: invalid IPv6 address", s)
			}
			copy(mask[:], prefixMask(16, int(v)))
			break
		}
		m, k, ok := scanIPv6(rest[1:])
		if !ok {
			return ip, mask, fmt.Errorf("%s: Invalid IPv6 mask", s)
		}
		if rest[1+k:] != "" {
			return ip, mask, fmt.Errorf("%s: invalid IPv6 address", s)
		}
		mask = m.As16()
	default:
		return ip, mask, fmt.Errorf("%s: invalid IPv6 address", s)
	}
	return ip, mask, nil
}

// formatIPv6 formats an IPv6 address like glibc's inet_ntop().
func formatIPv6(b []byte) string {
	var a [16]byte
	copy(a[:], b)
	// glibc prints "::a.b.c.d" for IPv4-compatible addresses (the first
	// 96 bits zero, the next 16 bits non-zero); Go does not.
	zero := true
	for i := 0; i < 12; i++ {
		if a[i] != 0 {
			zero = false
		}
	}
	if zero && (a[12] != 0 || a[13] != 0) {
		return fmt.Sprintf("::%d.%d.%d.%d", a[12], a[13], a[14], a[15])
	}
	return netip.AddrFrom16(a).String()
}

// scanMAC scans "xx:xx:xx:xx:xx:xx" (1 or 2 hex digits per byte) at the
// start of s.
func scanMAC(s string) ([6]byte, int, bool) {
	var mac [6]byte
	n := 0
	for i := 0; i < 6; i++ {
		if i > 0 {
			if n >= len(s) || s[n] != ':' {
				return mac, 0, false
			}
			n++
		}
		start := n
		v := 0
		for n < len(s) && n-start < 2 && isHexDigit(s[n]) {
			d, _ := digitVal(s[n])
			v = v*16 + d
			n++
		}
		if n == start {
			return mac, 0, false
		}
		mac[i] = byte(v)
	}
	return mac, n, true
}

func isHexDigit(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// parseMAC parses a whole string as an Ethernet address.
func parseMAC(s string) ([6]byte, bool) {
	m, n, ok := scanMAC(s)
	return m, ok && n == len(s)
}

// parseMACMasked emulates mf_from_ethernet_string().
func parseMACMasked(s string) (mac, mask [6]byte, err error) {
	m, n, ok := scanMAC(s)
	if ok && n == len(s) {
		return m, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, nil
	}
	if ok && n < len(s) && s[n] == '/' {
		mk, k, ok2 := scanMAC(s[n+1:])
		if ok2 && n+1+k == len(s) {
			return m, mk, nil
		}
	}
	return mac, mask, fmt.Errorf("%s: invalid Ethernet address", s)
}

func formatMAC(b []byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}

func formatIPv4(b []byte) string {
	return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
}

// hexC formats v like C's "%#x": "0" for zero, "0x..." otherwise.
func hexC(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// putHex formats a big-endian byte string like OVS's ds_put_hex(): "0x" and
// the value without leading zeros, or "0".
func putHex(b []byte) string {
	var sb strings.Builder
	printed := false
	for _, v := range b {
		if v != 0 || printed {
			if !printed {
				fmt.Fprintf(&sb, "0x%x", v)
			} else {
				fmt.Fprintf(&sb, "%02x", v)
			}
			printed = true
		}
	}
	if !printed {
		return "0"
	}
	return sb.String()
}

// beUint reads up to 8 big-endian bytes.
func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// putBE writes v into an n-byte big-endian slice.
func putBE(v uint64, n int) []byte {
	b := make([]byte, n)
	for i := n - 1; i >= 0 && v != 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

func isAllOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

func isAllZeros(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func andBytes(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] & b[i]
	}
	return out
}

func equalBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseHexBytes emulates ofpbuf_put_hex(): pairs of hex digits, optionally
// separated by white space or '.'.  It returns the bytes and the tail that
// could not be parsed.
func parseHexBytes(s string) ([]byte, string) {
	var out []byte
	for {
		s = strings.TrimLeft(s, " .\t\r\n")
		if len(s) < 2 || !isHexDigit(s[0]) || !isHexDigit(s[1]) {
			return out, s
		}
		hi, _ := digitVal(s[0])
		lo, _ := digitVal(s[1])
		out = append(out, byte(hi<<4|lo))
		s = s[2:]
	}
}

func hexWithDots(b []byte) string {
	var sb strings.Builder
	for i, c := range b {
		if i > 0 {
			sb.WriteByte('.')
		}
		fmt.Fprintf(&sb, "%02x", c)
	}
	return sb.String()
}
