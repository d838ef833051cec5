package ctl_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// showCounter reads one datapath counter from show's last line.
func (c *cli) showCounter(name string) uint64 {
	c.t.Helper()
	m := regexp.MustCompile(` ` + name + `:(\d+)`).FindStringSubmatch(c.must("show"))
	if m == nil {
		c.t.Fatalf("show: no counter %s", name)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// vlanOf returns the VID of a captured frame's 802.1Q tag, or -1.
func vlanOf(frame []byte) int {
	if len(frame) < 16 || binary.BigEndian.Uint16(frame[12:]) != 0x8100 {
		return -1
	}
	return int(binary.BigEndian.Uint16(frame[14:]) & 0x0fff)
}

// udpFrom sends a UDP datagram from the trunk VM (its packet socket) to
// VM to, tagged with vlan (0: untagged), and reports whether to's socket
// l received it within wait.
func udpFrom(t *testing.T, ps *testenv.PacketSocket, from, to *testenv.VM, l *net.UDPConn, vlan int, payload string, wait time.Duration) bool {
	t.Helper()
	frame := testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, VLAN: vlan, SrcIP: from.IP, DstIP: to.IP,
		Proto: "udp", SrcPort: 7001, DstPort: 7000, Payload: []byte(payload)})
	if err := ps.Send(frame); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		l.SetReadDeadline(deadline)
		n, err := l.Read(buf)
		if err != nil {
			return false
		}
		if string(buf[:n]) == payload {
			return true
		}
	}
	return false
}

// TestVLANNormal: NORMAL with OVS's VLAN port settings, through real
// traffic. Access ports of VLAN 100 (vnet1, vnet2) and 102 (vnet3,
// vnet4), a trunk of both (vnet5, whose VM sends and reads tagged frames
// through a packet socket: this kernel has no 802.1Q devices).
func TestVLANNormal(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 5})
	c := newCLI(t, lab.Host.Path)
	t.Cleanup(func() { c.run("detach") })
	for _, p := range [][]string{{"vnet1", "tag=100"}, {"vnet2", "tag=100"}, {"vnet3", "tag=102"}, {"vnet4", "tag=102"}, {"vnet5", "trunks=100,102"}} {
		c.must(append([]string{"add-port"}, p...)...)
	}
	vm1, vm2, vm3, vm4, vm5 := lab.VMs[0], lab.VMs[1], lab.VMs[2], lab.VMs[3], lab.VMs[4]

	// Within a VLAN, across access ports: ARP and ping.
	for _, p := range [][2]*testenv.VM{{vm1, vm2}, {vm3, vm4}} {
		if err := p[0].Ping(t, p[1].IP, 2, 5*time.Second); err != nil {
			t.Fatalf("within a VLAN: %v", err)
		}
	}
	// Between VLANs: nothing, not even ARP.
	if err := vm1.Ping(t, vm3.IP, 1, 2*time.Second); err == nil {
		t.Fatal("VLAN 100 reached VLAN 102")
	}

	// The trunk gets each access port's broadcasts tagged with its VLAN.
	ps := vm5.OpenPacketSocket(t)
	for _, tc := range []struct {
		vm   *testenv.VM
		vlan int
	}{{vm1, 100}, {vm3, 102}} {
		ps.Drain()
		tc.vm.Ping(t, net.IPv4(10, 0, 10, 99), 1, time.Second) // ARP for an address nobody has
		fr, err := ps.ReadMatching(3*time.Second, false, func(f testenv.Captured) bool {
			return bytes.Equal(f.Data[6:12], tc.vm.MAC)
		})
		if err != nil {
			t.Fatalf("the trunk got no frame of %v: %v", tc.vm, err)
		}
		if got := vlanOf(fr.Data); got != tc.vlan {
			t.Errorf("%v's broadcast on the trunk: VLAN %d, want %d", tc.vm, got, tc.vlan)
		}
	}

	// From the trunk: VLAN 100 reaches VM 1 (untagged: its stack has no
	// VLAN device), VLAN 102 does not, and an untagged frame is not on
	// any VLAN the trunk carries: dropped and counted.
	l := vm1.ListenUDP(t, 7000)
	if !udpFrom(t, ps, vm5, vm1, l, 100, "tagged 100", 3*time.Second) {
		t.Error("a frame tagged 100 from the trunk did not reach VLAN 100's VM 1")
	}
	if udpFrom(t, ps, vm5, vm1, l, 102, "tagged 102", time.Second) {
		t.Error("a frame tagged 102 from the trunk reached VLAN 100's VM 1")
	}
	drops := c.showCounter("normal_vlan_drop")
	if udpFrom(t, ps, vm5, vm1, l, 0, "untagged", time.Second) {
		t.Error("an untagged frame from a trunk of 100 and 102 reached VM 1")
	}
	if got := c.showCounter("normal_vlan_drop"); got <= drops {
		t.Errorf("normal_vlan_drop %d after an untagged frame on the trunk, was %d", got, drops)
	}

	// A tagged frame into an access port is dropped.
	ps2 := vm2.OpenPacketSocket(t)
	drops = c.showCounter("normal_vlan_drop")
	if udpFrom(t, ps2, vm2, vm1, l, 100, "tagged on access", time.Second) {
		t.Error("a tagged frame received on an access port was forwarded")
	}
	if got := c.showCounter("normal_vlan_drop"); got <= drops {
		t.Errorf("normal_vlan_drop %d after a tagged frame on an access port, was %d", got, drops)
	}

	// native-untagged: untagged frames from the trunk are VLAN 100's, and
	// VLAN 100 leaves it untagged.
	c.must("set-port", "vnet5", "vlan_mode=native-untagged", "tag=100")
	if !udpFrom(t, ps, vm5, vm1, l, 0, "native", 3*time.Second) {
		t.Error("an untagged frame from a native-untagged port of VLAN 100 did not reach VM 1")
	}
	ps.Drain()
	vm1.Ping(t, net.IPv4(10, 0, 10, 98), 1, time.Second)
	fr, err := ps.ReadMatching(3*time.Second, false, func(f testenv.Captured) bool { return bytes.Equal(f.Data[6:12], vm1.MAC) })
	if err != nil {
		t.Fatalf("native-untagged: no broadcast of VM 1: %v", err)
	}
	if got := vlanOf(fr.Data); got != -1 {
		t.Errorf("native-untagged: VLAN 100 left tagged %d", got)
	}
	show := c.must("show")
	for _, want := range []string{" 5(vnet5): ", "     tag: 100\n     vlan_mode: native-untagged\n     trunks: [100, 102]\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	// Moving a port to the other VLAN.
	c.must("set-port", "vnet3", "tag=100")
	if err := vm1.Ping(t, vm3.IP, 2, 5*time.Second); err != nil {
		t.Fatalf("after set-port vnet3 tag=100: %v", err)
	}
}

