package ctl_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestTapLab runs the lab on tap ports, as real VMs sit behind taps: the
// test writes each VM's frames into its tap and reads what the switch sends
// out of the other one. In TC mode, in XDP mode, and as auto attaches taps
// (XDP from Linux 6.9: loader.DefaultAutoModes).
func TestTapLab(t *testing.T) {
	t.Run("tc", func(t *testing.T) { runTapLab(t, tcMode()) })
	t.Run("xdp", func(t *testing.T) { runTapLab(t, "xdp") })
	t.Run("auto", func(t *testing.T) { runTapLab(t, "auto") })
}

// tcMode is TC mode's --mode here: tcx, or tc before Linux 6.6.
func tcMode() string {
	if testenv.HasTCX() {
		return "tcx"
	}
	return "tc"
}

// tapAutoXDP: auto gives taps XDP on this kernel (Linux 6.9 and later).
func tapAutoXDP() bool { return testenv.KernelAtLeast(6, 9) }

func runTapLab(t *testing.T, attachMode string) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2, Tap: true})
	c := newCLI(t, lab.Host.Path)
	tap1, tap2 := lab.Tap(0), lab.Tap(1)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]

	mode, auto := tcMode(), ""
	xdp := attachMode == "xdp" || attachMode == "auto" && tapAutoXDP()
	if xdp {
		mode = "xdp+" + mode
	}
	if attachMode == "auto" {
		auto = " auto:tap" // auto says what it took the device for
	}
	if out := c.must("attach", "--mode", attachMode, "vnet1", "vnet2"); out != fmt.Sprintf(" 1(vnet1): mode:%s output:redirect%s\n 2(vnet2): mode:%s output:redirect%s\n", mode, auto, mode, auto) {
		t.Fatalf("attach: %q (taps have no peer: plain bpf_redirect)", out)
	}
	t.Cleanup(func() { c.run("detach") })
	if attachMode == "auto" && testenv.InVM() {
		return // the rest is the tc or xdp run's, which the VMs make anyway (their time is CI's)
	}
	tap1.Drain()
	tap2.Drain()

	// expect writes frame into `from` and waits for exactly it on `to`.
	expect := func(what string, from, to *testenv.Tap, frame []byte) {
		t.Helper()
		if err := from.WriteFrame(frame); err != nil {
			t.Fatalf("%s: write: %v", what, err)
		}
		if _, err := to.ReadFrameMatching(2*time.Second, func(b []byte) bool { return bytes.Equal(b, frame) }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// expectDropped writes frame and checks the datapath dropped it: its
	// drops (surfDrops: table_miss and the drop flows) grow within
	// dropWait, and the frame has not come out of `to` by then. A quiet
	// read window alone proves nothing in a slow VM.
	expectDropped := func(what string, from, to *testenv.Tap, frame []byte) {
		t.Helper()
		to.Drain()
		before := c.surfDrops()
		if err := from.WriteFrame(frame); err != nil {
			t.Fatalf("%s: write: %v", what, err)
		}
		dropped := waitCount(c.surfDrops, before+1)
		b, err := to.ReadFrameMatching(50*time.Millisecond, func(b []byte) bool { return bytes.Equal(b, frame) })
		switch {
		case err == nil:
			t.Fatalf("%s: forwarded, want dropped: % x", what, b)
		case !errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("%s: read %s: %v", what, to, err)
		case !dropped:
			t.Fatalf("%s: the datapath dropped nothing within %v (table_miss and the drop flows did not count)\n%s", what, dropWait, c.must("show"))
		}
	}
	seg := func(from, to *testenv.VM, sport, dport uint16, flags string) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, SrcIP: from.IP, DstIP: to.IP, Proto: "tcp",
			SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: 100})
	}

	// NORMAL: a broadcast ARP floods, the reply is switched to the learned port.
	arp := testenv.Build(testenv.PacketSpec{Proto: "arp", SrcMAC: vm1.MAC, DstMAC: layers.EthernetBroadcast, SrcIP: vm1.IP, DstIP: vm2.IP})
	expect("ARP request (flooded)", tap1, tap2, arp)
	reply := testenv.Build(testenv.PacketSpec{Proto: "arp", ARPOp: 2, SrcMAC: vm2.MAC, DstMAC: vm1.MAC, SrcIP: vm2.IP, DstIP: vm1.IP})
	expect("ARP reply (learned)", tap2, tap1, reply)

	for _, f := range []string{flow1, flow2, flow3, flow4, flow5} {
		c.must("add-flow", f)
	}
	expect("SYN", tap1, tap2, seg(vm1, vm2, 40000, 5000, "S"))
	c.waitConntrack(ctLine(40000, "SYN_SENT"))
	expect("SYN-ACK", tap2, tap1, seg(vm2, vm1, 5000, 40000, "SA"))
	expect("ACK", tap1, tap2, seg(vm1, vm2, 40000, 5000, "A"))
	c.waitConntrack(ctLine(40000, "ESTABLISHED"))

	// Strict firewall: VM2 may not open connections.
	c.must("del-flows", "--strict", "priority=0")
	c.must("add-flow", "priority=0, arp, actions=NORMAL")
	// VM2's SYN is +trk+new, which no flow takes: seen on table_miss.
	expectDropped("SYN from VM2", tap2, tap1, seg(vm2, vm1, 6000, 22, "S"))
	expect("VM1's connection still flows", tap1, tap2, seg(vm1, vm2, 40000, 5000, "PA"))

	// Every malformed frame goes through the live datapath; afterwards it
	// still forwards, and the port counted every frame.
	c.must("add-flow", "priority=0, actions=NORMAL")
	rx := func() uint64 {
		m := regexp.MustCompile(`1\(vnet1\)[^\n]*\n[^\n]*\n\s+rx packets:(\d+)`).FindStringSubmatch(c.must("show"))
		if m == nil {
			t.Fatal("show: no rx counter for vnet1")
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
	before := rx()
	n := 0
	for name, frame := range testenv.MalformedFrames() {
		if len(frame) < 14 {
			continue // tap refuses frames without an Ethernet header
		}
		if name == testenv.MalVLANTruncated {
			// The kernel drops a frame whose 802.1Q tag is cut short while
			// untagging it, before any TC hook; TestMalformedFrames in bpf/
			// runs our parser on it through BPF_PROG_TEST_RUN.
			continue
		}
		if err := tap1.WriteFrame(frame); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n++
	}
	expect("a good frame after the malformed ones", tap1, tap2, seg(vm1, vm2, 40000, 5000, "PA"))
	if got := rx() - before; got < uint64(n+1) {
		t.Errorf("vnet1 counted %d frames, want at least %d (%d malformed + 1)", got, n+1, n)
	}
	t.Logf("%d malformed frames went through the datapath", n)

	checkXDPCounters(t, c.must("show"), xdp)
}

// TestTapVLAN: VLAN actions on real taps. A pushed tag is kept in the
// skb's metadata, and the tap driver writes it into the frame the VM reads;
// a tagged frame from a VM arrives untagged by the kernel into metadata.
func TestTapVLAN(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2, Tap: true})
	c := newCLI(t, lab.Host.Path)
	tap1, tap2 := lab.Tap(0), lab.Tap(1)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	c.must("replace-flows", "-")
	for _, f := range []string{
		"priority=10, in_port=vnet1, dl_vlan=0xffff, udp, actions=mod_vlan_vid:10,mod_vlan_pcp:5,vnet2",
		"priority=10, in_port=vnet2, dl_vlan=20, udp, actions=strip_vlan,vnet1",
		"priority=10, in_port=vnet1, dl_vlan=30, udp, actions=mod_vlan_vid:31,vnet2",
		"priority=10, in_port=vnet2, dl_vlan=0xffff, tcp, actions=push_vlan:0x8100,mod_vlan_vid:7,vnet1",
	} {
		c.must("add-flow", f)
	}
	frame := func(from, to *testenv.VM, proto string, vlan int, pcp uint8) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, SrcIP: from.IP, DstIP: to.IP, Proto: proto,
			SrcPort: 7, DstPort: 9, TCPFlags: map[string]string{"tcp": "S"}[proto], VLAN: vlan, PCP: pcp, Payload: []byte("vlan")})
	}
	cases := []struct {
		name     string
		from, to *testenv.Tap
		in, want []byte
	}{
		{"mod_vlan_vid and mod_vlan_pcp tag an untagged frame", tap1, tap2, frame(vm1, vm2, "udp", 0, 0), frame(vm1, vm2, "udp", 10, 5)},
		{"strip_vlan", tap2, tap1, frame(vm2, vm1, "udp", 20, 0), frame(vm2, vm1, "udp", 0, 0)},
		{"mod_vlan_vid changes a tag", tap1, tap2, frame(vm1, vm2, "udp", 30, 3), frame(vm1, vm2, "udp", 31, 3)},
		{"push_vlan then mod_vlan_vid", tap2, tap1, frame(vm2, vm1, "tcp", 0, 0), frame(vm2, vm1, "tcp", 7, 0)},
	}
	for _, tc := range cases {
		tc.to.Drain()
		if err := tc.from.WriteFrame(tc.in); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := tc.to.ReadFrameMatching(2*time.Second, func(b []byte) bool { return len(b) > 14 && !bytes.Equal(b[:6], layers.EthernetBroadcast) })
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s:\n got % x\nwant % x", tc.name, got, tc.want)
		}
	}
}

