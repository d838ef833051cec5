package ctl_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLearnVXLANTwoNodes: Neutron's br-tun way of finding remote MACs,
// with learn() in the datapath. Each node floods unknown unicast and
// broadcast into the tunnel (table 22) and learns, from what the tunnel
// brings, which tunnel and VNI a MAC is behind (table 10 into table 20).
// After one exchange, unicast takes the learned flows, not the flood; the
// learned flows print as Open vSwitch prints them, and del-flows of the
// learning flow with delete_learned removes them.
func TestLearnVXLANTwoNodes(t *testing.T) {
	tn := newTwoNodes(t)
	flows := []string{
		"table=0,priority=1,in_port=vnet1,actions=resubmit(,2)",
		"table=0,priority=1,in_port=vx1,tun_id=100,actions=resubmit(,10)",
		"table=0,priority=0,actions=drop",
		"table=2,priority=1,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
		"table=2,priority=0,actions=resubmit(,20)",
		"table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x9,delete_learned,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:vnet1",
		"table=20,priority=0,actions=resubmit(,22)",
		"table=22,priority=1,actions=set_tunnel:100,output:vx1",
	}
	for i, c := range tn.cli {
		c.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet1")
		c.must("add-port", "vx1", "type=vxlan", "options:remote_ip=172.31.0."+strconv.Itoa(2-i), "options:key=flow")
		c.must("del-flows")
		for _, f := range flows {
			c.must("add-flow", f)
		}
	}
	vm1, vm2 := tn.vms[0], tn.vms[1]
	if err := vm1.Ping(t, vm2.IP, 5, 5*time.Second); err != nil {
		t.Fatalf("VM 1 on node 1 to VM 2 on node 2, learning: %v", err)
	}
	nPackets := regexp.MustCompile(`n_packets=(\d+)`)
	packets := func(line string) int {
		m := nPackets.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no n_packets in %q", line)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	for i, c := range tn.cli {
		remote := tn.vms[1-i].MAC.String()
		out := c.must("dump-flows", "--no-names", "table=20")
		want := regexp.MustCompile(`(?m)^ cookie=0x9, duration=[0-9.]+s, table=20, n_packets=\d+, n_bytes=\d+, hard_timeout=300, priority=1,dl_dst=` +
			regexp.QuoteMeta(remote) + ` actions=load:0x64->NXM_NX_TUN_ID\[\],output:2$`)
		line := want.FindString(out)
		if line == "" {
			t.Fatalf("node %d: no learned flow for %s in table 20:\n%s", i+1, remote, out)
		}
		// Five echo requests and replies: from the first exchange on, the
		// node's unicast takes the learned flow, not the flood.
		if n := packets(line); n < 4 {
			t.Errorf("node %d: the learned flow took %d packets, want at least 4:\n%s", i+1, n, out)
		}
		if n := c.showCounter("learned"); n < 1 {
			t.Errorf("node %d: learned counter %d", i+1, n)
		}
	}
	if out := tn.cli[0].must("get-learn-limit"); !regexp.MustCompile(`^learn_limit: 8192\nlearned_flows: [1-9]\d*\n$`).MatchString(out) {
		t.Errorf("get-learn-limit: %q", out)
	}
	if _, e, code := tn.cli[0].run("set-learn-limit", "8193"); code != 2 || !strings.Contains(e, "at most 8192") {
		t.Errorf("set-learn-limit 8193: exit %d, %q; want 2", code, e)
	}
	// Deleting the learning flow, whose learn has delete_learned, removes
	// what it learned; unicast floods again (and learns again).
	tn.cli[0].must("del-flows", "--strict", "table=10,priority=1")
	if out := tn.cli[0].must("dump-flows", "--no-names", "table=20"); strings.Contains(out, "priority=1,") {
		t.Fatalf("learned flows left after the learning flow with delete_learned went:\n%s", out)
	}
}
