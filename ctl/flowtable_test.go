package ctl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlowTableOps: mod-flows, replace-flows and diff-flows with OVS's
// semantics, through the command line.
func TestFlowTableOps(t *testing.T) {
	c := newAttachedLab(t)
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dump := func() string { return c.must("dump-flows", "--no-stats", "--no-names") }

	lab5 := write("lab", "# the OVS conntrack lab", flow1, flow2, flow3, flow4, flow5, "", "priority=0 actions=NORMAL")
	c.must("replace-flows", lab5)
	want := ` priority=50,ct_state=-trk,tcp,in_port=1 actions=ct(table=0)
 priority=50,ct_state=+new+trk,tcp,in_port=1 actions=ct(commit),output:2
 priority=50,ct_state=-trk,tcp,in_port=2 actions=ct(table=0)
 priority=50,ct_state=+est+trk,tcp,in_port=2 actions=output:1
 priority=50,ct_state=+est+trk,tcp,in_port=1 actions=output:2
 priority=0 actions=NORMAL
`
	if got := dump(); got != want {
		t.Fatalf("after replace-flows:\n%s\nwant:\n%s", got, want)
	}

	// diff-flows: the same table -> exit 0 and nothing; differences -> -/+ and exit 2.
	if o, e, code := c.run("diff-flows", lab5); code != 0 || o != "" {
		t.Fatalf("diff-flows against itself: exit %d %q %q", code, o, e)
	}
	other := write("other", flow1, flow2, flow3, "table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet2, actions=drop", "priority=0 actions=NORMAL", "table=3, udp, actions=vnet1")
	o, _, code := c.run("diff-flows", other)
	wantDiff := `-priority=50,ct_state=+est+trk,tcp,in_port=1 actions=output:2
-priority=50,ct_state=+est+trk,tcp,in_port=2 actions=output:1
+priority=50,ct_state=+est+trk,tcp,in_port=2 actions=drop
+table=3 udp actions=output:1
`
	if code != 2 || o != wantDiff {
		t.Fatalf("diff-flows: exit %d\n%s\nwant exit 2 and\n%s", code, o, wantDiff)
	}

	// mod-flows, loose: every tcp flow of vnet1 (any table, any ct_state).
	c.must("mod-flows", "tcp, in_port=vnet1, actions=drop")
	want = ` priority=50,ct_state=-trk,tcp,in_port=1 actions=drop
 priority=50,ct_state=+new+trk,tcp,in_port=1 actions=drop
 priority=50,ct_state=-trk,tcp,in_port=2 actions=ct(table=0)
 priority=50,ct_state=+est+trk,tcp,in_port=2 actions=output:1
 priority=50,ct_state=+est+trk,tcp,in_port=1 actions=drop
 priority=0 actions=NORMAL
`
	if got := dump(); got != want {
		t.Fatalf("after mod-flows:\n%s\nwant:\n%s", got, want)
	}
	// --strict: only the flow with exactly this match and priority.
	c.must("mod-flows", "--strict", "priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0)")
	if got := dump(); !strings.HasPrefix(got, " priority=50,ct_state=-trk,tcp,in_port=1 actions=ct(table=0)\n priority=50,ct_state=+new+trk,tcp,in_port=1 actions=drop\n") {
		t.Fatalf("after mod-flows --strict:\n%s", got)
	}
	// Nothing covered: OpenFlow 1.0 adds it.
	c.must("mod-flows", "table=2, udp, tp_dst=53, actions=vnet2")
	if got := dump(); !strings.HasSuffix(got, " table=2, udp,tp_dst=53 actions=output:2\n") {
		t.Fatalf("mod-flows that covers nothing should add:\n%s", got)
	}

	// Conntrack timeout policies by zone.
	c.must("ct-set-timeouts", "zone=3", "udp_first=5", "tcp_established=600")
	if got := c.must("ct-set-timeouts", "zone=3"); got != "zone=3 tcp_established=600 udp_first=5\n" {
		t.Fatalf("ct-set-timeouts zone=3: %q", got)
	}
	c.must("ct-set-timeouts", "zone=3", "udp_first=0", "tcp_established=0")
	if got := c.must("ct-set-timeouts", "zone=3"); got != "zone=3 (defaults)\n" {
		t.Fatalf("after resetting: %q", got)
	}
	if _, e, code := c.run("ct-set-timeouts", "zone=3", "tcp_bogus=1"); code != 2 || !strings.Contains(e, "tcp_bogus=1: unknown timeout") {
		t.Fatalf("bad name: exit %d %q", code, e)
	}

	// A bad line in replace-flows changes nothing.
	before := dump()
	bad := write("bad", flow1, "priority=5,tcp,tp_dst=80000,actions=drop")
	if _, e, code := c.run("replace-flows", bad); code != 2 || !strings.Contains(e, "bad:2:") {
		t.Fatalf("replace-flows with a bad line 2: exit %d %q", code, e)
	}
	if got := dump(); got != before {
		t.Fatalf("a failed replace-flows changed the table:\n%s", got)
	}
}
