package flowtable

import (
	"encoding/binary"
	"unsafe"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// emcTable is EMC_TABLE: the tables entry of each generation that holds
// the exact-match cache's shape rather than an OpenFlow table.
const emcTable = maxTables - 1

// pipelineFields are the flow_key bytes a packet does not bring but the
// walk sets (in_port comes from the ingress device, which the cache keys
// on apart): they hold the same value at the start of every walk.
var pipelineFields = []keySlot{
	{int(unsafe.Offsetof(fk.InPort)), 4},
	{int(unsafe.Offsetof(fk.CtState)), 4},
	{int(unsafe.Offsetof(fk.CtZone)), 2},
	{int(unsafe.Offsetof(fk.CtMark)), 4},
	{int(unsafe.Offsetof(fk.Metadata)), 8},
	{int(unsafe.Offsetof(fk.Regs)), int(unsafe.Sizeof(fk.Regs))},
	{int(unsafe.Offsetof(fk.CtLabel)), int(unsafe.Sizeof(fk.CtLabel))},
	{int(unsafe.Offsetof(fk.Pad)), int(unsafe.Sizeof(fk.Pad))},
}

// emcShape is the exact-match cache's key for a generation (bpf/emc.h):
// the packet's bits that any flow of any table looks at -- the union of
// the tables' masks -- and that any action reads (reads: a move's, an
// output:FIELD's, a ct(zone=FIELD)'s source), less the pipeline's own
// fields, and pkt_mark, which load, move and output:reg can read. A shape
// of more than MAX_GATHER words turns the cache off for the generation.
//
// The connection's tuple (ct_nw_src, ..., ct_tp_dst), which a ct() sets,
// is the packet's own tuple in either direction (the reply's reversed):
// a flow looking at it looks at the packet's addresses and ports, on
// both sides. What a ct(nat) writes is the connection's; the shape says
// which of those fields no flow looks at (emcNATFree), so a hit may
// apply another connection's translation there.
func emcShape(unions map[uint32]*keyBytes, reads *keyBytes) bpf.DatapathTable {
	var u keyBytes
	for _, t := range unions {
		for i := range u {
			u[i] |= t[i]
		}
	}
	for i := range u {
		u[i] |= reads[i]
	}
	ctTuple := mirrorCtTuple(&u)
	for _, s := range pipelineFields {
		clear(u[s.off : s.off+s.size])
	}
	mark := int(unsafe.Offsetof(fk.PktMark))
	for i := mark; i < mark+4; i++ {
		u[i] = 0xff
	}
	var tbl bpf.DatapathTable
	if setCacheShape(&tbl, &u) {
		tbl.Emc = uint32(bpf.DatapathEmcShapeEMC_ON)
		if !ctTuple {
			tbl.Emc |= emcNATFree(&u)
		}
	}
	return tbl
}

// The packet's address and port fields, and the connection tuple's.
var (
	slotNwSrc     = keySlot{int(unsafe.Offsetof(fk.NwSrc)), 4}
	slotNwDst     = keySlot{int(unsafe.Offsetof(fk.NwDst)), 4}
	slotIPv6Src   = keySlot{int(unsafe.Offsetof(fk.Ipv6Src)), 16}
	slotIPv6Dst   = keySlot{int(unsafe.Offsetof(fk.Ipv6Dst)), 16}
	slotTpSrc     = keySlot{int(unsafe.Offsetof(fk.TpSrc)), 2}
	slotTpDst     = keySlot{int(unsafe.Offsetof(fk.TpDst)), 2}
	slotNwProto   = keySlot{int(unsafe.Offsetof(fk.NwProto)), 1}
	slotCtIPv6Src = keySlot{int(unsafe.Offsetof(fk.CtIpv6Src)), 16}
	slotCtIPv6Dst = keySlot{int(unsafe.Offsetof(fk.CtIpv6Dst)), 16}
	slotCtTpSrc   = keySlot{int(unsafe.Offsetof(fk.CtTpSrc)), 2}
	slotCtTpDst   = keySlot{int(unsafe.Offsetof(fk.CtTpDst)), 2}
	slotCtNwProto = keySlot{int(unsafe.Offsetof(fk.CtNwProto)), 1}
)

// mirrorCtTuple adds to u, for the bits of the connection's tuple it
// covers, the packet fields that tuple is copied from: both addresses
// (IPv4 from the tuple's first word, IPv6 whole), both ports, the
// protocol. It reports whether u covered any of the tuple. The tuple
// fields themselves stay in u: they are zero when a walk starts.
func mirrorCtTuple(u *keyBytes) bool {
	or := func(dst keySlot, src keySlot, n int) {
		for i := 0; i < n; i++ {
			u[dst.off+i] |= u[src.off+i]
		}
	}
	any := false
	for _, s := range []keySlot{slotCtIPv6Src, slotCtIPv6Dst, slotCtTpSrc, slotCtTpDst, slotCtNwProto} {
		any = any || !zero(u[s.off:s.off+s.size])
	}
	if !any {
		return false
	}
	for _, ct := range []keySlot{slotCtIPv6Src, slotCtIPv6Dst} {
		or(slotNwSrc, ct, 4)
		or(slotNwDst, ct, 4)
		or(slotIPv6Src, ct, 16)
		or(slotIPv6Dst, ct, 16)
	}
	for _, ct := range []keySlot{slotCtTpSrc, slotCtTpDst} {
		or(slotTpSrc, ct, 2)
		or(slotTpDst, ct, 2)
	}
	or(slotNwProto, slotCtNwProto, 1)
	return true
}

// emcNATFree is the EMC_FREE_* bits of the fields a ct(nat) rewrites
// (source or destination address, IPv4 or IPv6, and port) that u does
// not cover.
func emcNATFree(u *keyBytes) uint32 {
	free := func(slots ...keySlot) bool {
		for _, s := range slots {
			if !zero(u[s.off : s.off+s.size]) {
				return false
			}
		}
		return true
	}
	var bits uint32
	if free(slotNwSrc, slotIPv6Src) {
		bits |= uint32(bpf.DatapathEmcShapeEMC_FREE_SRC_ADDR)
	}
	if free(slotTpSrc) {
		bits |= uint32(bpf.DatapathEmcShapeEMC_FREE_SRC_PORT)
	}
	if free(slotNwDst, slotIPv6Dst) {
		bits |= uint32(bpf.DatapathEmcShapeEMC_FREE_DST_ADDR)
	}
	if free(slotTpDst) {
		bits |= uint32(bpf.DatapathEmcShapeEMC_FREE_DST_PORT)
	}
	return bits
}

func zero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// actionReads is the key bits the datapath reads when it runs acts: the
// sources of ACT_MOVE and ACT_OUTPUT_REG, and of a ct()'s zone field, that
// lie in the key (PF_KEY + w: the key's 32-bit big-endian word w, bit 0
// its least significant).
func actionReads(acts *bpf.DatapathActionList, u *keyBytes) {
	for _, a := range acts.A[:min(int(acts.N), len(acts.A))] {
		var n int
		switch bpf.DatapathActionType(a.Type) {
		case bpf.DatapathActionTypeACT_MOVE:
			n = int(a.Arg>>16) & 0xff
		case bpf.DatapathActionTypeACT_OUTPUT_REG:
			n = int(a.Flags)
		case bpf.DatapathActionTypeACT_CT:
			if a.Flags&uint8(bpf.DatapathCtFlagCT_ZONE_FIELD) != 0 {
				n = 16
			}
		}
		field, ofs := a.Aux>>8, int(a.Aux&0xff)
		if n == 0 || field < pfKey {
			continue
		}
		w := int(field - pfKey)
		for k := ofs; k < ofs+n && k < 32; k++ {
			u[4*w+3-k/8] |= 1 << (k % 8)
		}
	}
}

// setCacheShape makes a table's cache key the key words u covers, masked
// by u, and reports whether they fit in MAX_GATHER words (if not, the
// table's cache_nwords stays 0).
func setCacheShape(tbl *bpf.DatapathTable, u *keyBytes) bool {
	ws := u.words()
	if len(ws) > maxGather {
		return false
	}
	tbl.CacheNwords = uint8(len(ws))
	for i, w := range ws {
		tbl.CacheWords[i] = w
		tbl.CacheMask[i] = binary.NativeEndian.Uint64(u[int(w)*8:])
	}
	return true
}
