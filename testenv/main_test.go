package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestMain checks, after all tests and their cleanups ran, that every
// namespace this test binary created is gone from /run/netns and from the
// mount table.
func TestMain(m *testing.M) {
	code := m.Run()
	if leaks := leakedNamespaces(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: leaked namespaces: %s\n", strings.Join(leaks, ", "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// leakedNamespaces returns the namespaces created by this process that still
// have a file in /run/netns or a mount.
func leakedNamespaces() []string {
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var leaks []string
	createdNames.Range(func(k, _ any) bool {
		name := k.(string)
		path := filepath.Join(NetnsRunDir, name)
		if _, err := os.Lstat(path); err == nil {
			leaks = append(leaks, name+" (file)")
		}
		if strings.Contains(string(mounts), " "+path+" ") {
			leaks = append(leaks, name+" (mount)")
		}
		if _, err := os.Lstat(filepath.Join(OwnerDir, name)); err == nil {
			leaks = append(leaks, name+" (owner record)")
		}
		return true
	})
	sort.Strings(leaks)
	return leaks
}
