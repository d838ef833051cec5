package vm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseVerifierLine(t *testing.T) {
	row, ok := parseVerifierLine("[bpf] EBPFOVS-VERIFIER prog=tc_ingress insns=123456 peak_states=789 time_us=12345 jited=4567 budget=250000 kernel=6.1.0-57-amd64")
	want := VerifierRow{Kernel: "6.1.0-57-amd64", Package: "bpf", Prog: "tc_ingress", Insns: 123456, PeakStates: 789, Time: 12345 * time.Microsecond, JITed: 4567, Budget: 250000, Loads: 1}
	if !ok || row != want {
		t.Errorf("got %+v, %v\nwant %+v", row, ok, want)
	}
	row, ok = parseVerifierLine("EBPFOVS-VERIFIER prog=xdp insns=10 budget=5")
	if !ok || row.Package != "" || row.Prog != "xdp" || row.PeakStates != -1 || row.Time != -1 || row.JITed != -1 || !row.Over() {
		t.Errorf("unprefixed, fields missing, over budget: %+v, %v", row, ok)
	}
	for _, l := range []string{
		"[bpf]     datapath_test.go:12: EBPFOVS-VERIFIER prog=x insns=1", // inside a t.Log line
		"EBPFOVS-VERIFIER insns=1",                                       // no program
		"[bpf] EBPFOVS-VERIFIERS prog=x",
		"[bpf] --- PASS: TestX (0.00s)",
	} {
		if row, ok := parseVerifierLine(l); ok {
			t.Errorf("%q parsed as %+v", l, row)
		}
	}
}

func TestVerifierTable(t *testing.T) {
	text := `EBPFOVS-VMTEST boot kernel=7.3.4+deb13-amd64 cpus=2 uptime=2
EBPFOVS-VMTEST begin pkg=bpf
[bpf] === RUN   TestLoad
[bpf] EBPFOVS-VERIFIER prog=tc_ingress insns=120000 peak_states=700 time_us=900000 jited=4567 budget=250000 kernel=7.3.4+deb13-amd64
[bpf] EBPFOVS-VERIFIER prog=tc_egress insns=260000 peak_states=1500 time_us=2500000 jited=9000 budget=250000 kernel=7.3.4+deb13-amd64
[bpf] EBPFOVS-VERIFIER prog=tc_ingress insns=123456 peak_states=789 time_us=12345 jited=4567 budget=250000 kernel=7.3.4+deb13-amd64
[bpf] EBPFOVS-VERIFIER prog=tc_ingress insns=100 peak_states=1 time_us=1 jited=4567 budget=250000 kernel=7.3.4+deb13-amd64
[bpf] EBPFOVS-VERIFIER prog=xdp_noop insns=2 peak_states=0 time_us=5 jited=0
[bpf] --- PASS: TestLoad (1.00s)
[bpf] PASS
EBPFOVS-VMTEST pkg=bpf status=0 passed=1 failed=0 skipped=0 seconds=1
EBPFOVS-VMTEST done kernel=7.3.4+deb13-amd64 uptime=9`
	r := &KernelResult{Spec: "newest", Expected: []string{"bpf"}}
	p := NewParser(r, time.Now())
	for _, l := range strings.Split(text, "\n") {
		p.Line(l)
	}
	p.Finish()
	if !r.OK() || len(r.Verifier) != 3 {
		t.Fatalf("ok %v, verifier rows %+v", r.OK(), r.Verifier)
	}
	in := r.Verifier[0]
	if in.Prog != "tc_ingress" || in.Insns != 123456 || in.PeakStates != 789 || in.Loads != 3 {
		t.Errorf("tc_ingress: %+v, want the load with the most insns (123456) of 3", in)
	}
	if r.Verifier[2].Kernel != "7.3.4+deb13-amd64" {
		t.Errorf("a line without kernel= takes the run's release: %+v", r.Verifier[2])
	}
	if tail := r.pkg("bpf").Tail; strings.Contains(strings.Join(tail, "\n"), "EBPFOVS-VERIFIER") {
		t.Errorf("verifier lines kept in the package's output: %q", tail)
	}
	if !strings.HasPrefix(r.Summary(), "kernel 7.3.4+deb13-amd64: bpf ok (1 passed, 1s) [boot ") {
		t.Errorf("summary %q", r.Summary())
	}

	var b strings.Builder
	r.WriteVerifierTable(&b)
	want := `  kernel             program      insns  peak states  verify time   JITed  budget
  7.3.4+deb13-amd64  tc_ingress  123456          789       12.3ms  4567 B  250000
  7.3.4+deb13-amd64  tc_egress   260000         1500        2.50s  9000 B  250000  OVER
  7.3.4+deb13-amd64  xdp_noop         2            0          5us     0 B       -
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	var rep strings.Builder
	Report(&rep, []*KernelResult{r})
	if !strings.Contains(rep.String(), "-- kernel 7.3.4+deb13-amd64 --\n"+want) {
		t.Errorf("report without the table:\n%s", rep.String())
	}

	dir := filepath.Join(t.TempDir(), "out")
	file, err := WriteVerifierMarkdown(dir, r)
	if err != nil || file != filepath.Join(dir, "verifier-7.3.4+deb13-amd64.md") {
		t.Fatalf("markdown: %s, %v", file, err)
	}
	md, _ := os.ReadFile(file)
	for _, w := range []string{
		"# Verifier statistics on 7.3.4+deb13-amd64\n",
		"| kernel | program | processed insns | peak states | verification time | JITed size | budget |\n|---|---|---:|",
		"| 7.3.4+deb13-amd64 | tc_ingress | 123456 | 789 | 12.3ms | 4567 B | 250000 |\n",
		"| 7.3.4+deb13-amd64 | tc_egress | 260000 | 1500 | 2.50s | 9000 B | 250000 **over** |\n",
	} {
		if !strings.Contains(string(md), w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}
	empty := &KernelResult{Release: "6.1.0-57-amd64"}
	if file, err := WriteVerifierMarkdown(dir, empty); file != "" || err != nil {
		t.Errorf("no rows: %q, %v; want no file", file, err)
	}
	b.Reset()
	empty.WriteVerifierTable(&b)
	if b.Len() != 0 {
		t.Errorf("no rows, table %q", b.String())
	}
}
