package ctl_test

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestARPResponder: Neutron's ARP responder flow (br-tun table 21), moves
// and loads on Ethernet and ARP fields sending the request back out of
// IN_PORT as the reply, answers a real ARP request with every field as a
// host would (the kernel's own neighbour table takes it).
func TestARPResponder(t *testing.T) {
	lab, c := attachedLab(t)
	vm1 := lab.VMs[0]
	c.must("add-flow", "priority=100,arp,arp_op=1,arp_tpa=10.0.10.77,actions="+
		"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:00:77,load:0x2->NXM_OF_ARP_OP[],"+
		"move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"+
		"load:0xfa163e000077->NXM_NX_ARP_SHA[],load:0xa000a4d->NXM_OF_ARP_SPA[],IN_PORT")
	want := "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],mod_dl_src:fa:16:3e:00:00:77,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000077->NXM_NX_ARP_SHA[],load:0xa000a4d->NXM_OF_ARP_SPA[],IN_PORT"
	if out := c.must("dump-flows"); !strings.Contains(out, want) {
		t.Errorf("dump-flows:\n%s", out)
	}

	// A crafted request: every field of the reply checked.
	ps := vm1.OpenPacketSocket(t)
	req := testenv.Build(testenv.PacketSpec{Proto: "arp", ARPOp: 1, SrcMAC: vm1.MAC, SrcIP: vm1.IP, DstIP: net.IPv4(10, 0, 10, 77)})
	if err := ps.Send(req); err != nil {
		t.Fatal(err)
	}
	fr, err := ps.ReadMatching(3*time.Second, false, func(f testenv.Captured) bool {
		return len(f.Data) >= 42 && f.Data[12] == 0x08 && f.Data[13] == 0x06 && f.Data[21] == 2
	})
	if err != nil {
		t.Fatalf("no ARP reply: %v", err)
	}
	arp := testenv.Decode(fr.Data).Layer(layers.LayerTypeARP).(*layers.ARP)
	resp := net.HardwareAddr{0xfa, 0x16, 0x3e, 0, 0, 0x77}
	for _, chk := range []struct {
		what      string
		got, want []byte
	}{
		{"eth_dst", fr.Data[0:6], vm1.MAC}, {"eth_src", fr.Data[6:12], resp},
		{"arp_sha", arp.SourceHwAddress, resp}, {"arp_spa", arp.SourceProtAddress, net.IPv4(10, 0, 10, 77).To4()},
		{"arp_tha", arp.DstHwAddress, vm1.MAC}, {"arp_tpa", arp.DstProtAddress, vm1.IP.To4()},
	} {
		if !bytes.Equal(chk.got, chk.want) {
			t.Errorf("reply's %s %x, want %x", chk.what, chk.got, chk.want)
		}
	}

	// The VM's own stack: ping's ARP resolves to the responder's address.
	vm1.Ping(t, net.IPv4(10, 0, 10, 77), 1, time.Second)
	out, err := vm1.NS.Command(t.Context(), "ip", "neigh", "show", "10.0.10.77").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lladdr fa:16:3e:00:00:77") {
		t.Errorf("VM 1's neighbour entry for 10.0.10.77: %s %v", out, err)
	}
}

// TestHeaderWrites: loads and moves into IP and UDP subfields keep the
// checksums right (the receiving stack drops a datagram whose checksum is
// wrong), and push_vlan with set_field on vlan_vid tags as OVS does.
func TestHeaderWrites(t *testing.T) {
	lab, c := attachedLab(t)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	c.must("add-flow", "priority=100,udp,in_port=vnet1,nw_dst=10.0.10.99,actions=load:0x2->NXM_OF_IP_DST[0..7],move:NXM_OF_UDP_SRC[]->NXM_OF_UDP_DST[],load:0x02000000->NXM_OF_ETH_DST[16..47],load:0x0a02->NXM_OF_ETH_DST[0..15],vnet2")
	l := vm2.ListenUDP(t, 7777)
	u, err := vm1.DialUDPFrom(7777, "10.0.10.99:1")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	// VM 1 must send to .99 without resolving it: a static neighbour.
	if out, err := vm1.NS.Command(t.Context(), "ip", "neigh", "replace", "10.0.10.99", "lladdr", "02:00:00:00:0a:99", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("ip neigh: %v: %s", err, out)
	}
	buf := make([]byte, 64)
	got := ""
	for i := 0; i < 20 && got == ""; i++ {
		u.Write([]byte("rewritten"))
		l.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if n, _, err := l.ReadFromUDP(buf); err == nil {
			got = string(buf[:n])
		}
	}
	if got != "rewritten" {
		t.Fatalf("the datagram to 10.0.10.99:1, rewritten to 10.0.10.2:7777, did not reach VM 2 (%q)", got)
	}

	// push_vlan then set_field:5->vlan_vid (OVS accepts it after the push).
	c.must("add-flow", "priority=100,icmp,in_port=vnet1,actions=push_vlan:0x8100,set_field:5->vlan_vid,vnet2")
	ps := vm2.OpenPacketSocket(t)
	vm1.Ping(t, vm2.IP, 1, time.Second)
	fr, err := ps.ReadMatching(3*time.Second, false, func(f testenv.Captured) bool {
		return bytes.Equal(f.Data[6:12], vm1.MAC) && !(f.Data[12] == 0x08 && f.Data[13] == 0x06) // not VM 1's ARP
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := vlanOf(fr.Data); got != 5 {
		t.Errorf("push_vlan,set_field:5->vlan_vid: VLAN %d", got)
	}
}

// TestTunnelMetadata: set_tunnel and set_field on tun_dst write the
// packet's tunnel metadata, which a later table matches (no tunnel port is
// involved: every packet starts with tun_id 0).
func TestTunnelMetadata(t *testing.T) {
	lab, c := attachedLab(t)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	c.must("add-flow", "table=0,priority=10,ip,in_port=vnet1,tun_id=0,actions=set_tunnel:0x5,set_field:192.0.2.9->tun_dst,resubmit(,1)")
	c.must("add-flow", "table=1,priority=10,tun_id=0x5,tun_dst=192.0.2.9,actions=vnet2")
	if err := vm1.Ping(t, vm2.IP, 2, 5*time.Second); err != nil {
		t.Fatalf("through table 1's tun_id=0x5,tun_dst=192.0.2.9: %v", err)
	}
	c.must("mod-flows", "--strict", "table=1,priority=10,tun_id=0x5,tun_dst=192.0.2.9,actions=drop")
	c.must("add-flow", "table=1,priority=20,tun_id=0x6,tun_dst=192.0.2.9,actions=vnet2")
	if err := vm1.Ping(t, vm2.IP, 1, 2*time.Second); err == nil {
		t.Fatal("a flow on tun_id=0x6 took packets whose tun_id is 0x5")
	}
}
