package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sourcesString(srcs []aptSource) string {
	var b strings.Builder
	for _, s := range srcs {
		fmt.Fprintf(&b, "%s %s %s %s\n", s.Type, s.URI, s.Suite, strings.Join(s.Components, ","))
	}
	return b.String()
}

func TestParseOneLineSources(t *testing.T) {
	text := `# deb http://mirror.test/commented bookworm main
deb http://mirror.test/debian bookworm main contrib
deb-src http://mirror.test/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.test/debian/ bookworm-updates main # trailing comment
deb [ arch=amd64,i386 trusted=yes ] https://other.test/x trixie main
  deb   http://mirror.test/debian-security   bookworm-security   main  
deb [broken http://mirror.test/never bookworm main
deb http://mirror.test/flat ./
deb http://mirror.test/nodist
`
	want := `deb http://mirror.test/debian bookworm main,contrib
deb-src http://mirror.test/debian bookworm main
deb http://mirror.test/debian/ bookworm-updates main
deb https://other.test/x trixie main
deb http://mirror.test/debian-security bookworm-security main
deb http://mirror.test/flat ./ 
`
	if got := sourcesString(parseOneLineSources(text)); got != want {
		t.Errorf("one-line sources:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseDeb822Sources(t *testing.T) {
	text := `# The machine's sources.
Types: deb
# http://mirror.test/snapshot/20250520T000000Z
URIs: http://mirror.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.test/debian-security http://mirror.test/other-security
Suites: bookworm-security
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF...
 -----END PGP PUBLIC KEY BLOCK-----
   
types: deb
uris: http://mirror.test/disabled
suites: trixie
components: main
enabled: no

#
# A stanza of comments only.

Enabled: yes
Types: deb
URIs: http://mirror.test/enabled
Suites: sid
Components: main
`
	want := `deb http://mirror.test/debian bookworm main
deb http://mirror.test/debian bookworm-updates main
deb http://mirror.test/debian-security bookworm-security main,contrib
deb-src http://mirror.test/debian-security bookworm-security main,contrib
deb http://mirror.test/enabled sid main
`
	if got := sourcesString(parseDeb822Sources(text)); got != want {
		t.Errorf("deb822 sources:\n%s\nwant:\n%s", got, want)
	}
}

func TestPickMirrors(t *testing.T) {
	files := []sourcesFile{
		{"/etc/apt/sources.list", "deb-src http://mirror.test/src bookworm main\ndeb http://mirror.test/ubuntu jammy main\ndeb http://mirror.test/contrib-only bookworm contrib\n"},
		{"/etc/apt/sources.list.d/a.list.disabled-by-farm", "deb http://mirror.test/farm bookworm main\n"},
		{"/etc/apt/sources.list.d/b.sources.disabled-by-farm", "Types: deb\nURIs: http://mirror.test/farm\nSuites: bookworm-security\nComponents: main\n"},
		{"/etc/apt/sources.list.d/debian.sources", "Types: deb\nURIs: http://mirror.test/debian/\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://mirror.test/debian\nSuites: unstable\nComponents: main\n"},
		{"/etc/apt/sources.list.d/later.list", "deb http://mirror.test/later trixie main\ndeb http://mirror.test/later-security trixie-security main\n"},
		{"/etc/apt/sources.list.d/nodesource.sources", "Types: deb\nURIs: https://other.test/node\nSuites: nodistro\nComponents: main\n"},
	}
	archive, security := pickMirrors(parseAptSources(files))
	if archive != "http://mirror.test/debian" || security != "http://mirror.test/debian" {
		t.Errorf("archive %q, security %q; want http://mirror.test/debian for both", archive, security)
	}
	archive, security = pickMirrors(parseAptSources(files[:3]))
	if archive != "" || security != "" {
		t.Errorf("no Debian entry: archive %q, security %q", archive, security)
	}
	archive, security = pickMirrors(parseOneLineSources("deb [signed-by=/k.gpg] http://mirror.test/debian trixie-updates main\n"))
	if archive != "http://mirror.test/debian" || security != "" {
		t.Errorf("no security entry: archive %q, security %q", archive, security)
	}
	if archive, _ := pickMirrors(parseOneLineSources("deb cdrom:[Debian 12]/ bookworm main\ndeb file:/srv/debian stable main\n")); archive != "file:/srv/debian" {
		t.Errorf("cdrom is no mirror: archive %q", archive)
	}
}

// writeAptSources writes files (path under dir -> text) and returns dir.
func writeAptSources(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		f := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadMirrors(t *testing.T) {
	machine := writeAptSources(t, map[string]string{
		"sources.list.d/debian.sources":                         "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\nComponents: main\n",
		"sources.list.d/google-cloud-sdk.list.disabled-by-farm": "deb https://other.test/cloud-sdk bookworm main\n",
		"sources.list.d/zz.list":                                "deb http://mirror.test/later bookworm main\n",
	})
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	m, err := loadMirrors(machine, env())
	if err != nil || m.Archive != "http://mirror.test/debian" || m.Security != "http://mirror.test/debian-security" {
		t.Errorf("machine's sources: %+v, %v", m, err)
	}
	m, err = loadMirrors(machine, env(EnvDebianMirror, "http://local.test/debian/"))
	if err != nil || m.Archive != "http://local.test/debian" || m.Security != "http://mirror.test/debian-security" {
		t.Errorf("archive from the environment: %+v, %v", m, err)
	}
	m, err = loadMirrors(filepath.Join(machine, "missing"), env(EnvDebianMirror, "http://local.test/debian", EnvSecurityMirror, "http://local.test/security"))
	if err != nil || m.Archive != "http://local.test/debian" || m.Security != "http://local.test/security" {
		t.Errorf("both from the environment: %+v, %v", m, err)
	}
	if _, err := loadMirrors(machine, env(EnvSecurityMirror, "not a uri")); err == nil || !strings.Contains(err.Error(), EnvSecurityMirror) {
		t.Errorf("a bad %s: %v", EnvSecurityMirror, err)
	}

	// No security archive: only its suites fail.
	m, err = loadMirrors(writeAptSources(t, map[string]string{"sources.list": "deb http://mirror.test/debian trixie main\n"}), env())
	if err != nil {
		t.Fatal(err)
	}
	if uri, err := m.uri(debianSuite{"unstable", false}); err != nil || uri != "http://mirror.test/debian" {
		t.Errorf("unstable: %q, %v", uri, err)
	}
	if _, err := m.uri(debianSuite{"trixie-security", true}); err == nil || !strings.Contains(err.Error(), "suite trixie-security: no Debian security archive") || !strings.Contains(err.Error(), EnvSecurityMirror) {
		t.Errorf("trixie-security without a security archive: %v", err)
	}

	// No archive at all.
	empty := t.TempDir()
	m, err = loadMirrors(empty, env())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.uri(debianSuite{"bookworm", false})
	want := fmt.Sprintf("no Debian archive in the machine's apt sources (%s/sources.list, %s/sources.list.d); set %s", empty, empty, EnvDebianMirror)
	if err == nil || err.Error() != want {
		t.Errorf("no archive: %v\nwant %s", err, want)
	}
}

// TestResolveMirrors resolves through fakeAPT with the mirrors of
// (test) machine sources: the suites' sources.list name them, a kernel
// without an archive fails at once with one line, and a series that needs
// the missing security archive says so while newest still resolves.
func TestResolveMirrors(t *testing.T) {
	root := t.TempDir()
	fakeAPT(t, root)
	t.Setenv(EnvDebianMirror, "")
	t.Setenv(EnvSecurityMirror, "")
	for _, s := range []string{"bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports", "trixie-backports", "unstable"} {
		var ps []debPackage
		for _, p := range append(append([]debPackage{}, bookwormFamily...), newestFamily...) {
			if p.Suite == s {
				ps = append(ps, p)
			}
		}
		writePackages(t, root, s, ps...)
	}
	ctx := context.Background()

	setMachineAptDir(t, writeAptSources(t, map[string]string{
		"sources.list.d/debian.sources": "Types: deb\nURIs: http://mirror.test/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://mirror.test/debian-security\nSuites: bookworm-security\nComponents: main\n",
	}))
	cache := filepath.Join(root, "cache")
	if res, err := ResolveKernel(ctx, cache, "6.1", io.Discard); err != nil || res.Release != "6.1.0-57-amd64" {
		t.Fatalf("6.1: %+v, %v", res, err)
	}
	for suite, uri := range map[string]string{"bookworm": "http://mirror.test/debian", "bookworm-security": "http://mirror.test/debian-security"} {
		b, _ := os.ReadFile(filepath.Join(cache, "apt", suite, "sources.list"))
		if want := sourcesLine(suite, uri, DebianKeyring); string(b) != want {
			t.Errorf("%s's sources.list: %q, want %q", suite, b, want)
		}
	}

	// The machine's security archive moves: a new process rewrites the
	// sources.list and updates that suite's lists, young as they are.
	setMachineAptDir(t, writeAptSources(t, map[string]string{
		"sources.list": "deb http://mirror.test/debian bookworm main\ndeb http://mirror.test/moved-security bookworm-security main\n",
	}))
	aptReposMu.Lock()
	delete(aptRepos, filepath.Join(cache, "apt"))
	aptReposMu.Unlock()
	os.Remove(filepath.Join(root, "calls"))
	if _, err := ResolveKernel(ctx, cache, "6.1", io.Discard); err != nil {
		t.Fatal(err)
	}
	if log := calls(t, root); !strings.Contains(log, "bookworm-security apt-get update") || strings.Contains(log, "bookworm apt-get update") {
		t.Errorf("want bookworm-security's lists updated for its new mirror, bookworm's not:\n%s", log)
	}

	// No Debian archive: one line, whatever the spec.
	setMachineAptDir(t, writeAptSources(t, map[string]string{
		"sources.list.d/nodesource.sources":           "Types: deb\nURIs: https://other.test/node\nSuites: nodistro\nComponents: main\n",
		"sources.list.d/debian.list.disabled-by-farm": "deb http://mirror.test/debian bookworm main\n",
	}))
	for _, spec := range []string{"6.1", "newest"} {
		_, err := ResolveKernel(ctx, filepath.Join(root, "cache-none"), spec, io.Discard)
		var me *mirrorError
		if err == nil || !errors.As(err, &me) || !strings.HasPrefix(err.Error(), "no Debian archive in the machine's apt sources (") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s without an archive: %v", spec, err)
		}
	}

	// No security archive: newest resolves, 6.1 (bookworm-security) fails
	// rather than settling for bookworm's older kernel.
	setMachineAptDir(t, writeAptSources(t, map[string]string{
		"sources.list": "deb [signed-by=/k.gpg] http://mirror.test/debian/ unstable main\n",
	}))
	cache = filepath.Join(root, "cache-nosec")
	if res, err := ResolveKernel(ctx, cache, "newest", io.Discard); err != nil || res.Release != "7.3.4+deb13-amd64" {
		t.Errorf("newest without a security archive: %+v, %v", res, err)
	}
	if _, err := ResolveKernel(ctx, cache, "6.1", io.Discard); err == nil || !strings.Contains(err.Error(), "suite bookworm-security: no Debian security archive") {
		t.Errorf("6.1 without a security archive: %v", err)
	}
}

// TestFetchRetriesAfterRefresh: a download that fails with lists this
// process did not update refreshes the suite's lists and resolves and
// fetches once more; with lists this process updated, it does not retry.
func TestFetchRetriesAfterRefresh(t *testing.T) {
	for _, c := range []string{"dpkg-deb", "depmod"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skip(err)
		}
	}
	root := t.TempDir()
	fakeAPT(t, root)
	for _, s := range []string{"bookworm-updates", "bookworm-security", "bookworm-backports"} {
		writePackages(t, root, s)
	}
	kernel := func(r, v string) []debPackage {
		return []debPackage{
			pkg("", "linux-image-amd64", v, "linux-image-"+r+" (= "+v+")"),
			pkg("", "linux-image-"+r, v, "kmod"),
		}
	}
	// newProcess forgets the apt repositories, as a new run would, with
	// bookworm's lists of cache two hours old (younger ones count as
	// another run's fresh update).
	newProcess := func(cache string) {
		aptReposMu.Lock()
		clear(aptRepos)
		aptReposMu.Unlock()
		os.Remove(filepath.Join(root, "calls"))
		old := time.Now().Add(-2 * time.Hour)
		os.Chtimes(filepath.Join(cache, "apt", "bookworm", "updated"), old, old)
	}
	ctx := context.Background()

	// Lists of yesterday's run name 6.1.0-50, which the mirror has
	// dropped since; today's lists name 6.1.0-57.
	cache := filepath.Join(root, "cache")
	writePackages(t, root, "bookworm", kernel("6.1.0-50-amd64", "6.1.176-1")...)
	if res, err := ResolveKernel(ctx, cache, "6.1", io.Discard); err != nil || res.Release != "6.1.0-50-amd64" {
		t.Fatalf("yesterday's 6.1: %+v, %v", res, err)
	}
	const r, v = "6.1.0-57-amd64", "6.1.192-3"
	writePackages(t, root, "bookworm", kernel(r, v)...)
	buildDeb(t, filepath.Join(root, "bookworm", "debs", "linux-image-"+r+".deb"), "linux-image-"+r, v, "kmod",
		map[string]string{"boot/vmlinuz-" + r: "kernel", "boot/config-" + r: "CONFIG_BPF=y\n", "lib/modules/" + r + "/kernel/README": ""})
	newProcess(cache)
	var log strings.Builder
	k, err := FetchKernel(ctx, cache, "6.1", &log)
	if err != nil {
		t.Fatalf("6.1: %v\n%s\napt calls:\n%s", err, log.String(), calls(t, root))
	}
	if k.Release != r || k.Version != v {
		t.Errorf("6.1 after the retry: %s %s, want %s %s", k.Release, k.Version, r, v)
	}
	c := calls(t, root)
	if n := strings.Count(c, "bookworm apt-get update"); n != 1 {
		t.Errorf("bookworm updated %d times, want once (the retry's refresh):\n%s", n, c)
	}
	if !strings.Contains(c, "bookworm apt-get download -q linux-image-6.1.0-50-amd64=6.1.176-1") || !strings.Contains(c, "bookworm apt-get download -q linux-image-"+r+"="+v) {
		t.Errorf("want the old kernel's download, then the new one's:\n%s", c)
	}
	if !strings.Contains(log.String(), "refreshing bookworm's lists and retrying") {
		t.Errorf("log:\n%s", log.String())
	}

	// A kernel no mirror has: updated lists in this process, no retry; a
	// new process with young lists retries exactly once.
	cache = filepath.Join(root, "cache-missing")
	writePackages(t, root, "bookworm", kernel("6.1.0-60-amd64", "6.1.200-1")...)
	newProcess(cache)
	if _, err := FetchKernel(ctx, cache, "6.1", io.Discard); err == nil {
		t.Fatal("a kernel without a .deb was fetched")
	}
	if c := calls(t, root); strings.Count(c, "bookworm apt-get download") != 1 || strings.Count(c, "bookworm apt-get update") != 1 {
		t.Errorf("lists updated by this process: want one update and one download, no retry:\n%s", c)
	}
	newProcess(cache)
	if _, err := FetchKernel(ctx, cache, "6.1", io.Discard); err == nil {
		t.Fatal("a kernel without a .deb was fetched")
	}
	if c := calls(t, root); strings.Count(c, "bookworm apt-get download") != 2 || strings.Count(c, "bookworm apt-get update") != 1 {
		t.Errorf("young lists: want one download, one refresh, one more download:\n%s", c)
	}
}
