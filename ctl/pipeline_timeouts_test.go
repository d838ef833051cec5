package ctl_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestPipelineMasksResubmitTimeouts, on real traffic between the lab's
// namespaces: masked matches (a /30 network, a port range as value/mask)
// and a resubmit decide what passes; a flow with hard_timeout stops
// matching when it expires, one with idle_timeout lives while traffic uses
// it and goes once the traffic stops, and both disappear from dump-flows.
// What must pass is waited for (passWait); what must not is seen dropped,
// by the drop flow's counter, never by a quiet read window, which proves
// nothing in a slow VM. Time passes by ageing the flows' stored times
// (ageFlow), never by sleeping.
func TestPipelineMasksResubmitTimeouts(t *testing.T) {
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	c.must("del-flows")
	for _, f := range []string{
		"table=0, priority=100, arp, actions=NORMAL",
		// TCP to ports 0x1380-0x138f (5000 is 0x1388) of 10.0.10.0/30, both ways.
		"table=0, priority=20, tcp, nw_dst=10.0.10.0/255.255.255.252, tp_dst=0x1380/0xfff0, actions=resubmit(,1)",
		"table=0, priority=20, tcp, nw_src=10.0.10.0/30, tp_src=0x1380/0xfff0, actions=resubmit(,1)",
		"table=1, priority=0, actions=NORMAL",
		// UDP no flow above takes: what the datagrams of expired flows count on.
		"table=0, priority=1, udp, actions=drop",
		"table=0, priority=0, actions=drop",
	} {
		c.must("add-flow", f)
	}
	ctx := context.Background()
	fDrop := []string{"table=0", "priority=0 actions=drop"}
	fUDPDrop := []string{"table=0", "priority=1,udp actions=drop"}

	// Masks and resubmit: port 5000 is in the range, 5100 is not.
	for _, port := range []int{5000, 5100} {
		ln := vm2.ListenTCP(t, port)
		go echoServer(ln)
	}
	conn, err := vm1.DialTCP(ctx, "10.0.10.2:5000")
	if err != nil {
		t.Fatalf("TCP to 5000 (in 0x1380/0xfff0): %v", err)
	}
	exchange(t, conn)
	conn.Close()
	before := c.flowCounts()
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	if conn, err := vm2.DialTCP(sctx, "10.0.10.1:5100"); err == nil {
		conn.Close()
		t.Fatal("TCP to 5100 (outside 0x1380/0xfff0) connected; the drop flow should have stopped it")
	}
	cancel()
	c.surfWaitCounted(before.get(t, fDrop...), "the SYN to 5100", fDrop...)
	if n := c.flowCounts().get(t, "table=1", "priority=0 actions=NORMAL"); n == 0 {
		t.Error("the resubmitted table 1 counted no packets")
	}

	// Timeouts. Time is moved by ageing the flows' stored times (ageFlow),
	// not by sleeping, and the timeouts are long: what must live has at
	// least 5 s of margin over the few steps a slow VM takes between an
	// ageing and the datagram that follows it.
	srv := vm2.ListenUDP(t, 7000)
	srv2 := vm2.ListenUDP(t, 7001)
	c.must("add-flow", "table=0, priority=30, hard_timeout=20, udp, tp_dst=7000, actions=NORMAL")
	c.must("add-flow", "table=0, priority=30, idle_timeout=10, udp, tp_dst=7001, actions=NORMAL")
	hardID, idleID := c.flowID("tp_dst=7000"), c.flowID("tp_dst=7001")
	sendUDP := func(port string) {
		t.Helper()
		u, err := vm1.DialUDP("10.0.10.2:" + port)
		if err != nil {
			t.Fatalf("dial UDP to %s: %v", port, err)
		}
		defer u.Close()
		if _, err := u.Write([]byte("x")); err != nil {
			t.Fatalf("send UDP to %s: %v", port, err)
		}
	}
	passes := func(srv *net.UDPConn, port, what string) {
		t.Helper()
		sendUDP(port)
		srv.SetReadDeadline(time.Now().Add(passWait))
		if _, err := srv.Read(make([]byte, 8)); err != nil {
			t.Fatalf("%s: UDP to %s did not arrive: %v\n%s", what, port, err, c.must("dump-flows"))
		}
	}
	// The datagrams of expired flows count on the UDP drop flow. The
	// count before each is the one of the last: reading the counters
	// (dump-flows) removes expired flows, which must not happen before the
	// datagram was sent, or the test would see the command's expiry, not
	// the datapath's. (The datapath handles a datagram before the sending
	// write returns: veth's transmit runs the receive side's softirq.)
	udpDrops := c.flowCounts().get(t, fUDPDrop...)
	dropped := func(port, what string) {
		t.Helper()
		sendUDP(port)
		c.surfWaitCounted(udpDrops, what, fUDPDrop...)
		udpDrops++
	}
	passes(srv, "7000", "hard_timeout=20 before it expired")
	passes(srv2, "7001", "idle_timeout=10 before it expired")
	// The idle flow outlives its 10 s idle_timeout while traffic uses it:
	// 5 s older three times (15 s in all), a datagram passes each time.
	// The hard one, used as often, still expires 20 s after install.
	for aged := 5 * time.Second; aged <= 15*time.Second; aged += 5 * time.Second {
		c.ageFlow(hardID, 5*time.Second)
		c.ageFlow(idleID, 5*time.Second)
		passes(srv2, "7001", fmt.Sprintf("idle_timeout=10, %v after install, used 5 s before", aged))
		passes(srv, "7000", fmt.Sprintf("hard_timeout=20, %v after install", aged))
	}
	// 21 s after install, 6 s after its last use, the hard flow has
	// expired: its datagram falls to the UDP drop flow.
	c.ageFlow(hardID, 6*time.Second)
	dropped("7000", "hard_timeout=20, 21 s after install")
	c.ageFlow(idleID, 11*time.Second) // idle for longer than idle_timeout
	dropped("7001", "idle_timeout=10, 11 s without traffic")
	if out := c.must("dump-flows"); strings.Contains(out, "tp_dst=7000") || strings.Contains(out, "tp_dst=7001") {
		t.Errorf("expired flows still listed:\n%s", out)
	}
}
