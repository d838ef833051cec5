package ctl

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
)

func init() {
	register(&command{
		name:    "dump-conntrack",
		args:    "[-m] [-s] [zone=N]",
		summary: "print tracked connections as ovs-appctl dpctl/dump-conntrack",
		root:    true,
		help: `DESCRIPTION
    Prints one line per connection, in the format 'ovs-appctl
    dpctl/dump-conntrack' uses for the Linux kernel datapath:
      tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=55838,dport=5000),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5000,dport=55838),protoinfo=(state=SYN_SENT)
    Field order: proto, orig, reply, [zone], [mark], [labels], [protoinfo].
    TCP states are printed as OVS prints nf_conntrack's: SYN_SENT2 as
    SYN_SENT, SYN_RECV as ESTABLISHED, FIN_WAIT as FIN_WAIT_1, CLOSE as
    CLOSING. Expired connections are not shown, and are removed.

OPTIONS
    -m, --more    also id= and status=
    -s, --stats   also packets/bytes per direction, start= and timeout=
    zone=N        only connections in conntrack zone N
`,
		flags: func(fs *pflag.FlagSet) {
			fs.BoolP("more", "m", false, "")
			fs.BoolP("stats", "s", false, "")
		},
		run: runDumpConntrack,
	})
	register(&command{
		name:    "ct-stats-show",
		args:    "[-m|verbose] [zone=N]",
		summary: "count connections by protocol, as dpctl/ct-stats-show",
		root:    true,
		help: `DESCRIPTION
    Prints the number of connections, in all or in one zone, by protocol,
    in the format of 'ovs-appctl dpctl/ct-stats-show'; with -m (or
    "verbose") also TCP connections per state. Then the datapath's
    conntrack pressure counters, which OVS does not have:
      invalid: packets conntrack found invalid
      commit refused: commits that were not stored, the sum of:
      refused at maxconns: ct-set-maxconns connections were live
      refused at zone limit: the zone's limit was reached (ct-set-limits)
      refused, table full: no room in the table (not expected while
        maxconns is at most the table's size)
      refused, no free NAT tuple: a ct(commit,nat(...)) found every
        address and port of its range taken (the packet is +inv)
      expired removed: expired connections the datapath removed, on
        lookup or in a sweep when a commit found no room (those dumps
        remove are not counted)
`,
		flags: func(fs *pflag.FlagSet) { fs.BoolP("more", "m", false, "") },
		run:   runCTStatsShow,
	})
	register(&command{
		name:    "ct-set-timeouts",
		args:    "zone=N [NAME=SECONDS...]",
		summary: "set a zone's conntrack timeouts (OVS zone timeout policy)",
		root:    true,
		help: `DESCRIPTION
    Sets the timeouts of connections in conntrack zone N, with the names of
    Open vSwitch's zone timeout policies: tcp_syn_sent, tcp_syn_recv,
    tcp_established, tcp_fin_wait, tcp_close_wait, tcp_last_ack,
    tcp_time_wait, tcp_close, tcp_syn_sent2, udp_first, udp_single,
    udp_multiple, icmp_first, icmp_reply, and other (any other protocol).
    udp_single is udp_first and icmp_reply is icmp_first: the kernel keeps
    one timeout for each pair, printed under the first name.
    0 restores nf_conntrack's default (e.g. tcp_established 432000 s,
    udp_first 30 s). A connection takes a new timeout at its next packet.
    Without NAME=SECONDS, prints the zone's policy.

EXAMPLE
    ebpfovs ct-set-timeouts zone=5 tcp_established=3600 udp_first=10
`,
		run: runCTSetTimeouts,
	})
	register(&command{
		name:    "ct-set-tcp-liberal",
		args:    "[on|off]",
		summary: "TCP window checks off (on) or on (off), like nf_conntrack_tcp_be_liberal",
		root:    true,
		help: `DESCRIPTION
    Conntrack checks TCP segments against the windows each side announced,
    as Linux's nf_conntrack does: data beyond the receiver's window, or an
    ACK for data never seen, is +inv. "on" turns those checks off, like the
    sysctl net.netfilter.nf_conntrack_tcp_be_liberal=1 (only the TCP state
    machine judges segments); "off", the default, turns them back on.
    Without an argument, prints the setting.
`,
		run: runCTSetTCPLiberal,
	})
	register(&command{
		name:    "flush-conntrack",
		args:    "[zone=N] [mark=X[/M]] [labels=Y[/M]] [ORIG-TUPLE [REPLY-TUPLE]]",
		summary: "delete tracked connections (dpctl/flush-conntrack syntax)",
		root:    true,
		help: `DESCRIPTION
    Deletes every connection, or those selected as 'ovs-appctl
    dpctl/flush-conntrack' of Open vSwitch 3.1 selects them on its kernel
    datapath. A tuple is a comma-separated list of ct_nw_src=, ct_nw_dst=
    (ct_ipv6_src=, ct_ipv6_dst=), ct_nw_proto=, ct_tp_src=, ct_tp_dst= (or
    icmp_id=, icmp_type=, icmp_code= for ICMP and ICMPv6).

    A full tuple -- both addresses and, but for ICMP, both ports, with no
    REPLY-TUPLE, mark= or labels= -- names one connection: the one in zone
    N (zone 0 without zone=) whose original or reply tuple it is. If there
    is none, flush-conntrack fails ("failed to flush conntrack"), as it does
    for a full tuple of a protocol other than TCP, UDP, ICMP and ICMPv6, or
    of an ICMP type that is neither a query nor a reply (OVS's kernel
    datapath cannot look those up).

    Anything else is compared with every connection, of zone N or of all
    zones: ORIG-TUPLE with each one's original tuple, REPLY-TUPLE with its
    reply tuple. Addresses and ports left out match anything, so a partial
    tuple flushes every connection it fits; but with ct_nw_proto=1 or 58,
    icmp_id, icmp_type and icmp_code left out are 0 and compared, in both
    tuples (as OVS does), so an echo is only selected with its reply
    tuple's identifier, e.g. 'ct_nw_proto=1,icmp_id=7,icmp_type=8' 'icmp_id=7'.

EXAMPLES
    ebpfovs flush-conntrack
    ebpfovs flush-conntrack zone=5
    ebpfovs flush-conntrack 'ct_nw_src=10.0.10.1,ct_nw_proto=6,ct_tp_dst=5000'
    ebpfovs flush-conntrack zone=5 'ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=6,ct_tp_src=5000,ct_tp_dst=48001'
`,
		run: runFlushConntrack,
	})
}

