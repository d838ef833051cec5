package testenv

import (
	"fmt"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

// LabSubnet is the VM subnet of the lab: VM N has address 10.0.10.N/24.
var LabSubnet = net.IPNet{IP: net.IPv4(10, 0, 10, 0).To4(), Mask: net.CIDRMask(24, 32)}

// MaxLabVMs is the largest number of VMs a lab can have (10.0.10.1 to
// 10.0.10.254).
const MaxLabVMs = 254

// Lab is the Open vSwitch conntrack-lab topology: a host namespace owned by
// the test that holds the switch ports (vnet1, vnet2, ...) and, for veth
// labs, one namespace per VM. The switch under test attaches its programs to
// the ports in Host; nothing is created in the caller's namespace.
type Lab struct {
	// Host is the namespace holding the ports.
	Host *NS
	// VMs are the VMs in order: VMs[0] is VM 1 on port vnet1.
	VMs []*VM
}

// VM is one VM of a Lab and the switch port it is plugged into.
type VM struct {
	// N is the VM number, from 1.
	N int
	// NS is the VM's namespace (veth labs). It is nil in tap labs, where the
	// test itself plays the VM through Tap.
	NS *NS
	// Port is the host-side port name in Lab.Host: "vnet1", "vnet2", ...
	// Plain names are fine because they live in the lab's private Host.
	Port string
	// PortIndex is the ifindex of Port in Lab.Host.
	PortIndex int
	// IP is the VM address 10.0.10.N (configured on Iface in veth labs; in
	// tap labs it is the address the test should use in crafted frames).
	IP net.IP
	// MAC is the VM's MAC, 02:00:00:00:0a:NN with NN = N (set on Iface in
	// veth labs; for crafted frames in tap labs).
	MAC net.HardwareAddr
	// Iface is the VM's interface inside NS: "eth0" (empty in tap labs).
	Iface string
	// Tap is the port's tap device and the test's end of it (tap labs only).
	Tap *Tap
}

// String identifies the VM in test logs.
func (vm *VM) String() string { return fmt.Sprintf("vm%d(%s,%s)", vm.N, vm.IP, vm.Port) }

// LabOptions configures NewLab.
type LabOptions struct {
	// VMs is the number of VMs; 0 means 2.
	VMs int
	// Tap makes the ports tap devices driven by the test (Lab.Tap) instead
	// of veth pairs leading to VM namespaces.
	Tap bool
	// TxOffloadOff turns off tx checksum offload on each VM's eth0
	// (`ethtool -K eth0 tx off`), so frames leave the VM with complete
	// checksums instead of CHECKSUM_PARTIAL ones. Ignored for tap labs,
	// whose frames are written by the test.
	TxOffloadOff bool
}

// VMIP returns the lab address of VM n: 10.0.10.n.
func VMIP(n int) net.IP { return net.IPv4(10, 0, 10, byte(n)).To4() }

// VMMAC returns the lab MAC of VM n: 02:00:00:00:0a:NN with NN = n.
func VMMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0x0a, byte(n)} }

// NewLab builds the lab and registers cleanups that remove all of it.
//
// Veth lab: VM N gets a namespace with eth0 (10.0.10.N/24, MAC VMMAC(N)),
// whose veth peer is vnetN in Host. All links are up and IPv6 is disabled
// in every lab namespace (default and per interface), so no router
// solicitations or MLD reports add noise.
//
// Tap lab (opt.Tap): vnetN is a tap device in Host (see NS.NewTap), and the
// test is the VM, writing and reading frames with Lab.Tap(i).
//
// The ports are not connected to anything: attaching the switch (or, for
// baseline tests, Lab.Bridge) is up to the test.
func NewLab(tb testing.TB, opt LabOptions) *Lab {
	tb.Helper()
	RequirePrivileged(tb)
	n := opt.VMs
	if n == 0 {
		n = 2
	}
	if n < 1 || n > MaxLabVMs {
		tb.Fatalf("testenv: NewLab: %d VMs, want 1..%d", n, MaxLabVMs)
	}
	lab := &Lab{Host: NewNS(tb, "eoh-")}
	if err := lab.Host.DisableIPv6(); err != nil {
		tb.Fatalf("testenv: %s: disable IPv6: %v", lab.Host, err)
	}
	host := lab.Host.MustHandle(tb)
	for i := 1; i <= n; i++ {
		vm := &VM{N: i, Port: fmt.Sprintf("vnet%d", i), IP: VMIP(i), MAC: VMMAC(i)}
		if opt.Tap {
			vm.Tap = lab.Host.NewTap(tb, vm.Port)
			vm.PortIndex = vm.Tap.Index
		} else {
			vm.Iface = "eth0"
			vm.NS = NewNS(tb, "eov-")
			if err := addVethVM(host, lab.Host, vm); err != nil {
				tb.Fatalf("testenv: NewLab: %v: %v", vm, err)
			}
			if opt.TxOffloadOff {
				vm.NS.Run(tb, "ethtool", "-K", vm.Iface, "tx", "off")
			}
		}
		lab.VMs = append(lab.VMs, vm)
	}
	return lab
}

