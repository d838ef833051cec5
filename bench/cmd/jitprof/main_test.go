package main

import (
	"strings"
	"testing"
)

func TestAggregate(t *testing.T) {
	funcs := []jitFunc{
		{name: "tc_ingress", addr: 0xffffffffc0001000, code: make([]byte, 0x100)},
		{name: "ct_execute", addr: 0xffffffffc0002000, code: make([]byte, 0x80)},
	}
	in := strings.Join([]string{
		"ffffffffc0001010 bpf_prog_abc_tc_ingress",
		"ffffffffc0001010 bpf_prog_abc_tc_ingress",
		"ffffffffc000207f bpf_prog_def_ct_execute",
		"ffffffffc0002080 bpf_prog_xyz_other", // one past ct_execute's end
		"ffffffff8151aa50 htab_map_hash",
		"ffffffff81000000 pv_native_safe_halt", // idle: not counted
		"not a sample line",
		"",
	}, "\n")
	lines := []srcLine{
		{addr: 0xffffffffc0001000, text: "datapath.c:10 count(CNT_PACKETS);"},
		{addr: 0xffffffffc0001010, text: "emc.h:20 h = ..."},
		{addr: 0xffffffffc0001f00, text: "emc.h:30 the end of tc_ingress"},
	}
	p := aggregate(strings.NewReader(in), funcs, lines)
	if p.total != 5 || p.inProg != 3 {
		t.Fatalf("total %d inProg %d, want 5 and 3", p.total, p.inProg)
	}
	if got := p.byInsn[insn{0, 0x10}]; got != 2 {
		t.Errorf("tc_ingress+0x10: %d samples, want 2", got)
	}
	if got := p.byInsn[insn{1, 0x7f}]; got != 1 {
		t.Errorf("ct_execute+0x7f: %d samples, want 1", got)
	}
	if p.byLine["emc.h:20 h = ..."] != 2 || len(p.byLine) != 1 {
		t.Errorf("byLine %v: ct_execute's sample has no line of its own (the last one starts in tc_ingress)", p.byLine)
	}
	if p.bySym["htab_map_hash"] != 1 || p.bySym["bpf_prog_xyz_other"] != 1 || p.bySym["tc_ingress (program)"] != 2 {
		t.Errorf("bySym %v", p.bySym)
	}
}

func TestAround(t *testing.T) {
	lines := []string{"   0:\tnop", "   1:\tnop", "   2:\tmov", "   5:\tlock cmpxchg", "   a:\tmov", "   f:\tret"}
	got := around(lines, 0xa, 2)
	if strings.Join(got, "|") != "   2:\tmov|   5:\tlock cmpxchg|   a:\tmov" {
		t.Errorf("around = %q", got)
	}
	if got := around(lines, 0x100, 2); got != nil {
		t.Errorf("past the end: %q", got)
	}
}
