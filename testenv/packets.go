package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// PacketSpec describes an Ethernet frame for Build. Zero values give a
// minimal, valid frame; the exceptions to "zero means zero" are listed on
// the fields (TTL, Window, ARP and broadcast MACs).
type PacketSpec struct {
	// SrcMAC and DstMAC are the Ethernet addresses; nil means all zeroes,
	// except DstMAC of an ARP request, which defaults to broadcast.
	SrcMAC, DstMAC net.HardwareAddr
	// VLAN is the 802.1Q VLAN ID; -1 or 0 means untagged. PCP is the
	// priority code point of the tag.
	VLAN int
	PCP  uint8

	// SrcIP and DstIP choose the address family: IPv4 unless one of them is
	// an IPv6 address (or Proto is "ipv6"/"icmp6"). A nil address is the
	// family's unspecified address.
	SrcIP, DstIP net.IP
	// Proto is the frame type:
	//   "tcp", "udp"       TCP/UDP over IPv4 or IPv6
	//   "icmp"             ICMPv4 (ICMPv6 with IPv6 addresses); ICMPType etc.
	//   "icmp6", "icmpv6"  ICMPv6 (echo request/reply carry ICMPID/ICMPSeq)
	//   "arp"              ARP for IPv4 over Ethernet (ARPOp, MACs, IPs)
	//   "ip"               raw IPv4 (or IPv6) packet with protocol IPProto
	//                      and Payload as its contents
	//   "ipv6"             raw IPv6 packet with next header IPProto
	//   "eth"              bare Ethernet frame with EtherType and Payload
	Proto string
	// IPProto is the IP protocol / next header number for "ip" and "ipv6".
	IPProto uint8
	// EtherType is the Ethernet type for "eth".
	EtherType uint16

	// SrcPort and DstPort are the TCP/UDP ports.
	SrcPort, DstPort uint16
	// TCPFlags lists TCP flags by letter: F(IN) S(YN) R(ST) P(SH) A(CK)
	// U(RG) E(CE) C(WR) N(S), e.g. "S", "SA", "A", "FA", "R", "PA".
	TCPFlags string
	// Seq and Ack are the TCP sequence and acknowledgement numbers.
	Seq, Ack uint32
	// Window is the TCP window; 0 means 65535 (a zero window would make
	// window-tracking conntrack treat later segments as invalid).
	Window uint16

	// ICMPType and ICMPCode are used literally (0/0 is an ICMPv4 echo
	// reply; an echo request is type 8, or 128 for ICMPv6). ICMPID and
	// ICMPSeq are the echo identifier and sequence number.
	ICMPType, ICMPCode uint8
	ICMPID, ICMPSeq    uint16

	// ARPOp is the ARP operation: 1 request, 2 reply (0 means 1).
	ARPOp uint16

	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means 64.
	TTL uint8
	// TOS is the IPv4 TOS byte or IPv6 traffic class.
	TOS uint8
	// IPID is the IPv4 identification field.
	IPID uint16
	// DF sets the IPv4 don't-fragment flag.
	DF bool
	// IPOptions are raw IPv4 options appended to the 20-byte header; the
	// length must be a multiple of 4, at most 40.
	IPOptions []byte

	// Payload follows the innermost header.
	Payload []byte
	// Pad pads the frame with zeroes to the 60-byte Ethernet minimum (as a
	// real NIC would; veth and tap do not pad). Lengths in the headers do
	// not include the padding.
	Pad bool
}

// EthMinFrame is the minimum Ethernet frame length without FCS.
const EthMinFrame = 60

// Build serializes spec into an Ethernet frame with correct lengths and
// checksums. It panics if the spec is inconsistent (unknown Proto or TCP
// flag, VLAN > 4095, bad IPOptions length, IPv4 and IPv6 addresses mixed),
// because that is a bug in the test.
func Build(spec PacketSpec) []byte {
	b, err := build(spec)
	if err != nil {
		panic("testenv.Build: " + err.Error())
	}
	return b
}

// Decode parses a frame starting at the Ethernet header, for assertions.
func Decode(b []byte) gopacket.Packet {
	return gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
}

