package vm

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// KernelResult is the outcome of one kernel's run.
type KernelResult struct {
	// Spec is what was asked for ("6.1"); Release is the guest's `uname -r`
	// (from the kernel package, or from the guest's boot line).
	Spec, Release string
	// Packages are the packages the guest started, in order.
	Packages []*PackageResult
	// Expected are the package names the guest should have run.
	Expected []string
	// Booted: the guest's /init ran. Done: it finished all packages.
	Booted, Done bool
	// Fatal is the guest's reason for giving up early, if any.
	Fatal string
	// Notes are the guest's remarks (a module that did not load, ...).
	Notes []string
	// Verifier holds the verifier statistics the tests reported
	// (VerifierMarker lines), one row per program.
	Verifier []VerifierRow
	// Kernel holds remarkable kernel console lines (oops, panic, BUG,
	// WARNING and what follows), at most maxKernelLines.
	Kernel []string
	// Err is the error of the run itself: the kernel could not be fetched,
	// QEMU failed, or the time limit killed it.
	Err error
	// Retried: the guest kernel panicked, and a second boot ran the
	// packages it had not finished (Retry).
	Retried bool
	// BootTime is from starting QEMU to /init's first line; Total is the
	// whole run, including preparing the image.
	BootTime, TestTime, Total time.Duration
}

// PackageResult is the outcome of one package's test binary.
type PackageResult struct {
	Name string
	// Reported: the guest printed the package's result line.
	Reported bool
	// Status is the test binary's exit status (0: all passed).
	Status int
	// Passed, Failed and Skipped count top-level tests.
	Passed, Failed, Skipped int
	// Duration is the binary's run time, measured in the guest.
	Duration time.Duration
	// Skips and Failures are the skipped and failed tests (subtests
	// included) with their output.
	Skips, Failures []TestOutcome
	// Panics are the binary's "panic:" lines (a test timeout is one).
	Panics []string
	// Tail is the end of the package's output, to show when the binary
	// failed without a failed test (a panic, TestMain, a crash).
	Tail []string
}

// OK reports whether the package ran to the end and passed.
func (p *PackageResult) OK() bool { return p.Reported && p.Status == 0 }

// TestOutcome is a test's result and the log lines it printed.
type TestOutcome struct {
	Test   string
	Output []string
}

// Reason is the last line the test logged, without the file:line prefix
// of t.Log: for a skipped test, the reason it gave.
func (o TestOutcome) Reason() string {
	for i := len(o.Output) - 1; i >= 0; i-- {
		if s := strings.TrimSpace(o.Output[i]); s != "" {
			return logPrefix.ReplaceAllString(s, "")
		}
	}
	return "(no reason given)"
}

