// Package report turns the benchmark's samples into the markdown tables of
// docs/performance.md (medians with min–max, ratios against the baselines
// of the same run, the targets met or missed) and a PNG plot.
package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Metric is one measured quantity.
type Metric struct {
	// Key names the metric in Results.Samples and in the JSON output.
	Key string
	// Title is the column heading (without the unit).
	Title string
	// Unit is printed after the title.
	Unit string
	// Digits is the number of decimals to print.
	Digits int
}

// The metrics, in table order.
var (
	TputSame = Metric{"tput_same", "TCP throughput, same vCPU", "Gbit/s", 1}
	TputDiff = Metric{"tput_diff", "TCP throughput, 2 vCPUs", "Gbit/s", 1}
	CPUSame  = Metric{"cpu_same", "CPU per Gbit, same vCPU", "CPU·s/Gbit", 3}
	CPUDiff  = Metric{"cpu_diff", "CPU per Gbit, 2 vCPUs", "CPU·s/Gbit", 3}
	ConnRate = Metric{"connrate", "connection rate", "conn/s", 0}
	LatP50   = Metric{"lat_p50", "latency p50", "µs", 1}
	LatP99   = Metric{"lat_p99", "latency p99", "µs", 1}
	UDPRate  = Metric{"udp64_mpps", "64-byte UDP forwarding", "Mpps", 3}
	UDPCPU   = Metric{"udp64_cpu", "CPU per M packets, UDP", "CPU·s/Mpkt", 2}
	SYNRate  = Metric{"syn_mpps", "SYN flood dropped by policy", "Mpps", 3}
	SYNCPU   = Metric{"syn_cpu", "CPU per M packets, SYN flood", "CPU·s/Mpkt", 2}
	Metrics  = []Metric{TputSame, TputDiff, CPUSame, CPUDiff, ConnRate, LatP50, LatP99, UDPRate, UDPCPU, SYNRate, SYNCPU}
)

// Path describes one benchmarked path.
type Path struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Unavailable string   `json:"unavailable,omitempty"`
	Notes       []string `json:"notes,omitempty"`
}

// Results are all the samples of a run and what is needed to report them.
type Results struct {
	// Rounds is the number of rounds run.
	Rounds int `json:"rounds"`
	// Paths are the paths in table order.
	Paths []Path `json:"paths"`
	// Samples[pathID][metricKey][round] is one measurement; NaN where it
	// failed or was not taken.
	Samples map[string]map[string][]float64 `json:"-"`
}

// NewResults prepares an empty sample table for rounds rounds.
func NewResults(paths []Path, rounds int) *Results {
	r := &Results{Rounds: rounds, Paths: paths, Samples: map[string]map[string][]float64{}}
	for _, p := range paths {
		r.Samples[p.ID] = map[string][]float64{}
		for _, m := range Metrics {
			s := make([]float64, rounds)
			for i := range s {
				s[i] = math.NaN()
			}
			r.Samples[p.ID][m.Key] = s
		}
	}
	return r
}

// Set records one sample.
func (r *Results) Set(pathID string, m Metric, round int, v float64) {
	r.Samples[pathID][m.Key][round] = v
}

// Stat summarizes the samples of one path and metric.
type Stat struct {
	Median, Min, Max float64
	// N is the number of valid samples.
	N int
}

