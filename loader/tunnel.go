package loader

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// Tunnel ports, as OVS's flow-based ones: each VXLAN, Geneve or GRE port
// is a remote end (options:remote_ip, or "flow": the flow's tun_dst) of
// one kernel device in external (collect_md) mode that the bridge creates
// and owns, one per kind and UDP port (options:dst_port: 4789 for VXLAN,
// 6081 for Geneve; GRE has none) and shared by the bridge's ports of that
// kind on it, as OVS's vxlan_sys_4789. The device's ingress runs the
// bridge's tc_tunnel, which finds the port by the device and the remote
// end (tunnel_ports) and fills tun_id, tun_src and tun_dst; an output to a
// tunnel port sets the skb's tunnel key and redirects to the device, which
// encapsulates and routes. The device carries an alias naming the bridge,
// and goes with the bridge's last port on it.

const (
	typeTunnel     = uint8(bpf.DatapathPortTypePORT_TUNNEL)
	flagTunnel     = uint32(bpf.DatapathPortFlagPORT_F_TUNNEL)
	flagTunNoCsum  = uint32(bpf.DatapathPortFlagPORT_F_TUN_NOCSUM)
	cfgTunnelPorts = uint32(bpf.DatapathCfgFlagCFG_TUNNEL_PORTS)
	tunRemoteFlow  = uint32(bpf.DatapathTunnelFlagTUN_REMOTE_FLOW)
	tunKeyFlow     = uint32(bpf.DatapathTunnelFlagTUN_KEY_FLOW)
	tunLocalFlow   = uint32(bpf.DatapathTunnelFlagTUN_LOCAL_FLOW)
	// VXLANOverhead is what VXLAN over IPv4 adds to a frame: outer
	// Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
	VXLANOverhead = 50
)

// tunnelKind is what differs between the kinds of tunnel port.
type tunnelKind struct {
	typ      vsctl.Type
	kind     uint8  // port.tun_kind
	linkType string // the device's netlink kind
	dstPort  uint16 // the default options:dst_port; 0: not UDP
	keyBits  int    // options:key's width
	overhead int    // bytes added to a frame over IPv4 (with a key, no options)
	config   string // the kernel option that provides the device
}

var tunnelKinds = []tunnelKind{
	{vsctl.VXLAN, uint8(bpf.DatapathTunnelKindTUN_KIND_VXLAN), "vxlan", 4789, 24, VXLANOverhead, "CONFIG_VXLAN"},
	// Ethernet 14, IPv4 20, UDP 8, Geneve 8 (no options).
	{vsctl.Geneve, uint8(bpf.DatapathTunnelKindTUN_KIND_GENEVE), "geneve", 6081, 24, 50, "CONFIG_GENEVE"},
	// Ethernet 14, IPv4 20, GRE 4 and its key 4.
	{vsctl.GRE, uint8(bpf.DatapathTunnelKindTUN_KIND_GRE), "gretap", 0, 32, 42, "CONFIG_NET_IPGRE"},
}

func kindOfType(t vsctl.Type) tunnelKind {
	for _, k := range tunnelKinds {
		if k.typ == t {
			return k
		}
	}
	return tunnelKinds[0]
}

func kindOfPort(p *bpf.DatapathPort) tunnelKind {
	for _, k := range tunnelKinds {
		if k.kind == p.TunKind {
			return k
		}
	}
	return tunnelKinds[0]
}

// TunnelOverhead is what a tunnel port of type t adds to each frame
// (0 for other types).
func TunnelOverhead(t vsctl.Type) int {
	if !t.Tunnel() {
		return 0
	}
	return kindOfType(t).overhead
}

// link is a new flow-based device of this kind.
func (k tunnelKind) link(name string, dstPort uint16) netlink.Link {
	attrs := netlink.LinkAttrs{Name: name}
	switch k.typ {
	case vsctl.Geneve:
		return &netlink.Geneve{LinkAttrs: attrs, FlowBased: true, Dport: dstPort}
	case vsctl.GRE:
		// An IPv4 local address (any) makes it gretap, not ip6gretap
		// (netlink's Gretap.Type).
		return &netlink.Gretap{LinkAttrs: attrs, FlowBased: true, Local: net.IPv4zero}
	}
	return &netlink.Vxlan{LinkAttrs: attrs, FlowBased: true, Port: int(dstPort)}
}

