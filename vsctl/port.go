// Package vsctl is ovs-vsctl's language for ports: the settings of
// add-port and set-port (Port and Interface columns: type, ofport_request,
// tag, trunks, vlan_mode, options), parsed once into a typed Port,
// validated as a whole, and printed back. Pure Go: no kernel.
package vsctl

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Type is an Interface's type.
type Type string

// Interface types, as ovs-vsctl names them.
const (
	System   Type = "system"   // a device that exists (tap, veth); "" means this too
	Internal Type = "internal" // a device the bridge creates for the host or a namespace
	Patch    Type = "patch"    // one end of a pair joining two bridges (options:peer)
	VXLAN    Type = "vxlan"
	Geneve   Type = "geneve"
	GRE      Type = "gre"
)

var types = []Type{System, Internal, Patch, VXLAN, Geneve, GRE}

// Tunnel reports whether t is a tunnel type.
func (t Type) Tunnel() bool { return t == VXLAN || t == Geneve || t == GRE }

// VLANMode is a Port's vlan_mode.
type VLANMode string

// VLAN modes; "" is unset: access with a tag, trunk without (OVS's default).
const (
	Trunk          VLANMode = "trunk"
	Access         VLANMode = "access"
	NativeTagged   VLANMode = "native-tagged"
	NativeUntagged VLANMode = "native-untagged"
)

var modes = []VLANMode{Trunk, Access, NativeTagged, NativeUntagged}

// MaxVID is the highest VLAN ID.
const MaxVID = 4095

// Port is one port's settings.
type Port struct {
	Name     string
	Type     Type   // System when not given
	OFPort   uint32 // ofport_request; 0: the lowest free number
	Tag      int    // -1: no tag
	Trunks   []uint16
	VLANMode VLANMode // "": implied (Effective)
	Options  map[string]string
}

// New returns a system port named name with nothing set.
func New(name string) Port {
	return Port{Name: name, Type: System, Tag: -1}
}

// ParsePort parses add-port's settings for port name: KEY=VALUE words
// (type, ofport or ofport_request, tag, trunks, vlan_mode, options:KEY)
// on a new port, validated as a whole.
func ParsePort(name string, settings []string, maxPort uint32) (Port, error) {
	p := New(name)
	for _, s := range settings {
		if err := p.Set(s, maxPort); err != nil {
			return Port{}, err
		}
	}
	if err := p.Validate(); err != nil {
		return Port{}, err
	}
	return p, nil
}

// Set applies one KEY=VALUE setting; VALUE "[]" clears a column, as
// ovs-vsctl's "clear". It does not validate the whole port (Validate).
func (p *Port) Set(s string, maxPort uint32) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("%q: expected KEY=VALUE (type, ofport, tag, trunks, vlan_mode, options:KEY)", s)
	}
	clear := val == "[]"
	if opt, isOpt := strings.CutPrefix(key, "options:"); isOpt {
		if opt == "" {
			return fmt.Errorf("%q: options needs a key (options:peer=PORT, ...)", s)
		}
		if p.Options == nil {
			p.Options = map[string]string{}
		}
		if clear || val == "" {
			delete(p.Options, opt)
		} else {
			p.Options[opt] = val
		}
		return nil
	}
	switch key {
	case "type":
		if clear || val == "" {
			p.Type = System
			return nil
		}
		for _, t := range types {
			if Type(val) == t {
				p.Type = t
				return nil
			}
		}
		return fmt.Errorf("type=%s: unknown interface type (system, internal, patch, vxlan, geneve, gre)", val)
	case "ofport", "ofport_request":
		if clear {
			p.OFPort = 0
			return nil
		}
		n, err := strconv.ParseUint(val, 10, 32)
		if err != nil || n < 1 || n > uint64(maxPort) {
			return fmt.Errorf("%s=%s: port number must be 1..%d", key, val, maxPort)
		}
		p.OFPort = uint32(n)
	case "tag":
		if clear {
			p.Tag = -1
			return nil
		}
		n, err := strconv.ParseUint(val, 10, 16)
		if err != nil || n > MaxVID {
			return fmt.Errorf("tag=%s: a VLAN tag must be 0..%d", val, MaxVID)
		}
		p.Tag = int(n)
	case "trunks":
		if clear {
			p.Trunks = nil
			return nil
		}
		t, err := parseTrunks(val)
		if err != nil {
			return err
		}
		p.Trunks = t
	case "vlan_mode":
		if clear {
			p.VLANMode = ""
			return nil
		}
		for _, m := range modes {
			if VLANMode(val) == m {
				p.VLANMode = m
				return nil
			}
		}
		return fmt.Errorf("vlan_mode=%s: unknown VLAN mode (trunk, access, native-tagged, native-untagged)", val)
	default:
		return fmt.Errorf("%s: unknown port setting (type, ofport, tag, trunks, vlan_mode, options:KEY)", key)
	}
	return nil
}

