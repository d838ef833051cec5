package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// OVSSchema is the Open vSwitch database schema shipped by Debian's
// openvswitch-common.
const OVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// setupOVS is path D: Open vSwitch with its userspace (netdev) datapath and
// the lab's five flows, plus `priority=0 actions=NORMAL` (a bridge with
// fail_mode=secure has none; standalone OVS would add it too).
//
// There is no openvswitch kernel module here, and the run must not touch a
// system OVS, so ovsdb-server and ovs-vswitchd run as our children with
// private OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR and database;
// ovs-vswitchd runs in the hypervisor namespace, where the ports are.
//
// OVS's userspace conntrack drops segments whose checksum is left to
// offload (CHECKSUM_PARTIAL from the VMs' veth): by default userspace TSO
// is enabled, so OVS takes the offload metadata with the packets (its best
// configuration here); with txOff the VMs turn tx checksum offload off
// instead, which also turns off their TSO.
func setupOVS(ctx context.Context, env *Env, txOff bool) (*Path, error) {
	p := &Path{ID: "D", Name: "Open vSwitch, userspace datapath", Floods: []string{"udp", "syn"}, Port: "vnet1"}
	if _, err := env.vethLab(p, testenv.LabOptions{TxOffloadOff: txOff}); err != nil {
		return nil, err
	}
	dir, err := env.SubDir("ovs")
	if err != nil {
		return nil, err
	}
	ovsEnv := []string{"OVS_RUNDIR=" + dir, "OVS_DBDIR=" + dir, "OVS_LOGDIR=" + dir, "OVS_SYSCONFDIR=" + dir}
	db, sock := filepath.Join(dir, "conf.db"), filepath.Join(dir, "db.sock")
	vsctl := func(ctx context.Context, args ...string) error {
		_, err := RunEnv(ctx, ovsEnv, append([]string{"ovs-vsctl", "--db=unix:" + sock, "--timeout=20"}, args...)...)
		return err
	}
	if _, err := RunEnv(ctx, ovsEnv, "ovsdb-tool", "create", db, OVSSchema); err != nil {
		return nil, err
	}
	dbServer, err := Start(ctx, ovsEnv, filepath.Join(dir, "ovsdb-server.out"), "",
		"ovsdb-server", db, "--remote=punix:"+sock, "--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--no-chdir", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	if err != nil {
		return nil, err
	}
	env.Cleanup.Push("stop ovsdb-server", func() error { dbServer.Stop(); return nil })
	if err := waitForFile(ctx, sock, dbServer); err != nil {
		return nil, fmt.Errorf("ovsdb-server: %w", err)
	}
	if err := vsctl(ctx, "--no-wait", "init"); err != nil {
		return nil, err
	}
	if txOff { // done by the lab (LabOptions.TxOffloadOff)
		p.Notes = append(p.Notes, "VMs: ethtool -K eth0 tx off")
	} else {
		// Read by ovs-vswitchd only at start.
		if err := vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true"); err != nil {
			return nil, err
		}
		p.Notes = append(p.Notes, "other_config:userspace-tso-enable=true")
	}
	ctl := filepath.Join(dir, "ovs-vswitchd.ctl")
	vswitchd, err := Start(ctx, ovsEnv, filepath.Join(dir, "ovs-vswitchd.out"), "",
		InNetns(p.Host, "ovs-vswitchd", "unix:"+sock, "--unixctl="+ctl, "--no-chdir",
			"--log-file="+filepath.Join(dir, "ovs-vswitchd.log"))...)
	if err != nil {
		return nil, err
	}
	env.Cleanup.Push("stop ovs-vswitchd", func() error { vswitchd.Stop(); return nil })
	if err := waitForFile(ctx, ctl, vswitchd); err != nil {
		return nil, fmt.Errorf("ovs-vswitchd: %w", err)
	}
	// add-br waits until ovs-vswitchd has applied the change.
	if err := vsctl(ctx, "add-br", "br0",
		"--", "set", "bridge", "br0", "datapath_type=netdev", "fail_mode=secure",
		"--", "add-port", "br0", "vnet1", "--", "set", "interface", "vnet1", "ofport_request=1",
		"--", "add-port", "br0", "vnet2", "--", "set", "interface", "vnet2", "ofport_request=2"); err != nil {
		return nil, err
	}
	flows := filepath.Join(dir, "flows.txt")
	text := strings.Join(slices.Concat(LabFlows, PolicyFlows, []string{"priority=0, actions=NORMAL"}), "\n") + "\n"
	if err := os.WriteFile(flows, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("write %s: %w", flows, err)
	}
	mgmt := "unix:" + filepath.Join(dir, "br0.mgmt")
	if _, err := RunEnv(ctx, ovsEnv, "ovs-ofctl", "add-flows", mgmt, flows); err != nil {
		return nil, err
	}
	p.OVSAppctl = func(ctx context.Context, args ...string) (string, error) {
		return RunEnv(ctx, ovsEnv, append([]string{"ovs-appctl", "-t", ctl}, args...)...)
	}
	p.Flows = func(ctx context.Context, cmd string, args ...string) (string, error) {
		return RunEnvLong(ctx, ovsEnv, append([]string{"ovs-ofctl", cmd, mgmt}, args...)...)
	}
	p.DumpConntrack = func(ctx context.Context, zone int) (string, error) {
		return RunEnvLong(ctx, ovsEnv, "ovs-appctl", "-t", ctl, "dpctl/dump-conntrack", fmt.Sprintf("zone=%d", zone))
	}
	p.SetUDPTimeout = func(ctx context.Context, zone, secs int) error {
		// A zone timeout policy (the userspace datapath applies them
		// too), on the netdev Datapath record, created first.
		if err := vsctl(ctx, "--", "--id=@d", "create", "Datapath", "datapath_version=0",
			"--", "set", "Open_vSwitch", ".", "datapaths:netdev=@d"); err != nil {
			return err
		}
		return vsctl(ctx, "add-zone-tp", "netdev", fmt.Sprintf("zone=%d", zone),
			fmt.Sprintf("udp_first=%d", secs), fmt.Sprintf("udp_single=%d", secs), fmt.Sprintf("udp_multiple=%d", secs))
	}
	p.FlushConntrack = func(ctx context.Context, zone int) (string, error) {
		return RunEnvLong(ctx, ovsEnv, "ovs-appctl", "-t", ctl, "dpctl/flush-conntrack", fmt.Sprintf("zone=%d", zone))
	}
	if v, err := RunEnv(ctx, ovsEnv, "ovs-vswitchd", "--version"); err == nil {
		p.Notes = append(p.Notes, strings.SplitN(v, "\n", 2)[0])
	}
	p.Check = func(ctx context.Context) (string, error) {
		ct, err := p.OVSAppctl(ctx, "dpctl/dump-conntrack")
		if err != nil {
			return "", err
		}
		cov, err := p.OVSAppctl(ctx, "coverage/show")
		if err != nil {
			return "", err
		}
		csum := CoverageTotal(cov, "conntrack_l4csum_err")
		n := strings.Count(ct, "tcp,orig=")
		if n == 0 {
			return "", errors.New("OVS tracked no TCP connection")
		}
		if csum > 0 {
			return "", fmt.Errorf("OVS conntrack dropped %d packets for bad L4 checksums (conntrack_l4csum_err)", csum)
		}
		return fmt.Sprintf("OVS conntrack holds %d TCP connections, conntrack_l4csum_err=0", n), nil
	}
	return p, nil
}

// waitForFile waits up to CommandTimeout for path to exist, failing early if
// proc exits.
func waitForFile(ctx context.Context, path string, proc *Proc) error {
	deadline := time.Now().Add(CommandTimeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not appear within %v", path, CommandTimeout)
		}
		select {
		case <-proc.Done():
			return fmt.Errorf("exited before creating %s", path)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CoverageTotal returns the total of counter name in `ovs-appctl
// coverage/show` output (0 if absent: OVS lists only counters that moved).
func CoverageTotal(coverageShow, name string) int {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s.*total:\s*(\d+)`)
	m := re.FindStringSubmatch(coverageShow)
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}
