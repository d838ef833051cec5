package ctl_test

// End-to-end NAT tests: real traffic through ct(commit,nat(...)) and
// ct(nat) on the attached datapath, as Open vSwitch's system-traffic.at
// checks its NAT ("conntrack - SNAT with port range", "... with
// exhaustion", "conntrack - simple DNAT"): VMs behind the switch reach an
// "internet" host through source NAT, and the internet host reaches a
// VM's server through a floating address. What each side sees of the
// other is read from its sockets (the peer address a server accepts, the
// address a reply comes from) and from dump-conntrack; every frame the
// hosts receive through a translation is checked for its checksums.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// The NAT lab's addresses: the internet host (VM 3 of the lab, its lab
// address replaced by one outside the VMs' subnet), the address VMs are
// source-NATed to, and the floating address of VM 2's server.
var (
	natInetIP     = net.IPv4(192, 0, 2, 10).To4()
	natSNATIP     = net.IPv4(10, 0, 0, 100).To4()
	natFloatingIP = net.IPv4(10, 0, 0, 200).To4()
)

// natLab is a three-VM veth lab on vnet1..vnet3 whose VM 3 is the
// internet: VM 1 (10.0.10.1) and VM 2 (10.0.10.2) reach 192.0.2.0/24
// through the switch, and the internet host (192.0.2.10, on vnet3) knows
// only 192.0.2.0/24 and 10.0.0.0/24 -- the translated addresses, never
// the VMs' own. Every host has static neighbour entries for the others'
// addresses (no ARP): what a VM sends to the internet goes to VM 3's MAC,
// what the internet sends to 10.0.0.100 goes to VM 1's and to
// 10.0.0.200 to VM 2's, and the flows do the rest.
type natLab struct {
	*ctLab
	inet *testenv.VM // VM 3 with IP 192.0.2.10
}

func newNATLab(t *testing.T, txOff bool, flows ...string) *natLab {
	t.Helper()
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3, TxOffloadOff: txOff})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1", "vnet2", "vnet3")
	t.Cleanup(func() { c.run("detach") })
	vm1, vm2, vm3 := lab.VM(1), lab.VM(2), lab.VM(3)
	inet := *vm3
	inet.IP = natInetIP
	neigh := func(vm *testenv.VM, ip net.IP, mac net.HardwareAddr) {
		vm.NS.Run(t, "ip", "neigh", "replace", ip.String(), "lladdr", mac.String(), "dev", vm.Iface, "nud", "permanent")
	}
	vm3.NS.Run(t, "ip", "addr", "flush", "dev", vm3.Iface)
	vm3.NS.Run(t, "ip", "addr", "add", natInetIP.String()+"/24", "dev", vm3.Iface)
	vm3.NS.Run(t, "ip", "route", "add", "10.0.0.0/24", "dev", vm3.Iface)
	neigh(vm3, natSNATIP, vm1.MAC)
	neigh(vm3, natFloatingIP, vm2.MAC)
	for _, vm := range []*testenv.VM{vm1, vm2} {
		vm.NS.Run(t, "ip", "route", "add", "192.0.2.0/24", "dev", vm.Iface)
		neigh(vm, natInetIP, vm3.MAC)
	}
	l := &natLab{ctLab: &ctLab{cli: c, vm1: vm1, vm2: vm2}, inet: &inet}
	l.replaceFlows(flows...)
	return l
}

// natFailed is show's ct_nat_failed: commits refused for want of a free
// tuple in their nat() range.
func (c *cli) natFailed() uint64 {
	c.t.Helper()
	show := c.must("show")
	m := regexp.MustCompile(` ct_nat_failed:(\d+)`).FindStringSubmatch(show)
	if m == nil {
		c.t.Fatalf("show: no ct_nat_failed counter:\n%s", show)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// peerServer accepts TCP connections on ln; on each it first writes the
// peer address it sees ("IP:port\n"), then echoes what it reads until EOF
// and closes.
func peerServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			io.Copy(c, c)
			c.Close()
		}()
	}
}

// peerSeen reads, on a connection to a peerServer, the address the server
// sees as its peer, and checks that the connection echoes.
func peerSeen(t *testing.T, c net.Conn) *net.TCPAddr {
	t.Helper()
	c.SetDeadline(time.Now().Add(passWait))
	defer c.SetDeadline(time.Time{})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("the server's greeting: %q, %v", line, err)
	}
	a, err := net.ResolveTCPAddr("tcp4", strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("the server's greeting %q: %v", line, err)
	}
	if _, err := c.Write([]byte("echo")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "echo" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	return a
}

