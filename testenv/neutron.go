package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
)

// An OpenStack Neutron deployment of two compute nodes, in namespaces, for
// the tests and `make demo-neutron`: what Neutron's Open vSwitch agent
// builds, with ebpfovs as the switch.
//
//	 vm-a (net A)  vm-b (net B)                  vm-c (net A)  vm-d (net B)
//	   tap-a         tap-b                         tap-c         tap-d
//	 [br-int: access ports, VLAN per net]        [br-int]
//	   tap-dhcp (qdhcp: dnsmasq), qr-a (qrouter: SNAT -- ext)
//	   patch-tun                                   patch-tun
//	   patch-int                                   patch-int
//	 [br-tun: tables 0 2 4 10 20 21 22]          [br-tun]
//	   vxlan-ac1f0002 ---- phy0 172.31.0.1 == 172.31.0.2 ---- vxlan-ac1f0001
//	       node 1 (also the network node)            node 2
//
// Networks A and B have the same subnet (10.1.0.0/24) and the same
// addresses (.11 on node 1, .12 on node 2): only the switch keeps them
// apart. Each node tags a network with a local VLAN of its own (A is 100
// on node 1 and 102 on node 2); br-tun maps it to the network's VNI.
// Network A has a DHCP server and a router to the outside (203.0.113.1),
// which SNATs; network B has neither (static addresses).

// NeutronNet is a tenant network.
type NeutronNet struct {
	Name string
	VNI  uint32
	VLAN [2]int // its local VLAN on node 1 and on node 2
	// Router is network A's router (nil on B, which has none).
	Router net.IP
	// DHCP is the network's DHCP server's address, in DHCPNS on node 1
	// (Neutron's qdhcp-NET), on port DHCPPort of br-int.
	DHCP     net.IP
	DHCPNS   *NS
	DHCPPort string
}

// NeutronVM is a VM: a namespace whose eth0 is a veth whose other end
// (VM.Port, tap-X) is in its node's namespace.
type NeutronVM struct {
	*VM
	Name string // "vm-a"
	Node int    // 0 or 1
	Net  *NeutronNet
}

// Neutron is a built deployment.
type Neutron struct {
	Tag                string
	Nodes              [2]*NS
	NodeIP             [2]net.IP // on phy0
	Nets               []*NeutronNet
	VMs                []*NeutronVM
	RouterNS, ExtNS    *NS
	ExtIP, RouterExtIP net.IP // the outside host, and the router's address there (SNAT)

	mu      sync.Mutex
	dnsmasq []*exec.Cmd
	tmp     string // udhcpc's script
}

// NeutronSubnet is both networks' subnet.
var NeutronSubnet = net.IPNet{IP: net.IPv4(10, 1, 0, 0).To4(), Mask: net.CIDRMask(24, 32)}

// NeutronMAC is VM n's MAC, in OpenStack's fa:16:3e prefix.
func NeutronMAC(n int) net.HardwareAddr { return net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 0, byte(n)} }

// neutronMTU is the VMs' MTU: VXLAN adds 50 bytes on the nodes' 1500.
const neutronMTU = 1450

// neutronVNIBase is network A's tunnel id (Neutron's segmentation id), B's
// the next.
const neutronVNIBase = 0x3e9

