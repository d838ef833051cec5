package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseMicro(t *testing.T) {
	out := `goos: linux
BenchmarkClassifier/flows=10/masks=1/hit-first-2   	  100000	       210.9 ns/op	       188.0 ns-over-empty	        21.00 ns/empty	       209.0 ns/pkt	         9.952 x-empty
BenchmarkConntrack/established-2                                   	  100000	       639.9 ns/op	       589.0 ns-over-empty	         7.000 ns/empty	       596.0 ns/pkt	        85.14 x-empty
BenchmarkConntrackTableSize/memory-2         	1000000000	         0.0000001 ns/op	       327.8 MiB/table	       312.5 bytes/entry
PASS
`
	rows := parseMicro(out)
	want := []microRow{{"Classifier/flows=10/masks=1/hit-first", "209.0", "188.0"}, {"Conntrack/established", "596.0", "589.0"},
		{"ConntrackTableSize/memory", "–", "(312.5 bytes/entry, 327.8 MiB for the table)"}}
	if len(rows) != len(want) || rows[0] != want[0] || rows[1] != want[1] || rows[2] != want[2] {
		t.Fatalf("parseMicro = %+v, want %+v", rows, want)
	}
	var b bytes.Buffer
	writeMicro(&b, rows, 100000)
	if !strings.Contains(b.String(), "| Conntrack/established | 596.0 | 589.0 |") {
		t.Errorf("writeMicro:\n%s", b.String())
	}
}
