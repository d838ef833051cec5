package ctl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/ctl"
	"github.com/ebpfovs/ebpfovs/testenv"
)

// cli runs ebpfovs against one bridge of a test: its own bpffs and, for
// labs, the lab's host namespace.
type cli struct {
	t      *testing.T
	global []string
}

// newAttachedLab: a two-VM lab with vnet1 and vnet2 attached to a bridge,
// detached at cleanup; for tests about what comes after attach.
func newAttachedLab(t *testing.T) *cli {
	t.Helper()
	_, c := attachedLab(t)
	return c
}

// attachedLab: newAttachedLab, with the lab.
func attachedLab(t *testing.T) (*testenv.Lab, *cli) {
	t.Helper()
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	return lab, c
}

func newCLI(t *testing.T, netns string) *cli {
	g := []string{"--bpffs", testenv.TempBPFFS(t), "-b", "br0"}
	if netns != "" {
		g = append(g, "--netns", netns)
	}
	return &cli{t: t, global: g}
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	if len(args) > 0 && args[0] == "attach" {
		// Small bridges: tests run in parallel, and in 1 GB VMs.
		args = append([]string{"attach", "--max-flows=4096", "--max-conns=16384"}, args[1:]...)
	}
	var o, e bytes.Buffer
	code = ctl.Main(append(append([]string{}, c.global...), args...), strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	o, e, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("ebpfovs %s: exit %d: %s", strings.Join(args, " "), code, e)
	}
	return o
}

// waitConntrack polls dump-conntrack until want is one of its lines.
func (c *cli) waitConntrack(want string) {
	c.t.Helper()
	var out string
	// 10 s: in the kernel matrix's TCG VMs, with ./bpf's tests loading
	// datapaths beside these, a close took over 3 s to show (Linux 6.12,
	// session 9); each dump-conntrack here is a process start.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out = c.must("dump-conntrack")
		for _, l := range strings.Split(out, "\n") {
			if l == want {
				return
			}
		}
	}
	// What the datapath counted (ct_invalid, ct_race ...) says why.
	show, _, _ := c.run("show")
	if i := strings.Index(show, " datapath:"); i >= 0 {
		show = show[i:]
	}
	more, _, _ := c.run("dump-conntrack", "-m")
	c.t.Fatalf("dump-conntrack never showed\n  %s\nlast output:\n%s\n-m:\n%s\ncounters:%s", want, out, more, show)
}

func ctLine(sport int, state string) string {
	return fmt.Sprintf("tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=%d,dport=5000),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5000,dport=%d),protoinfo=(state=%s)", sport, sport, state)
}

// echoServer accepts connections and echoes what it reads until EOF, then closes.
func echoServer(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			io.Copy(c, c)
			c.Close()
		}()
	}
}

