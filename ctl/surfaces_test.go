package ctl_test

// Tests of command surfaces nothing else reached (issue 17, item 6):
// attach IFACE=OFPORT, detach of one port, flows on stdin, replace-flows'
// counters, dump-flows MATCH, diff-flows --names, ct-stats-show zone=N,
// flush-conntrack with both tuples, $EBPFOVS_BPFFS and $EBPFOVS_NETNS, and
// mounting the default bpffs. Each runs the command on a real kernel, with
// real traffic where the surface decides where packets go.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/ctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// surfRunIn is c.run with stdin: for FILE arguments of '-'.
func (c *cli) surfRunIn(stdin string, args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = ctl.Main(append(append([]string{}, c.global...), args...), strings.NewReader(stdin), &o, &e)
	return o.String(), e.String(), code
}

// surfMustIn is surfRunIn that must succeed.
func (c *cli) surfMustIn(stdin string, args ...string) string {
	c.t.Helper()
	o, e, code := c.surfRunIn(stdin, args...)
	if code != 0 {
		c.t.Fatalf("ebpfovs %s <<<%q: exit %d: %s", strings.Join(args, " "), stdin, code, e)
	}
	return o
}

// surfUDP sends msg from vm1's UDP port lport to srv (vm2's port port) and
// waits (passWait) for it there; then, if back is set, sends back from
// srv and waits for it on vm1's socket.
func surfUDP(t *testing.T, from *testenv.VM, lport int, to *testenv.VM, port int, srv udpPeer, msg string, back bool) {
	t.Helper()
	u := dialUDP(t, from, lport, to, port)
	send(t, u, msg)
	got, addr := srv.recvFrom(t)
	if got != msg {
		t.Fatalf("%v:%d read %q, want %q", to, port, got, msg)
	}
	if back {
		srv.sendTo(t, msg, addr)
		mustReceive(t, u, msg)
	}
}

