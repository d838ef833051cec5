package ctl

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

func init() {
	register(&command{
		name:    "trace",
		args:    "[--commit] PACKET",
		summary: "show what the datapath does with a packet, like ofproto/trace",
		root:    true,
		help: `DESCRIPTION
    Builds the packet PACKET describes, in flow syntax, e.g.
      "in_port=vnet1,tcp,nw_src=10.0.10.1,nw_dst=10.0.10.2,tp_src=40000,tp_dst=5000,tcp_flags=syn"
    (fields not given are zero), runs it through the bridge's real, loaded
    datapath program (BPF_PROG_TEST_RUN of the same pipeline, compiled with
    tracing), and prints every table it looked up, the flow that matched
    there, conntrack's verdict at each recirculation, the ports it would be
    sent to and the program's verdict. Nothing is sent.

OPTIONS
    --commit   let the packet change state as a real one would: conntrack
               commits and updates, MAC learning, counters. Without it the
               trace changes nothing.

EXAMPLE
    ebpfovs trace "in_port=vnet1,tcp,nw_src=10.0.10.1,nw_dst=10.0.10.2,tp_dst=5000,tcp_flags=syn"
`,
		flags: func(fs *pflag.FlagSet) { fs.Bool("commit", false, "") },
		run:   runTrace,
	})
}

// ctStateString prints ct_state bits as OVS's trace does: "new|trk".
func ctStateString(s uint32) string {
	if s == 0 {
		return "0 (untracked)"
	}
	names := []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}
	var parts []string
	for i, n := range names {
		if s&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}

func runTrace(e *env, fs *pflag.FlagSet, args []string) error {
	commit, _ := fs.GetBool("commit")
	if len(args) != 1 {
		return usagef("trace: expects one PACKET argument (quote it)")
	}
	b, pm, err := openBridge(e, "trace")
	if err != nil {
		return err
	}
	defer b.Close()
	desc, err := ofctl.ParseMatch(args[0], pm)
	if err != nil {
		return usagef("trace: %v", err)
	}
	if _, ok := desc.Match.Get(ofctl.FieldInPort); !ok {
		return usagef("trace: %q: the packet needs an in_port", args[0])
	}
	flows, err := b.Flows()
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	byID := map[uint32]loader.InstalledFlow{}
	for _, f := range flows {
		byID[f.ID] = f
	}
	res, err := b.Trace(desc, !commit)
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	w := e.stdout
	fmt.Fprintf(w, "Flow: %s\n", strings.TrimPrefix(desc.MatchString(pm), "priority=32768,"))
	tr := &res.Trace
	pass := ^uint32(0)
	for i := 0; i < int(tr.Nlookups) && i < len(tr.Lookup); i++ {
		l := tr.Lookup[i]
		if l.Pass != pass {
			pass = l.Pass
			if pass == 0 {
				fmt.Fprintf(w, "\nbridge(%q)\n-------------\n", b.Name())
			} else {
				fmt.Fprintf(w, "\nrecirculation %d, conntrack: ct_state=%s\n-------------\n", pass, ctStateString(l.CtState))
			}
		}
		indent := strings.Repeat("    ", int(l.Depth))
		if l.FlowId == 0xffffffff {
			fmt.Fprintf(w, "%s%2d. No match.\n", indent, l.Table)
			if l.Depth == 0 {
				fmt.Fprintf(w, "%s    drop\n", indent)
			}
			continue
		}
		f, ok := byID[l.FlowId]
		if !ok {
			fmt.Fprintf(w, "%s%2d. flow %d (changed since)\n", indent, l.Table, l.FlowId)
			continue
		}
		cookie := ""
		if f.Cookie != 0 {
			cookie = fmt.Sprintf(", cookie %#x", f.Cookie)
		}
		fmt.Fprintf(w, "%s%2d. %s%s\n", indent, l.Table, f.MatchString(pm), cookie)
		fmt.Fprintf(w, "%s    %s\n", indent, f.ActionsString(pm))
	}
	if tr.Nlookups == 0 {
		fmt.Fprintf(w, "\nThe packet's in_port is not one of the bridge's: passed to the stack.\n")
	}
	fmt.Fprintf(w, "\nFinal conntrack state: ct_state=%s\n", ctStateString(tr.CtState))
	var outs []string
	for i := 0; i < int(tr.Nout) && i < len(tr.OutPort); i++ {
		p := fmt.Sprint(tr.OutPort[i])
		if name, ok := pm.PortName(tr.OutPort[i]); ok {
			p = name
		}
		outs = append(outs, p)
	}
	if len(outs) == 0 {
		outs = []string{"drop"}
	}
	fmt.Fprintf(w, "Output: %s\n", strings.Join(outs, ","))
	verdict := map[uint32]string{loader.TCActOK: "pass (TC_ACT_OK)", loader.TCActShot: "drop (TC_ACT_SHOT)", loader.TCActRedirect: "redirect (TC_ACT_REDIRECT)"}[res.Verdict]
	if verdict == "" {
		verdict = fmt.Sprint(res.Verdict)
	}
	fmt.Fprintf(w, "Datapath verdict: %s\n", verdict)
	return nil
}
