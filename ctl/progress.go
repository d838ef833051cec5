package ctl

import (
	"fmt"
	"io"
	"time"
)

// progress shows how far a long read of the tables has got, on stderr when
// it is a terminal: nothing for the first 300 ms (small tables stay
// silent), then one line rewritten at most every 100 ms, erased at the end
// so that it never mixes with the output. A nil *progress shows nothing.
type progress struct {
	w     io.Writer
	what  string
	start time.Time
	last  time.Time
	shown bool
	now   func() time.Time
}

const (
	progressDelay = 300 * time.Millisecond
	progressEvery = 100 * time.Millisecond
)

// newProgress returns a progress line for what, or nil when stderr is not
// a terminal.
func (e *env) newProgress(what string) *progress {
	if !e.progressTTY {
		return nil
	}
	return &progress{w: e.stderr, what: what, start: time.Now(), now: time.Now}
}

// update reports n entries read so far.
func (p *progress) update(n int) {
	if p == nil {
		return
	}
	t := p.now()
	if t.Sub(p.start) < progressDelay || t.Sub(p.last) < progressEvery {
		return
	}
	p.last = t
	p.shown = true
	fmt.Fprintf(p.w, "\r%s: %d entries read (%.1f s)", p.what, n, t.Sub(p.start).Seconds())
}

// done erases the progress line, if one was shown.
func (p *progress) done() {
	if p != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
