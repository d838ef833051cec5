// Package probe is the small TCP load tool of the benchmarks: a server and
// two clients that run inside the lab's VM namespaces.
//
//   - ConnRate opens many short connections: connect, send one byte, read
//     the one-byte answer, wait for the server's close, close. The server
//     closes first, so TIME_WAIT sockets stay on the server side and the
//     client never runs out of ephemeral ports.
//   - Latency measures request/response round trips of one byte over one
//     long-lived connection (TCP_NODELAY on both ends) and reports
//     percentiles.
//
// Every loop is bounded both by a duration and by a count, and every network
// operation has a deadline, so a broken path makes a client fail instead of
// hang.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// IOTimeout bounds every connect, read and write of the clients and the
// server.
const IOTimeout = 2 * time.Second

// Server serves the two client modes on two listeners: connLn answers one
// byte per connection and closes (ConnRate), echoLn echoes every byte until
// the client closes (Latency).
type Server struct {
	connLn, echoLn net.Listener
	wg             sync.WaitGroup
}

// Listen opens the server's listeners on connAddr and echoAddr
// ("IP:PORT").
func Listen(connAddr, echoAddr string) (*Server, error) {
	c, err := net.Listen("tcp4", connAddr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", connAddr, err)
	}
	e, err := net.Listen("tcp4", echoAddr)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("listen %s: %w", echoAddr, err)
	}
	return &Server{connLn: c, echoLn: e}, nil
}

// Serve accepts connections until ctx is done, then closes the listeners
// and waits for the open connections to finish.
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.connLn.Close()
		s.echoLn.Close()
	}()
	errs := make(chan error, 2)
	go func() { errs <- s.acceptLoop(s.connLn, answerOnce) }()
	go func() { errs <- s.acceptLoop(s.echoLn, echo) }()
	err := errors.Join(<-errs, <-errs)
	s.wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Server) acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			handle(c)
		}()
	}
}

// answerOnce reads one byte, writes it back and returns (the caller closes).
func answerOnce(c net.Conn) {
	var b [1]byte
	_ = c.SetDeadline(time.Now().Add(IOTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return
	}
	_, _ = c.Write(b[:])
}

// echo writes back every byte it reads until the peer closes or is silent
// for IOTimeout.
func echo(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	buf := make([]byte, 4096)
	for {
		_ = c.SetDeadline(time.Now().Add(IOTimeout))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

// ConnRateResult is what ConnRate measured.
type ConnRateResult struct {
	// Conns is the number of completed connections.
	Conns int64 `json:"conns"`
	// Errors counts connections that failed (connect, I/O or timeout).
	Errors int64 `json:"errors"`
	// Seconds is the measured wall time.
	Seconds float64 `json:"seconds"`
	// PerSecond is Conns / Seconds.
	PerSecond float64 `json:"per_second"`
}

// ConnRate runs workers goroutines that each open connections to addr one
// after the other for d, stopping early after maxConns connections in
// total. It fails if more than a tenth of the attempts fail, or if none
// succeeds.
func ConnRate(ctx context.Context, addr string, d time.Duration, workers int, maxConns int64) (ConnRateResult, error) {
	if workers < 1 {
		workers = 1
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var conns, errs, started atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: IOTimeout}
			for ctx.Err() == nil && started.Add(1) <= maxConns {
				if err := oneConn(&d, addr); err != nil {
					errs.Add(1)
					continue
				}
				conns.Add(1)
			}
		}()
	}
	wg.Wait()
	res := ConnRateResult{Conns: conns.Load(), Errors: errs.Load(), Seconds: time.Since(start).Seconds()}
	res.PerSecond = float64(res.Conns) / res.Seconds
	if res.Conns == 0 || res.Errors*10 > res.Conns+res.Errors {
		return res, fmt.Errorf("connection rate to %s: %d connections, %d failed", addr, res.Conns, res.Errors)
	}
	return res, nil
}

// oneConn is one short connection: connect, one byte each way, the
// server's close, close.
func oneConn(d *net.Dialer, addr string) error {
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(IOTimeout))
	b := [1]byte{'x'}
	if _, err := c.Write(b[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	// Wait for the server's FIN so that the connection is complete, both
	// directions, before the next one starts.
	if n, err := c.Read(b[:]); n != 0 || !errors.Is(err, io.EOF) {
		return fmt.Errorf("expected EOF after the answer, got %d bytes, %v", n, err)
	}
	return nil
}

// LatencyResult is what Latency measured, in microseconds.
type LatencyResult struct {
	// Samples is the number of measured round trips (after warm-up).
	Samples int `json:"samples"`
	// P50us, P99us and Maxus are percentiles of the round-trip time.
	P50us float64 `json:"p50_us"`
	P99us float64 `json:"p99_us"`
	Maxus float64 `json:"max_us"`
}

// LatencyWarmup is the number of round trips Latency does before it starts
// recording.
const LatencyWarmup = 200

// Latency connects to an echo server at addr and does one-byte round trips
// for d (at most maxSamples of them, after LatencyWarmup unrecorded ones).
func Latency(ctx context.Context, addr string, d time.Duration, maxSamples int) (LatencyResult, error) {
	var res LatencyResult
	dl := net.Dialer{Timeout: IOTimeout}
	c, err := dl.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return res, fmt.Errorf("latency: connect %s: %w", addr, err)
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			return res, fmt.Errorf("latency: TCP_NODELAY: %w", err)
		}
	}
	samples := make([]time.Duration, 0, min(maxSamples, 1<<20))
	b := [1]byte{'x'}
	var end time.Time
	for i := 0; len(samples) < maxSamples; i++ {
		if i == LatencyWarmup {
			end = time.Now().Add(d)
		}
		if i > LatencyWarmup && (time.Now().After(end) || ctx.Err() != nil) {
			break
		}
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(IOTimeout))
		if _, err := c.Write(b[:]); err != nil {
			return res, fmt.Errorf("latency: write: %w", err)
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return res, fmt.Errorf("latency: read: %w", err)
		}
		if i >= LatencyWarmup {
			samples = append(samples, time.Since(t0))
		}
	}
	if len(samples) == 0 {
		return res, errors.New("latency: no samples")
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	res.Samples = len(samples)
	res.P50us = us(Percentile(samples, 50))
	res.P99us = us(Percentile(samples, 99))
	res.Maxus = us(samples[len(samples)-1])
	return res, nil
}

// Percentile returns the p-th percentile (nearest rank) of sorted, which
// must not be empty.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted)) + 0.5)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}
