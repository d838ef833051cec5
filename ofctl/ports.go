package ofctl

import (
	"strconv"
	"strings"
)

// Reserved OpenFlow port numbers (OpenFlow 1.0 / OVS ofp_port_t values).
const (
	PortMax        uint32 = 0xff00 // valid physical ports are 1..0xfeff
	PortUnset      uint32 = 0xfff7 // OVS's OFPP_UNSET (actset_output only)
	PortInPort     uint32 = 0xfff8
	PortTable      uint32 = 0xfff9
	PortNormal     uint32 = 0xfffa
	PortFlood      uint32 = 0xfffb
	PortAll        uint32 = 0xfffc
	PortController uint32 = 0xfffd
	PortLocal      uint32 = 0xfffe
	PortNone       uint32 = 0xffff // also OFPP_ANY
)

// PortMap resolves port names; nil means numbers only.
type PortMap interface {
	PortNumber(name string) (uint32, bool)
	PortName(num uint32) (string, bool)
}

// MapPorts is a simple PortMap from names to numbers.
type MapPorts map[string]uint32

// PortNumber implements PortMap.
func (m MapPorts) PortNumber(name string) (uint32, bool) {
	n, ok := m[name]
	return n, ok
}

// PortName implements PortMap.  A number with more than one name has none,
// as in OVS.
func (m MapPorts) PortName(num uint32) (string, bool) {
	found := ""
	for name, n := range m {
		if n == num {
			if found != "" {
				return "", false
			}
			found = name
		}
	}
	return found, found != ""
}

var reservedPorts = []struct {
	name string
	port uint32
}{
	{"IN_PORT", PortInPort},
	{"TABLE", PortTable},
	{"NORMAL", PortNormal},
	{"FLOOD", PortFlood},
	{"ALL", PortAll},
	{"CONTROLLER", PortController},
	{"LOCAL", PortLocal},
	{"ANY", PortNone},
	{"UNSET", PortUnset},
}

// reservedPortName returns OVS's name of a reserved port.
func reservedPortName(p uint32) (string, bool) {
	for _, r := range reservedPorts {
		if r.port == p {
			return r.name, true
		}
	}
	return "", false
}

// parsePort emulates ofputil_port_from_string(): a decimal number (OpenFlow
// 1.1+ reserved numbers 0xffffff00 and up are mapped to their OpenFlow 1.0
// values), a reserved port name (any case, "NONE" too), or a name from
// 'ports' (possibly in double quotes).
func parsePort(s string, ports PortMap) (uint32, bool) {
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	if n, ok := strToUint(s); ok {
		switch {
		case n <= 0xffff:
			return n, true
		case n < 0xffffff00:
			return 0, false
		default:
			return n - 0xffff0000, true
		}
	}
	for _, r := range reservedPorts {
		if strings.EqualFold(s, r.name) {
			return r.port, true
		}
	}
	if strings.EqualFold(s, "NONE") {
		return PortNone, true
	}
	if ports == nil {
		return 0, false
	}
	name := s
	if strings.HasPrefix(s, "\"") {
		if len(s) < 2 || !strings.HasSuffix(s, "\"") {
			return 0, false
		}
		u, err := strconv.Unquote(s)
		if err != nil {
			return 0, false
		}
		name = u
	}
	n, ok := ports.PortNumber(name)
	if !ok || n == PortNone {
		return 0, false
	}
	return n, true
}

// formatPort emulates ofputil_format_port(): reserved names, then names from
// 'ports' (quoted when not alphanumeric), then the number.
func formatPort(p uint32, ports PortMap) string {
	if n, ok := reservedPortName(p); ok {
		return n
	}
	if ports != nil {
		if n, ok := ports.PortName(p); ok && n != "" {
			return quoteName(n)
		}
	}
	return strconv.FormatUint(uint64(p), 10)
}

// quoteName emulates namemap_put_name(): names that are not a letter
// followed by letters and digits are written as JSON strings.
func quoteName(n string) string {
	needs := !isAlpha(n[0])
	for i := 1; i < len(n) && !needs; i++ {
		if !isAlpha(n[i]) && !(n[i] >= '0' && n[i] <= '9') {
			needs = true
		}
	}
	if !needs {
		return n
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range n {
		switch {
		case r == '"':
			sb.WriteString(`\"`)
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\b':
			sb.WriteString(`\b`)
		case r == '\f':
			sb.WriteString(`\f`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r < 0x20:
			sb.WriteString(`\u00`)
			sb.WriteByte("0123456789abcdef"[r>>4])
			sb.WriteByte("0123456789abcdef"[r&15])
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
