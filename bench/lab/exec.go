package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CommandTimeout bounds every setup or teardown command.
const CommandTimeout = 30 * time.Second

// NetnsPath returns the bind mount of the named network namespace.
func NetnsPath(ns string) string { return "/run/netns/" + ns }

// InNetns returns argv that runs name with args inside network namespace ns
// through `nsenter --net`, which keeps the caller's mount namespace (so a
// private bpffs or OVS run directory stays visible). An empty ns runs the
// command where we are.
func InNetns(ns, name string, args ...string) []string {
	if ns == "" {
		return append([]string{name}, args...)
	}
	return append([]string{"nsenter", "--net=" + NetnsPath(ns), "--", name}, args...)
}

// Command returns the command for argv, bounded by ctx, killed when this
// process dies (Pdeathsig) and with env added to the environment.
func Command(ctx context.Context, env []string, argv ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// Run runs argv with CommandTimeout (or ctx, if shorter) and returns its
// standard output. The error names the command and includes its standard
// error output.
func Run(ctx context.Context, argv ...string) (string, error) {
	return RunEnv(ctx, nil, argv...)
}

// LongCommandTimeout bounds the scale measurements' commands (a million
// connections to fill or dump).
const LongCommandTimeout = 5 * time.Minute

// RunLong is Run with LongCommandTimeout.
func RunLong(ctx context.Context, argv ...string) (string, error) {
	return runEnvTimeout(ctx, LongCommandTimeout, nil, argv...)
}

// RunEnv is Run with variables added to the environment.
func RunEnv(ctx context.Context, env []string, argv ...string) (string, error) {
	return runEnvTimeout(ctx, CommandTimeout, env, argv...)
}

// RunEnvLong is RunEnv with LongCommandTimeout.
func RunEnvLong(ctx context.Context, env []string, argv ...string) (string, error) {
	return runEnvTimeout(ctx, LongCommandTimeout, env, argv...)
}

func runEnvTimeout(ctx context.Context, timeout time.Duration, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := Command(ctx, env, argv...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.String(), nil
}

// Proc is a background process (a server or a daemon).
type Proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// Start starts argv in the background with its standard output and error
// appended to logFile. If ready is not empty, Start waits (up to
// CommandTimeout) until the process prints a line containing ready on its
// standard output, and fails if it exits first.
func Start(ctx context.Context, env []string, logFile, ready string, argv ...string) (*Proc, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	// Not CommandContext: a daemon outlives the context of the step that
	// started it and is ended by Stop.
	cmd := Command(context.Background(), env, argv...)
	cmd.Stdout, cmd.Stderr = log, log
	var r, w *os.File
	if ready != "" {
		// Our own pipe rather than StdoutPipe, whose reader Wait closes.
		if r, w, err = os.Pipe(); err != nil {
			log.Close()
			return nil, fmt.Errorf("start %s: %w", argv[0], err)
		}
		cmd.Stdout = w
	}
	err = cmd.Start()
	if w != nil {
		w.Close() // the child has its own copy
	}
	if err != nil {
		log.Close()
		if r != nil {
			r.Close()
		}
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	p := &Proc{name: strings.Join(argv, " "), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if r == nil {
		log.Close()
		return p, nil
	}
	// Copy the output to the log, and its lines to us until we have seen
	// the ready line.
	lines := make(chan string, 64)
	go func() {
		defer log.Close()
		defer r.Close()
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	timeout := time.NewTimer(CommandTimeout)
	defer timeout.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-p.done
				return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", p.name, p.err, logFile)
			}
			if strings.Contains(l, ready) {
				return p, nil
			}
		case <-timeout.C:
			p.Stop()
			return nil, fmt.Errorf("%s: not ready after %v; see %s", p.name, CommandTimeout, logFile)
		case <-ctx.Done():
			p.Stop()
			return nil, fmt.Errorf("%s: %w", p.name, ctx.Err())
		}
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to d for the process to exit by itself, then stops it.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.Stop()
		return fmt.Errorf("%s: still running after %v, killed", p.name, d)
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop ends the process: SIGTERM, then SIGKILL after two seconds. It
// returns once the process has exited.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Cleanup is a stack of teardown steps, run last-in first-out.
type Cleanup struct {
	mu    sync.Mutex
	steps []step
}

type step struct {
	what string
	fn   func() error
}

// Push adds a teardown step; what names it in errors.
func (c *Cleanup) Push(what string, fn func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.steps = append(c.steps, step{what, fn})
}

// Run runs and removes every step, newest first; a failing step does not
// stop the others. It returns the steps' errors joined.
func (c *Cleanup) Run() error {
	c.mu.Lock()
	steps := c.steps
	c.steps = nil
	c.mu.Unlock()
	var errs []error
	for i := len(steps) - 1; i >= 0; i-- {
		if err := steps[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %s: %w", steps[i].what, err))
		}
	}
	return errors.Join(errs...)
}
