package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OwnerDir records which process created each namespace of this package:
// OwnerDir/NAME holds "PID STARTTIME PIDNS". It lives outside /run/netns so that
// `ip netns list` shows only namespaces.
//
// t.Cleanup does not run when a test binary dies (e.g. the -timeout panic or
// SIGKILL), so the first namespace a process creates triggers a sweep that
// deletes namespaces whose creator process no longer exists. Records from
// another PID namespace are left alone, since their pids mean nothing here.
const OwnerDir = "/run/ebpfovs-testenv"

// procStartTime returns the start time of process pid (field 22 of
// /proc/PID/stat), which together with the pid identifies a process even if
// the pid is reused. A zombie counts as gone: its /proc entry outlives it
// until its parent (possibly a lax init) reaps it.
func procStartTime(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 20 {
		return "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return "", fmt.Errorf("process %d is a zombie", pid)
	}
	return f[19], nil
}

// ownerRecord identifies the calling process: "PID STARTTIME PIDNS".
func ownerRecord() (string, error) {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		return "", err
	}
	pidns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %s %s", os.Getpid(), start, pidns), nil
}

// claimOwner creates OwnerDir/name exclusively, recording this process
// (and, for a bpffs record, the mount point: extra). It reports false if
// the name is already claimed.
func claimOwner(name string, extra ...string) (bool, error) {
	if err := os.MkdirAll(OwnerDir, 0o755); err != nil {
		return false, err
	}
	rec, err := ownerRecord()
	if err != nil {
		return false, err
	}
	for _, x := range extra {
		rec += " " + x
	}
	f, err := os.OpenFile(filepath.Join(OwnerDir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = fmt.Fprintln(f, rec)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return true, err
}

func releaseOwner(name string) {
	os.Remove(filepath.Join(OwnerDir, name))
}

// bpffsRecord prefixes the owner records of TempBPFFS mounts:
// OwnerDir/bpffs-RANDOM holds "PID STARTTIME PIDNS MOUNTPOINT" (the mount
// point last: a test's temporary directory may contain spaces).
const bpffsRecord = "bpffs-"

// sweepStale deletes namespaces recorded in OwnerDir whose creating process
// is gone, and returns their names. Errors are ignored: sweeping is best
// effort and must not fail the test that happens to trigger it. The
// caller holds NetnsRunDir's lock (a name freed here may be claimed anew).
func sweepStale() []string {
	return sweep(false)
}

// sweepStaleBPFFS unmounts the TempBPFFS mounts of processes that are gone
// (their pins, programs and links go with them), and returns the mount
// points. Best effort, as sweepStale. Record names are random, so no lock
// is needed: a record this removes is never claimed again.
func sweepStaleBPFFS() []string {
	return sweep(true)
}

// sweep removes what dead processes left: namespaces, or bpffs mounts.
func sweep(bpffs bool) []string {
	entries, err := os.ReadDir(OwnerDir)
	if err != nil {
		return nil
	}
	myPidns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil
	}
	var swept []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), bpffsRecord) != bpffs {
			continue
		}
		b, err := os.ReadFile(filepath.Join(OwnerDir, e.Name()))
		if err != nil {
			continue
		}
		f := strings.SplitN(strings.TrimSuffix(string(b), "\n"), " ", 4)
		want := 3
		if bpffs {
			want = 4
		}
		if len(f) != want || f[2] != myPidns {
			continue // being written right now, or from another PID namespace
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		if start, err := procStartTime(pid); err == nil && start == f[1] {
			continue // the creator is alive
		}
		if bpffs {
			unix.Unmount(f[3], unix.MNT_DETACH)
			os.Remove(f[3])
			os.Remove(filepath.Dir(f[3])) // the test's temporary directory, if empty
			swept = append(swept, f[3])
		} else {
			path := filepath.Join(NetnsRunDir, e.Name())
			unix.Unmount(path, unix.MNT_DETACH)
			os.Remove(path)
			swept = append(swept, e.Name())
		}
		releaseOwner(e.Name())
	}
	return swept
}