// BuildNeutron builds the namespaces and links of a deployment tagged tag:
// nodes, VMs (network B's addressed, network A's waiting for DHCP), the
// DHCP, router and outside namespaces (the router's outside link, its
// SNAT). The switch is the plan's (Plan). remove deletes it all.
func BuildNeutron(tag string) (n *Neutron, remove func() error, err error) {
	n = &Neutron{Tag: tag, NodeIP: [2]net.IP{net.IPv4(172, 31, 0, 1).To4(), net.IPv4(172, 31, 0, 2).To4()},
		ExtIP: net.IPv4(203, 0, 113, 1).To4(), RouterExtIP: net.IPv4(203, 0, 113, 2).To4()}
	a := &NeutronNet{Name: "A", VNI: neutronVNIBase, VLAN: [2]int{100, 102},
		Router: net.IPv4(10, 1, 0, 1).To4(), DHCP: net.IPv4(10, 1, 0, 2).To4(), DHCPPort: "tap-dhcp-a"}
	b := &NeutronNet{Name: "B", VNI: neutronVNIBase + 1, VLAN: [2]int{102, 100},
		DHCP: net.IPv4(10, 1, 0, 3).To4(), DHCPPort: "tap-dhcp-b"}
	n.Nets = []*NeutronNet{a, b}
	var undo []func() error
	remove = func() error {
		n.stopDHCP()
		if n.tmp != "" {
			os.RemoveAll(n.tmp)
		}
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("testenv: neutron %s: %w", tag, err), remove())
			n, remove = nil, nil
		}
	}()
	newNS := func(name string) (*NS, error) {
		ns, err := createNamedNS(tag+"-"+name, true)
		if err != nil {
			return nil, err
		}
		undo = append(undo, ns.Delete)
		return ns, ns.DisableIPv6()
	}
	for i := range n.Nodes {
		if n.Nodes[i], err = newNS(fmt.Sprintf("node%d", i+1)); err != nil {
			return
		}
	}
	for _, nt := range n.Nets {
		if nt.DHCPNS, err = newNS("qdhcp-" + strings.ToLower(nt.Name)); err != nil {
			return
		}
	}
	if n.tmp, err = os.MkdirTemp("", "ebpfovs-neutron-"); err != nil {
		return
	}
	if n.RouterNS, err = newNS("qrouter"); err != nil {
		return
	}
	if n.ExtNS, err = newNS("ext"); err != nil {
		return
	}
	// The nodes' physical link.
	if err = vethBetween(n.Nodes[0], "phy0", nil, n.Nodes[1], "phy0", nil); err != nil {
		return
	}
	for i, ns := range n.Nodes {
		if err = addrUp(ns, "phy0", &net.IPNet{IP: n.NodeIP[i], Mask: net.CIDRMask(24, 32)}, 0); err != nil {
			return
		}
	}
	// The VMs.
	for i, spec := range []struct {
		node int
		net  *NeutronNet
	}{{0, a}, {0, b}, {1, a}, {1, b}} {
		name := string(rune('a' + i))
		vm := &NeutronVM{Name: "vm-" + name, Node: spec.node, Net: spec.net,
			VM: &VM{N: i + 1, Port: "tap-" + name, Iface: "eth0", MAC: NeutronMAC(i + 1),
				IP: net.IPv4(10, 1, 0, byte(11+spec.node)).To4()}}
		if vm.NS, err = newNS("vm-" + name); err != nil {
			return
		}
		if err = vethBetween(n.Nodes[spec.node], vm.Port, nil, vm.NS, "eth0", vm.MAC); err != nil {
			return
		}
		if err = setUp(n.Nodes[spec.node], vm.Port, 0); err != nil {
			return
		}
		// No address: the VM asks DHCP for it (NeutronVM.DHCP).
		if err = addrUp(vm.NS, "eth0", nil, neutronMTU); err != nil {
			return
		}
		n.VMs = append(n.VMs, vm)
	}
	// The outside, and the router's link to it, SNAT.
	if err = vethBetween(n.RouterNS, "qg", nil, n.ExtNS, "eth0", nil); err != nil {
		return
	}
	if err = addrUp(n.RouterNS, "qg", &net.IPNet{IP: n.RouterExtIP, Mask: net.CIDRMask(24, 32)}, 0); err != nil {
		return
	}
	if err = addrUp(n.ExtNS, "eth0", &net.IPNet{IP: n.ExtIP, Mask: net.CIDRMask(24, 32)}, 0); err != nil {
		return
	}
	if err = n.RouterNS.SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return
	}
	err = runIn(n.RouterNS, strings.NewReader(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "qg" masquerade
	}
}
`), "nft", "-f", "-")
	return n, remove, err
}

// Bridges are the two bridges of each node, under the same bpffs root
// (patch ports find their peers there).
const (
	BrInt = "br-int"
	BrTun = "br-tun"
)

// NeutronStep is one step of building the switch: an ebpfovs command
// (Bridge and Args, run on Node's namespace and bpffs root), or one of
// Neutron's own (Do: an interface into the DHCP or router namespace,
// dnsmasq). Say says why, for the demo.
type NeutronStep struct {
	Node   int
	Bridge string
	Args   []string
	Do     func() error
	Say    string
}

// tunnelPort is Neutron's name for the tunnel to remote: vxlan- and the
// remote address in hex.
func tunnelPort(remote net.IP) string {
	return fmt.Sprintf("vxlan-%02x%02x%02x%02x", remote[0], remote[1], remote[2], remote[3])
}

// TunnelPort is node's VXLAN port on br-tun (to the other node).
func (n *Neutron) TunnelPort(node int) string { return tunnelPort(n.NodeIP[1-node]) }

// Plan is the switch as Neutron's Open vSwitch agent builds it, node by
// node: br-int with the VMs' ports (tagged with their network's local
// VLAN), the DHCP and router ports on node 1; br-tun patched to it, with a
// VXLAN port to the other node and the agent's tables: 0 (from br-int or
// from a tunnel), 2 (unicast or not), 4 (VNI to local VLAN), 10 (learn the
// way back, then to br-int), 20 (learned unicast; unknown: flood), 21 (ARP
// responder for the other node's VMs, l2population's), 22 (flood to every
// tunnel of the network).
func (n *Neutron) Plan() []NeutronStep {
	var s []NeutronStep
	add := func(node int, bridge, say string, args ...string) {
		s = append(s, NeutronStep{Node: node, Bridge: bridge, Args: args, Say: say})
	}
	for node := range n.Nodes {
		for _, vm := range n.VMs {
			if vm.Node == node {
				add(node, BrInt, fmt.Sprintf("%s (network %s) on br-int, local VLAN %d", vm.Name, vm.Net.Name, vm.Net.VLAN[node]),
					"add-port", vm.Port, fmt.Sprintf("tag=%d", vm.Net.VLAN[node]))
			}
		}
		if node == 0 {
			for _, nt := range n.Nets {
				nt := nt
				add(node, BrInt, fmt.Sprintf("network %s's DHCP port: an internal port, for namespace qdhcp-%s", nt.Name, strings.ToLower(nt.Name)),
					"add-port", nt.DHCPPort, "type=internal", fmt.Sprintf("tag=%d", nt.VLAN[0]))
				s = append(s, NeutronStep{Node: node, Say: fmt.Sprintf("%s into qdhcp-%s (%s): dnsmasq serves network %s", nt.DHCPPort, strings.ToLower(nt.Name), nt.DHCP, nt.Name),
					Do: func() error { return n.startDHCP(nt) }})
			}
			a := n.Nets[0]
			add(node, BrInt, "network A's router port: an internal port, for the qrouter namespace",
				"add-port", "qr-a", "type=internal", fmt.Sprintf("tag=%d", a.VLAN[0]))
			s = append(s, NeutronStep{Node: node, Say: "qr-a into qrouter (10.1.0.1), which SNATs to the outside",
				Do: func() error {
					return moveInto(n.Nodes[0], "qr-a", n.RouterNS, &net.IPNet{IP: a.Router, Mask: NeutronSubnet.Mask})
				}})
		}
		add(node, BrInt, "br-int's end of the patch to br-tun (a trunk of every VLAN)",
			"add-port", "patch-tun", "type=patch", "options:peer=patch-int")
		add(node, BrTun, "br-tun's end", "add-port", "patch-int", "type=patch", "options:peer=patch-tun")
		remote := n.NodeIP[1-node]
		add(node, BrTun, "the tunnel to the other node (the VNI comes from the flows)",
			"add-port", tunnelPort(remote), "type=vxlan", "options:remote_ip="+remote.String(),
			"options:local_ip="+n.NodeIP[node].String(), "options:key=flow")
		add(node, BrTun, "br-tun starts empty: Neutron's tables replace the NORMAL flow", "del-flows")
		for _, f := range n.BrTunFlows(node) {
			add(node, BrTun, "", "add-flow", f)
		}
	}
	return s
}

// BrTunFlows are node's br-tun flows, as the Neutron agent installs them.
func (n *Neutron) BrTunFlows(node int) []string {
	tun := n.TunnelPort(node)
	f := []string{
		"table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",
		"table=0,priority=1,in_port=" + tun + ",actions=resubmit(,4)",
		"table=0,priority=0,actions=drop",
		"table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)",
		"table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)",
		"table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
	}
	for _, nt := range n.Nets {
		f = append(f, fmt.Sprintf("table=4,priority=1,tun_id=%#x,actions=mod_vlan_vid:%d,resubmit(,10)", nt.VNI, nt.VLAN[node]))
	}
	f = append(f, "table=4,priority=0,actions=drop",
		"table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x5a,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int",
		"table=20,priority=0,actions=resubmit(,22)")
	// l2population's ARP responder: the other node's VMs.
	for _, vm := range n.VMs {
		if vm.Node == node {
			continue
		}
		ip, mac := vm.IP.To4(), vm.MAC
		f = append(f, fmt.Sprintf("table=21,priority=1,arp,dl_vlan=%d,arp_tpa=%s,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:%s,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0x%x->NXM_NX_ARP_SHA[],load:0x%x->NXM_OF_ARP_SPA[],in_port",
			vm.Net.VLAN[node], ip, mac, []byte(mac), []byte(ip)))
	}
	f = append(f, "table=21,priority=0,actions=resubmit(,22)")
	for _, nt := range n.Nets {
		f = append(f, fmt.Sprintf("table=22,priority=1,dl_vlan=%d,actions=strip_vlan,load:%#x->NXM_NX_TUN_ID[],output:%s", nt.VLAN[node], nt.VNI, tun))
	}
	return append(f, "table=22,priority=0,actions=drop")
}

// startDHCP moves nt's DHCP port into its namespace and starts dnsmasq
// there, with fixed addresses for the network's VMs and, on a network
// with a router, the router as their gateway.
func (n *Neutron) startDHCP(nt *NeutronNet) error {
	if err := moveInto(n.Nodes[0], nt.DHCPPort, nt.DHCPNS, &net.IPNet{IP: nt.DHCP, Mask: NeutronSubnet.Mask}); err != nil {
		return err
	}
	args := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--interface=" + nt.DHCPPort,
		"--bind-interfaces", "--except-interface=lo", "--leasefile-ro", "--pid-file=", "--user=root",
		"--dhcp-range=10.1.0.100,10.1.0.200,255.255.255.0,1h"}
	if nt.Router != nil {
		args = append(args, "--dhcp-option=option:router,"+nt.Router.String())
	} else {
		args = append(args, "--dhcp-option=option:router") // none
	}
	for _, vm := range n.VMs {
		if vm.Net == nt {
			args = append(args, fmt.Sprintf("--dhcp-host=%s,%s", vm.MAC, vm.IP))
		}
	}
	cmd := nt.DHCPNS.Command(context.Background(), "dnsmasq", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start dnsmasq: %w", err)
	}
	n.mu.Lock()
	n.dnsmasq = append(n.dnsmasq, cmd)
	n.mu.Unlock()
	return nil
}

func (n *Neutron) stopDHCP() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.dnsmasq {
		if c.Process != nil {
			c.Process.Kill()
			c.Wait()
		}
	}
	n.dnsmasq = nil
}

// udhcpcScript is busybox udhcpc's event script: it configures the lease
// (address, default route) as a VM's DHCP client does, and prints it.
const udhcpcScript = `#!/bin/sh
case "$1" in
bound|renew)
	ip addr replace "$ip/$subnet" dev "$interface"
	if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
	echo "LEASE $ip $subnet ${router%% *} $serverid"
	;;