func build(spec PacketSpec) ([]byte, error) {
	proto := strings.ToLower(spec.Proto)
	v6, err := wantIPv6(spec, proto)
	if err != nil {
		return nil, err
	}
	src, dst := orUnspecified(spec.SrcIP, v6), orUnspecified(spec.DstIP, v6)
	ttl := spec.TTL
	if ttl == 0 {
		ttl = 64
	}

	eth := &layers.Ethernet{SrcMAC: macOrZero(spec.SrcMAC), DstMAC: macOrZero(spec.DstMAC)}
	var etherType layers.EthernetType
	var upper []gopacket.SerializableLayer // everything after the Ethernet/VLAN headers

	// ip is the network layer for L4 checksums; set for IP protocols.
	var ip gopacket.NetworkLayer
	ipProto := func(p layers.IPProtocol) gopacket.SerializableLayer {
		if v6 {
			etherType = layers.EthernetTypeIPv6
			l := &layers.IPv6{Version: 6, TrafficClass: spec.TOS, NextHeader: p, HopLimit: ttl, SrcIP: src, DstIP: dst}
			ip = l
			return l
		}
		etherType = layers.EthernetTypeIPv4
		l := &layers.IPv4{Version: 4, TOS: spec.TOS, Id: spec.IPID, TTL: ttl, Protocol: p, SrcIP: src, DstIP: dst}
		if spec.DF {
			l.Flags = layers.IPv4DontFragment
		}
		ip = l
		return l
	}

	switch proto {
	case "tcp":
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(spec.SrcPort), DstPort: layers.TCPPort(spec.DstPort),
			Seq: spec.Seq, Ack: spec.Ack, Window: spec.Window,
		}
		if tcp.Window == 0 {
			tcp.Window = 65535
		}
		if err := setTCPFlags(tcp, spec.TCPFlags); err != nil {
			return nil, err
		}
		upper = append(upper, ipProto(layers.IPProtocolTCP), tcp)
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
	case "udp":
		udp := &layers.UDP{SrcPort: layers.UDPPort(spec.SrcPort), DstPort: layers.UDPPort(spec.DstPort)}
		upper = append(upper, ipProto(layers.IPProtocolUDP), udp)
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
	case "icmp", "icmp6", "icmpv6":
		if !v6 {
			upper = append(upper, ipProto(layers.IPProtocolICMPv4), &layers.ICMPv4{
				TypeCode: layers.CreateICMPv4TypeCode(spec.ICMPType, spec.ICMPCode),
				Id:       spec.ICMPID, Seq: spec.ICMPSeq,
			})
			break
		}
		icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(spec.ICMPType, spec.ICMPCode)}
		upper = append(upper, ipProto(layers.IPProtocolICMPv6), icmp)
		if err := icmp.SetNetworkLayerForChecksum(ip); err != nil {
			return nil, err
		}
		if t := spec.ICMPType; t == layers.ICMPv6TypeEchoRequest || t == layers.ICMPv6TypeEchoReply {
			upper = append(upper, &layers.ICMPv6Echo{Identifier: spec.ICMPID, SeqNumber: spec.ICMPSeq})
		}
	case "ip", "ipv6":
		upper = append(upper, ipProto(layers.IPProtocol(spec.IPProto)))
	case "arp":
		if v6 {
			return nil, errors.New("ARP needs IPv4 addresses")
		}
		op := spec.ARPOp
		if op == 0 {
			op = layers.ARPRequest
		}
		etherType = layers.EthernetTypeARP
		target := macOrZero(spec.DstMAC)
		if op == layers.ARPRequest {
			target = make(net.HardwareAddr, 6) // unknown: that's what we ask for
			if spec.DstMAC == nil {
				eth.DstMAC = layers.EthernetBroadcast
			}
		}
		upper = append(upper, &layers.ARP{
			AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
			SourceHwAddress: eth.SrcMAC, SourceProtAddress: src,
			DstHwAddress: target, DstProtAddress: dst,
		})
	case "eth":
		etherType = layers.EthernetType(spec.EtherType)
	default:
		return nil, fmt.Errorf("unknown Proto %q", spec.Proto)
	}
	if len(spec.Payload) > 0 {
		upper = append(upper, gopacket.Payload(spec.Payload))
	}

	// gopacket's Ethernet layer pads frames to 60 bytes; real veth and tap
	// frames are not padded, so the Ethernet header is written by hand and
	// only what follows it is serialized by gopacket.
	var after []gopacket.SerializableLayer
	switch {
	case spec.VLAN > 4095:
		return nil, fmt.Errorf("VLAN %d out of range", spec.VLAN)
	case spec.VLAN > 0:
		eth.EthernetType = layers.EthernetTypeDot1Q
		after = append(after, &layers.Dot1Q{VLANIdentifier: uint16(spec.VLAN), Priority: spec.PCP, Type: etherType})
	default:
		eth.EthernetType = etherType
	}
	after = append(after, upper...)

	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, after...); err != nil {
		return nil, err
	}
	b := make([]byte, 14, 14+len(buf.Bytes()))
	copy(b[0:6], eth.DstMAC)
	copy(b[6:12], eth.SrcMAC)
	binary.BigEndian.PutUint16(b[12:], uint16(eth.EthernetType))
	b = append(b, buf.Bytes()...)

	if len(spec.IPOptions) > 0 {
		if b, err = insertIPv4Options(b, spec.IPOptions); err != nil {
			return nil, err
		}
	}
	if spec.Pad && len(b) < EthMinFrame {
		b = append(b, make([]byte, EthMinFrame-len(b))...)
	}
	return b, nil
}

