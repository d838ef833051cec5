package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsRunDir is where named network namespaces are bind-mounted, the same
// directory `ip netns` uses.
const NetnsRunDir = "/run/netns"

// NS is a named network namespace, created like `ip netns add NAME`: the
// namespace is bind-mounted at /run/netns/NAME, so `ip netns`, nsenter and
// the ebpfovs --netns flag find it by name.
type NS struct {
	// Name is the namespace name, e.g. "tstw-3fa2c19b0d" or a lab's
	// "eolab-3fa2c19b0-hv".
	Name string
	// Path is the bind mount, NetnsRunDir + "/" + Name.
	Path string

	deleteOnce sync.Once
	deleteErr  error
}

// NewNS creates a network namespace named UniqueName(prefix) (so prefix is at
// most 7 bytes), brings its loopback interface up and registers a cleanup on
// tb that deletes it (unmount and remove /run/netns/NAME). It skips the test
// when not privileged (see RequirePrivileged).
//
// Deleting the name does not by itself destroy the namespace: sockets, tap
// file descriptors or processes still inside keep it alive. Helpers in this
// package close what they create in cleanups that run before the namespace's.
func NewNS(tb testing.TB, prefix string) *NS {
	tb.Helper()
	RequirePrivileged(tb)
	ns, err := CreateNS(prefix)
	if err != nil {
		tb.Fatalf("testenv: create netns: %v", err)
	}
	tb.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			tb.Errorf("testenv: delete netns %s: %v", ns.Name, err)
		}
	})
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		tb.Fatalf("testenv: netns %s: bring lo up: %v", ns.Name, err)
	}
	return ns
}

// CreateNS creates a named network namespace like NewNS but without a test:
// the caller must call Delete. Loopback is left down.
func CreateNS(prefix string) (*NS, error) {
	if err := prepareRunDir(); err != nil {
		return nil, err
	}
	// UniqueName has at least 32 random bits; the exclusive creates catch
	// the unlikely collision with a name that exists right now, and we
	// simply retry with another name.
	for attempt := 0; ; attempt++ {
		ns, taken, err := createNS(UniqueName(prefix), true)
		if taken && attempt < 10 {
			continue
		}
		return ns, err
	}
}

// createNamedNS creates the network namespace called name, which must not
// exist yet, and brings its loopback up. With owned, the namespace is
// recorded in OwnerDir as this process's, so the sweep of a later process
// deletes it should this one die without deleting it; without, it may
// outlive the process (nothing but Delete removes it).
func createNamedNS(name string, owned bool) (*NS, error) {
	if err := prepareRunDir(); err != nil {
		return nil, err
	}
	ns, _, err := createNS(name, owned)
	if err != nil {
		return nil, err
	}
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("netns %s: bring lo up: %w", name, err), ns.Delete())
	}
	return ns, nil
}

// createNS creates and mounts the namespace name (see CreateNS), recording
// its owner if owned. taken reports that the name exists already (the
// error says so too). The caller has run prepareRunDir.
func createNS(name string, owned bool) (ns *NS, taken bool, err error) {
	path := filepath.Join(NetnsRunDir, name)
	if owned {
		ok, err := claimOwner(name)
		if err != nil {
			return nil, false, fmt.Errorf("record owner of %s: %w", name, err)
		}
		if !ok {
			return nil, true, fmt.Errorf("%s: name taken", name)
		}
	}
	release := func() {
		if owned {
			releaseOwner(name)
		}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		release()
		return nil, errors.Is(err, unix.EEXIST), fmt.Errorf("create %s: %w", path, err)
	}
	unix.Close(fd)
	if err := mountNewNetns(path); err != nil {
		os.Remove(path)
		release()
		return nil, false, err
	}
	createdNames.Store(name, true)
	return &NS{Name: name, Path: path}, false, nil
}

// mountNewNetns creates a fresh network namespace and bind-mounts it onto
// path. The namespace is created by unshare(CLONE_NEWNET) on a locked thread
// that switches back to its original namespace afterwards.
func mountNewNetns(path string) error {
	return onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount netns on %s: %w", path, err)
		}
		return nil
	}).rethrow()
}

// createdNames records every namespace name this process created, so the
// package's own tests can check in TestMain that all of them were deleted.
var createdNames sync.Map