// natDial connects vm from lport to ip:port within passWait.
func natDial(t *testing.T, vm *testenv.VM, lport int, ip net.IP, port int) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), passWait)
	defer cancel()
	c, err := vm.DialTCPFrom(ctx, lport, net.JoinHostPort(ip.String(), strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("connect %v:%d -> %s:%d: %v", vm, lport, ip, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// natTCPLine is a dump-conntrack line of a TCP connection from src:sport to
// dst:dport whose reply tuple is rsrc:rsport -> rdst:rdport.
func natTCPLine(src, dst net.IP, sport, dport int, rsrc, rdst net.IP, rsport, rdport int, state string) string {
	return fmt.Sprintf("tcp,orig=(src=%s,dst=%s,sport=%d,dport=%d),reply=(src=%s,dst=%s,sport=%d,dport=%d),protoinfo=(state=%s)",
		src, dst, sport, dport, rsrc, rdst, rsport, rdport, state)
}

// checkNATChecksums reads what p captured (frames the host received) for
// a moment and checks every IPv4 frame between a and b, either way: the
// IP header's checksum, and the TCP or UDP checksum, which is either whole
// or, for a frame its sender left to checksum offload (CHECKSUM_PARTIAL:
// veth hands such frames on as they are), the pseudo-header's sum -- of
// the translated addresses, which is what a NAT must have adjusted.
// ICMP's has no pseudo-header and is always whole. It returns how many
// frames it checked.
func checkNATChecksums(t *testing.T, p *testenv.PacketSocket, a, b net.IP) int {
	t.Helper()
	n := 0
	p.ReadMatching(300*time.Millisecond, false, func(c testenv.Captured) bool {
		f := c.Data
		if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
			return false
		}
		ip := f[14:]
		src, dst := net.IP(ip[12:16]), net.IP(ip[16:20])
		if !(src.Equal(a) && dst.Equal(b) || src.Equal(b) && dst.Equal(a)) {
			return false
		}
		n++
		if err := natChecksumsOK(f); err != nil {
			t.Errorf("a frame %s -> %s: %v\n% x", src, dst, err, f)
		}
		return false
	})
	return n
}

func natChecksumsOK(f []byte) error {
	if testenv.VerifyChecksums(f) == nil {
		return nil
	}
	ip := f[14:]
	hl := int(ip[0]&0x0f) * 4
	if fold(sum16(ip[:hl], 0)) != 0xffff {
		return errors.New("bad IP header checksum")
	}
	total := int(binary.BigEndian.Uint16(ip[2:]))
	l4 := ip[hl:total]
	var at int
	switch ip[9] {
	case 6:
		at = 16
	case 17:
		at = 6
	default:
		return errors.New("bad checksum")
	}
	// The pseudo-header: addresses, protocol, L4 length.
	pseudo := sum16(ip[12:20], uint32(ip[9])+uint32(len(l4)))
	if got, want := binary.BigEndian.Uint16(l4[at:]), fold(pseudo); got != want {
		return fmt.Errorf("L4 checksum %#04x: neither whole nor the pseudo-header's sum %#04x (checksum offload)", got, want)
	}
	return nil
}

func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// natSNATFlows are OVS's SNAT pattern: what VM 1 sends to the internet is
// committed with a translation of its source to 10.0.0.100, ports
// 20000-20003; what comes back to 10.0.0.100 takes the connection's
// translation back (ct(nat)). Nothing else passes.
var natSNATFlows = []string{
	"priority=100, in_port=vnet1, tcp, nw_dst=192.0.2.0/24, actions=ct(commit,nat(src=10.0.0.100:20000-20003)),vnet3",
	"priority=100, in_port=vnet3, tcp, nw_dst=10.0.0.100, actions=ct(nat),vnet1",
}

// TestNATE2ESNATPortRange: VM 1 opens TCP connections to one port of the
// internet host through SNAT to 10.0.0.100:20000-20003. The server sees
// each one come from 10.0.0.100 and a port of the range; four connections
// at once take the four ports (each client port colliding with the
// others' translated tuples until it finds a free one), and
// dump-conntrack shows each reply tuple with its port. A fifth finds the
// range full: its SYN is refused (+inv, ct_nat_failed) and it does not
// connect. Once the four are closed and flushed, four new ones connect
// again. VMs send with checksum offload (CHECKSUM_PARTIAL through veth):
// the translated frames' checksums are checked on arrival.
func TestNATE2ESNATPortRange(t *testing.T) {
	l := newNATLab(t, false, natSNATFlows...)
	vm1, inet := l.vm1, l.inet
	ln := inet.ListenTCP(t, 7000)
	go peerServer(ln)
	capInet := inet.OpenPacketSocket(t)
	capVM1 := vm1.OpenPacketSocket(t)

	// open connects four clients from ports base+1..base+4 and returns the
	// translated port each got, checking what the server saw and the table.
	open := func(base int) ([]net.Conn, []int) {
		t.Helper()
		var conns []net.Conn
		var ports, seen []int
		var want []string
		for i := 1; i <= 4; i++ {
			c := natDial(t, vm1, base+i, natInetIP, 7000)
			peer := peerSeen(t, c)
			if !peer.IP.Equal(natSNATIP) || peer.Port < 20000 || peer.Port > 20003 || slices.Contains(seen, peer.Port) {
				t.Fatalf("connection %d from 10.0.10.1:%d: the server sees it from %v; want 10.0.0.100 and a free port of 20000-20003 (taken: %v)",
					i, base+i, peer, seen)
			}
			seen = append(seen, peer.Port)
			conns = append(conns, c)
			ports = append(ports, peer.Port)
			want = append(want, natTCPLine(vm1.IP, natInetIP, base+i, 7000, natInetIP, natSNATIP, 7000, peer.Port, "ESTABLISHED"))
		}
		l.wantConntrack(want)
		return conns, ports
	}
	conns, ports := open(46000)
	t.Logf("the four connections got ports %v", ports)
	if n := checkNATChecksums(t, capInet, natSNATIP, natInetIP); n == 0 {
		t.Error("the internet host captured no frame from 10.0.0.100")
	}
	if n := checkNATChecksums(t, capVM1, natInetIP, vm1.IP); n == 0 {
		t.Error("VM 1 captured no frame from the internet host")
	}

	// A fifth: no port left. Its SYN (and each retransmission) is refused.
	failed := l.natFailed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		c, err := vm1.DialTCPFrom(ctx, 46005, net.JoinHostPort(natInetIP.String(), "7000"))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	refused := waitCount(l.natFailed, failed+1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a fifth connection connected with the four ports of the range taken")
	}
	if !refused {
		t.Fatalf("ct_nat_failed stayed at %d for %v while a fifth connection tried", failed, dropWait)
	}
	if n := len(l.conntrack()); n != 4 {
		t.Errorf("dump-conntrack lists %d connections after the refused one, want the four", n)
	}

	// Closed (the client first: the server, which closes on EOF, keeps
	// no TIME_WAIT) and flushed, the range is free again.
	for _, c := range conns {
		c.Close()
	}
	var closed []string
	for i, p := range ports {
		closed = append(closed, natTCPLine(vm1.IP, natInetIP, 46001+i, 7000, natInetIP, natSNATIP, 7000, p, "TIME_WAIT"))
	}
	l.wantConntrack(closed)
	l.must("flush-conntrack")
	l.wantConntrack(nil)
	open(46010)
}

// TestNATE2ESNATExhaustedNotSent: a connection that finds its nat() range
// full must not leave at all. Open vSwitch's kernel datapath drops such a
// packet (nf_nat's failure makes its ct action fail); a SYN sent on with
// the VM's own source address would reach the internet with an address
// NAT was there to hide (and, where a route back exists, connect without
// translation). One port, 10.0.0.100:20000: the first connection takes it;
// the second's SYN must be refused (ct_nat_failed) and the internet host
// must see nothing from 10.0.10.1.
func TestNATE2ESNATExhaustedNotSent(t *testing.T) {
	l := newNATLab(t, false,
		"priority=100, in_port=vnet1, tcp, nw_dst=192.0.2.0/24, actions=ct(commit,nat(src=10.0.0.100:20000)),vnet3",
		"priority=100, in_port=vnet3, tcp, nw_dst=10.0.0.100, actions=ct(nat),vnet1",
	)
	vm1, inet := l.vm1, l.inet
	ln := inet.ListenTCP(t, 7000)
	go peerServer(ln)
	c := natDial(t, vm1, 46101, natInetIP, 7000)
	if peer := peerSeen(t, c); !peer.IP.Equal(natSNATIP) || peer.Port != 20000 {
		t.Fatalf("the server sees the first connection from %v, want 10.0.0.100:20000", peer)
	}
	capInet := inet.OpenPacketSocket(t)
	failed := l.natFailed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		c, err := vm1.DialTCPFrom(ctx, 46102, net.JoinHostPort(natInetIP.String(), "7000"))
		if err == nil {
			c.Close()
		}
		done <- err
	}()
	refused := waitCount(l.natFailed, failed+1)
	leaked, err := capInet.ReadMatching(passWait, false, func(c testenv.Captured) bool {
		f := c.Data
		return len(f) >= 14+20 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && net.IP(f[14+12:14+16]).Equal(vm1.IP)
	})
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the second connection connected with the range's one port taken")
	}
	if !refused {
		t.Fatalf("ct_nat_failed stayed at %d for %v while the second connection tried", failed, dropWait)
	}
	if err == nil {
		tp := testenv.Decode(leaked.Data)
		t.Errorf("the refused SYN reached the internet host untranslated, from VM 1's own address: %v\n"+
			"(ct(commit,nat(...)) marks it +inv and counts ct_nat_failed, but the flow's next action, output:vnet3, still sends it)", tp)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
}

// TestNATE2EDNATFloatingIP: the internet host connects to the floating
// address 10.0.0.200:80, which is VM 2's server on 10.0.10.2:8080
// (ct(commit,nat(dst=...)) from the internet's port, ct(nat) on the way
// back). VM 2's server sees the internet host's own address and port; the
// internet host's connection, to 10.0.0.200:80, establishes -- its stack
// takes only replies from there -- and its packet socket sees every reply
// come from 10.0.0.200:80. dump-conntrack shows the DNAT's reply tuple.
// Both with the VMs' checksum offload on (CHECKSUM_PARTIAL through veth)
// and off.
func TestNATE2EDNATFloatingIP(t *testing.T) {
	for _, txOff := range []bool{false, true} {
		t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
			l := newNATLab(t, txOff,
				"priority=100, in_port=vnet3, tcp, nw_dst=10.0.0.200, tp_dst=80, actions=ct(commit,nat(dst=10.0.10.2:8080)),vnet2",
				"priority=100, in_port=vnet2, tcp, nw_dst=192.0.2.0/24, actions=ct(nat),vnet3",
			)
			vm2, inet := l.vm2, l.inet
			ln := vm2.ListenTCP(t, 8080)
			go peerServer(ln)
			capInet := inet.OpenPacketSocket(t)
			capVM2 := vm2.OpenPacketSocket(t)
			c := natDial(t, inet, 47001, natFloatingIP, 80)
			if peer := peerSeen(t, c); !peer.IP.Equal(natInetIP) || peer.Port != 47001 {
				t.Fatalf("VM 2's server sees the connection from %v, want the internet host's 192.0.2.10:47001", peer)
			}
			if got := c.RemoteAddr().String(); got != "10.0.0.200:80" {
				t.Errorf("the internet host's connection is to %s, want 10.0.0.200:80", got)
			}
			l.wantConntrack([]string{natTCPLine(natInetIP, natFloatingIP, 47001, 80, vm2.IP, natInetIP, 8080, 47001, "ESTABLISHED")})
			// What the internet host received of the connection: all from
			// the floating address, nothing from VM 2's own.
			replies := 0
			capInet.ReadMatching(300*time.Millisecond, false, func(c testenv.Captured) bool {
				f := c.Data
				if len(f) < 14+20+4 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 6 {
					return false
				}
				src, sport := net.IP(f[14+12:14+16]), binary.BigEndian.Uint16(f[14+20:])
				if !src.Equal(natFloatingIP) || sport != 80 {
					t.Errorf("the internet host received a TCP segment from %s:%d; want every one from 10.0.0.200:80", src, sport)
				}
				replies++
				if err := natChecksumsOK(f); err != nil {
					t.Errorf("a reply from %s:%d: %v", src, sport, err)
				}
				return false
			})
			if replies == 0 {
				t.Error("the internet host's packet socket saw no reply")
			}
			if n := checkNATChecksums(t, capVM2, natInetIP, vm2.IP); n == 0 {
				t.Error("VM 2 captured no frame of the connection")
			}
		})
	}
}

