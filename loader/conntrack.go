package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sort"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
)

// Conn is one tracked connection as dpctl prints it, with what the
// loader needs beside: the kernel's TCP state (dpctl's is OVS's mapping
// of it) and the entry's key.
type Conn struct {
	dpctl.Conn
	KernelTCPState bpf.DatapathTcpCtState // nf_conntrack's state, as the datapath tracks it

	key bpf.DatapathCtKey
}

// ovsTCPState maps nf_conntrack's TCP states to OVS's, as
// lib/netlink-conntrack.c does for the kernel datapath (SYN_SENT2 ->
// SYN_SENT, FIN_WAIT -> FIN_WAIT_1, CLOSE -> CLOSING, NONE -> CLOSED).
func ovsTCPState(s bpf.DatapathTcpCtState) dpctl.TCPState {
	switch s {
	case bpf.DatapathTcpCtStateTCP_CT_SYN_SENT, bpf.DatapathTcpCtStateTCP_CT_SYN_SENT2:
		return dpctl.TCPSynSent
	case bpf.DatapathTcpCtStateTCP_CT_SYN_RECV:
		return dpctl.TCPSynRecv
	case bpf.DatapathTcpCtStateTCP_CT_ESTABLISHED:
		return dpctl.TCPEstablished
	case bpf.DatapathTcpCtStateTCP_CT_FIN_WAIT:
		return dpctl.TCPFinWait1
	case bpf.DatapathTcpCtStateTCP_CT_CLOSE_WAIT:
		return dpctl.TCPCloseWait
	case bpf.DatapathTcpCtStateTCP_CT_LAST_ACK:
		return dpctl.TCPLastAck
	case bpf.DatapathTcpCtStateTCP_CT_TIME_WAIT:
		return dpctl.TCPTimeWait
	case bpf.DatapathTcpCtStateTCP_CT_CLOSE:
		return dpctl.TCPClosing
	}
	return dpctl.TCPClosed
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
	st := bpf.DatapathTcpCtState(e.Tcp.State)
	c := Conn{Conn: dpctl.Conn{
		Proto: k.Proto, Zone: k.Zone, ICMPType: e.IcmpType, ICMPCode: e.IcmpCode,
		TCPState: ovsTCPState(st), Mark: e.Mark, Labels: e.Labels, ID: e.Id,
		Packets: e.Packets, Bytes: e.Bytes, Start: wallTime(e.StartNs),
		SeenReply: e.Flags&ctSeenReply != 0, Assured: e.Flags&ctAssured != 0,
		WScale:   [2]uint8{e.Tcp.Side[0].TdScale, e.Tcp.Side[1].TdScale},
		TCPFlags: [2]uint8{e.Tcp.Side[0].Flags & 0x3f, e.Tcp.Side[1].Flags & 0x3f},
	}, KernelTCPState: st, key: *k}
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
	// NAT (bpf/ct_nat.h): the translated endpoint replaces the original
	// source (SNAT) or destination (DNAT) in the reversed tuple.
	t, tp := addrOf(e.NatAddr, k.Family), be16(e.NatPort)
	switch e.Nat {
	case ctNATSrc:
		c.NAT = dpctl.SrcNAT
		c.ReplySrc, c.ReplyDst, c.ReplySport, c.ReplyDport = c.OrigDst, t, c.OrigDport, tp
	case ctNATDst:
		c.NAT = dpctl.DstNAT
		c.ReplySrc, c.ReplyDst, c.ReplySport, c.ReplyDport = t, c.OrigSrc, tp, c.OrigSport
	}
	if c.NAT != dpctl.NoNAT && (k.Proto == 1 || k.Proto == 58) {
		c.ReplySport, c.ReplyDport = tp, tp // ICMP: the identifier is translated, in both
	}
	return c
}

// ct_entry.nat (bpf/common.h's enum ct_nat).
const (
	ctNATSrc = uint8(bpf.DatapathCtNatCT_NAT_SRC)
	ctNATDst = uint8(bpf.DatapathCtNatCT_NAT_DST)
)

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
	sort.Slice(out, func(i, j int) bool { return dpctl.Less(&out[i].Conn, &out[j].Conn) })
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
		if e := &slots[r.Slot]; e.Nat != 0 && keys[i] != e.Okey {
			continue // a NATed connection's second key: one line per connection
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

// FlushConntrack deletes the connections the filter selects (all when
// the filter is empty) and returns how many went. A full tuple
// (dpctl.Filter.FullTuple) that finds no connection is an error wrapping
// syscall.ENOENT, as it is in OVS; one OVS's kernel datapath cannot look
// up is refused with dpctl.Filter.CheckLookup's error (EOPNOTSUPP,
// EINVAL).
func (b *Bridge) FlushConntrack(f dpctl.Filter) (int, error) {
	return b.FlushConntrackProgress(f, nil)
}

// FlushConntrackProgress is FlushConntrack telling progress, if not nil,
// how many entries it has read so far.
func (b *Bridge) FlushConntrackProgress(f dpctl.Filter, progress func(read int)) (int, error) {
	if f.ZoneOnly() {
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
	zone := f.Zone
	if f.FullTuple() {
		// One connection, looked up as ctnetlink does (dpctl.Filter):
		// by either of its tuples, in zone=N or zone 0.
		if err := f.CheckLookup(); err != nil {
			return 0, fmt.Errorf("failed to flush conntrack: %w", err)
		}
		z := f.LookupZone()
		zone = &z
	}
	conns, err := b.liveConns(zone, progress)
	if err != nil {
		return 0, err
	}
	var keys []bpf.DatapathCtKey
	for i := range conns {
		if f.Matches(&conns[i].Conn) {
			keys = append(keys, conns[i].key)
		}
	}
	n, err := b.deleteConns(keys)
	if err != nil {
		return n, fmt.Errorf("flush conntrack: %w", err)
	}
	if n == 0 && f.FullTuple() {
		// OVS fails too: ctnetlink finds no such connection (ENOENT),
		// and dpctl says "failed to flush conntrack".
		return 0, fmt.Errorf("failed to flush conntrack: %w", syscall.ENOENT)
	}
	return n, nil
}
