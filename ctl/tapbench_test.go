package ctl_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

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
	tc := tcMode()
	modes := []string{tc, "xdp"}
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
	tcNs, xdp := med(ns[tc]), med(ns["xdp"])
	b.ReportMetric(tcNs, "tc-ns/frame")
	b.ReportMetric(xdp, "xdp-ns/frame")
	b.ReportMetric(xdp/tcNs, "xdp/tc")
	fmt.Printf("tap, lab flows, established segment, write+read lockstep: TC %.0f ns/frame %v, XDP %.0f ns/frame %v, XDP/TC %.2f\n",
		tcNs, ns[tc], xdp, ns["xdp"], xdp/tcNs)
}

// BenchmarkTapBulk compares TC and XDP mode on tap ports for TCP bulk, as
// a VM with TSO sends it: the taps' descriptors are opened the way QEMU's
// virtio-net backend opens them (IFF_VNET_HDR, a 12-byte virtio_net_hdr,
// TUNSETOFFLOAD with TUN_F_CSUM|TSO4|TSO6, as for a guest with TSO), and
// the same 64 KB TSO data segment (gso_type TCPV4, gso_size 1448,
// NEEDS_CSUM) is written into vnet1 over and over, a bounded number of
// frames in flight, while a reader takes them out of vnet2. A
// retransmission of the same sequence numbers is always in window for
// conntrack's window tracking, so the lab's flows (with conntrack) carry
// every copy. The modes alternate round by round on one lab; medians.
//
// A frame that big misses tun's build_skb path (a page at most), where
// XDP runs natively: tun builds an skb and runs the XDP program attached
// in native mode on it in the kernel's generic mode (do_xdp_generic),
// which first copies the skb into page-pool fragments for a multi-buffer
// ("xdp.frags") program (skb_pp_cow_data on 6.8 and later: all 64 KB
// copied, not linearized; seen in perf profiles on 6.18). The program
// passes a frame longer than the MTU on to TC (xdp_to_tc), as no XDP
// redirect can carry it. The first round of each mode prints which
// counters the frames moved and what came out of vnet2. A mode that
// loses frames (more than 0.1 %) or lets them out other than whole is
// reported and dropped from the rounds, and the benchmark fails at the
// end.
//
//	go test -run '^$' -bench TapBulk -benchtime 1x ./ctl
func BenchmarkTapBulk(b *testing.B) {
	testenv.RequirePrivileged(b)
	lab := testenv.NewLab(b, testenv.LabOptions{VMs: 2, Tap: true})
	// Both "VMs" are virtio-net guests with TSO: QEMU gives both taps the
	// offloads the guest acked. On the reading side they keep the kernel
	// from segmenting the GSO skb before tun's queue (validate_xmit_skb),
	// so the reader gets the whole frame, as a guest with GRO/LRO would.
	const offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	tap1, tap2 := lab.Tap(0).OpenVnetHdr(b, offloads), lab.Tap(1).OpenVnetHdr(b, offloads)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	global := []string{"--bpffs", testenv.TempBPFFS(b), "-b", "br0", "--netns", lab.Host.Path}
	run := func(args ...string) string {
		var o, e bytes.Buffer
		if code := ctl.Main(append(slices.Clone(global), args...), strings.NewReader(""), &o, &e); code != 0 {
			b.Fatalf("ebpfovs %s: %s", strings.Join(args, " "), e.String())
		}
		return o.String()
	}
	const (
		rounds, frames = 5, 30000
		window         = 64 // frames in flight: well below tun's queue of 500 (tx_queue_len)
		warm           = 100
	)
	gbps, fps, cpuPerGbit := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	broken := map[string]string{} // mode: why it left the rounds
	tc := tcMode()
	modes := []string{tc, "xdp"}
	for r := 0; r < rounds; r++ {
		for mi, mode := range modes {
			if broken[mode] != "" {
				continue
			}
			run("attach", "--mode", mode, "--max-flows=4096", "--max-conns=16384", "vnet1", "vnet2")
			for _, f := range []string{flow1, flow2, flow3, flow4, flow5} {
				run("add-flow", f)
			}
			sport := uint16(40000 + 2*r + mi) // a new connection each time
			data, hdr := tsoConn(b, tap1, tap2, vm1, vm2, sport)
			whole := func(h testenv.VnetHdr, f []byte) bool { return tsoWhole(h, f, data) }

			// Warm-up in lockstep: every frame must come out whole and
			// unchanged (its checksum still the partial one).
			var before map[string]int64
			if r == 0 {
				before = tapCounters(b, run("show"), lab)
			}
			var got testenv.VnetHdr
			bad := ""
			for i := 0; i < warm && bad == ""; i++ {
				if err := tap1.WriteFrame(hdr, data); err != nil {
					b.Fatal(err)
				}
				h, f, err := tap2.ReadFrame(time.Second)
				switch {
				case err != nil:
					bad = fmt.Sprintf("TSO frame %d of the warm-up did not come out of vnet2: %v", i, err)
				case !whole(h, f) || !bytes.Equal(f, data):
					bad = fmt.Sprintf("TSO frame %d of the warm-up came out of vnet2 other than whole and unchanged: %s, %d bytes (%d others queued)",
						i, h, len(f), drainVnet(tap2))
				}
				got = h
			}
			if r == 0 {
				after := tapCounters(b, run("show"), lab)
				out := fmt.Sprintf("came out of vnet2 whole (%s)", got)
				if bad != "" {
					out = "did not all come out: " + bad
				}
				fmt.Printf("%s: %d TSO frames written into vnet1 (%s, %d bytes) %s\n  counters moved: %s\n  %s\n",
					mode, warm, hdr, len(data), out, movedCounters(before, after), xdpVerdict(before, after))
			}
			if bad != "" {
				broken[mode] = bad
				run("detach")
				continue
			}

			s := streamGSO(tap1, tap2, hdr, data, frames, window, whole)
			lost := s.written - s.read
			switch {
			case s.err != nil:
				b.Fatalf("%s, round %d: %v", mode, r, s.err)
			case s.odd != "":
				broken[mode] = fmt.Sprintf("round %d: frame %d of %d came out other than whole: %s (%d others queued)", r, s.read+1, s.written, s.odd, drainVnet(tap2))
			case lost > s.written/1000 || s.written < frames:
				broken[mode] = fmt.Sprintf("round %d: %d frames written, %d read: %d lost\n%s", r, s.written, s.read, lost, run("show"))
			default:
				sec := s.elapsed.Seconds()
				gbit := float64(s.read) * tsoPayload * 8 / 1e9
				gbps[mode] = append(gbps[mode], gbit/sec)
				cpuPerGbit[mode] = append(cpuPerGbit[mode], s.cpu.Seconds()/gbit)
				fps[mode] = append(fps[mode], float64(s.read)/sec)
			}
			run("detach")
		}
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0 // a mode that carried nothing
		}
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	one := func(v []float64) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprintf("%.1f", x)
		}
		return out
	}
	tcG, xdp := med(gbps[tc]), med(gbps["xdp"])
	b.ReportMetric(tcG, "tc-Gbit/s")
	b.ReportMetric(xdp, "xdp-Gbit/s")
	b.ReportMetric(med(fps[tc]), "tc-frames/s")
	b.ReportMetric(med(fps["xdp"]), "xdp-frames/s")
	b.ReportMetric(med(cpuPerGbit[tc]), "tc-CPU-s/Gbit")
	b.ReportMetric(med(cpuPerGbit["xdp"]), "xdp-CPU-s/Gbit")
	ratio := "n/a"
	if tcG > 0 && xdp > 0 {
		b.ReportMetric(xdp/tcG, "xdp/tc")
		ratio = fmt.Sprintf("%.2f", xdp/tcG)
	}
	fmt.Printf("tap, lab flows, 64 KB TSO frames through virtio_net_hdr, %d in flight: TC %.1f Gbit/s %v (%.0f frames/s, %.4f CPU·s/Gbit), XDP %.1f Gbit/s %v (%.0f frames/s, %.4f CPU·s/Gbit), XDP/TC %s\n",
		window, tcG, one(gbps[tc]), med(fps[tc]), med(cpuPerGbit[tc]), xdp, one(gbps["xdp"]), med(fps["xdp"]), med(cpuPerGbit["xdp"]), ratio)
	for _, mode := range modes {
		if broken[mode] != "" {
			b.Errorf("%s mode: %s", mode, broken[mode])
		}
	}
}

