package probe

import (
	"context"
	"testing"
	"time"
)

// TestProbeLoopback runs the server and both clients over loopback (no
// privileges needed).
func TestProbeLoopback(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	// The 50-connection bound ends the run; the time limit is only a backstop,
	// generous so a slow or loaded machine (CI, TCG) does not fail the test.
	c, err := ConnRate(ctx, s.connLn.Addr().String(), 20*time.Second, 2, 50)
	if err != nil {
		t.Fatalf("ConnRate: %v", err)
	}
	if c.Conns != 50 || c.Errors != 0 {
		t.Errorf("ConnRate: %+v, want 50 connections (the -max bound) and no errors", c)
	}
	l, err := Latency(ctx, s.echoLn.Addr().String(), 5*time.Second, 1000) // the sample cap ends it
	if err != nil {
		t.Fatalf("Latency: %v", err)
	}
	if l.Samples == 0 || l.Samples > 1000 || l.P50us <= 0 || l.P50us > l.P99us || l.P99us > l.Maxus {
		t.Errorf("Latency: %+v", l)
	}
}

func TestPercentile(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := Percentile(d, 50); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := Percentile(d, 99); p != 10 {
		t.Errorf("p99 = %v, want 10", p)
	}
	if p := Percentile(d[:1], 1); p != 1 {
		t.Errorf("p1 of one = %v, want 1", p)
	}
}
