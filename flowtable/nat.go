package flowtable

import (
	"encoding/binary"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// ACT_NAT_RANGE flags (bpf/common.h's enum nat_flag).
const (
	natSrc        = uint8(bpf.DatapathNatFlagNAT_R_SRC)
	natDst        = uint8(bpf.DatapathNatFlagNAT_R_DST)
	natRandom     = uint8(bpf.DatapathNatFlagNAT_R_RANDOM)
	natHash       = uint8(bpf.DatapathNatFlagNAT_R_HASH)
	natPersistent = uint8(bpf.DatapathNatFlagNAT_R_PERSISTENT)
	natAddr       = uint8(bpf.DatapathNatFlagNAT_R_ADDR)
	natPorts      = uint8(bpf.DatapathNatFlagNAT_R_PORTS)
	natMax        = uint8(bpf.DatapathNatFlagNAT_R_MAX)
)

// compileNATRange encodes nat(src|dst=...) as the two ACT_NAT_RANGE
// actions the datapath reads before the ct() (its minimum, then its
// maximum); a bare nat needs none: it only applies a translation the
// connection has.
func compileNATRange(n *ofctl.NAT, add func(bpf.DatapathAction) error) error {
	if !n.Src && !n.Dst {
		return nil
	}
	if n.AddrMin.IsValid() && !n.AddrMin.Is4() {
		return errUnsupported("ct(" + n.String(nil) + "): IPv6 NAT")
	}
	var flags uint8
	if n.Src {
		flags |= natSrc
	} else {
		flags |= natDst
	}
	if n.Random {
		flags |= natRandom
	}
	if n.Hash {
		flags |= natHash
	}
	if n.Persistent {
		flags |= natPersistent
	}
	var lo, hi uint32
	if n.AddrMin.IsValid() {
		flags |= natAddr
		b := n.AddrMin.As4()
		lo = binary.BigEndian.Uint32(b[:])
		hi = lo
		if n.AddrMax.IsValid() {
			b = n.AddrMax.As4()
			hi = binary.BigEndian.Uint32(b[:])
		}
	}
	pmin, pmax := n.PortMin, n.PortMax
	if pmin != 0 {
		flags |= natPorts
		if pmax == 0 {
			pmax = pmin
		}
	}
	typ := uint8(bpf.DatapathActionTypeACT_NAT_RANGE)
	if err := add(bpf.DatapathAction{Type: typ, Flags: flags, Aux: pmin, Arg: lo}); err != nil {
		return err
	}
	return add(bpf.DatapathAction{Type: typ, Flags: flags | natMax, Aux: pmax, Arg: hi})
}
