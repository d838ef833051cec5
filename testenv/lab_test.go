package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func TestVethLabProperties(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabOptions{VMs: 3, TxOffloadOff: true})
	if len(lab.VMs) != 3 {
		t.Fatalf("%d VMs", len(lab.VMs))
	}
	host := lab.Host.MustHandle(t)
	for i, vm := range lab.VMs {
		n := i + 1
		if vm.N != n || vm.Port != fmt.Sprintf("vnet%d", n) || vm.Iface != "eth0" ||
			!vm.IP.Equal(net.IPv4(10, 0, 10, byte(n))) || vm.MAC.String() != fmt.Sprintf("02:00:00:00:0a:%02x", n) {
			t.Errorf("VM %d: %+v", n, vm)
		}
		if lab.VM(n) != vm {
			t.Errorf("lab.VM(%d) is not VMs[%d]", n, i)
		}
		port, err := host.LinkByName(vm.Port)
		if err != nil || port.Attrs().Index != vm.PortIndex || port.Type() != "veth" || port.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%s in Host: %v %v (want index %d, veth, up)", vm.Port, port, err, vm.PortIndex)
		}
		h := vm.NS.MustHandle(t)
		eth, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if eth.Attrs().HardwareAddr.String() != vm.MAC.String() || eth.Attrs().Flags&net.FlagUp == 0 {
			t.Errorf("%v eth0: mac %s flags %v", vm, eth.Attrs().HardwareAddr, eth.Attrs().Flags)
		}
		addrs, err := h.AddrList(eth, netlink.FAMILY_ALL)
		if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != vm.IP.String()+"/24" {
			t.Errorf("%v eth0 addresses %v %v, want only %s/24 (IPv6 off)", vm, addrs, err, vm.IP)
		}
		// The peer of eth0 (IFLA_LINK, an index in the other netns) is vnetN.
		if eth.Attrs().ParentIndex != vm.PortIndex {
			t.Errorf("%v eth0 peer index %d, want %d", vm, eth.Attrs().ParentIndex, vm.PortIndex)
		}
		for _, c := range []struct {
			ns  *NS
			ifc string
		}{{vm.NS, "eth0"}, {vm.NS, "default"}, {lab.Host, vm.Port}, {lab.Host, "default"}} {
			if v, err := c.ns.Sysctl("net/ipv6/conf/" + c.ifc + "/disable_ipv6"); err != nil || v != "1" {
				t.Errorf("%s %s disable_ipv6 = %q, %v", c.ns, c.ifc, v, err)
			}
		}
		out := vm.NS.Run(t, "ethtool", "-k", "eth0")
		if !strings.Contains(out, "tx-checksumming: off") {
			t.Errorf("%v: TxOffloadOff but ethtool -k eth0 says\n%s", vm, out)
		}
	}
	// Nothing was created in the test's own namespace.
	ifcs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifcs {
		for _, vm := range lab.VMs {
			if ifc.HardwareAddr.String() == vm.MAC.String() {
				t.Errorf("%s with %v's MAC is in the test's own namespace", ifc.Name, vm)
			}
		}
	}
}

