package loader

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// PortKind is what kind of device a port's interface is, as `--mode auto`
// sees it: the kinds the README's "Port kinds" table measures.
type PortKind string

const (
	KindVeth     PortKind = "veth"     // containers, the lab; an internal port's device
	KindTap      PortKind = "tap"      // VMs behind QEMU (tun/tap)
	KindPhysical PortKind = "physical" // a NIC on a bus (PCI, virtio, ...)
	KindVirtual  PortKind = "virtual"  // anything else: dummy, bond, macvlan, ...
)

// portKind tells the kind of lnk: by its link kind for veth and tun/tap,
// by the bus its parent device sits on (IFLA_PARENT_DEV_BUS_NAME, Linux
// 5.12) for a NIC. A kernel too old to report the bus calls NICs virtual,
// which auto attaches the same way today.
func portKind(lnk netlink.Link) PortKind {
	switch lnk.Type() {
	case "veth":
		return KindVeth
	case "tuntap":
		return KindTap
	}
	if lnk.Attrs().ParentDevBus != "" {
		return KindPhysical
	}
	return KindVirtual
}

// AutoModes is what `--mode auto` attaches to each kind of port: ModeTCX
// (which falls back to tc before Linux 6.6, as auto always did), ModeTC
// or ModeXDP (XDP in front of TCX or tc). A kind it does not name gets
// ModeTCX.
type AutoModes map[PortKind]string

// DefaultAutoModes is what was measured (`make bench` and the tap
// benchmarks in ctl, 2 vCPUs, Linux 6.18; README "Port kinds",
// docs/performance.md), for the running kernel:
//   - veth: TCX. XDP runs on the skb the sender already built, converts
//     it and loses GRO/GSO: TCP bulk 6.9 against 38.6 Gbit/s, and even
//     64-byte UDP and SYN floods are slower (0.56 against 0.75 Mpps).
//   - tap: XDP (in front of TCX) from Linux 6.9 on. XDP runs before tun
//     builds an skb: 64-byte UDP 1.27-1.69x, SYN-flood drops 1.22-1.52x
//     (two machines). A VM's 64 KB TSO frames take the kernel's generic
//     XDP, which from 6.9 on copies them into page-pool fragments for a
//     multi-buffer program, and xdp_ingress passes them on to TC
//     (bpf/xdp.h, xdp_oversized): TCP bulk 1.3x TC's in BenchmarkTapBulk,
//     not slower. Before 6.9 generic XDP linearizes each such frame with
//     a 64 KB atomic allocation instead (unmeasured here): TCX there.
//   - physical: TCX. Not measured here (these machines have no NIC to
//     spare); a driver's native XDP runs before any skb, but frames it
//     redirects into a VM's tap or a veth lose the GRO the stack would
//     have done. `--mode xdp` is there to try it.
//   - virtual: TCX. Devices without native XDP (dummy, bond, macvlan,
//     a bridge...): `--mode xdp` refuses them.
//
// TCX falls back to tc before Linux 6.6 in every case.
func DefaultAutoModes() AutoModes {
	m := AutoModes{
		KindVeth:     ModeTCX,
		KindTap:      ModeTCX,
		KindPhysical: ModeTCX,
		KindVirtual:  ModeTCX,
	}
	if kernelAtLeast(KernelRelease(), TapXDPMajor, TapXDPMinor) {
		m[KindTap] = ModeXDP
	}
	return m
}

// TapXDPMajor and TapXDPMinor are the first kernel on which auto gives tap
// ports XDP: generic XDP copies a multi-buffer program's frames into
// page-pool fragments rather than linearizing them (skb_cow_data_for_xdp).
const TapXDPMajor, TapXDPMinor = 6, 9

// kernelAtLeast reports whether release ("6.18.44-...") is major.minor or
// later; a release it cannot read is not.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// mode is what auto attaches to a port of kind k.
func (a AutoModes) mode(k PortKind) string {
	if m, ok := a[k]; ok {
		return m
	}
	return ModeTCX
}

func (a AutoModes) check() error {
	for k, m := range a {
		switch m {
		case ModeTCX, ModeTC, ModeXDP:
		default:
			return fmt.Errorf("auto mode for %s ports: %q is not tcx, tc or xdp", k, m)
		}
	}
	return nil
}
