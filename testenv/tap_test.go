package testenv

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func isARP(b []byte) bool {
	_, et, err := l3Offset(b)
	return err == nil && et == uint16(layers.EthernetTypeARP)
}

// TestTapLabBridge bridges the taps of a 3-VM tap lab in Host and checks
// both directions of the tap convention: a broadcast ARP request written on
// Tap(0) is flooded out of Tap(1) and Tap(2); after the bridge learned VM 1's
// MAC, a unicast reply written on Tap(1) comes out of Tap(0) only.
func TestTapLabBridge(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabOptions{VMs: 3, Tap: true})
	host := lab.Host.MustHandle(t)
	for i, vm := range lab.VMs {
		if vm.NS != nil || vm.Tap == nil || lab.Tap(i) != vm.Tap || vm.Tap.Name != vm.Port || vm.Tap.Index != vm.PortIndex {
			t.Fatalf("tap lab VM %+v", vm)
		}
		link, err := host.LinkByName(vm.Port)
		if err != nil || link.Type() != "tuntap" || link.Attrs().Index != vm.PortIndex {
			t.Fatalf("%s in Host: %v %v", vm.Port, link, err)
		}
		if tt := link.(*netlink.Tuntap); tt.Mode != netlink.TUNTAP_MODE_TAP || tt.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 {
			t.Errorf("%s: mode %v flags %#x, want tap, single queue", vm.Port, tt.Mode, tt.Flags)
		}
	}
	lab.Bridge(t, "br0")

	vm1, vm2 := lab.VM(1), lab.VM(2)
	req := Build(PacketSpec{Proto: "arp", ARPOp: 1, SrcMAC: vm1.MAC, SrcIP: vm1.IP, DstIP: vm2.IP})
	if err := lab.Tap(0).WriteFrame(req); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, 2} {
		// Strict ReadFrame, not ReadFrameMatching: the lab must be quiet
		// (no IPv6 router solicitations or MLD reports).
		got, err := lab.Tap(i).ReadFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("Tap(%d): %v", i, err)
		}
		if !bytes.Equal(got, req) {
			t.Fatalf("Tap(%d) read\n%x\nwant the ARP request\n%x", i, got, req)
		}
	}

	reply := Build(PacketSpec{Proto: "arp", ARPOp: 2, SrcMAC: vm2.MAC, DstMAC: vm1.MAC, SrcIP: vm2.IP, DstIP: vm1.IP})
	if err := lab.Tap(1).WriteFrame(reply); err != nil {
		t.Fatal(err)
	}
	got, err := lab.Tap(0).ReadFrameMatching(5*time.Second, isARP)
	if err != nil || !bytes.Equal(got, reply) {
		t.Fatalf("Tap(0) read %x, %v; want the ARP reply", got, err)
	}
	if b, err := lab.Tap(2).ReadFrame(300 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Tap(2) got %x, %v; want a timeout (unicast to a learned MAC)", b, err)
	}

	// The frames written on the taps count as received by the tap devices.
	for i, want := range []uint64{1, 1, 0} {
		link, err := host.LinkByName(lab.VMs[i].Port)
		if err != nil {
			t.Fatal(err)
		}
		if got := link.Attrs().Statistics.RxPackets; got != want {
			t.Errorf("%s rx_packets = %d, want %d", lab.VMs[i].Port, got, want)
		}
	}
}

