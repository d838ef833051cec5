package bpf_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// ctLimitFlows commit UDP connections: to port 7 in zone 7, to port 8 in
// zone 8, to port 9 in zone 9, anything else in zone 0.
var ctLimitFlows = []string{
	"table=0, priority=20, udp, tp_dst=7, ct_state=-trk, actions=ct(zone=7,table=1)",
	"table=0, priority=20, udp, tp_dst=8, ct_state=-trk, actions=ct(zone=8,table=1)",
	"table=0, priority=20, udp, tp_dst=9, ct_state=-trk, actions=ct(zone=9,table=1)",
	"table=0, priority=10, udp, ct_state=-trk, actions=ct(table=1)",
	"table=1, priority=20, udp, tp_dst=7, ct_state=+trk+new, actions=ct(commit,zone=7),p2",
	"table=1, priority=20, udp, tp_dst=8, ct_state=+trk+new, actions=ct(commit,zone=8),p2",
	"table=1, priority=20, udp, tp_dst=9, ct_state=+trk+new, actions=ct(commit,zone=9),p2",
	"table=1, priority=10, udp, ct_state=+trk+new, actions=ct(commit),p2",
	"table=1, priority=5, udp, ct_state=+trk, actions=p2",
}

func udpFrame(sport, dport uint16) []byte {
	return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: sport, DstPort: dport})
}

// counter reads one datapath counter by name.
func (d *dp) counter(name string) uint64 {
	d.t.Helper()
	cs, err := d.b.Counters()
	if err != nil {
		d.t.Fatal(err)
	}
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	d.t.Fatalf("no counter %s", name)
	return 0
}

func (d *dp) nconns() uint32 {
	d.t.Helper()
	n, err := d.b.NConns()
	if err != nil {
		d.t.Fatal(err)
	}
	return n
}

func (d *dp) zoneCount(zone uint16) dpctl.ZoneLimit {
	d.t.Helper()
	l, err := d.b.GetCTLimits([]uint16{zone})
	if err != nil {
		d.t.Fatal(err)
	}
	return l.Zones[0]
}

