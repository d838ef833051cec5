package bpf_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// learnedLines are the learned flows as dump-flows prints them, without
// their stats.
func (d *dp) learnedLines() []string {
	d.t.Helper()
	fs, err := d.b.Flows()
	if err != nil {
		d.t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		if f.Learned {
			out = append(out, strings.TrimSpace(f.DumpLine(nil, nil)))
		}
	}
	return out
}

func (d *dp) learnedFlow(t *testing.T) loader.InstalledFlow {
	t.Helper()
	fs, err := d.b.Flows()
	if err != nil {
		t.Fatal(err)
	}
	var out []loader.InstalledFlow
	for _, f := range fs {
		if f.Learned {
			out = append(out, f)
		}
	}
	if len(out) != 1 {
		t.Fatalf("%d learned flows, want 1", len(out))
	}
	return out[0]
}

// ageLearned moves a learned flow's deadline and last use back by `by`.
func (d *dp) ageLearned(id uint32, by time.Duration) {
	d.t.Helper()
	flows, used := d.pinnedMap("flows"), d.pinnedMap("flow_used")
	defer flows.Close()
	defer used.Close()
	var k bpf.DatapathFlowLookup
	var r bpf.DatapathFlowRef
	var keys []bpf.DatapathFlowLookup
	var refs []bpf.DatapathFlowRef
	for it := flows.Iterate(); it.Next(&k, &r); {
		if r.FlowId == id {
			keys, refs = append(keys, k), append(refs, r)
		}
	}
	if len(keys) != 2 {
		d.t.Fatalf("learned flow %d has %d entries in flows, want one per generation", id, len(keys))
	}
	for i := range keys {
		if refs[i].HardDeadlineNs != 0 {
			refs[i].HardDeadlineNs -= uint64(by)
		}
		if err := flows.Put(&keys[i], &refs[i]); err != nil {
			d.t.Fatal(err)
		}
	}
	var u uint64
	if err := used.Lookup(id, &u); err != nil {
		d.t.Fatal(err)
	}
	if err := used.Put(id, u-uint64(by)); err != nil {
		d.t.Fatal(err)
	}
}

