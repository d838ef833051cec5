package testenv

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"sort"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	mac1, mac2 = VMMAC(1), VMMAC(2)
	ip1, ip2   = VMIP(1), VMIP(2)
	ip61, ip62 = net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
)

// layerTypes lists the decoded layer types of a frame, e.g.
// "Ethernet/IPv4/TCP/Payload".
func layerTypes(p gopacket.Packet) string {
	var s []string
	for _, l := range p.Layers() {
		s = append(s, l.LayerType().String())
	}
	return strings.Join(s, "/")
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name        string
		spec        PacketSpec
		layers      string
		decodeError bool // gopacket cannot decode it (unknown EtherType)
		check       func(t *testing.T, p gopacket.Packet)
	}{
		{
			name:   "tcp-syn-ack-vlan",
			spec:   PacketSpec{SrcMAC: mac1, DstMAC: mac2, VLAN: 100, PCP: 5, SrcIP: ip1, DstIP: ip2, Proto: "tcp", SrcPort: 40000, DstPort: 80, TCPFlags: "SA", Seq: 7, Ack: 9, Window: 1000, TTL: 3},
			layers: "Ethernet/Dot1Q/IPv4/TCP",
			check: func(t *testing.T, p gopacket.Packet) {
				v := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if v.VLANIdentifier != 100 || v.Priority != 5 || ip.TTL != 3 || !ip.SrcIP.Equal(ip1) || !ip.DstIP.Equal(ip2) ||
					!tcp.SYN || !tcp.ACK || tcp.FIN || tcp.RST || tcp.Seq != 7 || tcp.Ack != 9 || tcp.Window != 1000 ||
					tcp.SrcPort != 40000 || tcp.DstPort != 80 || tcp.DataOffset != 5 {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "tcp-defaults",
			spec:   PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "TCP", TCPFlags: "fpurecn"},
			layers: "Ethernet/IPv4/TCP",
			check: func(t *testing.T, p gopacket.Packet) {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if ip.TTL != 64 || tcp.Window != 65535 || !tcp.FIN || !tcp.PSH || !tcp.URG || !tcp.RST || !tcp.ECE || !tcp.CWR || !tcp.NS || tcp.SYN || tcp.ACK {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "udp-payload-df",
			spec:   PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1234, DstPort: 5000, Payload: []byte("query"), DF: true, IPID: 4242, TOS: 0x10},
			layers: "Ethernet/IPv4/UDP/Payload",
			check: func(t *testing.T, p gopacket.Packet) {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if ip.Flags != layers.IPv4DontFragment || ip.Id != 4242 || ip.TOS != 0x10 || udp.Length != 13 || string(udp.Payload) != "query" {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "icmp-echo",
			spec:   PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "icmp", ICMPType: 8, ICMPID: 5, ICMPSeq: 6, Payload: []byte("xyz")},
			layers: "Ethernet/IPv4/ICMPv4/Payload",
			check: func(t *testing.T, p gopacket.Packet) {
				ic := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if ic.TypeCode != layers.CreateICMPv4TypeCode(8, 0) || ic.Id != 5 || ic.Seq != 6 {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "icmp-dest-unreach",
			spec:   PacketSpec{SrcIP: ip2, DstIP: ip1, Proto: "icmp", ICMPType: 3, ICMPCode: 3},
			layers: "Ethernet/IPv4/ICMPv4",
		},
		{
			name:   "arp-request",
			spec:   PacketSpec{SrcMAC: mac1, SrcIP: ip1, DstIP: ip2, Proto: "arp", ARPOp: 1},
			layers: "Ethernet/ARP",
			check: func(t *testing.T, p gopacket.Packet) {
				eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				arp := p.Layer(layers.LayerTypeARP).(*layers.ARP)
				if eth.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || arp.Operation != 1 || !bytes.Equal(arp.SourceHwAddress, mac1) ||
					!bytes.Equal(arp.DstHwAddress, make([]byte, 6)) || !net.IP(arp.SourceProtAddress).Equal(ip1) || !net.IP(arp.DstProtAddress).Equal(ip2) {
					t.Errorf("fields: %v", p)
				}
				if len(p.Data()) != 42 {
					t.Errorf("unpadded ARP is %d bytes, want 42", len(p.Data()))
				}
			},
		},
		{
			name:   "arp-reply-padded",
			spec:   PacketSpec{SrcMAC: mac2, DstMAC: mac1, SrcIP: ip2, DstIP: ip1, Proto: "arp", ARPOp: 2, Pad: true},
			layers: "Ethernet/ARP/Payload", // gopacket shows the padding as a payload
			check: func(t *testing.T, p gopacket.Packet) {
				arp := p.Layer(layers.LayerTypeARP).(*layers.ARP)
				if arp.Operation != 2 || !bytes.Equal(arp.DstHwAddress, mac1) || len(p.Data()) != EthMinFrame {
					t.Errorf("fields: %v (%d bytes)", p, len(p.Data()))
				}
			},
		},
		{
			name:   "raw-ip-gre",
			spec:   PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "ip", IPProto: 47, Payload: []byte{0, 0, 0x08, 0}},
			layers: "Ethernet/IPv4/GRE",
		},
		{
			name:   "ipv4-options",
			spec:   PacketSpec{SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 2, IPOptions: []byte{0x94, 4, 0, 0}},
			layers: "Ethernet/IPv4/UDP",
			check: func(t *testing.T, p gopacket.Packet) {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				if ip.IHL != 6 || ip.Length != 32 || len(ip.Options) != 1 || ip.Options[0].OptionType != 0x94 {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "tcp6",
			spec:   PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "tcp", SrcPort: 1, DstPort: 443, TCPFlags: "PA", Payload: []byte("data"), TTL: 9},
			layers: "Ethernet/IPv6/TCP/Payload",
			check: func(t *testing.T, p gopacket.Packet) {
				ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				if ip.HopLimit != 9 || ip.Length != 24 || !ip.SrcIP.Equal(ip61) {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "udp6-vlan",
			spec:   PacketSpec{VLAN: 7, SrcIP: ip61, DstIP: ip62, Proto: "udp", SrcPort: 1, DstPort: 2, Payload: []byte{1}},
			layers: "Ethernet/Dot1Q/IPv6/UDP/Payload",
		},
		{
			name:   "icmp6-echo",
			spec:   PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "icmp6", ICMPType: 128, ICMPID: 3, ICMPSeq: 4},
			layers: "Ethernet/IPv6/ICMPv6/ICMPv6Echo",
			check: func(t *testing.T, p gopacket.Packet) {
				e := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo)
				if e.Identifier != 3 || e.SeqNumber != 4 {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:   "icmp-with-v6-addresses",
			spec:   PacketSpec{SrcIP: ip61, DstIP: ip62, Proto: "icmp", ICMPType: 129},
			layers: "Ethernet/IPv6/ICMPv6/ICMPv6Echo",
		},
		{
			name:   "raw-ipv6",
			spec:   PacketSpec{Proto: "ipv6", IPProto: 59, Payload: []byte{0xde, 0xad}},
			layers: "Ethernet/IPv6/Payload",
			check: func(t *testing.T, p gopacket.Packet) {
				if ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6); !ip.SrcIP.Equal(net.IPv6unspecified) || ip.NextHeader != 59 {
					t.Errorf("fields: %v", p)
				}
			},
		},
		{
			name:        "eth-lldp-ethertype",
			spec:        PacketSpec{SrcMAC: mac1, DstMAC: net.HardwareAddr{1, 0x80, 0xc2, 0, 0, 0xe}, Proto: "eth", EtherType: 0x88b5, Payload: []byte("local experimental")},
			layers:      "Ethernet/DecodeFailure",
			decodeError: true,
			check: func(t *testing.T, p gopacket.Packet) {
				if len(p.Data()) != 14+18 {
					t.Errorf("%d bytes", len(p.Data()))
				}
				if eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); eth.EthernetType != 0x88b5 {
					t.Errorf("fields: %v", p)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := Build(tc.spec)
			p := Decode(b)
			if el := p.ErrorLayer(); el != nil && !tc.decodeError {
				t.Fatalf("decode error: %v\n%x", el.Error(), b)
			}
			if got := layerTypes(p); got != tc.layers {
				t.Errorf("layers %s, want %s", got, tc.layers)
			}
			if err := VerifyChecksums(b); err != nil {
				t.Errorf("VerifyChecksums: %v\n%x", err, b)
			}
			// FixChecksums must be a no-op on correct frames.
			fixed := append([]byte(nil), b...)
			if err := FixChecksums(fixed); err != nil || !bytes.Equal(fixed, b) {
				t.Errorf("FixChecksums changed a correct frame (%v)\n%x\n%x", err, b, fixed)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
			checksumSensitivity(t, b)
		})
	}
}

// checksumSensitivity flips every byte after the Ethernet header that a
// checksum covers and expects VerifyChecksums to notice, and FixChecksums to
// make the frame valid again.
func checksumSensitivity(t *testing.T, b []byte) {
	off, et, _ := l3Offset(b)
	var end int
	switch et {
	case 0x0800:
		if b[off+9] != 6 && b[off+9] != 17 && b[off+9] != 1 {
			end = off + int(b[off]&0xf)*4 // only the header is covered
		} else {
			end = off + int(binary.BigEndian.Uint16(b[off+2:]))
		}
	case 0x86dd:
		if nh := b[off+6]; nh != 6 && nh != 17 && nh != 58 {
			return
		}
		end = off + 40 + int(binary.BigEndian.Uint16(b[off+4:]))
		off += 8 // the addresses are in the pseudo header, the rest is not covered
	default:
		return
	}
	for i := off; i < end; i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 0x01
		if et == 0x0800 && i >= off+2 && i < off+4 || et == 0x0800 && i == off {
			continue // length/IHL changes are structural errors, checked elsewhere
		}
		if VerifyChecksums(c) == nil {
			t.Errorf("flipping byte %d not detected", i)
			continue
		}
		if err := FixChecksums(c); err != nil || VerifyChecksums(c) != nil {
			t.Errorf("FixChecksums after flipping byte %d: %v", i, err)
		}
	}
}

// TestVerifyChecksumsKnownVectors checks the verifier against checksums
// computed by neither this package nor gopacket: the classic IPv4 header
// example (checksum 0xb861) and frames captured with tcpdump on a veth with
// tx offload off, sent by the Linux stack (ping, nc -u, nc).
func TestVerifyChecksumsKnownVectors(t *testing.T) {
	vectors := map[string]string{
		// Protocol 17 with a zero UDP checksum: only the header is verified.
		"ipv4-header-example": "020000000002020000000001" + "0800" +
			"450000730000400040 11b861c0a80001c0a800c7" + strings.Repeat("00", 0x73-20),
		"icmp-echo-request": "0200000000020200000000010800" +
			"4500002405e74000400120f00a0000010a000002" + "08000c8d26ab0001616263640000 0000",
		"icmp-echo-reply": "0200000000010200000000020800" +
			"45000024ae4400004001b8920a0000020a000001" + "0000148d26ab0001616263640000 0000",
		"udp": "0200000000020200000000010800" +
			"4500001f65c140004011c10a0a0000010a000002" + "da7514e9000b8a0d68690a",
		"tcp-syn-options": "0200000000020200000000010800" +
			"4500003c24ae40004006020c0a0000010a000002" +
			"81360051cc8046c500000000a002faf0bd38000002040 5b40402080a8c7e5a85000000000103030a",
		"tcp-rst-ack": "0200000000010200000000020800" +
			"450000280000400040 0626ce0a0000020a000001" + "00518136000000 00cc8046c650140000 07000000",
	}
	for name, h := range vectors {
		frame, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := VerifyChecksums(frame); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		// Corrupt the last byte: the header checksum (example) or the L4
		// checksum (captures) must catch it.
		at := len(frame) - 1
		if name == "ipv4-header-example" {
			at = 14 + 11
		}
		frame[at] ^= 1
		if VerifyChecksums(frame) == nil {
			t.Errorf("%s: corruption not detected", name)
		}
		if err := FixChecksums(frame); err != nil || VerifyChecksums(frame) != nil {
			t.Errorf("%s: FixChecksums: %v", name, err)
		}
	}
}

func TestBuildPanics(t *testing.T) {
	for name, spec := range map[string]PacketSpec{
		"unknown proto":  {Proto: "sctp"},
		"unknown flag":   {Proto: "tcp", TCPFlags: "SX"},
		"vlan range":     {Proto: "udp", VLAN: 4096},
		"mixed families": {Proto: "udp", SrcIP: ip1, DstIP: ip62},
		"arp over v6":    {Proto: "arp", SrcIP: ip61},
		"options length": {Proto: "udp", IPOptions: []byte{1, 1, 1}},
		"options on v6":  {Proto: "udp", SrcIP: ip61, IPOptions: []byte{1, 1, 1, 0}},
	} {
		t.Run(strings.ReplaceAll(name, " ", "-"), func(t *testing.T) {
			defer func() {
				if p := recover(); p == nil || !strings.HasPrefix(p.(string), "testenv.Build: ") {
					t.Errorf("panic %v", p)
				}
			}()
			Build(spec)
		})
	}
}

func TestTruncate(t *testing.T) {
	b := []byte{1, 2, 3, 4}
	if got := Truncate(b, 2); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("Truncate(b, 2) = %v", got)
	}
	if got := Truncate(b, 10); !bytes.Equal(got, b) {
		t.Errorf("Truncate(b, 10) = %v", got)
	}
	if got := Truncate(b, -1); len(got) != 0 {
		t.Errorf("Truncate(b, -1) = %v", got)
	}
	got := Truncate(b, 3)
	got[0] = 9
	if b[0] != 1 {
		t.Error("Truncate does not copy")
	}
}

func TestMalformedFrames(t *testing.T) {
	m := MalformedFrames()
	be16 := binary.BigEndian.Uint16
	const ip = 14 // IPv4 header offset in the untagged frames
	checks := map[string]func(b []byte) bool{
		MalEthTruncated:      func(b []byte) bool { return len(b) == 10 },
		MalVLANTruncated:     func(b []byte) bool { return len(b) == 16 && be16(b[12:]) == 0x8100 && be16(b[14:])&0xfff == 100 },
		MalIPv4Short:         func(b []byte) bool { return len(b) == ip+10 && be16(b[12:]) == 0x0800 },
		MalIPv4IHLLessThan5:  func(b []byte) bool { return b[ip] == 0x44 && ipHdrOK(b[ip:ip+20]) },
		MalIPv4IHLPastEnd:    func(b []byte) bool { return b[ip] == 0x4f && len(b) < ip+60 && ipHdrOK(b[ip:ip+20]) },
		MalIPv4TotLenPastEnd: func(b []byte) bool { return be16(b[ip+2:]) == 1500 && len(b) < ip+1500 && ipHdrOK(b[ip:ip+20]) },
		MalIPv4TotLenLessIHL: func(b []byte) bool { return be16(b[ip+2:]) == 10 && ipHdrOK(b[ip:ip+20]) },
		MalIPv4BadVersion:    func(b []byte) bool { return b[ip]>>4 == 6 && be16(b[12:]) == 0x0800 && ipHdrOK(b[ip:ip+20]) },
		MalIPv4BadChecksum:   func(b []byte) bool { return b[ip] == 0x45 && !ipHdrOK(b[ip:ip+20]) },
		MalTCPDataOffLess5:   func(b []byte) bool { return b[ip+9] == 6 && b[ip+20+12]>>4 == 4 && VerifyChecksums(b) == nil },
		MalTCPDataOffPastEnd: func(b []byte) bool {
			return b[ip+9] == 6 && b[ip+20+12]>>4 == 15 && int(be16(b[ip+2:])) == 40 && len(b) == ip+40 && VerifyChecksums(b) == nil
		},
		MalTCPTruncated: func(b []byte) bool {
			return b[ip+9] == 6 && be16(b[ip+2:]) == 30 && len(b) == ip+30 && ipHdrOK(b[ip:ip+20])
		},
		MalUDPTruncated:  func(b []byte) bool { return b[ip+9] == 17 && be16(b[ip+2:]) == 24 && len(b) == ip+24 },
		MalUDPLenPastEnd: func(b []byte) bool { return b[ip+9] == 17 && be16(b[ip+24:]) == 200 && be16(b[ip+2:]) == 32 },
		MalICMPTruncated: func(b []byte) bool { return b[ip+9] == 1 && be16(b[ip+2:]) == 22 && len(b) == ip+22 },
		MalARPTruncated:  func(b []byte) bool { return be16(b[12:]) == 0x0806 && len(b) == ip+10 },
		MalIPv4FragMF: func(b []byte) bool {
			return be16(b[ip+6:]) == 0x2000 && b[ip+9] == 6 && VerifyChecksums(b) == nil
		},
		MalIPv4FragOffset: func(b []byte) bool {
			return be16(b[ip+6:]) == 185 && b[ip+9] == 6 && VerifyChecksums(b) == nil
		},
		MalIPv4Options: func(b []byte) bool {
			return b[ip] == 0x46 && b[ip+20] == 0x94 && b[ip+24+13] == 0x02 && VerifyChecksums(b) == nil
		},
		MalIPv6Truncated: func(b []byte) bool { return be16(b[12:]) == 0x86dd && len(b) == ip+20 },
	}
	checksumOK := map[string]bool{
		MalTCPDataOffLess5: true, MalTCPDataOffPastEnd: true, MalUDPLenPastEnd: true,
		MalIPv4FragMF: true, MalIPv4FragOffset: true, MalIPv4Options: true,
		MalARPTruncated: true, // not IP: nothing to check
	}
	var names []string
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(m) != len(checks) {
		t.Errorf("MalformedFrames has %d frames %v, the test knows %d", len(m), names, len(checks))
	}
	for name, check := range checks {
		b, ok := m[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if !check(b) {
			t.Errorf("%s does not have its defect:\n%x", name, b)
		}
		Decode(b) // must not panic
		// Checksums are consistent where the frame allows computing them,
		// so VerifyChecksums only fails where the structure is broken.
		if err := VerifyChecksums(b); (err == nil) != checksumOK[name] {
			t.Errorf("%s: VerifyChecksums = %v", name, err)
		}
	}
	// Every call returns fresh frames.
	m[MalIPv4Options][0] ^= 0xff
	if MalformedFrames()[MalIPv4Options][0] == m[MalIPv4Options][0] {
		t.Error("MalformedFrames returns shared slices")
	}
}

func ipHdrOK(h []byte) bool { return fold(sum16(h, 0)) == 0xffff }