// wantIPv6 decides the address family of spec.
func wantIPv6(spec PacketSpec, proto string) (bool, error) {
	is6 := func(ip net.IP) bool { return ip != nil && ip.To4() == nil }
	is4 := func(ip net.IP) bool { return ip != nil && ip.To4() != nil }
	v6 := is6(spec.SrcIP) || is6(spec.DstIP) || proto == "ipv6" || proto == "icmp6" || proto == "icmpv6"
	if v6 && (is4(spec.SrcIP) || is4(spec.DstIP)) {
		return false, fmt.Errorf("mixed IPv4/IPv6 addresses %v -> %v (Proto %q)", spec.SrcIP, spec.DstIP, spec.Proto)
	}
	return v6, nil
}

func orUnspecified(ip net.IP, v6 bool) net.IP {
	switch {
	case ip == nil && v6:
		return net.IPv6unspecified
	case ip == nil:
		return net.IPv4zero.To4()
	case v6:
		return ip.To16()
	default:
		return ip.To4()
	}
}

func macOrZero(m net.HardwareAddr) net.HardwareAddr {
	if m == nil {
		return make(net.HardwareAddr, 6)
	}
	return m
}

func setTCPFlags(tcp *layers.TCP, flags string) error {
	for _, c := range strings.ToUpper(flags) {
		switch c {
		case 'F':
			tcp.FIN = true
		case 'S':
			tcp.SYN = true
		case 'R':
			tcp.RST = true
		case 'P':
			tcp.PSH = true
		case 'A':
			tcp.ACK = true
		case 'U':
			tcp.URG = true
		case 'E':
			tcp.ECE = true
		case 'C':
			tcp.CWR = true
		case 'N':
			tcp.NS = true
		default:
			return fmt.Errorf("unknown TCP flag %q in %q", c, flags)
		}
	}
	return nil
}

// insertIPv4Options inserts raw options after the 20-byte IPv4 header of
// frame and fixes IHL, total length and the header checksum.
func insertIPv4Options(frame, opts []byte) ([]byte, error) {
	if len(opts)%4 != 0 || len(opts) > 40 {
		return nil, fmt.Errorf("IPOptions length %d: want a multiple of 4, at most 40", len(opts))
	}
	off, et, err := l3Offset(frame)
	if err != nil || et != uint16(layers.EthernetTypeIPv4) {
		return nil, errors.New("IPOptions need an IPv4 packet")
	}
	hdrEnd := off + 20
	out := make([]byte, 0, len(frame)+len(opts))
	out = append(out, frame[:hdrEnd]...)
	out = append(out, opts...)
	out = append(out, frame[hdrEnd:]...)
	ip := out[off:]
	ihl := 20 + len(opts)
	ip[0] = 0x40 | byte(ihl/4)
	binary.BigEndian.PutUint16(ip[2:], binary.BigEndian.Uint16(ip[2:])+uint16(len(opts)))
	setIPv4HeaderChecksum(ip[:ihl])
	return out, nil
}

