package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// LabSubnet is the VM subnet of the lab: VM N has address 10.0.10.N/24.
var LabSubnet = net.IPNet{IP: net.IPv4(10, 0, 10, 0).To4(), Mask: net.CIDRMask(24, 32)}

// MaxLabVMs is the largest number of VMs a lab can have (10.0.10.1 to
// 10.0.10.254).
const MaxLabVMs = 254

// Lab is the Open vSwitch conntrack-lab topology: a host ("hypervisor")
// namespace that holds the switch ports (vnet1, vnet2, ...) and, for veth
// labs, one namespace per VM. The switch under test attaches its programs to
// the ports in Host; nothing is created in the caller's namespace. Tests
// build it with NewLab, other programs (the benchmarks, the demo's
// ebpfovs-lab command) with BuildLab; this is the one place that knows its
// names, addresses, MACs and sysctls.
type Lab struct {
	// Tag names the lab's namespaces (LabOptions.Tag).
	Tag string
	// Host is the namespace holding the ports (nil in a Direct lab).
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

// LabOptions configures BuildLab and NewLab.
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
	// Direct joins the two VMs' eth0 with one veth pair, without a switch:
	// there is no Host (nil) and the VMs have no Port. The physical limit
	// of the lab, for the benchmarks. It needs 2 VMs and no Tap.
	Direct bool
	// Tag names the lab's namespaces: LabHostNS(Tag) and LabVMNS(Tag, N).
	// The caller makes it unique (a PID, a run's random tag). Empty means
	// a fresh UniqueName(LabTagPrefix).
	Tag string
	// Detached lets the lab outlive the process that built it, for a
	// command that builds it and exits: its namespaces are not recorded in
	// OwnerDir, so no stale sweep deletes them when the process is gone;
	// DeleteLab(Tag) removes them. It needs a Tag and no Tap (a tap
	// device goes away with its process).
	Detached bool
}

// LabTagPrefix starts the tag of a lab built without LabOptions.Tag.
const LabTagPrefix = "eolab-"

// LabHostNS returns the name of the host ("hypervisor") namespace of the lab
// tagged tag: tag + "-hv".
func LabHostNS(tag string) string { return tag + "-hv" }

// LabVMNS returns the name of the namespace of VM n in the lab tagged tag:
// tag + "-vmN".
func LabVMNS(tag string, n int) string { return fmt.Sprintf("%s-vm%d", tag, n) }

// VMIP returns the lab address of VM n: 10.0.10.n.
func VMIP(n int) net.IP { return net.IPv4(10, 0, 10, byte(n)).To4() }

// VMMAC returns the lab MAC of VM n: 02:00:00:00:0a:NN with NN = n.
func VMMAC(n int) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0x0a, byte(n)} }

// NewLab builds the lab with BuildLab, failing the test on error, and
// registers a cleanup that removes all of it. It skips the test when not
// privileged (see RequirePrivileged).
func NewLab(tb testing.TB, opt LabOptions) *Lab {
	tb.Helper()
	RequirePrivileged(tb)
	lab, remove, err := BuildLab(opt)
	if err != nil {
		tb.Fatalf("testenv: NewLab: %v", err)
	}
	tb.Cleanup(func() {
		if err := remove(); err != nil {
			tb.Errorf("testenv: remove lab %s: %v", lab.Tag, err)
		}
	})
	return lab
}

