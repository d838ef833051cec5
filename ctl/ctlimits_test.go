package ctl_test

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestCTLimitsUsage: malformed arguments of the limit commands exit 2 with
// one line naming the token, before any bridge is opened.
func TestCTLimitsUsage(t *testing.T) {
	testenv.RequirePrivileged(t) // the commands need root before they parse
	c := newCLI(t, "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ct-set-maxconns"}, "ct-set-maxconns: expects one argument, MAXCONNS"},
		{[]string{"ct-set-maxconns", "abc"}, "ct-set-maxconns: abc: maxconns missing or malformed"},
		{[]string{"ct-set-maxconns", "12x"}, "ct-set-maxconns: 12x: maxconns missing or malformed"},
		{[]string{"ct-set-maxconns", "4294967296"}, "ct-set-maxconns: 4294967296: maxconns missing or malformed"},
		{[]string{"ct-set-maxconns", "1", "2"}, "ct-set-maxconns: expects one argument"},
		{[]string{"ct-get-maxconns", "x"}, "ct-get-maxconns: x: unexpected argument"},
		{[]string{"ct-get-nconns", "x"}, "ct-get-nconns: x: unexpected argument"},
		{[]string{"ct-set-limits"}, "ct-set-limits: expects default=LIMIT or zone=ZONE,limit=LIMIT"},
		{[]string{"ct-set-limits", "default=x"}, "ct-set-limits: default=x: invalid default limit"},
		{[]string{"ct-set-limits", "zone=3"}, "ct-set-limits: zone=3: failed to parse zone limit"},
		{[]string{"ct-set-limits", "zone=3,limit=x"}, "ct-set-limits: zone=3,limit=x: failed to parse field limit"},
		{[]string{"ct-set-limits", "zone=65536,limit=1"}, "ct-set-limits: zone=65536,limit=1: failed to parse field zone"},
		{[]string{"ct-set-limits", "zone=3,limit="}, "ct-set-limits: zone=3,limit=: field limit missing value"},
		{[]string{"ct-set-limits", "zone=3,foo=1"}, "ct-set-limits: zone=3,foo=1: invalid zone limit field: foo"},
		{[]string{"ct-set-limits", "zone=3,limit=1", "default=2"}, "ct-set-limits: default=2: invalid zone limit field: default"},
		{[]string{"ct-del-limits"}, "ct-del-limits: expects one argument, zone=ZONE[,ZONE]..."},
		{[]string{"ct-del-limits", "zone=x"}, `ct-del-limits: zone=x: invalid zone "x"`},
		{[]string{"ct-del-limits", "zone=1,default"}, `ct-del-limits: zone=1,default: invalid zone "default"`},
		{[]string{"ct-del-limits", "foo"}, "ct-del-limits: foo: invalid argument"},
		{[]string{"ct-get-limits", "zone=70000"}, `ct-get-limits: zone=70000: invalid zone "70000"`},
		{[]string{"ct-get-limits", "zone=1", "zone=2"}, "ct-get-limits: zone=2: unexpected argument"},
	} {
		_, e, code := c.run(tc.args...)
		if code != 2 || strings.Count(e, "\n") != 1 || !strings.HasPrefix(e, "ebpfovs: "+tc.want) {
			t.Errorf("ebpfovs %s: exit %d, stderr %q; want exit 2 and one line starting %q", strings.Join(tc.args, " "), code, e, "ebpfovs: "+tc.want)
		}
	}
}

// dialRefused: a connection whose SYN conntrack could not commit never
// establishes through the strict lab flows (its SYN-ACK is +inv, dropped:
// mustNotDial), and ct-stats-show counted the refusal as stat.
func dialRefused(c *cli, vm *testenv.VM, sport int, to *testenv.VM, stat string) {
	c.t.Helper()
	was := c.ctStat(stat)
	c.mustNotDial(vm, sport, to, 5000)
	if !waitCount(func() uint64 { return c.ctStat(stat) }, was+1) {
		c.t.Fatalf("connection from port %d: ct-stats-show's %q did not grow within %v", sport, stat, dropWait)
	}
}

func dialOK(t *testing.T, vm *testenv.VM, sport int) net.Conn {
	t.Helper()
	conn, err := vm.DialTCPFrom(context.Background(), sport, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("connection from port %d: %v", sport, err)
	}
	exchange(t, conn)
	return conn
}

