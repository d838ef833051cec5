package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSweepStale simulates a test binary that died before its cleanups ran:
// a namespace whose owner record names a process that has exited must be
// deleted by the sweep, while a namespace of a live process is kept.
func TestSweepStale(t *testing.T) {
	t.Parallel()
	RequirePrivileged(t)
	live := NewNS(t, "tsts-")
	dead, err := CreateNS("tsts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Delete() }) // in case the sweep fails

	writeDeadRecord(t, dead.Name)

	swept := sweepStale()
	if !slices.Contains(swept, dead.Name) {
		t.Errorf("sweepStale() = %v, want it to include %s", swept, dead.Name)
	}
	if slices.Contains(swept, live.Name) {
		t.Errorf("sweepStale() deleted the live namespace %s", live.Name)
	}
	for _, p := range []string{dead.Path, filepath.Join(OwnerDir, dead.Name)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after the sweep (%v)", p, err)
		}
	}
	for _, p := range []string{live.Path, filepath.Join(OwnerDir, live.Name)} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("live namespace: %v", err)
		}
	}
}

// TestSweepStaleBPFFS: a bpffs mount recorded for a process that has
// exited is unmounted and its record removed; a live one is kept.
func TestSweepStaleBPFFS(t *testing.T) {
	t.Parallel()
	RequirePrivileged(t)
	live := TempBPFFS(t)
	dead := t.TempDir()
	if err := unix.Mount("bpf", dead, "bpf", 0, "mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dead, unix.MNT_DETACH) }) // in case the sweep fails
	name := bpffsRecord + "test-" + strconv.Itoa(os.Getpid())
	writeDeadRecord(t, name, dead)

	swept := sweepStaleBPFFS()
	if !slices.Contains(swept, dead) {
		t.Errorf("sweepStaleBPFFS() = %v, want it to include %s", swept, dead)
	}
	if slices.Contains(swept, live) {
		t.Errorf("sweepStaleBPFFS() unmounted the live %s", live)
	}
	for _, p := range []string{dead, filepath.Join(OwnerDir, name)} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists after the sweep (%v)", p, err)
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(live, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		t.Errorf("live bpffs %s: statfs type %#x, %v", live, st.Type, err)
	}
}

// writeDeadRecord writes OwnerDir/name as claimOwner would have, with the
// extra fields, for a process that is gone: a reaped child, whose pid
// certainly belongs to no process any more.
func writeDeadRecord(t *testing.T, name string, extra ...string) {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	rec, err := ownerRecord()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(rec)
	f[0] = strconv.Itoa(cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(OwnerDir, name), []byte(strings.Join(append(f, extra...), " ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
