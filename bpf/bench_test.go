package bpf_test

import (
	"fmt"
	"math"
	"net"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// classifierFlows makes n flows over m distinct masks: flow j matches one
// source address exactly and a destination prefix of length 32-(j%m), with
// priority 1000-(j%m), so subtable i holds the flows of prefix 32-i and
// the subtables are searched in that order.
func classifierFlows(tb testing.TB, n, m int) []*ofctl.Flow {
	flows := make([]*ofctl.Flow, 0, n)
	for j := 0; j < n; j++ {
		i := j % m
		src := net.IPv4(11, byte(j>>16), byte(j>>8), byte(j)).String()
		f, err := ofctl.ParseFlow(fmt.Sprintf("priority=%d,ip,nw_src=%s,nw_dst=10.0.0.0/%d,actions=output:2", 1000-i, src, 32-i), nil)
		if err != nil {
			tb.Fatal(err)
		}
		flows = append(flows, f)
	}
	return flows
}

// benchFrame is a UDP packet from src to 10.0.0.0, which every prefix covers.
func benchFrame(src net.IP) []byte {
	return testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: src, DstIP: net.IPv4(10, 0, 0, 0),
		Proto: "udp", SrcPort: 1000, DstPort: 2000})
}

// BenchmarkClassifier measures ns/packet through the attached program
// (parse, classify, output) as flows and masks grow, with BPF_PROG_TEST_RUN
// repeating one packet: "hit-first" matches in the first subtable searched
// (early exit), "hit-last" in the last one, "miss" searches every subtable.
// Each runs with the caches (a repeated packet is an exact-match cache
// hit, emc.h) and without them (the tuple space search itself).
// Each result also reports x-empty: its cost over an empty program's,
// measured in the same run (these machines are noisy: compare ratios).
//
//	go test -run '^$' -bench Classifier ./bpf
func BenchmarkClassifier(b *testing.B) {
	d := newDPSized(b, 131072)
	for _, n := range []int{10, 1000, 10000, 100000} {
		for _, m := range []int{1, 8, 32} {
			if m > n {
				continue
			}
			flows := classifierFlows(b, n, m)
			if err := d.b.ReplaceFlows(flows); err != nil {
				b.Fatal(err)
			}
			lastMask := m - 1
			for _, c := range []struct {
				kind string
				src  net.IP
			}{
				{"hit-first", net.IPv4(11, 0, 0, 0)},             // flow 0, mask 0
				{"hit-last", net.IPv4(11, 0, 0, byte(lastMask))}, // flow m-1, mask m-1
				{"miss", net.IPv4(12, 0, 0, 0)},
			} {
				frame := benchFrame(c.src)
				want := uint32(tcActRedirect)
				if c.kind == "miss" {
					want = tcActShot
				}
				for _, cache := range []bool{true, false} {
					name := fmt.Sprintf("flows=%d/masks=%d/%s", n, m, c.kind)
					name += map[bool]string{true: "/cache", false: "/nocache"}[cache]
					if err := d.b.SetFlowCache(cache); err != nil {
						b.Fatal(err)
					}
					benchOne(b, d, name, frame, want)
				}
			}
		}
	}
}

