package loader

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// netnsPath turns an `ip netns` name into its path; paths pass through.
func netnsPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	return "/run/netns/" + name
}

// inNetNS runs fn on an OS thread switched into the network namespace name
// (an `ip netns` name or a path); "" runs fn where we are. Only the network
// namespace changes: the mount namespace, and so bpffs, stays the caller's
// (which `ip netns exec` would not give us).
func inNetNS(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	target, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: Go destroys it when this goroutine ends.
			errc <- fmt.Errorf("leave network namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// NetlinkHandleAt returns a netlink handle working in namespace name.
func NetlinkHandleAt(name string) (*netlink.Handle, error) {
	h, err := netns.GetFromPath(netnsPath(name))
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer h.Close()
	return netlink.NewHandleAt(h)
}
