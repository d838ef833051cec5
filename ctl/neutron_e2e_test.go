package ctl_test

import (
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// neutronCLI runs ebpfovs on one node's bridge.
func neutronCLI(t *testing.T, root string, ns *testenv.NS, bridge string) *cli {
	return &cli{t: t, global: []string{"--bpffs", root, "-b", bridge, "--netns", ns.Path}}
}

// neighMAC is the MAC vm's neighbour table holds for ip ("" if none).
func neighMAC(t *testing.T, vm *testenv.NeutronVM, ip net.IP) string {
	t.Helper()
	var mac string
	err := vm.NS.Do(func() error {
		ns, err := netlink.NeighList(0, netlink.FAMILY_V4)
		for _, n := range ns {
			if n.IP.Equal(ip) && n.HardwareAddr != nil {
				mac = n.HardwareAddr.String()
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// TestNeutronTwoNodes: an OpenStack compute node pair, as Neutron's Open
// vSwitch agent builds it (testenv.Neutron's plan: br-int with per-network
// local VLANs, patched to br-tun, VXLAN between the nodes, the agent's
// br-tun tables with learn() and the ARP responder), with ebpfovs as the
// switch: network A's VMs get their addresses from dnsmasq on node 1 (one
// across the tunnel), reach each other and, through the router on node 1
// that SNATs, the outside; network B, with the same addresses, reaches
// only itself.
func TestNeutronTwoNodes(t *testing.T) {
	testenv.RequirePrivileged(t)
	n, remove, err := testenv.BuildNeutron(testenv.UniqueName("eon"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := remove(); err != nil {
			t.Error(err)
		}
	})
	var clis [2]map[string]*cli
	for i, node := range n.Nodes {
		root := testenv.TempBPFFS(t)
		clis[i] = map[string]*cli{testenv.BrInt: neutronCLI(t, root, node, testenv.BrInt), testenv.BrTun: neutronCLI(t, root, node, testenv.BrTun)}
		for _, c := range clis[i] {
			c := c
			t.Cleanup(func() { c.run("detach") })
		}
	}
	for _, s := range n.Plan() {
		if s.Do != nil {
			if err := s.Do(); err != nil {
				t.Fatalf("node %d: %s: %v", s.Node+1, s.Say, err)
			}
			continue
		}
		args := s.Args
		if args[0] == "add-port" && len(args) > 1 {
			// Small bridges: tests run in parallel, and in 1 GB VMs.
			args = append([]string{"add-port", "--max-flows=4096", "--max-conns=16384"}, args[1:]...)
		}
		clis[s.Node][s.Bridge].must(args...)
	}
	vmA, vmB, vmC, vmD := n.VMs[0], n.VMs[1], n.VMs[2], n.VMs[3]

	// DHCP, each network from its own server on node 1 (busybox's udhcpc
	// in the VMs); node 2's VMs' broadcasts cross the tunnel, and so do
	// the answers.
	for _, vm := range n.VMs {
		l, err := vm.DHCP(n, 20*time.Second)
		if err != nil {
			t.Fatalf("%v\nnode 1 br-tun:\n%s", err, clis[0][testenv.BrTun].must("dump-flows"))
		}
		if !l.IP.Equal(vm.IP) || !l.Server.Equal(vm.Net.DHCP) || !l.Router.Equal(vm.Net.Router) {
			t.Fatalf("%s: lease %s from %s via %s, want %s from %s via %s", vm.Name, l.IP, l.Server, l.Router, vm.IP, vm.Net.DHCP, vm.Net.Router)
		}
	}

	// Each network's VMs reach each other across the nodes; the same
	// addresses in the other network are another VM.
	for _, p := range [][2]*testenv.NeutronVM{{vmA, vmC}, {vmB, vmD}} {
		if err := p[0].Ping(t, p[1].IP, 3, 5*time.Second); err != nil {
			t.Fatalf("%s (network %s) to %s: %v", p[0].Name, p[0].Net.Name, p[1].Name, err)
		}
		if got, want := neighMAC(t, p[0], p[1].IP), p[1].MAC.String(); got != want {
			t.Errorf("%s's neighbour %s is %s, want %s (%s): the networks are not apart", p[0].Name, p[1].IP, got, want, p[1].Name)
		}
	}
	// TCP within network A, across the nodes.
	l := vmC.ListenTCP(t, 5001)
	got := make(chan int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- int(n)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := vmA.DialTCP(ctx, vmC.IP.String()+":5001")
	cancel()
	if err != nil {
		t.Fatalf("vm-a to vm-c over TCP: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("1 MB from vm-a to vm-c: %v", err)
	}
	c.Close()
	if n := <-got; n != 1<<20 {
		t.Fatalf("vm-c received %d bytes, want 1 MB", n)
	}
	// Network B has no router: its VMs do not reach network A's.
	if err := vmB.Ping(t, n.Nets[0].Router, 1, 2*time.Second); err == nil {
		t.Errorf("vm-b (network B) reached network A's router")
	}

	// The outside, through the router on node 1, SNATed; from node 2 too.
	var ln net.Listener
	if err := n.ExtNS.Do(func() (err error) {
		ln, err = net.Listen("tcp4", n.ExtIP.String()+":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	for _, vm := range []*testenv.NeutronVM{vmA, vmC} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := vm.DialTCP(ctx, n.ExtIP.String()+":8080")
		cancel()
		if err != nil {
			t.Fatalf("%s to the outside: %v", vm.Name, err)
		}
		c.Write([]byte("hello"))
		c.Close()
		select {
		case p := <-peers:
			if p != n.RouterExtIP.String() {
				t.Errorf("%s reached the outside as %s, want the router's %s (SNAT)", vm.Name, p, n.RouterExtIP)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the outside saw no connection", vm.Name)
		}
	}

	// vm-c found the router on node 1 by ARP across the tunnel (no ARP
	// responder entry for it).
	var routerMAC string
	if err := n.RouterNS.Do(func() error {
		l, err := netlink.LinkByName("qr-a")
		if err == nil {
			routerMAC = l.Attrs().HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := neighMAC(t, vmC, n.Nets[0].Router); got != routerMAC {
		t.Errorf("vm-c's neighbour 10.1.0.1 is %q, want the router's %s", got, routerMAC)
	}

	// br-tun learned, per node, where the other node's VMs are: a flow
	// in table 20 for vm-a's MAC on node 2, with network A's VNI.
	out := clis[1][testenv.BrTun].must("dump-flows", "--no-names", "table=20")
	want := regexp.MustCompile(`cookie=0x5a, duration=[0-9.]+s, table=20, n_packets=[1-9]\d*, n_bytes=\d+, hard_timeout=300, priority=1,vlan_tci=0x0066/0x0fff,dl_dst=` +
		regexp.QuoteMeta(vmA.MAC.String()) + ` actions=load:0->NXM_OF_VLAN_TCI\[\],load:0x3e9->NXM_NX_TUN_ID\[\],output:2`)
	if !want.MatchString(out) {
		t.Errorf("node 2's br-tun learned no flow for vm-a (local VLAN 102, VNI 0x3e9, to the tunnel):\n%s", out)
	}
	// The ARP responder answered for the other node's VMs.
	out = clis[0][testenv.BrTun].must("dump-flows", "--no-names", "table=21")
	if !regexp.MustCompile(`n_packets=[1-9]\d*, .*arp_tpa=10.1.0.12 `).MatchString(out) {
		t.Errorf("node 1's ARP responder did not answer for 10.1.0.12:\n%s", out)
	}
	if !strings.Contains(clis[0][testenv.BrInt].must("show"), "patch-tun") {
		t.Error("br-int lists no patch-tun")
	}
}