// benchOne measures frame through tc_ingress, which must give verdict
// want (a benchmark of a broken datapath must not report its speed), and
// an empty program on the same frame. These machines are noisy, so b.N
// runs are split into benchRounds rounds, alternating the two programs,
// and each reports its fastest round.
func benchOne(b *testing.B, d *dp, name string, frame []byte, want uint32) {
	b.Run(name, func(b *testing.B) {
		n := uint32(max(b.N/benchRounds, 1))
		per, base := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
		err := d.ns.Do(func() error {
			b.ResetTimer()
			for r := 0; r < benchRounds; r++ {
				e, err := loader.RunEmpty(frame, d.ifindex[1], n)
				if err != nil {
					return err
				}
				p, verdict, err := d.b.RunIngress(frame, d.ifindex[1], n)
				if err != nil {
					return err
				}
				if verdict != want {
					return fmt.Errorf("verdict %d, want %d", verdict, want)
				}
				base, per = min(base, e), min(per, p)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(per.Nanoseconds()), "ns/pkt")
		b.ReportMetric(float64(base.Nanoseconds()), "ns/empty")
		b.ReportMetric(float64(per)/float64(base), "x-empty")
		b.ReportMetric(float64(per-base), "ns-over-empty")
	})
}

// benchRounds: see benchOne.
const benchRounds = 5

// BenchmarkAddFlows: installing 100k flows in one add-flows (target: < 2 s).
func BenchmarkAddFlows(b *testing.B) {
	d := newDPSized(b, 131072)
	flows := classifierFlows(b, 100000, 32)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := d.b.DelFlows(nil, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := d.b.AddFlows(flows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Seconds())/float64(b.N), "s/100k-flows")
}

// BenchmarkConntrack measures ns/packet through the attached program with
// conntrack in the pipeline, beside an empty program measured in the same
// run: "established" repeats an in-window ACK of a committed connection
// (lookup, state machine, window check, counters) -- an exact-match cache
// hit, which replays the walk and runs conntrack again; "/nocache" takes
// the whole walk (two lookups, the recirculation); "new" repeats a SYN
// that is tracked but never committed, so every run is a lookup miss and
// tcp_new. The flow table is the lab's shape: ct(table=1), then one flow.
//
//	go test -run '^$' -bench Conntrack ./bpf
func BenchmarkConntrack(b *testing.B) {
	d := newDPSized(b, 4096)
	ack := conntrackBenchSetup(b, d, newTCPSession())
	run := func(name string, frame []byte) { benchOne(b, d, name, frame, tcActRedirect) }
	run("established", ack)
	if err := d.b.SetFlowCache(false); err != nil {
		b.Fatal(err)
	}
	run("established/nocache", ack)
	if err := d.b.SetFlowCache(true); err != nil {
		b.Fatal(err)
	}
	s6 := newTCPSession()
	s6.ip = [2]net.IP{net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")}
	run("established-ipv6", conntrackBenchSetup(b, d, s6))

	d.setFlows(
		"table=0, priority=10, tcp, ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, tcp, actions=p2",
	)
	run("new-uncommitted", testenv.Build(tcp("S", 45000, 80)))
}

// conntrackBenchSetup installs the conntrack benchmarks' flows (for
// sess's address family), opens sess's connection through them and
// returns an in-window ACK of it.
func conntrackBenchSetup(b testing.TB, d *dp, sess *tcpSession) (ack []byte) {
	proto := "tcp"
	if sess.ip[client].To4() == nil {
		proto = "tcp6"
	}
	d.setFlows(
		"table=0, priority=10, "+proto+", ct_state=-trk, actions=ct(table=1)",
		"table=1, priority=10, "+proto+", ct_state=+trk+new, actions=ct(commit),p2",
		"table=1, priority=5, "+proto+", ct_state=+trk, actions=p2",
	)
	for _, f := range []struct {
		side  int
		flags string
	}{{client, "S"}, {server, "SA"}, {client, "A"}} {
		in, frame := sess.seg(f.side, f.flags, false)
		d.run(in, frame)
	}
	_, ack = sess.seg(client, "A", false)
	return ack
}

// BenchmarkConntrackTableSize: an established packet's cost as the
// connection table fills up to a million entries (the others inserted in
// batches by FillConntrack), and the table's kernel memory per entry.
//
//	go test -run '^$' -bench ConntrackTableSize -benchtime 100000x ./bpf
func BenchmarkConntrackTableSize(b *testing.B) {
	d := newDPWith(b, 4096, 1_100_000)
	ack := conntrackBenchSetup(b, d, newTCPSession())
	filled := 0
	for _, n := range []int{0, 100_000, 1_000_000} {
		if err := d.b.FillConntrack(9, n-filled); err != nil {
			b.Fatal(err)
		}
		filled = n
		benchOne(b, d, fmt.Sprintf("established/entries=%d", n+1), ack, tcActRedirect)
	}
	mem, size, err := d.b.ConntrackMemory()
	if err != nil {
		b.Skip(err)
	}
	b.Run("memory", func(b *testing.B) {
		b.ReportMetric(float64(mem)/float64(size), "bytes/entry")
		b.ReportMetric(float64(mem)/(1<<20), "MiB/table")
	})
}
