package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// LabFlows are the five flows of the ebpfovs/Open vSwitch conntrack lab
// (scripts/demo.sh, README.md): VM1 may open TCP connections to VM2, both
// directions go through conntrack, established traffic is forwarded. A new
// bridge also holds the default `priority=0 actions=NORMAL`; for the
// benchmarked traffic (TCP connections opened by VM1) every packet is
// handled by these five flows, never by NORMAL.
var LabFlows = []string{
	"table=0, priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit),vnet2",
	"table=0, priority=50, ct_state=-trk, tcp, in_port=vnet2, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet2, actions=vnet1",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet1, actions=vnet2",
}

// PolicyFlows come with the lab's flows on the switches that take the
// packet-rate measurements (D, E, F): new connections to port 22 are
// dropped by policy (the SYN flood's target), and VM1's UDP is forwarded
// to VM2 without conntrack (the 64-byte forwarding rate). Path C has the
// same in nftables.
var PolicyFlows = []string{
	"table=0, priority=60, ct_state=+trk+new, tcp, in_port=vnet1, tp_dst=22, actions=drop",
	"table=0, priority=60, udp, in_port=vnet1, actions=vnet2",
}

// ScaleMaxConns is the connection table size of paths E and F: the scale
// measurements fill it with up to a million connections.
const ScaleMaxConns = 1_100_000

// Path is one way of connecting VM1 and VM2, set up and ready for traffic.
type Path struct {
	// ID is the letter used in tables and ratios: A to H.
	ID string
	// Name describes the path in one short phrase.
	Name string
	// Unavailable, when not empty, is shown instead of results: the path
	// cannot be measured (yet).
	Unavailable string
	// VM1 and VM2 are the namespaces of the two VMs (eth0 at VM1IP, VM2IP).
	VM1, VM2 string
	// Host is the hypervisor namespace holding the switch ("" for A).
	Host string
	// Check, if set, verifies after some traffic that the path really
	// does what it claims (e.g. that connections are tracked) and returns
	// a one-line summary.
	Check func(ctx context.Context) (string, error)
	// Notes are facts about the setup worth printing (attach mode, ...).
	Notes []string
	// BPFProgPin is the pinned datapath program (E, F, G), for run-time
	// statistics.
	BPFProgPin string
	// OVSAppctl runs `ovs-appctl -t <vswitchd>` with the given arguments
	// (D only).
	OVSAppctl func(ctx context.Context, args ...string) (string, error)
	// Flows runs the path's flow tool on its bridge: `ovs-ofctl CMD
	// <bridge> ARGS` (D) or `ebpfovs CMD ARGS` (E, F, G), for the scale
	// measurements.
	Flows func(ctx context.Context, cmd string, args ...string) (string, error)
	// Ebpfovs runs `ebpfovs -b BRIDGE ARGS` in the path's bpffs and
	// hypervisor namespace, for a bridge of its own (E, F, G).
	Ebpfovs func(ctx context.Context, bridge string, args ...string) (string, error)
	// DumpConntrack dumps the connections of zone (D, E, F, G).
	DumpConntrack func(ctx context.Context, zone int) (string, error)
	// FlushConntrack removes the connections of zone (D, E, F, G).
	FlushConntrack func(ctx context.Context, zone int) (string, error)
	// SetUDPTimeout sets zone's UDP timeouts (unreplied and replied) to
	// secs (D, E, F, G): the scale rows keep a million connections alive for
	// longer than the default 30 s.
	SetUDPTimeout func(ctx context.Context, zone, secs int) error
	// Floods are the packet-rate measurements the path takes (probe.Flood
	// kinds): "udp" where VM1's UDP reaches VM2, "syn" where a policy drops
	// new connections to port 22 (C, D, E, F).
	Floods []string
	// Port is the switch's port of VM1 in Host ("" for A): its counters
	// say what entered the switch.
	Port string
	// Taps: the ports are tap devices the packet generator writes and
	// reads (I, J, K); there are no VMs, and only the packet rates apply.
	Taps bool
	// NFTTable is the nftables table of C and I (in Host), whose port-22
	// drop rule counts what the policy dropped.
	NFTTable string
}