// surfPins lists the entries of a bridge's pin directory.
func surfPins(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// surfMAC is the MAC address of device name in ns.
func surfMAC(t *testing.T, ns *testenv.NS, name string) string {
	t.Helper()
	var mac string
	if err := ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err == nil {
			mac = l.Attrs().HardwareAddr.String()
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return mac
}

// TestSurfAttachOFPort: attach IFACE=OFPORT gives the port that number
// (and an interface without one the lowest free number); attach, show and
// dump-flows say so, and flows written with the numbers forward real
// traffic between the ports they name.
func TestSurfAttachOFPort(t *testing.T) {
	testenv.HostOnly(t, "attach's IFACE=OFPORT")
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2 := lab.VM(1), lab.VM(2)
	out := c.must("attach", "vnet1=10", "vnet2=20", "vnet3")
	t.Cleanup(func() { c.run("detach") })
	for _, want := range []string{" 10(vnet1): mode:", " 20(vnet2): mode:", " 1(vnet3): mode:"} {
		if !strings.Contains(out, want) {
			t.Errorf("attach printed\n%s\nwant a line starting %q", out, want)
		}
	}
	show := c.must("show")
	for _, want := range []string{"bridge br0: 3 ports",
		" 10(vnet1): addr:" + surfMAC(t, lab.Host, "vnet1") + "\n",
		" 20(vnet2): addr:" + surfMAC(t, lab.Host, "vnet2") + "\n",
		" 1(vnet3): addr:" + surfMAC(t, lab.Host, "vnet3") + "\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("show:\n%s\nwant %q", show, want)
		}
	}

	// Only these flows: UDP from port 10 goes to port 20 and back.
	c.must("replace-flows", writeFlows(t, []string{
		"priority=100, arp, actions=NORMAL",
		"priority=10, udp, in_port=10, actions=output:20",
		"priority=10, udp, in_port=20, actions=output:10",
	}))
	if got, want := c.must("dump-flows", "--no-stats", "--no-names", "udp"), " priority=10,udp,in_port=10 actions=output:20\n priority=10,udp,in_port=20 actions=output:10\n"; got != want {
		t.Errorf("dump-flows --no-names udp:\n%s\nwant:\n%s", got, want)
	}
	if got, want := c.must("dump-flows", "--no-stats", "--names", "udp"), " priority=10,udp,in_port=vnet1 actions=output:vnet2\n priority=10,udp,in_port=vnet2 actions=output:vnet1\n"; got != want {
		t.Errorf("dump-flows --names udp:\n%s\nwant:\n%s", got, want)
	}
	srv := udpPeer{vm2.ListenUDP(t, 6000)}
	surfUDP(t, vm1, 46000, vm2, 6000, srv, "port 10 to 20 and back", true)
	fc := c.flowCounts()
	if a, b := fc.get(t, "in_port=vnet1"), fc.get(t, "in_port=vnet2"); a != 1 || b != 1 {
		t.Errorf("in_port=10 counted %d packets, in_port=20 %d; want 1 each", a, b)
	}
}

// TestSurfDetachOnePort: detach IFACE, in tc and in the default mode,
// removes that port only: its number, its pins and everything on its
// device (no TCX link, no filter, no clsact left); the other ports keep
// their attachments and forward, and the bridge stays until a detach
// without arguments.
func TestSurfDetachOnePort(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3})
	c := newCLI(t, lab.Host.Path)
	dir := filepath.Join(c.global[1], "br0")
	vm1, vm3 := lab.VM(1), lab.VM(3)
	devices := func() []string {
		var s []string
		lab.Host.Do(func() error {
			for _, vm := range lab.VMs {
				s = append(s, deviceState(vm.Port))
			}
			return nil
		})
		return s
	}
	nothing := devices()
	for i, mode := range []string{"tc", "auto"} {
		t.Run(mode, func(t *testing.T) {
			c.t = t
			c.must("attach", "--mode", mode, "vnet1", "vnet2", "vnet3")
			t.Cleanup(func() { c.run("detach") })
			before, pinsBefore := devices(), surfPins(t, dir)
			if before[1] == nothing[1] {
				t.Fatalf("attach left vnet2 as it was: %s", before[1])
			}

			if out := c.must("detach", "vnet2"); out != " 2(vnet2): detached\n" {
				t.Errorf("detach vnet2 printed %q", out)
			}
			after := devices()
			if after[1] != nothing[1] || after[0] != before[0] || after[2] != before[2] {
				t.Errorf("devices after detach vnet2:\n  %s\nbefore it:\n  %s\nbefore attach:\n  %s",
					strings.Join(after, "\n  "), strings.Join(before, "\n  "), strings.Join(nothing, "\n  "))
			}
			assertNoDatapath(t, lab.Host, "vnet2")
			pinsAfter := surfPins(t, dir)
			var gone []string
			for _, p := range pinsBefore {
				if !slices.Contains(pinsAfter, p) {
					gone = append(gone, p)
				}
			}
			// A TCX port has its link pinned; a tc port's filter is not.
			var wantGone []string
			if slices.Contains(pinsBefore, "link_port2") {
				wantGone = []string{"link_port2"}
			} else if mode == "auto" && testenv.HasTCX() {
				t.Errorf("no link_port2 pin for a TCX port: %q", pinsBefore)
			}
			if !slices.Equal(gone, wantGone) || len(pinsAfter) != len(pinsBefore)-len(wantGone) {
				t.Errorf("pins that went: %q, want %q (before %q, after %q)", gone, wantGone, pinsBefore, pinsAfter)
			}
			show := c.must("show")
			if !strings.Contains(show, "bridge br0: 2 ports") || !strings.Contains(show, " 1(vnet1): addr:") ||
				!strings.Contains(show, " 3(vnet3): addr:") || strings.Contains(show, "vnet2") {
				t.Errorf("show after detach vnet2:\n%s", show)
			}
			// The default NORMAL flow still carries vnet1 <-> vnet3.
			srv := udpPeer{vm3.ListenUDP(t, 6000+i)}
			surfUDP(t, vm1, 46010+i, vm3, 6000+i, srv, "vnet1 to vnet3 after detaching vnet2", true)

			if out := c.must("detach"); out != " 1(vnet1): detached\n 3(vnet3): detached\nbridge br0 removed\n" {
				t.Errorf("detach printed %q", out)
			}
			if d := devices(); !slices.Equal(d, nothing) {
				t.Errorf("devices after detach:\n  %s\nwant:\n  %s", strings.Join(d, "\n  "), strings.Join(nothing, "\n  "))
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the bridge's directory after detach: %v", err)
			}
		})
	}
}

