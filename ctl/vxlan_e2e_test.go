package ctl_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// twoNodes: two "compute nodes" (namespaces) joined by a veth, the
// physical network 172.31.0.0/24 (node N is .N), each with a VM (its own
// namespace, 10.0.10.N/24, MTU 1450 for the VXLAN overhead) whose host
// side is vnet1 in the node, and a bridge of its own (its own bpffs).
type twoNodes struct {
	nodes [2]*testenv.NS
	vms   [2]*testenv.VM
	cli   [2]*cli
}

func newTwoNodes(t *testing.T) *twoNodes {
	t.Helper()
	testenv.RequirePrivileged(t)
	tn := &twoNodes{}
	for i := range tn.nodes {
		tn.nodes[i] = testenv.NewNS(t, "eonode-")
	}
	// The physical link.
	h0, err := tn.nodes[0].Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h0.Close()
	fd1, err := tn.nodes[1].Open()
	if err != nil {
		t.Fatal(err)
	}
	err = h0.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "phy0"}, PeerName: "phy0", PeerNamespace: netlink.NsFd(fd1)})
	fd1.Close()
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range tn.nodes {
		h, err := n.Handle()
		if err != nil {
			t.Fatal(err)
		}
		l, err := h.LinkByName("phy0")
		if err == nil {
			err = h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(172, 31, 0, byte(i+1)), Mask: net.CIDRMask(24, 32)}})
		}
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The VM.
		vmNS := testenv.NewNS(t, "eovm-")
		vm := &testenv.VM{N: i + 1, NS: vmNS, Port: "vnet1", IP: testenv.VMIP(i + 1), MAC: testenv.VMMAC(i + 1), Iface: "eth0"}
		vfd, err := vmNS.Open()
		if err != nil {
			t.Fatal(err)
		}
		err = h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vnet1"}, PeerName: "eth0", PeerHardwareAddr: vm.MAC, PeerNamespace: netlink.NsFd(vfd)})
		vfd.Close()
		if err != nil {
			t.Fatal(err)
		}
		if l, err := h.LinkByName("vnet1"); err != nil || h.LinkSetUp(l) != nil {
			t.Fatalf("vnet1: %v", err)
		}
		h.Close()
		vh, err := vmNS.Handle()
		if err != nil {
			t.Fatal(err)
		}
		eth, err := vh.LinkByName("eth0")
		if err == nil {
			err = vh.LinkSetMTU(eth, 1500-50)
		}
		if err == nil {
			err = vh.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: vm.IP, Mask: testenv.LabSubnet.Mask}})
		}
		if err == nil {
			err = vh.LinkSetUp(eth)
		}
		vh.Close()
		if err != nil {
			t.Fatal(err)
		}
		tn.vms[i] = vm
		tn.cli[i] = newCLI(t, n.Path)
		c := tn.cli[i]
		t.Cleanup(func() { c.run("detach") })
	}
	return tn
}

// TestVXLANTwoNodes: VXLAN ports carry the VMs' traffic between two
// nodes: the bridges' own flow-based VXLAN devices encapsulate and
// decapsulate, flows see tun_id, tun_src and tun_dst of what came in, and
// del-port takes the device with the last port.
func TestVXLANTwoNodes(t *testing.T) {
	tn := newTwoNodes(t)
	for i, c := range tn.cli {
		c.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet1")
		out := c.must("add-port", "vx1", "type=vxlan", "options:remote_ip=172.31.0."+string(rune('2'-i)), "options:key=100")
		if !strings.Contains(out, "2(vx1): mode:vxlan") {
			t.Fatalf("add-port vx1: %q", out)
		}
	}
	// Node 2 counts what came from node 1's tunnel with VNI 100.
	tn.cli[1].must("add-flow", "priority=50,in_port=vx1,tun_id=100,tun_src=172.31.0.1,tun_dst=172.31.0.2,actions=NORMAL")
	vm1, vm2 := tn.vms[0], tn.vms[1]
	if err := vm1.Ping(t, vm2.IP, 3, 5*time.Second); err != nil {
		t.Fatalf("VM 1 on node 1 to VM 2 on node 2 through VXLAN: %v", err)
	}
	if out := tn.cli[1].must("dump-flows", "--no-names"); !regexp.MustCompile(`n_packets=[1-9]\d*, .*priority=50,tun_id=0x64,tun_src=172.31.0.1,tun_dst=172.31.0.2,in_port=2 `).MatchString(out) {
		t.Errorf("node 2's flow on the tunnel's fields took no packet:\n%s", out)
	}
	// TCP with full-size segments (MTU 1450 + 50 bytes of VXLAN).
	l := vm2.ListenTCP(t, 5001)
	go func() {
		c, err := l.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := vm1.DialTCP(ctx, vm2.IP.String()+":5001")
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(make([]byte, 1<<20)); err != nil {
		t.Fatalf("1 MB over TCP through the tunnel: %v", err)
	}
	conn.Close()

	show := tn.cli[0].must("show")
	for _, want := range []string{"     mode: vxlan, output: ebv", "     type: vxlan\n     options: {key=100, remote_ip=172.31.0.2}\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	// Another VNI does not reach a key=100 port.
	before := tn.cli[1].showCounter("tunnel_no_port")
	tn.cli[0].must("add-flow", "priority=60,icmp,in_port=vnet1,actions=set_tunnel:0x65,vx1")
	tn.cli[0].must("del-port", "vx1")
	tn.cli[0].must("add-port", "vx1", "type=vxlan", "options:remote_ip=172.31.0.2", "options:key=flow")
	if err := vm1.Ping(t, vm2.IP, 1, 2*time.Second); err == nil {
		t.Error("VNI 101 reached node 2's key=100 port")
	}
	if tn.cli[1].showCounter("tunnel_no_port") <= before {
		t.Error("tunnel_no_port did not count VNI 101 on node 2")
	}
	// The device goes with the last port on it.
	tn.cli[0].must("del-port", "vx1")
	h, err := tn.nodes[0].Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, _ := h.LinkList()
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "ebv") {
			t.Errorf("del-port of the last vxlan port left %s", l.Attrs().Name)
		}
	}
}