func runCTStatsShow(e *env, fs *pflag.FlagSet, args []string) error {
	verbose, _ := fs.GetBool("more")
	var rest []string
	for _, a := range args {
		if a == "verbose" {
			verbose = true
		} else {
			rest = append(rest, a)
		}
	}
	b, conns, err := openConntrack(e, "ct-stats-show", rest)
	if err != nil {
		return err
	}
	defer b.Close()
	w := e.stdout
	fmt.Fprint(w, dpctl.FormatStats(conns, verbose))
	counters, err := b.Counters()
	if err != nil {
		return fmt.Errorf("ct-stats-show: %w", err)
	}
	byName := map[string]uint64{}
	for _, c := range counters {
		byName[c.Name] = c.Value
	}
	maxconns, zone, full := byName["ct_maxconns_refused"], byName["ct_zone_limit_refused"], byName["ct_table_full"]
	nat := byName["ct_nat_failed"]
	fmt.Fprintf(w, "Datapath conntrack counters:\n")
	fmt.Fprintf(w, "    invalid: %d\n", byName["ct_invalid"])
	fmt.Fprintf(w, "    commit refused: %d\n", maxconns+zone+full+nat)
	fmt.Fprintf(w, "    refused at maxconns: %d\n", maxconns)
	fmt.Fprintf(w, "    refused at zone limit: %d\n", zone)
	fmt.Fprintf(w, "    refused, table full: %d\n", full)
	fmt.Fprintf(w, "    refused, no free NAT tuple: %d\n", nat)
	fmt.Fprintf(w, "    expired removed: %d\n", byName["ct_expired_removed"])
	return nil
}