// TestCTLimitsLab: the conntrack lab's strict firewall with real TCP
// between the VMs. Over maxconns, or over the zone's limit, a new
// connection is not committed and does not establish; the refusals are
// counted; ct-get-limits shows the zone's count.
func TestCTLimitsLab(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	ln := vm2.ListenTCP(t, 5000)
	go echoServer(ln)
	for _, f := range []string{flow1, flow2, flow3, flow4, flow5} {
		c.must("add-flow", f)
	}
	c.must("del-flows", "--strict", "priority=0")
	c.must("add-flow", "priority=0, arp, actions=NORMAL")

	if got := c.must("ct-get-maxconns"); got != "16384\n" {
		t.Fatalf("ct-get-maxconns of a bridge made with --max-conns=16384: %q", got)
	}
	if got := c.must("ct-set-maxconns", "2"); got != "setting maxconns successful\n" {
		t.Fatalf("ct-set-maxconns printed %q", got)
	}
	if got := c.must("ct-get-maxconns"); got != "2\n" {
		t.Fatalf("ct-get-maxconns: %q", got)
	}
	a, b := dialOK(t, vm1, 56001), dialOK(t, vm1, 56002)
	dialRefused(c, vm1, 56003, vm2, "refused at maxconns")
	if got := c.must("ct-get-nconns"); got != "2\n" {
		t.Errorf("ct-get-nconns: %q, want 2", got)
	}
	dump := c.must("dump-conntrack")
	if strings.Count(dump, "\n") != 2 || strings.Contains(dump, "sport=56003") {
		t.Errorf("dump-conntrack over maxconns:\n%s", dump)
	}
	stats := c.must("ct-stats-show")
	if !regexp.MustCompile(`\n    refused at maxconns: [1-9]\d*\n    refused at zone limit: 0\n`).MatchString(stats) {
		t.Errorf("ct-stats-show after a refusal at maxconns:\n%s", stats)
	}
	a.Close()
	b.Close()
	if _, e, code := c.run("ct-set-maxconns", "16385"); code != 1 || !strings.Contains(e, "larger than the connection table (16384 entries") {
		t.Errorf("maxconns over the table size: exit %d, %q", code, e)
	}

	// Zone 0's own limit. The two connections finish closing first: a
	// last ACK of theirs after the flush would be a new connection to the
	// lab's flows (picked up mid-stream), and take the zone's one place.
	deadline := time.Now().Add(15 * time.Second)
	for {
		dump := c.must("dump-conntrack")
		if strings.Count(dump, "state=TIME_WAIT") == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.must("flush-conntrack")
	if got := c.must("ct-get-nconns"); got != "0\n" {
		t.Errorf("ct-get-nconns after a flush: %q", got)
	}
	c.must("ct-set-maxconns", "16384")
	c.must("ct-set-limits", "zone=0,limit=1", "zone=9,limit=0")
	a = dialOK(t, vm1, 56004)
	defer a.Close()
	dialRefused(c, vm1, 56005, vm2, "refused at zone limit")
	if got, want := c.must("ct-get-limits"), "default limit=0\nzone=0,limit=1,count=1\nzone=9,limit=0,count=0\n"; got != want {
		t.Errorf("ct-get-limits:\n%s\nwant:\n%s", got, want)
	}
	stats = c.must("ct-stats-show")
	if !regexp.MustCompile(`\n    refused at zone limit: [1-9]\d*\n`).MatchString(stats) {
		t.Errorf("ct-stats-show after a refusal at the zone limit:\n%s", stats)
	}

	// Without its own limit, zone 0 takes the default (unlimited).
	c.must("ct-del-limits", "zone=0,9")
	if got, want := c.must("ct-get-limits"), "default limit=0\n"; got != want {
		t.Errorf("ct-get-limits after ct-del-limits: %q, want %q", got, want)
	}
	if got, want := c.must("ct-get-limits", "zone=0,5"), "default limit=0\nzone=0,limit=0,count=1\nzone=5,limit=0,count=0\n"; got != want {
		t.Errorf("ct-get-limits zone=0,5: %q, want %q", got, want)
	}
	dialOK(t, vm1, 56006).Close()
	c.must("ct-set-limits", "default=2")
	if got, want := c.must("ct-get-limits", "zone=0"), "default limit=2\nzone=0,limit=2,count=2\n"; got != want {
		t.Errorf("ct-get-limits zone=0 with default=2: %q, want %q", got, want)
	}
	dialRefused(c, vm1, 56007, vm2, "refused at zone limit")
}