var logPrefix = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.go:[0-9]+: `)

// OK reports whether the kernel's run passed: the guest finished, every
// expected package reported and exited 0.
func (r *KernelResult) OK() bool {
	if r.Err != nil || !r.Done || r.Fatal != "" {
		return false
	}
	for _, name := range r.Expected {
		p := r.pkg(name)
		if p == nil || !p.OK() {
			return false
		}
	}
	return true
}

// KernelPanicked reports whether the guest's kernel panicked before the
// guest finished.
func (r *KernelResult) KernelPanicked() bool {
	if r.Done {
		return false
	}
	for _, l := range r.Kernel {
		if strings.Contains(l, "Kernel panic") {
			return true
		}
	}
	return false
}

// unfinished are the packages of pkgs the guest did not report a result
// for.
func (r *KernelResult) unfinished(pkgs []TestPackage) []TestPackage {
	var out []TestPackage
	for _, p := range pkgs {
		if pr := r.pkg(p.Name); pr == nil || !pr.Reported {
			out = append(out, p)
		}
	}
	return out
}

// Retry takes the result of a second boot, run for the packages r did not
// finish: their results replace r's, and the run's outcome (done, errors)
// is the second boot's. The first boot's kernel console stays in r, with
// a note, so the panic is reported whatever the second boot gives.
func (r *KernelResult) Retry(second *KernelResult) {
	var rerun []string
	for _, p := range second.Packages {
		rerun = append(rerun, p.Name)
		replaced := false
		for i, q := range r.Packages {
			if q.Name == p.Name {
				r.Packages[i], replaced = p, true
			}
		}
		if !replaced {
			r.Packages = append(r.Packages, p)
		}
	}
	r.Notes = append(r.Notes, fmt.Sprintf("the guest kernel panicked (console below); a second boot ran %s", strings.Join(rerun, ", ")))
	r.Notes = append(r.Notes, second.Notes...)
	r.Kernel = append(r.Kernel, second.Kernel...)
	r.Verifier = append(r.Verifier, second.Verifier...)
	r.Done, r.Fatal, r.Err = second.Done, second.Fatal, second.Err
	r.TestTime += second.TestTime
	r.Retried = true
}

func (r *KernelResult) pkg(name string) *PackageResult {
	for _, p := range r.Packages {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// name is the kernel's name in summaries: its release, else the spec.
func (r *KernelResult) name() string {
	if r.Release != "" {
		return r.Release
	}
	return r.Spec
}

// Summary is one line: "kernel 6.1.0-56-amd64: ctl ok (12 passed, 1
// skipped), bpf FAIL (...) [boot 9s, tests 2m10s, total 2m31s]".
func (r *KernelResult) Summary() string {
	var parts []string
	for _, name := range r.Expected {
		p := r.pkg(name)
		switch {
		case p == nil:
			parts = append(parts, name+" NOT RUN")
		case !p.Reported:
			parts = append(parts, fmt.Sprintf("%s UNFINISHED (%s)", name, counts(p)))
		case p.Status == 0:
			parts = append(parts, fmt.Sprintf("%s ok (%s)", name, counts(p)))
		default:
			parts = append(parts, fmt.Sprintf("%s FAIL (%s, exit %d)", name, counts(p), p.Status))
		}
	}
	s := fmt.Sprintf("kernel %s: %s", r.name(), strings.Join(parts, ", "))
	switch {
	case r.Err != nil:
		s += "; ERROR: " + r.Err.Error()
	case r.Fatal != "":
		s += "; guest gave up: " + r.Fatal
	case !r.Done && r.Booted:
		s += "; the guest died before finishing"
	case !r.Booted:
		s += "; the guest never reached /init"
	}
	if r.Retried {
		s += "; booted twice: the guest kernel panicked"
	}
	return s + fmt.Sprintf(" [boot %s, tests %s, total %s]", round(r.BootTime), round(r.TestTime), round(r.Total))
}

func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func counts(p *PackageResult) string {
	s := fmt.Sprintf("%d passed", p.Passed)
	if p.Failed > 0 {
		s += fmt.Sprintf(", %d failed", p.Failed)
	}
	if p.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", p.Skipped)
	}
	if p.Duration > 0 {
		s += ", " + round(p.Duration).String()
	}
	return s
}

// maxOutputLines bounds what is kept of one test's log and shown of it.
const maxOutputLines = 60

// WriteDetails writes the skipped tests with their reasons, then the
// failures with their output, the guest's notes and remarkable kernel
// lines.
func (r *KernelResult) WriteDetails(w io.Writer) {
	for _, p := range r.Packages {
		for _, s := range p.Skips {
			fmt.Fprintf(w, "  skip %s %s: %s\n", p.Name, s.Test, s.Reason())
		}
	}
	for _, n := range dedupe(r.Notes) {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, p := range r.Packages {
		for _, f := range reportedFailures(p.Failures) {
			fmt.Fprintf(w, "  FAIL %s %s:\n", p.Name, f.Test)
			for _, l := range f.Output {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
		for _, l := range p.Panics {
			fmt.Fprintf(w, "  PANIC %s: %s\n", p.Name, l)
		}
		if (!p.Reported || p.Status != 0) && len(reportedFailures(p.Failures)) == 0 {
			if p.Reported {
				fmt.Fprintf(w, "  %s exited %d without a failed test; its last lines:\n", p.Name, p.Status)
			} else {
				fmt.Fprintf(w, "  %s did not finish (the guest died or was killed); its last lines:\n", p.Name)
			}
			for _, l := range p.Tail {
				fmt.Fprintf(w, "      %s\n", l)
			}
			if len(p.Tail) == 0 {
				fmt.Fprintf(w, "      (no output)\n")
			}
		}
	}
	if len(r.Kernel) > 0 {
		fmt.Fprintf(w, "  kernel console:\n")
		for _, l := range r.Kernel {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}

// dedupe drops repeated lines, counting them: "text (3 times)".
func dedupe(lines []string) []string {
	n := map[string]int{}
	var order []string
	for _, l := range lines {
		if n[l] == 0 {
			order = append(order, l)
		}
		n[l]++
	}
	for i, l := range order {
		if n[l] > 1 {
			order[i] = fmt.Sprintf("%s (%d times)", l, n[l])
		}
	}
	return order
}

// reportedFailures drops failed parents that logged nothing themselves
// and have a failed subtest: the subtest says what went wrong.
func reportedFailures(fs []TestOutcome) []TestOutcome {
	var out []TestOutcome
	for _, f := range fs {
		if len(f.Output) == 0 {
			child := false
			for _, g := range fs {
				if strings.HasPrefix(g.Test, f.Test+"/") {
					child = true
					break
				}
			}
			if child {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// Parser turns the guest's console lines into a KernelResult. Feed it every
// line with Line; it keeps only what the report needs.
type Parser struct {
	res   *KernelResult
	start time.Time
	open  map[string]*pkgState // packages running, by name (several at once with Parallel)
	// kernelLines > 0: copying the lines after an oops/WARNING.
	kernelLines int
}

type pkgState struct {
	res    *PackageResult
	test   string              // the test the next log lines belong to
	logs   map[string][]string // per test
	status map[string]string   // per test: PASS, FAIL, SKIP
	order  []string            // tests in the order they got a result
}

// NewParser starts parsing into res; start is when QEMU started, for
// BootTime.
func NewParser(res *KernelResult, start time.Time) *Parser {
	return &Parser{res: res, start: start, open: map[string]*pkgState{}}
}

var (
	// "=== RUN   TestX", "=== CONT  TestX", "=== NAME  TestX", "=== PAUSE TestX"
	testStartRE = regexp.MustCompile(`^=== (?:RUN|CONT|NAME|PAUSE)\s+(\S+)`)
	// "--- PASS: TestX (0.00s)", indented for subtests
	testResultRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+) \(`)
	kernelAlarm  = regexp.MustCompile(`(Kernel panic|BUG:|WARNING:|Oops|general protection fault|Call Trace|watchdog: |rcu: INFO)`)
)