// TestNATE2ESNATUDPAndPing: UDP and ICMP echo through SNAT. A UDP
// exchange from VM 1 to the internet host: the server sees 10.0.0.100 and
// a port of 20000-20003, its answer reaches VM 1's socket; ping (iputils)
// from VM 1 to the internet host gets its replies, and the echo requests
// arrive from 10.0.0.100 with VM 1's identifier kept (no other echo uses
// it). dump-conntrack shows both reply tuples. With checksum offload on
// and off.
func TestNATE2ESNATUDPAndPing(t *testing.T) {
	for _, txOff := range []bool{false, true} {
		t.Run(fmt.Sprintf("txoff=%v", txOff), func(t *testing.T) {
			l := newNATLab(t, txOff,
				"priority=100, in_port=vnet1, udp, nw_dst=192.0.2.0/24, actions=ct(commit,nat(src=10.0.0.100:20000-20003)),vnet3",
				"priority=100, in_port=vnet1, icmp, nw_dst=192.0.2.0/24, actions=ct(commit,nat(src=10.0.0.100)),vnet3",
				"priority=100, in_port=vnet3, ip, nw_dst=10.0.0.100, actions=ct(nat),vnet1",
			)
			vm1, inet := l.vm1, l.inet
			capInet := inet.OpenPacketSocket(t)

			srv := udpPeer{inet.ListenUDP(t, 5353)}
			u, err := vm1.DialUDPFrom(46200, net.JoinHostPort(natInetIP.String(), "5353"))
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			send(t, u, "query")
			msg, from := srv.recvFrom(t)
			if msg != "query" || !from.IP.Equal(natSNATIP) || from.Port < 20000 || from.Port > 20003 {
				t.Fatalf("the internet host read %q from %v; want \"query\" from 10.0.0.100 and a port of 20000-20003", msg, from)
			}
			srv.sendTo(t, "answer", from)
			mustReceive(t, u, "answer")
			if n := checkNATChecksums(t, capInet, natSNATIP, natInetIP); n == 0 {
				t.Error("the internet host captured no UDP datagram from 10.0.0.100")
			}
			udpLine := fmt.Sprintf("udp,orig=(src=10.0.10.1,dst=192.0.2.10,sport=46200,dport=5353),reply=(src=192.0.2.10,dst=10.0.0.100,sport=5353,dport=%d)", from.Port)

			if err := vm1.Ping(t, natInetIP, 3, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			var id uint16
			if _, err := capInet.ReadMatching(passWait, false, func(c testenv.Captured) bool {
				f := c.Data
				if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:]) != 0x0800 || f[14+9] != 1 || f[14+20] != 8 {
					return false
				}
				id = binary.BigEndian.Uint16(f[14+24:])
				if src := net.IP(f[14+12 : 14+16]); !src.Equal(natSNATIP) {
					t.Errorf("an echo request reached the internet host from %s, want 10.0.0.100", src)
				}
				if err := testenv.VerifyChecksums(f); err != nil {
					t.Errorf("an echo request after SNAT: %v", err)
				}
				return true
			}); err != nil {
				t.Fatalf("the internet host's packet socket: %v", err)
			}
			icmpLine := fmt.Sprintf("icmp,orig=(src=10.0.10.1,dst=192.0.2.10,id=%d,type=8,code=0),reply=(src=192.0.2.10,dst=10.0.0.100,id=%d,type=0,code=0)", id, id)
			l.wantConntrack([]string{udpLine, icmpLine})
			if n := checkNATChecksums(t, capInet, natSNATIP, natInetIP); n == 0 {
				t.Error("the internet host captured only one echo request from 10.0.0.100 of three")
			}
		})
	}
}

