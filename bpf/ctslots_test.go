package bpf_test

import (
	"fmt"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/dpctl"
)

// TestConntrackSlots: a connection lives in a ct_slots entry that its
// key's reference names. A removed connection's slot is taken again by
// the next commit, whichever way it was removed (by tuple, through
// ct_delete_keys; by zone, through ct_flush), so the slots ever used do
// not grow; and a reference left over from before the removal (a reader
// that looked the key up just before) no longer reaches the slot's new
// occupant: its packet is a new connection's, and the occupant is
// untouched.
func TestConntrackSlots(t *testing.T) {
	d := newDP(t)
	d.setFlows(ctLimitFlows...)
	ct, slots := d.pinnedMap("conntrack"), d.pinnedMap("ct_slots")
	defer ct.Close()
	defer slots.Close()
	flushes := []struct {
		name string
		args func(sport uint16) []string
	}{
		{"by tuple", func(sport uint16) []string {
			return []string{fmt.Sprintf("ct_nw_src=%s,ct_nw_proto=17,ct_tp_src=%d", ip1, sport)}
		}},
		{"by zone", func(uint16) []string { return []string{"zone=0"} }},
	}
	for i, fl := range flushes {
		a, b := uint16(1000+i), uint16(2000+i)
		d.run(1, udpFrame(a, 53))
		kA, rA, _ := d.onlyConn("A committed")
		f, err := dpctl.ParseFilter(fl.args(a))
		if err != nil {
			t.Fatal(err)
		}
		if n, err := d.b.FlushConntrack(f); err != nil || n != 1 {
			t.Fatalf("flush %s: %d removed, %v", fl.name, n, err)
		}
		if n := d.nconns(); n != 0 {
			t.Fatalf("flush %s: %d connections counted after", fl.name, n)
		}
		d.run(1, udpFrame(b, 53))
		_, rB, eB := d.onlyConn("B committed")
		if rB.Slot != rA.Slot || rB.Gen == rA.Gen {
			t.Errorf("flush %s: B got slot %d gen %d; want A's slot %d again, with a gen other than %d",
				fl.name, rB.Slot, rB.Gen, rA.Slot, rA.Gen)
		}
		// A reader still holding A's reference: put it back under A's key.
		if err := ct.Put(&kA, &rA); err != nil {
			t.Fatal(err)
		}
		if st := d.run(1, udpFrame(a, 53)).Trace.CtState; st&(csNew|csEst) != csNew {
			t.Errorf("flush %s: A's packet through a stale reference: ct_state %#x, want +new", fl.name, st)
		}
		var after bpf.DatapathCtEntry
		if err := slots.Lookup(rB.Slot, &after); err != nil {
			t.Fatal(err)
		}
		if after.Packets != eB.Packets || after.Flags != eB.Flags || after.Gen != eB.Gen {
			t.Errorf("flush %s: a stale reference changed B: packets %v -> %v, flags %#x -> %#x, gen %d -> %d",
				fl.name, eB.Packets, after.Packets, eB.Flags, after.Flags, eB.Gen, after.Gen)
		}
		if err := ct.Delete(&kA); err != nil {
			t.Fatal(err)
		}
		if n, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil || n != 1 {
			t.Fatalf("flush all: %d removed, %v", n, err)
		}
	}
	var used uint64
	counts := d.pinnedMap("ct_count")
	defer counts.Close()
	if err := counts.Lookup(uint32(65536+1), &used); err != nil {
		t.Fatal(err)
	}
	if used > 2 {
		t.Errorf("%d slots ever used for at most two connections at a time: freed slots are not taken again", used)
	}
}
