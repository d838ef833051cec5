package ctl_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestPatchPorts: two bridges joined by a pair of patch ports carry VM 1's
// traffic (on br0) to VM 2 (on br1) and back, in the kernel; a missing
// peer, a peer on the same bridge or not a patch port, and a loop between
// the bridges are each one line or one counter.
func TestPatchPorts(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c0 := newCLI(t, lab.Host.Path)
	c1 := &cli{t: t, global: append([]string{}, c0.global...)}
	c1.global[3] = "br1" // -b br1, the same bpffs and namespace
	t.Cleanup(func() { c0.run("detach"); c1.run("detach") })
	vm1, vm2 := lab.VMs[0], lab.VMs[1]

	c0.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet1")
	if out := c0.must("add-port", "p0", "type=patch", "options:peer=p1"); !strings.Contains(out, "2(p0): mode:patch output:none (no peer yet)") {
		t.Errorf("add-port p0: %q", out)
	}
	c1.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet2")
	if out := c1.must("add-port", "p1", "type=patch", "options:peer=p0"); !strings.Contains(out, "2(p1): mode:patch output:tail call") {
		t.Errorf("add-port p1: %q", out)
	}
	show := c0.must("show")
	for _, want := range []string{" 2(p0): addr:unknown\n     mode: patch, output: tail call to br1 port 2(p1)\n", "     type: patch\n     options: {peer=p1}\n"} {
		if !strings.Contains(show, want) {
			t.Errorf("br0's show lacks %q:\n%s", want, show)
		}
	}

	// NORMAL on br0 floods to p0, NORMAL on br1 takes it from p1.
	if err := vm1.Ping(t, vm2.IP, 3, 5*time.Second); err != nil {
		t.Fatalf("VM 1 on br0 to VM 2 on br1 through patch ports: %v", err)
	}
	for _, b := range []*cli{c0, c1} {
		sh := b.must("show")
		if !regexpMatch(`2\(p[01]\): addr:unknown\n.*\n.*\n.*\n     rx packets:[1-9]\d* bytes:\d+ dropped:0\n     tx packets:[1-9]`, sh) {
			t.Errorf("patch port counters on both sides:\n%s", sh)
		}
	}

	// Bad peers: one line, exit 2, nothing added.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"p2", "type=patch", "options:peer=vnet1"}, "p2: options:peer=vnet1: vnet1 is a port of this bridge (br0)"},
		{[]string{"p3", "type=patch", "options:peer=vnet2"}, "p3: options:peer=vnet2: vnet2 on bridge br1 is not a patch port with options:peer=p3"},
		{[]string{"p4", "type=patch", "options:peer=p1"}, "p4: options:peer=p1: p1 on bridge br1 is not a patch port with options:peer=p4"},
	} {
		if _, e, code := c0.run(append([]string{"add-port"}, tc.args...)...); code != 2 || !strings.Contains(e, tc.want) || strings.Count(e, "\n") != 1 {
			t.Errorf("add-port %v: exit %d %q, want exit 2 with %q", tc.args, code, e, tc.want)
		}
	}
	if strings.Count(c0.must("show"), "): addr:") != 2 {
		t.Error("a refused add-port added a port")
	}

	// A loop: each bridge sends UDP from its patch port back out of it.
	c0.must("add-flow", "priority=100,udp,in_port=vnet1,actions=p0")
	c0.must("add-flow", "priority=100,udp,in_port=p0,actions=in_port")
	c1.must("add-flow", "priority=100,udp,in_port=p1,actions=in_port")
	u, err := vm1.DialUDP(vm2.IP.String() + ":9")
	if err != nil {
		t.Fatal(err)
	}
	u.Write([]byte("loop"))
	u.Close()
	deadline := time.Now().Add(5 * time.Second)
	for c0.showCounter("patch_loop")+c1.showCounter("patch_loop") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("a patch loop was not ended and counted:\n%s%s", c0.must("show"), c1.must("show"))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Without its peer, p0 sends nothing, counted; with it back, traffic flows.
	c1.must("del-port", "p1")
	if !strings.Contains(c0.must("show"), "output: none: no port p1 on another bridge") {
		t.Errorf("br0 after its peer's del-port:\n%s", c0.must("show"))
	}
	before := c0.showCounter("patch_no_peer")
	if err := vm1.Ping(t, vm2.IP, 1, time.Second); err == nil {
		t.Error("VM 1 reached VM 2 with br1's patch port gone")
	}
	if c0.showCounter("patch_no_peer") <= before {
		t.Error("patch_no_peer did not count output to a patch port without its peer")
	}
	c1.must("add-port", "p1", "type=patch", "options:peer=p0")
	if err := vm1.Ping(t, vm2.IP, 2, 5*time.Second); err != nil {
		t.Fatalf("after p1 came back: %v", err)
	}
	// Removing a whole bridge leaves its peer waiting.
	c1.must("detach")
	if !strings.Contains(c0.must("show"), "output: none: no port p1 on another bridge") {
		t.Errorf("br0 after br1's removal:\n%s", c0.must("show"))
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
