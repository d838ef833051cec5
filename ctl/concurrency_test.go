package ctl_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestConcurrentCommands: two ebpfovs commands on one bridge at once are
// serialized, never interleaved. The first is paused in the middle of its
// change (its new flow generation written, not yet switched to: the step
// hook of stepChild) while the second starts: the second must say it
// waits for the first (naming its process), must not finish while the
// first is paused, and when both are done the bridge holds what the two
// did in order.
func TestConcurrentCommands(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	c := newCLI(t, lab.Host.Path)
	c.must("attach", "vnet1")
	t.Cleanup(func() { c.run("detach") })
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flowsA := write("a", "priority=10,ip,nw_dst=10.0.10.1 actions=drop\npriority=11,ip,nw_dst=10.0.10.2 actions=drop\n")
	flowsB := write("b", "priority=20,arp actions=NORMAL\n")

	t.Run("replace-flows-twice", func(t *testing.T) {
		second := pausedPair(t, c, dir, []string{"replace-flows", flowsA}, []string{"replace-flows", flowsB})
		if second != 0 {
			t.Fatalf("second replace-flows: exit %d", second)
		}
		got := c.must("dump-flows", "--no-stats")
		if !strings.Contains(got, "priority=20,arp actions=NORMAL") || strings.Contains(got, "priority=10") {
			t.Errorf("after replace-flows A then B:\n%s", got)
		}
	})
	t.Run("attach-during-add-flows", func(t *testing.T) {
		second := pausedPair(t, c, dir, []string{"add-flow", "priority=30,udp actions=drop"}, []string{"attach", "--max-flows=4096", "--max-conns=16384", "vnet2"})
		if second != 0 {
			t.Fatalf("attach: exit %d", second)
		}
		if got := c.must("dump-flows", "--no-stats"); !strings.Contains(got, "priority=30,udp actions=drop") {
			t.Errorf("the paused add-flow's flow is missing:\n%s", got)
		}
		if show := c.must("show"); !strings.Contains(show, "(vnet2)") {
			t.Errorf("vnet2 not attached:\n%s", show)
		}
	})
}

// pausedPair runs first until it pauses in the middle of its flow change,
// then second, which must wait for first's lock and say so; then lets
// first go. It returns second's exit status; first must succeed.
func pausedPair(t *testing.T, c *cli, dir string, first, second []string) int {
	t.Helper()
	log := filepath.Join(dir, fmt.Sprintf("steps-%d", time.Now().UnixNano()))
	start := func(args []string, env ...string) (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(os.Args[0], append(append([]string{}, c.global...), args...)...)
		cmd.Env = append(append(os.Environ(), envChild+"=1"), env...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}
	a, aOut := start(first, envStepLog+"="+log, envPauseAt+"=flows: new generation written")
	defer a.Process.Kill()
	waitFor(t, 60*time.Second, fmt.Sprintf("%v to pause", first), func() bool {
		_, err := os.Stat(log + ".paused")
		return err == nil
	})
	b, bOut := start(second)
	defer b.Process.Kill()
	bDone := make(chan error, 1)
	go func() { bDone <- b.Wait() }()
	want := fmt.Sprintf("ebpfovs: waiting for process %d ", a.Process.Pid)
	waitFor(t, 60*time.Second, fmt.Sprintf("%v to say %q", second, want), func() bool {
		select {
		case <-bDone:
			t.Fatalf("%v finished while %v held the bridge, paused: %s", second, first, bOut.String())
		default:
		}
		return strings.Contains(bOut.String(), want)
	})
	if err := os.WriteFile(log+".go", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("%v: %v: %s", first, err, aOut.String())
	}
	select {
	case <-bDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not finish after %v did", second, first)
	}
	t.Logf("%v: %s", second, bOut.String())
	return b.ProcessState.ExitCode()
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