// TestInternalPort: add-port type=internal makes an interface that a
// namespace can take and that reaches the bridge; del-port deletes it,
// wherever it went.
func TestInternalPort(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	t.Cleanup(func() { c.run("detach") })
	c.must("add-port", "vnet1", "tag=7")
	name := "qr-" + strconv.Itoa(lab.VMs[0].PortIndex)
	out := c.must("add-port", name, "type=internal", "tag=7", "ofport=9")
	if !strings.HasPrefix(out, " 9("+name+"): ") {
		t.Fatalf("add-port: %q", out)
	}

	// Move it into a "router" namespace and give it an address.
	router := testenv.NewNS(t, "eortr-")
	host, err := lab.Host.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	l, err := host.LinkByName(name)
	if err != nil {
		t.Fatalf("add-port type=internal made no interface %s: %v", name, err)
	}
	fd, err := router.Open()
	if err != nil {
		t.Fatal(err)
	}
	err = host.LinkSetNsFd(l, int(fd))
	fd.Close()
	if err != nil {
		t.Fatal(err)
	}
	rh, err := router.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer rh.Close()
	rl, err := rh.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := rh.AddrAdd(rl, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 0, 10, 50), Mask: testenv.LabSubnet.Mask}}); err != nil {
		t.Fatal(err)
	}
	if err := rh.LinkSetUp(rl); err != nil {
		t.Fatal(err)
	}
	if err := lab.VMs[0].Ping(t, net.IPv4(10, 0, 10, 50), 2, 5*time.Second); err != nil {
		t.Fatalf("VM 1 to the internal port: %v", err)
	}
	show := c.must("show")
	if !strings.Contains(show, " 9("+name+"): ") || !strings.Contains(show, "     type: internal\n     tag: 7\n") {
		t.Errorf("show:\n%s", show)
	}

	// An internal port's type cannot change, and its name is taken.
	if _, e, code := c.run("set-port", name, "type=system"); code != 2 || !strings.Contains(e, "type cannot change") {
		t.Errorf("set-port type=system: exit %d: %s", code, e)
	}
	if _, e, code := c.run("add-port", "vnet2", "type=internal"); code != 2 || !strings.Contains(e, "exists already") {
		t.Errorf("add-port of an existing interface as internal: exit %d: %s", code, e)
	}

	c.must("del-port", name)
	if _, err := rh.LinkByName(name); err == nil {
		t.Errorf("del-port left %s in the router namespace", name)
	}
	links, err := host.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "ebo") {
			t.Errorf("del-port left the bridge's end %s", l.Attrs().Name)
		}
	}
	if o, _, code := c.run("del-port", "--if-exists", name); code != 0 || o != "" {
		t.Errorf("del-port --if-exists of a gone port: exit %d %q", code, o)
	}
}

