package ctl_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebpfovs/ebpfovs/ctl"
)

// Environment of a test binary run as the ebpfovs command (stepChild).
const (
	envChild   = "EBPFOVS_TEST_CHILD"    // "1": run ctl.Main on the arguments
	envStepLog = "EBPFOVS_TEST_STEP_LOG" // append "N step" for each step here
	envKillAt  = "EBPFOVS_TEST_KILL_AT"  // SIGKILL at step N
	envPauseAt = "EBPFOVS_TEST_PAUSE_AT" // at the first step containing this, create LOG.paused and wait for LOG.go
)

func TestMain(m *testing.M) {
	if os.Getenv(envChild) == "1" {
		os.Exit(stepChild())
	}
	os.Exit(m.Run())
}

// stepChild is the ebpfovs command with the fault-injection tests' step
// hook: it logs each step of a change to the kernel's state, and kills
// itself (SIGKILL, as an operator's kill -9 would) or pauses at the one
// the test asks for. The test binary runs itself this way, so it works in
// the VMs, where there is no go tool to build the command.
func stepChild() int {
	logPath := os.Getenv(envStepLog)
	killAt, _ := strconv.Atoi(os.Getenv(envKillAt))
	pauseAt := os.Getenv(envPauseAt)
	var log *os.File
	if logPath != "" {
		var err error
		if log, err = os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	n := 0
	ctl.SetTestSteps(func(step string) {
		n++
		if log != nil {
			fmt.Fprintf(log, "%d %s\n", n, step)
		}
		if n == killAt {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		if pauseAt != "" && strings.Contains(step, pauseAt) {
			pauseAt = ""
			os.WriteFile(logPath+".paused", nil, 0o600)
			for {
				if _, err := os.Stat(logPath + ".go"); err == nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	return ctl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
