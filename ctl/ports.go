package ctl

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

func init() {
	register(&command{
		name:    "attach",
		args:    "[--mode auto|tcx|tc|xdp] IFACE[=OFPORT]...",
		summary: "attach the datapath to interfaces, creating the bridge if needed",
		root:    true,
		help: `DESCRIPTION
    Attaches the eBPF datapath to the ingress of each interface (a tap or
    veth device) and makes it an OpenFlow port of the bridge, numbered
    OFPORT or the lowest free number from 1. A bridge that does not exist
    yet is created with Open vSwitch's default flow, 'priority=0
    actions=NORMAL', as 'ovs-vsctl add-br' gives a new bridge.

    Attaching is all or nothing: if one interface fails, the ports this call
    attached are detached again and a bridge it created is removed.
    Attaching an interface that is already a port changes nothing.

    Prints one line per port: NUMBER(NAME): mode, how output reaches it,
    and the kind of device auto took it for.

OPTIONS
    --mode MODE        auto (default): by the kind of each device, from
                       what was measured (README, "Port kinds"):
                         veth      TCX: XDP runs on the skb the sender
                                   built and loses GRO/GSO (TCP bulk 6.9
                                   against 38.6 Gbit/s);
                         tap       xdp from Linux 6.9 (64-byte frames
                                   1.3-1.7x, SYN floods 1.2-1.5x, a VM's
                                   TCP bulk 1.3x); TCX before, where
                                   generic XDP linearizes a VM's TSO
                                   frames;
                         physical  TCX: not measured (try --mode xdp);
                         virtual   TCX: bridge, bond, dummy...: no
                                   native XDP.
                       TCX is tc before Linux 6.6; where auto's XDP
                       cannot attach, the port is TC's alone.
                       Each port's line ends in auto:KIND.
                       tcx: require TCX.
                       tc: a clsact qdisc with a cls_bpf filter
                       (direct-action), added next to any other filters.
                       xdp: an XDP program in front of the TC program
                       (TCX, or tc before Linux 6.6): it finishes
                       what the flow cache holds and needs no more than a
                       lookup, a conntrack update and one output or a
                       drop (xdp_fast in 'show'); it carries out flow
                       tables whose flows each have at most one
                       output-like action (output, NORMAL, FLOOD, ...)
                       and no rewrites (xdp_packets); it passes everything
                       else on to TC untouched (xdp_to_tc). Native XDP
                       only: a device whose driver has none is refused
                       (the kernel's generic XDP would be slower than
                       TC). On a veth, the device at the other end must
                       have GRO on and tx checksum offload off (ethtool
                       -K IFACE gro on tx off): XDP redirects reach it
                       without the skb's checksum state.
    --max-flows N      flows a new bridge can hold (default 131072); kernel
                       memory grows with it (about 550 bytes a flow)
    --max-conns N      connections a new bridge's table holds (default
                       262144, about 200 bytes each, allocated at once);
                       a full table refuses new connections, and it is
                       the highest ct-set-maxconns
    Both only matter when attach creates the bridge.

EXAMPLES
    ebpfovs attach vnet1 vnet2
    ebpfovs --netns host1 attach --mode tc vnet1=10 vnet2=20
`,
		flags: func(fs *pflag.FlagSet) {
			fs.String("mode", loader.ModeAuto, "")
			fs.Uint32("max-flows", 0, "")
			fs.Uint32("max-conns", 0, "")
		},
		run: runAttach,
	})
	register(&command{
		name:    "detach",
		args:    "[IFACE...]",
		summary: "detach ports; with none, detach all and remove the bridge",
		root:    true,
		help: `DESCRIPTION
    Detaches the datapath from the named ports and frees their numbers; their
    flows stay. With no interface, detaches every port and removes the
    bridge's pinned state (flows, connections, MAC table) altogether.
`,
		run: runDetach,
	})
	register(&command{
		name:    "show",
		args:    "",
		summary: "show the bridge's ports and counters, like ovs-ofctl show",
		root:    true,
		help: `DESCRIPTION
    Prints the bridge and, for each port, its OpenFlow number, name, MAC
    address, attach mode and packet counters:

      bridge br0: 2 ports, 5 flows, 1 connections, pinned at /sys/fs/bpf/ebpfovs/br0
       1(vnet1): addr:fe:54:00:12:34:56
           mode: tcx, output: redirect_peer
           rx packets:120 bytes:9120 dropped:3
           tx packets:118 bytes:8990
`,
		run: runShow,
	})
}

