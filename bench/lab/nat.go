package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// The source NAT of paths G and H: VM1's connections to VM2 leave with
// source address SNATAddr and a port in SNATPorts (the original port when it
// is in the range and free, as nf_nat and ebpfovs both choose).
const (
	SNATAddr  = "10.0.0.100"
	SNATPorts = "10000-60000"
)

// SNATFlows are path G's flows: the lab's conntrack policy (LabFlows) with
// source NAT, as Open vSwitch documents it. The first ct() of each
// direction also applies the connection's translation, if it has one
// (ct(table=0,nat)); a new connection from VM1 gets its translation when
// committed. Replies are translated back by the ct(nat) of vnet2's first
// flow.
var SNATFlows = []string{
	"table=0, priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0,nat)",
	"table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit,nat(src=" + SNATAddr + ":" + SNATPorts + ")),vnet2",
	"table=0, priority=50, ct_state=-trk, tcp, in_port=vnet2, actions=ct(table=0,nat)",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet2, actions=vnet1",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet1, actions=vnet2",
}

// setupSNATVM2 makes VM2 send its replies to SNATAddr out of eth0: a route
// for SNATAddr/32 on the link and, when mac is not empty, a permanent
// neighbour entry for it (path G: on its L2 path nobody answers ARP for
// SNATAddr, and the replies must reach VM1's MAC). Both go away with VM2's
// namespace.
func setupSNATVM2(ctx context.Context, p *Path, mac string) error {
	if _, err := Run(ctx, InNetns(p.VM2, "ip", "route", "add", SNATAddr+"/32", "dev", "eth0")...); err != nil {
		return err
	}
	note := "VM2: route " + SNATAddr + "/32 dev eth0"
	if mac != "" {
		if _, err := Run(ctx, InNetns(p.VM2, "ip", "neigh", "replace", SNATAddr, "lladdr", mac, "dev", "eth0", "nud", "permanent")...); err != nil {
			return err
		}
		note += ", permanent neighbour " + SNATAddr + " lladdr " + mac + " (VM1's MAC)"
	}
	p.Notes = append(p.Notes, note)
	return nil
}

// routerAddr is the hypervisor's address on vnet1 in path H: the source of
// its ARP requests to VM1.
const routerAddr = "10.0.10.254"