// parseTrunks parses "10,20,30" or "[10,20,30]": sorted, without repeats.
func parseTrunks(val string) ([]uint16, error) {
	v := strings.TrimSuffix(strings.TrimPrefix(val, "["), "]")
	if v == "" {
		return nil, fmt.Errorf("trunks=%s: no VLAN given (trunks=[] clears)", val)
	}
	seen := map[uint16]bool{}
	var out []uint16
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 16)
		if err != nil || n > MaxVID {
			return nil, fmt.Errorf("trunks=%s: %q is not a VLAN (0..%d)", val, f, MaxVID)
		}
		if !seen[uint16(n)] {
			seen[uint16(n)] = true
			out = append(out, uint16(n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Effective is the VLAN mode the port works in: its vlan_mode, or access
// with a tag and trunk without, as OVS implies it.
func (p Port) Effective() VLANMode {
	switch {
	case p.VLANMode != "":
		return p.VLANMode
	case p.Tag >= 0:
		return Access
	}
	return Trunk
}

// options each type takes, and which of them it needs.
var typeOptions = map[Type]struct{ allowed, required []string }{
	System:   {},
	Internal: {},
	Patch:    {allowed: []string{"peer"}, required: []string{"peer"}},
	VXLAN:    {allowed: []string{"remote_ip", "local_ip", "key", "in_key", "out_key", "dst_port", "tos", "ttl", "df_default", "csum"}, required: []string{"remote_ip"}},
	Geneve:   {allowed: []string{"remote_ip", "local_ip", "key", "in_key", "out_key", "dst_port", "tos", "ttl", "df_default", "csum"}, required: []string{"remote_ip"}},
	GRE:      {allowed: []string{"remote_ip", "local_ip", "key", "in_key", "out_key", "tos", "ttl", "df_default", "csum"}, required: []string{"remote_ip"}},
}

// Validate checks the port as a whole: settings that contradict each
// other, options its type does not take or lacks. Where OVS would accept
// and ignore a setting (trunks on an access port), ebpfovs refuses it: it
// would not do what it says.
func (p Port) Validate() error {
	mode := p.Effective()
	switch {
	case mode == Access && len(p.Trunks) > 0:
		return fmt.Errorf("%s: trunks on an access port (a port with a tag and no vlan_mode is an access port: set vlan_mode=native-untagged or native-tagged to trunk as well)", p.Name)
	case mode == Trunk && p.Tag >= 0:
		return fmt.Errorf("%s: tag=%d on a trunk port (vlan_mode=trunk has no native VLAN: use native-untagged or native-tagged)", p.Name, p.Tag)
	}
	spec, ok := typeOptions[p.Type]
	if !ok {
		return fmt.Errorf("%s: unknown interface type %q", p.Name, p.Type)
	}
	for k := range p.Options {
		if !contains(spec.allowed, k) {
			if len(spec.allowed) == 0 {
				return fmt.Errorf("%s: options:%s: a %s port takes no options", p.Name, k, p.Type)
			}
			return fmt.Errorf("%s: options:%s: not an option of a %s port (%s)", p.Name, k, p.Type, strings.Join(spec.allowed, ", "))
		}
	}
	for _, k := range spec.required {
		if p.Options[k] == "" {
			return fmt.Errorf("%s: a %s port needs options:%s", p.Name, p.Type, k)
		}
	}
	if p.Type == Patch {
		peer := p.Options["peer"]
		if peer == p.Name {
			return fmt.Errorf("%s: options:peer=%s: a patch port cannot be its own peer", p.Name, p.Name)
		}
		if len(peer) > 15 || strings.ContainsAny(peer, "/ \t=") {
			return fmt.Errorf("%s: options:peer=%s: not a port name (up to 15 bytes, no '/', '=' or spaces)", p.Name, peer)
		}
	}
	for _, k := range []string{"remote_ip", "local_ip"} {
		if v, ok := p.Options[k]; ok && v != "flow" {
			if _, err := netip.ParseAddr(v); err != nil {
				return fmt.Errorf("%s: options:%s=%s: not an IP address or \"flow\"", p.Name, k, v)
			}
		}
	}
	for _, k := range []string{"key", "in_key", "out_key"} {
		if v, ok := p.Options[k]; ok && v != "flow" {
			if _, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), base(v), 64); err != nil {
				return fmt.Errorf("%s: options:%s=%s: not a tunnel key or \"flow\"", p.Name, k, v)
			}
		}
	}
	if v, ok := p.Options["dst_port"]; ok {
		if n, err := strconv.ParseUint(v, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("%s: options:dst_port=%s: not a UDP port", p.Name, v)
		}
	}
	return nil
}

func base(v string) int {
	if strings.HasPrefix(v, "0x") {
		return 16
	}
	return 10
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Settings prints the port's settings as add-port takes them, in a fixed
// order, leaving out what is unset: "tag=100 vlan_mode=native-untagged
// trunks=10,20".
func (p Port) Settings() string {
	var w []string
	if p.Type != System && p.Type != "" {
		w = append(w, "type="+string(p.Type))
	}
	if p.Tag >= 0 {
		w = append(w, fmt.Sprintf("tag=%d", p.Tag))
	}
	if p.VLANMode != "" {
		w = append(w, "vlan_mode="+string(p.VLANMode))
	}
	if len(p.Trunks) > 0 {
		t := FormatTrunks(p.Trunks)
		w = append(w, "trunks="+strings.ReplaceAll(t[1:len(t)-1], " ", ""))
	}
	keys := make([]string, 0, len(p.Options))
	for k := range p.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w = append(w, "options:"+k+"="+p.Options[k])
	}
	return strings.Join(w, " ")
}

// FormatTrunks prints trunks as ovs-vsctl does: [10, 20, 30].
func FormatTrunks(t []uint16) string {
	s := make([]string, len(t))
	for i, v := range t {
		s[i] = strconv.Itoa(int(v))
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// VLANBitmap is one bit per VLAN ID (VID v at word v/64, bit v%64), as
// the datapath's port_trunks holds them.
type VLANBitmap [64]uint64

// TrunksBitmap returns the port's trunks as a bitmap.
func (p Port) TrunksBitmap() VLANBitmap {
	var b VLANBitmap
	for _, v := range p.Trunks {
		b[v/64] |= 1 << (v % 64)
	}
	return b
}

// TrunksFromBitmap lists the VLANs set in b.
func TrunksFromBitmap(b VLANBitmap) []uint16 {
	var out []uint16
	for v := 0; v <= MaxVID; v++ {
		if b[v/64]&(1<<(v%64)) != 0 {
			out = append(out, uint16(v))
		}
	}
	return out
}
