package ctl_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestCTE2EIPv6 is the lab's firewall for IPv6: real TCP over IPv6 between
// the VM namespaces (static addresses, neighbour discovery switched by
// NORMAL), tracked in both directions; VM1 may connect, VM2 may not, and
// dump-conntrack prints the connection with its IPv6 addresses as OVS does.
func TestCTE2EIPv6(t *testing.T) {
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	vm1, vm2 := lab.VMs[0], lab.VMs[1]
	for i, vm := range lab.VMs {
		vm.NS.Run(t, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=0")
		vm.NS.Run(t, "ip", "-6", "addr", "add", []string{"fd00:10::1/64", "fd00:10::2/64"}[i], "dev", "eth0", "nodad")
	}
	c.must("attach", "vnet1", "vnet2")
	t.Cleanup(func() { c.run("detach") })
	c.must("del-flows")
	for _, f := range []string{
		"priority=100, icmp6, actions=NORMAL", // neighbour discovery
		"priority=50, ct_state=-trk, tcp6, in_port=vnet1, actions=ct(table=0)",
		"priority=50, ct_state=+trk+new, tcp6, in_port=vnet1, actions=ct(commit),vnet2",
		"priority=50, ct_state=-trk, tcp6, in_port=vnet2, actions=ct(table=0)",
		"priority=50, ct_state=+trk+est, tcp6, in_port=vnet2, actions=vnet1",
		"priority=50, ct_state=+trk+est, tcp6, in_port=vnet1, actions=vnet2",
		"priority=0, actions=drop",
	} {
		c.must("add-flow", f)
	}
	listen := func(vm *testenv.VM) net.Listener {
		var ln net.Listener
		if err := vm.NS.Do(func() (err error) {
			ln, err = net.Listen("tcp6", "[::]:5000")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go echoServer(ln)
		return ln
	}
	dial := func(ctx context.Context, vm *testenv.VM, addr string) (net.Conn, error) {
		var conn net.Conn
		err := vm.NS.Do(func() (err error) {
			conn, err = (&net.Dialer{}).DialContext(ctx, "tcp6", addr)
			return err
		})
		return conn, err
	}
	listen(vm1)
	listen(vm2)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dial(ctx, vm1, "[fd00:10::2]:5000")
	if err != nil {
		t.Fatalf("VM1 -> VM2 over IPv6: %v", err)
	}
	exchange(t, conn)
	sport := conn.LocalAddr().(*net.TCPAddr).Port
	want := "tcp,orig=(src=fd00:10::1,dst=fd00:10::2,sport=" + strconv.Itoa(sport) + ",dport=5000),reply=(src=fd00:10::2,dst=fd00:10::1,sport=5000,dport=" + strconv.Itoa(sport) + "),protoinfo=(state=ESTABLISHED)"
	c.waitConntrack(want)
	conn.Close()

	// VM2's SYN matches no flow but the priority=0 drop, which counts it.
	c.mustNotConnect("VM2 -> VM1 over IPv6", func(ctx context.Context) (net.Conn, error) {
		return dial(ctx, vm2, "[fd00:10::1]:5000")
	})
	if out := c.must("dump-conntrack"); strings.Contains(out, "orig=(src=fd00:10::2") {
		t.Errorf("VM2's refused SYN left a connection:\n%s", out)
	}
}
