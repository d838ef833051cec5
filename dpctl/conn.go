package dpctl

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// TCPState is a TCP connection's state in Open vSwitch's terms
// (CT_DPIF_TCPS_*, lib/ct-dpif.h), in its order: ct-stats-show -m lists
// per-state counts in this order. The loader maps nf_conntrack's states
// onto it as lib/netlink-conntrack.c does.
type TCPState uint8

// OVS's TCP states.
const (
	TCPClosed TCPState = iota
	TCPListen
	TCPSynSent
	TCPSynRecv
	TCPEstablished
	TCPCloseWait
	TCPFinWait1
	TCPClosing
	TCPLastAck
	TCPFinWait2
	TCPTimeWait
	tcpStates // how many
)

var tcpStateNames = [tcpStates]string{"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT",
	"FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT"}

// String is the state as dump-conntrack -m prints it.
func (s TCPState) String() string {
	if s < tcpStates {
		return tcpStateNames[s]
	}
	return tcpStateNames[TCPClosed]
}

// Coalesced is the state dump-conntrack prints without -m, and
// ct-stats-show counts: SYN_RECV is shown as ESTABLISHED.
func (s TCPState) Coalesced() TCPState {
	if s == TCPSynRecv {
		return TCPEstablished
	}
	if s >= tcpStates {
		return TCPClosed
	}
	return s
}

// TCP flags per direction (nf_conntrack's IP_CT_TCP_FLAG_*, which OVS
// prints as CT_DPIF_TCP_FLAGS), bit by bit.
var tcpFlagNames = []string{"WINDOW_SCALE", "SACK_PERM", "CLOSE_INIT", "BE_LIBERAL", "DATA_UNACKNOWLEDGED", "MAXACK_SET"}

// Conn is one tracked connection, in the original direction's terms.
type Conn struct {
	Proto            uint8
	Zone             uint16
	OrigSrc, OrigDst netip.Addr
	OrigSport        uint16 // ICMP: identifier
	OrigDport        uint16
	ICMPType         uint8 // the originator's type
	ICMPCode         uint8
	TCPState         TCPState
	Mark             uint32
	Labels           [16]byte
	ID               uint32
	Packets, Bytes   [2]uint64 // [0] original, [1] reply; bytes from the IP header on, as nf_conntrack_acct
	Start            time.Time
	Timeout          time.Duration // left before it expires
	SeenReply        bool
	Assured          bool
	WScale           [2]uint8 // TCP window scale, [0] original direction
	TCPFlags         [2]uint8 // IP_CT_TCP_FLAG_* per direction

	// NAT is the translation the connection was committed with; the
	// reply tuple is then the translated one (Reply*), not the original
	// reversed: SNAT's replies go to the new source, DNAT's come from the
	// new destination.
	NAT                    NAT
	ReplySrc, ReplyDst     netip.Addr
	ReplySport, ReplyDport uint16 // ICMP: the identifier, in both
}

// NAT is a connection's translation: none, source or destination.
type NAT uint8

// The translations.
const (
	NoNAT NAT = iota
	SrcNAT
	DstNAT
)

// Reply is the connection's reply tuple: the translated one for a NATed
// connection, else the original reversed. For ICMP, sport is the
// identifier.
func (c *Conn) Reply() (src, dst netip.Addr, sport, dport uint16) {
	if c.NAT != NoNAT {
		return c.ReplySrc, c.ReplyDst, c.ReplySport, c.ReplyDport
	}
	return c.OrigDst, c.OrigSrc, c.OrigDport, c.OrigSport
}

// Less orders connections as dump-conntrack lists them: by zone,
// protocol, then the original tuple.
func Less(a, b *Conn) bool {
	if a.Zone != b.Zone {
		return a.Zone < b.Zone
	}
	if a.Proto != b.Proto {
		return a.Proto < b.Proto
	}
	if c := a.OrigSrc.Compare(b.OrigSrc); c != 0 {
		return c < 0
	}
	if c := a.OrigDst.Compare(b.OrigDst); c != 0 {
		return c < 0
	}
	if a.OrigSport != b.OrigSport {
		return a.OrigSport < b.OrigSport
	}
	return a.OrigDport < b.OrigDport
}

// ProtoName is OVS's ct_dpif_format_ipproto.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	case 136:
		return "udplite"
	case 33:
		return "dccp"
	case 2:
		return "igmp"
	}
	return fmt.Sprint(p)
}

// ICMPReplyType is the reply type of an ICMP or ICMPv6 query (echo 8 ->
// 0, 128 -> 129, ...).
func ICMPReplyType(proto, t uint8) uint8 {
	switch {
	case proto == 1 && t == 8:
		return 0
	case proto == 1 && (t == 13 || t == 15 || t == 17):
		return t + 1
	case proto == 58 && (t == 128 || t == 139):
		return t + 1
	}
	return t
}