var (
	runDirMu       sync.Mutex // serializes prepareRunDir within the process
	runDirPrepared bool
)

// prepareRunDir makes NetnsRunDir exist and be a shared mount point, as
// iproute2 does, so that unmounting a namespace also unmounts its copies in
// other mount namespaces (e.g. those of running `ip netns exec` commands) and
// the namespace can be freed. Concurrent test processes serialize with an
// flock on the directory so they don't stack bind mounts on it. The first
// call in a process also deletes namespaces left behind by dead test
// processes (see OwnerDir).
func prepareRunDir() error {
	runDirMu.Lock()
	defer runDirMu.Unlock()
	if runDirPrepared {
		return nil
	}
	if err := os.MkdirAll(NetnsRunDir, 0o755); err != nil {
		return err
	}
	dir, err := os.Open(NetnsRunDir)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("flock %s: %w", NetnsRunDir, err)
	}
	defer unix.Flock(int(dir.Fd()), unix.LOCK_UN)
	if err := makeRunDirShared(); err != nil {
		return err
	}
	if swept := sweepStale(); len(swept) > 0 {
		fmt.Fprintf(os.Stderr, "testenv: deleted namespaces left by dead test processes: %s\n", strings.Join(swept, " "))
	}
	runDirPrepared = true
	return nil
}

func makeRunDirShared() error {
	madeMount := false
	for {
		err := unix.Mount("", NetnsRunDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: not a mount point yet; make it one by binding it onto itself.
		if !errors.Is(err, unix.EINVAL) || madeMount {
			return fmt.Errorf("make %s a shared mount: %w", NetnsRunDir, err)
		}
		if err := unix.Mount(NetnsRunDir, NetnsRunDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind mount %s onto itself: %w", NetnsRunDir, err)
		}
		madeMount = true
	}
}

// Delete removes the namespace's name like `ip netns del`: it lazily unmounts
// /run/netns/NAME and removes the file. The kernel destroys the namespace
// (and the interfaces in it) once nothing else refers to it. Delete is
// idempotent; NewNS registers it as a cleanup.
func (ns *NS) Delete() error {
	ns.deleteOnce.Do(func() {
		var errs []error
		if err := unix.Unmount(ns.Path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", ns.Path, err))
		}
		if err := os.Remove(ns.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		releaseOwner(ns.Name)
		ns.deleteErr = errors.Join(errs...)
	})
	return ns.deleteErr
}

// String returns the namespace name.
func (ns *NS) String() string { return ns.Name }

// Open returns a handle (file descriptor) for the namespace, e.g. for
// netlink.NsFd or setns. The caller must close it.
func (ns *NS) Open() (netns.NsHandle, error) {
	h, err := netns.GetFromPath(ns.Path)
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %s: %w", ns.Path, err)
	}
	return h, nil
}

// Do runs fn on a locked OS thread that has entered the namespace with
// setns(CLONE_NEWNET), then switches the thread back. It does not change the
// mount namespace, so /sys/fs/bpf stays the caller's. Sockets and tap devices
// opened inside fn stay in the namespace after Do returns. Inside fn,
// netlink's package-level functions (netlink.LinkByName, ...) act on the
// namespace and /proc/sys/net refers to it; /proc/net does not (use
// /proc/thread-self/net).
//
// fn runs on a new goroutine: a panic in fn is re-raised in the caller, and
// runtime.Goexit (t.FailNow, t.Skip) is propagated to the caller too, so
// t.Fatal inside fn works when Do is called from the test goroutine. fn must
// not start goroutines that expect to be in the namespace. If switching back
// fails, the thread is left locked so the Go runtime discards it.
func (ns *NS) Do(fn func() error) error {
	target, err := ns.Open()
	if err != nil {
		return err
	}
	defer target.Close()
	return onLockedThread(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("setns %s: %w", ns.Name, err)
		}
		return fn()
	}).rethrow()
}

