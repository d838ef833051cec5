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
	// The range's addresses as 32-bit words, the most significant first
	// (IPv4: one word).
	var lo, hi [4]uint32
	words := 1
	if n.AddrMin.IsValid() {
		flags |= natAddr
		max := n.AddrMin
		if n.AddrMax.IsValid() {
			max = n.AddrMax
		}
		a, b := n.AddrMin.As16(), max.As16()
		if n.AddrMin.Is4() {
			a4, b4 := n.AddrMin.As4(), max.As4()
			lo[0], hi[0] = binary.BigEndian.Uint32(a4[:]), binary.BigEndian.Uint32(b4[:])
		} else {
			words = 4
			for i := range lo {
				lo[i], hi[i] = binary.BigEndian.Uint32(a[4*i:]), binary.BigEndian.Uint32(b[4*i:])
			}
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
	if err := add(bpf.DatapathAction{Type: typ, Flags: flags, Aux: pmin, Arg: lo[0]}); err != nil {
		return err
	}
	if err := add(bpf.DatapathAction{Type: typ, Flags: flags | natMax, Aux: pmax, Arg: hi[0]}); err != nil {
		return err
	}
	// IPv6: the other three words of each, after (ACT_NAT_RANGE clears them).
	typ6 := uint8(bpf.DatapathActionTypeACT_NAT_RANGE6)
	for w := 1; w < words; w++ {
		if err := add(bpf.DatapathAction{Type: typ6, Flags: uint8(w), Arg: lo[w]}); err != nil {
			return err
		}
		if err := add(bpf.DatapathAction{Type: typ6, Flags: uint8(w) | natMax, Arg: hi[w]}); err != nil {
			return err
		}
	}
	return nil
}
