package probe

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"
	"unsafe"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Flood kinds: what Flood sends.
const (
	// FloodUDP is minimum-size UDP datagrams (60 bytes on the wire
	// before the FCS: a 64-byte Ethernet frame) of one flow, to port 9.
	FloodUDP = "udp"
	// FloodSYN is TCP SYNs to port 22 (54-byte frames), each from its own
	// source port: every one a new connection, as a SYN flood is.
	FloodSYN = "syn"
)

// FloodPorts are the destination ports of the two kinds.
const (
	FloodUDPPort = 9
	FloodSYNPort = 22
)

// FloodResult is what a Flood sent.
type FloodResult struct {
	Sent    uint64  `json:"sent"`    // frames the socket took
	Seconds float64 `json:"seconds"` // how long it sent
	Refused uint64  `json:"refused"` // sends that failed for want of buffers (retried)
}

// Flood sends frames of kind out of iface as fast as one thread can for d:
// an AF_PACKET socket that bypasses the qdisc, sendmmsg in batches (on a
// veth the other side's whole receive path runs in that call, so the rate
// is what the path costs per packet). Frames are built before the clock
// starts. The packet generator of `make bench`'s packet-rate rows.
func Flood(ctx context.Context, iface string, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, kind string, d time.Duration) (FloodResult, error) {
	var res FloodResult
	frames, err := floodFrames(srcMAC, dstMAC, src, dst, kind)
	if err != nil {
		return res, err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return res, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return res, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	// Straight to the driver: no qdisc, as a NIC's generator would.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return res, fmt.Errorf("PACKET_QDISC_BYPASS: %w", err)
	}
	// sendmmsg in batches: one system call per floodBatch frames, so the
	// rate is the path's, not the generator's system calls.
	to := unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(ifi.Index), Halen: 6}
	copy(to.Addr[:], dstMAC)
	msgs := make([]mmsghdr, floodBatch)
	iovs := make([]unix.Iovec, floodBatch)
	next := 0
	load := func() {
		for i := range msgs {
			f := frames[next%len(frames)]
			next++
			iovs[i].Base = &f[0]
			iovs[i].SetLen(len(f))
			msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&to))
			msgs[i].Hdr.Namelen = uint32(unsafe.Sizeof(to))
			msgs[i].Hdr.Iov = &iovs[i]
			msgs[i].Hdr.SetIovlen(1)
		}
	}
	start := time.Now()
	deadline := start.Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		load()
		for k := 0; k < 64; k++ {
			n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), floodBatch, 0, 0, 0)
			switch {
			case errno == 0:
				res.Sent += uint64(n)
			case errno == unix.ENOBUFS || errno == unix.EAGAIN:
				res.Refused++
			default:
				return res, fmt.Errorf("sendmmsg: %w", errno)
			}
		}
	}
	runtime.KeepAlive(frames)
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// floodBatch is how many frames one sendmmsg sends.
const floodBatch = 64

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [4]byte
}

// floodFrames builds the frames Flood cycles through: one for UDP, 65536
// SYNs (source ports 1024..., each its own connection) for SYN.
func floodFrames(srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, kind string) ([][]byte, error) {
	n := 1
	if kind == FloodSYN {
		n = 1 << 16
	} else if kind != FloodUDP {
		return nil, fmt.Errorf("flood kind %q: udp or syn", kind)
	}
	opts := gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}
	frames := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst}
		var l4 gopacket.SerializableLayer
		var payload []byte
		if kind == FloodUDP {
			ip.Protocol = layers.IPProtocolUDP
			udp := &layers.UDP{SrcPort: 1024, DstPort: FloodUDPPort}
			udp.SetNetworkLayerForChecksum(ip)
			l4, payload = udp, make([]byte, 18) // 14+20+8+18 = 60 bytes
		} else {
			ip.Protocol = layers.IPProtocolTCP
			tcp := &layers.TCP{SrcPort: layers.TCPPort(1024 + i%64512), DstPort: FloodSYNPort, SYN: true,
				Seq: uint32(i) * 2654435761, Window: 64240}
			tcp.SetNetworkLayerForChecksum(ip)
			l4 = tcp // 54 bytes: a SYN carries nothing (a veth pads nothing)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, eth, ip, l4, gopacket.Payload(payload)); err != nil {
			return nil, err
		}
		frames = append(frames, append([]byte(nil), buf.Bytes()...))
	}
	return frames, nil
}

// TapFloodResult is what a TapFlood sent into the switch and read back.
type TapFloodResult struct {
	Sent    uint64  `json:"sent"`    // frames written into the tap (the switch took them)
	Read    uint64  `json:"read"`    // frames read from the other tap
	Seconds float64 `json:"seconds"` // how long it wrote
}

// TapFlood writes frames of kind into the switch through tap device in,
// one write per frame as a VM's virtio backend hands frames to a tap, for
// d, while a second thread reads what the switch sends out of tap out
// (UDP: the forwarded datagrams; a VM reads its tap). Both taps must
// exist in the calling namespace (persistent, `ip tuntap add`); this
// attaches to them with TUNSETIFF.
func TapFlood(ctx context.Context, in, out string, srcMAC, dstMAC net.HardwareAddr, src, dst net.IP, kind string, d time.Duration) (TapFloodResult, error) {
	var res TapFloodResult
	frames, err := floodFrames(srcMAC, dstMAC, src, dst, kind)
	if err != nil {
		return res, err
	}
	wfd, err := openTap(in)
	if err != nil {
		return res, err
	}
	defer unix.Close(wfd)
	rfd, err := openTap(out)
	if err != nil {
		return res, err
	}
	defer unix.Close(rfd)
	// The reader drains the out tap (non-blocking reads after a poll),
	// until the writer is done.
	stop := make(chan struct{})
	read := make(chan uint64)
	go func() {
		runtime.LockOSThread()
		buf := make([]byte, 65536)
		var n uint64
		fds := []unix.PollFd{{Fd: int32(rfd), Events: unix.POLLIN}}
		for {
			select {
			case <-stop:
				read <- n
				return
			default:
			}
			if k, _ := unix.Poll(fds, 100); k <= 0 {
				continue
			}
			for {
				if _, err := unix.Read(rfd, buf); err != nil {
					break
				}
				n++
			}
		}
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; ; i++ {
		if i&1023 == 0 && (time.Now().After(deadline) || ctx.Err() != nil) {
			break
		}
		if _, err := unix.Write(wfd, frames[i%len(frames)]); err != nil {
			close(stop)
			<-read
			return res, fmt.Errorf("write %s: %w", in, err)
		}
		res.Sent++
	}
	res.Seconds = time.Since(start).Seconds()
	time.Sleep(50 * time.Millisecond) // what is still queued
	close(stop)
	res.Read = <-read
	return res, nil
}

// openTap attaches to the existing tap device name (IFF_TAP, no packet
// information header), non-blocking.
func openTap(name string) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("attach to tap %s: %w", name, err)
	}
	return fd, nil
}
