package bpf_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/loader"
)

// resubmits is an action list of n resubmits into table t.
func resubmits(n, t int) string {
	return strings.TrimSuffix(strings.Repeat("resubmit(,"+strconv.Itoa(t)+"),", n), ",")
}

// TestWalkStages checks the walk across runs of the walk stage (stages.h):
// a walk longer than WALK_STEPS (32) steps goes on in a new run and ends
// as it would in one; the packet's MAX_STEPS (128) and MAX_PASSES (8)
// limits still hold across runs; and no tail call fails on the way.
func TestWalkStages(t *testing.T) {
	d := newDP(t)
	frame := udpFrame(1000, 2000)

	t.Run("a pass of 46 steps", func(t *testing.T) {
		// 15 resubmits of 3 steps each (the lookup, the load, the
		// return), the first lookup, the output: past WALK_STEPS.
		d.setFlows("table=0, udp, actions="+resubmits(15, 1)+",p2",
			"table=1, udp, actions=load:1->NXM_NX_REG0[]")
		before := d.counter("step_limit")
		res := d.run(1, frame)
		if res.Verdict != loader.TCActRedirect || !slices.Equal(outPorts(&res.Trace), []uint32{2}) {
			t.Errorf("verdict %d, out %v; want redirect to [2]", res.Verdict, outPorts(&res.Trace))
		}
		if n := len(passes(&res.Trace)); n != 16 {
			t.Errorf("%d lookups, want 16", n)
		}
		if got := d.counter("step_limit") - before; got != 0 {
			t.Errorf("step_limit moved by %d", got)
		}
	})

	t.Run("the step limit across runs", func(t *testing.T) {
		// 16 x 15 resubmits: far more than MAX_STEPS; the output
		// after them is never reached.
		d.setFlows("table=0, udp, actions="+resubmits(15, 1)+",p2",
			"table=1, udp, actions="+resubmits(15, 2),
			"table=2, udp, actions=load:1->NXM_NX_REG0[]")
		before := d.counter("step_limit")
		res := d.run(1, frame)
		if res.Verdict != loader.TCActShot || res.Trace.Nout != 0 {
			t.Errorf("verdict %d, %d outputs; want a drop", res.Verdict, res.Trace.Nout)
		}
		if got := d.counter("step_limit") - before; got != 1 {
			t.Errorf("step_limit moved by %d, want 1", got)
		}
	})

	t.Run("the pass limit across runs", func(t *testing.T) {
		// Every pass recirculates into table 0 again, after three
		// resubmits: 12 steps a pass, so the 8 passes take 3 runs.
		d.setFlows("table=0, udp, actions="+resubmits(3, 1)+",ct(table=0)",
			"table=1, udp, actions=load:1->NXM_NX_REG0[]")
		before := d.counter("pass_limit")
		res := d.run(1, frame)
		var npass int
		for i := 0; i < int(res.Trace.Nlookups) && i < len(res.Trace.Lookup); i++ {
			l := res.Trace.Lookup[i]
			if l.Depth == 0 {
				if l.Pass != uint32(npass) || l.Table != 0 {
					t.Errorf("lookup %d: pass %d in table %d, want pass %d in table 0", i, l.Pass, l.Table, npass)
				}
				npass++
			}
		}
		if npass != 8 {
			t.Errorf("%d passes, want MAX_PASSES (8)", npass)
		}
		if got := d.counter("pass_limit") - before; got != 1 {
			t.Errorf("pass_limit moved by %d, want 1", got)
		}
	})
	if got := d.counter("stage_fail"); got != 0 {
		t.Errorf("stage_fail = %d", got)
	}
}

// TestStageFail: when a stage is missing from its prog array, the tail
// call to it fails; the packet is dropped there and counted (stage_fail),
// in TC (the trace program and the attached one) and in XDP.
func TestStageFail(t *testing.T) {
	d := newDP(t)
	frame := udpFrame(1000, 2000)
	d.setFlows("table=0, udp, actions=p2")
	if res := d.run(1, frame); res.Verdict != loader.TCActRedirect {
		t.Fatalf("verdict %d before the stage went, want redirect", res.Verdict)
	}
	if v := d.runXDP(1, frame); v != loader.XDPRedirect {
		t.Fatalf("XDP verdict %d before the stage went, want redirect", v)
	}
	// The runs above stored their walk in the exact-match cache, whose
	// hits need no walk stage: off, so that every run below needs one.
	if err := d.b.SetFlowCache(false); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"tc_stages", "xdp_stages"} {
		if err := d.pinnedMap(m).Delete(uint32(bpf.DatapathStageSTAGE_WALK)); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	if res := d.run(1, frame); res.Verdict != loader.TCActShot {
		t.Errorf("tc_trace: verdict %d without the walk stage, want a drop", res.Verdict)
	}
	if v := d.ingress(1, frame); v != loader.TCActShot {
		t.Errorf("tc_ingress: verdict %d without the walk stage, want a drop", v)
	}
	if v := d.runXDP(1, frame); v != loader.XDPDrop {
		t.Errorf("xdp_ingress: verdict %d without the walk stage, want XDP_DROP", v)
	}
	if got := d.counter("stage_fail"); got != 3 {
		t.Errorf("stage_fail = %d, want 3", got)
	}
}
