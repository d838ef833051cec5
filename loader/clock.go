package loader

import (
	"time"

	"golang.org/x/sys/unix"
)

// monotonicNow is CLOCK_MONOTONIC in ns: the clock of bpf_ktime_get_ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// wallTime converts a CLOCK_MONOTONIC timestamp to wall-clock time.
func wallTime(mono uint64) time.Time {
	return time.Now().Add(-time.Duration(monotonicNow() - mono))
}