// surfFlows is the table of TestSurfFlowCommands' dump-flows and
// diff-flows checks: two tables, several priorities, cookies and fields.
var surfFlows = []string{
	"table=0, priority=100, arp, actions=NORMAL",
	"table=0, priority=10, cookie=0x5, udp, in_port=vnet1, tp_dst=6000, actions=resubmit(,1)",
	"table=0, priority=10, tcp, in_port=vnet1, actions=drop",
	"table=0, priority=5, ip, nw_dst=10.0.10.2, actions=drop",
	"table=1, priority=20, cookie=0x5, udp, tp_dst=6000, actions=output:vnet2",
	"table=1, priority=0, actions=drop",
}

// TestSurfFlowCommands: add-flows - and replace-flows - read the flows
// from stdin; replace-flows keeps the counters of the flows it leaves as
// they were and starts changed and new ones at 0; dump-flows MATCH lists
// the flows MATCH covers, as ovs-ofctl does; diff-flows --names prints
// ports by name.
func TestSurfFlowCommands(t *testing.T) {
	testenv.HostOnly(t, "the flow commands' files, stdin and options")
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2 := lab.VM(1), lab.VM(2)
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	dump := func(args ...string) string {
		t.Helper()
		return c.must(append([]string{"dump-flows", "--no-stats", "--names"}, args...)...)
	}

	t.Run("stdin", func(t *testing.T) {
		c.t = t
		c.surfMustIn("# from stdin\npriority=100, arp, actions=NORMAL\n\npriority=10, udp, in_port=vnet1, actions=vnet2\n", "add-flows", "-")
		want := " priority=100,arp actions=NORMAL\n priority=10,udp,in_port=vnet1 actions=output:vnet2\n priority=0 actions=NORMAL\n"
		if got := dump(); got != want {
			t.Fatalf("after add-flows -:\n%s\nwant:\n%s", got, want)
		}
		if _, e, code := c.surfRunIn("priority=1,udp,actions=drop\npriority=2,udp,tp_dst=99999,actions=drop\n", "add-flows", "-"); code != 2 || !strings.Contains(e, "stdin:2:") {
			t.Errorf("add-flows - with a bad line 2: exit %d, stderr %q", code, e)
		}
		c.surfMustIn("priority=100, arp, actions=NORMAL\ntable=1, priority=7, icmp, actions=drop\n", "replace-flows", "-")
		want = " priority=100,arp actions=NORMAL\n table=1, priority=7,icmp actions=drop\n"
		if got := dump(); got != want {
			t.Fatalf("after replace-flows -:\n%s\nwant:\n%s", got, want)
		}
		if out, _, code := c.surfRunIn("priority=100, arp, actions=NORMAL\ntable=1, priority=7, icmp, actions=drop\n", "diff-flows", "-"); code != 0 || out != "" {
			t.Errorf("diff-flows - against the same flows: exit %d, %q", code, out)
		}
	})

	t.Run("replace-flows keeps counters", func(t *testing.T) {
		c.t = t
		same := "priority=10, udp, tp_dst=6000, actions=NORMAL"
		changed := "priority=10, udp, tp_dst=6001, actions=NORMAL"
		gone := "priority=10, udp, tp_dst=6002, actions=NORMAL"
		c.surfMustIn(strings.Join([]string{"priority=100, arp, actions=NORMAL", same, changed, gone}, "\n"), "replace-flows", "-")
		var srv []udpPeer
		for p := 6000; p <= 6003; p++ {
			srv = append(srv, udpPeer{vm2.ListenUDP(t, p)})
		}
		// 2 datagrams to 6000, 1 to 6001, 3 to 6002: each flow its own count.
		for i, port := range []int{6000, 6000, 6001, 6002, 6002, 6002} {
			surfUDP(t, vm1, 46020+i, vm2, port, srv[port-6000], "before", false)
		}
		before := c.flowCounts()
		if a, b, g := before.get(t, "tp_dst=6000"), before.get(t, "tp_dst=6001"), before.get(t, "tp_dst=6002"); a != 2 || b != 1 || g != 3 {
			t.Fatalf("before replace-flows: 6000 counted %d, 6001 %d, 6002 %d; want 2, 1, 3", a, b, g)
		}
		c.surfMustIn(strings.Join([]string{
			"priority=100, arp, actions=NORMAL",
			same,
			"priority=10, udp, tp_dst=6001, actions=output:vnet2", // changed actions
			"priority=10, udp, tp_dst=6003, actions=NORMAL",       // new
		}, "\n"), "replace-flows", "-")
		after := c.flowCounts()
		if n := after.get(t, "tp_dst=6000"); n != 2 {
			t.Errorf("the unchanged flow counted %d packets after replace-flows, want its 2", n)
		}
		if n := after.get(t, "tp_dst=6001"); n != 0 {
			t.Errorf("the changed flow counted %d packets after replace-flows, want 0 (it starts anew)", n)
		}
		if n := after.get(t, "tp_dst=6003"); n != 0 {
			t.Errorf("the new flow counted %d packets, want 0", n)
		}
		if n := after.get(t, "priority=100,arp"); n != before.get(t, "priority=100,arp") {
			t.Errorf("the unchanged ARP flow counted %d packets after replace-flows, before %d", n, before.get(t, "priority=100,arp"))
		}
		// And they count on from there.
		for i, port := range []int{6000, 6001, 6003} {
			surfUDP(t, vm1, 46030+i, vm2, port, srv[port-6000], "after", false)
		}
		after = c.flowCounts()
		for _, w := range []struct {
			port string
			n    uint64
		}{{"6000", 3}, {"6001", 1}, {"6003", 1}} {
			if n := after.get(t, "tp_dst="+w.port); n != w.n {
				t.Errorf("flow tp_dst=%s counted %d packets, want %d", w.port, n, w.n)
			}
		}
	})

	t.Run("dump-flows MATCH", func(t *testing.T) {
		c.t = t
		c.must("replace-flows", writeFlows(t, surfFlows))
		all := dump()
		lines := strings.Split(strings.TrimRight(all, "\n"), "\n")
		if len(lines) != len(surfFlows) {
			t.Fatalf("dump-flows:\n%s\nwant %d flows", all, len(surfFlows))
		}
		pick := func(i ...int) string {
			var s string
			for _, n := range i {
				s += lines[n] + "\n"
			}
			return s
		}
		for _, q := range []struct {
			match string
			want  string
		}{
			{"table=1", pick(4, 5)},
			{"udp", pick(1, 4)},                    // flows at least as specific as udp
			{"ip", pick(1, 2, 3, 4)},               // udp and tcp are ip
			{"in_port=vnet1", pick(1, 2)},          // a port by name
			{"in_port=1", pick(1, 2)},              // and by number
			{"table=0, udp, tp_dst=6000", pick(1)}, // table and fields together
			{"ip, nw_dst=10.0.10.0/24", pick(3)},   // a mask covers the exact address
			{"priority=10", all},                   // as ovs-ofctl: without --strict, the priority selects nothing
			{"cookie=0x5/-1", pick(1, 4)},
			{"out_port=vnet2", pick(4)},
			{"tcp, tp_dst=80", ""}, // the tcp flow has no tp_dst: not covered
		} {
			if got := dump(q.match); got != q.want {
				t.Errorf("dump-flows %q:\n%s\nwant:\n%s", q.match, got, q.want)
			}
		}
		// With counters too: the same lines after the statistics.
		if got := c.must("dump-flows", "--names", "table=1"); !strings.HasPrefix(got, " cookie=0x5, duration=") || !dumpLine.MatchString(strings.Split(got, "\n")[1]) || strings.Count(got, "\n") != 2 {
			t.Errorf("dump-flows --names table=1:\n%s", got)
		}
		if _, e, code := c.run("dump-flows", "tp_dst=80"); code != 2 || !strings.Contains(e, "dump-flows: ") {
			t.Errorf("dump-flows tp_dst=80 (no protocol): exit %d, stderr %q", code, e)
		}
	})

	t.Run("diff-flows --names", func(t *testing.T) {
		c.t = t
		c.must("replace-flows", writeFlows(t, surfFlows))
		file := slices.Clone(surfFlows)
		file[1] = "table=0, priority=10, cookie=0x5, udp, in_port=vnet1, tp_dst=6000, actions=output:vnet2"
		file = append(file[:2], file[3:]...) // without the tcp flow of vnet1
		file = append(file, "table=2, priority=1, in_port=vnet2, actions=vnet1")
		path := writeFlows(t, file)
		o, e, code := c.run("diff-flows", "--names", path)
		want := `-priority=10,tcp,in_port=vnet1 actions=drop
-priority=10,udp,in_port=vnet1,tp_dst=6000 cookie=0x5 actions=resubmit(,1)
+priority=10,udp,in_port=vnet1,tp_dst=6000 cookie=0x5 actions=output:vnet2
+table=2 priority=1,in_port=vnet2 actions=output:vnet1
`
		if code != 2 || o != want {
			t.Errorf("diff-flows --names: exit %d, stderr %q, printed\n%s\nwant exit 2 and\n%s", code, e, o, want)
		}
		// Without --names, the same by number.
		o, _, code = c.run("diff-flows", path)
		if wantNum := strings.NewReplacer("vnet1", "1", "vnet2", "2").Replace(want); code != 2 || o != wantNum {
			t.Errorf("diff-flows: exit %d, printed\n%s\nwant exit 2 and\n%s", code, o, wantNum)
		}
	})
}

