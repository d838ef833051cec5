// Package lab builds the benchmark topologies: the ebpfovs conntrack lab
// (VM1 and VM2 are network namespaces whose eth0, 10.0.10.1 and 10.0.10.2,
// is a veth whose peer vnet1/vnet2 sits in a "hypervisor" namespace; built
// by testenv.BuildLab, the tests' lab) joined by each of the switches users
// would otherwise pick.
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

	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// NamePrefix starts the name of every namespace and temporary directory a
// benchmark run creates: NamePrefix + PID + "-" + random hex.
const NamePrefix = "ebbench-"

// VM addresses of the lab (testenv.VMIP).
var (
	VM1IP = testenv.VMIP(1).String()
	VM2IP = testenv.VMIP(2).String()
)

// VMMAC is the MAC address of lab VM n (testenv.VMMAC).
func VMMAC(n int) string { return testenv.VMMAC(n).String() }

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

// mountBPFFS mounts a private bpffs for path id (paths side by side keep
// their bridges apart) and registers its unmount on Cleanup.
func (e *Env) mountBPFFS(id string) (string, error) {
	d, err := e.SubDir("bpffs-" + id)
	if err != nil {
		return "", err
	}
	if err := unix.Mount("bpf", d, "bpf", 0, "mode=0700"); err != nil {
		return "", fmt.Errorf("mount bpffs at %s: %w", d, err)
	}
	e.Cleanup.Push("unmount "+d, func() error { return unix.Unmount(d, unix.MNT_DETACH) })
	return d, nil
}

// buildLab builds path id's lab with testenv.BuildLab: its namespaces are
// Tag + "-" + id + "-hv" (none if opt.Direct), "-vm1" and "-vm2", and their
// removal is registered on Cleanup.
func (e *Env) buildLab(id string, opt testenv.LabOptions) (*testenv.Lab, error) {
	opt.Tag = e.Tag + "-" + strings.ToLower(id)
	l, remove, err := testenv.BuildLab(opt)
	if err != nil {
		return nil, err
	}
	e.Cleanup.Push("remove lab "+l.Tag, remove)
	return l, nil
}

// vethLab builds path id's lab (see buildLab): a hypervisor namespace and
// two VMs whose eth0 is a veth with vnet1/vnet2 in the hypervisor. The ports
// are up and unconnected. It fills in p's Host, VM1 and VM2.
func (e *Env) vethLab(p *Path, opt testenv.LabOptions) (*testenv.Lab, error) {
	l, err := e.buildLab(p.ID, opt)
	if err != nil {
		return nil, err
	}
	p.Host, p.VM1, p.VM2 = l.Host.Name, l.VM(1).NS.Name, l.VM(2).NS.Name
	return l, nil
}

// Sysctl sets key=value (dotted sysctl syntax) in network namespace ns.
func Sysctl(ctx context.Context, ns, key, value string) error {
	_, err := Run(ctx, InNetns(ns, "sysctl", "-qw", key+"="+value)...)
	return err
}