// The TSO connection of BenchmarkTapBulk and TestTapTSO.
const (
	// gso_size: a Linux guest's MSS on a 1500 MTU with TCP timestamps
	// (these frames carry none: 1488-byte segments).
	tsoMSS     = 1448
	tsoPayload = 45 * tsoMSS // 65160 bytes: what Linux puts in a 64 KB TSO frame
	tsoISS1    = 1000        // the VMs' initial sequence numbers
	tsoISS2    = 2000
	tsoWScale  = 7    // both SYNs', so windows scale
	tsoAckWin  = 2048 // VM1's window after the handshake: 2048 << 7, 256 KB
)

// vnetPass writes a small frame (no offload: an all-zero header) into from
// and waits for exactly it on to.
func vnetPass(tb testing.TB, from, to *testenv.VnetTap, frame []byte) {
	tb.Helper()
	if err := from.WriteFrame(testenv.VnetHdr{}, frame); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, f, err := to.ReadFrame(time.Until(deadline))
		if err != nil {
			tb.Fatalf("%s to %s: %v", from.Name, to.Name, err)
		}
		if bytes.Equal(f, frame) {
			return
		}
	}
}

// tsoConn opens a TCP connection from VM1's port sport to VM2's port 5000
// through the taps (SYN, SYN-ACK, ACK, each waited for on the other side)
// and returns the 64 KB TSO data segment that continues it, with its
// virtio_net_hdr. VM2 answers with the largest window a SYN carries
// (unscaled) and scaling on, as Linux does: 65535 bytes, in which the
// 65160-byte segment fits; VM1's ACK opens 256 KB.
func tsoConn(tb testing.TB, tap1, tap2 *testenv.VnetTap, vm1, vm2 *testenv.VM, sport uint16) ([]byte, testenv.VnetHdr) {
	tb.Helper()
	synOpts := []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{1460 >> 8, 1460 & 0xff}},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{tsoWScale}},
	}
	vnetPass(tb, tap1, tap2, tcpFrame(vm1, vm2, sport, 5000, "S", tsoISS1, 0, 64240, synOpts, nil))
	vnetPass(tb, tap2, tap1, tcpFrame(vm2, vm1, 5000, sport, "SA", tsoISS2, tsoISS1+1, 65535, synOpts, nil))
	vnetPass(tb, tap1, tap2, tcpFrame(vm1, vm2, sport, 5000, "A", tsoISS1+1, tsoISS2+1, tsoAckWin, nil, nil))
	return tsoFrame(vm1, vm2, sport, 5000, tsoISS1+1, tsoISS2+1, tsoAckWin, tsoPayload, tsoMSS)
}

