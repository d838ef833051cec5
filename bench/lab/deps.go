package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// Requirement is a program the benchmark runs and the Debian package that
// provides it.
type Requirement struct {
	Command, Package string
}

// Requirements are the programs every run needs.
var Requirements = []Requirement{
	{"ip", "iproute2"},
	{"nsenter", "util-linux"},
	{"taskset", "util-linux"},
	{"sysctl", "procps"},
	{"ethtool", "ethtool"},
	{"iperf3", "iperf3"},
	{"nft", "nftables"},
	{"ovsdb-tool", "openvswitch-common"},
	{"ovs-appctl", "openvswitch-common"},
	{"ovs-ofctl", "openvswitch-common"},
	{"ovsdb-server", "openvswitch-switch"},
	{"ovs-vswitchd", "openvswitch-switch"},
	{"ovs-vsctl", "openvswitch-switch"},
}

// installTimeout bounds apt-get.
const installTimeout = 10 * time.Minute

// EnsurePackages installs, with apt-get, the Debian packages of the
// required commands that are missing. Nothing is skipped: a package that
// cannot be installed is an error. It returns the packages it installed.
func EnsurePackages(ctx context.Context, reqs []Requirement) ([]string, error) {
	var missing []string
	for _, r := range reqs {
		if _, err := exec.LookPath(r.Command); err != nil && !slices.Contains(missing, r.Package) {
			missing = append(missing, r.Package)
		}
	}
	// The OVS schema comes with the package, not with a command.
	if _, err := os.Stat(OVSSchema); err != nil && !slices.Contains(missing, "openvswitch-common") {
		missing = append(missing, "openvswitch-common")
	}
	if len(missing) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	apt := func(args ...string) error {
		cmd := Command(ctx, []string{"DEBIAN_FRONTEND=noninteractive"}, append([]string{"apt-get"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
		}
		return nil
	}
	install := append([]string{"install", "-y", "-q"}, missing...)
	if err := apt(install...); err != nil {
		// The package lists may be missing or stale: update and retry.
		if uerr := apt("update", "-q"); uerr != nil {
			return nil, fmt.Errorf("install %s: %w", strings.Join(missing, " "), uerr)
		}
		if err := apt(install...); err != nil {
			return nil, fmt.Errorf("install %s: %w", strings.Join(missing, " "), err)
		}
	}
	return missing, nil
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
