package ctl

import (
	"fmt"
	"net"

	"github.com/spf13/pflag"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/loader"
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

    Prints one line per port: NUMBER(NAME): mode, and how output reaches it.

OPTIONS
    --mode MODE        auto (default): TCX where the kernel has it (6.6+),
                       else tc, on every kind of port: XDP was measured
                       slower on veth ports (TCP bulk 6 against 35
                       Gbit/s: it runs on the skb the sender built and
                       loses GRO/GSO) and about 1.3x faster only for
                       small packets through taps (README, "Port
                       kinds"). tcx: require TCX. tc: a clsact qdisc with a
                       cls_bpf filter (direct-action), added next to any
                       other filters. xdp: an XDP program in front of
                       the TC program (TCX or tc, as auto): it finishes
                       what the flow cache holds and needs no more than a
                       lookup, a conntrack update and one output or a
                       drop (xdp_fast in 'show'); it carries out flow
                       tables whose flows each have at most one
                       output-like action (output, NORMAL, FLOOD, ...)
                       and no rewrites (xdp_packets); it passes everything
                       else on to TC untouched (xdp_to_tc). Native XDP
                       only: a device whose driver has none is refused
                       (the kernel's generic XDP would be slower than
                       TC). On a
                       veth, the device at the other end must have GRO on
                       and tx checksum offload off (ethtool -K IFACE gro on
                       tx off): XDP redirects reach it without the skb's
                       checksum state.
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
		how := "redirect"
		if r.Peer {
			how = "redirect_peer"
		}
		note := ""
		if r.Already {
			note = " (already attached)"
		}
		fmt.Fprintf(e.stdout, " %d(%s): mode:%s output:%s%s\n", r.OFPort, r.Name, r.Mode, how, note)
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
		fmt.Fprintf(e.stdout, "     mode: %s, output: %s\n", p.Mode, how)
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
		if l, err := h.LinkByIndex(p.Ifindex); err == nil {
			out[p.Ifindex] = l.Attrs().HardwareAddr
		}
	}
	return out
}

func netlinkHandle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		return netlink.NewHandle()
	}
	return loader.NetlinkHandleAt(ns)
}
