package loader

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// Tunnel ports, as OVS's flow-based ones: each VXLAN port is a remote end
// (options:remote_ip, or "flow": the flow's tun_dst) of one kernel VXLAN
// device in external (collect_md) mode that the bridge creates and owns,
// one per UDP port (options:dst_port, 4789) and shared by the bridge's
// VXLAN ports on it, as OVS's vxlan_sys_4789. The device's ingress runs
// the bridge's tc_tunnel, which finds the port by the device and the
// remote end (tunnel_ports) and fills tun_id, tun_src and tun_dst; an
// output to a tunnel port sets the skb's tunnel key and redirects to the
// device, which encapsulates and routes. The device carries an alias
// naming the bridge, and goes with the bridge's last port on it.

const (
	typeTunnel     = uint8(bpf.DatapathPortTypePORT_TUNNEL)
	flagTunnel     = uint32(bpf.DatapathPortFlagPORT_F_TUNNEL)
	cfgTunnelPorts = uint32(bpf.DatapathCfgFlagCFG_TUNNEL_PORTS)
	tunRemoteFlow  = uint32(bpf.DatapathTunnelFlagTUN_REMOTE_FLOW)
	tunKeyFlow     = uint32(bpf.DatapathTunnelFlagTUN_KEY_FLOW)
	tunLocalFlow   = uint32(bpf.DatapathTunnelFlagTUN_LOCAL_FLOW)
	vxlanPort      = 4789 // IANA's, Linux's and OVS's default
	// VXLANOverhead is what VXLAN over IPv4 adds to a frame: outer
	// Ethernet 14, IPv4 20, UDP 8, VXLAN 8.
	VXLANOverhead = 50
)

// setTunnelConfig writes a tunnel port's options into p.
func setTunnelConfig(p *bpf.DatapathPort, c vsctl.Port) error {
	p.Flags |= flagTunnel
	p.TunFlags = 0
	p.DstPort = vxlanPort
	if v, ok := c.Options["dst_port"]; ok {
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
		if err != nil || n >= 1<<24 {
			return inputErrorf("%s: options:key=%s: a VXLAN key (VNI) is 0..16777215 or flow", c.Name, v)
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
	if p.DstPort != vxlanPort {
		o["dst_port"] = strconv.Itoa(int(p.DstPort))
	}
	return o
}

// tunnelDevice names the bridge's VXLAN device for UDP port dstPort.
func (b *Bridge) tunnelDevice(dstPort uint16) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s\x00vxlan\x00%d", b.dir, dstPort)
	return fmt.Sprintf("ebv%08x", h.Sum32())
}

func (b *Bridge) tunnelAlias(dstPort uint16) string {
	return fmt.Sprintf("ebpfovs vxlan device (udp %d) of %s", dstPort, b.dir)
}

// ensureTunnelDevice returns the bridge's VXLAN device for dstPort,
// creating it (external mode, up, tc_tunnel on its ingress) if needed.
func (b *Bridge) ensureTunnelDevice(dstPort uint16) (netlink.Link, error) {
	name := b.tunnelDevice(dstPort)
	if l, err := netlink.LinkByName(name); err == nil {
		if l.Attrs().Alias != b.tunnelAlias(dstPort) {
			return nil, fmt.Errorf("vxlan device %s: exists and is not this bridge's", name)
		}
		return l, nil
	}
	dev := &netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: name}, FlowBased: true, Port: int(dstPort)}
	if err := netlink.LinkAdd(dev); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create a vxlan device on udp port %d: another flow-based vxlan device uses it in this namespace (another bridge's?): %w", dstPort, err)
		}
		return nil, fmt.Errorf("create a vxlan device on udp port %d: %w", dstPort, err)
	}
	b.step("vxlan " + name)
	l, err := netlink.LinkByName(name)
	if err == nil {
		err = netlink.LinkSetAlias(l, b.tunnelAlias(dstPort))
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
		b.deleteTunnelDevice(dstPort, true)
		return nil, fmt.Errorf("set up vxlan device %s: %w", name, err)
	}
	return netlink.LinkByName(name)
}

// deleteTunnelDevice deletes the bridge's VXLAN device for dstPort, if it
// carries our alias (recovering: or none, as a killed command that
// created it left it: see deleteInternal).
func (b *Bridge) deleteTunnelDevice(dstPort uint16, recovering bool) error {
	l, err := netlink.LinkByName(b.tunnelDevice(dstPort))
	if err != nil {
		return nil
	}
	if a := l.Attrs().Alias; a != b.tunnelAlias(dstPort) && !(recovering && a == "" && l.Type() == "vxlan") {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete vxlan device %s: %w", l.Attrs().Name, err)
	}
	b.step("delete vxlan " + l.Attrs().Name)
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
		if q.Type == typeTunnel && q.DstPort == port.DstPort && q.RemoteIp == port.RemoteIp &&
			q.TunFlags&tunRemoteFlow == port.TunFlags&tunRemoteFlow {
			return AttachResult{}, inputErrorf("%s: port %d(%s) is a tunnel to the same remote end (options:remote_ip=%s)",
				s.Name, n, portName(&q), tunnelOptions(&port)["remote_ip"])
		}
	}
	if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
		return AttachResult{}, err
	}
	*begun = append(*begun, ofport)
	dev, err := b.ensureTunnelDevice(port.DstPort)
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
		if n != ofport && q.Type == typeTunnel && q.DstPort == p.DstPort {
			return nil // the device still has a port
		}
	}
	return b.deleteTunnelDevice(p.DstPort, recovering)
}