// PolicyDrops is how many packets path p's policy dropped so far (the SYN
// flood's): the counter of its drop flow (dump-flows: D, E, F, J, K) or of
// its nftables rule (C, I). ok is false where the path has neither.
func PolicyDrops(ctx context.Context, p *Path) (n uint64, ok bool, err error) {
	var out string
	var re *regexp.Regexp
	switch {
	case p.Flows != nil:
		out, err = p.Flows(ctx, "dump-flows")
		re = regexp.MustCompile(`n_packets=(\d+),.*tp_dst=22`)
	case p.NFTTable != "":
		out, err = Run(ctx, InNetns(p.Host, "nft", "list", "table", "inet", p.NFTTable)...)
		re = regexp.MustCompile(`tcp dport 22 ct state new counter packets (\d+)`)
	default:
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, false, fmt.Errorf("path %s: no counter of the port-22 drop policy in:\n%s", p.ID, out)
	}
	n, err = strconv.ParseUint(m[1], 10, 64)
	return n, err == nil, err
}

// Options configure the paths.
type Options struct {
	// Ebpfovs is the ebpfovs binary.
	Ebpfovs string
	// OVSTxOff makes path D turn tx checksum offload off in the VMs
	// (`ethtool -K eth0 tx off`) instead of enabling OVS userspace TSO.
	OVSTxOff bool
}

// PathIDs are the paths Setup knows, in table order.
var PathIDs = []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M"}

// Setup builds path id (one of PathIDs) in env.
func Setup(ctx context.Context, env *Env, id string, opt Options) (*Path, error) {
	var (
		p   *Path
		err error
	)
	switch id {
	case "A":
		p, err = setupDirect(env)
	case "B":
		p, err = setupBridge(ctx, env, false)
	case "C":
		p, err = setupBridge(ctx, env, true)
	case "D":
		p, err = setupOVS(ctx, env, opt.OVSTxOff)
	case "E", "F", "G", "J", "K":
		p, err = setupEbpfovs(ctx, env, opt.Ebpfovs, id)
	case "H":
		p, err = setupRouterNAT(ctx, env)
	case "I":
		p, err = setupTapBridge(ctx, env)
	case "L", "M":
		p, err = setupVXLAN(ctx, env, opt.Ebpfovs, id)
	default:
		err = fmt.Errorf("unknown path %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", id, err)
	}
	return p, nil
}

// setupDirect is path A: one veth pair from VM1's eth0 to VM2's eth0, the
// physical limit of the lab.
func setupDirect(env *Env) (*Path, error) {
	p := &Path{ID: "A", Name: "direct veth pair", Floods: []string{"udp"}}
	l, err := env.buildLab(p.ID, testenv.LabOptions{Direct: true})
	if err != nil {
		return nil, err
	}
	p.VM1, p.VM2 = l.VM(1).NS.Name, l.VM(2).NS.Name
	return p, nil
}

// setupBridge is path B (a Linux bridge in the hypervisor namespace) or,
// with nft, path C: the same bridge with br_netfilter and an nftables
// stateful ruleset equivalent to the lab's flows.
func setupBridge(ctx context.Context, env *Env, nft bool) (*Path, error) {
	p := &Path{ID: "B", Name: "Linux bridge", Floods: []string{"udp"}, Port: "vnet1"}
	if nft {
		p.ID, p.Name, p.Floods = "C", "Linux bridge + nftables conntrack", []string{"udp", "syn"}
	}
	l, err := env.vethLab(p, testenv.LabOptions{})
	if err != nil {
		return nil, err
	}
	// STP off so the ports forward at once; no multicast snooping (no IGMP
	// queries or reports in the measurements).
	if _, err := l.AddBridge("br0"); err != nil {
		return nil, err
	}
	if !nft {
		// A new namespace has bridge-nf-call-iptables=1 once br_netfilter
		// is loaded: turn it off so B is the plain bridge.
		if brNetfilterLoaded() {
			for _, k := range []string{"iptables", "ip6tables", "arptables"} {
				if err := Sysctl(ctx, p.Host, "net.bridge.bridge-nf-call-"+k, "0"); err != nil {
					return nil, err
				}
			}
		}
		return p, nil
	}
	if err := nftablesOnBridge(ctx, env, p); err != nil {
		return nil, err
	}
	return p, nil
}

