package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nsInode returns the inode identifying the network namespace at path.
func nsInode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

func TestNSBasics(t *testing.T) {
	t.Parallel()
	ns := NewNS(t, "tst-")

	if !strings.HasPrefix(ns.Name, "tst-") || ns.Path != filepath.Join("/run/netns", ns.Name) {
		t.Fatalf("unexpected NS %+v", ns)
	}
	// `ip netns` finds it by name.
	if out, err := runCmd("ip", "netns", "list"); err != nil || !strings.Contains(out, ns.Name) {
		t.Fatalf("ip netns list does not show %s (err %v):\n%s", ns.Name, err, out)
	}

	// Do really runs inside the namespace and the thread really comes back.
	rootIno := nsInode(t, "/proc/self/ns/net")
	err := ns.Do(func() error {
		if got, want := nsInode(t, "/proc/thread-self/ns/net"), nsInode(t, ns.Path); got != want {
			return fmt.Errorf("thread netns inode %d, want %d", got, want)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if lo.Attrs().Flags&net.FlagUp == 0 {
			return errors.New("lo is not up")
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		if len(links) != 1 {
			return fmt.Errorf("fresh namespace has %d links, want only lo", len(links))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := nsInode(t, "/proc/thread-self/ns/net"); got != rootIno {
		t.Fatalf("test goroutine's thread is in netns %d, want %d", got, rootIno)
	}

	// Handle is bound to the namespace.
	h := ns.MustHandle(t)
	links, err := h.LinkList()
	if err != nil || len(links) != 1 || links[0].Attrs().Name != "lo" {
		t.Fatalf("Handle().LinkList() = %v, %v; want just lo", links, err)
	}

	// Command/Run: nsenter switches the network namespace only, keeping
	// our mount namespace (bpffs stays visible, unlike `ip netns exec`).
	out := ns.Run(t, "readlink", "/proc/self/ns/net", "/proc/self/ns/mnt")
	myMnt, _ := os.Readlink("/proc/self/ns/mnt")
	if !strings.Contains(out, fmt.Sprintf("net:[%d]", nsInode(t, ns.Path))) || !strings.Contains(out, myMnt) {
		t.Fatalf("nsenter command runs in\n%s\nwant net:[%d] and our %s", out, nsInode(t, ns.Path), myMnt)
	}
}

// TestSysctlIsPerThread verifies the kernel behaviour the package relies on:
// /proc/sys/net resolves against the netns of the thread that opens the file,
// and an open descriptor keeps that netns. /proc/net does not follow the
// thread, /proc/thread-self/net does.
func TestSysctlIsPerThread(t *testing.T) {
	t.Parallel()
	ns := NewNS(t, "tst-")
	const key = "net/ipv4/ip_forward"
	rootVal, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		t.Fatal(err)
	}
	want := "1"
	if strings.TrimSpace(string(rootVal)) == "1" {
		want = "0"
	}
	if err := ns.SetSysctl(key, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ns.Sysctl(key); err != nil || got != want {
		t.Fatalf("Sysctl(%s) = %q, %v; want %q", key, got, err, want)
	}
	if got := strings.TrimSpace(ns.Run(t, "cat", "/proc/sys/"+key)); got != want {
		t.Fatalf("nsenter cat /proc/sys/%s = %q, want %q", key, got, want)
	}
	if now, _ := os.ReadFile("/proc/sys/" + key); string(now) != string(rootVal) {
		t.Fatalf("root %s changed from %q to %q", key, rootVal, now)
	}

	// An fd opened inside the namespace keeps referring to it outside.
	var f *os.File
	if err := ns.Do(func() (err error) {
		f, err = os.Open("/proc/sys/" + key)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 8)
	n, _ := f.ReadAt(buf, 0)
	if got := strings.TrimSpace(string(buf[:n])); got != want {
		t.Fatalf("fd opened in netns, read outside: %q, want %q", got, want)
	}

	// /proc/thread-self/net follows the thread; /proc/net (= /proc/self/net)
	// shows the thread-group leader's namespace.
	rootDev, _ := os.ReadFile("/proc/net/dev")
	if err := ns.Do(func() error {
		self, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		if strings.Count(string(self), ":") != 1 || !strings.Contains(string(self), "lo:") {
			return fmt.Errorf("/proc/thread-self/net/dev inside the netns:\n%s", self)
		}
		if unix.Gettid() == os.Getpid() {
			return nil // we happen to be the main thread: /proc/net follows us
		}
		proc, _ := os.ReadFile("/proc/net/dev")
		if strings.Count(string(proc), ":") != strings.Count(string(rootDev), ":") {
			return fmt.Errorf("/proc/net/dev followed the thread:\n%s", proc)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestDoThreadsComeBack runs many Do calls concurrently and then checks that
// no thread of the process was left in a test namespace. It is deliberately
// not parallel: parallel tests (which legitimately have threads inside
// namespaces) only start after the sequential ones are done.
func TestDoThreadsComeBack(t *testing.T) {
	RequirePrivileged(t)
	a, b := NewNS(t, "tst-"), NewNS(t, "tst-")
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		ns := a
		if i%2 == 1 {
			ns = b
		}
		wg.Go(func() {
			errs <- ns.Do(func() error {
				time.Sleep(time.Millisecond)
				return nil
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	bad := map[uint64]string{nsInode(t, a.Path): a.Name, nsInode(t, b.Path): b.Name}
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, p := range tasks {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && bad[st.Ino] != "" {
			t.Errorf("thread %s left in netns %s", p, bad[st.Ino])
		}
	}
}

func TestDoPropagatesPanicAndGoexit(t *testing.T) {
	t.Parallel()
	ns := NewNS(t, "tst-")
	rootIno := nsInode(t, "/proc/thread-self/ns/net")

	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want boom", p)
			}
		}()
		ns.Do(func() error { panic("boom") })
		t.Error("Do returned after a panic")
	}()

	var sub *testing.T
	t.Run("skip-inside-Do", func(t *testing.T) {
		sub = t
		ns.Do(func() error {
			t.Skip("t.Skip inside Do stops the subtest")
			return nil
		})
		t.Error("test continued after t.Skip inside Do")
	})
	if !sub.Skipped() {
		t.Error("subtest was not marked skipped")
	}

	if err := ns.Do(func() error { return os.ErrClosed }); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Do error = %v, want fn's error", err)
	}
	if got := nsInode(t, "/proc/thread-self/ns/net"); got != rootIno {
		t.Errorf("thread in netns %d after Do, want %d", got, rootIno)
	}
}