// tsoWhole: frame f with header h is the TSO segment data, whole (one
// GSO frame, not segmented on the way).
func tsoWhole(h testenv.VnetHdr, f, data []byte) bool {
	return h.GSOType == unix.VIRTIO_NET_HDR_GSO_TCPV4 && h.GSOSize == tsoMSS && len(f) == len(data)
}

// xdpVerdict says, from the counters' change, whether the XDP program ran
// on the frames and what it did with them. tun counts a frame it
// transmitted in its tx_packets: a frame the datapath sent to vnet2 (its
// port's tx_packets) that tun never transmitted was dropped in between,
// in the kernel. (Generic XDP's devmap redirect refuses a frame longer
// than the target's MTU plus its Ethernet and VLAN headers,
// xdp_ok_fwd_dev's -EMSGSIZE, which only the xdp:xdp_redirect_err
// tracepoint shows; a GSO frame always is. That is why xdp_ingress passes
// such frames to TC: bpf/xdp.h, xdp_oversized.)
func xdpVerdict(before, after map[string]int64) string {
	d := func(k string) int64 { return after[k] - before[k] }
	var out []string
	switch ran, toTC := d("xdp_packets")+d("xdp_fast"), d("xdp_to_tc"); {
	case ran == 0 && toTC == 0:
		out = append(out, "the XDP program did not run on them (no xdp counter moved)")
	default:
		out = append(out, fmt.Sprintf("the XDP program ran on them: %d finished in XDP (xdp_packets %+d, xdp_fast %+d), %d passed to TC (xdp_to_tc)",
			ran, d("xdp_packets"), d("xdp_fast"), toTC))
	}
	if sent, tx := d("vnet2.tx_packets"), d("kernel.vnet2.tx_packets"); sent != tx {
		out = append(out, fmt.Sprintf("the datapath sent %d to vnet2, tun transmitted %d (tx_dropped %+d): the kernel dropped %d after the datapath's redirect",
			sent, tx, d("kernel.vnet2.tx_dropped"), sent-tx))
	}
	return strings.Join(out, "; ")
}

