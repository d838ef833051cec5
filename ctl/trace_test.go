package ctl_test

import (
	"strings"
	"testing"
)

// TestTrace: `ebpfovs trace` explains a packet through the loaded datapath
// without changing anything, unless --commit.
func TestTrace(t *testing.T) {
	c := newAttachedLab(t)
	for _, f := range []string{flow1, flow2, flow3, flow4, flow5,
		"table=0, priority=60, udp, actions=resubmit(,3),vnet2", "table=3, udp, actions=vnet1"} {
		c.must("add-flow", f)
	}
	syn := "in_port=vnet1,tcp,nw_src=10.0.10.1,nw_dst=10.0.10.2,tp_src=40000,tp_dst=5000,tcp_flags=syn"
	want := `Flow: tcp,in_port=vnet1,nw_src=10.0.10.1,nw_dst=10.0.10.2,tp_src=40000,tp_dst=5000,tcp_flags=syn

bridge("br0")
-------------
 0. priority=50,ct_state=-trk,tcp,in_port=vnet1
    ct(table=0)

recirculation 1, conntrack: ct_state=new|trk
-------------
 0. priority=50,ct_state=+new+trk,tcp,in_port=vnet1
    ct(commit),output:vnet2

Final conntrack state: ct_state=new|trk
Output: vnet2
Datapath verdict: redirect (TC_ACT_REDIRECT)
`
	if got := c.must("trace", syn); got != want {
		t.Fatalf("trace:\n%s\nwant:\n%s", got, want)
	}
	flows := c.must("dump-flows")
	if got := c.must("dump-conntrack"); got != "" {
		t.Fatalf("a trace without --commit changed conntrack: %q", got)
	}
	if strings.Contains(flows, "n_packets=1") {
		t.Fatalf("a trace without --commit counted packets:\n%s", flows)
	}

	want = `Flow: udp,in_port=vnet2,nw_src=10.0.10.2,nw_dst=10.0.10.1,tp_dst=53

bridge("br0")
-------------
 0. priority=60,udp
    resubmit(,3),output:vnet2
     3. udp
        output:vnet1

Final conntrack state: ct_state=0 (untracked)
Output: vnet1
Datapath verdict: redirect (TC_ACT_REDIRECT)
`
	if got := c.must("trace", "in_port=vnet2,udp,nw_src=10.0.10.2,nw_dst=10.0.10.1,tp_dst=53"); got != want {
		t.Fatalf("trace with a resubmit:\n%s\nwant:\n%s", got, want)
	}

	// IPv6, built from the description too.
	c.must("add-flow", "table=0, priority=70, tcp6, ipv6_dst=2001:db8::/64, tp_dst=443, actions=vnet2")
	got := c.must("trace", "in_port=vnet1,tcp6,ipv6_src=2001:db8::1,ipv6_dst=2001:db8::2,tp_dst=443,tcp_flags=syn")
	if !strings.Contains(got, " 0. priority=70,tcp6,ipv6_dst=2001:db8::/64,tp_dst=443\n    output:vnet2\n") || !strings.Contains(got, "Output: vnet2\n") {
		t.Fatalf("IPv6 trace:\n%s", got)
	}

	c.must("trace", "--commit", syn)
	if got, want := c.must("dump-conntrack"), ctLine(40000, "SYN_SENT")+"\n"; got != want {
		t.Fatalf("after trace --commit: %q, want %q", got, want)
	}
	if _, e, code := c.run("trace", "tcp,nw_src=10.0.10.1"); code != 2 || !strings.Contains(e, "needs an in_port") {
		t.Fatalf("trace without in_port: exit %d %q", code, e)
	}
	if _, e, code := c.run("trace", "in_port=9,tcp"); code != 1 || !strings.Contains(e, "in_port=9: no such port") {
		t.Fatalf("trace on a missing port: exit %d %q", code, e)
	}
}