esac
`

// DHCP gets vm's address, and its default route, from the DHCP server on
// its network, with a real DHCP client (busybox's udhcpc), as a VM boots.
func (vm *NeutronVM) DHCP(n *Neutron, timeout time.Duration) (*Lease, error) {
	script := filepath.Join(n.tmp, "udhcpc.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o700); err != nil {
		return nil, err
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("dhcp: %w (install busybox-static)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tries := strconv.Itoa(max(1, int(timeout/time.Second)-1))
	out, err := vm.NS.Command(ctx, busybox, "udhcpc", "-f", "-q", "-n", "-B", "-i", vm.Iface,
		"-t", tries, "-T", "1", "-s", script).CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "LEASE" {
			continue
		}
		l := &Lease{IP: net.ParseIP(f[1]).To4(), Mask: net.IPMask(net.ParseIP(f[2]).To4())}
		if len(f) > 4 {
			l.Router, l.Server = net.ParseIP(f[3]).To4(), net.ParseIP(f[4]).To4()
		} else if len(f) > 3 {
			l.Server = net.ParseIP(f[3]).To4()
		}
		return l, nil
	}
	return nil, fmt.Errorf("%s: udhcpc on %s: no lease: %v: %s", vm.Name, vm.Iface, err, strings.TrimSpace(string(out)))
}

// Lease is what a DHCP server gave a client.
type Lease struct {
	IP     net.IP
	Mask   net.IPMask
	Router net.IP // nil: none
	Server net.IP
}

// vethBetween creates a veth pair: a in ns1, b in ns2 (with MAC bMAC, if
// given).
func vethBetween(ns1 *NS, a string, aMAC net.HardwareAddr, ns2 *NS, b string, bMAC net.HardwareAddr) error {
	h, err := ns1.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	fd, err := ns2.Open()
	if err != nil {
		return err
	}
	defer fd.Close()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, HardwareAddr: aMAC}, PeerName: b,
		PeerHardwareAddr: bMAC, PeerNamespace: netlink.NsFd(fd)}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("veth %s@%s <-> %s@%s: %w", a, ns1, b, ns2, err)
	}
	return nil
}

// setUp sets name in ns up (with mtu, if not 0).
func setUp(ns *NS, name string, mtu int) error {
	return addrUp(ns, name, nil, mtu)
}

// addrUp gives name in ns addr (if not nil) and mtu (if not 0), and sets
// it up.
func addrUp(ns *NS, name string, addr *net.IPNet, mtu int) error {
	h, err := ns.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", name, ns, err)
	}
	if mtu != 0 {
		if err := h.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("%s in %s: mtu %d: %w", name, ns, mtu, err)
		}
	}
	if addr != nil {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: addr}); err != nil {
			return fmt.Errorf("%s in %s: add %s: %w", name, ns, addr, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s in %s: up: %w", name, ns, err)
	}
	return nil
}

// moveInto moves interface name from ns into to, with addr, up (as
// Neutron's agents move a DHCP or router port into its namespace).
func moveInto(ns *NS, name string, to *NS, addr *net.IPNet) error {
	h, err := ns.Handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", name, ns, err)
	}
	fd, err := to.Open()
	if err != nil {
		return err
	}
	err = h.LinkSetNsFd(l, int(fd))
	fd.Close()
	if err != nil {
		return fmt.Errorf("move %s into %s: %w", name, to, err)
	}
	if err := to.DisableIPv6(name); err != nil {
		return err
	}
	return addrUp(to, name, addr, neutronMTU)
}

// runIn runs a command in ns with stdin.
func runIn(ns *NS, stdin *strings.Reader, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := ns.Command(ctx, name, args...)
	cmd.Stdin = stdin
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}
