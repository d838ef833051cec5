package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// maxFrame is the read buffer size: enough for any frame a tap without
// IFF_VNET_HDR can deliver (the kernel segments GSO packets before that).
const maxFrame = 65536

// Tap is a tap device together with the file descriptor the test uses as
// the "VM" end of it. The direction convention is the switch's:
//
//   - WriteFrame injects a frame *into* the switch: the kernel treats it as
//     received by the tap device, so it runs the tap's TC ingress.
//   - ReadFrame returns a frame the switch sent *out* of the tap, i.e. one
//     that was transmitted on (redirected to the egress of) the tap device.
//
// The device is non-persistent: closing the descriptor removes it. The
// descriptor is in non-blocking mode and registered with Go's poller, so
// reads honour deadlines. Use one reader at a time.
type Tap struct {
	// Name is the tap interface name in NS.
	Name string
	// Index is the ifindex of the tap in NS.
	Index int
	// NS is the namespace holding the tap device.
	NS *NS

	file      *os.File
	closeOnce sync.Once
	closeErr  error
}

// NewTap creates a tap device called name inside the namespace (multi-queue
// off, IFF_NO_PI, IPv6 disabled so the kernel does not emit router
// solicitations on it) and brings it up. The cleanup registered on tb closes
// the descriptor, which deletes the device.
func (ns *NS) NewTap(tb testing.TB, name string) *Tap {
	tb.Helper()
	t, err := ns.CreateTap(name)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if err := t.Close(); err != nil {
			tb.Errorf("testenv: close tap %s: %v", t.Name, err)
		}
	})
	return t
}

// CreateTap is NewTap without a test; the caller must Close the tap.
//
// The device is created with netlink's Tuntap support, which opens
// /dev/net/tun and issues TUNSETIFF: a tap device is created in the network
// namespace of the thread that opens /dev/net/tun, so this happens inside
// Do. The descriptor remains attached to the device after the thread
// switches back.
func (ns *NS) CreateTap(name string) (*Tap, error) {
	if len(name) > MaxNameLen {
		return nil, fmt.Errorf("tap name %q longer than %d bytes", name, MaxNameLen)
	}
	var t *Tap
	err := ns.Do(func() error {
		tt := &netlink.Tuntap{
			LinkAttrs:  netlink.LinkAttrs{Name: name},
			Mode:       netlink.TUNTAP_MODE_TAP,
			Flags:      netlink.TUNTAP_NO_PI | netlink.TUNTAP_TUN_EXCL, // one queue, no packet-info header
			Queues:     1,                                              // so that netlink hands us the fd
			NonPersist: true,                                           // device disappears with the fd
		}
		if err := netlink.LinkAdd(tt); err != nil {
			return fmt.Errorf("create tap %s: %w", name, err)
		}
		if len(tt.Fds) != 1 {
			for _, f := range tt.Fds {
				f.Close()
			}
			return fmt.Errorf("create tap %s: got %d fds, want 1", name, len(tt.Fds))
		}
		t = &Tap{Name: tt.Name, Index: tt.Index, NS: ns, file: tt.Fds[0]}
		if err := disableIPv6Here(t.Name); err != nil {
			return errors.Join(err, t.Close())
		}
		link, err := netlink.LinkByName(t.Name)
		if err == nil {
			t.Index = link.Attrs().Index
			err = netlink.LinkSetUp(link)
		}
		if err != nil {
			return errors.Join(fmt.Errorf("tap %s: %w", t.Name, err), t.Close())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", ns.Name, err)
	}
	return t, nil
}

// disableIPv6Here sets disable_ipv6 on an interface of the calling thread's
// namespace (call it inside NS.Do).
func disableIPv6Here(ifname string) error {
	p := filepath.Join("/proc/sys/net/ipv6/conf", ifname, "disable_ipv6")
	if _, err := os.Stat("/proc/sys/net/ipv6"); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return os.WriteFile(p, []byte("1"), 0)
}

// String returns the tap name.
func (t *Tap) String() string { return t.Name }

// WriteFrame injects one Ethernet frame into the switch: the frame is
// received by the tap device and runs its TC ingress. The kernel rejects
// frames shorter than 14 bytes (ETH_HLEN) with EINVAL, and frames on a tap
// that is down with EIO.
func (t *Tap) WriteFrame(b []byte) error {
	n, err := t.file.Write(b)
	if err != nil {
		return fmt.Errorf("tap %s: write frame: %w", t.Name, err)
	}
	if n != len(b) {
		return fmt.Errorf("tap %s: short write %d of %d bytes", t.Name, n, len(b))
	}
	return nil
}

// ReadFrame waits at most timeout for a frame transmitted out of the tap
// (e.g. redirected to its egress by the switch) and returns it. On timeout
// the error wraps os.ErrDeadlineExceeded.
func (t *Tap) ReadFrame(timeout time.Duration) ([]byte, error) {
	if err := t.file.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, fmt.Errorf("tap %s: %w", t.Name, err)
	}
	buf := make([]byte, maxFrame)
	n, err := t.file.Read(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("tap %s: no frame within %v: %w", t.Name, timeout, os.ErrDeadlineExceeded)
		}
		return nil, fmt.Errorf("tap %s: read frame: %w", t.Name, err)
	}
	return buf[:n:n], nil
}

// ReadFrameMatching reads frames for at most timeout in total and returns
// the first one for which match returns true, discarding the others. On
// timeout the error wraps os.ErrDeadlineExceeded and reports how many frames
// were discarded.
func (t *Tap) ReadFrameMatching(timeout time.Duration, match func([]byte) bool) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	skipped := 0
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("tap %s: no matching frame within %v (%d others discarded): %w", t.Name, timeout, skipped, os.ErrDeadlineExceeded)
		}
		b, err := t.ReadFrame(left)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if match(b) {
			return b, nil
		}
		skipped++
	}
}

// Drain discards frames already queued on the tap (waiting up to 10ms for
// each) and returns how many it discarded.
func (t *Tap) Drain() int {
	n := 0
	for {
		if _, err := t.ReadFrame(10 * time.Millisecond); err != nil {
			return n
		}
		n++
	}
}

// File returns the tap's file descriptor as an *os.File, for callers that
// need raw access. It stays owned by the Tap.
func (t *Tap) File() *os.File { return t.file }

// Close closes the descriptor, which deletes the non-persistent tap device.
// It is idempotent.
func (t *Tap) Close() error {
	t.closeOnce.Do(func() { t.closeErr = t.file.Close() })
	return t.closeErr
}
