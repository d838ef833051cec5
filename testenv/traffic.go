package testenv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The traffic helpers create real sockets inside a VM's namespace: the
// socket is created on a thread that has entered the namespace (NS.Do) and
// stays in that namespace after the thread switches back, so the returned
// net.Conn/net.Listener can be used from any goroutine. Addresses must be IP
// literals ("10.0.10.2:80"); a host name would be resolved outside the VM.
//
// An open socket keeps its namespace alive, so close what you dial; the
// listeners are closed by a test cleanup.

// errNoNS is returned by traffic helpers called on a tap-lab VM.
var errNoNS = errors.New("testenv: VM has no namespace (tap lab): the test is the VM, use its Tap")

func (vm *VM) ns() (*NS, error) {
	if vm.NS == nil {
		return nil, errNoNS
	}
	return vm.NS, nil
}

// ListenTCP listens on TCP port (0: kernel-chosen, see Addr) on all
// addresses of the VM and closes the listener in a cleanup.
func (vm *VM) ListenTCP(tb testing.TB, port int) net.Listener {
	tb.Helper()
	ns, err := vm.ns()
	if err != nil {
		tb.Fatal(err)
	}
	var l net.Listener
	err = ns.Do(func() (err error) {
		l, err = net.Listen("tcp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
		return err
	})
	if err != nil {
		tb.Fatalf("testenv: %v: listen tcp %d: %v", vm, port, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// DialTCP connects from the VM to addr ("IP:port"), with the local port
// chosen by the kernel. ctx bounds the connection attempt.
func (vm *VM) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	return vm.dialTCP(ctx, &net.Dialer{}, addr)
}

// DialTCPFrom is DialTCP from a fixed local port on vm.IP, e.g. to reproduce
// a 5-tuple. The socket has SO_REUSEADDR, so binding succeeds while an
// earlier connection from the port is in TIME_WAIT; connecting to the same
// peer again can still fail with EADDRNOTAVAIL while that exact 4-tuple is
// in TIME_WAIT, so use a fresh local port per connection.
func (vm *VM) DialTCPFrom(ctx context.Context, localPort int, addr string) (net.Conn, error) {
	d := &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: vm.IP, Port: localPort},
		Control:   setReuseAddr,
	}
	return vm.dialTCP(ctx, d, addr)
}

func (vm *VM) dialTCP(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	ns, err := vm.ns()
	if err != nil {
		return nil, err
	}
	if err := requireIPLiteral(addr); err != nil {
		return nil, err
	}
	var c net.Conn
	err = ns.Do(func() (err error) {
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%v: dial tcp %s: %w", vm, addr, err)
	}
	return c, nil
}

func setReuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// ListenUDP opens a UDP socket bound to port (0: kernel-chosen) on all
// addresses of the VM and closes it in a cleanup.
func (vm *VM) ListenUDP(tb testing.TB, port int) *net.UDPConn {
	tb.Helper()
	ns, err := vm.ns()
	if err != nil {
		tb.Fatal(err)
	}
	var c *net.UDPConn
	err = ns.Do(func() (err error) {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: port})
		return err
	})
	if err != nil {
		tb.Fatalf("testenv: %v: listen udp %d: %v", vm, port, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// DialUDP returns a UDP socket in the VM connected to addr ("IP:port"), with
// a kernel-chosen local port. The caller must close it.
func (vm *VM) DialUDP(addr string) (*net.UDPConn, error) {
	return vm.DialUDPFrom(0, addr)
}

// DialUDPFrom is DialUDP from a fixed local port on vm.IP (SO_REUSEADDR).
func (vm *VM) DialUDPFrom(localPort int, addr string) (*net.UDPConn, error) {
	ns, err := vm.ns()
	if err != nil {
		return nil, err
	}
	if err := requireIPLiteral(addr); err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return nil, err
	}
	var c *net.UDPConn
	err = ns.Do(func() error {
		var laddr net.Addr
		if localPort != 0 {
			laddr = &net.UDPAddr{IP: vm.IP, Port: localPort}
		}
		d := &net.Dialer{LocalAddr: laddr, Control: setReuseAddr}
		conn, err := d.Dial("udp4", raddr.String())
		if err != nil {
			return err
		}
		c = conn.(*net.UDPConn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%v: dial udp %s: %w", vm, addr, err)
	}
	return c, nil
}

func requireIPLiteral(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("testenv: %q: want an IP literal (names would be resolved outside the VM)", addr)
	}
	return nil
}

// Ping runs `ping -c count` from the VM to ip (via nsenter, 0.2s interval)
// and returns an error, including ping's output, unless all count replies
// arrive within timeout. It does not fail the test, so it also serves to
// assert that traffic is dropped.
func (vm *VM) Ping(tb testing.TB, ip net.IP, count int, timeout time.Duration) error {
	tb.Helper()
	ns, err := vm.ns()
	if err != nil {
		return err
	}
	if count < 1 {
		count = 1
	}
	deadline := int(math.Ceil(timeout.Seconds()))
	if deadline < 1 {
		deadline = 1
	}
	// -w is ping's overall deadline; the context is only a safety net.
	ctx, cancel := context.WithTimeout(context.Background(), timeout+5*time.Second)
	defer cancel()
	args := []string{"-n", "-c", strconv.Itoa(count), "-i", "0.2", "-w", strconv.Itoa(deadline), ip.String()}
	out, err := ns.Command(ctx, "ping", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: ping %s: %w\n%s", vm, ip, err, out)
	}
	return nil
}
