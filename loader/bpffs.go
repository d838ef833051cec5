package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return uint32(st.Type) == unix.BPF_FS_MAGIC
}

func isSysfs(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return uint32(st.Type) == unix.SYSFS_MAGIC
}

// EnsureBPFFS makes dir a directory on a BPF filesystem. When dir's nearest
// existing ancestor is not on bpffs it mounts one: at that ancestor when it
// lives in sysfs (where directories cannot be made, e.g. an unmounted
// /sys/fs/bpf), else at dir itself.
func EnsureBPFFS(dir string) error {
	dir = filepath.Clean(dir)
	if isBPFFS(dir) {
		return nil
	}
	anc := dir
	for {
		if _, err := os.Stat(anc); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bpffs %s: %w", dir, err)
		}
		parent := filepath.Dir(anc)
		if parent == anc {
			break
		}
		anc = parent
	}
	switch {
	case isBPFFS(anc):
	case isSysfs(anc) || anc == dir:
		if err := mountBPFFS(anc); err != nil {
			return err
		}
	default:
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("bpffs %s: %w", dir, err)
		}
		return mountBPFFS(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("bpffs %s: %w", dir, err)
	}
	return nil
}

func mountBPFFS(at string) error {
	if err := unix.Mount("bpf", at, "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs at %s: %w", at, err)
	}
	return nil
}
