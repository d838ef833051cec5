package lab

import (
	"context"
	"fmt"
	"strings"
)

// Tap paths (I, J, K): the switch's ports are tap devices, as a VM's are
// behind QEMU, and the packet generator (probe tapflood) writes frames
// into vnet1 and reads what comes out of vnet2 through the taps' file
// descriptors, as QEMU's virtio backend does. There are no VM namespaces:
// these paths take the packet-rate rows only.

// tapHost creates path p's hypervisor namespace (named as the veth labs'
// are, so SweepStale removes it after a killed run) with two persistent
// tap devices, vnet1 and vnet2, up and without IPv6, and fills in p.Host.
func (e *Env) tapHost(ctx context.Context, p *Path) error {
	ns := e.Tag + "-" + strings.ToLower(p.ID) + "-hv"
	if _, err := Run(ctx, "ip", "netns", "add", ns); err != nil {
		return err
	}
	e.Cleanup.Push("remove netns "+ns, func() error {
		_, err := Run(context.Background(), "ip", "netns", "del", ns)
		return err
	})
	p.Host, p.Port, p.Taps = ns, "vnet1", true
	for _, k := range []string{"all", "default"} {
		if err := Sysctl(ctx, ns, "net.ipv6.conf."+k+".disable_ipv6", "1"); err != nil {
			return err
		}
	}
	for _, cmd := range [][]string{
		{"link", "set", "lo", "up"},
		{"tuntap", "add", "dev", "vnet1", "mode", "tap"},
		{"tuntap", "add", "dev", "vnet2", "mode", "tap"},
		{"link", "set", "vnet1", "up"},
		{"link", "set", "vnet2", "up"},
	} {
		if _, err := Run(ctx, append([]string{"ip", "-n", ns}, cmd...)...); err != nil {
			return err
		}
	}
	return nil
}

// setupTapBridge is path I: a Linux bridge of the two taps with nftables'
// stateful ruleset, as path C (nftablesRules).
func setupTapBridge(ctx context.Context, env *Env) (*Path, error) {
	p := &Path{ID: "I", Name: "Linux bridge + nftables conntrack, tap ports", Floods: []string{"udp", "syn"}}
	if err := env.tapHost(ctx, p); err != nil {
		return nil, err
	}
	for _, cmd := range [][]string{
		{"link", "add", "br0", "type", "bridge", "stp_state", "0", "mcast_snooping", "0"},
		{"link", "set", "vnet1", "master", "br0"},
		{"link", "set", "vnet2", "master", "br0"},
		{"link", "set", "br0", "up"},
	} {
		if _, err := Run(ctx, append([]string{"ip", "-n", p.Host}, cmd...)...); err != nil {
			return nil, err
		}
	}
	if err := nftablesOnBridge(ctx, env, p); err != nil {
		return nil, err
	}
	return p, nil
}

// tapNote is what every tap path prints about itself.
func tapNote() string {
	return fmt.Sprintf("ports: persistent taps vnet1, vnet2 (ip tuntap); frames written into vnet1 and read from vnet2 through their descriptors (VM1 %s, VM2 %s)", VM1IP, VM2IP)
}

// tapCheck is the check of paths J and K, after some packet-rate traffic:
// the switch carried it (K: XDP's fast path, which finishes in XDP what
// its cache holds, carried most of it).
func tapCheck(ctx context.Context, ebpfovs func(context.Context, ...string) (string, error), xdp bool) (string, error) {
	show, err := ebpfovs(ctx, "show")
	if err != nil {
		return "", err
	}
	counter := func(name string) int64 {
		var n int64
		if i := strings.Index(show, " "+name+":"); i >= 0 {
			fmt.Sscan(show[i+len(name)+2:], &n)
		}
		return n
	}
	packets, fast := counter("packets"), counter("xdp_fast")
	if packets == 0 {
		return "", fmt.Errorf("the switch carried no packet: %s", show)
	}
	if xdp && fast == 0 {
		return "", fmt.Errorf("XDP's fast path carried no packet: %s", show)
	}
	return fmt.Sprintf("the datapath counted %d packets, %d finished in XDP's fast path", packets, fast), nil
}
