package bpf_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestConntrackConcurrentDirections runs the two directions of one TCP
// connection on two CPUs at once, the way a busy hypervisor does: the
// client streams data within the window the server's ACKs open, the server
// ACKs what the client has sent. Every segment is valid, so every one must
// be +est. An update lost to a race (a CPU writing back tracking it copied
// before the other CPU's update) moves a window edge back and turns a
// later valid segment +inv; conntrack.h's tcp_update prevents that.
// Both ways an owner can release the entry run: the plain store amd64
// uses, and the atomic add of other architectures.
func TestConntrackConcurrentDirections(t *testing.T) {
	if runtime.NumCPU() < 2 {
		// CI's VMs have 2 vCPUs: there a single CPU is a broken setup,
		// not a machine this test does not apply to.
		if os.Getenv(testenv.RequirePrivilegedEnv) == "1" {
			t.Fatalf("needs 2 CPUs, have %d (%s=1: the test must run)", runtime.NumCPU(), testenv.RequirePrivilegedEnv)
		}
		t.Skip("needs 2 CPUs")
	}
	for _, atomicRelease := range []bool{false, true} {
		t.Run(map[bool]string{false: "release=" + runtime.GOARCH, true: "release=atomic"}[atomicRelease], func(t *testing.T) {
			testConcurrentDirections(t, newDPWith(t, 4096, 16384, func(o *loader.Options) { o.AtomicRelease = atomicRelease }))
		})
	}
}

