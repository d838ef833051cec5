package testenv

import (
	"testing"
)

func TestParseRelease(t *testing.T) {
	for r, want := range map[string][2]int{
		"6.1.0-56-amd64":       {6, 1},
		"6.12.117+deb12-amd64": {6, 12},
		"6.18.44-fc-v657":      {6, 18},
		"5.10":                 {5, 10},
		"garbage":              {0, 0},
	} {
		if maj, min := parseRelease(r); maj != want[0] || min != want[1] {
			t.Errorf("parseRelease(%q) = %d.%d, want %d.%d", r, maj, min, want[0], want[1])
		}
	}
	if maj, _ := KernelVersion(); maj < 3 {
		t.Errorf("KernelVersion() major %d: uname not parsed", maj)
	}
}

func TestRequireKernel(t *testing.T) {
	if got := kernelSkipMessage("TCX", 6, 6, 6, 1); got != "TCX needs Linux 6.6; this is 6.1" {
		t.Errorf("skip message %q", got)
	}
	if !KernelAtLeast(0, 0) || KernelAtLeast(999, 0) {
		t.Error("KernelAtLeast: every kernel is at least 0.0 and none is 999.0")
	}
	maj, min := KernelVersion()
	if HasTCX() != (maj > 6 || maj == 6 && min >= 6) {
		t.Errorf("HasTCX() = %v on %d.%d", HasTCX(), maj, min)
	}
	t.Run("old-enough", func(t *testing.T) {
		RequireKernel(t, "anything", 0, 0)
	})
	var skipped bool
	t.Run("too-new", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RequireKernel(t, "Time travel", 999, 0)
		t.Error("RequireKernel(999.0) did not skip")
	})
	if !skipped {
		t.Error("RequireKernel(999.0) did not skip")
	}
}
