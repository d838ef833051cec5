// Command ebpfovs-neutron-demo runs `make demo-neutron`: an OpenStack
// compute node pair in network namespaces (testenv.BuildNeutron), switched
// by ebpfovs as Neutron's Open vSwitch agent configures Open vSwitch, step
// by step, each ebpfovs command shown as typed; then DHCP, traffic within
// and between the tenant networks, to the outside through the router, and
// what br-tun learned. Everything is removed at the end, on failure or
// Ctrl-C too.
//
//	ebpfovs-neutron-demo --ebpfovs ./ebpfovs
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

func main() {
	bin := flag.String("ebpfovs", "./ebpfovs", "the ebpfovs binary")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo-neutron: run as root (sudo make demo-neutron)")
		os.Exit(1)
	}
	path, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-neutron: %v\n", err)
		os.Exit(1)
	}
	if err := run(path, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "demo-neutron: %v\n", err)
		os.Exit(1)
	}
}

type demo struct {
	bin   string
	out   io.Writer
	n     *testenv.Neutron
	roots [2]string
}

func bold(w io.Writer, s string) { fmt.Fprintf(w, "\n\033[1m%s\033[0m\n", s) }

// ebpfovs runs one command on node's bridge, shown as typed.
func (d *demo) ebpfovs(node int, bridge string, args ...string) (string, error) {
	shown := []string{"ebpfovs", "-b", bridge}
	for _, a := range args {
		if strings.ContainsAny(a, " (),") {
			a = `"` + a + `"`
		}
		shown = append(shown, a)
	}
	fmt.Fprintf(d.out, "node%d$ %s\n", node+1, strings.Join(shown, " "))
	full := append([]string{"--bpffs", d.roots[node], "--netns", d.n.Nodes[node].Path, "-b", bridge}, args...)
	out, err := exec.Command(d.bin, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ebpfovs %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func (d *demo) show(node int, bridge string, args ...string) error {
	out, err := d.ebpfovs(node, bridge, args...)
	fmt.Fprint(d.out, out)
	return err
}

// in runs a command in ns, its output indented.
func (d *demo) in(ns *testenv.NS, who string, name string, args ...string) error {
	fmt.Fprintf(d.out, "%s$ %s %s\n", who, name, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		fmt.Fprintf(d.out, "    %s\n", l)
	}
	return err
}

func run(bin string, out io.Writer) (err error) {
	tag := fmt.Sprintf("eon-demo%d", os.Getpid())
	d := &demo{bin: bin, out: out}
	for i := range d.roots {
		d.roots[i] = fmt.Sprintf("/sys/fs/bpf/ebpfovs-neutron-demo-%d/node%d", os.Getpid(), i+1)
	}
	n, remove, err := testenv.BuildNeutron(tag)
	if err != nil {
		return err
	}
	d.n = n
	cleanup := func() {
		for node := range n.Nodes {
			for _, br := range []string{testenv.BrTun, testenv.BrInt} {
				exec.Command(bin, "--bpffs", d.roots[node], "--netns", n.Nodes[node].Path, "-b", br, "detach").Run()
			}
			os.Remove(d.roots[node])
		}
		os.Remove(filepath.Dir(d.roots[0]))
		if rerr := remove(); rerr != nil {
			fmt.Fprintf(os.Stderr, "demo-neutron: cleanup: %v\n", rerr)
		}
	}
	defer cleanup()
	// A closed pipe (| head) must not kill the demo before it cleans up.
	signal.Ignore(syscall.SIGPIPE)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		cleanup()
		os.Exit(130)
	}()

	bold(out, "Two compute nodes (namespaces node1, node2; 172.31.0.1 and .2 on phy0), four VMs:")
	for _, vm := range n.VMs {
		fmt.Fprintf(out, "  %s on node%d, network %s (VNI %#x, local VLAN %d), %s, port %s\n",
			vm.Name, vm.Node+1, vm.Net.Name, vm.Net.VNI, vm.Net.VLAN[vm.Node], vm.MAC, vm.Port)
	}
	fmt.Fprintf(out, "  Networks A and B share 10.1.0.0/24 and the same addresses: only the switch keeps them apart.\n")
	fmt.Fprintf(out, "  Each node's commands run with --netns NODE --bpffs %s (per node).\n", filepath.Dir(d.roots[0])+"/nodeN")

	step := ""
	for _, s := range n.Plan() {
		if s.Say != "" && s.Say != step {
			bold(out, fmt.Sprintf("node%d: %s", s.Node+1, s.Say))
			step = s.Say
		}
		if s.Do != nil {
			if err := s.Do(); err != nil {
				return err
			}
			continue
		}
		if _, err := d.ebpfovs(s.Node, s.Bridge, s.Args...); err != nil {
			return err
		}
	}

	bold(out, "The VMs boot: DHCP (udhcpc; each network's dnsmasq on node1; node2's requests cross the tunnel)")
	for _, vm := range n.VMs {
		l, err := vm.DHCP(n, 20*time.Second)
		if err != nil {
			return err
		}
		gw := "none"
		if l.Router != nil {
			gw = l.Router.String()
		}
		fmt.Fprintf(out, "  %s: %s/%d, gateway %s (from %s, network %s's server)\n", vm.Name, l.IP, maskBits(l.Mask), gw, l.Server, vm.Net.Name)
	}

	bold(out, "Network A: vm-a (node1) to vm-c (node2); network B: vm-b to vm-d, the same addresses")
	if err := d.in(n.VMs[0].NS, "vm-a", "ping", "-c", "3", "-i", "0.2", n.VMs[2].IP.String()); err != nil {
		return err
	}
	if err := d.in(n.VMs[1].NS, "vm-b", "ping", "-c", "3", "-i", "0.2", n.VMs[3].IP.String()); err != nil {
		return err
	}
	d.in(n.VMs[0].NS, "vm-a", "ip", "neigh", "show", n.VMs[2].IP.String())
	d.in(n.VMs[1].NS, "vm-b", "ip", "neigh", "show", n.VMs[3].IP.String())
	fmt.Fprintln(out, "  (each reached its own network's VM: vm-c is fa:16:3e:00:00:03, vm-d fa:16:3e:00:00:04)")

	bold(out, "Network B has no router: vm-b cannot reach network A's 10.1.0.1")
	if err := d.in(n.VMs[1].NS, "vm-b", "ping", "-c", "1", "-W", "1", n.Nets[0].Router.String()); err == nil {
		return errors.New("vm-b reached network A's router")
	}

	bold(out, "The outside (203.0.113.1) through network A's router on node1, which SNATs; from vm-c on node2 too")
	if err := d.outside(n.VMs[2]); err != nil {
		return err
	}

	bold(out, "What br-tun learned (table 20: the way back to each remote MAC, by learn() in the datapath)")
	for node := range n.Nodes {
		if err := d.show(node, testenv.BrTun, "dump-flows", "table=20"); err != nil {
			return err
		}
	}
	bold(out, "node1's ARP responder (table 21) answered for vm-c without flooding")
	if err := d.show(0, testenv.BrTun, "dump-flows", "table=21"); err != nil {
		return err
	}
	bold(out, "node1's bridges")
	if err := d.show(0, testenv.BrInt, "show"); err != nil {
		return err
	}
	bold(out, "Done: removing the namespaces, bridges and pins")
	return nil
}

// outside connects vm to a TCP server on the outside host, which reports
// the address it saw.
func (d *demo) outside(vm *testenv.NeutronVM) error {
	n := d.n
	var ln net.Listener
	if err := n.ExtNS.Do(func() (err error) {
		ln, err = net.Listen("tcp4", n.ExtIP.String()+":8080")
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			seen <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	if err := d.in(vm.NS, vm.Name, "ping", "-c", "2", "-i", "0.2", n.ExtIP.String()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Fprintf(d.out, "%s: TCP to %s:8080\n", vm.Name, n.ExtIP)
	c, err := vm.DialTCP(ctx, n.ExtIP.String()+":8080")
	if err != nil {
		return err
	}
	c.Close()
	select {
	case from := <-seen:
		fmt.Fprintf(d.out, "    the outside saw a connection from %s (the router's address: SNAT)\n", from)
	case <-time.After(5 * time.Second):
		return errors.New("the outside saw no connection")
	}
	return nil
}

func maskBits(m net.IPMask) int {
	ones, _ := m.Size()
	return ones
}
