package bpf_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"golang.org/x/sys/unix"
)

// A cache hit whose ct() is for the TCP connection its entry saw last goes
// straight to that connection's slot (emc.h's hint, conntrack.h's
// ct_execute_ref); anything it cannot finish there must take conntrack
// proper before changing anything. These tests check that the cache changes
// nothing a packet sees or the table records.

// emcCTFlows commit only what comes in on p3, so that p1's packets of a
// committed connection are walks the cache stores (it stores no commit):
// +new ones (no reply seen yet) to p3, established ones to p2.
var emcCTFlows = []string{
	"table=0, priority=10, tcp, ct_state=-trk, actions=ct(table=1)",
	"table=1, priority=20, tcp, in_port=p3, ct_state=+trk+new, actions=ct(commit),p2",
	"table=1, priority=10, tcp, ct_state=+trk+new, actions=p3",
	"table=1, priority=10, tcp, ct_state=+trk+est-rpl, actions=p2",
	"table=1, priority=10, tcp, ct_state=+trk+est+rpl, actions=p1",
}

// send runs frame in on port in: the port it went out of (the highest of
// several; 0: none) and whether the cache carried it.
func (d *dp) send(in uint32, frame []byte) (out uint32, hit bool) {
	d.t.Helper()
	hits, tx := d.counter("emc_hits"), d.txCounts()
	d.ingress(in, frame)
	for p, n := range d.txCounts() {
		if n > tx[p] && p > out {
			out = p
		}
	}
	return out, d.counter("emc_hits") > hits
}

// sendXDP runs frame in on port in as XDP mode does: the XDP program
// first, and the TC program if it passes the packet on. As send, and
// whether XDP's fast path (xdp_fast) finished it.
func (d *dp) sendXDP(in uint32, frame []byte) (out uint32, fast bool) {
	d.t.Helper()
	fast0, tx := d.counter("xdp_fast"), d.txCounts()
	var verdict uint32
	d.onCPU0(func() (err error) {
		verdict, err = d.b.RunXDP(frame, d.ifindex[in])
		return err
	})
	if verdict == loader.XDPPass {
		d.ingress(in, frame)
	}
	for p, n := range d.txCounts() {
		if n > tx[p] && p > out {
			out = p
		}
	}
	fast = d.counter("xdp_fast") > fast0
	if fast && verdict != loader.XDPRedirect && verdict != loader.XDPDrop {
		d.t.Errorf("XDP's fast path finished the packet with verdict %d", verdict)
	}
	return out, fast
}

// monoNow is CLOCK_MONOTONIC, the datapath's clock, in nanoseconds.
func monoNow(t testing.TB) uint64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return uint64(ts.Nano())
}

// ctTimeouts remembers, per connection, the expiry ctTable last saw and the
// timeout it printed for it.
type ctTimeouts map[bpf.DatapathCtKey]struct {
	expires uint64
	shown   string
}