// TestSurfConntrackZonesTuples: ct-stats-show zone=N counts the
// connections of that zone only, and flush-conntrack with an orig and a
// reply tuple (as dpctl/flush-conntrack takes them) removes the
// connections that fit both, nothing that fits one only.
func TestSurfConntrackZonesTuples(t *testing.T) {
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, in_port=vnet1, udp, tp_dst=6000, actions=ct(commit,zone=5),vnet2",
		"priority=100, in_port=vnet1, tcp, tp_dst=5000, actions=ct(commit,zone=6),vnet2",
		"priority=100, in_port=vnet2, tcp, ct_state=-trk, actions=ct(zone=6,table=1)",
		"table=1, priority=100, in_port=vnet2, tcp, ct_state=+trk+est, actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	srv := udpPeer{vm2.ListenUDP(t, 6000)}
	surfUDP(t, vm1, 47100, vm2, 6000, srv, "zone 5", false)
	surfUDP(t, vm1, 47101, vm2, 6000, srv, "zone 5", false)
	ln := vm2.ListenTCP(t, 5000)
	c := mustDial(t, vm1, 47102, vm2, 5000)
	roundTrip(t, c, acceptOne(t, ln), "zone 6")
	udpA := ctEntry("udp", vm1, vm2, 47100, 6000, ",zone=5")
	udpB := ctEntry("udp", vm1, vm2, 47101, 6000, ",zone=5")
	tcpC := ctEntry("tcp", vm1, vm2, 47102, 5000, ",zone=6"+tcpState("ESTABLISHED"))
	l.wantConntrack([]string{udpA, udpB, tcpC})

	stats := func(args ...string) string {
		t.Helper()
		out := l.must(append([]string{"ct-stats-show"}, args...)...)
		head, _, ok := strings.Cut(out, "Datapath conntrack counters:\n")
		if !ok {
			t.Fatalf("ct-stats-show %v:\n%s", args, out)
		}
		return head
	}
	for _, q := range []struct {
		args []string
		want string
	}{
		{nil, "Connections Stats:\n    Total: 3\n  TCP: 1\n  UDP: 2\n"},
		{[]string{"zone=5"}, "Connections Stats:\n    Total: 2\n  UDP: 2\n"},
		{[]string{"zone=6"}, "Connections Stats:\n    Total: 1\n  TCP: 1\n"},
		{[]string{"-m", "zone=6"}, "Connections Stats:\n    Total: 1\n  TCP: 1\n    Conn per TCP states:\n\t  [ESTABLISHED]=1\n"},
		{[]string{"zone=0"}, "Connections Stats:\n    Total: 0\n"},
	} {
		if got := stats(q.args...); got != q.want {
			t.Errorf("ct-stats-show %v:\n%s\nwant:\n%s", q.args, got, q.want)
		}
	}
	if _, e, code := l.run("ct-stats-show", "zone=x"); code != 2 || !strings.Contains(e, "zone=x: failed to parse zone") {
		t.Errorf("ct-stats-show zone=x: exit %d, stderr %q", code, e)
	}

	// Tuples as dpctl/flush-conntrack takes them: ORIG then REPLY.
	orig := func(sport int) string {
		return fmt.Sprintf("ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=%d,ct_tp_dst=6000", sport)
	}
	reply := func(sport int) string {
		return fmt.Sprintf("ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=17,ct_tp_src=6000,ct_tp_dst=%d", sport)
	}
	// A's orig with B's reply: no connection has both.
	l.must("flush-conntrack", "zone=5", orig(47100), reply(47101))
	l.wantConntrack([]string{udpA, udpB, tcpC})
	// Both tuples of A: A goes.
	l.must("flush-conntrack", "zone=5", orig(47100), reply(47100))
	l.wantConntrack([]string{udpB, tcpC})
	// An empty orig and B's reply tuple: B goes; the TCP connection, in
	// another zone and protocol, stays.
	l.must("flush-conntrack", "", reply(47101))
	l.wantConntrack([]string{tcpC})
	// A reply tuple as the orig one fits nothing.
	l.must("flush-conntrack", "ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=6,ct_tp_src=5000,ct_tp_dst=47102",
		"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=6,ct_tp_src=47102,ct_tp_dst=5000")
	l.wantConntrack([]string{tcpC})
	l.must("flush-conntrack", "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=6,ct_tp_src=47102,ct_tp_dst=5000",
		"ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=6,ct_tp_src=5000,ct_tp_dst=47102")
	l.wantConntrack(nil)
	if _, e, code := l.run("flush-conntrack", orig(1), reply(1), "ct_nw_proto=17"); code != 2 || !strings.Contains(e, "invalid arguments") {
		t.Errorf("flush-conntrack with three tuples: exit %d, stderr %q", code, e)
	}
}

