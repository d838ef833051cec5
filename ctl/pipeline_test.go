package ctl_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// pipelineFlows: a multi-table pipeline. Table 0 classifies by in_port
// and destination and puts the output port in reg0; table 1 is a stateful
// ACL by tp_dst (new connections only from vnet1, to TCP 5000 and UDP
// 5353); table 2 outputs to the port in reg0. Registers must survive the
// ct(table=1) recirculation for any of it to work.
var pipelineFlows = []string{
	"table=0, priority=100, arp, actions=NORMAL",
	"table=0, priority=10, ip, in_port=vnet1, nw_dst=10.0.10.2, actions=load:2->NXM_NX_REG0[],goto_table:1",
	"table=0, priority=10, ip, in_port=vnet1, nw_dst=10.0.10.3, actions=load:3->NXM_NX_REG0[],goto_table:1",
	"table=0, priority=10, ip, in_port=vnet2, nw_dst=10.0.10.1, actions=load:1->NXM_NX_REG0[],goto_table:1",
	"table=0, priority=10, ip, in_port=vnet3, nw_dst=10.0.10.1, actions=load:1->NXM_NX_REG0[],goto_table:1",
	"table=0, priority=0, actions=drop",
	"table=1, priority=100, ip, ct_state=-trk, actions=ct(table=1)",
	"table=1, priority=90, ip, ct_state=+trk+est, actions=goto_table:2",
	"table=1, priority=80, tcp, ct_state=+trk+new, in_port=vnet1, tp_dst=5000, actions=ct(commit),goto_table:2",
	"table=1, priority=80, udp, ct_state=+trk+new, in_port=vnet1, tp_dst=5353, actions=ct(commit),goto_table:2",
	"table=1, priority=0, actions=drop",
	"table=2, priority=0, actions=output:NXM_NX_REG0[]",
}

// flowCounts is dump-flows' n_packets by flow, each flow named by its
// table and the rest of its line after the counters.
type flowCounts map[string]uint64

var dumpLine = regexp.MustCompile(`^ cookie=0x0, duration=\d+(?:\.\d{3})?s, (table=\d+), n_packets=(\d+), n_bytes=\d+, (.*)$`)

func (c *cli) flowCounts() flowCounts {
	c.t.Helper()
	out := c.must("dump-flows", "--names")
	fc := flowCounts{}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		m := dumpLine.FindStringSubmatch(l)
		if m == nil {
			c.t.Fatalf("dump-flows line %q", l)
		}
		n, _ := strconv.ParseUint(m[2], 10, 64)
		fc[m[1]+" "+m[3]] = n
	}
	return fc
}

// get is the count of the one flow whose name contains every part.
func (fc flowCounts) get(t *testing.T, parts ...string) uint64 {
	t.Helper()
	var found []string
	for name := range fc {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(name, p)
		}
		if all {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		t.Fatalf("flows matching %q: %q, want exactly one", parts, found)
	}
	return fc[found[0]]
}

// delta tells how many packets each flow counted between two dumps.
func delta(t *testing.T, before, after flowCounts) flowCounts {
	t.Helper()
	d := flowCounts{}
	for name, n := range after {
		b, ok := before[name]
		if !ok || n < b {
			t.Fatalf("flow %q: %d packets, before %d (%v)", name, n, b, ok)
		}
		d[name] = n - b
	}
	return d
}

// surfWaitCounted waits (dropWait) until the flow named by parts has
// counted more than was packets: the proof that what (a packet the test
// sent) took that flow, where a quiet read window would only show that
// nothing arrived in time.
func (c *cli) surfWaitCounted(was uint64, what string, parts ...string) {
	c.t.Helper()
	if !waitCount(func() uint64 { return c.flowCounts().get(c.t, parts...) }, was+1) {
		c.t.Fatalf("%s: the flow %q counted no packet within %v\n%s", what, parts, dropWait, c.must("dump-flows"))
	}
}

// Flow names for get: table and distinguishing parts of the printed line.
var (
	fVM1toVM2  = []string{"table=0", "in_port=vnet1", "nw_dst=10.0.10.2"}
	fVM1toVM3  = []string{"table=0", "in_port=vnet1", "nw_dst=10.0.10.3"}
	fVM2toVM1  = []string{"table=0", "in_port=vnet2", "nw_dst=10.0.10.1"}
	fVM3toVM1  = []string{"table=0", "in_port=vnet3", "nw_dst=10.0.10.1"}
	fT0Drop    = []string{"table=0", "priority=0 "}
	fUntracked = []string{"table=1", "ct_state=-trk"}
	fEst       = []string{"table=1", "ct_state=+est+trk"}
	fNewTCP    = []string{"table=1", "tcp", "tp_dst=5000"}
	fNewUDP    = []string{"table=1", "udp", "tp_dst=5353"}
	fACLDrop   = []string{"table=1", "priority=0 "}
	fOutput    = []string{"table=2", "output:NXM_NX_REG0[]"}
)

