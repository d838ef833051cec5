package ctl_test

// End-to-end conntrack tests: real traffic between two VM namespaces
// through the attached datapath, the way Open vSwitch's
// tests/system-traffic.at checks its conntrack: flows in ovs-ofctl syntax,
// sockets in the VMs (crafted frames where no socket can produce the
// packet), and the verdicts read from whether traffic passes and from
// dump-conntrack. Every test also shows what must be refused.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// Bounds of the waits: traffic that must pass gets passWait; traffic that
// must be dropped is seen counted as dropped (waitCount) within dropWait.
// dropWait is generous: a drop that is counted ends the wait at once, and
// the TCG VMs of the kernel matrix can take seconds for a step (see
// waitConntrack). A quiet window of any length would prove nothing there.
const (
	passWait = 3 * time.Second
	dropWait = 10 * time.Second
)

// waitCount waits until count() reaches want, at most dropWait, and tells
// whether it did.
func waitCount(count func() uint64, want uint64) bool {
	for deadline := time.Now().Add(dropWait); ; time.Sleep(20 * time.Millisecond) {
		if count() >= want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// ctLab is a two-VM veth lab with vnet1 and vnet2 attached to a bridge.
type ctLab struct {
	*cli
	vm1, vm2 *testenv.VM
}

// newCTLab builds the lab and makes flows the bridge's whole table (no
// NORMAL flow: what no flow matches is dropped).
func newCTLab(t *testing.T, flows ...string) *ctLab {
	t.Helper()
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	l := &ctLab{cli: c, vm1: lab.VM(1), vm2: lab.VM(2)}
	l.replaceFlows(flows...)
	return l
}

// replaceFlows makes flows the bridge's table (replace-flows FILE).
func (l *ctLab) replaceFlows(flows ...string) {
	l.t.Helper()
	file := filepath.Join(l.t.TempDir(), "flows")
	if err := os.WriteFile(file, []byte(strings.Join(flows, "\n")+"\n"), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.must("replace-flows", file)
}

// conntrack returns the lines of dump-conntrack ARGS, sorted.
func (l *ctLab) conntrack(args ...string) []string {
	l.t.Helper()
	out := strings.TrimRight(l.must(append([]string{"dump-conntrack"}, args...)...), "\n")
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	slices.Sort(lines)
	return lines
}

// wantConntrack waits (bounded) until dump-conntrack ARGS prints exactly
// want, in any order; the last packets of an exchange may still be in
// flight when a socket call returns.
func (l *ctLab) wantConntrack(want []string, args ...string) {
	l.t.Helper()
	want = slices.Sorted(slices.Values(want))
	var got []string
	for deadline := time.Now().Add(passWait); ; time.Sleep(20 * time.Millisecond) {
		if got = l.conntrack(args...); slices.Equal(got, want) || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(got, want) {
		l.t.Fatalf("dump-conntrack %s:\n%s\nwant:\n%s", strings.Join(args, " "), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// flowPackets returns n_packets of the one flow whose dump-flows --names
// line contains text, e.g. "priority=200,ct_state=+inv+trk".
func (l *ctLab) flowPackets(text string) int {
	l.t.Helper()
	out := l.must("dump-flows", "--names")
	var found []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, text) {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		l.t.Fatalf("dump-flows: want one flow with %q, got:\n%s", text, out)
	}
	m := regexp.MustCompile(`n_packets=(\d+)`).FindStringSubmatch(found[0])
	n, _ := strconv.Atoi(m[1])
	return n
}

// ctStat returns one of ct-stats-show's datapath counters, e.g. "invalid"
// (+inv packets) or "refused at maxconns".
func (c *cli) ctStat(name string) uint64 {
	c.t.Helper()
	out := c.must("ct-stats-show")
	m := regexp.MustCompile(`(?m)^ +` + regexp.QuoteMeta(name) + `: (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		c.t.Fatalf("ct-stats-show: no %q counter:\n%s", name, out)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}

// ctEntry is a dump-conntrack line for a connection src:sport -> dst:dport;
// extra is what follows reply=(...): zone, mark, labels, protoinfo.
func ctEntry(proto string, src, dst *testenv.VM, sport, dport int, extra string) string {
	return fmt.Sprintf("%s,orig=(src=%s,dst=%s,sport=%d,dport=%d),reply=(src=%s,dst=%s,sport=%d,dport=%d)%s",
		proto, src.IP, dst.IP, sport, dport, dst.IP, src.IP, dport, sport, extra)
}

func tcpState(s string) string { return ",protoinfo=(state=" + s + ")" }

// addr is "IP:port" of vm.
func addr(vm *testenv.VM, port int) string {
	return net.JoinHostPort(vm.IP.String(), strconv.Itoa(port))
}

// dialTCP connects from vm's local port lport to to:port within wait.
func dialTCP(vm *testenv.VM, lport int, to *testenv.VM, port int, wait time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return vm.DialTCPFrom(ctx, lport, addr(to, port))
}

// mustDial is dialTCP that must succeed; the connection is closed at cleanup.
func mustDial(t *testing.T, vm *testenv.VM, lport int, to *testenv.VM, port int) net.Conn {
	t.Helper()
	c, err := dialTCP(vm, lport, to, port, passWait)
	if err != nil {
		t.Fatalf("connect %v:%d -> %v:%d: %v", vm, lport, to, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// mustNotDial checks that a connection from vm:lport (0: any port) to
// to:port does not establish (mustNotConnect).
func (c *cli) mustNotDial(vm *testenv.VM, lport int, to *testenv.VM, port int) {
	c.t.Helper()
	c.mustNotConnect(fmt.Sprintf("connect %v:%d -> %v:%d", vm, lport, to, port), func(ctx context.Context) (net.Conn, error) {
		return vm.DialTCPFrom(ctx, lport, addr(to, port))
	})
}

// mustNotConnect checks that dial does not connect: it dials, unbounded,
// until the datapath's drops (surfDrops) have grown -- a packet of the
// handshake dropped -- then stops the dial, which must not have connected
// by then. A dial given up after a quiet window proves nothing in a slow VM.
func (c *cli) mustNotConnect(what string, dial func(context.Context) (net.Conn, error)) {
	c.t.Helper()
	before := c.surfDrops()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		conn, err := dial(ctx)
		done <- result{conn, err}
	}()
	dropped := waitCount(c.surfDrops, before+1)
	cancel()
	if r := <-done; r.err == nil {
		r.conn.Close()
		c.t.Fatalf("%s: connected; the flows should refuse it", what)
	}
	if !dropped {
		c.t.Fatalf("%s: the datapath dropped nothing within %v (table_miss and the drop flows did not count)", what, dropWait)
	}
}

// acceptOne accepts one connection on ln within passWait; it is closed at
// cleanup.
func acceptOne(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(passWait):
		ln.Close() // ends the Accept
		t.Fatalf("accept: no connection within %v", passWait)
		return nil
	}
}

// send writes msg to c, which must not fail.
func send(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(passWait))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// receive reads exactly msg from c within wait, or returns why not.
func receive(c net.Conn, msg string, wait time.Duration) error {
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, len(msg)+64)
	got := 0
	for got < len(msg) {
		n, err := c.Read(buf[got:])
		got += n
		if err != nil {
			return fmt.Errorf("read %q: got %q: %w", msg, buf[:got], err)
		}
		if _, ok := c.(*net.UDPConn); ok {
			break // one datagram
		}
	}
	if string(buf[:got]) != msg {
		return fmt.Errorf("read %q: got %q", msg, buf[:got])
	}
	return nil
}

// readError reads once from c within wait and returns the error the read
// ends with: what the VM's socket learnt (ECONNREFUSED, EMSGSIZE, ...).
func readError(c net.Conn, wait time.Duration) error {
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err == nil {
		return fmt.Errorf("read %q, no error", buf[:n])
	}
	return err
}

// mustReceive is receive within passWait, failing the test.
func mustReceive(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := receive(c, msg, passWait); err != nil {
		t.Fatal(err)
	}
}

// mustNotReceive runs send, whose packet the flows must drop, and checks
// that they did: the datapath's drops (surfDrops) grow within dropWait,
// and nothing has arrived on c then. A quiet read window alone proves
// nothing in a slow VM.
func (c *cli) mustNotReceive(conn net.Conn, what string, send func()) {
	c.t.Helper()
	before := c.surfDrops()
	send()
	dropped := waitCount(c.surfDrops, before+1)
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 2048)
	n, err := conn.Read(buf)
	switch {
	case err == nil:
		c.t.Fatalf("%s: received %q; it should have been dropped", what, buf[:n])
	case !errors.Is(err, os.ErrDeadlineExceeded):
		c.t.Fatalf("%s: %v; want nothing at all (a timeout)", what, err)
	case !dropped:
		c.t.Fatalf("%s: the datapath dropped nothing within %v (table_miss and the drop flows did not count)", what, dropWait)
	}
}

// roundTrip sends msg from a to b and back, which must both pass.
func roundTrip(t *testing.T, a, b net.Conn, msg string) {
	t.Helper()
	send(t, a, msg)
	mustReceive(t, b, msg)
	send(t, b, msg)
	mustReceive(t, a, msg)
}

// udpPeer is a UDP socket in vm bound to port, replying with WriteTo.
type udpPeer struct {
	c *net.UDPConn
}

// recvFrom reads one datagram within passWait and returns its payload and
// sender.
func (p udpPeer) recvFrom(t *testing.T) (string, *net.UDPAddr) {
	t.Helper()
	p.c.SetReadDeadline(time.Now().Add(passWait))
	buf := make([]byte, 2048)
	n, from, err := p.c.ReadFromUDP(buf)
	if err != nil {
		t.Fatalf("UDP server: %v", err)
	}
	return string(buf[:n]), from
}

func (p udpPeer) sendTo(t *testing.T, msg string, to *net.UDPAddr) {
	t.Helper()
	if _, err := p.c.WriteToUDP([]byte(msg), to); err != nil {
		t.Fatalf("UDP server: write to %v: %v", to, err)
	}
}

// dialUDP is a connected UDP socket from vm:lport to to:port, closed at
// cleanup.
func dialUDP(t *testing.T, vm *testenv.VM, lport int, to *testenv.VM, port int) *net.UDPConn {
	t.Helper()
	c, err := vm.DialUDPFrom(lport, addr(to, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCTE2EZones: connections committed in zones 5 and 6 are separate
// tables. The replies are looked up in zone 5 only: a connection committed
// in zone 5 works, one committed in zone 6 is refused (its replies are
// +new in zone 5), dump-conntrack and flush-conntrack see each zone alone,
// and an established connection stops passing when its replies are looked
// up in another zone.
func TestCTE2EZones(t *testing.T) {
	replyLookup := "priority=100, in_port=vnet2, tcp, ct_state=-trk, actions=ct(zone=%d,table=1)"
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, in_port=vnet1, tcp, tp_dst=5000, actions=ct(commit,zone=5),vnet2",
		"priority=100, in_port=vnet1, tcp, tp_dst=5001, actions=ct(commit,zone=6),vnet2",
		fmt.Sprintf(replyLookup, 5),
		"table=1, priority=100, in_port=vnet2, tcp, ct_state=+trk+est, ct_zone=5, actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	ln5 := vm2.ListenTCP(t, 5000)
	vm2.ListenTCP(t, 5001)

	c5 := mustDial(t, vm1, 42000, vm2, 5000)
	s5 := acceptOne(t, ln5)
	roundTrip(t, c5, s5, "zone 5")
	in5 := ctEntry("tcp", vm1, vm2, 42000, 5000, ",zone=5"+tcpState("ESTABLISHED"))
	l.wantConntrack([]string{in5}, "zone=5")

	l.mustNotDial(vm1, 42001, vm2, 5001)
	in6 := ctEntry("tcp", vm1, vm2, 42001, 5001, ",zone=6"+tcpState("SYN_SENT"))
	l.wantConntrack([]string{in6}, "zone=6")
	l.wantConntrack([]string{in5}, "zone=5") // the replies in zone 5 committed nothing
	l.wantConntrack([]string{in5, in6})
	l.wantConntrack(nil, "zone=0")

	// flush-conntrack zone=6 leaves zone 5 alone.
	l.must("flush-conntrack", "zone=6")
	l.wantConntrack([]string{in5})
	roundTrip(t, c5, s5, "after flushing zone 6")

	// The replies looked up in zone 6 find nothing: +new, dropped.
	l.must("mod-flows", "--strict", fmt.Sprintf(replyLookup, 6))
	l.mustNotReceive(c5, "a zone 5 connection's reply looked up in zone 6", func() { send(t, s5, "zone 6 reply") })
	l.wantConntrack([]string{in5})
}

// ctMetaCase is one of the ct_mark and ct_label tests: connections to
// port 5000 are committed with setA, to 5001 with setB; the replies pass
// only if they match the reply flow's match.
type ctMetaCase struct {
	setA, setB     string // ct(commit,exec(...)) contents, e.g. set_field:1->ct_mark
	match          string // the reply flow's match on the connection's metadata
	dumpA, dumpB   string // what dump-conntrack prints for each connection
	changeA        string // set on A's connection by a later commit
	dumpChanged    string
	flushA, flushB string // flush-conntrack selector of only A, and only B
}

func runCTMeta(t *testing.T, c ctMetaCase) {
	commitA := "priority=100, in_port=vnet1, tcp, tp_dst=5000, actions=ct(commit,exec(%s)),vnet2"
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		fmt.Sprintf(commitA, c.setA),
		fmt.Sprintf("priority=100, in_port=vnet1, tcp, tp_dst=5001, actions=ct(commit,exec(%s)),vnet2", c.setB),
		"priority=100, in_port=vnet2, tcp, ct_state=-trk, actions=ct(table=0)",
		"priority=100, in_port=vnet2, tcp, ct_state=+trk+est, "+c.match+", actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	lnA := vm2.ListenTCP(t, 5000)
	vm2.ListenTCP(t, 5001)

	ca := mustDial(t, vm1, 43000, vm2, 5000)
	sa := acceptOne(t, lnA)
	roundTrip(t, ca, sa, "matching metadata")
	a := ctEntry("tcp", vm1, vm2, 43000, 5000, c.dumpA+tcpState("ESTABLISHED"))
	l.wantConntrack([]string{a})

	// B's SYN-ACK is tracked before its flow drops it: SYN_RECV, which
	// dump-conntrack prints as OVS does, ESTABLISHED.
	l.mustNotDial(vm1, 43001, vm2, 5001)
	b := ctEntry("tcp", vm1, vm2, 43001, 5001, c.dumpB+tcpState("ESTABLISHED"))
	l.wantConntrack([]string{a, b})

	// A later commit changes the metadata of A's connection: its replies
	// no longer match.
	l.must("mod-flows", "--strict", fmt.Sprintf(commitA, c.changeA))
	send(t, ca, "change")
	mustReceive(t, sa, "change")
	l.mustNotReceive(ca, "a reply after the connection's metadata changed", func() { send(t, sa, "refused") })
	changed := ctEntry("tcp", vm1, vm2, 43000, 5000, c.dumpChanged+tcpState("ESTABLISHED"))
	l.wantConntrack([]string{changed, b})

	// flush-conntrack by metadata: first a selector of B only, then of A.
	// The commit flows go first: A's client retransmits "change" (its ACK
	// rides on the dropped "refused"), and a retransmission committed after
	// the flush would bring A's connection back (seen in the Linux 6.1 VM).
	l.must("del-flows", "in_port=vnet1, tcp")
	l.must("flush-conntrack", c.flushB)
	l.wantConntrack([]string{changed})
	l.must("flush-conntrack", c.flushA)
	l.wantConntrack(nil)
}

// TestCTE2EMark: ct(commit,exec(set_field:1->ct_mark)) marks a connection
// and its replies match ct_mark=1, as system-traffic.at's "conntrack -
// ct_mark"; a connection committed with another mark is refused, and
// re-marking an established connection stops its replies.
func TestCTE2EMark(t *testing.T) {
	runCTMeta(t, ctMetaCase{
		setA: "set_field:1->ct_mark", setB: "set_field:3->ct_mark",
		match: "ct_mark=1",
		dumpA: ",mark=1", dumpB: ",mark=3",
		changeA: "set_field:2->ct_mark", dumpChanged: ",mark=2",
		flushA: "mark=2", flushB: "mark=1/1",
	})
}

// TestCTE2ELabel: the same with 128-bit ct_label, with bits in both
// halves and a masked match on the top bit.
func TestCTE2ELabel(t *testing.T) {
	runCTMeta(t, ctMetaCase{
		setA:    "set_field:0x80000000000000000000000000000001->ct_label",
		setB:    "set_field:0x1->ct_label",
		match:   "ct_label=0x80000000000000000000000000000000/0x80000000000000000000000000000000",
		dumpA:   ",labels=0x80000000000000000000000000000001",
		dumpB:   ",labels=0x1",
		changeA: "set_field:0x40000000000000000000000000000001->ct_label",
		// set_field without a mask replaces the whole label.
		dumpChanged: ",labels=0x40000000000000000000000000000001",
		flushA:      "labels=0x40000000000000000000000000000000/0x40000000000000000000000000000000",
		flushB:      "labels=0x1/0xc0000000000000000000000000000001",
	})
}

// frameIs matches a captured frame equal to frame: the datapath forwards
// these crafted frames unchanged.
func frameIs(frame []byte) func(testenv.Captured) bool {
	return func(c testenv.Captured) bool { return bytes.Equal(c.Data, frame) }
}

// mustArrive sends frame from `from`'s packet socket and waits for it on
// `to`'s.
func mustArrive(t *testing.T, what string, from, to *testenv.PacketSocket, frame []byte) {
	t.Helper()
	to.Drain()
	if err := from.Send(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := to.ReadMatching(passWait, false, frameIs(frame)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// surfDrops is what the datapath has dropped: packets no flow took
// (show's table_miss) and what the flows with actions=drop counted.
func (c *cli) surfDrops() uint64 {
	c.t.Helper()
	show := c.must("show")
	m := regexp.MustCompile(` table_miss:(\d+)`).FindStringSubmatch(show)
	if m == nil {
		c.t.Fatalf("show: no table_miss counter:\n%s", show)
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	for _, line := range strings.Split(c.must("dump-flows"), "\n") {
		if strings.HasSuffix(line, " actions=drop") {
			p := regexp.MustCompile(`n_packets=(\d+)`).FindStringSubmatch(line)
			k, _ := strconv.ParseUint(p[1], 10, 64)
			n += k
		}
	}
	return n
}

// mustNotArrive sends frame and checks that the datapath drops it: its
// drops (surfDrops) grow within dropWait, and the frame is not on `to`
// then. A quiet read window alone proves nothing in a slow VM.
func (l *ctLab) mustNotArrive(what string, from, to *testenv.PacketSocket, frame []byte) {
	t := l.t
	t.Helper()
	to.Drain()
	before := l.surfDrops()
	if err := from.Send(frame); err != nil {
		t.Fatal(err)
	}
	dropped := waitCount(l.surfDrops, before+1)
	_, err := to.ReadMatching(50*time.Millisecond, false, frameIs(frame))
	switch {
	case err == nil:
		t.Fatalf("%s: arrived; it should have been dropped", what)
	case !errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal(err)
	case !dropped:
		t.Fatalf("%s: the datapath dropped nothing within %v (table_miss and the drop flows did not count)", what, dropWait)
	}
}

// icmpError is an ICMP error from `from` to `to` quoting inner (its IP
// header and all that follows), as a router or the host would send it.
// rest is the second word of the ICMP header (the next-hop MTU of a
// frag-needed is its low half).
func icmpError(from, to *testenv.VM, typ, code uint8, rest uint16, inner testenv.PacketSpec) []byte {
	quote := testenv.Build(inner)[14:]
	return testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, SrcIP: from.IP, DstIP: to.IP,
		Proto: "icmp", ICMPType: typ, ICMPCode: code, ICMPSeq: rest, Payload: quote})
}

// TestCTE2ERelated: ICMP errors about a tracked connection are +rel and
// carry its ct_mark, as system-traffic.at's "conntrack - ICMP related":
// VM2's own port unreachable for a committed UDP flow reaches VM1 (whose
// socket reports ECONNREFUSED), and so does a frag-needed about it (VM1's
// socket reports EMSGSIZE, and its route to VM2 learns the MTU). Errors
// about untracked flows are +inv and dropped, and no error makes an entry.
func TestCTE2ERelated(t *testing.T) {
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, in_port=vnet1, udp, tp_dst=6000, actions=ct(commit,exec(set_field:1->ct_mark)),vnet2",
		"priority=100, in_port=vnet1, udp, tp_dst=6002, actions=ct(commit,exec(set_field:1->ct_mark)),vnet2",
		"priority=100, in_port=vnet1, udp, tp_dst=6001, actions=vnet2", // untracked
		"priority=100, in_port=vnet2, icmp, ct_state=-trk, actions=ct(table=0)",
		"priority=100, in_port=vnet2, icmp, ct_state=+trk+rel+rpl, ct_mark=1, actions=vnet1",
		"priority=200, in_port=vnet2, icmp, ct_state=+trk+inv, actions=drop",
	)
	vm1, vm2 := l.vm1, l.vm2
	if err := vm2.NS.SetSysctl("net/ipv4/icmp_ratelimit", "0"); err != nil {
		t.Fatal(err)
	}
	invDrop := "priority=200,ct_state=+inv+trk,icmp,in_port=vnet2 actions=drop"

	// Port unreachable about a committed flow: related, passes.
	u := dialUDP(t, vm1, 44000, vm2, 6000)
	send(t, u, "anyone?")
	if err := readError(u, passWait); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("VM1's UDP to a closed port of VM2, committed: %v; want ECONNREFUSED (the port unreachable passed as +rel)", err)
	}
	udp6000 := ctEntry("udp", vm1, vm2, 44000, 6000, ",mark=1")
	l.wantConntrack([]string{udp6000})

	// Port unreachable about an untracked flow: +inv, dropped.
	v := dialUDP(t, vm1, 44001, vm2, 6001)
	l.mustNotReceive(v, "the port unreachable about an untracked flow", func() { send(t, v, "anyone?") })
	if n := l.flowPackets(invDrop); n != 1 {
		t.Errorf("the +inv drop flow counted %d packets, want 1 (the unrelated port unreachable)", n)
	}

	// Frag-needed from a pretend router behind VM2 about a committed flow.
	srv := udpPeer{vm2.ListenUDP(t, 6002)}
	w := dialUDP(t, vm1, 44002, vm2, 6002)
	send(t, w, "big")
	if msg, _ := srv.recvFrom(t); msg != "big" {
		t.Fatalf("VM2 read %q", msg)
	}
	p1, p2 := vm1.OpenPacketSocket(t), vm2.OpenPacketSocket(t)
	quoted := testenv.PacketSpec{SrcMAC: vm1.MAC, DstMAC: vm2.MAC, SrcIP: vm1.IP, DstIP: vm2.IP, DF: true,
		Proto: "udp", SrcPort: 44002, DstPort: 6002, Payload: []byte("big")}
	fragNeeded := icmpError(vm2, vm1, layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded, 1200, quoted)
	mustArrive(t, "frag-needed about a committed flow", p2, p1, fragNeeded)
	if err := readError(w, passWait); !errors.Is(err, syscall.EMSGSIZE) {
		t.Errorf("VM1's socket after the frag-needed: %v; want EMSGSIZE", err)
	}
	if out := vm1.NS.Run(t, "ip", "route", "get", vm2.IP.String()); !strings.Contains(out, "mtu 1200") {
		t.Errorf("VM1's route to VM2 after the frag-needed:\n%s\nwant mtu 1200", out)
	}

	// Frag-needed about a flow never seen: +inv, dropped.
	quoted.SrcPort = 44003
	l.mustNotArrive("frag-needed about no connection", p2, p1,
		icmpError(vm2, vm1, layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodeFragmentationNeeded, 1200, quoted))
	if n := l.flowPackets(invDrop); n != 2 {
		t.Errorf("the +inv drop flow counted %d packets, want 2", n)
	}

	// The errors made no connection of their own.
	l.wantConntrack([]string{udp6000, ctEntry("udp", vm1, vm2, 44002, 6002, ",mark=1")})
}

// tcpOf returns the TCP layer of a captured frame, or nil.
func tcpOf(c testenv.Captured) *layers.TCP {
	if l := testenv.Decode(c.Data).Layer(layers.LayerTypeTCP); l != nil {
		return l.(*layers.TCP)
	}
	return nil
}

// seqOf finds, among what p captures, the segment sport -> dport carrying
// payload, sent by the VM (outgoing) or received, and returns its sequence
// number.
func seqOf(t *testing.T, p *testenv.PacketSocket, outgoing bool, sport, dport int, payload string) uint32 {
	t.Helper()
	c, err := p.ReadMatching(passWait, outgoing, func(c testenv.Captured) bool {
		tcp := tcpOf(c)
		return c.Outgoing == outgoing && tcp != nil && int(tcp.SrcPort) == sport && int(tcp.DstPort) == dport && string(tcp.Payload) == payload
	})
	if err != nil {
		t.Fatalf("the segment %d -> %d with %q: %v", sport, dport, payload, err)
	}
	return tcpOf(c).Seq
}

// TestCTE2EInvalid: +inv packets are dropped by a ct_state=+trk+inv
// flow while everything else tracked passes: a segment of an established
// connection far beyond the receiver's window, and TCP packets that start
// nothing (SYN-ACK, FIN, RST without a connection). ct-set-tcp-liberal on
// lets the out-of-window segment through; removing the +inv flow lets the
// SYN-ACK through; a bare ACK is picked up mid-stream (+new), as
// nf_conntrack does with tcp_loose.
func TestCTE2EInvalid(t *testing.T) {
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, ip, ct_state=-trk, actions=ct(table=0)",
		"priority=200, tcp, ct_state=+trk+inv, actions=drop",
		"priority=100, in_port=vnet1, tcp, ct_state=+trk+new, actions=ct(commit),vnet2",
		"priority=50, ip, ct_state=+trk, actions=NORMAL",
	)
	vm1, vm2 := l.vm1, l.vm2
	invDrop := "priority=200,ct_state=+inv+trk,tcp actions=drop"
	p1, p2 := vm1.OpenPacketSocket(t), vm2.OpenPacketSocket(t)
	ln := vm2.ListenTCP(t, 5000)
	c := mustDial(t, vm1, 45000, vm2, 5000)
	s := acceptOne(t, ln)
	roundTrip(t, c, s, "ping")
	next := seqOf(t, p1, true, 45000, 5000, "ping") + 4 // VM1's next sequence number
	ack := seqOf(t, p1, false, 5000, 45000, "ping") + 4 // and what it acknowledges
	l.wantConntrack([]string{ctEntry("tcp", vm1, vm2, 45000, 5000, tcpState("ESTABLISHED"))})
	inv0 := l.ctStat("invalid")

	seg := func(from, to *testenv.VM, sport, dport uint16, flags string, seq, ack uint32, data string) []byte {
		return testenv.Build(testenv.PacketSpec{SrcMAC: from.MAC, DstMAC: to.MAC, SrcIP: from.IP, DstIP: to.IP, Proto: "tcp",
			SrcPort: sport, DstPort: dport, TCPFlags: flags, Seq: seq, Ack: ack, Window: 1000, Payload: []byte(data)})
	}
	// 1 GB ahead: far past anything VM2 ever offered.
	beyond := seg(vm1, vm2, 45000, 5000, "PA", next+1<<30, ack, "beyond the window")
	l.mustNotArrive("a segment 1 GB beyond the window", p1, p2, beyond)
	if n := l.flowPackets(invDrop); n != 1 {
		t.Fatalf("the +inv flow counted %d packets, want 1", n)
	}
	l.must("ct-set-tcp-liberal", "on")
	mustArrive(t, "the out-of-window segment with ct-set-tcp-liberal on", p1, p2, beyond)
	l.must("ct-set-tcp-liberal", "off")
	roundTrip(t, c, s, "the connection is unharmed")
	l.mustNotArrive("the out-of-window segment with ct-set-tcp-liberal off again", p1, p2, beyond)

	// TCP packets that start nothing: +inv.
	for _, flags := range []string{"SA", "FA", "R"} {
		l.mustNotArrive(flags+" without a connection", p2, p1, seg(vm2, vm1, 5000, 45999, flags, 1000, 2000, ""))
	}
	if n := l.flowPackets(invDrop); n != 5 {
		t.Errorf("the +inv flow counted %d packets, want 5", n)
	}
	if n := l.ctStat("invalid") - inv0; n != 5 {
		t.Errorf("ct-stats-show counted %d more invalid packets, want 5", n)
	}
	l.wantConntrack([]string{ctEntry("tcp", vm1, vm2, 45000, 5000, tcpState("ESTABLISHED"))})

	// Without the +inv flow the same SYN-ACK passes: that flow dropped it.
	l.must("del-flows", "--strict", "priority=200, tcp, ct_state=+trk+inv")
	mustArrive(t, "SA without a connection, no +inv flow", p2, p1, seg(vm2, vm1, 5000, 45999, "SA", 1000, 2000, ""))
	// A bare ACK is picked up mid-stream: +new, not +inv.
	l.must("add-flow", "priority=200, tcp, ct_state=+trk+inv, actions=drop")
	mustArrive(t, "a bare ACK without a connection (+new)", p2, p1, seg(vm2, vm1, 5000, 45998, "A", 1000, 2000, ""))
}

// TestCTE2EForce: ct(commit,force) re-creates a connection seen in the
// other direction. VM1 opens a UDP flow; VM2's replies are +est+rpl and
// pass only if, after a commit, they are +new. A plain ct(commit) leaves
// them +est+rpl (dropped, and the connection stays VM1's); ct(commit,force)
// deletes VM1's connection and commits a new one from VM2 (they pass), and
// from then on VM2 is the originator: its packets are no longer +rpl.
func TestCTE2EForce(t *testing.T) {
	replyCommit := "table=1, priority=100, in_port=vnet2, udp, ct_state=+trk+rpl, actions=ct(%s,table=2)"
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, in_port=vnet1, udp, actions=ct(commit),vnet2",
		"priority=100, in_port=vnet2, udp, ct_state=-trk, actions=ct(table=1)",
		fmt.Sprintf(replyCommit, "commit"),
		"table=2, priority=100, udp, ct_state=+trk+new, actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	srv := udpPeer{vm2.ListenUDP(t, 6000)}
	c := dialUDP(t, vm1, 46000, vm2, 6000)
	exchange := func(msg string) {
		t.Helper()
		send(t, c, msg)
		got, from := srv.recvFrom(t)
		if got != msg {
			t.Fatalf("VM2 read %q, want %q", got, msg)
		}
		srv.sendTo(t, msg, from)
	}
	fromVM1 := ctEntry("udp", vm1, vm2, 46000, 6000, "")
	fromVM2 := ctEntry("udp", vm2, vm1, 6000, 46000, "")

	l.mustNotReceive(c, "VM2's reply after ct(commit): still +est+rpl", func() { exchange("commit") })
	l.wantConntrack([]string{fromVM1})

	l.must("mod-flows", "--strict", fmt.Sprintf(replyCommit, "commit,force"))
	exchange("force")
	mustReceive(t, c, "force")
	l.wantConntrack([]string{fromVM2})

	// VM1's next packet is the reply direction of VM2's connection; VM2's
	// answer is then +est in the original direction: no flow takes it.
	l.mustNotReceive(c, "VM2's packet once VM2 is the originator", func() { exchange("after") })
	l.wantConntrack([]string{fromVM2})
}

// TestCTE2ETimeouts: ct-set-timeouts shortens a zone's UDP timeout to 1 s:
// the connection expires 1 s after its last packet, then leaves
// dump-conntrack, and the reply traffic that needed it (+est) is dropped
// from then on. Back to the defaults (30 s), the same pause changes
// nothing. The pause is made by ageing the connection's stored times
// (ageConns), not by sleeping: a sleep's length is a slow VM's to decide.
func TestCTE2ETimeouts(t *testing.T) {
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, in_port=vnet1, udp, actions=ct(commit,zone=7),vnet2",
		"priority=100, in_port=vnet2, udp, ct_state=-trk, actions=ct(zone=7,table=1)",
		"table=1, priority=100, in_port=vnet2, udp, ct_state=+trk+est, actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	srv := udpPeer{vm2.ListenUDP(t, 6000)}
	c := dialUDP(t, vm1, 47000, vm2, 6000)
	// exchange sends msg from VM1 and back, and returns VM1's address as
	// VM2 saw it.
	exchange := func(msg string) *net.UDPAddr {
		t.Helper()
		send(t, c, msg)
		got, from := srv.recvFrom(t)
		if got != msg {
			t.Fatalf("VM2 read %q, want %q", got, msg)
		}
		srv.sendTo(t, msg, from)
		mustReceive(t, c, msg)
		return from
	}
	timeout := func() string {
		t.Helper()
		lines := l.conntrack("-s", "zone=7")
		if len(lines) != 1 {
			t.Fatalf("dump-conntrack -s zone=7: %q, want one connection", lines)
		}
		m := regexp.MustCompile(`,timeout=(\d+)`).FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("no timeout= in %s", lines[0])
		}
		return m[1]
	}
	// timedExchange is exchange, checking that the datapath set the
	// connection to expire timeout after its last packet, which it saw
	// between the clock readings around the exchange.
	timedExchange := func(msg string, timeout time.Duration) *net.UDPAddr {
		t.Helper()
		first := l.monotonicNow()
		from := exchange(msg)
		last := l.monotonicNow()
		exp := l.connExpiries()
		if len(exp) != 1 {
			t.Fatalf("after %q: %d connections in the datapath, want 1", msg, len(exp))
		}
		// The datapath's clock lags CLOCK_MONOTONIC by up to agingCoarseLag.
		lo, hi := first+uint64(timeout-agingCoarseLag), last+uint64(timeout)
		if exp[0] < lo || exp[0] > hi {
			t.Fatalf("after %q: the connection expires %v after the exchange began and %v after it ended; want %v after its last packet",
				msg, time.Duration(int64(exp[0]-first)), time.Duration(int64(exp[0]-last)), timeout)
		}
		return from
	}
	entry := ctEntry("udp", vm1, vm2, 47000, 6000, ",zone=7")

	l.must("ct-set-timeouts", "zone=7", "udp_first=1")
	if out := l.must("ct-set-timeouts", "zone=7"); out != "zone=7 udp_first=1\n" {
		t.Fatalf("ct-set-timeouts zone=7 printed %q", out)
	}
	vm1Addr := timedExchange("short", time.Second)
	l.wantConntrack([]string{entry})
	if got := timeout(); got != "0" && got != "1" {
		t.Fatalf("timeout=%s with udp_first=1", got)
	}
	// 2 s after its last packet: the datapath no longer finds the
	// connection (VM2's packet is +new, refused), nor does the dump.
	l.ageConns(2 * time.Second)
	l.mustNotReceive(c, "VM2's packet after the connection timed out", func() { srv.sendTo(t, "too late", vm1Addr) })
	l.wantConntrack(nil, "zone=7")

	l.must("ct-set-timeouts", "zone=7", "udp_first=0")
	if out := l.must("ct-set-timeouts", "zone=7"); out != "zone=7 (defaults)\n" {
		t.Fatalf("ct-set-timeouts zone=7 printed %q after udp_first=0", out)
	}
	timedExchange("default", 30*time.Second)
	if got := timeout(); got != "29" && got != "30" {
		t.Fatalf("timeout=%s with the default udp_first", got)
	}
	l.ageConns(2 * time.Second)
	srv.sendTo(t, "in time", vm1Addr)
	mustReceive(t, c, "in time")
	l.wantConntrack([]string{entry})
}

// TestCTE2EFlushTuple: flush-conntrack with a full tuple removes that
// connection only, found by either of its tuples, as Open vSwitch's kernel
// datapath finds it (ctnetlink looks the tuple up among both directions'):
// here by its reply tuple. Behind a strict firewall (VM2 may only answer,
// +est), the flushed connection's server can no longer send; the other
// connection is untouched. VM1's next segment re-commits the connection
// (picked up mid-stream) and the server's data, retransmitted, passes
// again. A full tuple that finds nothing (in zone=5) is an error, as in
// OVS, and removes nothing.
func TestCTE2EFlushTuple(t *testing.T) {
	l := newCTLab(t,
		"priority=10, arp, actions=NORMAL",
		"priority=100, tcp, ct_state=-trk, actions=ct(table=0)",
		"priority=100, in_port=vnet1, tcp, ct_state=+trk+new, actions=ct(commit),vnet2",
		"priority=100, in_port=vnet1, tcp, ct_state=+trk+est, actions=vnet2",
		"priority=100, in_port=vnet2, tcp, ct_state=+trk+est, actions=vnet1",
	)
	vm1, vm2 := l.vm1, l.vm2
	ln := vm2.ListenTCP(t, 5000)
	a := mustDial(t, vm1, 48001, vm2, 5000)
	sa := acceptOne(t, ln)
	b := mustDial(t, vm1, 48002, vm2, 5000)
	sb := acceptOne(t, ln)
	roundTrip(t, a, sa, "a")
	roundTrip(t, b, sb, "b")
	connA := ctEntry("tcp", vm1, vm2, 48001, 5000, tcpState("ESTABLISHED"))
	connB := ctEntry("tcp", vm1, vm2, 48002, 5000, tcpState("ESTABLISHED"))
	l.wantConntrack([]string{connA, connB})

	l.must("flush-conntrack", "ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=6,ct_tp_src=5000,ct_tp_dst=48001")
	l.wantConntrack([]string{connB})
	roundTrip(t, b, sb, "b is untouched")
	l.mustNotReceive(a, "the server's data once its connection was flushed", func() { send(t, sa, "late") })
	l.wantConntrack([]string{connB})

	send(t, a, "again")
	mustReceive(t, sa, "again")
	mustReceive(t, a, "late") // retransmitted by VM2's TCP
	l.wantConntrack([]string{connA, connB})

	origB := "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=6,ct_tp_src=48002,ct_tp_dst=5000"
	if _, e, code := l.run("flush-conntrack", "zone=5", origB); code != 1 || !strings.Contains(e, "failed to flush conntrack") {
		t.Errorf("flush-conntrack zone=5 %s (no such connection): exit %d, stderr %q; want 1, failed to flush conntrack", origB, code, e)
	}
	l.wantConntrack([]string{connA, connB})
	l.must("flush-conntrack", origB)
	l.wantConntrack([]string{connA})
}

// flushZoneFlows commit every UDP datagram and ICMP echo request VM1 sends
// in zone 0 and in zone 5, so each connection is in the table twice, with
// one tuple; VM2's answers pass untracked.
var flushZoneFlows = []string{
	"priority=100, arp, actions=NORMAL",
	"priority=100, icmp6, icmp_type=135, actions=NORMAL",
	"priority=100, icmp6, icmp_type=136, actions=NORMAL",
	"priority=50, in_port=vnet1, udp, actions=ct(commit),ct(commit,zone=5),vnet2",
	"priority=50, in_port=vnet1, icmp, actions=ct(commit),ct(commit,zone=5),vnet2",
	"priority=50, in_port=vnet2, actions=vnet1",
}

// flushZoneCase is one flush-conntrack of TestCTE2EFlushTupleZones and
// TestDpctlFlushCompareWithOVS, run on a fresh table holding a UDP
// connection and an ICMP echo, each in zones 0 and 5: the connections
// it leaves ("u0" the UDP one in zone 0, ..., "i5"), and whether the
// command fails (a full tuple that finds nothing).
type flushZoneCase struct {
	args []string
	left string
	fail bool
}

const (
	flushUOrig  = "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=47200,ct_tp_dst=6000"
	flushUReply = "ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=17,ct_tp_src=6000,ct_tp_dst=47200"
	flushIOrig  = "ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=1,icmp_id=4660,icmp_type=8"
	flushIReply = "ct_nw_src=10.0.10.2,ct_nw_dst=10.0.10.1,ct_nw_proto=1,icmp_id=4660"
)

var flushZoneCases = []flushZoneCase{
	// A full tuple without zone=: zone 0's connection only.
	{[]string{flushUOrig}, "u5 i0 i5", false},
	// Its reply tuple finds it too; with zone=5, zone 5's.
	{[]string{flushUReply}, "u5 i0 i5", false},
	{[]string{"zone=5", flushUReply}, "u0 i0 i5", false},
	{[]string{"zone=7", flushUOrig}, "u0 u5 i0 i5", true},
	// Not a full tuple (no destination port; a reply tuple given):
	// compared with every connection, in every zone.
	{[]string{"ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=17,ct_tp_src=47200"}, "i0 i5", false},
	{[]string{flushUOrig, flushUReply}, "i0 i5", false},
	{[]string{"", flushUReply}, "i0 i5", false},
	// ICMP: looked up by identifier, type and code (0 if left out).
	{[]string{flushIOrig}, "u0 u5 i5", false},
	{[]string{"zone=5", flushIReply}, "u0 u5 i0", false},
	// Compared with every connection, ICMP's fields left out are 0:
	// no echo matches without its reply tuple's identifier.
	{[]string{"ct_nw_proto=1"}, "u0 u5 i0 i5", false},
	{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8"}, "u0 u5 i0 i5", false},
	{[]string{"ct_nw_proto=1,icmp_id=4660,icmp_type=8", "icmp_id=4660"}, "u0 u5", false},
}

// flushZoneEntries are the dump-conntrack lines of the four connections.
func flushZoneEntries(vm1, vm2 *testenv.VM) map[string]string {
	icmp := func(zone string) string {
		return fmt.Sprintf("icmp,orig=(src=%s,dst=%s,id=4660,type=8,code=0),reply=(src=%s,dst=%s,id=4660,type=0,code=0)%s",
			vm1.IP, vm2.IP, vm2.IP, vm1.IP, zone)
	}
	return map[string]string{
		"u0": ctEntry("udp", vm1, vm2, 47200, 6000, ""),
		"u5": ctEntry("udp", vm1, vm2, 47200, 6000, ",zone=5"),
		"i0": icmp(""),
		"i5": icmp(",zone=5"),
	}
}

// flushZoneTraffic makes the four connections: a UDP datagram from port
// 47200 and an echo request with identifier 0x1234 (4660), answered.
func flushZoneTraffic(t *testing.T, vm1, vm2 *testenv.VM, srv udpPeer) {
	t.Helper()
	surfUDP(t, vm1, 47200, vm2, 6000, srv, "zones", false)
	dpctlPing(t, vm1, false, vm1.IP.String(), vm2.IP.String(), 0x1234)
}

// TestCTE2EFlushTupleZones runs flushZoneCases on real connections: each
// case on a table holding the same UDP connection and the same ICMP echo
// in zones 0 and 5.
func TestCTE2EFlushTupleZones(t *testing.T) {
	l := newCTLab(t, flushZoneFlows...)
	vm1, vm2 := l.vm1, l.vm2
	srv := udpPeer{vm2.ListenUDP(t, 6000)}
	entries := flushZoneEntries(vm1, vm2)
	for _, c := range flushZoneCases {
		l.must("flush-conntrack")
		flushZoneTraffic(t, vm1, vm2, srv)
		l.wantConntrack(slices.Collect(maps.Values(entries)))
		_, e, code := l.run(append([]string{"flush-conntrack"}, c.args...)...)
		if fail := code != 0; fail != c.fail || fail && !strings.Contains(e, "failed to flush conntrack") {
			t.Errorf("flush-conntrack %q: exit %d, stderr %q; want it to fail: %v", c.args, code, e, c.fail)
		}
		var want []string
		for _, name := range strings.Fields(c.left) {
			want = append(want, entries[name])
		}
		if got := l.conntrack(); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("flush-conntrack %q left:\n%s\nwant (%s):\n%s", c.args, strings.Join(got, "\n"), c.left, strings.Join(want, "\n"))
		}
	}
}
