package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// microRow is one datapath micro-benchmark: a Go benchmark of bpf/ that
// runs the real program with BPF_PROG_TEST_RUN and reports its cost per
// packet and over an empty program measured in the same run.
type microRow struct {
	Name      string
	NsPkt     string
	OverEmpty string
}

var (
	microLine  = regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+.*?([\d.]+) ns-over-empty.*?([\d.]+) ns/pkt`)
	memoryLine = regexp.MustCompile(`^Benchmark(\S+?)-\d+\s+\d+\s+.*?([\d.]+) bytes/entry`)
	tableLine  = regexp.MustCompile(`([\d.]+) MiB/table`)
)

// microBenchmarks runs bpf/'s classifier and conntrack benchmarks (flows
// 10 to 100k, masks 1 to 32, with and without the exact-match cache;
// conntrack established and new, established as the table fills to a
// million entries, and the table's memory per entry) with n runs each, in the module at the
// current directory, within a time limit.
func microBenchmarks(ctx context.Context, n int, stderr io.Writer) ([]microRow, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "Classifier|Conntrack",
		"-benchtime", fmt.Sprintf("%dx", n), "./bpf")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	logf(stderr, "datapath micro-benchmarks: %s", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, lastLines(errb.String()+out.String(), 5))
	}
	return parseMicro(out.String()), nil
}

func parseMicro(s string) []microRow {
	var rows []microRow
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if m := microLine.FindStringSubmatch(sc.Text()); m != nil {
			rows = append(rows, microRow{Name: m[1], OverEmpty: m[2], NsPkt: m[3]})
		} else if m := memoryLine.FindStringSubmatch(sc.Text()); m != nil {
			mib := "?"
			if t := tableLine.FindStringSubmatch(sc.Text()); t != nil {
				mib = t[1]
			}
			rows = append(rows, microRow{Name: m[1], NsPkt: "–", OverEmpty: fmt.Sprintf("(%s bytes/entry, %s MiB for the table)", m[2], mib)})
		}
	}
	return rows
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

func writeMicro(w io.Writer, rows []microRow, n int) {
	fmt.Fprintf(w, "### Datapath micro-benchmarks (BPF_PROG_TEST_RUN, %d runs each, same machine and run)\n\n", n)
	fmt.Fprintln(w, "The attached program on one repeated packet; \"over empty\" subtracts an empty program measured alongside. Classifier: flows × masks, hit in the first or last subtable searched or miss, with the exact-match cache and without it (`go test -bench Classifier ./bpf`).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | ns/packet | ns over empty |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s |\n", r.Name, r.NsPkt, r.OverEmpty)
	}
}