// TestTunnelKindsTwoNodes: Geneve and GRE ports as VXLAN's are, where the
// kernel has the device kind (Debian's kernels do, as modules): ping
// between two nodes, the tunnel's fields matched, the overhead shown, the
// device gone with the last port. A kernel without it (this project's
// host kernel has VXLAN only) gets one line naming the kernel option, exit
// 1, and nothing added.
func TestTunnelKindsTwoNodes(t *testing.T) {
	for _, tc := range []struct {
		kind, config string
		overhead     int
	}{{"geneve", "CONFIG_GENEVE", 50}, {"gre", "CONFIG_NET_IPGRE", 42}} {
		t.Run(tc.kind, func(t *testing.T) {
			tn := newTwoNodes(t)
			for _, c := range tn.cli {
				c.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet1")
			}
			out, errOut, code := tn.cli[0].run("add-port", "tun1", "type="+tc.kind, "options:remote_ip=172.31.0.2", "options:key=100")
			if strings.Contains(errOut, "has no flow-based") {
				want := "ebpfovs: add-port: tun1: type=" + tc.kind + ": this kernel (Linux "
				if code != 1 || !strings.HasPrefix(errOut, want) || !strings.HasSuffix(errOut, "("+tc.config+")\n") || strings.Count(errOut, "\n") != 1 {
					t.Fatalf("add-port on a kernel without %s: exit %d, %q", tc.kind, code, errOut)
				}
				if show := tn.cli[0].must("show"); strings.Contains(show, "tun1") {
					t.Fatalf("a refused tunnel port is listed:\n%s", show)
				}
				h, err := tn.nodes[0].Handle()
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
				links, _ := h.LinkList()
				for _, l := range links {
					if strings.HasPrefix(l.Attrs().Name, "ebv") {
						t.Errorf("a refused tunnel port left device %s", l.Attrs().Name)
					}
				}
				t.Logf("this kernel has no %s devices: refused as it should be", tc.kind)
				return
			}
			if code != 0 || !strings.Contains(out, "2(tun1): mode:"+tc.kind) {
				t.Fatalf("add-port tun1 type=%s: exit %d, %q %q", tc.kind, code, out, errOut)
			}
			tn.cli[1].must("add-port", "tun1", "type="+tc.kind, "options:remote_ip=172.31.0.1", "options:key=100")
			tn.cli[1].must("add-flow", "priority=50,in_port=tun1,tun_id=100,tun_src=172.31.0.1,actions=NORMAL")
			vm1, vm2 := tn.vms[0], tn.vms[1]
			if err := vm1.Ping(t, vm2.IP, 3, 5*time.Second); err != nil {
				t.Fatalf("VM 1 to VM 2 through %s: %v\nnode 1:\n%s\nnode 2:\n%s\nnode 1's links:\n%s\nnode 2's links:\n%s", tc.kind, err, tn.cli[0].must("show"), tn.cli[1].must("show"),
					tn.nodes[0].Run(t, "ip", "-s", "-d", "link"), tn.nodes[1].Run(t, "ip", "-s", "-d", "link"))
			}
			if out := tn.cli[1].must("dump-flows", "--no-names"); !regexp.MustCompile(`n_packets=[1-9]\d*, .*priority=50,tun_id=0x64,tun_src=172.31.0.1,in_port=2 `).MatchString(out) {
				t.Errorf("node 2's flow on the tunnel's fields took no packet:\n%s", out)
			}
			want := fmt.Sprintf("     mode: %s, output: ebv", tc.kind)
			show := tn.cli[0].must("show")
			if !strings.Contains(show, want) || !strings.Contains(show, fmt.Sprintf("(encapsulation adds %d bytes: MTU %d", tc.overhead, 1500-tc.overhead)) {
				t.Errorf("show lacks the %s port's mode and overhead:\n%s", tc.kind, show)
			}
			tn.cli[0].must("del-port", "tun1")
			h, err := tn.nodes[0].Handle()
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			links, _ := h.LinkList()
			for _, l := range links {
				if strings.HasPrefix(l.Attrs().Name, "ebv") {
					t.Errorf("del-port of the last %s port left %s", tc.kind, l.Attrs().Name)
				}
			}
		})
	}
}
