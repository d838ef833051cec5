package loader

import (
	"errors"
	"fmt"
	"sort"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
)

// ctZones is the number of conntrack zones (ct_count[0..ctZones)).
const ctZones = int(bpf.DatapathLimitCT_ZONES)

// ctCountTotal and ctCountSlots index ct_count (bpf/common.h's enum
// ct_count_index): the live connections of all zones, and the first
// ct_slots entry never used (bpf/ct_table.h, ct_slot_take).
const (
	ctCountTotal = int(bpf.DatapathCtCountIndexCT_COUNT_TOTAL)
	ctCountSlots = int(bpf.DatapathCtCountIndexCT_COUNT_SLOTS)
)

// counts maps the datapath's ct_count array (BPF_F_MMAPABLE): live
// connections per zone, and in all zones at [ctCountTotal]. The datapath
// changes them with atomic adds, so the loader must too: a read, then a
// write, would lose the datapath's changes in between.
func (b *Bridge) counts() ([]byte, error) {
	if b.ctCountMem != nil {
		return b.ctCountMem, nil
	}
	size := int(b.maps.CtCount.ValueSize() * b.maps.CtCount.MaxEntries())
	mem, err := unix.Mmap(b.maps.CtCount.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map connection counts: %w", err)
	}
	b.ctCountMem = mem
	return mem, nil
}

func countAt(mem []byte, i int) *int64 {
	return (*int64)(unsafe.Pointer(&mem[8*i]))
}

// liveCount reads ct_count[i]; a count is never negative, but a reader
// must not print 2^64-1 if it ever were.
func liveCount(mem []byte, i int) uint32 {
	v := atomic.LoadInt64(countAt(mem, i))
	if v < 0 {
		return 0
	}
	return uint32(v)
}

// ctDeleteMax is CT_DELETE_MAX: the keys one run of ct_delete_keys takes.
const ctDeleteMax = int(bpf.DatapathLimitCT_DELETE_MAX)

// deleteConns removes keys from the connection table through the
// datapath's ct_delete_keys, which alone may remove a connection (it frees
// the connection's slot and takes it off the counts, bpf/ct_table.h). A
// key already gone (the datapath removed it, or another delete did) is not
// counted. It returns how many it removed.
func (b *Bridge) deleteConns(keys []bpf.DatapathCtKey) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	prog, err := loadPinnedProgram(b.dir, pinProgCTDel)
	if err != nil {
		return 0, fmt.Errorf("delete connections: %w", err)
	}
	defer prog.Close()
	size := int(unsafe.Sizeof(keys[0]))
	removed := 0
	for lo := 0; lo < len(keys); lo += ctDeleteMax {
		chunk := keys[lo:min(lo+ctDeleteMax, len(keys))]
		data := unsafe.Slice((*byte)(unsafe.Pointer(&chunk[0])), len(chunk)*size)
		ret, err := prog.Run(&ebpf.RunOptions{Data: data})
		if err != nil {
			return removed, fmt.Errorf("delete connections: run ct_delete_keys: %w", err)
		}
		removed += int(ret)
	}
	return removed, nil
}

func (b *Bridge) ctLimitConfig() (bpf.DatapathCtLimits, error) {
	var l bpf.DatapathCtLimits
	if err := b.maps.CtLimit.Lookup(uint32(0), &l); err != nil {
		return l, fmt.Errorf("read conntrack limits: %w", err)
	}
	return l, nil
}

// initCTLimits gives a new bridge its maxconns: the table's size.
func (b *Bridge) initCTLimits() error {
	l := bpf.DatapathCtLimits{Maxconns: b.maps.Conntrack.MaxEntries()}
	if err := b.maps.CtLimit.Put(uint32(0), &l); err != nil {
		return fmt.Errorf("write conntrack limits: %w", err)
	}
	return nil
}

// sweep removes the expired connections, as a dump does; the commands
// that report or change limits call it, so no expired connection counts.
// The datapath's ct_gc does it without reading the table here; a bridge
// pinned before ct_gc existed is read through, as a dump.
func (b *Bridge) sweep() error {
	gc, err := b.collectExpired(monotonicNow())
	if err != nil || gc {
		return err
	}
	_, err = b.liveConns(nil, nil)
	return err
}

