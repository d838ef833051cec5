package loader

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"

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
		v.Flags = ctAIsOrig | ctSeenReply
		v.Packets[0], v.Packets[1] = 1, 1
		v.Id = uint32(i)
		v.Okey = *k // the key the datapath removes it by (ct_delete_slot)
	}
	// Slots never used, taken as the datapath takes them (ct_slot_take),
	// each with a gen no reference had.
	first := atomic.AddInt64(countAt(mem, ctCountSlots), int64(n)) - int64(n)
	if first+int64(n) > int64(b.maps.CtSlots.MaxEntries()) {
		atomic.AddInt64(countAt(mem, ctCountSlots), -int64(n))
		return fmt.Errorf("fill conntrack: no room for %d connections", n)
	}
	slots := make([]uint32, n)
	refs := make([]bpf.DatapathCtRef, n)
	for i := range slots {
		slots[i] = uint32(first) + uint32(i)
		vals[i].Gen = 1
		refs[i] = bpf.DatapathCtRef{Slot: slots[i], Gen: 1}
	}
	if err := putAll(b.maps.CtSlots, slots, vals); err != nil {
		return fmt.Errorf("fill conntrack: %w", err)
	}
	if err := putAll(b.maps.Conntrack, keys, refs); err != nil {
		return fmt.Errorf("fill conntrack: %w", err)
	}
	atomic.AddInt64(countAt(mem, int(zone)), int64(n))
	atomic.AddInt64(countAt(mem, ctCountTotal), int64(n))
	return nil
}

// ConntrackMemory is the kernel memory charged to the connection table
// (the memlock of its keys, slots and free list, preallocated for every
// entry) and its size in entries.
func (b *Bridge) ConntrackMemory() (bytes uint64, entries uint32, err error) {
	for _, m := range []*ebpf.Map{b.maps.Conntrack, b.maps.CtSlots, b.maps.CtFree} {
		info, err := m.Info()
		if err != nil {
			return 0, 0, fmt.Errorf("conntrack map info: %w", err)
		}
		n, ok := info.Memlock()
		if !ok {
			return 0, 0, fmt.Errorf("conntrack map info: this kernel reports no memlock")
		}
		bytes += n
	}
	return bytes, b.maps.Conntrack.MaxEntries(), nil
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
