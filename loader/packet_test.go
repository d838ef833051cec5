package loader

import (
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestBuildPacketICMP: the ICMP and ICMPv6 headers trace builds are whole
// (8 bytes: type, code, checksum, identifier, sequence; the datapath, as
// OVS, parses no shorter one) with good checksums.
func TestBuildPacketICMP(t *testing.T) {
	for _, desc := range []string{
		"in_port=1,icmp,nw_src=10.0.10.1,nw_dst=10.0.10.2,icmp_type=8",
		"in_port=1,icmp6,ipv6_src=fd00:10::1,ipv6_dst=fd00:10::2,icmpv6_type=128",
	} {
		f, err := ofctl.ParseMatch(desc, nil)
		if err != nil {
			t.Fatal(err)
		}
		frame, _, err := BuildPacket(f)
		if err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		if err := testenv.VerifyChecksums(frame); err != nil {
			t.Errorf("%s: %v", desc, err)
		}
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
		var icmpLen int
		switch l := p.NetworkLayer().(type) {
		case *layers.IPv4:
			icmpLen = int(l.Length) - 20
		case *layers.IPv6:
			icmpLen = int(l.Length)
		}
		if icmpLen != 8 {
			t.Errorf("%s: %d bytes of ICMP, want 8", desc, icmpLen)
		}
		if p.Layer(layers.LayerTypeICMPv4) == nil && p.Layer(layers.LayerTypeICMPv6Echo) == nil {
			t.Errorf("%s: no ICMP echo:\n%s", desc, p.Dump())
		}
	}
}