// surfVeth adds a veth pair with unique names to ns (both ends there, up)
// and returns the name of one end: a device a command given the wrong
// namespace cannot find anywhere else.
func surfVeth(t *testing.T, ns *testenv.NS) string {
	t.Helper()
	name, peer := testenv.UniqueName("sfv"), testenv.UniqueName("sfp")
	h := ns.MustHandle(t)
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peer}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{name, peer} {
		l, err := h.LinkByName(n)
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// TestSurfEnvironment: $EBPFOVS_BPFFS and $EBPFOVS_NETNS stand for
// --bpffs and --netns: with only them set, attach pins the bridge in that
// bpffs and attaches to the device of that namespace, show and detach
// find both; the options win over the variables.
func TestSurfEnvironment(t *testing.T) {
	testenv.HostOnly(t, "reading $EBPFOVS_BPFFS and $EBPFOVS_NETNS")
	testenv.RequirePrivileged(t)
	ns := testenv.NewNS(t, "eoe-")
	port := surfVeth(t, ns)
	bpffs := testenv.TempBPFFS(t)
	// A unique bridge: were the variable ignored, the default bpffs would
	// get this one, never anyone's br0.
	br := testenv.UniqueName("sfb")
	state := func() string {
		var s string
		ns.Do(func() error { s = deviceState(port); return nil })
		return s
	}
	nothing := state()
	t.Setenv("EBPFOVS_BPFFS", bpffs)
	t.Setenv("EBPFOVS_NETNS", ns.Name)
	t.Cleanup(func() {
		main("-b", br, "detach") // where the command took the variables to point
		main("--bpffs", bpffs, "--netns", ns.Name, "-b", br, "detach")
	})

	if o, e, code := main("-b", br, "attach", "--max-flows=4096", "--max-conns=16384", port); code != 0 || !strings.HasPrefix(o, " 1("+port+"): mode:") {
		t.Fatalf("attach with the variables: exit %d, stdout %q, stderr %q", code, o, e)
	}
	if _, err := os.Stat(filepath.Join(bpffs, br, "bridge_complete")); err != nil {
		t.Errorf("the bridge is not pinned in $EBPFOVS_BPFFS: %v", err)
	}
	if s := state(); s == nothing {
		t.Errorf("nothing attached to %s in $EBPFOVS_NETNS: %s", port, s)
	}
	mac := surfMAC(t, ns, port)
	// show reads the port's address from the namespace the variable names.
	if o, e, code := main("-b", br, "show"); code != 0 || !strings.Contains(o, " 1("+port+"): addr:"+mac+"\n") || !strings.Contains(o, "pinned at "+filepath.Join(bpffs, br)) {
		t.Errorf("show with the variables: exit %d, stderr %q:\n%s\nwant port 1 with addr %s", code, e, o, mac)
	}
	// The options win: another bpffs has no such bridge, and in the
	// caller's namespace there is no such device.
	if _, e, code := main("--bpffs", testenv.TempBPFFS(t), "-b", br, "show"); code != 1 || !strings.Contains(e, "no such bridge") {
		t.Errorf("--bpffs over $EBPFOVS_BPFFS: exit %d, stderr %q", code, e)
	}
	if _, e, code := main("--netns", "", "-b", br, "attach", port); code != 1 || !strings.Contains(e, port+": no such interface") {
		t.Errorf("--netns '' over $EBPFOVS_NETNS: exit %d, stderr %q", code, e)
	}
	if o, e, code := main("-b", br, "detach"); code != 0 || o != " 1("+port+"): detached\nbridge "+br+" removed\n" {
		t.Errorf("detach with the variables: exit %d, stdout %q, stderr %q", code, o, e)
	}
	if s := state(); s != nothing {
		t.Errorf("%s after detach: %s, want %s", port, s, nothing)
	}
	if _, err := os.Stat(filepath.Join(bpffs, br)); !os.IsNotExist(err) {
		t.Errorf("the bridge's directory after detach: %v", err)
	}
}

// surfBPFMounts is the mount table's lines for /sys/fs/bpf, in this
// process's mount namespace.
func surfBPFMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == "/sys/fs/bpf" {
			lines = append(lines, l)
		}
	}
	return lines
}