// TestTapRewriteThenOutput: each output carries the packet as it was when
// the output ran, as in Open vSwitch: rewrites after an output do not
// reach it.
func TestTapRewriteThenOutput(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3, Tap: true})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2, vm3 := lab.VMs[0], lab.VMs[1], lab.VMs[2]
	c.must("attach", "vnet1", "vnet2", "vnet3")
	t.Cleanup(func() { c.run("detach") })
	c.must("add-flow", "priority=10, in_port=vnet1, udp, actions=mod_dl_dst:"+vm2.MAC.String()+",vnet2,mod_dl_dst:"+vm3.MAC.String()+",vnet3")
	spec := testenv.PacketSpec{SrcMAC: vm1.MAC, DstMAC: layers.EthernetBroadcast, SrcIP: vm1.IP, DstIP: vm2.IP, Proto: "udp", SrcPort: 7, DstPort: 9, Payload: []byte("order")}
	in := testenv.Build(spec)
	lab.Tap(1).Drain()
	lab.Tap(2).Drain()
	if err := lab.Tap(0).WriteFrame(in); err != nil {
		t.Fatal(err)
	}
	for i, vm := range []*testenv.VM{vm2, vm3} {
		want := spec
		want.DstMAC = vm.MAC
		frame := testenv.Build(want)
		if _, err := lab.Tap(i+1).ReadFrameMatching(2*time.Second, func(b []byte) bool { return bytes.Equal(b, frame) }); err != nil {
			t.Errorf("vnet%d: %v (want the frame with dl_dst=%s)", i+2, err, vm.MAC)
		}
	}
}

