package vm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// transcript is a guest console as /init and `go test -v` print it, with
// kernel lines mixed in.
const transcript = `[    1.234567] Run /init as init process
EBPFOVS-VMTEST boot kernel=6.1.0-56-amd64 cpus=2 uptime=2.31
EBPFOVS-VMTEST note insmod /lib/modules/x/veth.ko: File exists
EBPFOVS-VMTEST begin pkg=bpf
[bpf] === RUN   TestGeneratedUpToDate
[bpf]     generate_test.go:20: in a vmtest guest: no clang here
[bpf] --- SKIP: TestGeneratedUpToDate (0.00s)
[bpf] === RUN   TestPipeline
[bpf] === RUN   TestPipeline/arp
[bpf] === RUN   TestPipeline/tcp
[bpf]     datapath_test.go:99: verdict 2, want 7
[bpf]     datapath_test.go:100: second line
[bpf] === RUN   TestPipeline/tiny
[bpf]     datapath_test.go:120: 10 bytes: too short for BPF_PROG_TEST_RUN
[bpf] --- FAIL: TestPipeline (0.03s)
[bpf]     --- PASS: TestPipeline/arp (0.01s)
[bpf]     --- FAIL: TestPipeline/tcp (0.01s)
[bpf]     --- SKIP: TestPipeline/tiny (0.00s)
[    5.000000] veth: some kernel chatter
[bpf] === RUN   TestOther
[bpf] --- PASS: TestOther (0.00s)
[bpf] FAIL
EBPFOVS-VMTEST pkg=bpf status=1 passed=1 failed=1 skipped=1 seconds=3
EBPFOVS-VMTEST begin pkg=ctl
[ctl] === RUN   TestLab
[ctl] === PAUSE TestLab
[ctl] === CONT  TestLab
[ctl] --- PASS: TestLab (1.50s)
[ctl] PASS
EBPFOVS-VMTEST pkg=ctl status=0 passed=1 failed=0 skipped=0 seconds=2
EBPFOVS-VMTEST begin pkg=testenv
[testenv] === RUN   TestA
[testenv] --- PASS: TestA (0.00s)
[testenv] === RUN   TestHang
[testenv] panic: test timed out after 5m0s
[testenv] goroutine 1 [running]:
[   99.000000] BUG: kernel NULL pointer dereference, address: 0000000000000000
[   99.000001] Call Trace:
`

func parseTranscript(t *testing.T, text string) *KernelResult {
	t.Helper()
	r := &KernelResult{Spec: "6.1", Expected: []string{"bpf", "ctl", "testenv", "loader"}}
	p := NewParser(r, time.Now())
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		p.Line(l)
	}
	p.Finish()
	return r
}

func TestParser(t *testing.T) {
	r := parseTranscript(t, transcript)
	if !r.Booted || r.Done || r.Release != "6.1.0-56-amd64" || r.OK() {
		t.Fatalf("booted %v, done %v, release %q, ok %v; want booted, not done, 6.1.0-56-amd64, not ok", r.Booted, r.Done, r.Release, r.OK())
	}
	if len(r.Packages) != 3 {
		t.Fatalf("%d packages, want 3", len(r.Packages))
	}
	bpf, ctl, testenv := r.Packages[0], r.Packages[1], r.Packages[2]

	if !bpf.Reported || bpf.Status != 1 || bpf.Passed != 1 || bpf.Failed != 1 || bpf.Skipped != 1 || bpf.Duration != 3*time.Second {
		t.Errorf("bpf: %+v", bpf)
	}
	var skips []string
	for _, s := range bpf.Skips {
		skips = append(skips, s.Test+": "+s.Reason())
	}
	if want := "TestGeneratedUpToDate: in a vmtest guest: no clang here|TestPipeline/tiny: 10 bytes: too short for BPF_PROG_TEST_RUN"; strings.Join(skips, "|") != want {
		t.Errorf("bpf skips %q, want %q", strings.Join(skips, "|"), want)
	}
	fails := reportedFailures(bpf.Failures)
	if len(fails) != 1 || fails[0].Test != "TestPipeline/tcp" || strings.Join(fails[0].Output, "|") != "    datapath_test.go:99: verdict 2, want 7|    datapath_test.go:100: second line" {
		t.Errorf("bpf failures shown: %+v (the parent with no output of its own is left out)", fails)
	}

	if !ctl.OK() || ctl.Passed != 1 {
		t.Errorf("ctl: %+v", ctl)
	}

	if testenv.Reported || testenv.OK() || testenv.Passed != 1 || len(testenv.Panics) != 1 || !strings.Contains(testenv.Panics[0], "timed out") {
		t.Errorf("testenv (died in TestHang): %+v", testenv)
	}
	if len(r.Kernel) != 2 || !strings.Contains(r.Kernel[0], "BUG: kernel NULL pointer") {
		t.Errorf("kernel lines %q", r.Kernel)
	}
	if len(r.Notes) != 1 || !strings.HasPrefix(r.Notes[0], "insmod ") {
		t.Errorf("notes %q", r.Notes)
	}

	sum := r.Summary()
	for _, want := range []string{
		"kernel 6.1.0-56-amd64: ",
		"bpf FAIL (1 passed, 1 failed, 1 skipped, 3s, exit 1)",
		"ctl ok (1 passed, 2s)",
		"testenv UNFINISHED (1 passed)",
		"loader NOT RUN",
		"the guest died before finishing",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary %q does not contain %q", sum, want)
		}
	}
	var details strings.Builder
	r.WriteDetails(&details)
	for _, want := range []string{
		"  skip bpf TestGeneratedUpToDate: in a vmtest guest: no clang here\n",
		"  FAIL bpf TestPipeline/tcp:\n          datapath_test.go:99: verdict 2, want 7\n",
		"  PANIC testenv: panic: test timed out after 5m0s\n",
		"  testenv did not finish (the guest died or was killed); its last lines:\n",
		"  kernel console:\n      [   99.000000] BUG:",
	} {
		if !strings.Contains(details.String(), want) {
			t.Errorf("details do not contain %q:\n%s", want, details.String())
		}
	}
}

