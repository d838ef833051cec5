package testenv

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Lease is what a DHCP server gave a client.
type Lease struct {
	IP     net.IP
	Mask   net.IPMask
	Router net.IP // nil: none offered
	Server net.IP
}

// DHCP gets an address for iface in ns (MAC mac) from a DHCP server on its
// link, as a VM's DHCP client does: DISCOVER, OFFER, REQUEST, ACK, all
// broadcast (the broadcast flag asks the server to answer so, as iface
// has no address yet). It does not configure the address.
func DHCP(ns *NS, iface string, mac net.HardwareAddr, timeout time.Duration) (*Lease, error) {
	var lease *Lease
	err := ns.Do(func() error {
		fd, err := dhcpSocket(iface)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var xid [4]byte
		rand.Read(xid[:])
		c := &dhcpClient{fd: fd, mac: mac, xid: binary.BigEndian.Uint32(xid[:]), deadline: time.Now().Add(timeout)}
		lease, err = c.run()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp on %s in %s: %w", iface, ns, err)
	}
	return lease, nil
}

// dhcpSocket is a UDP socket on port 68 of iface that may broadcast.
func dhcpSocket(iface string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, err
	}
	for _, o := range []int{unix.SO_REUSEADDR, unix.SO_BROADCAST} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, 1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	if err := unix.BindToDevice(fd, iface); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind to %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 68}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("bind port 68: %w", err)
	}
	return fd, nil
}

type dhcpClient struct {
	fd       int
	mac      net.HardwareAddr
	xid      uint32
	deadline time.Time
}

func (c *dhcpClient) run() (*Lease, error) {
	offer, err := c.exchange(layers.DHCPMsgTypeDiscover, nil, nil, layers.DHCPMsgTypeOffer)
	if err != nil {
		return nil, fmt.Errorf("no offer: %w", err)
	}
	server := optionIP(offer, layers.DHCPOptServerID)
	ack, err := c.exchange(layers.DHCPMsgTypeRequest, offer.YourClientIP, server, layers.DHCPMsgTypeAck)
	if err != nil {
		return nil, fmt.Errorf("no ack for %s: %w", offer.YourClientIP, err)
	}
	l := &Lease{IP: ack.YourClientIP.To4(), Router: optionIP(ack, layers.DHCPOptRouter), Server: server, Mask: net.CIDRMask(24, 32)}
	if m := optionIP(ack, layers.DHCPOptSubnetMask); m != nil {
		l.Mask = net.IPMask(m)
	}
	return l, nil
}

func optionIP(d *layers.DHCPv4, t layers.DHCPOpt) net.IP {
	for _, o := range d.Options {
		if o.Type == t && len(o.Data) == 4 {
			return net.IP(append([]byte(nil), o.Data...))
		}
	}
	return nil
}

// exchange sends a message of type typ (a REQUEST for ip from server)
// once a second until an answer of type want comes, or the deadline.
func (c *dhcpClient) exchange(typ layers.DHCPMsgType, ip, server net.IP, want layers.DHCPMsgType) (*layers.DHCPv4, error) {
	msg := &layers.DHCPv4{Operation: layers.DHCPOpRequest, HardwareType: layers.LinkTypeEthernet,
		HardwareLen: 6, Xid: c.xid, Flags: 0x8000, ClientHWAddr: c.mac,
		Options: layers.DHCPOptions{layers.NewDHCPOption(layers.DHCPOptMessageType, []byte{byte(typ)})}}
	if ip != nil {
		msg.Options = append(msg.Options, layers.NewDHCPOption(layers.DHCPOptRequestIP, ip.To4()))
	}
	if server != nil {
		msg.Options = append(msg.Options, layers.NewDHCPOption(layers.DHCPOptServerID, server.To4()))
	}
	msg.Options = append(msg.Options,
		layers.NewDHCPOption(layers.DHCPOptParamsRequest, []byte{byte(layers.DHCPOptSubnetMask), byte(layers.DHCPOptRouter)}),
		layers.NewDHCPOption(layers.DHCPOptEnd, nil))
	buf := gopacket.NewSerializeBuffer()
	if err := msg.SerializeTo(buf, gopacket.SerializeOptions{FixLengths: true}); err != nil {
		return nil, err
	}
	to := &unix.SockaddrInet4{Port: 67, Addr: [4]byte{255, 255, 255, 255}}
	in := make([]byte, 1500)
	for time.Now().Before(c.deadline) {
		if err := unix.Sendto(c.fd, buf.Bytes(), 0, to); err != nil {
			return nil, fmt.Errorf("send: %w", err)
		}
		resend := time.Now().Add(time.Second)
		for time.Now().Before(resend) && time.Now().Before(c.deadline) {
			tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
			unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			n, _, err := unix.Recvfrom(c.fd, in, 0)
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("receive: %w", err)
			}
			var d layers.DHCPv4
			if d.DecodeFromBytes(in[:n], gopacket.NilDecodeFeedback) != nil || d.Xid != c.xid || d.Operation != layers.DHCPOpReply {
				continue
			}
			for _, o := range d.Options {
				if o.Type == layers.DHCPOptMessageType && len(o.Data) == 1 {
					if layers.DHCPMsgType(o.Data[0]) == want {
						return &d, nil
					}
					if layers.DHCPMsgType(o.Data[0]) == layers.DHCPMsgTypeNak {
						return nil, errors.New("NAK")
					}
				}
			}
		}
	}
	return nil, fmt.Errorf("no %s within the time", want)
}