// nftablesOnBridge gives the bridge in p.Host br_netfilter and an
// nftables stateful ruleset equivalent to the lab's flows and PolicyFlows
// (paths C and I).
func nftablesOnBridge(ctx context.Context, env *Env, p *Path) error {
	if !brNetfilterLoaded() {
		if _, err := Run(ctx, "modprobe", "br_netfilter"); err != nil {
			return fmt.Errorf("br_netfilter is needed for nftables on bridged traffic: %w", err)
		}
	}
	if err := Sysctl(ctx, p.Host, "net.bridge.bridge-nf-call-iptables", "1"); err != nil {
		return err
	}
	// With br_netfilter, bridged IPv4 traverses the inet forward hook with
	// the bridge as both input and output device, so the VMs are told
	// apart by address (one address per port in the lab).
	table := strings.ReplaceAll(env.Tag, "-", "_") + "_" + strings.ToLower(p.ID)
	rules := fmt.Sprintf(`table inet %[1]s {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ip saddr %[2]s ip daddr %[3]s tcp dport 22 ct state new counter drop
		ip saddr %[2]s ip daddr %[3]s udp dport 9 accept
		ip saddr %[2]s ip daddr %[3]s meta l4proto tcp ct state new,established accept
		ip saddr %[3]s ip daddr %[2]s meta l4proto tcp ct state established accept
	}
}
`, table, VM1IP, VM2IP)
	file := filepath.Join(env.Dir, strings.ToLower(p.ID)+"-nft.rules")
	if err := os.WriteFile(file, []byte(rules), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if _, err := Run(ctx, InNetns(p.Host, "nft", "-f", file)...); err != nil {
		return err
	}
	host := p.Host
	p.NFTTable = table
	env.Cleanup.Push("delete nft table "+table, func() error {
		_, err := Run(context.Background(), InNetns(host, "nft", "delete", "table", "inet", table)...)
		return err
	})
	p.Notes = append(p.Notes, "ruleset: "+strings.Join(strings.Fields(rules), " "))
	p.Check = func(ctx context.Context) (string, error) {
		// No conntrack tool needed: the policy is drop, so traffic that
		// got through was accepted by the ct state rules.
		return "nftables table " + table + " with policy drop is in place", nil
	}
	return nil
}

// brNetfilterLoaded reports whether br_netfilter is there (built in or
// loaded), i.e. whether the net.bridge sysctls exist.
func brNetfilterLoaded() bool {
	_, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables")
	return err == nil
}

// setupEbpfovs is path E: ebpfovs attached to vnet1 and vnet2 (TC/TCX
// datapath) with the lab's five flows, its state pinned in a private bpffs.
// Path F is the same in XDP mode, the VMs' eth0 with GRO on and tx checksum
// offload off, as XDP redirects into a veth need. Path G is E with SNATFlows
// instead of the lab's flows: VM1's connections leave with source
// SNATAddr (see setupSNATVM2 for VM2's side).
func setupEbpfovs(ctx context.Context, env *Env, bin, id string) (*Path, error) {
	if bin == "" {
		return nil, errors.New("no ebpfovs binary given")
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("ebpfovs binary (make build): %w", err)
	}
	xdp, snat, taps := id == "F" || id == "K", id == "G", id == "J" || id == "K"
	p := &Path{ID: id, Name: "ebpfovs, TC mode", Floods: []string{"udp", "syn"}, Port: "vnet1"}
	mode, flows := "auto", slices.Concat(LabFlows, PolicyFlows)
	switch id {
	case "F":
		p.Name, mode = "ebpfovs, XDP mode", "xdp"
	case "G":
		p.Name, flows, p.Floods = "ebpfovs, TC mode, SNAT", SNATFlows, nil
	case "J":
		// auto gives taps XDP from Linux 6.9 (loader.DefaultAutoModes):
		// TC mode is asked for by name.
		p.Name, mode = "ebpfovs, TC mode, tap ports", "tc"
		if testenv.HasTCX() {
			mode = "tcx"
		}
	case "K":
		p.Name, mode = "ebpfovs, XDP mode, tap ports", "xdp"
	}
	if taps {
		if err := env.tapHost(ctx, p); err != nil {
			return nil, err
		}
		p.Notes = append(p.Notes, tapNote())
	} else if _, err := env.vethLab(p, testenv.LabOptions{}); err != nil {
		return nil, err
	}
	if xdp && !taps {
		for _, vm := range []string{p.VM1, p.VM2} {
			if _, err := Run(ctx, "ip", "netns", "exec", vm, "ethtool", "-K", "eth0", "gro", "on", "tx", "off"); err != nil {
				return nil, err
			}
		}
		p.Notes = append(p.Notes, "VMs: ethtool -K eth0 gro on tx off (XDP redirects into a veth need both)")
	}
	if snat {
		// VM1's MAC: ebpfovs rewrites addresses and ports, not MACs, and
		// nothing answers ARP for SNATAddr on this L2 path.
		if err := setupSNATVM2(ctx, p, VMMAC(1)); err != nil {
			return nil, err
		}
	}
	bpffs, err := env.mountBPFFS(p.ID)
	if err != nil {
		return nil, err
	}
	const bridge = "lab"
	ovs := func(ctx context.Context, args ...string) (string, error) {
		return RunLong(ctx, append([]string{bin, "--netns", p.Host, "-b", bridge, "--bpffs", bpffs}, args...)...)
	}
	// Room for the scale measurements' million connections.
	out, err := ovs(ctx, "attach", "--mode", mode, "--max-conns", fmt.Sprint(ScaleMaxConns), "vnet1", "vnet2")
	if err != nil {
		return nil, err
	}
	env.Cleanup.Push("ebpfovs detach "+p.ID, func() error {
		_, err := ovs(context.Background(), "detach")
		return err
	})
	p.Notes = append(p.Notes, "attach: "+strings.Join(strings.Fields(out), " "))
	if snat {
		p.Notes = append(p.Notes, "flows: "+strings.Join(SNATFlows, "; "))
	}
	file := filepath.Join(env.Dir, strings.ToLower(p.ID)+"-flows.txt")
	if err := os.WriteFile(file, []byte(strings.Join(flows, "\n")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", file, err)
	}
	if _, err := ovs(ctx, "add-flows", file); err != nil {
		return nil, err
	}
	p.Flows = func(ctx context.Context, cmd string, args ...string) (string, error) {
		return ovs(ctx, append([]string{cmd}, args...)...)
	}
	p.Ebpfovs = func(ctx context.Context, br string, args ...string) (string, error) {
		return RunLong(ctx, append([]string{bin, "--netns", p.Host, "-b", br, "--bpffs", bpffs}, args...)...)
	}
	p.DumpConntrack = func(ctx context.Context, zone int) (string, error) {
		return ovs(ctx, "dump-conntrack", fmt.Sprintf("zone=%d", zone))
	}
	p.FlushConntrack = func(ctx context.Context, zone int) (string, error) {
		return ovs(ctx, "flush-conntrack", fmt.Sprintf("zone=%d", zone))
	}
	p.SetUDPTimeout = func(ctx context.Context, zone, secs int) error {
		_, err := ovs(ctx, "ct-set-timeouts", fmt.Sprintf("zone=%d", zone),
			fmt.Sprintf("udp_first=%d", secs), fmt.Sprintf("udp_multiple=%d", secs))
		return err
	}
	p.BPFProgPin = filepath.Join(bpffs, bridge, loader.PinProgTCIngress)
	if xdp {
		p.BPFProgPin = filepath.Join(bpffs, bridge, loader.PinProgXDPIngress)
	}
	p.Check = func(ctx context.Context) (string, error) {
		if taps {
			return tapCheck(ctx, ovs, xdp)
		}
		out, err := ovs(ctx, "dump-conntrack")
		if err != nil {
			return "", err
		}
		if snat {
			// ebpfovs prints conntrack as dpctl/dump-conntrack does:
			// tcp,orig=(src=...,dst=...,...),reply=(src=...,dst=...,...).
			n, natted := CountSNAT(out, func(line string) bool { return strings.HasPrefix(line, "tcp,") })
			if err := checkSNAT(n, natted); err != nil {
				return "", fmt.Errorf("ebpfovs conntrack: %w", err)
			}
			return fmt.Sprintf("ebpfovs conntrack holds %d TCP connections VM1 -> VM2, all source-NATed (reply dst %s)", n, SNATAddr), nil
		}
		n := strings.Count(out, "tcp,orig=")
		if n == 0 {
			return "", errors.New("ebpfovs tracked no TCP connection")
		}
		if xdp {
			show, err := ovs(ctx, "show")
			if err != nil {
				return "", err
			}
			if strings.Contains(show, " xdp_packets:0 ") || !strings.Contains(show, " xdp_to_tc:0 ") {
				return "", fmt.Errorf("XDP did not carry the traffic: %s", show[strings.Index(show, " datapath:"):])
			}
		}
		return fmt.Sprintf("ebpfovs conntrack holds %d TCP connections", n), nil
	}
	return p, nil
}