// TestMultiTablePipeline runs real TCP and UDP between three VM
// namespaces through the pipeline above and checks, step by step, what
// got through, what was refused, and which flows counted the packets.
func TestMultiTablePipeline(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 3})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1", "vnet2", "vnet3")
	t.Cleanup(func() { c.run("detach") })
	c.must("replace-flows", writeFlows(t, pipelineFlows))
	vm1, vm2, vm3 := lab.VMs[0], lab.VMs[1], lab.VMs[2]
	ctx := context.Background()

	ln2 := vm2.ListenTCP(t, 5000)
	go echoServer(ln2)
	ln3 := vm3.ListenTCP(t, 5000)
	go echoServer(ln3)
	ln2b := vm2.ListenTCP(t, 5001)
	go echoServer(ln2b)
	ln1 := vm1.ListenTCP(t, 5000)
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			conn, err := ln1.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			conn.Close()
		}
	}()
	udp2 := vm2.ListenUDP(t, 5353)
	go func() { // a UDP echo
		buf := make([]byte, 64)
		for {
			n, from, err := udp2.ReadFromUDP(buf)
			if err != nil {
				return
			}
			udp2.WriteToUDP(buf[:n], from)
		}
	}()
	udp2b := vm2.ListenUDP(t, 5354)

	// Warm the ARP caches (ARP goes to NORMAL), so that every step below
	// counts IP packets only. Each ping's echo request is seen dropped
	// where it must be (surfWaitCounted), which also shows that its ARP
	// was answered; that ping gives up after 1 s decides nothing.
	for _, vm := range []*testenv.VM{vm2, vm3} {
		was := c.flowCounts().get(t, fACLDrop...)
		if err := vm1.Ping(t, vm.IP, 1, time.Second); err == nil {
			t.Fatalf("ping VM1 -> %v got through: ICMP is not allowed by the ACL", vm)
		}
		c.surfWaitCounted(was, fmt.Sprintf("ping VM1 -> %v", vm), fACLDrop...)
	}
	was := c.flowCounts().get(t, fT0Drop...)
	if err := vm2.Ping(t, vm3.IP, 1, time.Second); err == nil {
		t.Fatal("ping VM2 -> VM3 got through: table 0 has no flow for it")
	}
	c.surfWaitCounted(was, "ping VM2 -> VM3", fT0Drop...)

	// An allowed TCP connection: table 0 -> ACL (ct) -> output by reg0.
	tcpAllowed := func(from *testenv.VM, sport int, to *testenv.VM, fwd, back []string) {
		t.Helper()
		before := c.flowCounts()
		conn, err := from.DialTCPFrom(ctx, sport, to.IP.String()+":5000")
		if err != nil {
			t.Fatalf("%v -> %v TCP 5000 (allowed): %v", from, to, err)
		}
		exchange(t, conn)
		conn.Close()
		// Both sides closed: the last ACK ends the exchange.
		c.waitConntrack(ctLineTo(from, sport, to, 5000, "TIME_WAIT"))
		d := delta(t, before, c.flowCounts())
		out, in := d.get(t, fwd...), d.get(t, back...)
		if out < 4 || in < 3 { // SYN, ACK, data, FIN(+ACK) / SYN-ACK, data, FIN
			t.Errorf("%v -> %v: %d packets out, %d back; want at least 4 and 3", from, to, out, in)
		}
		if n := d.get(t, fNewTCP...); n != 1 {
			t.Errorf("%v -> %v: the +new TCP flow counted %d packets, want 1 (the SYN)", from, to, n)
		}
		// Each packet: one lookup in table 0, two in table 1 (before and
		// after ct), one in table 2.
		if n := d.get(t, fUntracked...); n != out+in {
			t.Errorf("%v -> %v: ct_state=-trk counted %d, want %d", from, to, n, out+in)
		}
		if n := d.get(t, fEst...); n != out+in-1 {
			t.Errorf("%v -> %v: +est counted %d, want %d (all but the SYN)", from, to, n, out+in-1)
		}
		if n := d.get(t, fOutput...); n != out+in {
			t.Errorf("%v -> %v: output:reg0 counted %d, want %d", from, to, n, out+in)
		}
		if n := d.get(t, fACLDrop...) + d.get(t, fT0Drop...); n != 0 {
			t.Errorf("%v -> %v: %d packets dropped", from, to, n)
		}
	}
	t.Run("VM1 to VM2 TCP 5000 is allowed", func(t *testing.T) { tcpAllowed(vm1, 41000, vm2, fVM1toVM2, fVM2toVM1) })
	t.Run("VM1 to VM3 TCP 5000 is allowed, output to the port in reg0", func(t *testing.T) { tcpAllowed(vm1, 41001, vm3, fVM1toVM3, fVM3toVM1) })

	// A refused connection: one SYN, dropped where want says (the drop
	// flow's count is waited for: it, not the dial's failing, shows the
	// drop); the dial gives up before the SYN would be retransmitted (1 s).
	tcpRefused := func(from, to *testenv.VM, port int, first, drop []string) {
		t.Helper()
		before := c.flowCounts()
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		if conn, err := from.DialTCP(short, to.IP.String()+":"+strconv.Itoa(port)); err == nil {
			conn.Close()
			t.Fatalf("%v -> %v TCP %d connected; the pipeline should refuse it", from, to, port)
		}
		c.surfWaitCounted(before.get(t, drop...), fmt.Sprintf("%v -> %v TCP %d", from, to, port), drop...)
		d := delta(t, before, c.flowCounts())
		if n := d.get(t, first...); n != 1 {
			t.Errorf("%v -> %v TCP %d: %q counted %d, want 1 (the SYN)", from, to, port, first, n)
		}
		if n := d.get(t, drop...); n != 1 {
			t.Errorf("%v -> %v TCP %d: the drop flow %q counted %d, want 1", from, to, port, drop, n)
		}
		if n := d.get(t, fOutput...); n != 0 {
			t.Errorf("%v -> %v TCP %d: %d packets output", from, to, port, n)
		}
	}
	t.Run("VM1 to VM2 TCP 5001 is refused by the ACL", func(t *testing.T) { tcpRefused(vm1, vm2, 5001, fVM1toVM2, fACLDrop) })
	t.Run("VM2 to VM1 TCP 5000 is refused: new connections only from vnet1", func(t *testing.T) {
		tcpRefused(vm2, vm1, 5000, fVM2toVM1, fACLDrop)
		select {
		case <-accepted:
			t.Error("VM1 accepted a connection from VM2")
		default:
		}
	})
	t.Run("VM2 to VM3 is refused in table 0", func(t *testing.T) { tcpRefused(vm2, vm3, 5000, fT0Drop, fT0Drop) })

	t.Run("VM1 to VM2 UDP 5353 is allowed, the reply is +est", func(t *testing.T) {
		before := c.flowCounts()
		conn, err := vm1.DialUDPFrom(41002, "10.0.10.2:5353")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "q" {
			t.Fatalf("UDP echo: %q, %v", buf[:n], err)
		}
		d := delta(t, before, c.flowCounts())
		for _, w := range []struct {
			flow []string
			n    uint64
		}{{fVM1toVM2, 1}, {fVM2toVM1, 1}, {fUntracked, 2}, {fNewUDP, 1}, {fEst, 1}, {fOutput, 2}, {fACLDrop, 0}, {fNewTCP, 0}} {
			if got := d.get(t, w.flow...); got != w.n {
				t.Errorf("%q counted %d, want %d", w.flow, got, w.n)
			}
		}
	})
	t.Run("VM1 to VM2 UDP 5354 is refused", func(t *testing.T) {
		before := c.flowCounts()
		conn, err := vm1.DialUDPFrom(41003, "10.0.10.2:5354")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
		// Seen dropped by the ACL's drop flow, not by a quiet read window.
		c.surfWaitCounted(before.get(t, fACLDrop...), "VM1 to VM2 UDP 5354", fACLDrop...)
		udp2b.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) // and no copy got through
		if n, _, err := udp2b.ReadFromUDP(make([]byte, 8)); err == nil {
			t.Fatalf("VM2 received %d bytes on UDP 5354", n)
		}
		d := delta(t, before, c.flowCounts())
		if n := d.get(t, fACLDrop...); n != 1 {
			t.Errorf("the ACL drop flow counted %d, want 1", n)
		}
		if n := d.get(t, fOutput...); n != 0 {
			t.Errorf("%d packets output", n)
		}
	})

	// The connections the ACL allowed, as conntrack has them.
	ct := c.must("dump-conntrack")
	for _, want := range []string{
		ctLineTo(vm1, 41000, vm2, 5000, "TIME_WAIT"),
		ctLineTo(vm1, 41001, vm3, 5000, "TIME_WAIT"),
		"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=41002,dport=5353),reply=(src=10.0.10.2,dst=10.0.10.1,sport=5353,dport=41002)",
	} {
		if !strings.Contains(ct, want+"\n") {
			t.Errorf("dump-conntrack:\n%s\nwant the line\n%s", ct, want)
		}
	}
	if n := strings.Count(ct, "\n"); n != 3 {
		t.Errorf("dump-conntrack: %d connections, want the 3 allowed ones:\n%s", n, ct)
	}
}

func writeFlows(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "flows")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctLineTo(from *testenv.VM, sport int, to *testenv.VM, dport int, state string) string {
	return "tcp,orig=(src=" + from.IP.String() + ",dst=" + to.IP.String() + ",sport=" + strconv.Itoa(sport) + ",dport=" + strconv.Itoa(dport) +
		"),reply=(src=" + to.IP.String() + ",dst=" + from.IP.String() + ",sport=" + strconv.Itoa(dport) + ",dport=" + strconv.Itoa(sport) +
		"),protoinfo=(state=" + state + ")"
}
