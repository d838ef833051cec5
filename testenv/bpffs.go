package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TempBPFFS mounts a private BPF filesystem on a temporary directory and
// returns its path; cleanup unmounts it, which drops every pin a test made
// there. Tests pass it as the --bpffs of their bridges, so parallel test
// packages never see each other's pins.
//
// A test binary killed before its cleanups (SIGKILL, the -timeout panic)
// would leave the mount, and the programs and maps pinned in it, behind:
// each mount is recorded in OwnerDir, and the first TempBPFFS of a
// process unmounts those of processes that are gone.
func TempBPFFS(tb testing.TB) string {
	tb.Helper()
	bpffsSweep.Do(func() {
		if swept := sweepStaleBPFFS(); len(swept) > 0 {
			fmt.Fprintf(os.Stderr, "testenv: unmounted bpffs left by dead test processes: %s\n", strings.Join(swept, " "))
		}
	})
	dir := tb.TempDir()
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		tb.Fatalf("bpffs record name: %v", err)
	}
	rec := bpffsRecord + hex.EncodeToString(id[:])
	if _, err := claimOwner(rec, dir); err != nil {
		tb.Fatalf("record bpffs %s in %s: %v", dir, OwnerDir, err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		releaseOwner(rec)
		tb.Fatalf("mount bpffs at %s: %v", dir, err)
	}
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount bpffs %s: %v", dir, err)
		}
		releaseOwner(rec)
	})
	return dir
}

var bpffsSweep sync.Once