func runAttach(e *env, fs *pflag.FlagSet, args []string) error {
	mode, _ := fs.GetString("mode")
	if len(args) == 0 {
		return usagef("attach: no interface given (usage: ebpfovs attach [--mode MODE] IFACE[=OFPORT]...)")
	}
	var specs []loader.PortSpec
	for _, a := range args {
		s, err := loader.ParsePortSpec(a)
		if err != nil {
			return usagef("attach: %v", err)
		}
		specs = append(specs, s)
	}
	switch mode {
	case loader.ModeAuto, loader.ModeTCX, loader.ModeTC, loader.ModeXDP:
	default:
		return usagef("attach: --mode %s: unknown mode (auto, tcx, tc, xdp)", mode)
	}
	opts := e.opts
	opts.MaxFlows, _ = fs.GetUint32("max-flows")
	opts.MaxConns, _ = fs.GetUint32("max-conns")
	res, err := loader.Attach(opts, specs, mode)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	for _, r := range res {
		printAttached(e, r, " (already attached)")
	}
	return nil
}

func runDetach(e *env, fs *pflag.FlagSet, args []string) error {
	ports, err := loader.Detach(e.opts, args)
	if err != nil {
		return fmt.Errorf("detach: %w", err)
	}
	for _, p := range ports {
		fmt.Fprintf(e.stdout, " %d(%s): detached\n", p.OFPort, p.Name)
	}
	if len(args) == 0 {
		fmt.Fprintf(e.stdout, "bridge %s removed\n", e.opts.Bridge)
	}
	return nil
}