// TestNATE2EICMPErrors: ICMP errors about SNATed connections reach the
// VM's socket. UDP: the internet host's own kernel answers a datagram to
// a closed port with port unreachable, to 10.0.0.100 and quoting the
// translated datagram; the switch translates the error back (outer
// destination, quoted source address and port, checksums), and VM 1's
// connected socket reads ECONNREFUSED -- which its kernel reports only
// for an error whose checksum is right and whose quoted packet is its
// own datagram. TCP: a SYN to an address on the internet side that no
// host owns is answered by a router's host unreachable (sent here from
// the internet host's wire, quoting the SYN as it left the switch), and
// VM 1's connect fails with EHOSTUNREACH. And a connection to a closed
// port of the internet host is refused at once: its RST, the
// connection's only reply, is translated back as it ends it.
func TestNATE2EICMPErrorsAndResets(t *testing.T) {
	l := newNATLab(t, false,
		"priority=100, in_port=vnet1, ip, nw_dst=192.0.2.0/24, actions=ct(commit,nat(src=10.0.0.100:20000-20003)),vnet3",
		"priority=100, in_port=vnet3, ip, nw_dst=10.0.0.100, actions=ct(nat),vnet1",
	)
	vm1, inet := l.vm1, l.inet
	capInet := inet.OpenPacketSocket(t)
	capVM1 := vm1.OpenPacketSocket(t)

	u, err := vm1.DialUDPFrom(46300, net.JoinHostPort(natInetIP.String(), "9"))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	send(t, u, "anyone?")
	u.SetReadDeadline(time.Now().Add(passWait))
	if _, err := u.Read(make([]byte, 64)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("VM 1's UDP socket read %v, want ECONNREFUSED (the port unreachable, translated)", err)
	}
	checkICMPError(t, capVM1, vm1.IP, 3, 3, 17, 46300)

	// TCP to 192.0.2.99, which the internet host does not own: it sees
	// the SYN and drops it; the "router" answers.
	unowned := net.IPv4(192, 0, 2, 99).To4()
	vm1.NS.Run(t, "ip", "neigh", "replace", unowned.String(), "lladdr", inet.MAC.String(), "dev", vm1.Iface, "nud", "permanent")
	dialed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), passWait)
		defer cancel()
		c, err := vm1.DialTCPFrom(ctx, 46301, net.JoinHostPort(unowned.String(), "80"))
		if err == nil {
			c.Close()
		}
		dialed <- err
	}()
	syn, err := capInet.ReadMatching(passWait, false, func(c testenv.Captured) bool {
		f := c.Data
		return len(f) >= 14+20+20 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[14+9] == 6 &&
			net.IP(f[14+16:14+20]).Equal(unowned)
	})
	if err != nil {
		t.Fatalf("the SYN did not reach the internet side: %v", err)
	}
	if src := net.IP(syn.Data[14+12 : 14+16]); !src.Equal(natSNATIP) {
		t.Fatalf("the SYN left from %s, want 10.0.0.100", src)
	}
	hdr := int(syn.Data[14]&0x0f) * 4
	errFrame := testenv.Build(testenv.PacketSpec{SrcMAC: inet.MAC, DstMAC: vm1.MAC, SrcIP: natInetIP, DstIP: natSNATIP,
		Proto: "icmp", ICMPType: 3, ICMPCode: 1, Payload: syn.Data[14 : 14+hdr+8]})
	if err := capInet.Send(errFrame); err != nil {
		t.Fatal(err)
	}
	if err := <-dialed; !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Fatalf("VM 1's connect: %v, want EHOSTUNREACH (the host unreachable, translated)", err)
	}
	checkICMPError(t, capVM1, vm1.IP, 3, 1, 6, 46301)

	ctx, cancel := context.WithTimeout(context.Background(), passWait)
	defer cancel()
	c, err := vm1.DialTCPFrom(ctx, 46302, net.JoinHostPort(natInetIP.String(), "9"))
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("VM 1's connect to a closed port: %v, want ECONNREFUSED (the RST, translated)", err)
	}
}