// drainVnet discards what is queued on the tap and says how much it was.
func drainVnet(v *testenv.VnetTap) int {
	n := 0
	for ; ; n++ {
		if _, _, err := v.ReadFrame(50 * time.Millisecond); err != nil {
			return n
		}
	}
}

// tapStream is what streamGSO measured.
type tapStream struct {
	written, read int
	elapsed       time.Duration // from the first write to the last frame read
	cpu           time.Duration // busy CPU time of the whole machine meanwhile (all CPUs)
	odd           string        // the first frame that came out other than whole
	err           error         // the writer's
}

// streamGSO writes n copies of frame (with hdr) into w, at most window of
// them not yet read, while it reads them from r. It stops at n frames
// read, at the first frame that is not whole, or when no frame came for a
// second (the switch dropped some: each lost frame keeps a place in the
// window, so the writer stops once window frames are lost).
func streamGSO(w, r *testenv.VnetTap, hdr testenv.VnetHdr, frame []byte, n, window int, whole func(testenv.VnetHdr, []byte) bool) tapStream {
	var s tapStream
	inflight := make(chan struct{}, window)
	stop := make(chan struct{})
	type result struct {
		written int
		err     error
	}
	wrote := make(chan result, 1)
	cpu0 := busyCPU()
	start := time.Now()
	go func() {
		var res result
		defer func() { wrote <- res }()
		for ; res.written < n; res.written++ {
			select {
			case inflight <- struct{}{}:
			case <-stop:
				return
			}
			if res.err = w.WriteFrame(hdr, frame); res.err != nil {
				return
			}
		}
	}()
	last := start
	for s.read < n {
		h, f, err := r.ReadFrame(time.Second)
		if err != nil {
			break // counted as lost below
		}
		if !whole(h, f) {
			s.odd = fmt.Sprintf("%s, %d bytes (want %d)", h, len(f), len(frame))
			break
		}
		<-inflight
		s.read++
		last = time.Now()
	}
	s.cpu = busyCPU() - cpu0
	close(stop)
	res := <-wrote
	s.written, s.err, s.elapsed = res.written, res.err, last.Sub(start)
	return s
}

