package testenv

import (
	"strings"
	"testing"
)

func TestUniqueName(t *testing.T) {
	for _, prefix := range []string{"", "a", "eoh-", "eov-", "1234567"} {
		name := UniqueName(prefix)
		if len(name) != MaxNameLen {
			t.Errorf("UniqueName(%q) = %q, %d bytes, want %d", prefix, name, len(name), MaxNameLen)
		}
		if !strings.HasPrefix(name, prefix) {
			t.Errorf("UniqueName(%q) = %q lacks the prefix", prefix, name)
		}
		if strings.Trim(name[len(prefix):], "0123456789abcdef") != "" {
			t.Errorf("UniqueName(%q) = %q: suffix is not lowercase hex", prefix, name)
		}
	}

	// Uniqueness. With the shortest random part (8 hex digits, 32 bits) a
	// birthday collision among 20000 names would be likely (~5%), so the
	// bulk check uses the typical 4-byte prefix (11 digits, 44 bits; ~1e-5)
	// and the 7-byte prefix gets a small sample (~1e-6).
	for _, c := range []struct {
		prefix string
		n      int
	}{{"eoh-", 20000}, {"1234567", 100}} {
		seen := map[string]bool{}
		for range c.n {
			n := UniqueName(c.prefix)
			if seen[n] {
				t.Fatalf("duplicate name %q", n)
			}
			seen[n] = true
		}
	}

	for _, bad := range []string{"12345678", "a/b", "a:b", "a b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("UniqueName(%q) did not panic", bad)
				}
			}()
			UniqueName(bad)
		}()
	}
}

func TestRequirePrivilegedRuns(t *testing.T) {
	// As root this must not skip; the privileged tests below rely on it.
	RequirePrivileged(t)
	if p := privilegeProblem(); p != "" {
		t.Fatalf("privilegeProblem() = %q after RequirePrivileged passed", p)
	}
}
