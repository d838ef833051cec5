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
// the tables' masks, less the pipeline's own fields -- and pkt_mark, which
// load, move and output:reg can read. A shape of more than MAX_GATHER
// words turns the cache off for the generation.
func emcShape(unions map[uint32]*keyBytes) bpf.DatapathTable {
	var u keyBytes
	for _, t := range unions {
		for i := range u {
			u[i] |= t[i]
		}
	}
	for _, s := range pipelineFields {
		clear(u[s.off : s.off+s.size])
	}
	mark := int(unsafe.Offsetof(fk.PktMark))
	for i := mark; i < mark+4; i++ {
		u[i] = 0xff
	}
	var tbl bpf.DatapathTable
	if setCacheShape(&tbl, &u) {
		tbl.Emc = 1
	}
	return tbl
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
