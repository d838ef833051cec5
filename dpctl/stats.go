package dpctl

import (
	"fmt"
	"strings"
)

// statsProtos are the protocols ct-stats-show prints, in its order (ICMPv6
// connections count in the total but are never printed: as OVS).
var statsProtos = []struct {
	proto uint8
	name  string
}{{6, "TCP"}, {17, "UDP"}, {136, "UDPLITE"}, {132, "SCTP"}, {1, "ICMP"}, {33, "DCCP"}, {2, "IGMP"}}

// FormatStats prints the connections' statistics as `ovs-appctl
// dpctl/ct-stats-show` does (lib/dpctl.c): the total, each protocol's
// count and, when verbose, TCP connections per state.
func FormatStats(conns []Conn, verbose bool) string {
	byProto := map[uint8]int{}
	var perState [tcpStates]int
	other := 0
	for i := range conns {
		c := &conns[i]
		known := c.Proto == 58
		for _, p := range statsProtos {
			known = known || p.proto == c.Proto
		}
		if !known {
			other++
		}
		byProto[c.Proto]++
		if c.Proto == 6 {
			perState[c.TCPState.Coalesced()]++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Connections Stats:\n    Total: %d\n", len(conns))
	for _, p := range statsProtos {
		n := byProto[p.proto]
		if n == 0 {
			continue
		}
		fmt.Fprintf(&sb, "  %s: %d\n", p.name, n)
		if p.proto == 6 && verbose {
			fmt.Fprintf(&sb, "    Conn per TCP states:\n")
			for st, n := range perState {
				if n > 0 {
					fmt.Fprintf(&sb, "\t  [%s]=%d\n", TCPState(st), n)
				}
			}
		}
	}
	if other > 0 {
		fmt.Fprintf(&sb, "  Other: %d\n", other)
	}
	return sb.String()
}
