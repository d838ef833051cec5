package ctl

import (
	"bytes"
	"testing"
	"time"
)

// TestProgress: silent for quick reads, then a rewritten line at most every
// 100 ms, erased at the end; nothing at all when stderr is no terminal.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &progress{w: &buf, what: "dump-conntrack", start: now, now: func() time.Time { return now }}
	p.update(1024)
	now = now.Add(200 * time.Millisecond)
	p.update(2048)
	if buf.Len() != 0 {
		t.Fatalf("shown within 300 ms: %q", buf.String())
	}
	now = now.Add(200 * time.Millisecond)
	p.update(500000)
	now = now.Add(50 * time.Millisecond)
	p.update(600000) // within 100 ms of the last line: skipped
	now = now.Add(100 * time.Millisecond)
	p.update(1000000)
	p.done()
	want := "\rdump-conntrack: 500000 entries read (0.4 s)\rdump-conntrack: 1000000 entries read (0.6 s)\r\033[K"
	if buf.String() != want {
		t.Errorf("progress wrote %q, want %q", buf.String(), want)
	}

	var none *progress // stderr is not a terminal
	none.update(1)
	none.done()
	e := &env{stderr: &buf}
	if e.newProgress("x") != nil {
		t.Error("progress on a stderr that is not a terminal")
	}
}