func runShow(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) > 0 {
		return usagef("show: unexpected argument %q", args[0])
	}
	b, err := loader.Open(e.opts)
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	defer b.Close()
	ports, err := b.Ports()
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	flows, err := b.Flows()
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	conns, err := b.Conntrack(nil)
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	macs := portMACs(e.opts.NetNS, ports)
	fmt.Fprintf(e.stdout, "bridge %s: %d ports, %d flows, %d connections, pinned at %s\n", b.Name(), len(ports), len(flows), len(conns), b.Dir())
	for _, p := range ports {
		how := "redirect"
		if p.Peer {
			how = "redirect_peer"
		}
		addr := "unknown"
		if m, ok := macs[p.Ifindex]; ok {
			addr = m.String()
		}
		fmt.Fprintf(e.stdout, " %d(%s): addr:%s\n", p.OFPort, p.Name, addr)
		switch p.Config.Type {
		case vsctl.Patch:
			fmt.Fprintf(e.stdout, "     mode: patch, %s\n", patchPeer(b, p))
		case vsctl.VXLAN, vsctl.Geneve, vsctl.GRE:
			o := loader.TunnelOverhead(p.Config.Type)
			fmt.Fprintf(e.stdout, "     mode: %s, output: %s (encapsulation adds %d bytes: MTU %d on a 1500 network)\n", p.Config.Type, p.Device, o, 1500-o)
		default:
			fmt.Fprintf(e.stdout, "     mode: %s, output: %s\n", p.Mode, how)
		}
		showSettings(e.stdout, p.Config)
		fmt.Fprintf(e.stdout, "     rx packets:%d bytes:%d dropped:%d\n", p.Stats.RxPackets, p.Stats.RxBytes, p.Stats.RxDropped)
		fmt.Fprintf(e.stdout, "     tx packets:%d bytes:%d\n", p.Stats.TxPackets, p.Stats.TxBytes)
	}
	counters, err := b.Counters()
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	fmt.Fprintf(e.stdout, " datapath:")
	for _, c := range counters {
		fmt.Fprintf(e.stdout, " %s:%d", c.Name, c.Value)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// portMACs reads the ports' MAC addresses from their namespace; ports it
// cannot see are simply missing from the result.
func portMACs(ns string, ports []loader.Port) map[int]net.HardwareAddr {
	out := map[int]net.HardwareAddr{}
	h, err := netlinkHandle(ns)
	if err != nil {
		return out
	}
	defer h.Close()
	for _, p := range ports {
		if p.Config.Type == vsctl.Internal {
			// The interface the host or a namespace uses, while it is
			// in the bridge's namespace.
			if l, err := h.LinkByName(p.Name); err == nil {
				out[p.Ifindex] = l.Attrs().HardwareAddr
				continue
			}
		}
		if l, err := h.LinkByIndex(p.Ifindex); err == nil {
			out[p.Ifindex] = l.Attrs().HardwareAddr
		}
	}
	return out
}

// patchPeer says where a patch port's output goes.
func patchPeer(b *loader.Bridge, p loader.Port) string {
	if br := b.PeerBridge(p); br != "" {
		return fmt.Sprintf("output: tail call to %s port %d(%s)", br, p.PeerPort, p.Config.Options["peer"])
	}
	return fmt.Sprintf("output: none: no port %s on another bridge (patch_no_peer)", p.Config.Options["peer"])
}

// showSettings prints a port's settings that are set, one per line, as
// ovs-vsctl show prints its Port and Interface columns.
func showSettings(w io.Writer, c vsctl.Port) {
	if c.Type != vsctl.System && c.Type != "" {
		fmt.Fprintf(w, "     type: %s\n", c.Type)
	}
	if c.Tag >= 0 {
		fmt.Fprintf(w, "     tag: %d\n", c.Tag)
	}
	if c.VLANMode != "" {
		fmt.Fprintf(w, "     vlan_mode: %s\n", c.VLANMode)
	}
	if len(c.Trunks) > 0 {
		fmt.Fprintf(w, "     trunks: %s\n", vsctl.FormatTrunks(c.Trunks))
	}
	if len(c.Options) > 0 {
		var kv []string
		for k, v := range c.Options {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		fmt.Fprintf(w, "     options: {%s}\n", strings.Join(kv, ", "))
	}
}

func netlinkHandle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		return netlink.NewHandle()
	}
	return loader.NetlinkHandleAt(ns)
}

