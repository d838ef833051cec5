package loader

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// FillConntrack inserts n established UDP connections in zone (10.200.0.0/16
// to 10.201.0.1, one port pair each, an hour to live), counted like
// committed ones, with batch map updates. For benchmarks: the cost of a
// lookup and the memory of the table as it grows to a million entries,
// without sending a million packets.
func (b *Bridge) FillConntrack(zone uint16, n int) error {
	mem, err := b.counts()
	if err != nil {
		return err
	}
	now := monotonicNow()
	keys := make([]bpf.DatapathCtKey, n)
	vals := make([]bpf.DatapathCtEntry, n)
	for i := range keys {
		k := &keys[i]
		k.Family, k.Proto, k.Zone = 4, 17, zone
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0ac80000|uint32(i/50000))
		k.AddrA[0] = binary.NativeEndian.Uint32(a[:])
		binary.BigEndian.PutUint32(a[:], 0x0ac90001)
		k.AddrB[0] = binary.NativeEndian.Uint32(a[:])
		k.PortA = htons(uint16(1024 + i%50000))
		k.PortB = htons(53)
		v := &vals[i]
		v.StartNs, v.ExpiresNs = now, now+3600e9
		v.Flags = 0x01 | 0x02 // CT_E_A_IS_ORIG | CT_E_SEEN_REPLY
		v.Packets[0], v.Packets[1] = 1, 1
		v.Id = uint32(i)
	}
	if err := putAll(b.maps.Conntrack, keys, vals); err != nil {
		return fmt.Errorf("fill conntrack: %w", err)
	}
	atomic.AddInt64(countAt(mem, int(zone)), int64(n))
	atomic.AddInt64(countAt(mem, ctZones), int64(n))
	return nil
}

// ConntrackMemory is the kernel memory charged to the connection table
// (its memlock, preallocated for every entry) and its size in entries.
func (b *Bridge) ConntrackMemory() (bytes uint64, entries uint32, err error) {
	info, err := b.maps.Conntrack.Info()
	if err != nil {
		return 0, 0, fmt.Errorf("conntrack map info: %w", err)
	}
	m, ok := info.Memlock()
	if !ok {
		return 0, 0, fmt.Errorf("conntrack map info: this kernel reports no memlock")
	}
	return m, b.maps.Conntrack.MaxEntries(), nil
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