// addVethVM creates vm's veth pair: vm.Port in host, vm.Iface directly in
// vm.NS, and configures both ends.
func addVethVM(host *netlink.Handle, hostNS *NS, vm *VM) error {
	if err := vm.NS.DisableIPv6(); err != nil {
		return fmt.Errorf("disable IPv6 in %s: %w", vm.NS, err)
	}
	vmFd, err := vm.NS.Open()
	if err != nil {
		return err
	}
	defer vmFd.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: vm.Port},
		PeerName:         vm.Iface,
		PeerHardwareAddr: vm.MAC,
		PeerNamespace:    netlink.NsFd(vmFd),
	}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s <-> %s@%s: %w", vm.Port, vm.Iface, vm.NS, err)
	}
	port, err := host.LinkByName(vm.Port)
	if err != nil {
		return err
	}
	vm.PortIndex = port.Attrs().Index
	if err := hostNS.DisableIPv6(vm.Port); err != nil {
		return err
	}
	if err := host.LinkSetUp(port); err != nil {
		return fmt.Errorf("set %s up: %w", vm.Port, err)
	}

	if err := vm.NS.DisableIPv6(vm.Iface); err != nil {
		return err
	}
	h, err := vm.NS.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	eth, err := h.LinkByName(vm.Iface)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vm.IP, Mask: LabSubnet.Mask}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr.IPNet, vm.Iface, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set %s up: %w", vm.Iface, err)
	}
	return nil
}

// VM returns VM n (1-based, as in vnetN and 10.0.10.N).
func (l *Lab) VM(n int) *VM {
	if n < 1 || n > len(l.VMs) {
		panic(fmt.Sprintf("testenv: lab has %d VMs, no VM %d", len(l.VMs), n))
	}
	return l.VMs[n-1]
}

// Tap returns the tap of VMs[i] (0-based: Tap(0) is vnet1) in a tap lab. It
// panics in a veth lab.
func (l *Lab) Tap(i int) *Tap {
	if i < 0 || i >= len(l.VMs) {
		panic(fmt.Sprintf("testenv: lab has %d VMs, no tap %d", len(l.VMs), i))
	}
	t := l.VMs[i].Tap
	if t == nil {
		panic("testenv: Lab.Tap on a veth lab (LabOptions.Tap was false)")
	}
	return t
}

// Bridge connects all ports with a plain Linux bridge named name in Host
// (STP off, so ports forward at once; multicast snooping off, so the bridge
// does not join 224.0.0.106 and send IGMP reports) and returns its ifindex. It is meant
// for baseline tests without the switch; the bridge goes away with Host.
func (l *Lab) Bridge(tb testing.TB, name string) int {
	tb.Helper()
	h := l.Host.MustHandle(tb)
	snooping := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &snooping}
	if err := h.LinkAdd(br); err != nil {
		tb.Fatalf("testenv: add bridge %s: %v", name, err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	if err := l.Host.DisableIPv6(name); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	for _, vm := range l.VMs {
		if err := h.LinkSetMasterByIndex(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: vm.PortIndex}}, link.Attrs().Index); err != nil {
			tb.Fatalf("testenv: enslave %s to %s: %v", vm.Port, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		tb.Fatalf("testenv: set %s up: %v", name, err)
	}
	return link.Attrs().Index
}