// Truncate returns a copy of the first n bytes of b (all of b if shorter).
func Truncate(b []byte, n int) []byte {
	if n > len(b) {
		n = len(b)
	}
	if n < 0 {
		n = 0
	}
	return append([]byte(nil), b[:n]...)
}

// Malformed frame names, the keys of MalformedFrames.
const (
	MalEthTruncated      = "eth-truncated"        // 10 bytes: shorter than an Ethernet header
	MalVLANTruncated     = "vlan-truncated"       // 802.1Q TPID, TCI, but no inner EtherType
	MalIPv4Short         = "ipv4-short"           // EtherType IPv4 with only 10 bytes of header
	MalIPv4IHLLessThan5  = "ipv4-ihl-lt5"         // IHL 4 (16 bytes), header checksum over 20 bytes
	MalIPv4IHLPastEnd    = "ipv4-ihl-past-end"    // IHL 15 (60 bytes) but the frame ends after 28 bytes of IP
	MalIPv4TotLenPastEnd = "ipv4-totlen-gt-frame" // total length 1500 in a short frame
	MalIPv4TotLenLessIHL = "ipv4-totlen-lt-ihl"   // total length 10 < 20-byte header
	MalIPv4BadVersion    = "ipv4-bad-version"     // EtherType IPv4 but version 6
	MalIPv4BadChecksum   = "ipv4-bad-checksum"    // otherwise valid TCP SYN, header checksum wrong
	MalTCPDataOffLess5   = "tcp-doff-lt5"         // TCP data offset 4
	MalTCPDataOffPastEnd = "tcp-doff-past-end"    // TCP data offset 15 (60 bytes), segment is 20 bytes
	MalTCPTruncated      = "tcp-truncated"        // protocol TCP, 10 bytes of L4
	MalUDPTruncated      = "udp-truncated"        // protocol UDP, 4 bytes of L4
	MalUDPLenPastEnd     = "udp-len-gt-ip"        // UDP length 200 > IP payload
	MalICMPTruncated     = "icmp-truncated"       // protocol ICMP, 2 bytes of L4 (type and code)
	MalARPTruncated      = "arp-truncated"        // ARP with 10 of its 28 bytes
	MalIPv4FragMF        = "ipv4-frag-mf"         // first fragment: MF set, offset 0, TCP header inside
	MalIPv4FragOffset    = "ipv4-frag-offset"     // later fragment: offset 1480, no L4 header
	MalIPv4Options       = "ipv4-options"         // valid TCP SYN with IPv4 options (IHL 6: RA option)
	MalIPv6Truncated     = "ipv6-truncated"       // EtherType IPv6 with 20 of 40 header bytes
)