// Summarize returns the median, min and max of the non-NaN values.
func Summarize(values []float64) Stat {
	v := slices.DeleteFunc(slices.Clone(values), math.IsNaN)
	if len(v) == 0 {
		return Stat{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Stat{Median: med, Min: v[0], Max: v[len(v)-1], N: len(v)}
}

// Stat returns the summary of a path's metric.
func (r *Results) Stat(pathID string, m Metric) Stat {
	return Summarize(r.Samples[pathID][m.Key])
}

func (r *Results) path(id string) (Path, bool) {
	for _, p := range r.Paths {
		if p.ID == id {
			return p, true
		}
	}
	return Path{}, false
}

// format prints a number with d decimals.
func format(v float64, d int) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.*f", d, v)
}

// cell prints "median (min–max)", or a note when there is no sample.
func cell(s Stat, d int, rounds int) string {
	if s.N == 0 {
		return "no data"
	}
	c := fmt.Sprintf("**%s** (%s–%s)", format(s.Median, d), format(s.Min, d), format(s.Max, d))
	if s.N < rounds {
		c += fmt.Sprintf(" [%d/%d]", s.N, rounds)
	}
	return c
}

// WriteTable writes the results table: one row per path, one column per
// metric, medians with min–max over the rounds.
func (r *Results) WriteTable(w io.Writer) {
	head := []string{"path"}
	for _, m := range Metrics {
		head = append(head, fmt.Sprintf("%s (%s)", m.Title, m.Unit))
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(head, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(head)))
	for _, p := range r.Paths {
		row := []string{fmt.Sprintf("%s: %s", p.ID, p.Name)}
		for _, m := range Metrics {
			if p.Unavailable != "" {
				row = append(row, p.Unavailable)
				continue
			}
			row = append(row, cell(r.Stat(p.ID, m), m.Digits, r.Rounds))
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// Target is one of the goals: the ratio Num/Den of a metric's
// medians must be at least (or, for AtMost, at most) Goal.
type Target struct {
	Metric   Metric
	Num, Den string
	Goal     float64
	AtMost   bool
}

// Targets are the issues' targets: ebpfovs (E) against the baselines,
// ebpfovs with source NAT (G) against ebpfovs without it (E) and against
// the kernel's NAT (H: a Linux router + nftables masquerade), and XDP mode
// against TC mode and nftables in packet rate, on veth ports (F against E
// and C) and on tap ports (K against J and I), and two nodes joined by
// VXLAN through ebpfovs (M) against the Linux bridge with a VXLAN device (L).
var Targets = []Target{
	{Metric: TputSame, Num: "E", Den: "B", Goal: 0.95},
	{Metric: TputDiff, Num: "E", Den: "B", Goal: 0.95},
	{Metric: TputSame, Num: "E", Den: "C", Goal: 1.0},
	{Metric: TputDiff, Num: "E", Den: "C", Goal: 1.0},
	{Metric: TputSame, Num: "E", Den: "D", Goal: 5},
	{Metric: TputDiff, Num: "E", Den: "D", Goal: 5},
	{Metric: ConnRate, Num: "E", Den: "C", Goal: 1.2},
	{Metric: LatP50, Num: "E", Den: "A", Goal: 1.1, AtMost: true},
	{Metric: TputSame, Num: "G", Den: "E", Goal: 0.95},
	{Metric: TputDiff, Num: "G", Den: "E", Goal: 0.95},
	{Metric: ConnRate, Num: "G", Den: "H", Goal: 1.2},
	{Metric: UDPRate, Num: "F", Den: "E", Goal: 2},
	{Metric: SYNRate, Num: "F", Den: "E", Goal: 2},
	{Metric: SYNRate, Num: "F", Den: "C", Goal: 3},
	{Metric: UDPRate, Num: "K", Den: "J", Goal: 2},
	{Metric: SYNRate, Num: "K", Den: "J", Goal: 2},
	{Metric: SYNRate, Num: "K", Den: "I", Goal: 3},
	{Metric: TputSame, Num: "M", Den: "L", Goal: 1.0},
	{Metric: TputDiff, Num: "M", Den: "L", Goal: 1.0},
	{Metric: ConnRate, Num: "M", Den: "L", Goal: 1.0},
}

// Outcome is a Target evaluated on a run.
type Outcome struct {
	Target
	// Ratio is median(Num)/median(Den); NaN without data.
	Ratio float64
	// RoundMin and RoundMax bound the per-round ratios (both paths are
	// measured in every round, close in time).
	RoundMin, RoundMax float64
	// Met tells whether Ratio reaches Goal.
	Met bool
}

// String is the target as the issue states it, e.g. "E/B >= 0.95".
func (t Target) String() string {
	op := ">="
	if t.AtMost {
		op = "<="
	}
	return fmt.Sprintf("%s/%s %s %.2gx", t.Num, t.Den, op, t.Goal)
}

// Evaluate computes every target's outcome.
func (r *Results) Evaluate() []Outcome {
	var out []Outcome
	for _, t := range Targets {
		o := Outcome{Target: t, Ratio: math.NaN(), RoundMin: math.NaN(), RoundMax: math.NaN()}
		num, okN := r.Samples[t.Num]
		den, okD := r.Samples[t.Den]
		if okN && okD {
			o.Ratio = r.Stat(t.Num, t.Metric).Median / r.Stat(t.Den, t.Metric).Median
			per := make([]float64, r.Rounds)
			for i := range per {
				per[i] = num[t.Metric.Key][i] / den[t.Metric.Key][i]
			}
			s := Summarize(per)
			o.RoundMin, o.RoundMax = s.Min, s.Max
		}
		if t.AtMost {
			o.Met = o.Ratio <= t.Goal
		} else {
			o.Met = o.Ratio >= t.Goal
		}
		out = append(out, o)
	}
	return out
}

// WriteRatios writes the ratios table with each target met or missed.
func (r *Results) WriteRatios(w io.Writer) {
	fmt.Fprintln(w, "| ratio | metric | median ratio | per-round range | target | status |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, o := range r.Evaluate() {
		status := "**missed**"
		switch {
		case math.IsNaN(o.Ratio):
			status = "no data"
		case o.Met:
			status = "met"
		}
		name := o.Num + "/" + o.Den
		if p, ok := r.path(o.Den); ok {
			name += " (vs " + p.Name + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %sx | %s–%s | %s | %s |\n", name, o.Metric.Title,
			format(o.Ratio, 2), format(o.RoundMin, 2), format(o.RoundMax, 2), o.Target, status)
	}
}