// tcpFlagsString is OVS's format_flags: names joined by '|', "0" for none.
func tcpFlagsString(f uint8) string {
	var names []string
	for i, n := range tcpFlagNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// FormatOptions are dump-conntrack's -s and -m.
type FormatOptions struct {
	Stats   bool // -s
	Verbose bool // -m
}

func (c *Conn) tuple(sb *strings.Builder, src, dst netip.Addr, sport, dport uint16, icmpType uint8) {
	fmt.Fprintf(sb, "src=%s,dst=%s", src, dst)
	if c.Proto == 1 || c.Proto == 58 {
		fmt.Fprintf(sb, ",id=%d,type=%d,code=%d", sport, icmpType, c.ICMPCode)
	} else {
		fmt.Fprintf(sb, ",sport=%d,dport=%d", sport, dport)
	}
}

func counters(sb *strings.Builder, packets, bytes uint64) {
	if packets != 0 || bytes != 0 {
		fmt.Fprintf(sb, ",packets=%d,bytes=%d", packets, bytes)
	}
}

// Format prints the connection as `ovs-appctl dpctl/dump-conntrack` does
// for the kernel datapath:
// proto,orig=(...),reply=(...)[,start=][,id=][,zone=N][,status=][,timeout=][,mark=N][,labels=0x...][,protoinfo=(...)]
func (c *Conn) Format(o FormatOptions) string {
	var sb strings.Builder
	sb.WriteString(ProtoName(c.Proto))
	sb.WriteString(",orig=(")
	c.tuple(&sb, c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport, c.ICMPType)
	if o.Stats {
		counters(&sb, c.Packets[0], c.Bytes[0])
	}
	sb.WriteString("),reply=(")
	rs, rd, rsp, rdp := c.Reply()
	c.tuple(&sb, rs, rd, rsp, rdp, ICMPReplyType(c.Proto, c.ICMPType))
	if o.Stats {
		counters(&sb, c.Packets[1], c.Bytes[1])
	}
	sb.WriteString(")")
	if o.Stats {
		fmt.Fprintf(&sb, ",start=%s", c.Start.UTC().Format("2006-01-02T15:04:05.000"))
	}
	if o.Verbose {
		fmt.Fprintf(&sb, ",id=%d", c.ID)
	}
	if c.Zone != 0 {
		fmt.Fprintf(&sb, ",zone=%d", c.Zone)
	}
	if o.Verbose {
		status := []string{}
		if c.SeenReply {
			status = append(status, "SEEN_REPLY")
		}
		if c.Assured {
			status = append(status, "ASSURED")
		}
		status = append(status, "CONFIRMED")
		// As the kernel datapath has them: SNAT is done in its hook;
		// DNAT also binds the source (nf_ct_nat's null binding).
		switch c.NAT {
		case SrcNAT:
			status = append(status, "SRC_NAT", "SRC_NAT_DONE")
		case DstNAT:
			status = append(status, "DST_NAT", "SRC_NAT_DONE", "DST_NAT_DONE")
		}
		fmt.Fprintf(&sb, ",status=%s", strings.Join(status, "|"))
	}
	if o.Stats {
		fmt.Fprintf(&sb, ",timeout=%d", int(c.Timeout/time.Second))
	}
	if c.Mark != 0 {
		fmt.Fprintf(&sb, ",mark=%d", c.Mark)
	}
	if c.Labels != [16]byte{} {
		sb.WriteString(",labels=0x")
		i := 0
		for i < 15 && c.Labels[i] == 0 {
			i++
		}
		fmt.Fprintf(&sb, "%x", c.Labels[i])
		for _, x := range c.Labels[i+1:] {
			fmt.Fprintf(&sb, "%02x", x)
		}
	}
	if c.Proto == 6 && o.Verbose {
		st := c.TCPState.String()
		fmt.Fprintf(&sb, ",protoinfo=(state_orig=%s,state_reply=%s", st, st)
		if c.WScale[0] != 0 || c.WScale[1] != 0 {
			fmt.Fprintf(&sb, ",wscale_orig=%d,wscale_reply=%d", c.WScale[0], c.WScale[1])
		}
		fmt.Fprintf(&sb, ",flags_orig=%s,flags_reply=%s)", tcpFlagsString(c.TCPFlags[0]), tcpFlagsString(c.TCPFlags[1]))
	} else if c.Proto == 6 {
		fmt.Fprintf(&sb, ",protoinfo=(state=%s)", c.TCPState.Coalesced())
	}
	return sb.String()
}