func init() {
	register(&command{
		name:    "add-port",
		args:    "[--may-exist] [--mode MODE] [--max-flows N] [--max-conns N] NAME [KEY=VALUE...]",
		summary: "add a port with ovs-vsctl's settings (type, tag, trunks, vlan_mode, ...)",
		root:    true,
		help: `DESCRIPTION
    Adds port NAME to the bridge, creating the bridge if needed, with the
    settings ovs-vsctl keeps in its Port and Interface tables. Without
    settings it is 'attach NAME'.

SETTINGS
    type=TYPE          system (default): NAME is a device that exists (a
                       tap, a veth). internal: ebpfovs creates NAME, an
                       interface for the host or for a namespace (move it
                       with 'ip link set NAME netns NS'); it is a veth
                       pair whose other end, named ebo + 8 hex digits and
                       marked with an alias, carries the datapath; del-port
                       deletes both. patch: no device; joins this bridge
                       to the bridge (under the same --bpffs) that has
                       the port named by options:peer, itself a patch
                       port whose peer is NAME: a packet output to NAME
                       goes on in that bridge's flow tables as received
                       on the peer, in the kernel (a tail call), with
                       fresh registers, metadata and conntrack state, as
                       in Open vSwitch. The first port of a pair waits
                       for its peer, sending nothing (counter
                       patch_no_peer). At most 8 bridges per packet
                       (patch_loop), and one patch output per walk, made
                       last (patch_extra counts more). vxlan: a
                       flow-based VXLAN tunnel to options:remote_ip (an
                       IPv4 address, or flow: the flow's tun_dst), with
                       options:key (the VNI, or flow: the flow's tun_id;
                       default 0), options:local_ip and options:dst_port
                       (4789); the bridge creates one kernel VXLAN
                       device in external mode per UDP port (ebv + 8 hex
                       digits), shared by its VXLAN ports, and deletes
                       it with the last; packets that came in through
                       it carry tun_id, tun_src and tun_dst for flows to
                       match. Encapsulation adds 50 bytes: give VMs MTU
                       1450 on a 1500-byte network. geneve: the same,
                       over Geneve (dst_port 6081; 50 bytes, no
                       options). gre: the same, Ethernet over GRE (no
                       dst_port; the key is GRE's 32-bit key; 42
                       bytes). A kernel without the device kind
                       (CONFIG_GENEVE, CONFIG_NET_IPGRE) gets one line
                       naming it, and nothing is added.
    ofport=N           the OpenFlow port number (ovs-vsctl's
                       ofport_request; that name works too); default the
                       lowest free one.
    tag=VLAN           the port's VLAN, 0..4095: an access port, or the
                       native VLAN of a native-* port.
    trunks=V1,V2,...   the VLANs a trunk or native-* port carries tagged
                       ([V1,V2] works too); none given: every VLAN.
    vlan_mode=MODE     trunk: frames carry their VLAN in an 802.1Q tag.
                       access: frames are untagged and belong to VLAN tag;
                       a tagged frame received is dropped. native-tagged
                       and native-untagged: a trunk whose untagged frames
                       belong to VLAN tag; native-tagged sends that VLAN
                       tagged, native-untagged untagged. Without
                       vlan_mode: access with a tag, trunk without, as in
                       Open vSwitch.
    options:KEY=VALUE  an Interface option of the type: peer (patch),
                       remote_ip, local_ip, key, dst_port (tunnels).

    The VLAN settings are NORMAL's, as in Open vSwitch: NORMAL learns MAC
    addresses per VLAN, floods within the frame's VLAN only, tags and
    untags per output port, and never sends a frame into another VLAN
    (the datapath counter normal_vlan_drop counts frames whose VLAN their
    port does not allow). Flows that match dl_vlan see frames as they
    arrived. Unlike Open vSwitch, which accepts and ignores them, ebpfovs
    refuses trunks on an access port and a tag on a trunk port.

OPTIONS
    --may-exist        a port NAME that exists already is no error (its
                       settings are left as they are, as ovs-vsctl does)
    --mode MODE        as attach's
    --max-flows N, --max-conns N
                       as attach's: the sizes of a bridge this command
                       creates

EXIT STATUS
    0 added, 1 a system error, 2 a setting that is wrong, a port that
    exists (without --may-exist), a type this version cannot make.

EXAMPLES
    ebpfovs -b br-int add-port tap1 tag=100
    ebpfovs -b br-int add-port uplink vlan_mode=trunk trunks=100,102
    ebpfovs -b br-int add-port qr-1 type=internal tag=100
    ebpfovs -b br-int add-port patch-tun type=patch options:peer=patch-int
    ebpfovs -b br-tun add-port patch-int type=patch options:peer=patch-tun
    ebpfovs -b br-tun add-port vxlan-0a000002 type=vxlan \
        options:remote_ip=10.0.0.2 options:key=flow
`,
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("may-exist", false, "")
			fs.String("mode", loader.ModeAuto, "")
			fs.Uint32("max-flows", 0, "")
			fs.Uint32("max-conns", 0, "")
		},
		run: runAddPort,
	})
	register(&command{
		name:    "del-port",
		args:    "[--if-exists] NAME...",
		summary: "remove ports (an internal port's interface too)",
		root:    true,
		help: `DESCRIPTION
    Takes the named ports off the bridge, as detach does, and deletes the
    interface of an internal port. Their flows stay. The bridge stays,
    with no ports if none is left ('detach' with no argument removes it).

OPTIONS
    --if-exists        a NAME that is not a port is no error

EXAMPLES
    ebpfovs -b br-int del-port tap1
`,
		flags: func(fs *pflag.FlagSet) {
			fs.Bool("if-exists", false, "")
		},
		run: runDelPort,
	})
	register(&command{
		name:    "set-port",
		args:    "NAME KEY=VALUE...",
		summary: "change a port's settings (tag, trunks, vlan_mode; VALUE [] clears)",
		root:    true,
		help: `DESCRIPTION
    Changes settings of port NAME: the keys of add-port, but type and
    ofport, which need del-port and add-port. KEY=[] clears a setting, as
    'ovs-vsctl clear Port NAME KEY' does. The port as a whole is checked
    before anything changes. The MAC addresses NORMAL learnt on the port
    are forgotten, as Open vSwitch does when a port's VLANs change.

EXAMPLES
    ebpfovs set-port tap1 tag=102
    ebpfovs set-port uplink vlan_mode=native-untagged tag=100 trunks=[]
`,
		run: runSetPort,
	})
}