// TestLearn: learn() in the datapath, with no daemon: a packet learns a
// flow the next packet uses (the exact-match cache included), learning it
// again keeps it (and its counters), a new value changes it, timeouts and
// del-flows remove it, and the loader prints it as OVS prints it.
func TestLearn(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, in_port=p1, actions=learn(table=1,priority=5,hard_timeout=60,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_REG1[0..15]->NXM_NX_REG2[16..31],output:NXM_OF_IN_PORT[]),resubmit(,1)",
		"table=0, priority=10, in_port=p3, actions=learn(table=1,priority=5,hard_timeout=60,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_REG1[0..15]->NXM_NX_REG2[16..31],output:NXM_OF_IN_PORT[]),resubmit(,1)",
		"table=0, priority=5, actions=resubmit(,1)",
		"table=1, priority=0, actions=p3",
	)
	udp := func(src, dst string) []byte {
		s, dm := mac1, mac2
		if src == "mac2" {
			s, dm = mac2, mac1
		}
		_ = dst
		return testenv.Build(testenv.PacketSpec{SrcMAC: s, DstMAC: dm, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 9, DstPort: 9})
	}
	toMac1 := func() string { return fmt.Sprint(outPorts(&d.run(2, udp("mac2", "mac1")).Trace)) }

	// Nothing learned yet: mac1 is unknown, table 1 sends to p3. Twice,
	// so the exact-match cache would know the walk if it could.
	for i := 0; i < 2; i++ {
		if got := toMac1(); got != "[3]" {
			t.Fatalf("before learning: to mac1 out %s, want [3]", got)
		}
	}
	// A packet from mac1 on p1 learns where mac1 is.
	if got := fmt.Sprint(outPorts(&d.run(1, udp("mac1", "mac2")).Trace)); got != "[3]" {
		t.Fatalf("the learning packet: out %s, want [3]", got)
	}
	if n := d.counter("learned"); n != 1 {
		t.Fatalf("learned counter %d, want 1", n)
	}
	want := fmt.Sprintf("table=1, hard_timeout=60, priority=5,dl_dst=%s actions=load:0->NXM_NX_REG2[16..31],output:1", mac1)
	if got := d.learnedLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("learned flows:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
	// The next packet to mac1 takes it, though its walk was seen before.
	for i := 0; i < 3; i++ {
		if got := toMac1(); got != "[1]" {
			t.Fatalf("after learning, packet %d: to mac1 out %s, want [1]", i, got)
		}
	}
	if f := d.learnedFlow(t); f.Packets != 3 {
		t.Errorf("learned flow n_packets=%d, want 3", f.Packets)
	}

	// Learning the same flow again changes nothing but its hard timeout.
	d.run(1, udp("mac1", "mac2"))
	if n := d.counter("learned"); n != 1 {
		t.Errorf("the same flow learned again: learned counter %d, want 1", n)
	}
	if f := d.learnedFlow(t); f.Packets != 3 {
		t.Errorf("learned again: n_packets=%d, want 3 (kept)", f.Packets)
	}

	// mac1 moves to p3: the flow changes, in one update, and starts anew.
	d.run(3, udp("mac1", "mac2"))
	if n := d.counter("learned"); n != 2 {
		t.Errorf("a changed flow: learned counter %d, want 2", n)
	}
	want = strings.Replace(want, "output:1", "output:3", 1)
	if got := d.learnedLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("after the move, learned flows:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
	if got := toMac1(); got != "[3]" {
		t.Fatalf("after the move: to mac1 out %s, want [3]", got)
	}
	if f := d.learnedFlow(t); f.Packets != 1 {
		t.Errorf("the changed flow: n_packets=%d, want 1", f.Packets)
	}

	// Past its hard timeout it no longer matches, and the loader removes it.
	f := d.learnedFlow(t)
	d.ageLearned(f.ID, 61*time.Second)
	d.run(1, udp("mac2", "mac1")) // from p1 with src mac2: learns mac2, not mac1
	if got := toMac1(); got != "[3]" {
		t.Fatalf("expired learned flow: to mac1 out %s, want [3] (table 1's default)", got)
	}
	lines := d.learnedLines()
	if len(lines) != 1 || !strings.Contains(lines[0], mac2.String()) {
		t.Fatalf("after expiry, learned flows:\n%s\nwant only mac2's", strings.Join(lines, "\n"))
	}

	// del-flows deletes learned flows as it deletes others.
	d.run(1, udp("mac1", "mac2"))
	n, err := d.b.DelFlows(mustMatch(t, d, "table=1,dl_dst="+mac1.String()), false)
	if err != nil || n != 1 {
		t.Fatalf("del-flows of mac1's learned flow: %d deleted, %v", n, err)
	}
	if got := toMac1(); got != "[3]" {
		t.Fatalf("deleted learned flow still used: out %s", got)
	}
	// replace-flows keeps none.
	if err := d.b.ReplaceFlows([]*ofctl.Flow{mustFlow(t, d, "table=1, priority=0, actions=p3")}); err != nil {
		t.Fatal(err)
	}
	if got := d.learnedLines(); len(got) != 0 {
		t.Fatalf("after replace-flows, learned flows:\n%s", strings.Join(got, "\n"))
	}
}

// TestLearnDeleteLearned: a learning flow with delete_learned takes its
// learned flows with it; without it they stay, and keep working.
func TestLearnDeleteLearned(t *testing.T) {
	d := newDP(t)
	learnFlow := func(extra string) string {
		return "table=0, priority=10, in_port=p1, actions=learn(table=1,cookie=0x7" + extra + ",NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,1)"
	}
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 9, DstPort: 9})
	back := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: 9, DstPort: 9})
	for _, tc := range []struct {
		extra string
		stays bool
	}{{"", true}, {",delete_learned", false}} {
		d.setFlows(learnFlow(tc.extra), "table=0, priority=5, actions=resubmit(,1)", "table=1, priority=0, actions=p3")
		d.run(1, frame)
		if got := d.learnedLines(); len(got) != 1 {
			t.Fatalf("learn(%s): %d learned flows, want 1", tc.extra, len(got))
		}
		if _, err := d.b.DelFlows(mustMatch(t, d, "table=0,in_port=p1"), false); err != nil {
			t.Fatal(err)
		}
		got := d.learnedLines()
		if tc.stays != (len(got) == 1) {
			t.Fatalf("learn(%s): learning flow deleted, learned flows: %q", tc.extra, got)
		}
		want := "[3]"
		if tc.stays {
			want = "[1]"
		}
		if out := fmt.Sprint(outPorts(&d.run(2, back).Trace)); out != want {
			t.Errorf("learn(%s): learning flow deleted, to mac1 out %s, want %s", tc.extra, out, want)
		}
	}
}

// learnedRef is a learned flow's entry in the running generation.
func (d *dp) learnedRef(id uint32) bpf.DatapathFlowRef {
	d.t.Helper()
	flows := d.pinnedMap("flows")
	defer flows.Close()
	var k bpf.DatapathFlowLookup
	var r bpf.DatapathFlowRef
	for it := flows.Iterate(); it.Next(&k, &r); {
		if r.FlowId == id && k.Gen == d.gen()&1 {
			return r
		}
	}
	d.t.Fatalf("learned flow %d has no entry", id)
	return r
}

