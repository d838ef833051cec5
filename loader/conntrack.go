package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/ebpfovs/ebpfovs/bpf"
)

// Conn is one tracked connection, in the original direction's terms.
type Conn struct {
	Proto            uint8
	Zone             uint16
	OrigSrc, OrigDst netip.Addr
	OrigSport        uint16 // ICMP: identifier
	OrigDport        uint16
	ICMPType         uint8 // the originator's type
	ICMPCode         uint8
	TCPState         bpf.DatapathTcpCtState
	Mark             uint32
	Labels           [16]byte
	ID               uint32
	Packets, Bytes   [2]uint64 // [0] original, [1] reply
	Start            time.Time
	Timeout          time.Duration // left before it expires
	SeenReply        bool
	Assured          bool
	WScale           [2]uint8 // TCP window scale, [0] original direction
	TCPFlags         [2]uint8 // nf_conntrack's IP_CT_TCP_FLAG_* per direction

	key bpf.DatapathCtKey
}

// ct_entry.flags (bpf/common.h's enum ct_entry_flag).
const (
	ctAIsOrig   = uint8(bpf.DatapathCtEntryFlagCT_E_A_IS_ORIG)
	ctSeenReply = uint8(bpf.DatapathCtEntryFlagCT_E_SEEN_REPLY)
	ctAssured   = uint8(bpf.DatapathCtEntryFlagCT_E_ASSURED)
)

// addrOf reads an address stored as it sat in the packet (IPv4 in word 0).
func addrOf(a [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i, w := range a {
		binary.NativeEndian.PutUint32(b[4*i:], w)
	}
	if family == 6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

func be16(v uint16) uint16 {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], v)
	return binary.BigEndian.Uint16(b[:])
}

func connFromEntry(k *bpf.DatapathCtKey, e *bpf.DatapathCtEntry, now uint64) Conn {
	c := Conn{
		Proto: k.Proto, Zone: k.Zone, ICMPType: e.IcmpType, ICMPCode: e.IcmpCode,
		TCPState: bpf.DatapathTcpCtState(e.Tcp.State), Mark: e.Mark, Labels: e.Labels, ID: e.Id,
		Packets: e.Packets, Bytes: e.Bytes, Start: wallTime(e.StartNs),
		SeenReply: e.Flags&ctSeenReply != 0, Assured: e.Flags&ctAssured != 0, key: *k,
		WScale:   [2]uint8{e.Tcp.Side[0].TdScale, e.Tcp.Side[1].TdScale},
		TCPFlags: [2]uint8{e.Tcp.Side[0].Flags & 0x3f, e.Tcp.Side[1].Flags & 0x3f},
	}
	if e.ExpiresNs > now {
		c.Timeout = time.Duration(e.ExpiresNs - now)
	}
	a, b := addrOf(k.AddrA, k.Family), addrOf(k.AddrB, k.Family)
	pa, pb := be16(k.PortA), be16(k.PortB)
	if e.Flags&ctAIsOrig != 0 {
		c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport = a, b, pa, pb
	} else {
		c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport = b, a, pb, pa
	}
	return c
}

// Conntrack returns the live connections (of one zone when zone is not
// nil). Expired entries are removed as they are found (and taken off the
// counts limits are checked against); the datapath also removes them on
// lookup and, when a commit finds no room, in a sweep of its own.
func (b *Bridge) Conntrack(zone *uint16) ([]Conn, error) {
	return b.ConntrackProgress(zone, nil)
}

// ConntrackProgress is Conntrack telling progress, if not nil, how many
// entries it has read so far (a million take a few seconds).
func (b *Bridge) ConntrackProgress(zone *uint16, progress func(read int)) ([]Conn, error) {
	out, err := b.liveConns(zone, progress)
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return connLess(&out[i], &out[j]) })
	return out, nil
}

// liveConns is ConntrackProgress in the table's order (flush needs no sort:
// a million entries take a second to sort).
func (b *Bridge) liveConns(zone *uint16, progress func(read int)) ([]Conn, error) {
	now := monotonicNow()
	gc, err := b.collectExpired(now)
	if err != nil {
		return nil, err
	}
	keys, entries, err := b.readConns(progress)
	if err != nil {
		return nil, err
	}
	out := make([]Conn, 0, len(keys))
	var expired []bpf.DatapathCtKey
	for i := range keys {
		if entries[i].ExpiresNs <= now {
			if !gc { // else ct_gc removed it
				expired = append(expired, keys[i])
			}
			continue
		}
		if zone != nil && keys[i].Zone != *zone {
			continue
		}
		out = append(out, connFromEntry(&keys[i], &entries[i], now))
	}
	if !gc {
		// A bridge pinned before ct_gc existed: delete by key, which
		// may take a connection committed anew since the read (see
		// ct_gc in datapath.c). Re-attaching the bridge ends this.
		if _, err := b.deleteConns(expired); err != nil {
			return nil, fmt.Errorf("remove expired connections: %w", err)
		}
	}
	return out, nil
}

