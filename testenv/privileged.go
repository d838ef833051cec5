package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// RequirePrivilegedEnv is the environment variable that turns a missing
// privilege from a skip into a failure. CI sets it to "1" so that privileged
// tests cannot silently be skipped.
const RequirePrivilegedEnv = "EBPFOVS_REQUIRE_PRIVILEGED"

// RequirePrivileged skips the test unless the process runs as root with
// CAP_SYS_ADMIN and CAP_NET_ADMIN in its effective set (needed to create and
// enter network namespaces, mount them, and configure links). When
// EBPFOVS_REQUIRE_PRIVILEGED=1 it fails the test instead of skipping it.
func RequirePrivileged(tb testing.TB) {
	tb.Helper()
	reason := privilegeProblem()
	if reason == "" {
		return
	}
	if os.Getenv(RequirePrivilegedEnv) == "1" {
		tb.Fatalf("privileged test cannot run (%s=1): %s", RequirePrivilegedEnv, reason)
	}
	tb.Skipf("skipping privileged test: %s (set %s=1 to fail instead)", reason, RequirePrivilegedEnv)
}

// privilegeProblem returns why the process is not privileged enough, or "".
func privilegeProblem() string {
	if os.Geteuid() != 0 {
		return fmt.Sprintf("not running as root (euid %d)", os.Geteuid())
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Sprintf("capget: %v", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if !has(unix.CAP_SYS_ADMIN) {
		missing = append(missing, "CAP_SYS_ADMIN")
	}
	if !has(unix.CAP_NET_ADMIN) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if len(missing) > 0 {
		return "missing " + strings.Join(missing, ", ")
	}
	return ""
}

// MaxNameLen is the longest name UniqueName returns: IFNAMSIZ-1, the longest
// interface name the kernel accepts.
const MaxNameLen = 15

// MinRandomHex is the minimum number of random hex digits UniqueName appends,
// which bounds the prefix to MaxNameLen-MinRandomHex (7) bytes.
const MinRandomHex = 8

// UniqueName returns prefix followed by random lowercase hex digits, exactly
// MaxNameLen (15) bytes long in total, so the result is always usable as an
// interface name (IFNAMSIZ-1) as well as a namespace name.
//
// The rule: the prefix may be at most 7 bytes, leaving at least 8 random hex
// digits (32 bits from crypto/rand); a shorter prefix gets more random digits.
// The prefix must be a valid interface-name fragment (no '/', ':', '%',
// whitespace or NUL). UniqueName panics if these rules are broken, since that
// is a bug in the calling test.
//
// 32 random bits make a clash among names that exist at the same time very
// unlikely, not impossible; CreateNS and NewNS create names exclusively and
// retry with a new name if one is taken.
func UniqueName(prefix string) string {
	if len(prefix) > MaxNameLen-MinRandomHex {
		panic(fmt.Sprintf("testenv.UniqueName: prefix %q is %d bytes, at most %d allowed", prefix, len(prefix), MaxNameLen-MinRandomHex))
	}
	if strings.ContainsAny(prefix, "/:% \t\n\x00") {
		panic(fmt.Sprintf("testenv.UniqueName: prefix %q contains a character not allowed in interface names", prefix))
	}
	n := MaxNameLen - len(prefix)
	buf := make([]byte, (n+1)/2)
	if _, err := rand.Read(buf); err != nil {
		panic(fmt.Sprintf("testenv.UniqueName: crypto/rand: %v", err))
	}
	return prefix + hex.EncodeToString(buf)[:n]
}