// TestLearnTimeouts: a learned flow's idle timeout expires it when no
// packet uses it; a TCP FIN through a flow learned with fin timeouts
// shortens its timeouts to them (OVS's fin_timeout).
func TestLearnTimeouts(t *testing.T) {
	d := newDP(t)
	d.setFlows(
		"table=0, priority=10, tcp, in_port=p1, actions=learn(table=1,idle_timeout=30,fin_idle_timeout=2,fin_hard_timeout=5,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,1)",
		"table=0, priority=5, actions=resubmit(,1)",
		"table=1, priority=0, actions=p3",
	)
	seg := func(from uint32, flags string) string {
		s, dm := mac1, mac2
		if from == 2 {
			s, dm = mac2, mac1
		}
		spec := tcp(flags, 1000, 80)
		spec.SrcMAC, spec.DstMAC = s, dm
		return fmt.Sprint(outPorts(&d.run(from, testenv.Build(spec)).Trace))
	}
	seg(1, "S")
	f := d.learnedFlow(t)
	want := "table=1, idle_timeout=30, dl_dst=" + mac1.String() + " actions=fin_timeout(idle_timeout=2,hard_timeout=5),output:1"
	if got := d.learnedLines(); len(got) != 1 || got[0] != want {
		t.Fatalf("learned flows:\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
	if r := d.learnedRef(f.ID); r.IdleTimeout != 30 || r.HardDeadlineNs != 0 {
		t.Fatalf("learned entry: idle %d, hard deadline %d; want 30, none", r.IdleTimeout, r.HardDeadlineNs)
	}
	// A segment without FIN through it changes nothing; a FIN shortens.
	if got := seg(2, "A"); got != "[1]" {
		t.Fatalf("to mac1: out %s, want [1]", got)
	}
	if r := d.learnedRef(f.ID); r.IdleTimeout != 30 {
		t.Fatalf("an ACK changed the learned flow's idle timeout to %d", r.IdleTimeout)
	}
	before := monoNow(t)
	seg(2, "FA")
	r := d.learnedRef(f.ID)
	if r.IdleTimeout != 2 || r.HardDeadlineNs < before+4*uint64(time.Second) || r.HardDeadlineNs > monoNow(t)+5*uint64(time.Second) {
		t.Fatalf("after a FIN: idle %d, hard deadline %d (now %d); want 2 and 5 s on", r.IdleTimeout, r.HardDeadlineNs, before)
	}
	// Idle past its (shortened) idle timeout: no longer used, then gone.
	d.ageLearned(f.ID, 3*time.Second)
	if got := seg(2, "A"); got != "[3]" {
		t.Fatalf("idle learned flow still used: out %s", got)
	}
	if got := d.learnedLines(); len(got) != 0 {
		t.Fatalf("idle learned flow still listed: %q", got)
	}
}

// TestLearnLimit: past the learn limit learning stops, counted, and the
// flows learned already keep working; 0 learns nothing.
func TestLearnLimit(t *testing.T) {
	d := newDP(t)
	if err := d.b.SetLearnLimit(2); err != nil {
		t.Fatal(err)
	}
	d.setFlows(
		"table=0, priority=10, in_port=p1, actions=learn(table=1,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,1)",
		"table=0, priority=5, actions=resubmit(,1)",
		"table=1, priority=0, actions=p3",
	)
	from := func(i int) []byte {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 0x7, byte(i)}
		return testenv.Build(testenv.PacketSpec{SrcMAC: mac, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 9, DstPort: 9})
	}
	to := func(i int) string {
		mac := net.HardwareAddr{0x02, 0, 0, 0, 0x7, byte(i)}
		f := testenv.Build(testenv.PacketSpec{SrcMAC: mac2, DstMAC: mac, SrcIP: ip2, DstIP: ip1, Proto: "udp", SrcPort: 9, DstPort: 9})
		return fmt.Sprint(outPorts(&d.run(2, f).Trace))
	}
	for i := 1; i <= 5; i++ {
		d.run(1, from(i))
	}
	limit, live, err := d.b.LearnLimit()
	if err != nil || limit != 2 || live != 2 {
		t.Fatalf("learn limit %d, %d learned flows (%v); want 2, 2", limit, live, err)
	}
	if n := d.counter("learn_full"); n != 3 {
		t.Errorf("learn_full %d, want 3 (the learns past the limit)", n)
	}
	if got := to(1) + to(2) + to(3); got != "[1][1][3]" {
		t.Errorf("to the first three MACs: %s, want the two learned ones to p1 and the third flooded to p3", got)
	}
	// 0 learns nothing; what was learned stays.
	if err := d.b.SetLearnLimit(0); err != nil {
		t.Fatal(err)
	}
	if err := d.b.SetLearnLimit(8193); err == nil {
		t.Error("a learn limit above 8192 was accepted")
	}
	d.b.DelFlows(mustMatch(t, d, "table=1,dl_dst=02:00:00:00:07:01"), false)
	d.run(1, from(1))
	if _, live, _ := d.b.LearnLimit(); live != 1 {
		t.Errorf("limit 0: %d learned flows, want 1 (the one left)", live)
	}
}