// busyCPU is the machine's busy CPU time so far, all CPUs: user, nice,
// system, irq and softirq of /proc/stat's cpu line (USER_HZ, 100).
func busyCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		panic(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		busy += n
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// tcpFrame builds a TCP/IPv4 frame from one lab VM to another, with TCP
// options (testenv.Build has none: a SYN's window scale needs them) and
// full checksums.
func tcpFrame(from, to *testenv.VM, sport, dport uint16, flags string, seq, ack uint32, win uint16, opts []layers.TCPOption, payload []byte) []byte {
	ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: from.IP, DstIP: to.IP}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, Ack: ack, Window: win, Options: opts,
		SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A"), PSH: strings.Contains(flags, "P")}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		panic(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, tcp, gopacket.Payload(payload)); err != nil {
		panic(err)
	}
	// The Ethernet header by hand: gopacket's pads to 60 bytes, a tap
	// does not.
	frame := make([]byte, 14, 14+len(buf.Bytes()))
	copy(frame[0:], to.MAC)
	copy(frame[6:], from.MAC)
	binary.BigEndian.PutUint16(frame[12:], uint16(layers.EthernetTypeIPv4))
	return append(frame, buf.Bytes()...)
}

// tsoFrame builds what a virtio-net guest with TSO hands QEMU for a 64 KB
// send: one ACK segment with n bytes of payload (IPv4 total length the
// whole frame's, as Linux's TCP builds it before segmentation) and the
// virtio_net_hdr that asks for segmentation into mss-byte segments. The
// TCP checksum is left partial (CHECKSUM_PARTIAL): the field holds the
// pseudo-header's sum, not complemented, which whoever segments or
// transmits completes from csum_start over the rest.
func tsoFrame(from, to *testenv.VM, sport, dport uint16, seq, ack uint32, win uint16, n, mss int) ([]byte, testenv.VnetHdr) {
	frame := tcpFrame(from, to, sport, dport, "A", seq, ack, win, nil, make([]byte, n))
	const l3, l4 = 14, 14 + 20
	tcpLen := len(frame) - l4
	sum := uint32(unix.IPPROTO_TCP) + uint32(tcpLen)
	for i := 0; i < 8; i += 2 { // source and destination addresses
		sum += uint32(binary.BigEndian.Uint16(frame[l3+12+i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(frame[l4+16:], uint16(sum))
	return frame, testenv.VnetHdr{
		Flags:      unix.VIRTIO_NET_HDR_F_NEEDS_CSUM,
		GSOType:    unix.VIRTIO_NET_HDR_GSO_TCPV4,
		HdrLen:     l4 + 20,
		GSOSize:    uint16(mss),
		CsumStart:  l4,
		CsumOffset: 16, // offsetof(struct tcphdr, check)
	}
}

// tapCounters reads the counters BenchmarkTapBulk watches: the datapath's
// (show's last line), its per-port ones ("vnet1.rx_packets", ...) and the
// kernel's statistics of the tap devices ("kernel.vnet2.tx_dropped", ...),
// where tun counts what it drops.
func tapCounters(b *testing.B, show string, lab *testenv.Lab) map[string]int64 {
	out := map[string]int64{}
	port := ""
	for _, line := range strings.Split(show, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && strings.HasSuffix(f[0], "):") && strings.Contains(f[0], "("):
			port = f[0][strings.Index(f[0], "(")+1 : len(f[0])-2]
		case len(f) > 1 && (f[0] == "rx" || f[0] == "tx"):
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, ":")
				n, _ := strconv.ParseInt(v, 10, 64)
				out[port+"."+f[0]+"_"+k] = n
			}
		case len(f) > 1 && f[0] == "datapath:":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, ":")
				n, _ := strconv.ParseInt(v, 10, 64)
				out[k] = n
			}
		}
	}
	h := lab.Host.MustHandle(b)
	for _, vm := range lab.VMs {
		l, err := h.LinkByName(vm.Port)
		if err != nil {
			b.Fatal(err)
		}
		st := l.Attrs().Statistics
		for k, v := range map[string]uint64{"rx_packets": st.RxPackets, "rx_dropped": st.RxDropped, "tx_packets": st.TxPackets, "tx_dropped": st.TxDropped} {
			out["kernel."+vm.Port+"."+k] = int64(v)
		}
	}
	return out
}

// movedCounters lists the counters that changed, sorted, with the change.
func movedCounters(before, after map[string]int64) string {
	var out []string
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out = append(out, fmt.Sprintf("%s:%+d", k, d))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, " ")
}