const maxKernelLines = 80

// Line consumes one console line.
func (p *Parser) Line(line string) {
	if rest, ok := strings.CutPrefix(line, Marker+" "); ok {
		p.marker(rest)
		return
	}
	if strings.Contains(line, VerifierMarker+" ") {
		if row, ok := parseVerifierLine(line); ok {
			p.res.addVerifierRow(row)
			return
		}
	}
	// "[PKG] text"; kernel lines look alike ("[    5.123456] veth: ...")
	// but name no running package.
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if name, text, ok := strings.Cut(rest, "] "); ok {
			if st := p.open[name]; st != nil {
				st.line(text)
				return
			}
		}
	}
	p.kernel(line)
}

// kernel keeps alarming kernel lines and the lines after them.
func (p *Parser) kernel(line string) {
	if kernelAlarm.MatchString(line) {
		p.kernelLines = 25
	}
	if p.kernelLines > 0 && len(p.res.Kernel) < maxKernelLines {
		p.kernelLines--
		p.res.Kernel = append(p.res.Kernel, line)
	}
}

// marker handles a line of /init: "boot ...", "begin pkg=X",
// "pkg=X status=...", "done ...", "fatal ...", "note ...".
func (p *Parser) marker(rest string) {
	word, args, _ := strings.Cut(rest, " ")
	kv := fields(rest)
	switch {
	case word == "boot":
		p.res.Booted = true
		p.res.BootTime = time.Since(p.start)
		if k := kv["kernel"]; k != "" {
			p.res.Release = k
		}
	case word == "begin":
		name := kv["pkg"]
		st := &pkgState{
			res:    &PackageResult{Name: name, Status: -1},
			logs:   map[string][]string{},
			status: map[string]string{},
		}
		p.open[name] = st
		p.res.Packages = append(p.res.Packages, st.res)
	case strings.HasPrefix(word, "pkg="):
		st := p.open[kv["pkg"]]
		if st == nil {
			p.res.Notes = append(p.res.Notes, "result without begin: "+rest)
			return
		}
		r := st.res
		r.Reported = true
		r.Status = atoi(kv["status"], -1)
		r.Passed, r.Failed, r.Skipped = atoi(kv["passed"], 0), atoi(kv["failed"], 0), atoi(kv["skipped"], 0)
		r.Duration = time.Duration(atoi(kv["seconds"], 0)) * time.Second
		st.finish()
		delete(p.open, r.Name)
	case word == "done":
		p.res.Done = true
		p.res.TestTime = time.Since(p.start) - p.res.BootTime
	case word == "fatal":
		p.res.Fatal = args
	case word == "note":
		p.res.Notes = append(p.res.Notes, args)
	default:
		p.res.Notes = append(p.res.Notes, "unknown line: "+rest)
	}
}