func TestVethLabBridgeTraffic(t *testing.T) {
	t.Parallel()
	lab := NewLab(t, LabOptions{})
	vm1, vm2 := lab.VM(1), lab.VM(2)

	// The ports are not connected yet: no reply.
	if err := vm1.Ping(t, vm2.IP, 1, time.Second); err == nil {
		t.Fatal("ping succeeded before the ports were connected")
	}

	lab.Bridge(t, "br0")
	if err := vm1.Ping(t, vm2.IP, 3, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// TCP with a kernel-chosen and with a fixed source port.
	l := vm2.ListenTCP(t, 8080)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, localPort := range []int{0, 40001} {
		var c net.Conn
		var err error
		if localPort == 0 {
			c, err = vm1.DialTCP(ctx, net.JoinHostPort(vm2.IP.String(), "8080"))
		} else {
			c, err = vm1.DialTCPFrom(ctx, localPort, net.JoinHostPort(vm2.IP.String(), "8080"))
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		ra := s.RemoteAddr().(*net.TCPAddr)
		if !ra.IP.Equal(vm1.IP) || (localPort != 0 && ra.Port != localPort) {
			t.Errorf("server sees peer %v, want %s port %d", ra, vm1.IP, localPort)
		}
		msg := []byte("hello from vm1 port " + strconv.Itoa(localPort))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.Close()
		got, err := io.ReadAll(s)
		s.Close()
		if err != nil || !bytes.Equal(got, msg) {
			t.Errorf("server read %q, %v; want %q", got, err, msg)
		}
	}

	// UDP.
	u := vm2.ListenUDP(t, 5353)
	uc, err := vm1.DialUDP(net.JoinHostPort(vm2.IP.String(), "5353"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("dgram")); err != nil {
		t.Fatal(err)
	}
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := u.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "dgram" || !from.IP.Equal(vm1.IP) {
		t.Errorf("UDP read %q from %v, %v", buf[:n], from, err)
	}

	if _, err := vm1.DialTCP(ctx, "localhost:80"); err == nil {
		t.Error("DialTCP accepted a host name")
	}
}

// TestCleanupRemovesEverything builds veth and tap labs in a subtest and
// checks, once the subtest's cleanups ran, that the names are gone from
// /run/netns and from the mount table, and that the namespaces were really
// destroyed by the kernel: every lab namespace gets a "witness" veth whose
// other end lives in a namespace of the parent test; a veth pair dies with
// either namespace, so the witness ends vanish only if the lab namespaces
// were freed (no socket or tap fd kept them alive).
func TestCleanupRemovesEverything(t *testing.T) {
	t.Parallel()
	witness := NewNS(t, "tstw-")
	wh := witness.MustHandle(t)

	var names []string
	t.Run("lab", func(t *testing.T) {
		veth := NewLab(t, LabOptions{VMs: 2})
		tap := NewLab(t, LabOptions{VMs: 2, Tap: true})
		all := []*NS{veth.Host, veth.VM(1).NS, veth.VM(2).NS, tap.Host}
		for i, ns := range all {
			names = append(names, ns.Name)
			fd, err := ns.Open()
			if err != nil {
				t.Fatal(err)
			}
			err = wh.LinkAdd(&netlink.Veth{
				LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("w%d", i)},
				PeerName:  "witness", PeerNamespace: netlink.NsFd(fd),
			})
			fd.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
		// Use sockets and taps so that cleanup has to close them.
		veth.Bridge(t, "br0")
		l := veth.VM(2).ListenTCP(t, 0)
		port := l.Addr().(*net.TCPAddr).Port // bound to 0.0.0.0: dial the VM address
		c, err := veth.VM(1).DialTCP(t.Context(), net.JoinHostPort(veth.VM(2).IP.String(), strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		c.Close()
		tap.Bridge(t, "br0")
		if err := tap.Tap(0).WriteFrame(Build(PacketSpec{Proto: "arp", SrcMAC: VMMAC(1), SrcIP: VMIP(1), DstIP: VMIP(2)})); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(veth.Host.Path); err != nil {
			t.Fatal(err)
		}
	})

	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, name := range names {
		if _, err := os.Lstat("/run/netns/" + name); !os.IsNotExist(err) {
			t.Errorf("/run/netns/%s still exists after cleanup (%v)", name, err)
		}
		if strings.Contains(string(mounts), "/run/netns/"+name+" ") {
			t.Errorf("/run/netns/%s is still mounted", name)
		}
	}
	if out, _ := runCmd("ip", "netns", "list"); containsAny(out, names) {
		t.Errorf("ip netns list still shows lab namespaces:\n%s", out)
	}

	// Namespace destruction is asynchronous (a kernel workqueue).
	deadline := time.Now().Add(30 * time.Second)
	for {
		links, err := wh.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, l := range links {
			if strings.HasPrefix(l.Attrs().Name, "w") {
				left = append(left, l.Attrs().Name)
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("witness veths %v still exist: lab namespaces were not destroyed", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// TestBuildLabDetached builds a lab as ebpfovs-lab up does (a tag, detached)
// and removes it by tag as ebpfovs-lab down does: the names follow the tag,
// no owner record is kept (so no stale sweep takes the lab from a process
// that exited), and DeleteLab leaves nothing and may run twice.
func TestBuildLabDetached(t *testing.T) {
	t.Parallel()
	RequirePrivileged(t)
	tag := UniqueName("tstd-")
	lab, remove, err := BuildLab(LabOptions{Tag: tag, Detached: true})
	if err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			remove()
		}
	})
	names := []string{tag + "-hv", tag + "-vm1", tag + "-vm2"}
	got := []string{lab.Host.Name, lab.VM(1).NS.Name, lab.VM(2).NS.Name}
	if lab.Tag != tag || strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("lab %q namespaces %v, want %q and %v", lab.Tag, got, tag, names)
	}
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(OwnerDir, name)); !os.IsNotExist(err) {
			t.Errorf("detached lab namespace %s has an owner record (%v)", name, err)
		}
	}
	if err := lab.VM(1).Ping(t, lab.VM(2).IP, 1, 5*time.Second); err == nil {
		t.Errorf("VM1 reached VM2 through unconnected ports")
	}
	if _, err := lab.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	if err := lab.VM(1).Ping(t, lab.VM(2).IP, 2, 5*time.Second); err != nil {
		t.Error(err)
	}
	for i := 0; i < 2; i++ {
		if err := DeleteLab(tag); err != nil {
			t.Fatal(err)
		}
	}
	removed = true
	for _, name := range names {
		if _, err := os.Lstat(filepath.Join(NetnsRunDir, name)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after DeleteLab (%v)", name, err)
		}
	}
}

// TestBuildLabDirect checks the benchmarks' path A lab: no host, the VMs'
// eth0 joined directly, and a remove function that deletes both VMs.
func TestBuildLabDirect(t *testing.T) {
	t.Parallel()
	RequirePrivileged(t)
	lab, remove, err := BuildLab(LabOptions{Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remove() })
	if lab.Host != nil || lab.VM(1).Port != "" || !strings.HasPrefix(lab.Tag, LabTagPrefix) {
		t.Errorf("direct lab: host %v, VM1 port %q, tag %q", lab.Host, lab.VM(1).Port, lab.Tag)
	}
	if err := lab.VM(1).Ping(t, lab.VM(2).IP, 2, 5*time.Second); err != nil {
		t.Error(err)
	}
	h := lab.VM(2).NS.MustHandle(t)
	eth, err := h.LinkByName("eth0")
	if err != nil || eth.Attrs().HardwareAddr.String() != VMMAC(2).String() {
		t.Errorf("VM2 eth0: %v %v", eth, err)
	}
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	for _, vm := range lab.VMs {
		if _, err := os.Lstat(vm.NS.Path); !os.IsNotExist(err) {
			t.Errorf("%s still exists after remove (%v)", vm.NS, err)
		}
	}
	if _, _, err := BuildLab(LabOptions{Direct: true, VMs: 3}); err == nil {
		t.Error("Direct lab with 3 VMs built")
	}
	if _, _, err := BuildLab(LabOptions{Detached: true}); err == nil {
		t.Error("Detached lab without a tag built")
	}
}