// TestAddPortErrors: a wrong setting is one line and exit 2, and changes
// nothing: no bridge when add-port would have created it.
func TestAddPortErrors(t *testing.T) {
	testenv.HostOnly(t, "add-port's validation of its settings")
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	t.Cleanup(func() { c.run("detach") })
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"vnet1", "tag=4096"}, "tag=4096: a VLAN tag must be 0..4095"},
		{[]string{"vnet1", "tag=100", "trunks=5"}, "trunks on an access port"},
		{[]string{"vnet1", "type=patch"}, "a patch port needs options:peer"},
		{[]string{"vnet1", "type=patch", "options:peer=vnet1"}, "cannot be its own peer"},
		{[]string{"vnet1", "type=patch", "options:peer=a/b"}, "options:peer=a/b: not a port name"},
		{[]string{"vnet1", "type=geneve", "options:remote_ip=flow", "options:key=16777216"}, "a geneve key (VNI) is 0..16777215 or flow"},
		{[]string{"vnet1", "type=gre", "options:remote_ip=flow", "options:dst_port=5"}, "dst_port"},
		{[]string{"vx9", "type=vxlan", "options:remote_ip=2001:db8::1"}, "options:remote_ip=2001:db8::1: only IPv4 tunnel ends are supported"},
		{[]string{"vx9", "type=vxlan", "options:remote_ip=flow", "options:key=16777216"}, "a vxlan key (VNI) is 0..16777215 or flow"},
		{[]string{"vx9", "type=vxlan", "options:remote_ip=flow", "options:tos=inherit"}, "options:tos: not supported by this version"},
		{[]string{"vnet1", "vlan_mode=hybrid"}, "unknown VLAN mode"},
		{[]string{"a/b"}, "invalid port name"},
		{[]string{"nosuchdev9"}, "nosuchdev9: no such interface"},
	} {
		_, e, code := c.run(append([]string{"add-port"}, tc.args...)...)
		wantCode := 2
		if tc.args[0] == "nosuchdev9" {
			wantCode = 1
		}
		if code != wantCode || !strings.Contains(e, tc.want) || strings.Count(e, "\n") != 1 {
			t.Errorf("add-port %v: exit %d, %q; want exit %d with %q", tc.args, code, e, wantCode, tc.want)
		}
	}
	if _, _, code := c.run("show"); code == 0 {
		t.Error("a failed add-port left a bridge")
	}
	c.must("add-port", "vnet1", "tag=5")
	if _, e, code := c.run("add-port", "vnet1"); code != 2 || !strings.Contains(e, "already exists on bridge") {
		t.Errorf("add-port of a port again: exit %d %q", code, e)
	}
	c.must("add-port", "--may-exist", "vnet1")
	c.must("add-port", "vxa", "type=vxlan", "options:remote_ip=192.0.2.7")
	if _, e, code := c.run("add-port", "vxb", "type=vxlan", "options:remote_ip=192.0.2.7", "options:key=3"); code != 2 || !strings.Contains(e, "vxb: port 2(vxa) is a tunnel to the same remote end") {
		t.Errorf("a second tunnel port to one remote end: exit %d %q", code, e)
	}
	if _, e, code := c.run("set-port", "vnet1", "trunks=3"); code != 2 || !strings.Contains(e, "trunks on an access port") {
		t.Errorf("set-port trunks on an access port: exit %d %q", code, e)
	}
	if _, e, code := c.run("set-port", "vnet9", "tag=3"); code == 0 || !strings.Contains(e, "vnet9: not a port") {
		t.Errorf("set-port of no port: exit %d %q", code, e)
	}
	if !strings.Contains(c.must("show"), "     tag: 5\n") {
		t.Error("a refused set-port changed the port")
	}
}