// setTunnelConfig writes a tunnel port's options into p.
func setTunnelConfig(p *bpf.DatapathPort, c vsctl.Port) error {
	k := kindOfType(c.Type)
	p.Flags |= flagTunnel
	p.Flags &^= flagTunNoCsum
	if k.typ == vsctl.GRE {
		// OVS's gre default (csum=false); and a collect_md gretap
		// counts a GRE checksum it was not set up for as an error.
		p.Flags |= flagTunNoCsum
	}
	p.TunFlags = 0
	p.TunKind = k.kind
	p.DstPort = k.dstPort
	if v, ok := c.Options["dst_port"]; ok && k.dstPort != 0 {
		n, _ := strconv.ParseUint(v, 10, 16)
		p.DstPort = uint16(n)
	}
	addr := func(key string, flow uint32) (uint32, error) {
		v, ok := c.Options[key]
		switch {
		case !ok:
			return 0, nil
		case v == "flow":
			p.TunFlags |= flow
			return 0, nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil || !a.Is4() {
			return 0, inputErrorf("%s: options:%s=%s: only IPv4 tunnel ends are supported", c.Name, key, v)
		}
		b := a.As4()
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil // network order in memory
	}
	var err error
	if p.RemoteIp, err = addr("remote_ip", tunRemoteFlow); err != nil {
		return err
	}
	if p.LocalIp, err = addr("local_ip", tunLocalFlow); err != nil {
		return err
	}
	p.TunKey = 0
	switch v := c.Options["key"]; {
	case v == "flow":
		p.TunFlags |= tunKeyFlow
	case v != "":
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), map[bool]int{true: 16, false: 10}[strings.HasPrefix(v, "0x")], 64)
		if err != nil || n >= 1<<k.keyBits {
			what := "key"
			if k.dstPort != 0 {
				what = "key (VNI)"
			}
			return inputErrorf("%s: options:key=%s: a %s %s is 0..%d or flow", c.Name, v, k.typ, what, uint64(1)<<k.keyBits-1)
		}
		p.TunKey = n
	}
	for _, k := range []string{"in_key", "out_key", "tos", "ttl", "df_default", "csum"} {
		if _, ok := c.Options[k]; ok {
			return inputErrorf("%s: options:%s: not supported by this version of ebpfovs (remote_ip, local_ip, key, dst_port)", c.Name, k)
		}
	}
	return nil
}

// tunnelOptions reads a tunnel port's options back, as add-port took them.
func tunnelOptions(p *bpf.DatapathPort) map[string]string {
	o := map[string]string{}
	ip := func(v uint32) string {
		return netip.AddrFrom4([4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}).String()
	}
	switch {
	case p.TunFlags&tunRemoteFlow != 0:
		o["remote_ip"] = "flow"
	case p.RemoteIp != 0:
		o["remote_ip"] = ip(p.RemoteIp)
	}
	switch {
	case p.TunFlags&tunLocalFlow != 0:
		o["local_ip"] = "flow"
	case p.LocalIp != 0:
		o["local_ip"] = ip(p.LocalIp)
	}
	switch {
	case p.TunFlags&tunKeyFlow != 0:
		o["key"] = "flow"
	case p.TunKey != 0:
		o["key"] = strconv.FormatUint(p.TunKey, 10)
	}
	if k := kindOfPort(p); p.DstPort != k.dstPort {
		o["dst_port"] = strconv.Itoa(int(p.DstPort))
	}
	return o
}

// tunnelDevice names the bridge's device of kind k for UDP port dstPort.
func (b *Bridge) tunnelDevice(k tunnelKind, dstPort uint16) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00%s\x00%d", b.dir, k.typ, dstPort)
	return fmt.Sprintf("ebv%08x", h.Sum32())
}

func (b *Bridge) tunnelAlias(k tunnelKind, dstPort uint16) string {
	if k.dstPort == 0 {
		return fmt.Sprintf("ebpfovs %s device of %s", k.typ, b.dir)
	}
	return fmt.Sprintf("ebpfovs %s device (udp %d) of %s", k.typ, dstPort, b.dir)
}

// ensureTunnelDevice returns the bridge's device of kind k for dstPort,
// creating it (external mode, up, tc_tunnel on its ingress) if needed.
func (b *Bridge) ensureTunnelDevice(k tunnelKind, dstPort uint16) (netlink.Link, error) {
	name := b.tunnelDevice(k, dstPort)
	if l, err := netlink.LinkByName(name); err == nil {
		if l.Attrs().Alias != b.tunnelAlias(k, dstPort) {
			return nil, fmt.Errorf("%s device %s: exists and is not this bridge's", k.typ, name)
		}
		return l, nil
	}
	on := ""
	if k.dstPort != 0 {
		on = fmt.Sprintf(" on udp port %d", dstPort)
	}
	if err := netlink.LinkAdd(k.link(name, dstPort)); err != nil {
		switch {
		case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOENT):
			return nil, fmt.Errorf("type=%s: this kernel (Linux %s) has no flow-based %s devices (%s)", k.typ, KernelRelease(), k.linkType, k.config)
		case errors.Is(err, unix.EEXIST):
			return nil, fmt.Errorf("create a %s device%s: another flow-based %s device is there in this namespace (another bridge's?): %w", k.typ, on, k.typ, err)
		}
		return nil, fmt.Errorf("create a %s device%s: %w", k.typ, on, err)
	}
	b.step(string(k.typ) + " " + name)
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetAlias(l, b.tunnelAlias(k, dstPort))
	}
	if err == nil {
		b.step("alias " + name)
		err = netlink.LinkSetUp(l)
	}
	if err == nil {
		var prog *ebpf.Program
		if prog, err = loadPinnedProgram(b.dir, pinProgTunnel); err == nil {
			_, err = b.attachTC(prog, l, true)
			prog.Close()
		}
	}
	if err != nil {
		b.deleteTunnelDevice(k, dstPort, true)
		return nil, fmt.Errorf("set up %s device %s: %w", k.typ, name, err)
	}
	return netlink.LinkByName(name)
}