// setupRouterNAT is path H: the lab's VMs with the hypervisor namespace as
// an IPv4 router between vnet1 and vnet2 (no bridge) and nftables doing
// what path G's flows do: the lab's conntrack policy in the forward hook
// and a masquerade of VM1's connections to SNATAddr, the address of vnet2,
// so the kernel's nf_nat translates them.
//
// The VMs keep their addresses in one /24: the router has a /32 route to
// each VM and answers VM1's ARP for VM2 by proxy ARP on vnet1 (no proxy
// delay); VM2 routes SNATAddr through eth0 and the router answers its ARP,
// SNATAddr being its own on vnet2.
func setupRouterNAT(ctx context.Context, env *Env) (*Path, error) {
	p := &Path{ID: "H", Name: "Linux router + nftables masquerade"}
	if _, err := env.vethLab(p, testenv.LabOptions{}); err != nil {
		return nil, err
	}
	host := p.Host
	for _, argv := range [][]string{
		{"ip", "addr", "add", routerAddr + "/32", "dev", "vnet1"},
		{"ip", "addr", "add", SNATAddr + "/32", "dev", "vnet2"},
		{"ip", "route", "add", VM1IP + "/32", "dev", "vnet1"},
		{"ip", "route", "add", VM2IP + "/32", "dev", "vnet2"},
	} {
		if _, err := Run(ctx, InNetns(host, argv[0], argv[1:]...)...); err != nil {
			return nil, err
		}
	}
	for _, kv := range [][2]string{
		{"net.ipv4.ip_forward", "1"},
		{"net.ipv4.conf.vnet1.proxy_arp", "1"},
		{"net.ipv4.neigh.vnet1.proxy_delay", "0"},
	} {
		if err := Sysctl(ctx, host, kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if err := setupSNATVM2(ctx, p, ""); err != nil {
		return nil, err
	}
	table := strings.ReplaceAll(env.Tag, "-", "_")
	rules := fmt.Sprintf(`table ip %[1]s {
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "vnet1" oifname "vnet2" ip saddr %[2]s ip daddr %[3]s meta l4proto tcp ct state new,established accept
		iifname "vnet2" oifname "vnet1" ip saddr %[3]s ip daddr %[2]s meta l4proto tcp ct state established accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "vnet2" ip saddr %[2]s meta l4proto tcp masquerade to :%[4]s
	}
}
`, table, VM1IP, VM2IP, SNATPorts)
	file := filepath.Join(env.Dir, "h-nft.rules")
	if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", file, err)
	}
	if _, err := Run(ctx, InNetns(host, "nft", "-f", file)...); err != nil {
		return nil, err
	}
	env.Cleanup.Push("delete nft table ip "+table+" of path H", func() error {
		_, err := Run(context.Background(), InNetns(host, "nft", "delete", "table", "ip", table)...)
		return err
	})
	p.Notes = append(p.Notes,
		fmt.Sprintf("router: ip_forward=1, %s/32 on vnet1 (proxy_arp=1, proxy_delay=0), %s/32 on vnet2, routes %s/32 dev vnet1 and %s/32 dev vnet2", routerAddr, SNATAddr, VM1IP, VM2IP),
		"ruleset: "+strings.Join(strings.Fields(rules), " "))
	p.Check = func(ctx context.Context) (string, error) {
		out, src, err := kernelConntrack(ctx, host)
		if err != nil {
			return "", err
		}
		n, natted := CountSNAT(out, func(line string) bool { return slices.Contains(strings.Fields(line), "tcp") })
		if err := checkSNAT(n, natted); err != nil {
			return "", fmt.Errorf("kernel conntrack (%s): %w", src, err)
		}
		return fmt.Sprintf("kernel conntrack (%s) holds %d TCP connections VM1 -> VM2, all source-NATed (reply dst %s)", src, n, SNATAddr), nil
	}
	return p, nil
}

// kernelConntrack returns the kernel's connections in namespace ns, from
// /proc/net/nf_conntrack (CONFIG_NF_CONNTRACK_PROCFS) or else from
// `conntrack -L` (ctnetlink), and which of the two it read.
func kernelConntrack(ctx context.Context, ns string) (dump, source string, err error) {
	out, perr := Run(ctx, InNetns(ns, "cat", "/proc/net/nf_conntrack")...)
	if perr == nil {
		return out, "/proc/net/nf_conntrack", nil
	}
	out, cerr := Run(ctx, InNetns(ns, "conntrack", "-L", "-p", "tcp")...)
	if cerr == nil {
		return out, "conntrack -L", nil
	}
	return "", "", fmt.Errorf("read the kernel's conntrack table: %w", errors.Join(perr, cerr))
}

// CountSNAT counts, in a conntrack dump, the TCP connections (the lines
// tcp accepts) from VM1 to VM2 and, among them, those whose reply goes to
// SNATAddr. It reads both ebpfovs's (and dpctl/dump-conntrack's)
// `tcp,orig=(src=A,dst=B,...),reply=(src=C,dst=D,...)` and the kernel's
// `... tcp 6 117 TIME_WAIT src=A dst=B ... src=C dst=D ...`: the first
// src/dst pair is the original direction, the second the reply.
func CountSNAT(dump string, tcp func(line string) bool) (conns, natted int) {
	for _, line := range strings.Split(dump, "\n") {
		if !tcp(line) {
			continue
		}
		var addrs []string
		for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' || r == '(' || r == ')' }) {
			if strings.HasPrefix(f, "src=") || strings.HasPrefix(f, "dst=") {
				addrs = append(addrs, f)
			}
		}
		if len(addrs) < 4 || addrs[0] != "src="+VM1IP || addrs[1] != "dst="+VM2IP {
			continue
		}
		conns++
		if addrs[2] == "src="+VM2IP && addrs[3] == "dst="+SNATAddr {
			natted++
		}
	}
	return conns, natted
}

// checkSNAT fails unless there are connections from VM1 to VM2 and every
// one is source-NATed.
func checkSNAT(conns, natted int) error {
	switch {
	case conns == 0:
		return errors.New("no TCP connection from VM1 to VM2 is tracked")
	case natted < conns:
		return fmt.Errorf("%d of %d TCP connections from VM1 to VM2 are not source-NATed to %s", conns-natted, conns, SNATAddr)
	}
	return nil
}

// DatapathCounters parses the " datapath: name:value ..." line of `ebpfovs
// show` into a map; nil if there is no such line.
func DatapathCounters(show string) map[string]uint64 {
	i := strings.Index(show, " datapath:")
	if i < 0 {
		return nil
	}
	line, _, _ := strings.Cut(show[i+len(" datapath:"):], "\n")
	out := map[string]uint64{}
	for _, f := range strings.Fields(line) {
		name, value, ok := strings.Cut(f, ":")
		if v, err := strconv.ParseUint(value, 10, 64); ok && err == nil {
			out[name] = v
		}
	}
	return out
}
