package flowtable

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
)

const testMaxFlows = 1024

// flowsOf compiles flow texts into Flows with ids 1, 2, ... in order.
func flowsOf(t *testing.T, texts ...string) []Flow {
	t.Helper()
	var out []Flow
	for i, s := range texts {
		c, err := compileFlow(t, s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, Flow{ID: uint32(i + 1), Compiled: c})
	}
	return out
}

func build(t *testing.T, gen uint32, held map[uint32]Mask, texts ...string) *Image {
	t.Helper()
	img, err := Build(flowsOf(t, texts...), gen, testMaxFlows, Held{Masks: held})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestBuild: the image of a small table -- masks, subtables ordered by
// priority, the flows hash with the best flow per match, action slots of
// the generation, the XDP bit.
func TestBuild(t *testing.T) {
	img := build(t, 1, nil,
		"table=0, priority=10, tcp, tp_dst=80, actions=output:2",
		"table=0, priority=20, tcp, tp_dst=22, actions=drop",
		"table=0, priority=20, tcp, tp_dst=22, actions=output:3", // same match and priority: the older wins
		"table=0, priority=5, ip, nw_src=10.0.0.1, actions=output:1",
		"table=1, priority=0, actions=NORMAL",
	)
	if len(img.Masks) != 3 {
		t.Errorf("%d masks, want 3 (tcp+tp_dst, ip+nw_src, empty)", len(img.Masks))
	}
	t0 := img.Tables[0]
	if t0.Nsubtables != 2 || t0.St[0].MaxPriority != 20 || t0.St[1].MaxPriority != 5 {
		t.Errorf("table 0 subtables %d: %+v, want 2 by priority 20, 5", t0.Nsubtables, t0.St[:2])
	}
	if img.Tables[1].Nsubtables != 1 || img.Tables[2].Nsubtables != 0 {
		t.Errorf("tables 1 and 2 have %d and %d subtables, want 1 and 0", img.Tables[1].Nsubtables, img.Tables[2].Nsubtables)
	}
	if len(img.Lookups) != 4 {
		t.Fatalf("%d flow entries, want 4 (the duplicate match is one entry)", len(img.Lookups))
	}
	var got []string
	for lk, ref := range img.Lookups {
		if lk.Gen != 1 || ref.Acts != ref.FlowId+testMaxFlows {
			t.Errorf("entry %+v -> %+v: not generation 1's", lk, ref)
		}
		got = append(got, fmt.Sprint(ref.FlowId))
	}
	if s := strings.Join(sortStrings(got), ","); s != "1,2,4,5" {
		t.Errorf("flows in the hash %s, want 1,2,4,5 (3 loses to the older 2)", s)
	}
	if len(img.Actions) != 5 {
		t.Errorf("%d action slots, want every flow's", len(img.Actions))
	}
	if img.XDP != cfgXDPGen0<<1 {
		t.Errorf("XDP bit %#x, want generation 1's (every flow fits XDP)", img.XDP)
	}
	if img.Tables[emcTable].Emc&uint32(bpf.DatapathEmcShapeEMC_ON) == 0 {
		t.Error("the exact-match cache is off for a table this small")
	}
}

// TestBuildEMCShape: the exact-match cache's key holds what flows match,
// what actions read and, for a flow on the connection's tuple, the
// packet's addresses and ports; the shape says which fields a ct(nat)
// writes no flow looks at.
func TestBuildEMCShape(t *testing.T) {
	const (
		on      = uint32(bpf.DatapathEmcShapeEMC_ON)
		srcAddr = uint32(bpf.DatapathEmcShapeEMC_FREE_SRC_ADDR)
		srcPort = uint32(bpf.DatapathEmcShapeEMC_FREE_SRC_PORT)
		dstAddr = uint32(bpf.DatapathEmcShapeEMC_FREE_DST_ADDR)
		dstPort = uint32(bpf.DatapathEmcShapeEMC_FREE_DST_PORT)
	)
	for _, c := range []struct {
		flows []string
		words []string // fields the key must cover
		emc   uint32
	}{
		{[]string{"ip, actions=ct(nat),output:1"}, nil, on | srcAddr | srcPort | dstAddr | dstPort},
		{[]string{"ip, nw_src=10.0.0.1, actions=output:1", "ipv6, ipv6_dst=::1, actions=output:2"},
			[]string{"nw_src", "ipv6_dst"}, on | srcPort | dstPort},
		{[]string{"tcp, tp_dst=80, actions=output:1"}, []string{"tp_dst"}, on | srcAddr | srcPort | dstAddr},
		{[]string{"udp, actions=move:NXM_OF_UDP_SRC[]->NXM_NX_REG0[0..15],output:1"}, []string{"tp_src"}, on | srcAddr | dstAddr | dstPort},
		{[]string{"udp, actions=ct(zone=NXM_OF_IP_DST[0..15]),output:1"}, []string{"nw_dst"}, on | srcAddr | srcPort | dstPort},
		{[]string{"ct_state=+trk+est, ct_nw_proto=6, ct_tp_dst=80, actions=output:1"}, []string{"tp_src", "tp_dst", "nw_proto"}, on},
	} {
		img := build(t, 0, nil, c.flows...)
		shape := img.Tables[emcTable]
		if shape.Emc != c.emc {
			t.Errorf("%q: emc %#x, want %#x", c.flows, shape.Emc, c.emc)
		}
		covered := map[uint8]bool{}
		for _, w := range shape.CacheWords[:shape.CacheNwords] {
			covered[w] = true
		}
		for _, f := range c.words {
			var off int
			switch f {
			case "nw_src":
				off = slotNwSrc.off
			case "ipv6_dst":
				off = slotIPv6Dst.off
			case "nw_dst":
				off = slotNwDst.off
			case "tp_src":
				off = slotTpSrc.off
			case "tp_dst":
				off = slotTpDst.off
			case "nw_proto":
				off = slotNwProto.off
			}
			if !covered[uint8(off/8)] {
				t.Errorf("%q: the cache key lacks %s (words %v)", c.flows, f, shape.CacheWords[:shape.CacheNwords])
			}
		}
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// TestBuildXDP: the generation's CFG_XDP_GEN bit is set when every flow
// fits XDP, and not when one matches pkt_mark.
func TestBuildXDP(t *testing.T) {
	if img := build(t, 1, nil, "in_port=1, actions=output:2"); img.XDP != cfgXDPGen0<<1 {
		t.Errorf("XDP bit %#x, want %#x", img.XDP, cfgXDPGen0<<1)
	}
	if img := build(t, 0, nil, "in_port=1, actions=output:2", "pkt_mark=1, actions=drop"); img.XDP != 0 {
		t.Errorf("XDP bit %#x with a pkt_mark match, want 0", img.XDP)
	}
}

// TestBuildMaskIDs: a mask the maps hold keeps its id; a new one takes an
// id no held mask has.
func TestBuildMaskIDs(t *testing.T) {
	first := build(t, 0, nil, "tcp, tp_dst=80, actions=drop")
	if len(first.Masks) != 1 {
		t.Fatalf("%d masks", len(first.Masks))
	}
	var id uint32
	for k := range first.Masks {
		id = k
	}
	held := map[uint32]Mask{id + 7: first.Masks[id]} // as if it had id+7
	for i := uint32(0); i < 3; i++ {
		held[i] = maskEntry(&keyBytes{byte(i + 1)}) // ids 0..2 taken by others
	}
	img := build(t, 1, held, "tcp, tp_dst=22, actions=drop", "udp, actions=drop")
	for mid, m := range img.Masks {
		if m == first.Masks[id] && mid != id+7 {
			t.Errorf("the held mask got id %d, want its own %d", mid, id+7)
		}
		if m != first.Masks[id] && mid < 3 {
			t.Errorf("a new mask took held id %d", mid)
		}
	}
}

// TestBuildLimits: more distinct masks in a table than the datapath's
// subtables, or in all than its masks, are refused.
func TestBuildLimits(t *testing.T) {
	var texts []string
	for i := 1; i <= maxSubtables; i++ {
		texts = append(texts, fmt.Sprintf("ip, nw_src=10.0.0.0/%d, actions=drop", i))
	}
	texts = append(texts, "ip, nw_dst=10.0.0.1, actions=drop") // one more
	if _, err := Build(flowsOf(t, texts...), 0, testMaxFlows, Held{}); err == nil || !strings.Contains(err.Error(), "too many distinct match masks") {
		t.Errorf("%d masks in one table: %v", len(texts), err)
	}
}

// TestDiff: the writes between two images of one generation: stale and
// changed flow entries, changed tables, new masks only.
func TestDiff(t *testing.T) {
	a := build(t, 1, nil, "priority=10, tcp, tp_dst=80, actions=output:2", "priority=5, udp, actions=drop")
	b := build(t, 1, a.Masks, "priority=10, tcp, tp_dst=80, actions=output:3", "priority=7, icmp, icmp_type=8, actions=drop")
	ch := Diff(a, b)
	if len(ch.StaleLookups) != 1 {
		t.Errorf("stale entries %d, want 1 (udp)", len(ch.StaleLookups))
	}
	if len(ch.LookupKeys) != 1 {
		t.Errorf("%d new or changed entries, want 1 (icmp; tcp's entry is the same: its actions live in its slot)", len(ch.LookupKeys))
	}
	if len(ch.Masks) != 1 {
		t.Errorf("%d masks written, want 1 (icmp's; tcp's is held)", len(ch.Masks))
	}
	_, t0 := ch.Tables[0]
	_, emc := ch.Tables[emcTable]
	if !t0 || !emc || len(ch.Tables) != 2 {
		t.Errorf("%d tables written, want table 0 and the cache's shape (icmp_type widens both)", len(ch.Tables))
	}
	if len(ch.ActionSlots) != 2 {
		t.Errorf("%d action slots written, want both flows'", len(ch.ActionSlots))
	}
	if same := Diff(b, b); len(same.StaleLookups)+len(same.LookupKeys)+len(same.Masks)+len(same.Tables) != 0 {
		t.Errorf("an image against itself: %+v", same)
	}
}
