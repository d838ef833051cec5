package loader

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ebpfovs/ebpfovs/ofctl"
)

// BuildPacket makes the frame a flow-like description names, as
// `ovs-appctl ofproto/trace` does: in_port=vnet1,tcp,nw_src=10.0.10.1,
// tp_dst=80,tcp_flags=syn. Fields it does not name are zero (the masks of
// masked fields are ignored). It returns the frame and the in_port.
func BuildPacket(desc *ofctl.Flow) ([]byte, uint32, error) {
	m := &desc.Match
	u := func(f ofctl.FieldID) uint64 {
		fm, ok := m.Get(f)
		if !ok {
			return 0
		}
		var v uint64
		for _, b := range fm.Value {
			v = v<<8 | uint64(b)
		}
		return v
	}
	ip := func(f ofctl.FieldID) net.IP {
		b := make([]byte, 4)
		binary.BigEndian.PutUint32(b, uint32(u(f)))
		return net.IP(b)
	}
	mac := func(f ofctl.FieldID) net.HardwareAddr {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, u(f))
		return net.HardwareAddr(b[2:])
	}
	if _, ok := m.Get(ofctl.FieldInPort); !ok {
		return nil, 0, fmt.Errorf("the packet needs an in_port")
	}
	inPort := uint32(u(ofctl.FieldInPort))
	dlType := layers.EthernetType(u(ofctl.FieldDlType))
	eth := &layers.Ethernet{SrcMAC: mac(ofctl.FieldDlSrc), DstMAC: mac(ofctl.FieldDlDst), EthernetType: dlType}
	stack := []gopacket.SerializableLayer{eth}
	if tci, ok := m.Get(ofctl.FieldVlanTCI); ok && tci.Value[0]&0x10 != 0 {
		v := binary.BigEndian.Uint16(tci.Value)
		eth.EthernetType = layers.EthernetTypeDot1Q
		stack = append(stack, &layers.Dot1Q{VLANIdentifier: v & 0x0fff, Priority: uint8(v >> 13), Type: dlType})
	}
	ip6 := func(f ofctl.FieldID) net.IP {
		fm, ok := m.Get(f)
		if !ok {
			return net.IPv6unspecified
		}
		return net.IP(append([]byte(nil), fm.Value...))
	}
	var l3 gopacket.NetworkLayer
	proto := layers.IPProtocol(u(ofctl.FieldNwProto))
	switch dlType {
	case layers.EthernetTypeIPv6:
		v6 := &layers.IPv6{Version: 6, TrafficClass: uint8(u(ofctl.FieldNwTos)) | uint8(u(ofctl.FieldNwEcn)),
			FlowLabel: uint32(u(ofctl.FieldIPv6Label)), HopLimit: uint8(u(ofctl.FieldNwTTL)), NextHeader: proto,
			SrcIP: ip6(ofctl.FieldIPv6Src), DstIP: ip6(ofctl.FieldIPv6Dst)}
		stack = append(stack, v6)
		l3 = v6
	case layers.EthernetTypeARP:
		stack = append(stack, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
			HwAddressSize: 6, ProtAddressSize: 4, Operation: uint16(u(ofctl.FieldArpOp)),
			SourceHwAddress: mac(ofctl.FieldArpSha), SourceProtAddress: ip(ofctl.FieldArpSpa),
			DstHwAddress: mac(ofctl.FieldArpTha), DstProtAddress: ip(ofctl.FieldArpTpa)})
	case layers.EthernetTypeIPv4:
		tos := uint8(u(ofctl.FieldNwTos)) | uint8(u(ofctl.FieldNwEcn))
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TOS: tos, TTL: uint8(u(ofctl.FieldNwTTL)), Protocol: proto,
			SrcIP: ip(ofctl.FieldNwSrc), DstIP: ip(ofctl.FieldNwDst)}
		stack = append(stack, ip4)
		l3 = ip4
	}
	if l3 != nil {
		switch proto {
		case layers.IPProtocolTCP:
			flags := u(ofctl.FieldTCPFlags)
			tcp := &layers.TCP{SrcPort: layers.TCPPort(u(ofctl.FieldTpSrc)), DstPort: layers.TCPPort(u(ofctl.FieldTpDst)),
				FIN: flags&0x01 != 0, SYN: flags&0x02 != 0, RST: flags&0x04 != 0, PSH: flags&0x08 != 0,
				ACK: flags&0x10 != 0, URG: flags&0x20 != 0, ECE: flags&0x40 != 0, CWR: flags&0x80 != 0, NS: flags&0x100 != 0,
				Window: 65535}
			tcp.SetNetworkLayerForChecksum(l3)
			stack = append(stack, tcp)
		case layers.IPProtocolUDP:
			udp := &layers.UDP{SrcPort: layers.UDPPort(u(ofctl.FieldTpSrc)), DstPort: layers.UDPPort(u(ofctl.FieldTpDst))}
			udp.SetNetworkLayerForChecksum(l3)
			stack = append(stack, udp)
		case layers.IPProtocolICMPv4:
			stack = append(stack, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(uint8(u(ofctl.FieldIcmpType)), uint8(u(ofctl.FieldIcmpCode)))})
		case layers.IPProtocolICMPv6:
			icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(uint8(u(ofctl.FieldIcmpType)), uint8(u(ofctl.FieldIcmpCode)))}
			icmp.SetNetworkLayerForChecksum(l3)
			// gopacket's ICMPv6 is the first 4 bytes of the header;
			// the second word (an echo's identifier and sequence, zero
			// here) is the ICMPv4 layer's own, and the datapath, as
			// OVS, reads an ICMP header of 8 bytes.
			stack = append(stack, icmp, gopacket.Payload(make([]byte, 4)))
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, stack...); err != nil {
		return nil, 0, fmt.Errorf("build packet: %w", err)
	}
	return buf.Bytes(), inPort, nil
}