// ctTable is the connection table in full, one line per connection: key,
// TCP tracking, flags, counters, mark, labels and the timeout, but not what
// differs between two runs (start, id, slot, gen). The timeout is what the
// connection's last update set: an expiry that changed since the previous
// table is counted from sent (CLOCK_MONOTONIC just before this step's
// packet) in whole 5 s (the kernel's timeouts are multiples of 5 s): it may
// be up to 1 s less (the datapath's clock is coarse) or 4 s more (a slow VM
// between sent and the update) and still show the same; an unchanged one
// keeps what it showed. Reading the clock now instead made the table depend
// on how long the run took (a failure in the Linux 6.1 VM under load).
func (d *dp) ctTable(sent uint64, seen ctTimeouts) string {
	d.t.Helper()
	ct, slots := d.pinnedMap("conntrack"), d.pinnedMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	var lines []string
	var k bpf.DatapathCtKey
	var r bpf.DatapathCtRef
	it := ct.Iterate()
	for it.Next(&k, &r) {
		var e bpf.DatapathCtEntry
		if err := slots.Lookup(r.Slot, &e); err != nil {
			d.t.Fatal(err)
		}
		last, ok := seen[k]
		if !ok || last.expires != e.ExpiresNs {
			last.expires = e.ExpiresNs
			if e.ExpiresNs < sent {
				last.shown = "expired"
			} else {
				last.shown = fmt.Sprintf("%ds", (e.ExpiresNs-sent+uint64(time.Second))/uint64(5*time.Second)*5)
			}
			seen[k] = last
		}
		lines = append(lines, fmt.Sprintf("%+v tcp %+v flags %#x packets %v bytes %v mark %d labels %x timeout %s",
			k, e.Tcp, e.Flags, e.Packets, e.Bytes, e.Mark, e.Labels, last.shown))
	}
	if err := it.Err(); err != nil {
		d.t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// TestEMCConntrackTCP sends the same TCP exchanges with the cache on and
// off and compares, after every packet, where it went and the whole
// connection table: the cache's way to a connection (hits for the open,
// data, retransmissions, an out-of-window segment, a killing RST, a SYN
// reopening a closed connection, a connection gone from its slot, an
// expired one) must agree with conntrack's own.
func TestEMCConntrackTCP(t *testing.T) {
	d := newDP(t)
	d.setFlows(emcCTFlows...)

	type step struct {
		name string
		do   func(s, s3 *tcpSession) (in uint32, frame []byte)
	}
	seg := func(side int, flags string) func(s, _ *tcpSession) (uint32, []byte) {
		return func(s, _ *tcpSession) (uint32, []byte) { return s.seg(side, flags, false) }
	}
	via := func(in uint32, f func(s, s3 *tcpSession) (uint32, []byte)) func(s, s3 *tcpSession) (uint32, []byte) {
		return func(s, s3 *tcpSession) (uint32, []byte) { _, b := f(s, s3); return in, b }
	}
	// act: not a packet, something done to the table.
	act := func(f func()) func(s, _ *tcpSession) (uint32, []byte) {
		return func(*tcpSession, *tcpSession) (uint32, []byte) { f(); return 0, nil }
	}
	resyn := func(s, _ *tcpSession) (uint32, []byte) { return s.seg(client, "S", true) }
	flush := act(func() {
		if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
			t.Fatal(err)
		}
	})
	steps := []step{
		{"client SYN, committed (p3)", via(3, seg(client, "S"))},
		{"client SYN retransmitted (p1: stored)", resyn},
		{"client SYN retransmitted again (p1: hit)", resyn},
		{"server SYN/ACK", seg(server, "SA")},
		{"client ACK (was +new: full walk)", seg(client, "A")},
		{"client data", seg(client, "PA")},
		{"server ACK", seg(server, "A")},
		{"client data again", seg(client, "PA")},
		{"server data", seg(server, "PA")},
		// The fast path's edges (conntrack.h: tcp_fast_ack): a
		// retransmission (counted), ECE, CWR and URG (taken), a SYN
		// (not: ignored, it changes last_index), an ACK from long ago
		// and old data (not: ignored), an ACK of data not sent (not:
		// invalid).
		{"server data retransmitted", func(s, _ *tcpSession) (uint32, []byte) { return s.seg(server, "PA", true) }},
		{"server data retransmitted again", func(s, _ *tcpSession) (uint32, []byte) { return s.seg(server, "PA", true) }},
		{"client ACK with ECE and CWR", seg(client, "AEC")},
		{"client data with URG", seg(client, "PAU")},
		{"client SYN in ESTABLISHED (ignored)", func(s, _ *tcpSession) (uint32, []byte) { return s.seg(client, "S", true) }},
		{"client ACK after it", seg(client, "A")},
		{"client ACK of long ago (ignored)", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[server] -= 100000
			defer func() { s.next[server] += 100000 }()
			return s.seg(client, "A", false)
		}},
		{"client old data (ignored)", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[client] -= 200000
			defer func() { s.next[client] += 200000 }()
			return s.seg(client, "A", false)
		}},
		{"client ACK of data not sent (invalid)", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[server] += 100000
			defer func() { s.next[server] -= 100000 }()
			return s.seg(client, "A", false)
		}},
		{"client data out of the window", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[client] += 1 << 30
			in, b := s.seg(client, "PA", false)
			s.next[client] -= 1<<30 + 10
			return in, b
		}},
		{"client data after it", seg(client, "PA")},
		{"client FIN", seg(client, "FA")},
		{"server ACK of the FIN", seg(server, "A")},
		{"server FIN", seg(server, "FA")},
		{"client last ACK", seg(client, "A")},
		{"client SYN reopening TIME_WAIT (p1: not committed)", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[client] += 100000
			return s.seg(client, "S", false)
		}},
		// A connection with no reply: its own RST kills it.
		{"client SYN of a new connection, committed", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[client] += 100000
			_, b := s.seg(client, "S", false)
			return 3, b
		}},
		{"client SYN retransmitted (p1)", resyn},
		{"client RST, killing it", func(s, _ *tcpSession) (uint32, []byte) {
			s.next[client]-- // the RST at the SYN's sequence number
			return s.seg(client, "R", false)
		}},
		{"client SYN retransmitted after the kill", resyn},
		// The slot changes hands: the cache's reference is stale.
		{"client SYN again, committed", via(3, resyn)},
		{"client SYN retransmitted (p1: stored)", resyn},
		{"flush", flush},
		{"another client's SYN, committed (the freed slot)", func(_, s3 *tcpSession) (uint32, []byte) {
			_, b := s3.seg(client, "S", false)
			return 3, b
		}},
		{"the first client's SYN (stale reference)", resyn},
		{"the first client's SYN again", resyn},
		// An expired connection is gone, cached or not.
		{"flush", flush},
		{"client SYN, committed once more", via(3, resyn)},
		{"client SYN retransmitted (p1)", resyn},
		{"it expires", act(func() { d.editConn(func(e *bpf.DatapathCtEntry) { e.ExpiresNs = 1 }) })},
		{"client SYN after the expiry", resyn},
	}

	// Three ways: through TC with the cache and without, and as XDP mode
	// does (xdp_fast on the cache's entries, TC for what it passes on).
	run := func(cache, xdp bool) (log []string, hits []bool) {
		if err := d.b.SetFlowCache(cache); err != nil {
			t.Fatal(err)
		}
		if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
			t.Fatal(err)
		}
		s, s3 := newTCPSession(), newTCPSession()
		s3.ip[client] = ip3
		inv0, exp0 := d.counter("ct_invalid"), d.counter("ct_expired_removed")
		seen := ctTimeouts{}
		for _, st := range steps {
			sent := monoNow(t)
			in, frame := st.do(s, s3)
			line := st.name
			hit := false
			if frame != nil {
				var out uint32
				if xdp {
					out, hit = d.sendXDP(in, frame)
				} else {
					out, hit = d.send(in, frame)
				}
				line += fmt.Sprintf(": out p%d", out)
			}
			line += fmt.Sprintf("; ct_invalid +%d, ct_expired_removed +%d",
				d.counter("ct_invalid")-inv0, d.counter("ct_expired_removed")-exp0)
			log = append(log, line+"\n"+d.ctTable(sent, seen))
			hits = append(hits, hit)
		}
		return log, hits
	}
	with, hits := run(true, false)
	without, _ := run(false, false)
	viaXDP, fast := run(true, true)
	nhits, nfast := 0, 0
	for i := range steps {
		if hits[i] {
			nhits++
		}
		if fast[i] {
			nfast++
		}
		if with[i] != without[i] {
			t.Errorf("step %d, with the cache:\n%s\nwithout:\n%s", i, with[i], without[i])
		}
		if viaXDP[i] != without[i] {
			t.Errorf("step %d, XDP's fast path and TC:\n%s\nTC without the cache:\n%s", i, viaXDP[i], without[i])
		}
	}
	// XDP finishes what the cache carries but for what it would have to
	// change more than a connection's tracking for: the killing RST.
	for i, want := range map[int]bool{
		2: true, 6: true, 7: true, 8: true, 9: true, 16: true,
		27: false, // the RST: conntrack removes the connection (TC's)
		33: true,  // +new, as stored: a lookup, nothing to update
	} {
		if fast[i] != want {
			t.Errorf("step %d (%s): XDP fast path %v, want %v", i, steps[i].name, fast[i], want)
		}
	}
	t.Logf("%d of %d steps finished in XDP", nfast, len(steps))
	// The cache must have carried the exchange: every step the cache can
	// take (a repeated walk whose ct() result did not change) was a hit.
	for i, want := range map[int]bool{
		2: true, 6: true, 7: true, 8: true, // established and retransmitted SYNs
		9: true, 10: true, 11: true, 12: true, 13: true, 14: true, 15: true, 16: true, // the fast path's edges
		19: false, // after the invalid segments, whose walk the cache now holds
		27: true,  // the RST killing its connection
		33: true,  // the stale reference: +new, as stored
	} {
		if hits[i] != want {
			t.Errorf("step %d (%s): cache hit %v, want %v", i, steps[i].name, hits[i], want)
		}
	}
	t.Logf("%d of %d steps were cache hits", nhits, len(steps))
	if testing.Verbose() {
		t.Log(strings.Join(with, "\n"))
	}
}

