package vm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// VerifierMarker starts the lines in which the bpf package's tests report
// what the kernel's verifier did with each program:
//
//	EBPFOVS-VERIFIER prog=tc_ingress insns=123456 peak_states=789 time_us=12345 jited=4567 budget=250000 kernel=6.1.0-57-amd64
//
// In the guest's console they come with the runner's "[bpf] " prefix.
const VerifierMarker = "EBPFOVS-VERIFIER"

// VerifierRow is one program's verifier statistics on one kernel. A
// number the line did not give is -1.
type VerifierRow struct {
	// Kernel is the release the line names (else the run's).
	Kernel string
	// Package is the test package that printed it ("bpf").
	Package string
	// Prog is the program's name.
	Prog string
	// Insns is the verifier's processed instruction count; PeakStates
	// its peak number of states.
	Insns, PeakStates int
	// Time is the verification time.
	Time time.Duration
	// JITed is the size of the JITed image in bytes.
	JITed int
	// Budget is the processed-instruction budget the project sets for the
	// program (0 or -1: none).
	Budget int
	// Loads is how many lines reported the program; the row is the one
	// with the most processed instructions.
	Loads int
}

// Over reports whether the program processed more instructions than its
// budget.
func (v VerifierRow) Over() bool { return v.Budget > 0 && v.Insns > v.Budget }

// verifierPrefixRE is what may stand before the marker: nothing, or the
// guest runner's "[PKG] " prefix.
var verifierPrefixRE = regexp.MustCompile(`^\s*(?:\[([^\]\s]+)\]\s*)?$`)

// parseVerifierLine parses a console line carrying VerifierMarker; ok is
// false for any other line.
func parseVerifierLine(line string) (row VerifierRow, ok bool) {
	i := strings.Index(line, VerifierMarker+" ")
	if i < 0 {
		return row, false
	}
	m := verifierPrefixRE.FindStringSubmatch(line[:i])
	if m == nil {
		return row, false
	}
	kv := fields(line[i+len(VerifierMarker):])
	if kv["prog"] == "" {
		return row, false
	}
	num := func(k string) int {
		n, err := strconv.Atoi(kv[k])
		if err != nil {
			return -1
		}
		return n
	}
	row = VerifierRow{
		Kernel:     kv["kernel"],
		Package:    m[1],
		Prog:       kv["prog"],
		Insns:      num("insns"),
		PeakStates: num("peak_states"),
		Time:       -1,
		JITed:      num("jited"),
		Budget:     num("budget"),
		Loads:      1,
	}
	if us := num("time_us"); us >= 0 {
		row.Time = time.Duration(us) * time.Microsecond
	}
	return row, true
}

// addVerifierRow records row in r: one row per program, the load with the
// most processed instructions (the one nearest its budget).
func (r *KernelResult) addVerifierRow(row VerifierRow) {
	if row.Kernel == "" {
		row.Kernel = r.Release
	}
	for i := range r.Verifier {
		old := &r.Verifier[i]
		if old.Prog != row.Prog || old.Kernel != row.Kernel {
			continue
		}
		loads := old.Loads + row.Loads
		if row.Insns > old.Insns {
			*old = row
		}
		old.Loads = loads
		return
	}
	r.Verifier = append(r.Verifier, row)
}

func orDash(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func (v VerifierRow) timeString() string {
	if v.Time < 0 {
		return "-"
	}
	if v.Time < time.Millisecond {
		return fmt.Sprintf("%dus", v.Time.Microseconds())
	}
	if v.Time < time.Second {
		return fmt.Sprintf("%.1fms", float64(v.Time)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", v.Time.Seconds())
}

func (v VerifierRow) jitedString() string {
	if v.JITed < 0 {
		return "-"
	}
	return fmt.Sprintf("%d B", v.JITed)
}

// budgetString is the budget, with " "+over after it when the program is
// above it.
func (v VerifierRow) budgetString(over string) string {
	if v.Budget <= 0 {
		return "-"
	}
	s := strconv.Itoa(v.Budget)
	if v.Over() && over != "" {
		s += " " + over
	}
	return s
}

// WriteVerifierTable writes r's verifier rows as an aligned text table,
// indented, with OVER after the budget of a program above it; nothing
// when there are none.
func (r *KernelResult) WriteVerifierTable(w io.Writer) {
	if len(r.Verifier) == 0 {
		return
	}
	rows := [][]string{{"kernel", "program", "insns", "peak states", "verify time", "JITed", "budget", ""}}
	for _, v := range r.Verifier {
		mark := ""
		if v.Over() {
			mark = "OVER"
		}
		rows = append(rows, []string{v.Kernel, v.Prog, orDash(v.Insns), orDash(v.PeakStates), v.timeString(), v.jitedString(), v.budgetString(""), mark})
	}
	io.WriteString(w, formatTable(rows, []bool{false, false, true, true, true, true, true, false}, "  "))
}

// formatTable aligns rows in columns two spaces apart, right-aligned
// where right says so, each line indented.
func formatTable(rows [][]string, right []bool, indent string) string {
	width := map[int]int{}
	for _, row := range rows {
		for i, c := range row {
			width[i] = max(width[i], len(c))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		line := indent
		for i, c := range row {
			if i > 0 {
				line += "  "
			}
			pad := strings.Repeat(" ", width[i]-len(c))
			if i < len(right) && right[i] {
				line += pad + c
			} else {
				line += c + pad
			}
		}
		b.WriteString(strings.TrimRight(line, " ") + "\n")
	}
	return b.String()
}

// VerifierMarkdown is r's verifier rows as a markdown table with a
// heading, or "" when there are none.
func (r *KernelResult) VerifierMarkdown() string {
	if len(r.Verifier) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Verifier statistics on %s\n\n", r.name())
	b.WriteString("| kernel | program | processed insns | peak states | verification time | JITed size | budget |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|\n")
	for _, v := range r.Verifier {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", v.Kernel, v.Prog, orDash(v.Insns), orDash(v.PeakStates), v.timeString(), v.jitedString(), v.budgetString("**over**"))
	}
	return b.String()
}

// WriteVerifierMarkdown writes r's verifier table to dir/verifier-RELEASE.md
// and returns the file's path; "" and no file when r has no rows.
func WriteVerifierMarkdown(dir string, r *KernelResult) (string, error) {
	text := r.VerifierMarkdown()
	if text == "" {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(r.name())
	file := filepath.Join(dir, "verifier-"+name+".md")
	return file, os.WriteFile(file, []byte(text), 0o644)
}
