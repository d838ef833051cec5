package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// PacketSocket is an AF_PACKET socket on a VM's interface, for frames a
// socket cannot produce (segments out of the TCP window, ICMP errors from a
// pretend router) mixed with real traffic: Send transmits a crafted frame
// out of the VM's eth0, as if the VM's stack had sent it, and ReadMatching
// captures what eth0 receives (and, on request, what it sends).
//
// Frames the VM's own stack sends are captured before checksum offload is
// done: their L4 checksums may be partial. Use one reader at a time. An
// 802.1Q tag the kernel keeps beside the frame (as veth and most NICs
// deliver it) is put back into Data, as libpcap does, so a frame reads
// as it was on the wire.
type PacketSocket struct {
	fd      int
	ifindex int
	vm      *VM
}

// Captured is one frame read by PacketSocket.ReadMatching.
type Captured struct {
	// Data is the frame, from the Ethernet header.
	Data []byte
	// Outgoing is true for frames the VM sent, false for frames it received.
	Outgoing bool
}

// packetPoll is how long one receive may block, so that reads honour their
// overall timeout.
const packetPoll = 50 * time.Millisecond

// OpenPacketSocket opens a packet socket bound to the VM's eth0 (veth labs
// only) and closes it in a cleanup. The socket captures from the moment it
// is opened.
func (vm *VM) OpenPacketSocket(tb testing.TB) *PacketSocket {
	tb.Helper()
	p, err := vm.openPacketSocket()
	if err != nil {
		tb.Fatalf("testenv: %v: packet socket: %v", vm, err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

func (vm *VM) openPacketSocket() (*PacketSocket, error) {
	ns, err := vm.ns()
	if err != nil {
		return nil, err
	}
	p := &PacketSocket{fd: -1, vm: vm}
	err = ns.Do(func() error {
		ifc, err := net.InterfaceByName(vm.Iface)
		if err != nil {
			return err
		}
		p.ifindex = ifc.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("socket(AF_PACKET): %w", err)
		}
		p.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
			return fmt.Errorf("bind to %s: %w", vm.Iface, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA: %w", err)
		}
		tv := unix.NsecToTimeval(packetPoll.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
		return nil
	})
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Send transmits frame (from the Ethernet header) out of the VM's eth0.
func (p *PacketSocket) Send(frame []byte) error {
	if err := unix.Sendto(p.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: p.ifindex}); err != nil {
		return fmt.Errorf("%v: send frame on %s: %w", p.vm, p.vm.Iface, err)
	}
	return nil
}

// ReadMatching reads frames for at most timeout in total and returns the
// first one for which match returns true, discarding the others. Unless
// outgoing is set, frames the VM sent are skipped. On timeout the error
// wraps os.ErrDeadlineExceeded.
func (p *PacketSocket) ReadMatching(timeout time.Duration, outgoing bool, match func(Captured) bool) (Captured, error) {
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	deadline := time.Now().Add(timeout)
	skipped := 0
	for time.Now().Before(deadline) {
		n, oobn, _, from, err := unix.Recvmsg(p.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return Captured{}, fmt.Errorf("%v: read %s: %w", p.vm, p.vm.Iface, err)
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		c := Captured{Data: withVLANTag(buf[:n], oob[:oobn]), Outgoing: ll != nil && ll.Pkttype == unix.PACKET_OUTGOING}
		if (!c.Outgoing || outgoing) && match(c) {
			return c, nil
		}
		skipped++
	}
	return Captured{}, fmt.Errorf("%v: no matching frame on %s within %v (%d others): %w", p.vm, p.vm.Iface, timeout, skipped, os.ErrDeadlineExceeded)
}

// withVLANTag copies frame, with the 802.1Q tag that PACKET_AUXDATA
// control data in oob reports put back after the MAC addresses.
func withVLANTag(frame, oob []byte) []byte {
	const (
		statusVLANValid = 0x10 // TP_STATUS_VLAN_VALID
		statusTPIDValid = 0x40 // TP_STATUS_VLAN_TPID_VALID
	)
	msgs, _ := unix.ParseSocketControlMessage(oob)
	for _, m := range msgs {
		// struct tpacket_auxdata: status, len, snaplen (u32), mac, net,
		// vlan_tci, vlan_tpid (u16), host byte order.
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 || len(frame) < 12 {
			continue
		}
		status := binary.NativeEndian.Uint32(m.Data[0:])
		if status&statusVLANValid == 0 {
			break
		}
		tci := binary.NativeEndian.Uint16(m.Data[16:])
		tpid := uint16(unix.ETH_P_8021Q)
		if status&statusTPIDValid != 0 {
			tpid = binary.NativeEndian.Uint16(m.Data[18:])
		}
		out := make([]byte, 0, len(frame)+4)
		out = append(out, frame[:12]...)
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, tci)
		return append(out, frame[12:]...)
	}
	return append([]byte(nil), frame...)
}

// Drain discards the frames captured so far and returns how many there were.
func (p *PacketSocket) Drain() int {
	buf := make([]byte, 65536)
	n := 0
	for {
		if _, _, err := unix.Recvfrom(p.fd, buf, unix.MSG_DONTWAIT); err != nil {
			return n
		}
		n++
	}
}

// Close closes the socket. It is idempotent.
func (p *PacketSocket) Close() error {
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}