func runAddPort(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) == 0 {
		return usagef("add-port: no port given (usage: ebpfovs add-port NAME [KEY=VALUE...])")
	}
	mayExist, _ := fs.GetBool("may-exist")
	mode, _ := fs.GetString("mode")
	name := args[0]
	if _, err := loader.ParsePortSpec(name); err != nil || strings.Contains(name, "=") {
		return usagef("add-port: %q: invalid port name", name)
	}
	cfg, err := vsctl.ParsePort(name, args[1:], loader.MaxPort)
	if err != nil {
		return usagef("add-port: %v", err)
	}
	opts := e.opts
	opts.MaxFlows, _ = fs.GetUint32("max-flows")
	opts.MaxConns, _ = fs.GetUint32("max-conns")
	res, err := loader.Attach(opts, []loader.PortSpec{{Name: name, OFPort: cfg.OFPort, Config: &cfg}}, mode)
	if err != nil {
		return fmt.Errorf("add-port: %w", err)
	}
	r := res[0]
	if r.Already && !mayExist {
		return usagef("add-port: cannot create a port named %s because a port named %s already exists on bridge %s", name, name, e.opts.Bridge)
	}
	printAttached(e, r, " (exists)")
	return nil
}

// printAttached prints one port attach or add-port made (or found, with
// note): NUMBER(NAME): mode, and how output reaches it.
func printAttached(e *env, r loader.AttachResult, note string) {
	how := "redirect"
	if r.Peer {
		how = "redirect_peer"
	}
	if !r.Already {
		note = ""
	}
	switch r.Config.Type {
	case vsctl.Patch:
		how = "tail call"
		if r.PeerPort == 0 {
			how = "none (no peer yet)"
		}
	case vsctl.VXLAN, vsctl.Geneve, vsctl.GRE:
		how = r.Device
	}
	auto := ""
	if r.Auto != "" {
		auto = " auto:" + string(r.Auto)
	}
	fmt.Fprintf(e.stdout, " %d(%s): mode:%s output:%s%s%s\n", r.OFPort, r.Name, r.Mode, how, auto, note)
}

func runDelPort(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) == 0 {
		return usagef("del-port: no port given (usage: ebpfovs del-port NAME...)")
	}
	ifExists, _ := fs.GetBool("if-exists")
	names := args
	if ifExists {
		b, err := loader.Open(e.opts)
		if errors.Is(err, loader.ErrNoBridge) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("del-port: %w", err)
		}
		pm, err := b.PortMap()
		b.Close()
		if err != nil {
			return fmt.Errorf("del-port: %w", err)
		}
		names = nil
		for _, n := range args {
			if _, ok := pm.PortNumber(n); ok {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil
		}
	}
	ports, err := loader.Detach(e.opts, names)
	if err != nil {
		return fmt.Errorf("del-port: %w", err)
	}
	for _, p := range ports {
		fmt.Fprintf(e.stdout, " %d(%s): deleted\n", p.OFPort, p.Name)
	}
	return nil
}

func runSetPort(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) < 2 {
		return usagef("set-port: usage: ebpfovs set-port NAME KEY=VALUE...")
	}
	c, err := loader.SetPort(e.opts, args[0], args[1:])
	if err != nil {
		return fmt.Errorf("set-port: %w", err)
	}
	fmt.Fprintf(e.stdout, " %d(%s): %s\n", c.OFPort, c.Name, orNone(c.Settings()))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "no settings"
	}
	return s
}
