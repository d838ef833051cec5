package loader

import (
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// A port's settings (vsctl.Port) live in the datapath's own tables, which
// read them: struct port's type, tag and vlan_mode, with PORT_F_TAG and
// PORT_F_VLAN_MODE telling a set value from an implied one (OVS prints
// them apart), and the trunks as configured in port_trunks
// (PORT_F_TRUNKS). docs/ports.md.

const (
	flagTrunks    = uint32(bpf.DatapathPortFlagPORT_F_TRUNKS)
	flagTag       = uint32(bpf.DatapathPortFlagPORT_F_TAG)
	flagVLANMode  = uint32(bpf.DatapathPortFlagPORT_F_VLAN_MODE)
	cfgVLANPorts  = uint32(bpf.DatapathCfgFlagCFG_VLAN_PORTS)
	cfgPatchPorts = uint32(bpf.DatapathCfgFlagCFG_PATCH_PORTS)
)

var vlanModes = map[vsctl.VLANMode]bpf.DatapathPortVlanMode{
	vsctl.Trunk:          bpf.DatapathPortVlanModeVLAN_MODE_TRUNK,
	vsctl.Access:         bpf.DatapathPortVlanModeVLAN_MODE_ACCESS,
	vsctl.NativeTagged:   bpf.DatapathPortVlanModeVLAN_MODE_NATIVE_TAGGED,
	vsctl.NativeUntagged: bpf.DatapathPortVlanModeVLAN_MODE_NATIVE_UNTAGGED,
}

var portTypes = map[vsctl.Type]bpf.DatapathPortType{
	vsctl.System:   bpf.DatapathPortTypePORT_SYSTEM,
	vsctl.Internal: bpf.DatapathPortTypePORT_INTERNAL,
	vsctl.Patch:    bpf.DatapathPortTypePORT_PATCH,
	vsctl.VXLAN:    bpf.DatapathPortTypePORT_TUNNEL,
	vsctl.Geneve:   bpf.DatapathPortTypePORT_TUNNEL,
	vsctl.GRE:      bpf.DatapathPortTypePORT_TUNNEL,
}

// supportedType refuses the interface types this version cannot make yet.
func supportedType(c vsctl.Port) error {
	if _, ok := portTypes[c.Type]; !ok {
		return inputErrorf("%s: type=%s: not supported by this version of ebpfovs (system, internal, patch, vxlan, geneve and gre ports)", c.Name, c.Type)
	}
	return nil
}

// setPortConfig writes c's type and VLAN settings into p.
func setPortConfig(p *bpf.DatapathPort, c vsctl.Port) {
	p.Type = uint8(portTypes[c.Type])
	p.VlanMode = uint8(vlanModes[c.Effective()])
	p.Flags &^= flagTrunks | flagTag | flagVLANMode
	p.Tag = 0
	if c.Tag >= 0 {
		p.Tag = uint16(c.Tag)
		p.Flags |= flagTag
	}
	if c.VLANMode != "" {
		p.Flags |= flagVLANMode
	}
	if len(c.Trunks) > 0 {
		p.Flags |= flagTrunks
	}
}

// portConfig reads port ofport's settings back from p and port_trunks.
func (b *Bridge) portConfig(ofport uint32, p *bpf.DatapathPort) vsctl.Port {
	c := vsctl.New(portName(p))
	for t, v := range portTypes {
		if uint8(v) == p.Type && !t.Tunnel() {
			c.Type = t
		}
	}
	if p.Type == typeTunnel {
		c.Type = kindOfPort(p).typ
	}
	if p.Flags&flagTag != 0 {
		c.Tag = int(p.Tag)
	}
	if p.Flags&flagVLANMode != 0 {
		for m, v := range vlanModes {
			if uint8(v) == p.VlanMode {
				c.VLANMode = m
			}
		}
	}
	switch p.Type {
	case typePatch:
		c.Options = map[string]string{"peer": cString(p.Peer[:])}
	case typeTunnel:
		c.Options = tunnelOptions(p)
	}
	if p.Flags&flagTrunks != 0 {
		var bm bpf.DatapathVlanBitmap
		if b.maps.PortTrunks.Lookup(ofport, &bm) == nil {
			c.Trunks = vsctl.TrunksFromBitmap(vsctl.VLANBitmap(bm.W))
		}
	}
	return c
}

// writeTrunks writes port ofport's trunks, before the port entry that
// says to read them.
func (b *Bridge) writeTrunks(ofport uint32, c vsctl.Port) error {
	bm := bpf.DatapathVlanBitmap{W: c.TrunksBitmap()}
	if err := b.maps.PortTrunks.Put(ofport, &bm); err != nil {
		return fmt.Errorf("%s: write port_trunks: %w", c.Name, err)
	}
	b.step(fmt.Sprintf("port_trunks %d", ofport))
	return nil
}

// writePort writes a patch or tunnel port to the bridge's
// tables, the last steps of adding it: its trunks, its entry (which says
// to read them), zero counters.
func (b *Bridge) writePort(ofport uint32, cfg vsctl.Port, port *bpf.DatapathPort) error {
	if err := b.writeTrunks(ofport, cfg); err != nil {
		return err
	}
	if err := b.maps.Ports.Put(ofport, port); err != nil {
		return fmt.Errorf("%s: write port table: %w", cfg.Name, err)
	}
	b.step(fmt.Sprintf("ports %d", ofport))
	b.zeroPortStats(ofport)
	return nil
}

// hasVLANSettings reports whether NORMAL must tag and untag for p: any
// port that is not a trunk of every VLAN (CFG_VLAN_PORTS).
func hasVLANSettings(p *bpf.DatapathPort) bool {
	return p.VlanMode != uint8(bpf.DatapathPortVlanModeVLAN_MODE_TRUNK) || p.Flags&flagTrunks != 0
}

// SetPort changes settings of port name (vsctl's KEY=VALUE; VALUE [] clears
// one), validated on the port as a whole. The port's type and number
// cannot change: del-port, then add-port. The port's learned MAC
// addresses are forgotten when its VLANs change, as OVS does.
func SetPort(opts Options, name string, settings []string) (vsctl.Port, error) {
	b, err := Open(opts)
	if err != nil {
		return vsctl.Port{}, err
	}
	defer b.Close()
	raw, err := b.rawPorts()
	if err != nil {
		return vsctl.Port{}, err
	}
	ofport, p, ok := findPort(raw, name)
	if !ok {
		return vsctl.Port{}, fmt.Errorf("%s: not a port of bridge %s", name, b.opts.Bridge)
	}
	old := b.portConfig(ofport, &p)
	c := old
	c.OFPort = ofport
	for _, s := range settings {
		if err := c.Set(s, MaxPort); err != nil {
			return vsctl.Port{}, &InputError{Msg: err.Error()}
		}
	}
	if err := c.Validate(); err != nil {
		return vsctl.Port{}, &InputError{Msg: err.Error()}
	}
	if c.Type != old.Type {
		return vsctl.Port{}, inputErrorf("%s: type cannot change from %s to %s (del-port, then add-port)", name, old.Type, c.Type)
	}
	if c.OFPort != ofport {
		return vsctl.Port{}, inputErrorf("%s: ofport cannot change from %d to %d (del-port, then add-port)", name, ofport, c.OFPort)
	}
	if err := b.writeTrunks(ofport, c); err != nil {
		return vsctl.Port{}, err
	}
	setPortConfig(&p, c)
	if err := b.maps.Ports.Put(ofport, &p); err != nil {
		return vsctl.Port{}, fmt.Errorf("%s: write port table: %w", name, err)
	}
	b.step(fmt.Sprintf("ports %d", ofport))
	if err := b.forgetMACs(ofport); err != nil {
		return vsctl.Port{}, err
	}
	if err := b.updateMaxPort(); err != nil {
		return vsctl.Port{}, err
	}
	return c, nil
}

func findPort(raw map[uint32]bpf.DatapathPort, name string) (uint32, bpf.DatapathPort, bool) {
	for n, p := range raw {
		if portName(&p) == name {
			return n, p, true
		}
	}
	return 0, bpf.DatapathPort{}, false
}

// forgetMACs removes the MAC addresses NORMAL learnt on port ofport.
func (b *Bridge) forgetMACs(ofport uint32) error {
	var k bpf.DatapathMacKey
	var e bpf.DatapathMacEntry
	var del []bpf.DatapathMacKey
	it := b.maps.Macs.Iterate()
	for it.Next(&k, &e) {
		if e.Port == ofport {
			del = append(del, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read the MAC table: %w", err)
	}
	for _, k := range del {
		if err := b.maps.Macs.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("forget MAC addresses of port %d: %w", ofport, err)
		}
	}
	return nil
}

// Internal ports: a veth pair. The end named as the port is the
// interface the host or a namespace uses; the bridge's end, named from a
// hash of the bridge's directory and the port's name, carries the
// datapath and an alias that marks it as this bridge's: only a device
// with that alias is ever deleted.

// internalDevice is the name of the bridge's end of internal port name.
func (b *Bridge) internalDevice(name string) string {
	h := fnv.New32a()
	h.Write([]byte(b.dir))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return fmt.Sprintf("ebo%08x", h.Sum32())
}

func (b *Bridge) internalAlias(name string) string {
	return "ebpfovs internal port " + name + " of " + b.dir
}

// createInternal creates internal port name's veth pair (both ends in
// the bridge's namespace, the bridge's end up) and returns the bridge's
// end. One that exists already with our alias is taken as it is (a
// killed add-port's).
func (b *Bridge) createInternal(name string) (netlink.Link, error) {
	dev := b.internalDevice(name)
	if l, err := netlink.LinkByName(dev); err == nil {
		if l.Attrs().Alias != b.internalAlias(name) {
			return nil, inputErrorf("%s: the device %s exists and is not this bridge's", name, dev)
		}
		return l, netlink.LinkSetUp(l)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		return nil, inputErrorf("%s: an interface of that name exists already (an internal port creates its own)", name)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: dev}, PeerName: name}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("%s: create the internal port's veth pair: %w", name, err)
	}
	b.step("veth " + dev)
	l, err := netlink.LinkByName(dev)
	if err == nil {
		err = netlink.LinkSetAlias(l, b.internalAlias(name))
	}
	if err == nil {
		b.step("alias " + dev)
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		b.deleteInternal(name, true)
		return nil, fmt.Errorf("%s: set up the internal port: %w", name, err)
	}
	return netlink.LinkByName(dev)
}

// deleteInternal deletes internal port name's veth pair, if its bridge
// end is there and carries our alias. The kernel sets no alias when it
// creates a device, so an add-port killed between the two leaves a pair
// without one: recovering, a veth of our name without an alias whose
// other end is name is taken as that.
func (b *Bridge) deleteInternal(name string, recovering bool) error {
	dev := b.internalDevice(name)
	l, err := netlink.LinkByName(dev)
	if err != nil {
		return nil
	}
	if a := l.Attrs().Alias; a != b.internalAlias(name) && !(recovering && a == "" && vethPeerName(l) == name) {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("%s: delete the internal port's veth pair: %w", name, err)
	}
	b.step("delete veth " + dev)
	return nil
}

// vethPeerName is the name of the other end of veth l, if it is in this
// namespace.
func vethPeerName(l netlink.Link) string {
	v, ok := l.(*netlink.Veth)
	if !ok {
		return ""
	}
	i, err := netlink.VethPeerIndex(v)
	if err != nil {
		return ""
	}
	p, err := netlink.LinkByIndex(i)
	if err != nil {
		return ""
	}
	return p.Attrs().Name
}
