package testenv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VnetHdrLen is the length of the virtio-net header a VnetTap's frames
// carry: 12 bytes, struct virtio_net_hdr_mrg_rxbuf (the 10-byte struct
// virtio_net_hdr and num_buffers), which is what QEMU sets with
// TUNSETVNETHDRSZ for a virtio 1.0 device (VIRTIO_F_VERSION_1 or
// mergeable receive buffers). num_buffers is written as 0 and ignored on
// read.
const VnetHdrLen = 12

// maxVnetFrame is a VnetTap's read buffer: the header and the largest
// frame tun hands over whole, a 64 KB GSO frame with its headers.
const maxVnetFrame = VnetHdrLen + 128<<10

// VnetHdr is struct virtio_net_hdr (include/uapi/linux/virtio_net.h): the
// offload metadata QEMU's virtio backend and tun exchange with each
// frame. tun reads and writes it in the host's byte order (the legacy
// virtio rule, as no TUNSETVNETLE/BE is set here), which on the
// little-endian hosts this runs on is also virtio 1.0's.
type VnetHdr struct {
	Flags      uint8  // VIRTIO_NET_HDR_F_NEEDS_CSUM, ..._DATA_VALID
	GSOType    uint8  // VIRTIO_NET_HDR_GSO_NONE, ..._TCPV4, ...
	HdrLen     uint16 // Ethernet + IP + TCP header bytes
	GSOSize    uint16 // the MSS of the segments a GSO frame stands for
	CsumStart  uint16 // where the checksum's coverage starts (from the Ethernet header)
	CsumOffset uint16 // where the checksum goes, from CsumStart
}

func (h VnetHdr) put(b []byte) {
	b[0], b[1] = h.Flags, h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
	binary.NativeEndian.PutUint16(b[10:], 0) // num_buffers
}

func parseVnetHdr(b []byte) VnetHdr {
	return VnetHdr{
		Flags: b[0], GSOType: b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// String prints the header as the kernel's names would.
func (h VnetHdr) String() string {
	return fmt.Sprintf("flags:%#x gso_type:%#x hdr_len:%d gso_size:%d csum_start:%d csum_offset:%d",
		h.Flags, h.GSOType, h.HdrLen, h.GSOSize, h.CsumStart, h.CsumOffset)
}

// VnetTap is a tap device's descriptor opened with IFF_VNET_HDR, as
// QEMU's virtio-net backend opens it: every frame written or read carries
// a VnetHdr, so a guest's TSO frames go in whole (tun builds one GSO skb
// of up to 64 KB) and, with the offloads set (TUNSETOFFLOAD), GSO skbs
// come out whole instead of being segmented by the kernel before tun's
// queue. The direction convention is Tap's: WriteFrame is a frame the
// tap receives (into the switch), ReadFrame one the tap transmitted.
// One reader and one writer may run at once, on different goroutines.
type VnetTap struct {
	// Name is the tap interface name in its namespace.
	Name string

	file *os.File
	hdr  [VnetHdrLen]byte   // WriteFrame's header
	buf  [maxVnetFrame]byte // ReadFrame's buffer
}

// OpenVnetHdr is ReopenVnetHdr for tests: it fails the test on error and
// closes the VnetTap (which deletes the device, as closing t would have)
// in a cleanup.
func (t *Tap) OpenVnetHdr(tb testing.TB, offloads int) *VnetTap {
	tb.Helper()
	v, err := t.ReopenVnetHdr(offloads)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if err := v.Close(); err != nil {
			tb.Errorf("testenv: close tap %s: %v", v.Name, err)
		}
	})
	return v
}