func testConcurrentDirections(t *testing.T, d *dp) {
	d.setFlows(
		"table=0, priority=10, tcp, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, tcp, ct_state=+trk+new, in_port=1, actions=ct(commit),output:2",
		"table=1, priority=10, tcp, ct_state=+trk+est, in_port=1, actions=output:2",
		"table=1, priority=10, tcp, ct_state=+trk+est, in_port=2, actions=output:1",
	)
	const (
		win     = 4000 // no window scaling: the window is this many bytes
		payload = 1000
		isnA    = 1000
		isnB    = 5000
		rounds  = 12000 // each of the two releases: ~13 s a run under TCG
	)
	seg := func(fromA bool, flags string, seq, ack uint32, n int) []byte {
		s := testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "tcp",
			SrcPort: 42100, DstPort: 5000, TCPFlags: flags, Seq: seq, Ack: ack, Window: win, Payload: make([]byte, n)}
		if !fromA {
			s.SrcMAC, s.DstMAC, s.SrcIP, s.DstIP, s.SrcPort, s.DstPort = mac2, mac1, ip2, ip1, 5000, 42100
		}
		return testenv.Build(s)
	}
	for _, p := range []struct {
		in    uint32
		frame []byte
	}{
		{1, seg(true, "S", isnA, 0, 0)},
		{2, seg(false, "SA", isnB, isnA+1, 0)},
		{1, seg(true, "A", isnA+1, isnB+1, 0)},
	} {
		if st := d.run(p.in, p.frame).Trace.CtState; st&csInv != 0 {
			t.Fatalf("handshake: ct_state %#x", st)
		}
	}

	// sent: the client's bytes the datapath accepted (the server may ACK
	// them); acked: the highest ACK the datapath accepted from the server
	// (the client may send up to acked + win).
	var sent, acked atomic.Uint32
	sent.Store(isnA + 1)
	acked.Store(isnA + 1)
	var wg sync.WaitGroup
	// Per CPU: the segments run (a full window skips a round), those
	// found invalid, and the bytes of those redirected.
	ran, invalid := make([]int, 2), make([]int, 2)
	delivered := make([]uint64, 2)
	errs := make([]error, 2)
	for cpu := 0; cpu < 2; cpu++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[cpu] = d.ns.Do(func() error {
				var old, one unix.CPUSet
				if err := unix.SchedGetaffinity(0, &old); err != nil {
					return err
				}
				one.Set(cpu)
				if err := unix.SchedSetaffinity(0, &one); err != nil {
					return err
				}
				defer unix.SchedSetaffinity(0, &old)
				for i := 0; i < rounds; i++ {
					var in uint32
					var frame []byte
					if cpu == 0 {
						seq := sent.Load()
						if seq+payload > acked.Load()+win {
							runtime.Gosched() // the window is full: wait for ACKs
							continue
						}
						in, frame = 1, seg(true, "PA", seq, isnB+1, payload)
					} else {
						in, frame = 2, seg(false, "A", isnB+1, sent.Load(), 0)
					}
					_, verdict, err := d.b.RunIngress(frame, d.ifindex[in], 1)
					if err != nil {
						return err
					}
					ran[cpu]++
					if verdict != loader.TCActRedirect {
						invalid[cpu]++
						continue
					}
					delivered[cpu] += uint64(len(frame) - 14) // conntrack counts from the IP header (frames untagged, unpadded)
					if cpu == 0 {
						sent.Add(payload)
					} else if ack := segAck(frame); ack > acked.Load() {
						acked.Store(ack)
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	for cpu, err := range errs {
		if err != nil {
			t.Fatalf("CPU %d: %v", cpu, err)
		}
	}
	// A packet that loses CT_TRIES races in a row (possible here, where a
	// test-run program can be preempted mid-update) is +inv on purpose
	// and counted as ct_race; any other invalid segment is a lost update.
	total := ran[0] + ran[1]
	races := d.counter("ct_race")
	if uint64(invalid[0]+invalid[1]) > races {
		t.Errorf("valid segments dropped as invalid: %d of %d from the client, %d of %d ACKs from the server, only %d of them after lost races; %s",
			invalid[0], ran[0], invalid[1], ran[1], races, d.counterLine())
	}
	// But races are rare: an owner holds the entry for a few hundred
	// instructions and a loser spins through CT_TRIES tries (~17 ms on
	// this 2-vCPU development machine) before it gives up, so a race is
	// lost only when the owner's CPU is taken away in mid-update for
	// longer than that. Outside the vmtest guests (0 in 8 runs on the
	// loaded development machine, itself a VM) at most 3, for a rare
	// preemption by the host's hypervisor: a single try with no spin
	// loses 11-47 of ~24,000. Under TCG, where the host deschedules a
	// vCPU whenever it likes, 1%: that still fails a datapath that drops
	// concurrent packets as races wholesale.
	limit, bound := uint64(3), "3"
	if testenv.InVM() {
		limit, bound = uint64(total/100), "1%"
	}
	if races > limit {
		t.Errorf("%d of %d segments lost CT_TRIES races, more than %s (%d); %s", races, total, bound, limit, d.counterLine())
	}
	// Every segment not counted invalid went out of the other port, and
	// conntrack counted it and its bytes on the connection: the tx
	// counter of its output port, the +est flow of its direction and the
	// connection's counters moved once per redirect (and for the
	// handshake's packets), the connection's bytes by its IP packet's.
	tx := d.txCounts()
	flows := d.flowPackets() // dump order: table 0's flow, then table 1's by priority, install order
	_, _, e := d.onlyConn("after the run")
	// Bytes as nf_conntrack counts them: the IP packet, without the
	// 14-byte Ethernet header.
	hsBytes := [2]uint64{uint64(len(seg(true, "S", isnA, 0, 0)) - 14 + len(seg(true, "A", isnA+1, isnB+1, 0)) - 14), uint64(len(seg(false, "SA", isnB, isnA+1, 0)) - 14)}
	for cpu, c := range []struct {
		what           string
		port, flow     int
		hsPkts, fwdPkt uint64
	}{
		{"client segments", 2, 2, 2, 1}, // S (+new, its own flow), A
		{"server ACKs", 1, 3, 1, 1},     // SA
	} {
		ok := uint64(ran[cpu] - invalid[cpu])
		if got := tx[uint32(c.port)]; got != ok+c.hsPkts {
			t.Errorf("%s: %d redirected, port %d sent %d (want %d with the handshake's)", c.what, ok, c.port, got, ok+c.hsPkts)
		}
		if got := flows[c.flow]; got != ok+c.fwdPkt {
			t.Errorf("%s: %d redirected, its +est flow matched %d (want %d with the handshake's)", c.what, ok, got, ok+c.fwdPkt)
		}
		if e.Packets[cpu] != ok+c.hsPkts || e.Bytes[cpu] != delivered[cpu]+hsBytes[cpu] {
			t.Errorf("%s: %d redirected, %d bytes (and %d packets, %d bytes of the handshake); the connection counted %d packets, %d bytes",
				c.what, ok, delivered[cpu], c.hsPkts, hsBytes[cpu], e.Packets[cpu], e.Bytes[cpu])
		}
	}
	if ran[0] == 0 || ran[1] == 0 {
		t.Errorf("segments run: %d from the client, %d from the server", ran[0], ran[1])
	}
	t.Logf("client sent %d bytes in %d of %d rounds, server %d ACKs; %s", sent.Load()-isnA-1, ran[0], rounds, ran[1], d.counterLine())
}

// segAck reads the ACK number of an untagged IPv4 TCP frame built above.
func segAck(frame []byte) uint32 {
	b := frame[14+20+8:]
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func (d *dp) counterLine() string {
	return fmt.Sprintf("ct_invalid %d, ct_race %d", d.counter("ct_invalid"), d.counter("ct_race"))
}

// editConn changes the table's only connection, straight in its pinned
// slot, and returns its key.
func (d *dp) editConn(edit func(*bpf.DatapathCtEntry)) bpf.DatapathCtKey {
	d.t.Helper()
	k, r, e := d.onlyConn("edit")
	edit(&e)
	slots := d.pinnedMap("ct_slots")
	defer slots.Close()
	if err := slots.Put(r.Slot, &e); err != nil {
		d.t.Fatal(err)
	}
	return k
}

// onlyConn reads the table's only connection: its key, the reference the
// key holds and the slot's entry, which must be the one referred to.
func (d *dp) onlyConn(what string) (bpf.DatapathCtKey, bpf.DatapathCtRef, bpf.DatapathCtEntry) {
	d.t.Helper()
	ct, slots := d.pinnedMap("conntrack"), d.pinnedMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	var k bpf.DatapathCtKey
	var r bpf.DatapathCtRef
	var e bpf.DatapathCtEntry
	it := ct.Iterate()
	if !it.Next(&k, &r) {
		d.t.Fatalf("%s: no connection: %v", what, it.Err())
	}
	if it.Next(new(bpf.DatapathCtKey), new(bpf.DatapathCtRef)) {
		d.t.Fatalf("%s: more than one connection", what)
	}
	if err := slots.Lookup(r.Slot, &e); err != nil {
		d.t.Fatal(err)
	}
	if e.Gen != r.Gen {
		d.t.Fatalf("%s: slot %d holds gen %d, the key's reference says %d", what, r.Slot, e.Gen, r.Gen)
	}
	return k, r, e
}

func (d *dp) pinnedMap(name string) *ebpf.Map {
	d.t.Helper()
	m, err := ebpf.LoadPinnedMap(filepath.Join(d.opts.BPFFS, d.opts.Bridge, name), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// TestConntrackDryRunOwned: a dry run (ebpfovs trace) works on a copy of
// the connection; a copy taken while another CPU owns the entry (its seq
// odd) must not look owned, or the trace would spin on it and report
// +inv and a race. An update of the entry itself does wait for the owner.
func TestConntrackDryRunOwned(t *testing.T) {
	d := newDP(t)
	ack := conntrackBenchSetup(t, d, newTCPSession())
	setSeq := func(odd bool) {
		d.editConn(func(e *bpf.DatapathCtEntry) { e.Seq = e.Seq&^1 | map[bool]uint64{true: 1}[odd] })
	}
	setSeq(true) // as if another CPU were updating it
	var res *loader.TraceResult
	if err := d.ns.Do(func() (err error) {
		res, err = d.b.RunTrace(ack, d.ifindex[1], true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st := res.Trace.CtState; st != csTrk|csEst {
		t.Errorf("dry run of an ACK on an owned entry: ct_state %#x, want +trk+est", st)
	}
	if n := d.counter("ct_race"); n != 0 {
		t.Errorf("dry run: ct_race = %d, want 0", n)
	}
	if st := d.run(1, ack).Trace.CtState; st != csTrk|csInv || d.counter("ct_race") != 1 {
		t.Errorf("an update of an entry owned throughout: ct_state %#x, ct_race %d; want +trk+inv, 1", st, d.counter("ct_race"))
	}
	setSeq(false)
	if st := d.run(1, ack).Trace.CtState; st != csTrk|csEst {
		t.Errorf("after the owner released it: ct_state %#x, want +trk+est", st)
	}
}

// TestCTDumpLeavesNothingExpired: a connection a dump leaves out as
// expired is gone from the table, so no packet finds it afterwards: ct_gc
// judges expiry by the time the loader judges the dump by, not by the
// datapath's coarse clock, which lags it by up to a tick.
func TestCTDumpLeavesNothingExpired(t *testing.T) {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	d.run(1, udpFrame(1, 53))
	var now unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
		t.Fatal(err)
	}
	k := d.editConn(func(e *bpf.DatapathCtEntry) { e.ExpiresNs = uint64(now.Nano()) })
	if got := len(d.conns()); got != 0 {
		t.Fatalf("%d connections dumped after the only one expired", got)
	}
	ct := d.pinnedMap("conntrack")
	defer ct.Close()
	var r bpf.DatapathCtRef
	if err := ct.Lookup(&k, &r); err == nil {
		t.Errorf("the dump left the expired connection out, but it is still in the table (slot %d)", r.Slot)
	}
	if got := d.nconns(); got != 0 {
		t.Errorf("%d connections counted", got)
	}
}