// TestCTMaxConns: a commit beyond maxconns is refused (the packet stays
// +trk+new, nothing stored), counted; a flushed connection makes room.
func TestCTMaxConns(t *testing.T) {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	if n, err := d.b.MaxConns(); err != nil || n != 16384 {
		t.Fatalf("a new bridge's maxconns: %d, %v; want the table size 16384", n, err)
	}
	if err := d.b.SetMaxConns(3); err != nil {
		t.Fatal(err)
	}
	for sport := uint16(1); sport <= 3; sport++ {
		d.run(1, udpFrame(sport, 53))
	}
	if got := d.nconns(); got != 3 {
		t.Fatalf("3 commits under maxconns 3: %d connections", got)
	}
	res := d.run(1, udpFrame(4, 53))
	if res.Trace.CtState != csTrk|csNew {
		t.Errorf("refused commit: ct_state %#x, want +trk+new", res.Trace.CtState)
	}
	if got := len(d.conns()); got != 3 {
		t.Fatalf("the 4th commit was stored: %d connections", got)
	}
	if got := d.counter("ct_maxconns_refused"); got != 1 {
		t.Errorf("ct_maxconns_refused = %d, want 1", got)
	}
	if got := d.counter("ct_table_full"); got != 0 {
		t.Errorf("ct_table_full = %d, want 0", got)
	}
	// Flushing one connection takes it off the count: the next commit fits.
	f, err := dpctl.ParseFilter([]string{"ct_nw_proto=17,ct_tp_src=2"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := d.b.FlushConntrack(f); err != nil || n != 1 {
		t.Fatalf("flush one: %d, %v", n, err)
	}
	if got := d.nconns(); got != 2 {
		t.Fatalf("after flushing one of 3: %d connections counted", got)
	}
	d.run(1, udpFrame(4, 53))
	if got := len(d.conns()); got != 3 {
		t.Fatalf("after the flush the commit must fit: %d connections", got)
	}
	if err := d.b.SetMaxConns(16385); err == nil {
		t.Errorf("maxconns above the table size was accepted")
	}
	if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
		t.Fatal(err)
	}
	if got := d.nconns(); got != 0 {
		t.Fatalf("after flushing everything: %d connections counted", got)
	}
}

// TestCTZoneLimits: a zone's own limit, the default for zones without one,
// 0 as unlimited, counts per zone, and deletion of a zone's limit.
func TestCTZoneLimits(t *testing.T) {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	def := uint32(1)
	if err := d.b.SetCTLimits(dpctl.Limits{Default: &def, Zones: []dpctl.ZoneLimit{{Zone: 7, Limit: 2}, {Zone: 0, Limit: 0}}}); err != nil {
		t.Fatal(err)
	}
	for sport := uint16(1); sport <= 3; sport++ {
		d.run(1, udpFrame(sport, 7)) // zone 7: 2 fit
		d.run(1, udpFrame(sport, 8)) // zone 8, the default: 1 fits
		d.run(1, udpFrame(sport, 53))
	}
	for zone, want := range map[uint16]dpctl.ZoneLimit{
		7: {Zone: 7, Limit: 2, Count: 2},
		8: {Zone: 8, Limit: 1, Count: 1},
		0: {Zone: 0, Limit: 0, Count: 3}, // 0: unlimited
	} {
		if got := d.zoneCount(zone); got != want {
			t.Errorf("zone %d: %+v, want %+v", zone, got, want)
		}
	}
	if got := d.counter("ct_zone_limit_refused"); got != 3 {
		t.Errorf("ct_zone_limit_refused = %d, want 3", got)
	}
	if got := d.nconns(); got != 6 {
		t.Errorf("%d connections, want 6", got)
	}
	l, err := d.b.GetCTLimits(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *l.Default != 1 || len(l.Zones) != 2 || l.Zones[0] != (dpctl.ZoneLimit{Zone: 0, Limit: 0, Count: 3}) || l.Zones[1] != (dpctl.ZoneLimit{Zone: 7, Limit: 2, Count: 2}) {
		t.Errorf("get-limits without zones: %+v", l)
	}
	// Zone 7 without its own limit takes the default (1), which 2 exceed:
	// they stay, new ones are refused.
	if err := d.b.DelCTLimits([]uint16{7, 99}); err != nil {
		t.Fatal(err)
	}
	d.run(1, udpFrame(10, 7))
	if got := d.zoneCount(7); got != (dpctl.ZoneLimit{Zone: 7, Limit: 1, Count: 2}) {
		t.Errorf("zone 7 after ct-del-limits: %+v", got)
	}
}

// newShortUDPZoneDP is a datapath with ctLimitFlows, where zone 9's
// UDP connections time out after 10 s, the others after the default 30 s:
// ageConns(shortUDPAge) expires zone 9's, and only them.
func newShortUDPZoneDP(t *testing.T) *dp {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	set, err := loader.ParseTimeouts([]string{"udp_first=10"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.b.SetCTTimeouts(9, set); err != nil {
		t.Fatal(err)
	}
	return d
}

// shortUDPAge is past zone 9's 10 s UDP timeout; aged by it twice (22 s),
// the other zones' connections, at the default 30 s, still live.
const shortUDPAge = 11 * time.Second

// TestCTCountExpiry: expired connections leave the counts, whoever
// removes them: a dump (the loader), the packet that finds its own
// connection expired, or the datapath's sweep when a commit finds no room.
func TestCTCountExpiry(t *testing.T) {
	d := newShortUDPZoneDP(t)
	if err := d.b.SetMaxConns(3); err != nil {
		t.Fatal(err)
	}
	d.run(1, udpFrame(1, 53)) // zone 0, lives on
	d.run(1, udpFrame(1, 9))
	d.run(1, udpFrame(2, 9))
	if got := d.zoneCount(9).Count; got != 2 {
		t.Fatalf("zone 9: %d connections, want 2", got)
	}
	d.ageConns(shortUDPAge)
	// The datapath: a packet of an expired connection removes it (and
	// commits it anew). Nothing else has looked at the table.
	d.run(1, udpFrame(1, 9))
	if got := d.counter("ct_expired_removed"); got != 1 {
		t.Errorf("ct_expired_removed = %d, want 1", got)
	}
	// The table holds 3 (maxconns), one of them expired: the next commit
	// sweeps it away and fits.
	d.run(1, udpFrame(2, 53))
	if got := d.counter("ct_maxconns_refused"); got != 0 {
		t.Errorf("the sweep did not make room: ct_maxconns_refused = %d", got)
	}
	if got := d.counter("ct_expired_removed"); got != 2 {
		t.Errorf("ct_expired_removed = %d, want 2", got)
	}
	if got := d.nconns(); got != 3 {
		t.Errorf("%d connections counted, want 3", got)
	}
	if got := len(d.conns()); got != 3 {
		t.Errorf("%d connections in the table, want 3", got)
	}
	// The loader: what reports counts (ct-get-nconns, ct-get-limits) or
	// dumps removes what expired since, by the datapath's ct_gc.
	d.ageConns(shortUDPAge)
	if got := d.nconns(); got != 2 {
		t.Errorf("%d connections counted, want 2", got)
	}
	if got := d.counter("ct_expired_removed"); got != 3 {
		t.Errorf("ct_expired_removed = %d after ct-get-nconns, want 3 (ct_gc counts what it removes)", got)
	}
	if got := d.zoneCount(9).Count; got != 0 {
		t.Errorf("zone 9 counts %d after its connections expired", got)
	}
	if got := len(d.conns()); got != 2 {
		t.Errorf("after zone 9's expired: %d connections, want 2", got)
	}
	// Zone 0's default 30 s: the first connection, 31 s old now, is gone;
	// the one committed after the first ageing (20 s) lives on.
	d.ageConns(9 * time.Second)
	if got := d.nconns(); got != 1 {
		t.Errorf("31 s after its last packet, past the default UDP timeout: %d connections counted, want 1", got)
	}
}

// TestCTGCFallback: a bridge pinned before ct_gc existed still has its
// expired connections removed before counts are reported or a dump (by
// key, from userspace).
func TestCTGCFallback(t *testing.T) {
	d := newShortUDPZoneDP(t)
	if err := os.Remove(filepath.Join(d.opts.BPFFS, d.opts.Bridge, "prog_ct_gc")); err != nil {
		t.Fatal(err)
	}
	d.run(1, udpFrame(1, 9))
	d.run(1, udpFrame(1, 53))
	d.ageConns(shortUDPAge)
	if got := d.nconns(); got != 1 {
		t.Errorf("%d connections counted after one expired, want 1", got)
	}
	if c := d.conns(); len(c) != 1 || c[0].OrigDport != 53 {
		t.Errorf("after zone 9's expired: %v, want the one to port 53", c)
	}
	if got := d.counter("ct_expired_removed"); got != 0 {
		t.Errorf("ct_expired_removed = %d: the datapath removed it, not the loader", got)
	}
}

// TestCTFlushZone: flush-conntrack zone=N and flush-conntrack remove in
// the kernel (ct_flush) what they select, keep the counts right, and say
// how many went; a bridge pinned before ct_flush existed gets the same
// from userspace.
func TestCTFlushZone(t *testing.T) {
	for _, inKernel := range []bool{true, false} {
		t.Run(map[bool]string{true: "ct_flush", false: "old-bridge"}[inKernel], func(t *testing.T) {
			d := newDP(t)
			d.setFlows(ctLimitFlows...)
			if !inKernel {
				if err := os.Remove(filepath.Join(d.opts.BPFFS, d.opts.Bridge, "prog_ct_flush")); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint16(1); i <= 3; i++ {
				d.run(1, udpFrame(i, 7))
				d.run(1, udpFrame(i, 8))
			}
			d.run(1, udpFrame(1, 53)) // zone 0
			zone := uint16(7)
			if n, err := d.b.FlushConntrack(dpctl.Filter{Zone: &zone}); err != nil || n != 3 {
				t.Fatalf("flush zone 7: %d, %v; want 3 removed", n, err)
			}
			if got := d.zoneCount(7).Count; got != 0 {
				t.Errorf("zone 7 counts %d after its flush", got)
			}
			if got := d.zoneCount(8).Count; got != 3 {
				t.Errorf("zone 8 counts %d after zone 7's flush, want 3", got)
			}
			if got := len(d.conns()); got != 4 {
				t.Errorf("%d connections after zone 7's flush, want 4", got)
			}
			if n, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil || n != 4 {
				t.Fatalf("flush all: %d, %v; want 4 removed", n, err)
			}
			if got := d.nconns(); got != 0 {
				t.Errorf("%d connections counted after flushing all", got)
			}
			if got := len(d.conns()); got != 0 {
				t.Errorf("%d connections left after flushing all", got)
			}
			want := map[bool]uint64{true: 7, false: 0}[inKernel]
			if got := d.counter("ct_flushed"); got != want {
				t.Errorf("ct_flushed = %d, want %d", got, want)
			}
		})
	}
}

// TestCTCountConcurrent: commits racing on every CPU never take the count
// past maxconns, and the count stays the table's.
func TestCTCountConcurrent(t *testing.T) {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	const max, workers, each = 40, 4, 30
	if err := d.b.SetMaxConns(max); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			errs <- d.ns.Do(func() error {
				for i := 0; i < each; i++ {
					if _, err := d.b.RunTrace(udpFrame(uint16(1000+w*each+i), 53), d.ifindex[1], false); err != nil {
						return err
					}
				}
				return nil
			})
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	stored := len(d.conns())
	if stored > max || stored < max-workers {
		t.Errorf("%d connections stored with maxconns %d", stored, max)
	}
	if got := d.nconns(); int(got) != stored {
		t.Errorf("counted %d connections, the table has %d", got, stored)
	}
	if got := d.counter("ct_maxconns_refused"); int(got)+stored != workers*each {
		t.Errorf("refused %d + stored %d != %d commits", got, stored, workers*each)
	}
	if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
		t.Fatal(err)
	}
	if got := d.nconns(); got != 0 {
		t.Errorf("after a flush: %d connections counted", got)
	}
}

// TestCountersOlderBridge: a bridge pinned by an older ebpfovs, whose
// counters map has fewer counters than this one knows, still shows the
// counters it has.
func TestCountersOlderBridge(t *testing.T) {
	d := newDP(t)
	d.run(1, udpFrame(1, 53))
	if err := d.b.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(d.opts.BPFFS, d.opts.Bridge, "counters")
	old, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := old.MaxEntries() - 1 // one counter fewer than this ebpfovs knows
	smaller, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: n})
	old.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer smaller.Close()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := smaller.Pin(path); err != nil {
		t.Fatal(err)
	}
	if d.b, err = loader.Open(d.opts); err != nil {
		t.Fatal(err)
	}
	cs, err := d.b.Counters()
	if err != nil {
		t.Fatalf("counters of an older bridge: %v", err)
	}
	if len(cs) != int(n) || cs[0].Name != "packets" {
		t.Errorf("%d counters, the first %q; want %d, packets first", len(cs), cs[0].Name, n)
	}
}
