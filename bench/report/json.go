package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// saved is the JSON form of a run: the raw samples and what describes
// them, enough to redo the tables and the plot (bench -replot).
type saved struct {
	Title   string   `json:"title"`
	Machine Machine  `json:"machine"`
	Paths   []Path   `json:"paths"`
	Rounds  int      `json:"rounds"`
	Samples []sample `json:"samples"`
}

type sample struct {
	Path   string  `json:"path"`
	Metric string  `json:"metric"`
	Round  int     `json:"round"` // from 1
	Value  float64 `json:"value"`
}

// SaveJSON writes the run's samples (failed ones left out), machine and
// plot title to file.
func (r *Results) SaveJSON(file, title string, m Machine) error {
	s := saved{Title: title, Machine: m, Paths: r.Paths, Rounds: r.Rounds}
	for _, p := range r.Paths {
		for _, met := range Metrics {
			for i, v := range r.Samples[p.ID][met.Key] {
				if !math.IsNaN(v) {
					s.Samples = append(s.Samples, sample{p.ID, met.Key, i + 1, v})
				}
			}
		}
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// LoadJSON reads what SaveJSON wrote.
func LoadJSON(file string) (r *Results, title string, m Machine, err error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", m, fmt.Errorf("read results: %w", err)
	}
	var s saved
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, "", m, fmt.Errorf("decode %s: %w", file, err)
	}
	r = NewResults(s.Paths, s.Rounds)
	keys := map[string]Metric{}
	for _, met := range Metrics {
		keys[met.Key] = met
	}
	for _, x := range s.Samples {
		met, ok := keys[x.Metric]
		if _, okP := r.Samples[x.Path]; !ok || !okP || x.Round < 1 || x.Round > s.Rounds {
			return nil, "", m, fmt.Errorf("%s: bad sample %+v", file, x)
		}
		r.Set(x.Path, met, x.Round-1, x.Value)
	}
	return r, s.Title, s.Machine, nil
}