func runCTSetTimeouts(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) == 0 || !strings.HasPrefix(args[0], "zone=") {
		return usagef("ct-set-timeouts: expects zone=N first")
	}
	z, _, err := dpctl.ParseZone(args[0])
	if err != nil {
		return usagef("ct-set-timeouts: %v", err)
	}
	set, err := loader.ParseTimeouts(args[1:])
	if err != nil {
		return usagef("ct-set-timeouts: %v", err)
	}
	b, err := loader.Open(e.opts)
	if err != nil {
		return fmt.Errorf("ct-set-timeouts: %w", err)
	}
	defer b.Close()
	if len(set) > 0 {
		if err := b.SetCTTimeouts(uint16(z), set); err != nil {
			return fmt.Errorf("ct-set-timeouts: %w", err)
		}
		return nil
	}
	tp, err := b.CTTimeouts(uint16(z))
	if err != nil {
		return fmt.Errorf("ct-set-timeouts: %w", err)
	}
	var parts []string
	for _, n := range loader.TimeoutNames() {
		if v, ok := tp[n]; ok {
			parts = append(parts, fmt.Sprintf("%s=%d", n, v))
		}
	}
	if len(parts) == 0 {
		parts = []string{"(defaults)"}
	}
	fmt.Fprintf(e.stdout, "zone=%d %s\n", z, strings.Join(parts, " "))
	return nil
}

func runCTSetTCPLiberal(e *env, fs *pflag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usagef("ct-set-tcp-liberal: expects on or off")
	}
	b, err := loader.Open(e.opts)
	if err != nil {
		return fmt.Errorf("ct-set-tcp-liberal: %w", err)
	}
	defer b.Close()
	if len(args) == 0 {
		on, err := b.TCPLiberal()
		if err != nil {
			return fmt.Errorf("ct-set-tcp-liberal: %w", err)
		}
		fmt.Fprintln(e.stdout, map[bool]string{true: "on", false: "off"}[on])
		return nil
	}
	var on bool
	switch args[0] {
	case "on", "1":
		on = true
	case "off", "0":
	default:
		return usagef("ct-set-tcp-liberal: %s: expects on or off", args[0])
	}
	if err := b.SetTCPLiberal(on); err != nil {
		return fmt.Errorf("ct-set-tcp-liberal: %w", err)
	}
	return nil
}

// openConntrack opens the bridge and reads its connections, of one zone
// when the arguments hold zone=N (the only argument they may hold).
func openConntrack(e *env, cmd string, args []string) (*loader.Bridge, []dpctl.Conn, error) {
	var zone *uint16
	for _, a := range args {
		z, ok, err := dpctl.ParseZone(a)
		if !ok {
			return nil, nil, usagef("%s: %s: unexpected argument (expected zone=N)", cmd, a)
		}
		if err != nil {
			return nil, nil, usagef("%s: %v", cmd, err)
		}
		zone = &z
	}
	b, err := loader.Open(e.opts)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	p := e.newProgress(cmd)
	live, err := b.ConntrackProgress(zone, p.update)
	p.done()
	if err != nil {
		b.Close()
		return nil, nil, fmt.Errorf("%s: %w", cmd, err)
	}
	conns := make([]dpctl.Conn, len(live))
	for i := range live {
		conns[i] = live[i].Conn
	}
	return b, conns, nil
}

func runDumpConntrack(e *env, fs *pflag.FlagSet, args []string) error {
	more, _ := fs.GetBool("more")
	stats, _ := fs.GetBool("stats")
	b, conns, err := openConntrack(e, "dump-conntrack", args)
	if err != nil {
		return err
	}
	defer b.Close()
	w := bufio.NewWriter(e.stdout)
	for i := range conns {
		fmt.Fprintln(w, conns[i].Format(dpctl.FormatOptions{Stats: stats, Verbose: more}))
	}
	return w.Flush()
}

func runFlushConntrack(e *env, fs *pflag.FlagSet, args []string) error {
	f, err := dpctl.ParseFilter(args)
	if err != nil {
		return usagef("flush-conntrack: %v", err)
	}
	b, err := loader.Open(e.opts)
	if err != nil {
		return fmt.Errorf("flush-conntrack: %w", err)
	}
	defer b.Close()
	p := e.newProgress("flush-conntrack")
	_, err = b.FlushConntrackProgress(f, p.update)
	p.done()
	if err != nil {
		return fmt.Errorf("flush-conntrack: %w", err)
	}
	return nil
}
