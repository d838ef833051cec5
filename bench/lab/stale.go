package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SweepStale removes what earlier runs left behind when they were killed
// too hard to clean up (SIGKILL, OOM): namespaces and temporary directories
// named NamePrefix + PID + "-..." whose PID no longer exists. Their child
// processes (servers, OVS daemons) died with them (Pdeathsig). It returns
// what it removed.
func SweepStale(ctx context.Context) ([]string, error) {
	var removed []string
	var errs []error
	dead := func(name string) bool {
		rest, ok := strings.CutPrefix(name, NamePrefix)
		if !ok {
			return false
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			return false
		}
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if dead(e.Name()) {
				if _, err := Run(ctx, "ip", "netns", "del", e.Name()); err != nil {
					errs = append(errs, err)
					continue
				}
				removed = append(removed, "netns "+e.Name())
			}
		}
	}
	entries, err := os.ReadDir(os.TempDir())
	if err != nil {
		return removed, errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if !e.IsDir() || !dead(e.Name()) {
			continue
		}
		dir := filepath.Join(os.TempDir(), e.Name())
		// A private bpffs may still be mounted inside: never RemoveAll
		// through a mount.
		if err := unmountUnder(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, "dir "+dir)
	}
	return removed, errors.Join(errs...)
}

// unmountUnder unmounts every mount point at or below dir.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		if err := unix.Unmount(points[i], unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", points[i], err)
		}
	}
	return sc.Err()
}