// TestEMCConntrackHint: a hit for the connection its cache entry saw last
// goes to the connection's slot, not through the conntrack hash. With the
// key taken out of the hash behind the datapath's back, conntrack proper
// would find no connection (+new, to p3); the hit still finds it, through
// the slot, and counts the packet there.
func TestEMCConntrackHint(t *testing.T) {
	d := newDP(t)
	d.setFlows(emcCTFlows...)
	s := newTCPSession()
	for i, st := range []struct {
		side  int
		flags string
		in    uint32
	}{{client, "S", 3}, {server, "SA", 2}, {client, "A", 1}, {client, "PA", 1}} {
		_, frame := s.seg(st.side, st.flags, false)
		if out, _ := d.send(st.in, frame); out == 0 {
			t.Fatalf("packet %d dropped", i)
		}
	}
	k, r, before := d.onlyConn("established")
	ct := d.pinnedMap("conntrack")
	defer ct.Close()
	if err := ct.Delete(&k); err != nil {
		t.Fatal(err)
	}
	_, frame := s.seg(client, "PA", false)
	if out, hit := d.send(1, frame); out != 2 || !hit {
		t.Fatalf("data with the key gone from the hash: out p%d, cache hit %v; want p2 through the slot", out, hit)
	}
	slots := d.pinnedMap("ct_slots")
	defer slots.Close()
	var after bpf.DatapathCtEntry
	if err := slots.Lookup(r.Slot, &after); err != nil {
		t.Fatal(err)
	}
	if after.Gen != r.Gen || after.Packets[0] != before.Packets[0]+1 {
		t.Errorf("slot %d: gen %d -> %d, orig packets %d -> %d; want the same gen, one packet more",
			r.Slot, r.Gen, after.Gen, before.Packets[0], after.Packets[0])
	}
}