// readConns reads the connection table: every key, and the entry its
// reference names. The keys come first, then the slots, as far as any was
// ever used; a connection whose slot changed hands in between (its gen
// moved on) went meanwhile and is left out.
func (b *Bridge) readConns(progress func(read int)) ([]bpf.DatapathCtKey, []bpf.DatapathCtEntry, error) {
	keys, refs, err := readAllProgress[bpf.DatapathCtKey, bpf.DatapathCtRef](b.maps.Conntrack, progress)
	if err != nil {
		return nil, nil, fmt.Errorf("read conntrack: %w", err)
	}
	if len(keys) == 0 {
		return nil, nil, nil
	}
	mem, err := b.counts()
	if err != nil {
		return nil, nil, err
	}
	used := min(uint64(atomic.LoadInt64(countAt(mem, ctCountSlots))), uint64(b.maps.CtSlots.MaxEntries()))
	slots, err := readArray[bpf.DatapathCtEntry](b.maps.CtSlots, uint32(used))
	if err != nil {
		return nil, nil, fmt.Errorf("read conntrack slots: %w", err)
	}
	entries := make([]bpf.DatapathCtEntry, 0, len(keys))
	n := 0
	for i := range keys {
		r := refs[i]
		if uint64(r.Slot) >= uint64(len(slots)) || slots[r.Slot].Gen != r.Gen {
			continue
		}
		keys[n] = keys[i]
		entries = append(entries, slots[r.Slot])
		n++
	}
	return keys[:n], entries, nil
}

// flushInKernel runs the datapath's ct_flush, which removes every
// connection, or zone's, in the kernel. ok is false, with no error, for a
// bridge pinned before ct_flush existed.
func (b *Bridge) flushInKernel(zone *uint16) (n int, ok bool, err error) {
	var ctx skbContext
	if zone != nil {
		ctx.Cb[0], ctx.Cb[1] = 1, uint32(*zone)
	}
	ret, ok, err := b.runPinned(pinProgCTFlush, ctx)
	if err != nil {
		return 0, ok, fmt.Errorf("flush conntrack: %w", err)
	}
	return int(ret), ok, nil
}

