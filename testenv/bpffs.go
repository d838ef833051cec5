package testenv

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TempBPFFS mounts a private BPF filesystem on a temporary directory and
// returns its path; cleanup unmounts it, which drops every pin a test made
// there. Tests pass it as the --bpffs of their bridges, so parallel test
// packages never see each other's pins.
func TempBPFFS(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		tb.Fatalf("mount bpffs at %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount bpffs %s: %v", dir, err)
		}
	})
	return dir
}