// TestTapDevice checks a lone tap: written frames show up in its rx
// counters (they entered the kernel through the tap's ingress), nothing can
// be read when nothing is sent, frames shorter than an Ethernet header are
// rejected, and Close deletes the device.
func TestTapDevice(t *testing.T) {
	t.Parallel()
	ns := NewNS(t, "tst-")
	if err := ns.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	tap := ns.NewTap(t, "tap0")
	h := ns.MustHandle(t)

	if b, err := tap.ReadFrame(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame on an idle tap = %x, %v; want timeout", b, err)
	}
	frame := Build(PacketSpec{Proto: "arp", SrcMAC: VMMAC(1), SrcIP: VMIP(1), DstIP: VMIP(2)})
	for range 3 {
		if err := tap.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
	}
	link, err := h.LinkByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	if s := link.Attrs().Statistics; s.RxPackets != 3 || s.RxBytes != uint64(3*len(frame)) {
		t.Errorf("tap0 rx packets/bytes %d/%d, want 3/%d", s.RxPackets, s.RxBytes, 3*len(frame))
	}

	// The kernel refuses frames shorter than an Ethernet header and takes
	// every other malformed frame.
	for name, b := range MalformedFrames() {
		err := tap.WriteFrame(b)
		if name == MalEthTruncated {
			if !errors.Is(err, unix.EINVAL) {
				t.Errorf("writing the %d-byte %s: %v, want EINVAL", len(b), name, err)
			}
		} else if err != nil {
			t.Errorf("writing %s: %v", name, err)
		}
	}

	if err := tap.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName("tap0"); err == nil {
		t.Error("tap0 still exists after Close")
	}
	if err := tap.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestBuildAgainstKernel hands Build's frames to a real kernel stack through
// a tap: the kernel only answers a TCP SYN or an ICMP echo request if their
// checksums are right, and its answers must pass VerifyChecksums.
func TestBuildAgainstKernel(t *testing.T) {
	t.Parallel()
	ns := NewNS(t, "tst-")
	if err := ns.DisableIPv6(); err != nil {
		t.Fatal(err)
	}
	tap := ns.NewTap(t, "tap0")
	h := ns.MustHandle(t)
	link, err := h.LinkByName("tap0")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel side is "VM 2"; the test plays VM 1.
	if err := h.LinkSetHardwareAddr(link, VMMAC(2)); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: VMIP(2), Mask: LabSubnet.Mask}}); err != nil {
		t.Fatal(err)
	}
	if err := h.NeighAdd(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: VMIP(1), HardwareAddr: VMMAC(1)}); err != nil {
		t.Fatal(err)
	}
	vm2 := &VM{N: 2, NS: ns, IP: VMIP(2)}
	vm2.ListenTCP(t, 80)

	base := PacketSpec{SrcMAC: VMMAC(1), DstMAC: VMMAC(2), SrcIP: VMIP(1), DstIP: VMIP(2)}
	syn := base
	syn.Proto, syn.SrcPort, syn.DstPort, syn.TCPFlags, syn.Seq = "tcp", 40000, 80, "S", 1000
	ping := base
	ping.Proto, ping.ICMPType, ping.ICMPID, ping.ICMPSeq, ping.Payload = "icmp", 8, 77, 1, []byte("abcdefgh")

	corrupt := func(s PacketSpec) []byte {
		b := Build(s)
		b[len(b)-1] ^= 0x55 // last byte is covered by the L4 checksum only
		return b
	}
	isFromKernel := func(b []byte) bool { return bytes.Equal(b[6:12], VMMAC(2)) }

	// Corrupted checksums get no answer.
	for _, b := range [][]byte{corrupt(syn), corrupt(ping)} {
		if err := tap.WriteFrame(b); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := tap.ReadFrameMatching(500*time.Millisecond, isFromKernel); err == nil {
		t.Fatalf("kernel answered a frame with a bad checksum: %x", b)
	}

	// Good ones do.
	if err := tap.WriteFrame(Build(syn)); err != nil {
		t.Fatal(err)
	}
	b, err := tap.ReadFrameMatching(5*time.Second, isFromKernel)
	if err != nil {
		t.Fatal(err)
	}
	tcp, ok := Decode(b).Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok || !tcp.SYN || !tcp.ACK || tcp.Ack != 1001 || tcp.DstPort != 40000 {
		t.Fatalf("want a SYN-ACK for our SYN, got %v", Decode(b))
	}
	if err := VerifyChecksums(b); err != nil {
		t.Errorf("kernel's SYN-ACK: %v", err)
	}
	rst := base
	rst.Proto, rst.SrcPort, rst.DstPort, rst.TCPFlags, rst.Seq = "tcp", 40000, 80, "R", 1001
	if err := tap.WriteFrame(Build(rst)); err != nil {
		t.Fatal(err)
	}

	if err := tap.WriteFrame(Build(ping)); err != nil {
		t.Fatal(err)
	}
	b, err = tap.ReadFrameMatching(5*time.Second, isFromKernel)
	if err != nil {
		t.Fatal(err)
	}
	icmp, ok := Decode(b).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode.Type() != layers.ICMPv4TypeEchoReply || icmp.Id != 77 || !bytes.Equal(icmp.Payload, []byte("abcdefgh")) {
		t.Fatalf("want an echo reply, got %v", Decode(b))
	}
	if err := VerifyChecksums(b); err != nil {
		t.Errorf("kernel's echo reply: %v", err)
	}
}
