package ctl_test

import (
	"context"
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
		"table=0, priority=0, actions=drop",
	} {
		c.must("add-flow", f)
	}
	ctx := context.Background()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }

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
	sctx, cancel := short()
	if conn, err := vm2.DialTCP(sctx, "10.0.10.1:5100"); err == nil {
		conn.Close()
		t.Fatal("TCP to 5100 (outside 0x1380/0xfff0) connected; the drop flow should have stopped it")
	}
	cancel()
	if n := c.flowCounts().get(t, "table=1", "priority=0 actions=NORMAL"); n == 0 {
		t.Error("the resubmitted table 1 counted no packets")
	}

	// Timeouts. A datagram passes while its flow lives.
	srv := vm2.ListenUDP(t, 7000)
	srv2 := vm2.ListenUDP(t, 7001)
	c.must("add-flow", "table=0, priority=30, hard_timeout=4, udp, tp_dst=7000, actions=NORMAL")
	c.must("add-flow", "table=0, priority=30, idle_timeout=3, udp, tp_dst=7001, actions=NORMAL")
	passes := func(srv interface {
		SetReadDeadline(time.Time) error
		Read([]byte) (int, error)
	}, port string) bool {
		u, err := vm1.DialUDP("10.0.10.2:" + port)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		if _, err := u.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		srv.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = srv.Read(make([]byte, 8))
		return err == nil
	}
	if a, b := passes(srv, "7000"), passes(srv2, "7001"); !a || !b {
		t.Fatalf("UDP through the flows with timeouts failed before they expired (7000: %v, 7001: %v)\n%s", a, b, c.must("dump-flows"))
	}
	// The idle flow, used every 300 ms, outlives its 3 s idle_timeout
	// (margins are wide: VMs under emulation run this too)...
	for end := time.Now().Add(4500 * time.Millisecond); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		if !passes(srv2, "7001") {
			t.Fatal("idle_timeout=3 expired while traffic used the flow every 300 ms")
		}
	}
	// ...while the hard one (4 s) has expired by now, used or not.
	if passes(srv, "7000") {
		t.Error("hard_timeout=4 flow still matched after 4.5 s")
	}
	time.Sleep(3500 * time.Millisecond) // idle for longer than idle_timeout
	if passes(srv2, "7001") {
		t.Error("idle_timeout=3 flow still matched after 3.5 s without traffic")
	}
	if out := c.must("dump-flows"); strings.Contains(out, "tp_dst=7000") || strings.Contains(out, "tp_dst=7001") {
		t.Errorf("expired flows still listed:\n%s", out)
	}
}
