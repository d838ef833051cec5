package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// VerifyChecksums checks the IPv4 header checksum and the TCP, UDP, ICMP
// or ICMPv6 checksum of an Ethernet frame (802.1Q/802.1ad tags are
// skipped), independently of gopacket. It is meant for frames the switch
// rewrote (e.g. NAT) as well as for Build's output. Non-IP frames, other IP
// protocols and the L4 checksums of IPv4 fragments are not
// checked; a UDP checksum of 0 is accepted for IPv4 only. Padding after the
// IP total length is ignored.
func VerifyChecksums(frame []byte) error { return walkChecksums(frame, false) }

// FixChecksums recomputes, in place, the checksums VerifyChecksums checks,
// e.g. after a test mutated a frame. It returns an error if the frame is
// too malformed to locate them.
func FixChecksums(frame []byte) error { return walkChecksums(frame, true) }

// l3Offset skips the Ethernet header and VLAN tags and returns the offset of
// the network header and its EtherType.
func l3Offset(b []byte) (int, uint16, error) {
	if len(b) < 14 {
		return 0, 0, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", len(b))
	}
	off, et := 14, binary.BigEndian.Uint16(b[12:])
	for et == 0x8100 || et == 0x88a8 {
		if len(b) < off+4 {
			return 0, 0, errors.New("truncated VLAN tag")
		}
		et = binary.BigEndian.Uint16(b[off+2:])
		off += 4
	}
	return off, et, nil
}

func walkChecksums(frame []byte, fix bool) error {
	off, et, err := l3Offset(frame)
	if err != nil {
		return err
	}
	switch et {
	case 0x0800:
		return ipv4Checksums(frame[off:], fix)
	case 0x86dd:
		return ipv6Checksums(frame[off:], fix)
	}
	return nil
}

func ipv4Checksums(p []byte, fix bool) error {
	if len(p) < 20 {
		return fmt.Errorf("IPv4 header truncated (%d bytes)", len(p))
	}
	if v := p[0] >> 4; v != 4 {
		return fmt.Errorf("IP version %d in an IPv4 EtherType", v)
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || ihl > len(p) {
		return fmt.Errorf("bad IPv4 IHL %d (packet has %d bytes)", ihl, len(p))
	}
	if fix {
		setIPv4HeaderChecksum(p[:ihl])
	} else if s := fold(sum16(p[:ihl], 0)); s != 0xffff {
		return fmt.Errorf("bad IPv4 header checksum %#04x", binary.BigEndian.Uint16(p[10:]))
	}
	tot := int(binary.BigEndian.Uint16(p[2:]))
	if tot < ihl || tot > len(p) {
		return fmt.Errorf("bad IPv4 total length %d (header %d, packet %d bytes)", tot, ihl, len(p))
	}
	if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 {
		return nil // a fragment: the L4 checksum covers the reassembled packet
	}
	l4 := p[ihl:tot]
	pseudo := sum16(p[12:20], uint32(p[9])+uint32(len(l4)))
	return l4Checksum(p[9], l4, pseudo, fix, false)
}

func ipv6Checksums(p []byte, fix bool) error {
	if len(p) < 40 {
		return fmt.Errorf("IPv6 header truncated (%d bytes)", len(p))
	}
	plen := int(binary.BigEndian.Uint16(p[4:]))
	if 40+plen > len(p) {
		return fmt.Errorf("IPv6 payload length %d exceeds packet (%d bytes)", plen, len(p)-40)
	}
	l4 := p[40 : 40+plen]
	pseudo := sum16(p[8:40], uint32(p[6])+uint32(plen))
	return l4Checksum(p[6], l4, pseudo, fix, true)
}

// l4Checksum verifies or fixes the checksum of an L4 message given the sum
// of its pseudo header (ICMPv4 has none).
func l4Checksum(proto byte, l4 []byte, pseudo uint32, fix, v6 bool) error {
	var name string
	var at, min int
	switch proto {
	case 6:
		name, at, min = "TCP", 16, 20
	case 17:
		name, at, min = "UDP", 6, 8
	case 1:
		if v6 {
			return nil
		}
		name, at, min, pseudo = "ICMP", 2, 4, 0
	case 58:
		if !v6 {
			return nil
		}
		name, at, min = "ICMPv6", 2, 4
	default:
		return nil
	}
	if len(l4) < min {
		return fmt.Errorf("%s header truncated (%d bytes)", name, len(l4))
	}
	if fix {
		l4[at], l4[at+1] = 0, 0
		c := ^fold(sum16(l4, pseudo))
		if c == 0 && proto == 17 {
			c = 0xffff // 0 would mean "no checksum"
		}
		binary.BigEndian.PutUint16(l4[at:], c)
		return nil
	}
	stored := binary.BigEndian.Uint16(l4[at:])
	if proto == 17 && stored == 0 {
		if v6 {
			return errors.New("UDP checksum 0 is not allowed over IPv6")
		}
		return nil
	}
	if fold(sum16(l4, pseudo)) != 0xffff {
		return fmt.Errorf("bad %s checksum %#04x", name, stored)
	}
	return nil
}

// setIPv4HeaderChecksum recomputes the checksum of an IPv4 header.
func setIPv4HeaderChecksum(hdr []byte) {
	hdr[10], hdr[11] = 0, 0
	binary.BigEndian.PutUint16(hdr[10:], ^fold(sum16(hdr, 0)))
}

// sum16 adds b as big-endian 16-bit words (odd length padded with a zero
// byte) to acc, without folding.
func sum16(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds a 32-bit one's complement sum to 16 bits.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = (s >> 16) + (s & 0xffff)
	}
	return uint16(s)
}