// checkICMPError finds the ICMP error of type and code that p (VM 1's
// wire) received and checks it as translated back: to vm, quoting a
// packet of proto from vm and sport, checksums whole.
func checkICMPError(t *testing.T, p *testenv.PacketSocket, vm net.IP, typ, code, proto uint8, sport uint16) {
	t.Helper()
	c, err := p.ReadMatching(passWait, false, func(c testenv.Captured) bool {
		f := c.Data
		return len(f) >= 14+20+8+20+4 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[14+9] == 1 &&
			f[14+20] == typ && f[14+21] == code
	})
	if err != nil {
		t.Fatalf("VM 1 received no ICMP error type %d code %d: %v", typ, code, err)
	}
	f := c.Data
	if err := testenv.VerifyChecksums(f); err != nil {
		t.Errorf("the ICMP error VM 1 received: %v", err)
	}
	in := f[14+20+8:]
	if dst := net.IP(f[14+16 : 14+20]); !dst.Equal(vm) {
		t.Errorf("the ICMP error went to %s, want %s", dst, vm)
	}
	if src, p, port := net.IP(in[12:16]), in[9], binary.BigEndian.Uint16(in[20:]); !src.Equal(vm) || p != proto || port != sport {
		t.Errorf("the error quotes a packet of protocol %d from %s:%d, want %d from %s:%d", p, src, port, proto, vm, sport)
	}
}