// surfMountScript runs in a private mount namespace: it unmounts every
// bpffs on /sys/fs/bpf there, then runs the command ($0, this test
// binary as the command) with the default --bpffs: attach, show, detach.
// The mount table is printed between the steps.
const surfMountScript = `set -e
while grep -q '^[^ ]* /sys/fs/bpf ' /proc/self/mounts; do umount -l /sys/fs/bpf; done
echo "before: $(grep -c ' /sys/fs/bpf' /proc/self/mounts || true) mounts"
"$0" -b "$1" --netns "$2" attach --max-flows=4096 --max-conns=16384 vnet1
echo "after: $(grep ' /sys/fs/bpf' /proc/self/mounts)"
ls /sys/fs/bpf/ebpfovs/"$1"/bridge_complete
"$0" -b "$1" --netns "$2" show
"$0" -b "$1" --netns "$2" detach
`

// TestSurfMountsDefaultBPFFS: with no bpffs mounted, the command mounts
// one on /sys/fs/bpf and works there. The test runs it in a private mount
// namespace (a child process's), where it unmounts /sys/fs/bpf first: the
// host's mounts are never touched.
func TestSurfMountsDefaultBPFFS(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 1})
	hostMounts := surfBPFMounts(t)
	br := testenv.UniqueName("sfm")
	cmd := exec.Command("sh", "-c", surfMountScript, os.Args[0], br, lab.Host.Path)
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "EBPFOVS_BPFFS=") && !strings.HasPrefix(v, "EBPFOVS_NETNS=") {
			cmd.Env = append(cmd.Env, v)
		}
	}
	cmd.Env = append(cmd.Env, envChild+"=1")
	// A new mount namespace; Go makes its mounts private (MS_REC|
	// MS_PRIVATE on /), so the unmount and the mount stay in it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	o := string(out)
	if !strings.Contains(o, "before: 0 mounts\n") {
		t.Errorf("/sys/fs/bpf was not unmounted in the child:\n%s", o)
	}
	if !strings.Contains(o, "after: bpf /sys/fs/bpf bpf ") {
		t.Errorf("no bpffs on /sys/fs/bpf after attach:\n%s", o)
	}
	if !strings.Contains(o, "bridge "+br+": 1 ports, 1 flows, 0 connections, pinned at /sys/fs/bpf/ebpfovs/"+br+"\n") || !strings.Contains(o, " 1(vnet1): addr:"+surfMAC(t, lab.Host, "vnet1")+"\n") ||
		!strings.Contains(o, "bridge "+br+" removed\n") {
		t.Errorf("attach, show, detach on the mounted bpffs:\n%s", o)
	}
	assertNoDatapath(t, lab.Host, "vnet1")
	if now := surfBPFMounts(t); !slices.Equal(now, hostMounts) {
		t.Errorf("the test's mounts of /sys/fs/bpf changed:\n%q\nwere:\n%q", now, hostMounts)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/bpf/ebpfovs", br)); !os.IsNotExist(err) {
		t.Errorf("the bridge appeared in the host's bpffs: %v", err)
	}
}