// BuildLab builds the lab, without a test: it returns the lab and a function
// that removes every namespace, link and tap device it made (and reports
// what it could not remove). On error, what was built is already removed.
//
// Veth lab: VM N gets a namespace with eth0 (10.0.10.N/24, MAC VMMAC(N)),
// whose veth peer is vnetN in Host. All links are up, loopback too, and
// IPv6 is disabled in every lab namespace (default and per interface), so
// no router solicitations or MLD reports add noise.
//
// Tap lab (opt.Tap): vnetN is a tap device in Host (see NS.CreateTap), and
// the caller is the VM, writing and reading frames with Lab.Tap(i).
//
// The ports are not connected to anything: attaching the switch (or, for
// baselines, Lab.AddBridge) is up to the caller.
func BuildLab(opt LabOptions) (lab *Lab, remove func() error, err error) {
	n := opt.VMs
	if n == 0 {
		n = 2
	}
	switch {
	case n < 1 || n > MaxLabVMs:
		return nil, nil, fmt.Errorf("testenv: lab: %d VMs, want 1..%d", n, MaxLabVMs)
	case opt.Direct && (n != 2 || opt.Tap):
		return nil, nil, fmt.Errorf("testenv: lab: Direct needs 2 veth VMs (have %d, Tap %v)", n, opt.Tap)
	case opt.Detached && (opt.Tag == "" || opt.Tap):
		return nil, nil, errors.New("testenv: lab: Detached needs a Tag and no Tap")
	}
	tag := opt.Tag
	if tag == "" {
		tag = UniqueName(LabTagPrefix)
	}
	lab = &Lab{Tag: tag}
	var undo []func() error // in the order of creation
	var once sync.Once
	var removeErr error
	remove = func() error {
		once.Do(func() {
			var errs []error
			for i := len(undo) - 1; i >= 0; i-- {
				errs = append(errs, undo[i]())
			}
			removeErr = errors.Join(errs...)
		})
		return removeErr
	}
	defer func() {
		if err != nil {
			if rerr := remove(); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove what was built: %w", rerr))
			}
			err = fmt.Errorf("testenv: lab %s: %w", tag, err)
			lab, remove = nil, nil
		}
	}()
	newNS := func(name string) (*NS, error) {
		ns, err := createNamedNS(name, !opt.Detached)
		if err != nil {
			return nil, err
		}
		undo = append(undo, ns.Delete)
		if err := ns.DisableIPv6(); err != nil {
			return nil, fmt.Errorf("%s: disable IPv6: %w", ns, err)
		}
		return ns, nil
	}
	if !opt.Direct {
		if lab.Host, err = newNS(LabHostNS(tag)); err != nil {
			return
		}
	}
	for i := 1; i <= n; i++ {
		vm := &VM{N: i, IP: VMIP(i), MAC: VMMAC(i)}
		lab.VMs = append(lab.VMs, vm)
		if !opt.Direct {
			vm.Port = fmt.Sprintf("vnet%d", i)
		}
		if opt.Tap {
			if vm.Tap, err = lab.Host.CreateTap(vm.Port); err != nil {
				return
			}
			undo = append(undo, vm.Tap.Close)
			vm.PortIndex = vm.Tap.Index
			continue
		}
		vm.Iface = "eth0"
		if vm.NS, err = newNS(LabVMNS(tag, i)); err != nil {
			return
		}
	}
	if opt.Tap {
		return lab, remove, nil
	}
	if opt.Direct {
		err = addDirectVeth(lab.VMs[0], lab.VMs[1])
	} else {
		err = addVethPorts(lab)
	}
	if err != nil {
		return
	}
	for _, vm := range lab.VMs {
		if err = configureVM(vm, opt.TxOffloadOff); err != nil {
			return
		}
	}
	return lab, remove, nil
}

// addVethPorts creates each VM's veth pair: vm.Port in lab.Host (up, IPv6
// off) and vm.Iface directly in vm.NS, with the VM's MAC.
func addVethPorts(lab *Lab) error {
	host, err := lab.Host.Handle()
	if err != nil {
		return err
	}
	defer host.Close()
	for _, vm := range lab.VMs {
		vmFd, err := vm.NS.Open()
		if err != nil {
			return err
		}
		veth := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: vm.Port},
			PeerName:         vm.Iface,
			PeerHardwareAddr: vm.MAC,
			PeerNamespace:    netlink.NsFd(vmFd),
		}
		err = host.LinkAdd(veth)
		vmFd.Close()
		if err != nil {
			return fmt.Errorf("add veth %s <-> %s@%s: %w", vm.Port, vm.Iface, vm.NS, err)
		}
		port, err := host.LinkByName(vm.Port)
		if err != nil {
			return fmt.Errorf("%s: %w", vm.Port, err)
		}
		vm.PortIndex = port.Attrs().Index
		if err := lab.Host.DisableIPv6(vm.Port); err != nil {
			return fmt.Errorf("%s: disable IPv6: %w", vm.Port, err)
		}
		if err := host.LinkSetUp(port); err != nil {
			return fmt.Errorf("set %s up: %w", vm.Port, err)
		}
	}
	return nil
}