// ReopenVnetHdr moves t's device to a new descriptor opened with
// IFF_NO_PI|IFF_VNET_HDR, a VnetHdrLen header (TUNSETVNETHDRSZ) and the
// given offloads (TUNSETOFFLOAD: unix.TUN_F_CSUM, TUN_F_TSO4, ...; 0 for
// none), and closes t's own descriptor: use the VnetTap from then on. The
// device (its name, ifindex, MAC and whatever is attached to it) stays;
// closing the VnetTap deletes it, as closing t would have.
//
// tun keeps IFF_VNET_HDR in the device's flags, set by TUNSETIFF when a
// descriptor attaches, and a single-queue tap takes one descriptor at a
// time (a second TUNSETIFF fails with EBUSY). So the device is made
// persistent for the moment its old descriptor closes, the new one
// attaches, and persistence is turned off again. If that fails half way,
// the device is deleted rather than left behind.
func (t *Tap) ReopenVnetHdr(offloads int) (*VnetTap, error) {
	fail := func(err error) (*VnetTap, error) {
		return nil, fmt.Errorf("tap %s: reopen with IFF_VNET_HDR: %w", t.Name, err)
	}
	if err := tapIoctl(t.file, unix.TUNSETPERSIST, 1); err != nil {
		return fail(fmt.Errorf("TUNSETPERSIST: %w", err))
	}
	if err := t.Close(); err != nil {
		return fail(errors.Join(err, t.deleteLink()))
	}
	var v *VnetTap
	err := t.NS.Do(func() error {
		// tun looks the name up in the namespace /dev/net/tun was
		// opened in: open it here.
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := setupVnetFd(fd, t.Name, offloads); err != nil {
			unix.Close(fd)
			return err
		}
		// Non-blocking before os.NewFile, so Go's poller takes it and
		// reads honour deadlines (see netlink's Tuntap).
		v = &VnetTap{Name: t.Name, file: os.NewFile(uintptr(fd), "/dev/net/tun")}
		return nil
	})
	if err != nil {
		return fail(errors.Join(err, t.deleteLink()))
	}
	return v, nil
}

// setupVnetFd attaches fd to the existing tap name and sets it up as
// ReopenVnetHdr describes.
func setupVnetFd(fd int, name string, offloads int) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	// No IFF_TUN_EXCL: that refuses an existing device.
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0); err != nil {
		return fmt.Errorf("TUNSETPERSIST 0: %w", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, VnetHdrLen); err != nil {
		return fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
		return fmt.Errorf("TUNSETOFFLOAD %#x: %w", offloads, err)
	}
	return unix.SetNonblock(fd, true)
}

// tapIoctl issues an ioctl with an integer argument on a tap descriptor
// that Go's poller holds (File.Fd would make it blocking).
func tapIoctl(f *os.File, req uint, arg int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), req, arg) }); err != nil {
		return err
	}
	return ierr
}

// deleteLink deletes the tap's device (a persistent device outlives its
// descriptors).
func (t *Tap) deleteLink() error {
	return t.NS.Do(func() error {
		link, err := netlink.LinkByName(t.Name)
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	})
}

// WriteFrame injects one frame with its virtio-net header into the switch
// (the tap receives it), in one writev as QEMU does: tun wants the header
// and the frame in the same write.
func (v *VnetTap) WriteFrame(h VnetHdr, frame []byte) error {
	h.put(v.hdr[:])
	rc, err := v.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("tap %s: %w", v.Name, err)
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		n, werr = unix.Writev(int(fd), [][]byte{v.hdr[:], frame})
		return werr != unix.EAGAIN
	})
	switch {
	case err != nil:
		return fmt.Errorf("tap %s: write frame: %w", v.Name, err)
	case werr != nil:
		return fmt.Errorf("tap %s: write frame: %w", v.Name, werr)
	case n != VnetHdrLen+len(frame):
		return fmt.Errorf("tap %s: short write %d of %d bytes", v.Name, n, VnetHdrLen+len(frame))
	}
	return nil
}

// ReadFrame waits at most timeout for a frame the tap transmitted and
// returns its header and the frame. The frame is the VnetTap's buffer,
// valid until the next ReadFrame. On timeout the error wraps
// os.ErrDeadlineExceeded.
func (v *VnetTap) ReadFrame(timeout time.Duration) (VnetHdr, []byte, error) {
	if err := v.file.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return VnetHdr{}, nil, fmt.Errorf("tap %s: %w", v.Name, err)
	}
	n, err := v.file.Read(v.buf[:])
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return VnetHdr{}, nil, fmt.Errorf("tap %s: no frame within %v: %w", v.Name, timeout, err)
	case err != nil:
		return VnetHdr{}, nil, fmt.Errorf("tap %s: read frame: %w", v.Name, err)
	case n < VnetHdrLen:
		return VnetHdr{}, nil, fmt.Errorf("tap %s: read %d bytes, shorter than the %d-byte header", v.Name, n, VnetHdrLen)
	}
	return parseVnetHdr(v.buf[:]), v.buf[VnetHdrLen:n:n], nil
}

// Close closes the descriptor, which deletes the tap device.
func (v *VnetTap) Close() error { return v.file.Close() }
