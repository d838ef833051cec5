package probe

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// FillUDP sends n UDP datagrams from src to dst out of iface with an
// AF_PACKET socket, each with its own port pair: datagram i (counting from
// first) has source port 1024 + i%60000 and destination port
// 20000 + i/60000, so that a stateful switch committing
// UDP holds n connections afterwards. Checksums are computed: Open
// vSwitch's userspace conntrack checks them. Sends are paced in bursts so
// the switch's receive queue does not overflow. Returns how many it sent.
func FillUDP(iface string, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, first, n int) (int, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return 0, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return 0, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], dstMAC)
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	const burst, ports = 128, 60000
	for k := 0; k < n; k++ {
		i := first + k
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src, DstIP: dst}
		udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + i%ports), DstPort: layers.UDPPort(20000 + i/ports)}
		udp.SetNetworkLayerForChecksum(ip)
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload([]byte("fill"))); err != nil {
			return k, err
		}
		for {
			err = unix.Sendto(fd, buf.Bytes(), 0, to)
			if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if err != nil {
			return k, fmt.Errorf("send: %w", err)
		}
		if k%burst == burst-1 {
			time.Sleep(500 * time.Microsecond) // about 250k datagrams/s
		}
	}
	return n, nil
}