// addDirectVeth creates the veth pair of a Direct lab: a's eth0 and b's,
// with their MACs.
func addDirectVeth(a, b *VM) error {
	h, err := a.NS.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	bFd, err := b.NS.Open()
	if err != nil {
		return err
	}
	defer bFd.Close()
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: a.Iface, HardwareAddr: a.MAC},
		PeerName:         b.Iface,
		PeerHardwareAddr: b.MAC,
		PeerNamespace:    netlink.NsFd(bFd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s@%s <-> %s@%s: %w", a.Iface, a.NS, b.Iface, b.NS, err)
	}
	return nil
}

// configureVM turns IPv6 off on vm's eth0, gives it the VM's address and
// brings it up; with txOff it also turns tx checksum offload off.
func configureVM(vm *VM, txOff bool) error {
	if err := vm.NS.DisableIPv6(vm.Iface); err != nil {
		return fmt.Errorf("%v: %s: disable IPv6: %w", vm, vm.Iface, err)
	}
	h, err := vm.NS.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	eth, err := h.LinkByName(vm.Iface)
	if err != nil {
		return fmt.Errorf("%v: %s: %w", vm, vm.Iface, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: vm.IP, Mask: LabSubnet.Mask}}
	if err := h.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("%v: add %s to %s: %w", vm, addr.IPNet, vm.Iface, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("%v: set %s up: %w", vm, vm.Iface, err)
	}
	if txOff {
		ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
		defer cancel()
		if out, err := vm.NS.Command(ctx, "ethtool", "-K", vm.Iface, "tx", "off").CombinedOutput(); err != nil {
			return fmt.Errorf("%v: ethtool -K %s tx off: %w: %s", vm, vm.Iface, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// DeleteLab deletes the namespaces of the lab tagged tag (LabHostNS(tag)
// and every LabVMNS(tag, N)) that exist, e.g. a Detached lab built by a
// process that is gone. Their links go with them.
func DeleteLab(tag string) error {
	entries, err := os.ReadDir(NetnsRunDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testenv: delete lab %s: %w", tag, err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if name != LabHostNS(tag) && !isLabVMNS(tag, name) {
			continue
		}
		ns := &NS{Name: name, Path: filepath.Join(NetnsRunDir, name)}
		if err := ns.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testenv: delete lab %s: %w", tag, err)
	}
	return nil
}

// isLabVMNS reports whether name is LabVMNS(tag, N) for some N.
func isLabVMNS(tag, name string) bool {
	num, ok := strings.CutPrefix(name, tag+"-vm")
	n, err := strconv.Atoi(num)
	return ok && err == nil && LabVMNS(tag, n) == name
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

// Bridge is AddBridge for tests: it fails the test on error.
func (l *Lab) Bridge(tb testing.TB, name string) int {
	tb.Helper()
	index, err := l.AddBridge(name)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return index
}

// AddBridge connects all ports with a plain Linux bridge named name in Host
// (STP off, so ports forward at once; multicast snooping off, so the bridge
// does not join 224.0.0.106 and send IGMP reports; IPv6 off) and returns
// its ifindex. It is meant for baselines without the switch; the bridge goes
// away with Host.
func (l *Lab) AddBridge(name string) (int, error) {
	h, err := l.Host.Handle()
	if err != nil {
		return 0, err
	}
	defer h.Close()
	snooping := false
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}, MulticastSnooping: &snooping}
	if err := h.LinkAdd(br); err != nil {
		return 0, fmt.Errorf("add bridge %s in %s: %w", name, l.Host, err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := l.Host.DisableIPv6(name); err != nil {
		return 0, fmt.Errorf("bridge %s: disable IPv6: %w", name, err)
	}
	for _, vm := range l.VMs {
		if err := h.LinkSetMasterByIndex(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: vm.PortIndex}}, link.Attrs().Index); err != nil {
			return 0, fmt.Errorf("enslave %s to %s: %w", vm.Port, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return 0, fmt.Errorf("set %s up: %w", name, err)
	}
	return link.Attrs().Index, nil
}