// TestTapTSO: a VM's 64 KB TSO segments cross the switch whole, in TC mode
// and in XDP mode, through taps opened as QEMU opens them
// (IFF_VNET_HDR, offloads on). XDP cannot redirect a frame longer than
// the MTU (generic XDP, which tun runs for such frames, drops it), so the
// XDP program passes every one on to TC (xdp_to_tc) and TC sends it; the
// connection stays ESTABLISHED either way.
func TestTapTSO(t *testing.T) {
	for _, mode := range []string{tcMode(), "xdp"} {
		t.Run(mode, func(t *testing.T) {
			testenv.RequirePrivileged(t)
			lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2, Tap: true})
			c := newCLI(t, lab.Host.Path)
			const offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
			tap1, tap2 := lab.Tap(0).OpenVnetHdr(t, offloads), lab.Tap(1).OpenVnetHdr(t, offloads)
			c.must("attach", "--mode", mode, "vnet1", "vnet2")
			t.Cleanup(func() { c.run("detach") })
			for _, f := range []string{flow1, flow2, flow3, flow4, flow5} {
				c.must("add-flow", f)
			}
			data, hdr := tsoConn(t, tap1, tap2, lab.VMs[0], lab.VMs[1], 41000)
			toTC := func() int64 { return showCounter(t, c.must("show"), "xdp_to_tc") }
			before := toTC()
			const n = 20
			for i := 0; i < n; i++ {
				if err := tap1.WriteFrame(hdr, data); err != nil {
					t.Fatal(err)
				}
				h, f, err := tap2.ReadFrame(5 * time.Second)
				if err != nil {
					t.Fatalf("TSO segment %d did not come out of vnet2: %v\n%s", i, err, c.must("show"))
				}
				if !tsoWhole(h, f, data) || !bytes.Equal(f, data) {
					t.Fatalf("TSO segment %d came out other than whole and unchanged: %s, %d bytes", i, h, len(f))
				}
			}
			if got := toTC() - before; mode == "xdp" && got != n {
				t.Errorf("xdp_to_tc grew by %d, want %d: every segment passed on to TC", got, n)
			} else if mode != "xdp" && got != 0 {
				t.Errorf("xdp_to_tc grew by %d in TC mode", got)
			}
			c.waitConntrack(ctLine(41000, "ESTABLISHED"))
		})
	}
}

// showCounter reads one of the datapath's counters from show's output
// ("datapath: packets:N ... name:N").
func showCounter(t *testing.T, show, name string) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*datapath:.*\s` + regexp.QuoteMeta(name) + `:(\d+)`).FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("show has no datapath counter %s:\n%s", name, show)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}
