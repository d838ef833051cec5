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