// runPinned runs one of the bridge's pinned helper programs (ct_gc,
// ct_flush) once through BPF_PROG_TEST_RUN and returns what it returned.
// ok is false, with no error, when the bridge was pinned before the
// program existed.
func (b *Bridge) runPinned(name string, ctx skbContext) (ret uint32, ok bool, err error) {
	prog, err := loadPinnedProgram(b.dir, name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer prog.Close()
	// TC's BPF_PROG_TEST_RUN wants a frame, which these do not read;
	// their arguments are in cb.
	if ret, err = prog.Run(&ebpf.RunOptions{Data: make([]byte, 14), Context: ctx}); err != nil {
		return 0, true, fmt.Errorf("run %s: %w", name, err)
	}
	return ret, true, nil
}

// collectExpired runs the datapath's ct_gc, which removes the connections
// expired at now (CLOCK_MONOTONIC: those with expires_ns <= now) in the
// kernel. It reports false, and no error, for a bridge pinned before
// ct_gc existed.
func (b *Bridge) collectExpired(now uint64) (bool, error) {
	var ctx skbContext
	// ct_gc removes what expired before the time it is given.
	ctx.Cb[0], ctx.Cb[1] = uint32(now+1), uint32((now+1)>>32)
	_, ok, err := b.runPinned(pinProgCTGC, ctx)
	if err != nil {
		return ok, fmt.Errorf("remove expired connections: %w", err)
	}
	return ok, nil
}

func connLess(a, b *Conn) bool {
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

// protoName is OVS's ct_dpif_format_ipproto.
func protoName(p uint8) string {
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

// icmpReplyType is the reply type of an ICMP or ICMPv6 query (echo 8 -> 0,
// 128 -> 129, ...).
func icmpReplyType(proto, t uint8) uint8 {
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

// tcpStateName is how `ovs-appctl dpctl/dump-conntrack` prints a kernel
// conntrack's TCP state without -m: nf_conntrack's state mapped to OVS's
// (SYN_SENT2 -> SYN_SENT, FIN_WAIT -> FIN_WAIT_1, CLOSE -> CLOSING,
// NONE -> CLOSED), then SYN_RECV coalesced to ESTABLISHED.
func tcpStateName(s bpf.DatapathTcpCtState) string {
	switch s {
	case bpf.DatapathTcpCtStateTCP_CT_SYN_SENT, bpf.DatapathTcpCtStateTCP_CT_SYN_SENT2:
		return "SYN_SENT"
	case bpf.DatapathTcpCtStateTCP_CT_SYN_RECV, bpf.DatapathTcpCtStateTCP_CT_ESTABLISHED:
		return "ESTABLISHED"
	case bpf.DatapathTcpCtStateTCP_CT_FIN_WAIT:
		return "FIN_WAIT_1"
	case bpf.DatapathTcpCtStateTCP_CT_CLOSE_WAIT:
		return "CLOSE_WAIT"
	case bpf.DatapathTcpCtStateTCP_CT_LAST_ACK:
		return "LAST_ACK"
	case bpf.DatapathTcpCtStateTCP_CT_TIME_WAIT:
		return "TIME_WAIT"
	case bpf.DatapathTcpCtStateTCP_CT_CLOSE:
		return "CLOSING"
	}
	return "CLOSED"
}

// TCPStateName is the connection's TCP state as OVS prints it without -m.
func (c *Conn) TCPStateName() string { return tcpStateName(c.TCPState) }

// tcpStateVerbose is OVS's name for a kernel TCP state with -m: mapped
// (netlink-conntrack.c) but not coalesced.
func tcpStateVerbose(s bpf.DatapathTcpCtState) string {
	if s == bpf.DatapathTcpCtStateTCP_CT_SYN_RECV {
		return "SYN_RECV"
	}
	return tcpStateName(s)
}

// tcpFlagNames are OVS's CT_DPIF_TCP_FLAGS, bit by bit.
var tcpFlagNames = []string{"WINDOW_SCALE", "SACK_PERM", "CLOSE_INIT", "BE_LIBERAL", "DATA_UNACKNOWLEDGED", "MAXACK_SET"}

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
	sb.WriteString(protoName(c.Proto))
	sb.WriteString(",orig=(")
	c.tuple(&sb, c.OrigSrc, c.OrigDst, c.OrigSport, c.OrigDport, c.ICMPType)
	if o.Stats {
		counters(&sb, c.Packets[0], c.Bytes[0])
	}
	sb.WriteString("),reply=(")
	c.tuple(&sb, c.OrigDst, c.OrigSrc, c.OrigDport, c.OrigSport, icmpReplyType(c.Proto, c.ICMPType))
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
		st := tcpStateVerbose(c.TCPState)
		fmt.Fprintf(&sb, ",protoinfo=(state_orig=%s,state_reply=%s", st, st)
		if c.WScale[0] != 0 || c.WScale[1] != 0 {
			fmt.Fprintf(&sb, ",wscale_orig=%d,wscale_reply=%d", c.WScale[0], c.WScale[1])
		}
		fmt.Fprintf(&sb, ",flags_orig=%s,flags_reply=%s)", tcpFlagsString(c.TCPFlags[0]), tcpFlagsString(c.TCPFlags[1]))
	} else if c.Proto == 6 {
		fmt.Fprintf(&sb, ",protoinfo=(state=%s)", tcpStateName(c.TCPState))
	}
	return sb.String()
}

// FlushConntrack deletes the connections the filter selects (all when
// the filter is empty) and returns how many went.
func (b *Bridge) FlushConntrack(f CTFilter) (int, error) {
	return b.FlushConntrackProgress(f, nil)
}

// FlushConntrackProgress is FlushConntrack telling progress, if not nil,
// how many entries it has read so far.
func (b *Bridge) FlushConntrackProgress(f CTFilter, progress func(read int)) (int, error) {
	if f.zoneOnly() {
		// In the kernel, where the bridge has ct_flush.
		if n, ok, err := b.flushInKernel(f.Zone); ok || err != nil {
			return n, err
		}
		// Straight from the keys: no connection decoded, expired ones go too.
		keys, _, err := readAllProgress[bpf.DatapathCtKey, bpf.DatapathCtRef](b.maps.Conntrack, progress)
		if err != nil {
			return 0, fmt.Errorf("read conntrack: %w", err)
		}
		if f.Zone != nil {
			keys = slices.DeleteFunc(keys, func(k bpf.DatapathCtKey) bool { return k.Zone != *f.Zone })
		}
		n, err := b.deleteConns(keys)
		if err != nil {
			return n, fmt.Errorf("flush conntrack: %w", err)
		}
		return n, nil
	}
	conns, err := b.liveConns(f.Zone, progress)
	if err != nil {
		return 0, err
	}
	var keys []bpf.DatapathCtKey
	for i := range conns {
		if f.matches(&conns[i]) {
			keys = append(keys, conns[i].key)
		}
	}
	n, err := b.deleteConns(keys)
	if err != nil {
		return n, fmt.Errorf("flush conntrack: %w", err)
	}
	return n, nil
}
