package ctl_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/ctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// BenchmarkTapXDP compares TC and XDP mode on tap ports, where VMs sit:
// the lab's flows with conntrack, one established TCP segment written
// into vnet1 and read back from vnet2, in lockstep (so the time includes
// the two syscalls). The modes alternate round by round on one lab and
// the medians are reported with their ratio, as the machine is noisy.
//
//	go test -run '^$' -bench TapXDP -benchtime 1x ./ctl
func BenchmarkTapXDP(b *testing.B) {
	testenv.RequirePrivileged(b)
	lab := testenv.NewLab(b, testenv.LabOptions{VMs: 2, Tap: true})
	tap1, tap2 := lab.Tap(0), lab.Tap(1)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	global := []string{"--bpffs", testenv.TempBPFFS(b), "-b", "br0", "--netns", lab.Host.Path}
	run := func(args ...string) {
		var o, e bytes.Buffer
		if code := ctl.Main(append(slices.Clone(global), args...), strings.NewReader(""), &o, &e); code != 0 {
			b.Fatalf("ebpfovs %s: %s", strings.Join(args, " "), e.String())
		}
	}
	seg := func(from, to *testenv.VM, sport, dport uint16, flags string, seq uint32) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, SrcIP: from.IP, DstIP: to.IP, Proto: "tcp",
			SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: seq})
	}
	pass := func(from, to *testenv.Tap, frame []byte) {
		if err := from.WriteFrame(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := to.ReadFrameMatching(2*time.Second, func(f []byte) bool { return bytes.Equal(f, frame) }); err != nil {
			b.Fatal(err)
		}
	}
	const rounds, frames = 5, 5000
	ns := map[string][]float64{}
	modes := []string{"auto", "xdp"}
	for r := 0; r < rounds; r++ {
		for _, mode := range modes {
			run("attach", "--mode", mode, "--max-flows=4096", "--max-conns=16384", "vnet1", "vnet2")
			for _, f := range []string{flow1, flow2, flow3, flow4, flow5} {
				run("add-flow", f)
			}
			sport := uint16(40000 + r)
			pass(tap1, tap2, seg(vm1, vm2, sport, 5000, "S", 100))
			pass(tap2, tap1, seg(vm2, vm1, 5000, sport, "SA", 100))
			data := seg(vm1, vm2, sport, 5000, "A", 100)
			for i := 0; i < 500; i++ {
				pass(tap1, tap2, data)
			}
			start := time.Now()
			for i := 0; i < frames; i++ {
				if err := tap1.WriteFrame(data); err != nil {
					b.Fatal(err)
				}
				if _, err := tap2.ReadFrame(time.Second); err != nil {
					b.Fatalf("%s: frame %d: %v", mode, i, err)
				}
			}
			ns[mode] = append(ns[mode], float64(time.Since(start).Nanoseconds())/frames)
			run("detach")
		}
	}
	med := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	tc, xdp := med(ns["auto"]), med(ns["xdp"])
	b.ReportMetric(tc, "tc-ns/frame")
	b.ReportMetric(xdp, "xdp-ns/frame")
	b.ReportMetric(xdp/tc, "xdp/tc")
	fmt.Printf("tap, lab flows, established segment, write+read lockstep: TC %.0f ns/frame %v, XDP %.0f ns/frame %v, XDP/TC %.2f\n",
		tc, ns["auto"], xdp, ns["xdp"], xdp/tc)
}