// deleteTunnelDevice deletes the bridge's device of kind k for dstPort,
// if it carries our alias (recovering: or none, as a killed command that
// created it left it: see deleteInternal).
func (b *Bridge) deleteTunnelDevice(k tunnelKind, dstPort uint16, recovering bool) error {
	l, err := netlink.LinkByName(b.tunnelDevice(k, dstPort))
	if err != nil {
		return nil
	}
	if a := l.Attrs().Alias; a != b.tunnelAlias(k, dstPort) && !(recovering && a == "" && l.Type() == k.linkType) {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete %s device %s: %w", k.typ, l.Attrs().Name, err)
	}
	b.step("delete " + string(k.typ) + " " + l.Attrs().Name)
	return nil
}

// attachTunnel adds tunnel port s as number ofport: recorded, the device
// made if it is the first port on its UDP port, the remote end mapped,
// then in the port table.
func (b *Bridge) attachTunnel(raw map[uint32]bpf.DatapathPort, ofport uint32, s PortSpec, begun *[]uint32) (AttachResult, error) {
	cfg := *s.Config
	port := bpf.DatapathPort{AttachedNs: monotonicNow()}
	setPortName(&port, s.Name)
	setPortConfig(&port, cfg)
	if err := setTunnelConfig(&port, cfg); err != nil {
		return AttachResult{}, err
	}
	for n, q := range raw {
		if q.Type == typeTunnel && q.TunKind == port.TunKind && q.DstPort == port.DstPort && q.RemoteIp == port.RemoteIp &&
			q.TunFlags&tunRemoteFlow == port.TunFlags&tunRemoteFlow {
			return AttachResult{}, inputErrorf("%s: port %d(%s) is a tunnel to the same remote end (options:remote_ip=%s)",
				s.Name, n, portName(&q), tunnelOptions(&port)["remote_ip"])
		}
	}
	if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
		return AttachResult{}, err
	}
	*begun = append(*begun, ofport)
	dev, err := b.ensureTunnelDevice(kindOfPort(&port), port.DstPort)
	if err != nil {
		return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	port.Ifindex = uint32(dev.Attrs().Index)
	if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
		return AttachResult{}, err
	}
	key := bpf.DatapathTunnelPortKey{Ifindex: port.Ifindex, Remote: port.RemoteIp}
	if err := b.maps.TunnelPorts.Put(&key, ofport); err != nil {
		return AttachResult{}, fmt.Errorf("%s: write tunnel_ports: %w", s.Name, err)
	}
	b.step(fmt.Sprintf("tunnel_ports %d", ofport))
	if err := b.writePort(ofport, cfg, &port); err != nil {
		return AttachResult{}, err
	}
	return AttachResult{Port: b.portOf(ofport, &port, dev.Attrs().HardwareAddr)}, nil
}

// detachTunnel undoes attachTunnel for port ofport (as p), before its
// port entry goes: its remote end, and the device if no other port of
// the bridge uses it. Each step may have been done already.
func (b *Bridge) detachTunnel(ofport uint32, p *bpf.DatapathPort, recovering bool) error {
	key := bpf.DatapathTunnelPortKey{Ifindex: p.Ifindex, Remote: p.RemoteIp}
	var cur uint32
	if p.Ifindex != 0 && b.maps.TunnelPorts.Lookup(&key, &cur) == nil && cur == ofport {
		if err := b.maps.TunnelPorts.Delete(&key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		b.step(fmt.Sprintf("delete tunnel_ports %d", ofport))
	}
	raw, err := b.rawPorts()
	if err != nil {
		return err
	}
	for n, q := range raw {
		if n != ofport && q.Type == typeTunnel && q.TunKind == p.TunKind && q.DstPort == p.DstPort {
			return nil // the device still has a port
		}
	}
	return b.deleteTunnelDevice(kindOfPort(p), p.DstPort, recovering)
}