// onLockedThread runs fn in a new goroutine locked to its OS thread and
// restores the thread's original network namespace afterwards (fn may enter
// or create another one), also when fn panics or calls runtime.Goexit. When
// the restore fails the thread stays locked and dies with the goroutine.
// The returned callResult tells how fn ended.
func onLockedThread(fn func() error) callResult {
	done := make(chan callResult, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get() // this thread's namespace
		if err != nil {
			runtime.UnlockOSThread()
			done <- callResult{err: fmt.Errorf("get current netns: %w", err)}
			return
		}
		var r callResult
		// Deferred so that it also runs when fn calls runtime.Goexit, which
		// unwinds this goroutine without returning.
		defer func() {
			if err := netns.Set(orig); err != nil {
				// Keep the thread locked: the runtime terminates it when this
				// goroutine exits instead of reusing a thread in the wrong netns.
				r.err = errors.Join(r.err, fmt.Errorf("switch thread back to original netns: %w", err))
			} else {
				runtime.UnlockOSThread()
			}
			orig.Close()
			done <- r
		}()
		callCapturing(fn, &r)
	}()
	return <-done
}

// callResult records how a function called by callCapturing ended.
type callResult struct {
	err      error
	panicked bool
	panicVal any
	goexit   bool
}

// callCapturing calls fn and records its error, panic or runtime.Goexit in
// r. A panic is recovered; a Goexit cannot be stopped, but it is recorded
// before the goroutine's remaining deferred calls run.
func callCapturing(fn func() error, r *callResult) {
	normal := false
	defer func() {
		if normal {
			return
		}
		if p := recover(); p != nil {
			r.panicked, r.panicVal = true, p
		} else {
			r.goexit = true
		}
	}()
	r.err = fn()
	normal = true
}

// rethrow re-raises a captured panic or Goexit in the current goroutine, or
// returns the captured error.
func (r callResult) rethrow() error {
	switch {
	case r.panicked:
		panic(r.panicVal)
	case r.goexit:
		runtime.Goexit()
	}
	return r.err
}

// Handle returns a netlink handle whose sockets live in the namespace
// (netlink.NewHandleAt). The caller must Close it; see also MustHandle.
func (ns *NS) Handle() (*netlink.Handle, error) {
	h, err := ns.Open()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns.Name, err)
	}
	return nh, nil
}

// MustHandle is Handle for tests: it fails the test on error and closes the
// handle in a cleanup.
func (ns *NS) MustHandle(tb testing.TB) *netlink.Handle {
	tb.Helper()
	h, err := ns.Handle()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(h.Close)
	return h
}

// Command returns a command that runs name inside the namespace through
// `nsenter --net=PATH`, which switches only the network namespace (unlike
// `ip netns exec`, it keeps the caller's mount namespace and /sys/fs/bpf).
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + ns.Path, "--", name}, args...)...)
}

// RunTimeout bounds commands started by NS.Run and VM.Ping. It is not tied
// to the test's context, which is already canceled when cleanups run, so
// Run also works in a t.Cleanup (e.g. to dump state after a failure).
const RunTimeout = 2 * time.Minute

// Run runs name inside the namespace (see Command) and returns its combined
// output. It fails the test, including the output, if the command fails or
// takes longer than RunTimeout.
func (ns *NS) Run(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	out, err := ns.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("testenv: in netns %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sysctl reads /proc/sys/KEY inside the namespace. KEY is a path relative to
// /proc/sys with slashes, e.g. "net/ipv4/ip_forward" (slashes rather than
// dots so that interface names containing dots are unambiguous).
func (ns *NS) Sysctl(key string) (string, error) {
	var val string
	err := ns.Do(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		val = strings.TrimSpace(string(b))
		return err
	})
	return val, err
}

// SetSysctl writes value to /proc/sys/KEY inside the namespace; see Sysctl.
// The file is opened on the thread inside the namespace, which is what makes
// the write apply to the namespace.
func (ns *NS) SetSysctl(key, value string) error {
	return ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
	})
}

// DisableIPv6 sets disable_ipv6=1 on the given interfaces of the namespace,
// or, with no interfaces, on "all" and "default" (so interfaces created later
// start with IPv6 off, sending no router solicitations or MLD reports).
func (ns *NS) DisableIPv6(ifaces ...string) error {
	if len(ifaces) == 0 {
		ifaces = []string{"default", "all"}
	}
	return ns.Do(func() error {
		if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, os.ErrNotExist) {
			return nil // IPv6 is compiled out or disabled at boot
		}
		for _, ifc := range ifaces {
			p := filepath.Join("/proc/sys/net/ipv6/conf", ifc, "disable_ipv6")
			if err := os.WriteFile(p, []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
}