// MalformedFrames returns a fresh set of frames for robustness tests, keyed
// by the Mal* names. Except for the defect in its name, each frame is
// consistent (e.g. the IPv4 header checksum is valid), so a parser that
// accepts it for the wrong reason is caught. Base addressing is VM 1 to
// VM 2 of the lab.
//
// Not every frame can be injected everywhere (measured on Linux 6.18):
//   - tap writes reject frames shorter than 14 bytes (eth-truncated) with
//     EINVAL and accept all the others;
//   - BPF_PROG_TEST_RUN on a TC program rejects with EINVAL frames shorter
//     than 14 bytes and frames whose EtherType is IPv4/IPv6 but that are
//     shorter than the fixed IP header (ipv4-short, ipv6-truncated); send
//     those through a tap instead.
func MalformedFrames() map[string][]byte {
	base := PacketSpec{SrcMAC: VMMAC(1), DstMAC: VMMAC(2), SrcIP: VMIP(1), DstIP: VMIP(2)}
	with := func(f func(*PacketSpec)) []byte {
		s := base
		f(&s)
		return Build(s)
	}
	syn := func(s *PacketSpec) { s.Proto, s.SrcPort, s.DstPort, s.TCPFlags, s.Seq = "tcp", 40000, 80, "S", 1000 }
	rawIP := func(proto uint8, n int) []byte {
		return with(func(s *PacketSpec) { s.Proto, s.IPProto, s.Payload = "ip", proto, make([]byte, n) })
	}
	ipOff := 14
	tcpOff := ipOff + 20
	// mutate applies f to the IPv4 header of a fresh SYN and re-computes
	// the header checksum over the first 20 bytes.
	mutateIP := func(b []byte, f func(ip []byte)) []byte {
		ip := b[ipOff:]
		f(ip)
		setIPv4HeaderChecksum(ip[:20])
		return b
	}

	m := map[string][]byte{}
	m[MalEthTruncated] = Truncate(with(syn), 10)
	m[MalVLANTruncated] = Truncate(with(func(s *PacketSpec) { syn(s); s.VLAN = 100 }), 16)
	m[MalIPv4Short] = Truncate(with(syn), ipOff+10)
	m[MalIPv4IHLLessThan5] = mutateIP(with(syn), func(ip []byte) { ip[0] = 0x44 })
	m[MalIPv4IHLPastEnd] = mutateIP(with(func(s *PacketSpec) {
		s.Proto, s.SrcPort, s.DstPort = "udp", 40000, 53
	}), func(ip []byte) { ip[0] = 0x4f })
	m[MalIPv4TotLenPastEnd] = mutateIP(with(syn), func(ip []byte) { binary.BigEndian.PutUint16(ip[2:], 1500) })
	m[MalIPv4TotLenLessIHL] = mutateIP(with(syn), func(ip []byte) { binary.BigEndian.PutUint16(ip[2:], 10) })
	m[MalIPv4BadVersion] = mutateIP(with(syn), func(ip []byte) { ip[0] = 0x65 })
	bad := with(syn)
	bad[ipOff+10] ^= 0xff
	m[MalIPv4BadChecksum] = bad

	doff := func(words byte) []byte {
		b := with(syn)
		b[tcpOff+12] = words << 4
		if err := FixChecksums(b); err != nil {
			panic(err)
		}
		return b
	}
	m[MalTCPDataOffLess5] = doff(4)
	m[MalTCPDataOffPastEnd] = doff(15)
	m[MalTCPTruncated] = rawIP(6, 10)
	m[MalUDPTruncated] = rawIP(17, 4)
	udp := with(func(s *PacketSpec) { s.Proto, s.SrcPort, s.DstPort, s.Payload = "udp", 40000, 53, []byte("ping") })
	binary.BigEndian.PutUint16(udp[tcpOff+4:], 200)
	if err := FixChecksums(udp); err != nil {
		panic(err)
	}
	m[MalUDPLenPastEnd] = udp
	m[MalICMPTruncated] = rawIP(1, 2)
	m[MalARPTruncated] = Truncate(with(func(s *PacketSpec) { s.Proto = "arp" }), ipOff+10)
	m[MalIPv4FragMF] = mutateIP(with(func(s *PacketSpec) { syn(s); s.Payload = make([]byte, 16) }),
		func(ip []byte) { binary.BigEndian.PutUint16(ip[6:], 0x2000) })
	m[MalIPv4FragOffset] = mutateIP(rawIP(6, 16), func(ip []byte) { binary.BigEndian.PutUint16(ip[6:], 1480/8) })
	m[MalIPv4Options] = with(func(s *PacketSpec) { syn(s); s.IPOptions = []byte{0x94, 0x04, 0x00, 0x00} })
	m[MalIPv6Truncated] = Truncate(Build(PacketSpec{
		SrcMAC: VMMAC(1), DstMAC: VMMAC(2), Proto: "udp",
		SrcIP: net.ParseIP("fd00::1"), DstIP: net.ParseIP("fd00::2"), SrcPort: 40000, DstPort: 53,
	}), ipOff+20)
	return m
}
