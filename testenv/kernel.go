package testenv

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// InVMEnv is the environment variable the VM kernel-matrix runner
// (testenv/vm) sets to "1" inside its guests. A guest has no source tree
// beyond the package directory, no clang and no go tool; tests needing them
// skip there (see InVM).
const InVMEnv = "EBPFOVS_IN_VM"

// InVM reports whether the test runs inside a testenv/vm guest.
func InVM() bool { return os.Getenv(InVMEnv) == "1" }

// HostOnly skips t inside a testenv/vm guest: for a test whose subject is
// ebpfovs's own command line (parsing, validation, files and variables),
// which is the same on every kernel, so that the VMs' time (TCG, every
// datapath load 5-15 s) goes to what kernels differ in. what says what the
// test covers; the host's `make test` runs it.
func HostOnly(t testing.TB, what string) {
	t.Helper()
	if InVM() {
		t.Skipf("in a vmtest guest: %s is the same on every kernel; the host's `make test` runs this test", what)
	}
}

var (
	kernelOnce               sync.Once
	kernelMajor, kernelMinor int
)

// KernelVersion returns the running kernel's major and minor version
// (6 and 1 for "6.1.0-56-amd64"), or 0, 0 if uname's release cannot be
// parsed.
func KernelVersion() (major, minor int) {
	kernelOnce.Do(func() {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return
		}
		kernelMajor, kernelMinor = parseRelease(unix.ByteSliceToString(u.Release[:]))
	})
	return kernelMajor, kernelMinor
}

var releaseRE = regexp.MustCompile(`^([0-9]+)\.([0-9]+)`)

// parseRelease extracts major and minor from a kernel release string.
func parseRelease(r string) (major, minor int) {
	m := releaseRE.FindStringSubmatch(r)
	if m == nil {
		return 0, 0
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	return major, minor
}

// KernelAtLeast reports whether the running kernel is major.minor or newer.
func KernelAtLeast(major, minor int) bool {
	maj, min := KernelVersion()
	return maj > major || (maj == major && min >= minor)
}

// TCXMajor and TCXMinor are the first kernel version with TCX (BPF links
// on the tc hooks, CONFIG_NET_XGRESS).
const TCXMajor, TCXMinor = 6, 6

// HasTCX reports whether the running kernel has TCX (Linux 6.6 and later).
// Below that, `attach --mode auto` falls back to clsact + cls_bpf ("tc"),
// and tests expecting "mode:tcx" should expect "tc" or call RequireKernel.
func HasTCX() bool { return KernelAtLeast(TCXMajor, TCXMinor) }

// RequireKernel skips the test unless the running kernel is at least
// major.minor, with a message naming the feature:
// "TCX needs Linux 6.6; this is 6.1". Unlike RequirePrivileged it always
// skips, also under EBPFOVS_REQUIRE_PRIVILEGED=1: an older kernel is a
// legitimate target (the VM matrix runs 6.1), not a misconfigured CI.
func RequireKernel(tb testing.TB, feature string, major, minor int) {
	tb.Helper()
	if KernelAtLeast(major, minor) {
		return
	}
	maj, min := KernelVersion()
	tb.Skip(kernelSkipMessage(feature, major, minor, maj, min))
}

func kernelSkipMessage(feature string, major, minor, haveMajor, haveMinor int) string {
	return fmt.Sprintf("%s needs Linux %d.%d; this is %d.%d", feature, major, minor, haveMajor, haveMinor)
}