// Finish completes a package whose result line never came (the guest
// died or was killed in the middle of it).
func (p *Parser) Finish() {
	for name, st := range p.open {
		st.finish()
		delete(p.open, name)
	}
	if !p.res.Done && p.res.Booted {
		p.res.TestTime = time.Since(p.start) - p.res.BootTime
	}
}

// line consumes one line of the package's test output.
func (s *pkgState) line(text string) {
	s.res.Tail = appendBounded(s.res.Tail, text, 40)
	if m := testStartRE.FindStringSubmatch(text); m != nil {
		s.test = m[1]
		return
	}
	if m := testResultRE.FindStringSubmatch(text); m != nil {
		s.test = m[2]
		if _, seen := s.status[m[2]]; !seen {
			s.order = append(s.order, m[2])
		}
		s.status[m[2]] = m[1]
		return
	}
	if strings.HasPrefix(text, "panic: ") {
		s.res.Panics = appendBounded(s.res.Panics, text, 5)
	}
	if text == "PASS" || text == "FAIL" || strings.HasPrefix(text, "FAIL\t") || strings.HasPrefix(text, "ok  \t") {
		return
	}
	if s.test != "" {
		s.logs[s.test] = appendBounded(s.logs[s.test], text, maxOutputLines)
	}
}

// finish turns the per-test statuses and logs into Skips and Failures.
// Tests of a package that died midway have no result line: they are not
// counted, and the tail shows where it stopped.
func (s *pkgState) finish() {
	for _, t := range s.order {
		o := TestOutcome{Test: t, Output: trimBlank(s.logs[t])}
		switch s.status[t] {
		case "SKIP":
			s.res.Skips = append(s.res.Skips, o)
		case "FAIL":
			s.res.Failures = append(s.res.Failures, o)
		}
	}
	if !s.res.Reported {
		for _, t := range s.order {
			if strings.Contains(t, "/") {
				continue
			}
			switch s.status[t] {
			case "PASS":
				s.res.Passed++
			case "FAIL":
				s.res.Failed++
			case "SKIP":
				s.res.Skipped++
			}
		}
	}
}

// fields parses the key=value words of a marker line.
func fields(s string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func atoi(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

func appendBounded(l []string, s string, max int) []string {
	l = append(l, s)
	if len(l) > max {
		l = l[len(l)-max:]
	}
	return l
}

func trimBlank(l []string) []string {
	var out []string
	for _, s := range l {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}