func TestParserAllPass(t *testing.T) {
	text := `EBPFOVS-VMTEST boot kernel=6.12.117+deb12-amd64 cpus=2 uptime=2.8
EBPFOVS-VMTEST begin pkg=loader
[loader] === RUN   TestX
[loader] --- PASS: TestX (0.00s)
[loader] PASS
EBPFOVS-VMTEST pkg=loader status=0 passed=1 failed=0 skipped=0 seconds=0
EBPFOVS-VMTEST done kernel=6.12.117+deb12-amd64 uptime=3.1
[    3.2] reboot: Power down`
	r := &KernelResult{Spec: "6.12", Expected: []string{"loader"}}
	p := NewParser(r, time.Now())
	for _, l := range strings.Split(text, "\n") {
		p.Line(l)
	}
	p.Finish()
	if !r.OK() {
		t.Fatalf("not OK: %s", r.Summary())
	}
	if !strings.HasPrefix(r.Summary(), "kernel 6.12.117+deb12-amd64: loader ok (1 passed) [boot ") {
		t.Errorf("summary %q", r.Summary())
	}
	r.Err = fmt.Errorf("6.12: %w", ErrTimeout)
	if r.OK() || !strings.Contains(r.Summary(), "ERROR: 6.12: time limit reached") || !errors.Is(r.Err, ErrTimeout) {
		t.Errorf("with a timeout: ok %v, summary %q", r.OK(), r.Summary())
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", 70<<10)
	var got []string
	readLines(strings.NewReader("a\r\nb\n"+long+"\nlast"), func(l string) { got = append(got, l) })
	if len(got) != 5 || got[0] != "a" || got[1] != "b" || len(got[2])+len(got[3]) != len(long) || got[4] != "last" {
		t.Errorf("lines: %d, first %q %q, last %q", len(got), got[0], got[1], got[len(got)-1])
	}
}

// TestParserInterleaved: with Parallel, two packages' lines interleave.
func TestParserInterleaved(t *testing.T) {
	text := `EBPFOVS-VMTEST boot kernel=6.1.0-56-amd64 cpus=2 uptime=2
EBPFOVS-VMTEST begin pkg=bpf
EBPFOVS-VMTEST begin pkg=ctl
[bpf] === RUN   TestA
[ctl] === RUN   TestA
[ctl]     x_test.go:1: ctl's reason
[bpf]     x_test.go:2: bpf's failure
[ctl] --- SKIP: TestA (0.00s)
[   7.000] kernel chatter
[bpf] --- FAIL: TestA (0.00s)
EBPFOVS-VMTEST pkg=ctl status=0 passed=0 failed=0 skipped=1 seconds=1
[bpf] FAIL
EBPFOVS-VMTEST pkg=bpf status=1 passed=0 failed=1 skipped=0 seconds=2
EBPFOVS-VMTEST done kernel=6.1.0-56-amd64 uptime=9`
	r := &KernelResult{Spec: "6.1", Expected: []string{"bpf", "ctl"}}
	p := NewParser(r, time.Now())
	for _, l := range strings.Split(text, "\n") {
		p.Line(l)
	}
	p.Finish()
	bpf, ctl := r.pkg("bpf"), r.pkg("ctl")
	if bpf == nil || ctl == nil || !r.Done || r.OK() {
		t.Fatalf("packages %+v, done %v, ok %v", r.Packages, r.Done, r.OK())
	}
	if len(ctl.Skips) != 1 || ctl.Skips[0].Reason() != "ctl's reason" || !ctl.OK() {
		t.Errorf("ctl: %+v", ctl)
	}
	if len(bpf.Failures) != 1 || strings.Join(bpf.Failures[0].Output, "") != "    x_test.go:2: bpf's failure" || bpf.Status != 1 {
		t.Errorf("bpf: %+v", bpf)
	}
}

// TestRetryAfterKernelPanic: a guest whose kernel panicked in the middle
// of a package is booted again for the packages it did not finish; their
// results replace the first boot's, and the panic stays in the report.
func TestRetryAfterKernelPanic(t *testing.T) {
	parse := func(console string) *KernelResult {
		r := &KernelResult{Spec: "7.3", Expected: []string{"bpf", "testenv"}}
		p := NewParser(r, time.Now())
		for _, l := range strings.Split(console, "\n") {
			p.Line(l)
		}
		p.Finish()
		return r
	}
	first := parse(`EBPFOVS-VMTEST boot kernel=7.3.4 cpus=2 uptime=2.31
EBPFOVS-VMTEST begin pkg=bpf
[bpf] --- PASS: TestA (0.00s)
[bpf] PASS
EBPFOVS-VMTEST pkg=bpf status=0 passed=1 failed=0 skipped=0 seconds=3
EBPFOVS-VMTEST begin pkg=testenv
[testenv] === RUN   TestCleanupRemovesEverything
[  489.711137] Oops: int3: 0000 [#1] SMP NOPTI
[  489.728725] Kernel panic - not syncing: Fatal exception in interrupt`)
	if !first.KernelPanicked() || first.OK() {
		t.Fatalf("first boot: panicked %v, OK %v", first.KernelPanicked(), first.OK())
	}
	pkgs := []TestPackage{{Name: "bpf"}, {Name: "testenv"}}
	left := first.unfinished(pkgs)
	if len(left) != 1 || left[0].Name != "testenv" {
		t.Fatalf("unfinished: %v, want testenv", left)
	}
	second := parse(`EBPFOVS-VMTEST boot kernel=7.3.4 cpus=2 uptime=2.31
EBPFOVS-VMTEST begin pkg=testenv
[testenv] --- PASS: TestCleanupRemovesEverything (0.50s)
[testenv] PASS
EBPFOVS-VMTEST pkg=testenv status=0 passed=1 failed=0 skipped=0 seconds=1
EBPFOVS-VMTEST done`)
	first.Retry(second)
	if !first.OK() {
		t.Errorf("after the second boot: not OK: %s", first.Summary())
	}
	if s := first.Summary(); !strings.Contains(s, "testenv ok") || !strings.Contains(s, "booted twice: the guest kernel panicked") {
		t.Errorf("summary: %s", s)
	}
	var details strings.Builder
	first.WriteDetails(&details)
	if d := details.String(); !strings.Contains(d, "Kernel panic") || !strings.Contains(d, "a second boot ran testenv") {
		t.Errorf("details lose the panic:\n%s", d)
	}

	// A second panic in the same package fails the run.
	again := parse(`EBPFOVS-VMTEST boot kernel=7.3.4 cpus=2 uptime=2.31
EBPFOVS-VMTEST begin pkg=testenv
[  12.0] Kernel panic - not syncing: Fatal exception`)
	third := parse(`EBPFOVS-VMTEST boot kernel=7.3.4 cpus=2 uptime=2.31
EBPFOVS-VMTEST begin pkg=bpf
EBPFOVS-VMTEST pkg=bpf status=0 passed=1 failed=0 skipped=0 seconds=3
EBPFOVS-VMTEST begin pkg=testenv
[  489.7] Kernel panic - not syncing: Fatal exception in interrupt`)
	third.Retry(again)
	if third.OK() {
		t.Errorf("a kernel that panics twice passed: %s", third.Summary())
	}
}
