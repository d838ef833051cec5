package report

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		in          []float64
		med, lo, hi float64
		n           int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{nan, 5, nan}, 5, 5, 5, 1},
	} {
		s := Summarize(tc.in)
		if s.Median != tc.med || s.Min != tc.lo || s.Max != tc.hi || s.N != tc.n {
			t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v n %d", tc.in, s, tc.med, tc.lo, tc.hi, tc.n)
		}
	}
	if s := Summarize([]float64{nan}); s.N != 0 || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(NaN) = %+v, want no data", s)
	}
}

// sampleResults has E at 0.9x B's throughput and 1.05x A's latency.
func sampleResults() *Results {
	r := NewResults([]Path{{ID: "A", Name: "a"}, {ID: "B", Name: "b"}, {ID: "E", Name: "e"}, {ID: "F", Name: "f", Unavailable: "n/a (no XDP mode yet)"}}, 5)
	for i := range 5 {
		r.Set("B", TputSame, i, 10+float64(i))
		r.Set("E", TputSame, i, 0.9*(10+float64(i)))
		r.Set("A", LatP50, i, 20)
		r.Set("E", LatP50, i, 21)
	}
	return r
}

func TestEvaluate(t *testing.T) {
	got := map[string]Outcome{}
	for _, o := range sampleResults().Evaluate() {
		got[o.Metric.Key+" "+o.Num+"/"+o.Den] = o
	}
	if o := got["tput_same E/B"]; math.Abs(o.Ratio-0.9) > 1e-9 || o.Met {
		t.Errorf("E/B throughput: %+v, want 0.9x, missed", o)
	}
	if o := got["lat_p50 E/A"]; math.Abs(o.Ratio-1.05) > 1e-9 || !o.Met {
		t.Errorf("E/A latency: %+v, want 1.05x, met", o)
	}
	if o := got["connrate E/C"]; !math.IsNaN(o.Ratio) {
		t.Errorf("E/C without C: ratio %v, want NaN", o.Ratio)
	}
}

// TestNATTargets: G (SNAT) is measured against E (its throughput) and H
// (its connection rate).
func TestNATTargets(t *testing.T) {
	r := NewResults([]Path{{ID: "E", Name: "e"}, {ID: "G", Name: "g"}, {ID: "H", Name: "h"}}, 5)
	for i := range 5 {
		r.Set("E", TputSame, i, 20)
		r.Set("G", TputSame, i, 19.5)
		r.Set("E", TputDiff, i, 5)
		r.Set("G", TputDiff, i, 4)
		r.Set("G", ConnRate, i, 6000)
		r.Set("H", ConnRate, i, 4000)
	}
	got := map[string]Outcome{}
	for _, o := range r.Evaluate() {
		got[o.Metric.Key+" "+o.Num+"/"+o.Den] = o
	}
	for key, want := range map[string]struct {
		ratio float64
		met   bool
	}{"tput_same G/E": {0.975, true}, "tput_diff G/E": {0.8, false}, "connrate G/H": {1.5, true}} {
		if o, ok := got[key]; !ok || math.Abs(o.Ratio-want.ratio) > 1e-9 || o.Met != want.met {
			t.Errorf("%s: %+v, want ratio %v, met %v", key, o, want.ratio, want.met)
		}
	}
	var b strings.Builder
	r.WriteRatios(&b)
	if want := "| G/H (vs h) | connection rate | 1.50x | 1.50–1.50 | G/H >= 1.2x | met |"; !strings.Contains(b.String(), want) {
		t.Errorf("ratios lack %q:\n%s", want, b.String())
	}
}

func TestTablesAndPlot(t *testing.T) {
	r := sampleResults()
	var b strings.Builder
	r.WriteTable(&b)
	r.WriteRatios(&b)
	out := b.String()
	for _, want := range []string{"| B: b | **12.0** (10.0–14.0)", "n/a (no XDP mode yet)", "| E/B (vs b) | TCP throughput, same vCPU | 0.90x", "**missed**", "| met |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "results.json")
	if err := r.SaveJSON(file, "title", Machine{}); err != nil {
		t.Fatal(err)
	}
	back, title, _, err := LoadJSON(file)
	if err != nil {
		t.Fatal(err)
	}
	if title != "title" || back.Stat("E", TputSame) != r.Stat("E", TputSame) {
		t.Errorf("LoadJSON: title %q, E %+v, want %+v", title, back.Stat("E", TputSame), r.Stat("E", TputSame))
	}
	png := filepath.Join(dir, "p.png")
	if err := back.WritePlot(png, title); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 1000 {
		t.Errorf("plot: %v, %v", st, err)
	}
}