// MaxConns is the most connections the bridge tracks at once
// (dpctl/ct-get-maxconns).
func (b *Bridge) MaxConns() (uint32, error) {
	l, err := b.ctLimitConfig()
	return l.Maxconns, err
}

// TableSize is how many connections the table can hold: fixed when the
// bridge is created (attach --max-conns), the ceiling of maxconns.
func (b *Bridge) TableSize() uint32 { return b.maps.Conntrack.MaxEntries() }

// SetMaxConns changes maxconns (dpctl/ct-set-maxconns). Connections over
// a lowered maximum stay until they end; new ones wait for the count to
// fall below it, as in OVS. It cannot exceed the table's size.
func (b *Bridge) SetMaxConns(n uint32) error {
	if size := b.TableSize(); n > size {
		return fmt.Errorf("maxconns %d is larger than the connection table (%d entries, set by attach --max-conns when the bridge was created)", n, size)
	}
	if err := b.sweep(); err != nil {
		return err
	}
	l, err := b.ctLimitConfig()
	if err != nil {
		return err
	}
	l.Maxconns = n
	if err := b.maps.CtLimit.Put(uint32(0), &l); err != nil {
		return fmt.Errorf("write conntrack limits: %w", err)
	}
	return nil
}

// NConns is the number of live connections (dpctl/ct-get-nconns), after
// removing the expired ones.
func (b *Bridge) NConns() (uint32, error) {
	if err := b.sweep(); err != nil {
		return 0, err
	}
	mem, err := b.counts()
	if err != nil {
		return 0, err
	}
	return liveCount(mem, ctCountTotal), nil
}

// SetCTLimits sets the default per-zone limit (when given) and zones' own
// limits (dpctl/ct-set-limits); 0 is unlimited.
func (b *Bridge) SetCTLimits(set dpctl.Limits) error {
	if def := set.Default; def != nil {
		l, err := b.ctLimitConfig()
		if err != nil {
			return err
		}
		l.DefaultLimit = *def
		if err := b.maps.CtLimit.Put(uint32(0), &l); err != nil {
			return fmt.Errorf("write conntrack limits: %w", err)
		}
	}
	for _, z := range set.Zones {
		if err := b.maps.CtZoneLimit.Put(uint32(z.Zone), z.Limit); err != nil {
			return fmt.Errorf("set zone %d limit: %w", z.Zone, err)
		}
	}
	return nil
}

// DelCTLimits removes zones' own limits (dpctl/ct-del-limits): they take
// the default again. A zone without one is no error, as in OVS.
func (b *Bridge) DelCTLimits(zones []uint16) error {
	for _, z := range zones {
		if err := b.maps.CtZoneLimit.Delete(uint32(z)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete zone %d limit: %w", z, err)
		}
	}
	return nil
}

// GetCTLimits returns the default limit and, for the zones asked (all
// zones with a limit of their own when none are), each zone's limit (its
// own, else the default) and live connections (dpctl/ct-get-limits).
// Expired connections are removed first so that they do not count.
func (b *Bridge) GetCTLimits(zones []uint16) (dpctl.Limits, error) {
	var out dpctl.Limits
	if err := b.sweep(); err != nil {
		return out, err
	}
	l, err := b.ctLimitConfig()
	if err != nil {
		return out, err
	}
	def := l.DefaultLimit
	out.Default = &def
	mem, err := b.counts()
	if err != nil {
		return out, err
	}
	own := map[uint16]uint32{}
	var z, v uint32
	it := b.maps.CtZoneLimit.Iterate()
	for it.Next(&z, &v) {
		own[uint16(z)] = v
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("read zone limits: %w", err)
	}
	if len(zones) == 0 {
		for z := range own {
			zones = append(zones, z)
		}
		sort.Slice(zones, func(i, j int) bool { return zones[i] < zones[j] })
	}
	for _, z := range zones {
		lim, ok := own[z]
		if !ok {
			lim = l.DefaultLimit
		}
		out.Zones = append(out.Zones, dpctl.ZoneLimit{Zone: z, Limit: lim, Count: liveCount(mem, int(z))})
	}
	return out, nil
}