func exchange(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

const (
	flow1 = "table=0, priority=50, ct_state=-trk, tcp, in_port=vnet1, actions=ct(table=0)"
	flow2 = "table=0, priority=50, ct_state=+trk+new, tcp, in_port=vnet1, actions=ct(commit),vnet2"
	flow3 = "table=0, priority=50, ct_state=-trk, tcp, in_port=vnet2, actions=ct(table=0)"
	flow4 = "table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet2, actions=vnet1"
	flow5 = "table=0, priority=50, ct_state=+trk+est, tcp, in_port=vnet1, actions=vnet2"
)

// runLab is the Open vSwitch conntrack lab, step by step, with real TCP
// between the VM namespaces and the exact dump-conntrack lines.
func runLab(t *testing.T, mode string) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	ctx := context.Background()

	if mode == "tcx" {
		testenv.RequireKernel(t, "TCX", testenv.TCXMajor, testenv.TCXMinor)
	}
	if mode == "xdp" {
		// XDP on veth (docs/design.md, "XDP mode"): XDP_REDIRECT into a
		// veth needs NAPI on its peer (GRO on), and a redirected frame
		// loses the skb's checksum offload state, so the VMs compute
		// their checksums themselves (tx off).
		for _, vm := range lab.VMs {
			vm.NS.Run(t, "ethtool", "-K", vm.Iface, "gro", "on", "tx", "off")
		}
	}
	out := c.must("attach", "--mode", mode, "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	wantMode := map[string]string{"auto": "tcx", "tcx": "tcx", "tc": "tc", "xdp": "xdp+tcx"}[mode]
	if !testenv.HasTCX() && mode != "tcx" {
		wantMode = strings.Replace(wantMode, "tcx", "tc", 1) // before Linux 6.6 auto falls back to clsact
	}
	auto := "" // auto says what it took the device for
	if mode == "auto" {
		auto = " auto:veth"
	}
	if want := fmt.Sprintf(" 1(vnet1): mode:%s output:redirect_peer%s\n 2(vnet2): mode:%s output:redirect_peer%s\n", wantMode, auto, wantMode, auto); out != want {
		t.Fatalf("attach printed %q, want %q", out, want)
	}

	ln := vm2.ListenTCP(t, 5000)
	go echoServer(ln)

	// Stage 1: flow-1 and flow-2. The SYN is committed; VM2's answers take
	// the NORMAL flow untracked, so the connection works but stays SYN_SENT.
	c.must("add-flow", flow1)
	c.must("add-flow", flow2)
	conn, err := vm1.DialTCPFrom(ctx, 55838, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("VM1 -> VM2 with flows 1-2: %v", err)
	}
	exchange(t, conn)
	if got, want := c.must("dump-conntrack"), ctLine(55838, "SYN_SENT")+"\n"; got != want {
		t.Fatalf("stage 1 dump-conntrack:\n%s\nwant:\n%s", got, want)
	}
	conn.Close()

	// Stage 2: flow-3 and flow-4 track VM2's side: a new connection
	// establishes in conntrack, and closing it leaves TIME_WAIT.
	c.must("add-flow", flow3)
	c.must("add-flow", flow4)
	c.must("flush-conntrack")
	conn, err = vm1.DialTCPFrom(ctx, 55839, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("VM1 -> VM2 with flows 1-4: %v", err)
	}
	exchange(t, conn)
	c.waitConntrack(ctLine(55839, "ESTABLISHED"))
	// -m: what the kernel's TCP stacks negotiated, as conntrack saw it.
	more := c.must("dump-conntrack", "-m")
	re := regexp.MustCompile(`sport=55839,dport=5000\),reply=\(.*\),id=\d+,status=SEEN_REPLY\|ASSURED\|CONFIRMED,protoinfo=\(state_orig=ESTABLISHED,state_reply=ESTABLISHED,wscale_orig=\d+,wscale_reply=\d+,flags_orig=WINDOW_SCALE\|SACK_PERM[^,]*,flags_reply=WINDOW_SCALE\|SACK_PERM`)
	if !re.MatchString(more) {
		t.Errorf("dump-conntrack -m:\n%s\nwant a line matching %s", more, re)
	}
	conn.Close()
	c.waitConntrack(ctLine(55839, "TIME_WAIT"))

	// Stage 3: flow-5; established traffic from VM1 no longer needs NORMAL.
	c.must("add-flow", flow5)
	conn, err = vm1.DialTCPFrom(ctx, 55840, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("VM1 -> VM2 with flows 1-5: %v", err)
	}
	exchange(t, conn)
	c.waitConntrack(ctLine(55840, "ESTABLISHED"))
	conn.Close()

	dump := c.must("dump-flows", "--names")
	wantFlows := []string{
		"priority=50,ct_state=-trk,tcp,in_port=vnet1 actions=ct(table=0)",
		"priority=50,ct_state=+new+trk,tcp,in_port=vnet1 actions=ct(commit),output:vnet2",
		"priority=50,ct_state=-trk,tcp,in_port=vnet2 actions=ct(table=0)",
		"priority=50,ct_state=+est+trk,tcp,in_port=vnet2 actions=output:vnet1",
		"priority=50,ct_state=+est+trk,tcp,in_port=vnet1 actions=output:vnet2",
		"priority=0 actions=NORMAL",
	}
	lines := strings.Split(strings.TrimRight(dump, "\n"), "\n")
	if len(lines) != len(wantFlows) {
		t.Fatalf("dump-flows:\n%s\nwant %d flows", dump, len(wantFlows))
	}
	for i, l := range lines {
		re := `^ cookie=0x0, duration=\d+(?:\.\d{3})?s, table=0, n_packets=(\d+), n_bytes=\d+, ` + regexp.QuoteMeta(wantFlows[i]) + `$`
		m := regexp.MustCompile(re).FindStringSubmatch(l)
		if m == nil {
			t.Errorf("dump-flows line %d:\n  %s\nwant it to match\n  %s", i, l, re)
		} else if m[1] == "0" {
			t.Errorf("dump-flows line %d: no packets counted: %s", i, l)
		}
	}

	// With OVS's default NORMAL flow, the lab's flows do not stop VM2 from
	// opening connections: its SYN is +trk+new, which no lab flow matches,
	// so it falls to NORMAL -- as it does on Open vSwitch.
	ln1 := vm1.ListenTCP(t, 6000)
	go echoServer(ln1)
	conn, err = vm2.DialTCP(ctx, "10.0.10.1:6000")
	if err != nil {
		t.Fatalf("VM2 -> VM1 with the NORMAL flow: %v", err)
	}
	conn.Close()

	// The strict firewall: NORMAL only for ARP. Now the flows refuse VM2's
	// connections while VM1's still work.
	c.must("del-flows", "--strict", "priority=0")
	c.must("add-flow", "priority=0, arp, actions=NORMAL")
	// VM2's SYN is +trk+new, which no flow takes: seen on table_miss.
	c.mustNotDial(vm2, 0, vm1, 6000)
	conn, err = vm1.DialTCPFrom(ctx, 55841, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("VM1 -> VM2 through the strict flows: %v", err)
	}
	exchange(t, conn)
	c.waitConntrack(ctLine(55841, "ESTABLISHED"))
	conn.Close()

	show := c.must("show")
	if !strings.Contains(show, " 1(vnet1): addr:") || !strings.Contains(show, " 2(vnet2): addr:") ||
		!regexp.MustCompile(` datapath: packets:\d+ not_ours:\d+ table_miss:\d+`).MatchString(show) {
		t.Errorf("show:\n%s", show)
	}
	checkXDPCounters(t, show, mode == "xdp")
	stats := c.must("ct-stats-show", "-m")
	if !regexp.MustCompile(`^Connections Stats:\n    Total: \d+\n  TCP: \d+\n    Conn per TCP states:\n(\t  \[[A-Z_0-9]+\]=\d+\n)+Datapath conntrack counters:\n    invalid: \d+\n    commit refused: 0\n    refused at maxconns: 0\n    refused at zone limit: 0\n    refused, table full: 0\n    refused, no free NAT tuple: 0\n    expired removed: \d+\n$`).MatchString(stats) {
		t.Errorf("ct-stats-show -m:\n%q", stats)
	}

	// Detaching everything removes every pin and every attachment.
	c.must("detach")
	for _, vm := range lab.VMs {
		assertNoDatapath(t, lab.Host, vm.Port)
	}
}

func TestLabAuto(t *testing.T) { runLab(t, "auto") }
func TestLabTCX(t *testing.T)  { runLab(t, "tcx") } // skips before Linux 6.6
func TestLabTC(t *testing.T)   { runLab(t, "tc") }
func TestLabXDP(t *testing.T)  { runLab(t, "xdp") }

// checkXDPCounters checks show's XDP counters: in XDP mode the lab's flows
// all fit XDP, so it (not TC) carried every packet; otherwise XDP saw none.
func checkXDPCounters(t *testing.T, show string, xdpMode bool) {
	t.Helper()
	m := regexp.MustCompile(` xdp_packets:(\d+) xdp_to_tc:(\d+) xdp_aborted:(\d+)`).FindStringSubmatch(show)
	switch {
	case m == nil:
		t.Errorf("show: no xdp counters:\n%s", show)
	case xdpMode && (m[1] == "0" || m[2] != "0" || m[3] != "0"):
		t.Errorf("XDP mode: xdp_packets:%s xdp_to_tc:%s xdp_aborted:%s, want packets and no fallback", m[1], m[2], m[3])
	case !xdpMode && m[1] != "0":
		t.Errorf("TC mode: %s packets went through XDP", m[1])
	}
}

// assertNoDatapath checks that nothing of ebpfovs is left on a port: no TCX
// program and no cls_bpf filter.
func assertNoDatapath(t *testing.T, ns *testenv.NS, port string) {
	t.Helper()
	err := ns.Do(func() error {
		l, err := netlink.LinkByName(port)
		if err != nil {
			return err
		}
		if res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress}); err == nil && len(res.Programs) > 0 {
			return fmt.Errorf("%s: %d TCX programs still attached", port, len(res.Programs))
		}
		if x := l.Attrs().Xdp; x != nil && x.Attached {
			return fmt.Errorf("%s: XDP program %d still attached", port, x.ProgId)
		}
		filters, _ := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		if len(filters) > 0 {
			return fmt.Errorf("%s: %d tc filters left", port, len(filters))
		}
		qdiscs, _ := netlink.QdiscList(l)
		for _, q := range qdiscs {
			if q.Type() == "clsact" {
				return fmt.Errorf("%s: clsact qdisc left", port)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestAttachErrors: bad attaches say what is wrong in one line and leave
// the system as it was.
func TestAttachErrors(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3})
	c := newCLI(t, lab.Host.Path)
	bpffs := c.global[1]

	_, e, code := c.run("attach", "vnet1", "nosuch0")
	if code != 1 || e != fmt.Sprintf("ebpfovs: attach: nosuch0: no such interface in network namespace %s\n", lab.Host.Path) {
		t.Errorf("missing interface: exit %d, stderr %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(bpffs, "br0")); !os.IsNotExist(err) {
		t.Errorf("a failed first attach left the bridge behind: %v", err)
	}

	// The third of three fails (its number is taken): the first two are
	// detached again and the new bridge is removed.
	_, e, code = c.run("attach", "vnet1=1", "vnet2=2", "vnet3=2")
	if code != 1 || !strings.Contains(e, "port 2 is already in use") || strings.Count(e, "\n") != 1 {
		t.Errorf("third port fails: exit %d, stderr %q", code, e)
	}
	if _, err := os.Stat(filepath.Join(bpffs, "br0")); !os.IsNotExist(err) {
		t.Errorf("rollback left the bridge behind: %v", err)
	}
	for _, vm := range lab.VMs {
		assertNoDatapath(t, lab.Host, vm.Port)
	}

	// On an existing bridge, a failed attach leaves the earlier ports alone.
	c.must("attach", "vnet1")
	t.Cleanup(func() { c.run("detach") })
	if _, e, code = c.run("attach", "vnet2", "vnet3=1"); code != 1 {
		t.Errorf("conflicting number: exit %d, stderr %q", code, e)
	}
	show := c.must("show")
	if !strings.Contains(show, " 1(vnet1)") || strings.Contains(show, "vnet2") {
		t.Errorf("after a failed attach:\n%s", show)
	}
	assertNoDatapath(t, lab.Host, "vnet2")

	// Attaching again is idempotent, and says what show says.
	if out := c.must("attach", "vnet1"); !strings.Contains(out, "already attached") {
		t.Errorf("re-attach printed %q", out)
	} else if want := "output: " + strings.TrimPrefix(strings.Fields(out)[2], "output:") + "\n"; !strings.Contains(c.must("show"), want) {
		t.Errorf("re-attach printed %q, show does not say %q:\n%s", out, want, c.must("show"))
	}

	// XDP only where the driver runs it: a Linux bridge device has no
	// native XDP, and the kernel's generic mode is no substitute.
	lab.Host.Run(t, "ip", "link", "add", "nxdp0", "type", "bridge")
	if _, e, code = c.run("attach", "--mode", "xdp", "nxdp0"); code != 1 || strings.Count(e, "\n") != 1 ||
		!strings.Contains(e, "nxdp0: --mode xdp: the bridge device has no native XDP") {
		t.Errorf("--mode xdp on a bridge device: exit %d, stderr %q", code, e)
	}
	assertNoDatapath(t, lab.Host, "nxdp0")
	if show := c.must("show"); strings.Contains(show, "nxdp0") {
		t.Errorf("after a failed XDP attach:\n%s", show)
	}

	for _, bad := range [][]string{
		{"attach", "--mode", "bogus", "vnet2"},
		{"attach"},
		{"attach", "vnet2=0"},
		{"attach", "vnet2=x"},
		{"add-flow", "in_port=vnet1,actions=frobnicate"},
		{"add-flow", "tp_dst=80,actions=drop"},
		{"add-flow", "a", "b"},
		{"dump-conntrack", "zone=x"},
		{"flush-conntrack", "ct_nw_src=1.2.3"},
		{"nosuchcommand"},
	} {
		_, e, code := c.run(bad...)
		if code != 2 || strings.Count(e, "\n") != 1 || !strings.HasPrefix(e, "ebpfovs: ") {
			t.Errorf("ebpfovs %s: exit %d, stderr %q; want exit 2 and one line", strings.Join(bad, " "), code, e)
		}
	}
	if _, e, code := c.run("add-flow", "actions="+strings.TrimSuffix(strings.Repeat("load:1->NXM_NX_REG0[],", 17), ",")); code != 2 || !strings.Contains(e, "too many actions") {
		t.Errorf("add-flow of 17 actions: exit %d, stderr %q; want exit 2, too many actions", code, e)
	}
	before := c.must("dump-flows", "--no-stats")
	dir := t.TempDir()
	file := filepath.Join(dir, "flows")
	os.WriteFile(file, []byte("# lab\npriority=10,tcp,actions=NORMAL\n\npriority=11,tcp,tp_dst=99999,actions=NORMAL\n"), 0o644)
	_, e, code = c.run("add-flows", file)
	if code != 2 || !strings.Contains(e, ":4:") {
		t.Errorf("add-flows with a bad line 4: exit %d, stderr %q", code, e)
	}
	if after := c.must("dump-flows", "--no-stats"); after != before {
		t.Errorf("a failed add-flows changed the table:\n%s\nwas:\n%s", after, before)
	}
}

// TestDetachDecoys: a detach removes what ebpfovs pinned and nothing else:
// not a pin beside the bridge's directory, nor one of another tool's
// inside it (the directory is then left, and the command says so).
func TestDetachDecoys(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 1})
	c := newCLI(t, lab.Host.Path)
	bpffs := c.global[1]
	decoy := func(path string) {
		t.Helper()
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(path); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
	}
	beside := filepath.Join(bpffs, "decoy")
	decoy(beside)
	c.must("attach", "vnet1")
	c.must("detach")
	if _, err := os.Stat(beside); err != nil {
		t.Errorf("the pin beside the bridge: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bpffs, "br0")); !os.IsNotExist(err) {
		t.Errorf("the bridge's directory after detach: %v", err)
	}

	c.must("attach", "vnet1")
	inside := filepath.Join(bpffs, "br0", "other_tool_map")
	decoy(inside)
	_, e, code := c.run("detach")
	if code != 1 || !strings.Contains(e, "left in place, with what ebpfovs did not make there: other_tool_map") {
		t.Errorf("detach with another tool's pin inside: exit %d, stderr %q", code, e)
	}
	if _, err := os.Stat(inside); err != nil {
		t.Errorf("the other tool's pin: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(bpffs, "br0"))
	if len(entries) != 1 {
		t.Errorf("the bridge's directory holds %d entries, want only the other tool's", len(entries))
	}
	assertNoDatapath(t, lab.Host, lab.VMs[0].Port)
	os.Remove(inside)
	os.Remove(filepath.Join(bpffs, "br0"))
}

// TestHalfBuiltBridge: a bridge whose creation was cut short (the last
// pin, bridge_complete, missing: here removed, with a program, as a kill
// before them leaves it) is never used as it is: commands say so, attach
// builds it anew (with its NORMAL flow and trace program), and detach
// removes it.
func TestHalfBuiltBridge(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 1})
	c := newCLI(t, lab.Host.Path)
	dir := filepath.Join(c.global[1], "br0")
	halfBuild := func() {
		t.Helper()
		c.must("attach", "vnet1")
		c.must("detach", "vnet1") // the bridge stays, without ports
		for _, pin := range []string{"bridge_complete", "prog_tc_trace"} {
			if err := os.Remove(filepath.Join(dir, pin)); err != nil {
				t.Fatal(err)
			}
		}
	}
	halfBuild()
	if _, e, code := c.run("show"); code != 1 || !strings.Contains(e, "half-built") {
		t.Errorf("show of a half-built bridge: exit %d, stderr %q", code, e)
	}
	c.must("attach", "vnet1")
	if flows := c.must("dump-flows", "--no-stats"); !strings.Contains(flows, "priority=0 actions=NORMAL") {
		t.Errorf("the bridge built anew lacks its NORMAL flow:\n%s", flows)
	}
	if _, err := os.Stat(filepath.Join(dir, "prog_tc_trace")); err != nil {
		t.Errorf("the bridge built anew: %v", err)
	}
	c.must("detach")

	halfBuild()
	c.must("detach")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("detach of a half-built bridge left %s: %v", dir, err)
	}
	assertNoDatapath(t, lab.Host, lab.VMs[0].Port)
}
