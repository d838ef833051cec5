package vsctl

import (
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		settings string
		mode     VLANMode
	}{
		{nil, "", Trunk},
		{[]string{"tag=100"}, "tag=100", Access},
		{[]string{"tag=0"}, "tag=0", Access},
		{[]string{"trunks=30,10,[20]"}, "", Trunk}, // rejected below: brackets only around the list
		{[]string{"trunks=[30,10,20,10]"}, "trunks=10,20,30", Trunk},
		{[]string{"trunks=10", "vlan_mode=trunk"}, "vlan_mode=trunk trunks=10", Trunk},
		{[]string{"tag=5", "vlan_mode=native-untagged", "trunks=7,8"}, "tag=5 vlan_mode=native-untagged trunks=7,8", NativeUntagged},
		{[]string{"vlan_mode=native-tagged"}, "vlan_mode=native-tagged", NativeTagged},
		{[]string{"vlan_mode=access"}, "vlan_mode=access", Access},
		{[]string{"type=internal", "ofport=7"}, "type=internal", Trunk},
		{[]string{"type=patch", "options:peer=patch-tun"}, "type=patch options:peer=patch-tun", Trunk},
		{[]string{"type=vxlan", "options:remote_ip=flow", "options:key=flow", "options:dst_port=4789"}, "type=vxlan options:dst_port=4789 options:key=flow options:remote_ip=flow", Trunk},
		{[]string{"type=gre", "options:remote_ip=192.0.2.1", "options:key=0x10"}, "type=gre options:key=0x10 options:remote_ip=192.0.2.1", Trunk},
		{[]string{"tag=100", "tag=[]"}, "", Trunk},
	} {
		p, err := ParsePort("p1", tc.args, 255)
		if tc.args != nil && tc.args[0] == "trunks=30,10,[20]" {
			if err == nil {
				t.Errorf("%q: accepted", tc.args)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got := p.Settings(); got != tc.settings {
			t.Errorf("%q: settings %q, want %q", tc.args, got, tc.settings)
		}
		if got := p.Effective(); got != tc.mode {
			t.Errorf("%q: mode %s, want %s", tc.args, got, tc.mode)
		}
		// Settings round-trip.
		again, err := ParsePort("p1", strings.Fields(p.Settings()), 255)
		if err != nil || again.Settings() != p.Settings() {
			t.Errorf("%q: round trip %q: %v", tc.args, again.Settings(), err)
		}
	}
}

// TestParsePortErrors: one line naming what is wrong.
func TestParsePortErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tag=4096"}, "tag=4096: a VLAN tag must be 0..4095"},
		{[]string{"tag=-1"}, "tag=-1: a VLAN tag must be 0..4095"},
		{[]string{"tag=100", "trunks=10"}, "p1: trunks on an access port"},
		{[]string{"vlan_mode=access", "trunks=10"}, "p1: trunks on an access port"},
		{[]string{"vlan_mode=trunk", "tag=3"}, "p1: tag=3 on a trunk port"},
		{[]string{"trunks=10,4096"}, `"4096" is not a VLAN`},
		{[]string{"trunks="}, "trunks=: no VLAN given"},
		{[]string{"vlan_mode=hybrid"}, "vlan_mode=hybrid: unknown VLAN mode"},
		{[]string{"type=dummy"}, "type=dummy: unknown interface type"},
		{[]string{"ofport=0"}, "ofport=0: port number must be 1..255"},
		{[]string{"ofport=256"}, "ofport=256: port number must be 1..255"},
		{[]string{"color=red"}, "color: unknown port setting"},
		{[]string{"tag"}, `"tag": expected KEY=VALUE`},
		{[]string{"type=patch"}, "p1: a patch port needs options:peer"},
		{[]string{"type=patch", "options:peer=p1"}, "cannot be its own peer"},
		{[]string{"options:peer=x"}, "options:peer: a system port takes no options"},
		{[]string{"type=vxlan", "options:remote_ip=1.2.3"}, `options:remote_ip=1.2.3: not an IP address or "flow"`},
		{[]string{"type=vxlan", "options:remote_ip=flow", "options:key=abc"}, "options:key=abc: not a tunnel key"},
		{[]string{"type=vxlan", "options:remote_ip=flow", "options:dst_port=0"}, "options:dst_port=0: not a UDP port"},
		{[]string{"type=vxlan", "options:remote_ip=flow", "options:peer=x"}, "options:peer: not an option of a vxlan port"},
	} {
		_, err := ParsePort("p1", tc.args, 255)
		if err == nil {
			t.Errorf("%q: accepted", tc.args)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %q, want one line with %q", tc.args, err, tc.want)
		}
	}
}

func TestTrunksBitmap(t *testing.T) {
	p, err := ParsePort("p", []string{"trunks=0,63,64,4095"}, 255)
	if err != nil {
		t.Fatal(err)
	}
	b := p.TrunksBitmap()
	if b[0] != 1|1<<63 || b[1] != 1 || b[63] != 1<<63 {
		t.Fatalf("bitmap %x %x %x", b[0], b[1], b[63])
	}
	if got := FormatTrunks(TrunksFromBitmap(b)); got != "[0, 63, 64, 4095]" {
		t.Fatalf("back: %s", got)
	}
}
