// Package lab builds the benchmark topologies: the ebpfovs conntrack lab
// (VM1 and VM2 are network namespaces whose eth0, 10.0.10.1 and 10.0.10.2,
// is a veth whose peer vnet1/vnet2 sits in a "hypervisor" namespace) joined
// by each of the switches users would otherwise pick.
//
// Every path gets its own namespaces, so all paths exist side by side and
// the benchmark can interleave them round by round. Names carry a per-run
// tag (see NewEnv) so concurrent runs and test suites never collide, and
// everything a setup creates is registered on Env.Cleanup.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// NamePrefix starts the name of every namespace and temporary directory a
// benchmark run creates: NamePrefix + PID + "-" + random hex.
const NamePrefix = "ebbench-"

// VM addresses of the lab.
const (
	VM1IP = "10.0.10.1"
	VM2IP = "10.0.10.2"
)

// Env is one benchmark run's environment: its unique tag, its temporary
// directory and the teardown steps of everything it created.
type Env struct {
	// Tag is unique to the run: NamePrefix + PID + "-" + 6 hex digits.
	Tag string
	// Dir is the run's temporary directory (logs, OVS database, bpffs).
	Dir string
	// Cleanup removes everything the run created.
	Cleanup *Cleanup
}

// NewEnv creates the run's tag and temporary directory. Call
// Env.Cleanup.Run when done, also on failure.
func NewEnv() (*Env, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("random tag: %w", err)
	}
	tag := NamePrefix + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
	dir, err := os.MkdirTemp("", tag+"-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	e := &Env{Tag: tag, Dir: dir, Cleanup: &Cleanup{}}
	e.Cleanup.Push("remove "+dir, func() error { return os.RemoveAll(dir) })
	return e, nil
}

// SubDir creates and returns a directory under Env.Dir.
func (e *Env) SubDir(name string) (string, error) {
	d := filepath.Join(e.Dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", d, err)
	}
	return d, nil
}

// NewNetns creates the network namespace Tag + "-" + suffix (with loopback
// up and IPv6 off, so no router solicitations or MLD reports add noise) and
// registers its removal.
func (e *Env) NewNetns(ctx context.Context, suffix string) (string, error) {
	name := e.Tag + "-" + suffix
	if _, err := Run(ctx, "ip", "netns", "add", name); err != nil {
		return "", err
	}
	e.Cleanup.Push("delete netns "+name, func() error {
		_, err := Run(context.Background(), "ip", "netns", "del", name)
		return err
	})
	for _, argv := range [][]string{
		{"ip", "-n", name, "link", "set", "lo", "up"},
		InNetns(name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"),
	} {
		if _, err := Run(ctx, argv...); err != nil {
			return "", err
		}
	}
	return name, nil
}

// Sysctl sets key=value (dotted sysctl syntax) in network namespace ns.
func Sysctl(ctx context.Context, ns, key, value string) error {
	_, err := Run(ctx, InNetns(ns, "sysctl", "-qw", key+"="+value)...)
	return err
}

// configureVM gives eth0 in VM namespace ns the lab address of VM n and a
// fixed MAC, and brings it up.
func configureVM(ctx context.Context, ns string, n int) error {
	for _, args := range [][]string{
		{"link", "set", "eth0", "address", fmt.Sprintf("02:00:00:00:0a:%02x", n)},
		{"addr", "add", fmt.Sprintf("10.0.10.%d/24", n), "dev", "eth0"},
		{"link", "set", "eth0", "up"},
	} {
		if _, err := Run(ctx, append([]string{"ip", "-n", ns}, args...)...); err != nil {
			return fmt.Errorf("VM%d: %w", n, err)
		}
	}
	return nil
}

// vethLab creates the lab's namespaces for path id: a hypervisor namespace
// and two VMs whose eth0 is a veth with vnet1/vnet2 in the hypervisor. The
// ports are up and unconnected.
func (e *Env) vethLab(ctx context.Context, id string) (host, vm1, vm2 string, err error) {
	id = strings.ToLower(id)
	if host, err = e.NewNetns(ctx, id+"-hv"); err != nil {
		return
	}
	vms := [2]string{}
	for i := range vms {
		n := i + 1
		if vms[i], err = e.NewNetns(ctx, fmt.Sprintf("%s-vm%d", id, n)); err != nil {
			return
		}
		port := fmt.Sprintf("vnet%d", n)
		if _, err = Run(ctx, "ip", "-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vms[i]); err != nil {
			return
		}
		if err = configureVM(ctx, vms[i], n); err != nil {
			return
		}
		if _, err = Run(ctx, "ip", "-n", host, "link", "set", port, "up"); err != nil {
			return
		}
	}
	return host, vms[0], vms[1], nil
}
