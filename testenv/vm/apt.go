package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The runner resolves and downloads kernel packages with an apt of its
// own: one configuration per Debian suite under CACHE/apt/SUITE (its
// sources.list, apt.conf, lists/ and cache/), an empty dpkg status shared
// by all, and no configuration of the machine's (no /etc/apt/apt.conf.d:
// no hooks, no extra index targets). It never touches /etc/apt or
// /var/lib/apt, and works as any user who can write the cache. Its
// mirrors are those the machine's apt sources name (sources.go).

// DebianKeyring verifies the suites' Release files: bookworm's
// debian-archive-keyring has the keys of bookworm, trixie and unstable.
var DebianKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// debianSuite is a suite of the Debian archive ("main" only), or of its
// security archive.
type debianSuite struct {
	Name     string
	Security bool
}

// debianSuites are the suites the runner knows, oldest first.
var debianSuites = []debianSuite{
	{"bookworm", false},
	{"bookworm-updates", false},
	{"bookworm-security", true},
	{"bookworm-backports", false},
	{"trixie", false},
	{"trixie-updates", false},
	{"trixie-security", true},
	{"trixie-backports", false},
	{"unstable", false},
}

// seriesFamilies are the groups of suites a series ("6.1") or a package
// name is looked up in, one group after the other until one has it: 6.1
// and 6.12 are in bookworm's (6.12 in bookworm-security), so only those
// lists are downloaded for them.
var seriesFamilies = [][]string{
	{"bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports"},
	{"trixie", "trixie-updates", "trixie-security", "trixie-backports"},
	{"unstable"},
}

// newestSuites are where Debian's newest kernels are: the newest stable's
// backports and unstable.
var newestSuites = []string{"trixie-backports", "unstable"}

// NewestSpec is the kernel spec for the newest kernel Debian serves.
const NewestSpec = "newest"

// listsMaxAge is how old a suite's lists may be before they are refreshed.
const listsMaxAge = 24 * time.Hour

// aptUpdateTimeout bounds one suite's apt-get update.
const aptUpdateTimeout = 5 * time.Minute

func suiteByName(name string) (debianSuite, bool) {
	for _, s := range debianSuites {
		if s.Name == name {
			return s, true
		}
	}
	return debianSuite{}, false
}

// aptRepo is the runner's apt under dir (CACHE/apt).
type aptRepo struct {
	dir    string
	log    io.Writer
	etcApt string // the machine's apt sources (machineAptDir)

	mu        sync.Mutex
	refreshed map[string]bool         // suites updated by this process
	failed    map[string]error        // suites this process could not update and has no lists of
	offline   error                   // an update could not reach the mirror: no more tries
	images    map[string][]debPackage // per suite: its linux-image-* packages
	mirrors   *debianMirrors          // loaded on first use
	mirrorErr error
}

var (
	aptReposMu sync.Mutex
	aptRepos   = map[string]*aptRepo{}
)

// aptFor returns the apt of cacheDir; one per cache directory and process,
// so that each suite's lists are checked and read once per run.
func aptFor(cacheDir string, log io.Writer) *aptRepo {
	dir := filepath.Join(cacheDir, "apt")
	aptReposMu.Lock()
	defer aptReposMu.Unlock()
	a := aptRepos[dir]
	if a == nil {
		a = &aptRepo{dir: dir, etcApt: machineAptDir, refreshed: map[string]bool{}, failed: map[string]error{}, images: map[string][]debPackage{}}
		aptRepos[dir] = a
	}
	a.log = log
	return a
}

func (a *aptRepo) suiteDir(suite string) string { return filepath.Join(a.dir, suite) }

func (a *aptRepo) configFile(suite string) string {
	return filepath.Join(a.suiteDir(suite), "apt.conf")
}

func (a *aptRepo) listsDir(suite string) string { return filepath.Join(a.suiteDir(suite), "lists") }

// stampFile's modification time is the last successful apt-get update.
func (a *aptRepo) stampFile(suite string) string {
	return filepath.Join(a.suiteDir(suite), "updated")
}

// sourcesLine is the suite's line in its sources.list.
func sourcesLine(suite, uri, keyring string) string {
	return fmt.Sprintf("deb [signed-by=%s] %s %s main\n", keyring, uri, suite)
}

// mirror returns the URI suite s comes from (see sources.go), reading the
// environment and the machine's apt sources once.
func (a *aptRepo) mirror(s debianSuite) (string, error) {
	a.mu.Lock()
	if a.mirrors == nil && a.mirrorErr == nil {
		m, err := loadMirrors(a.etcApt, os.Getenv)
		a.mirrors, a.mirrorErr = &m, err
	}
	m, err := a.mirrors, a.mirrorErr
	a.mu.Unlock()
	if err != nil {
		return "", err
	}
	return m.uri(s)
}

// aptConfig is the apt.conf of a suite whose files are under dir, with the
// shared empty directory and dpkg status of the runner's apt. Nothing of
// the machine's configuration is read (Dir::Etc::Parts is the empty
// directory, Dir::Etc::Main /dev/null). Valid-Until is not checked: a
// mirror or snapshot whose lists expired still serves verified packages,
// and the runner only boots them in a VM. The lists stay compressed
// (GzipIndexes: a tenth of the space). As root, apt stays root for its
// downloads (its _apt user cannot write into root's cache). extra holds
// further settings (the machine's proxy).
func aptConfig(dir, empty, status string, root bool, extra []string) string {
	q := func(p string) string { return `"` + p + `"` }
	lines := []string{
		"// Written by ebpfovs's vmtest (testenv/vm/apt.go): its own apt for one",
		"// Debian suite, apart from the machine's. Rewritten on every run.",
		`Dir "/";`,
		"Dir::Etc " + q(filepath.Join(dir, "etc")) + ";",
		`Dir::Etc::Main "/dev/null";`,
		"Dir::Etc::Parts " + q(empty) + ";",
		"Dir::Etc::SourceList " + q(filepath.Join(dir, "sources.list")) + ";",
		"Dir::Etc::SourceParts " + q(empty) + ";",
		`Dir::Etc::Preferences "/dev/null";`,
		"Dir::Etc::PreferencesParts " + q(empty) + ";",
		`Dir::Etc::Trusted "/dev/null";`,
		"Dir::Etc::TrustedParts " + q(empty) + ";",
		"Dir::State " + q(dir) + ";",
		"Dir::State::Lists " + q(filepath.Join(dir, "lists")) + ";",
		"Dir::State::status " + q(status) + ";",
		"Dir::Cache " + q(filepath.Join(dir, "cache")) + ";",
		`Dir::Cache::srcpkgcache "";`,
		"Dir::Log " + q(dir) + ";",
		`APT::Architecture "amd64";`,
		`APT::Architectures { "amd64"; };`,
		`Acquire::Languages "none";`,
		`Acquire::GzipIndexes "true";`,
		`Acquire::Check-Valid-Until "false";`,
	}
	if root {
		lines = append(lines, `APT::Sandbox::User "root";`)
	}
	lines = append(lines, extra...)
	return strings.Join(lines, "\n") + "\n"
}

var (
	proxyOnce  sync.Once
	proxyLines []string
)

// machineProxy returns the machine's apt proxy settings, if any, as
// apt.conf lines: the one thing of its configuration the runner's apt
// needs to reach the mirror the same way.
func machineProxy() []string {
	proxyOnce.Do(func() {
		out, err := exec.Command("apt-config", "shell", "HTTP", "Acquire::http::Proxy", "HTTPS", "Acquire::https::Proxy").Output()
		if err != nil {
			return
		}
		proxyLines = parseAptConfigShell(out)
	})
	return proxyLines
}

// parseAptConfigShell turns `apt-config shell HTTP Acquire::http::Proxy
// HTTPS Acquire::https::Proxy` output (HTTP='http://proxy:3128/') into
// apt.conf lines.
func parseAptConfigShell(out []byte) []string {
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		v = strings.Trim(v, `'"`)
		if !ok || v == "" || strings.ContainsAny(v, "\"\n") {
			continue
		}
		switch k {
		case "HTTP":
			lines = append(lines, `Acquire::http::Proxy "`+v+`";`)
		case "HTTPS":
			lines = append(lines, `Acquire::https::Proxy "`+v+`";`)
		}
	}
	return lines
}

// setup writes the suite's configuration and directories (when they
// changed) and returns its apt.conf.
func (a *aptRepo) setup(suite string) (string, error) {
	s, ok := suiteByName(suite)
	if !ok {
		return "", fmt.Errorf("unknown Debian suite %q", suite)
	}
	uri, err := a.mirror(s)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(a.dir, "\"\n") {
		return "", fmt.Errorf("apt cache %q: a path with a quote or newline cannot go into apt.conf", a.dir)
	}
	if _, err := os.Stat(DebianKeyring); err != nil {
		return "", fmt.Errorf("the Debian archive keyring: %w (apt-get install debian-archive-keyring)", err)
	}
	dir := a.suiteDir(suite)
	empty := filepath.Join(a.dir, "empty")
	status := filepath.Join(a.dir, "status")
	for _, d := range []string{empty, filepath.Join(dir, "etc"), filepath.Join(dir, "lists", "partial"), filepath.Join(dir, "cache", "archives", "partial")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("apt cache: %w", err)
		}
	}
	if _, err := os.Stat(status); err != nil {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return "", fmt.Errorf("apt cache: %w", err)
		}
	}
	conf := a.configFile(suite)
	sources := filepath.Join(dir, "sources.list")
	line := sourcesLine(suite, uri, DebianKeyring)
	if b, err := os.ReadFile(sources); err == nil && string(b) != line {
		// Another mirror: the lists of the old one are not its lists.
		if err := os.Remove(a.stampFile(suite)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("apt cache: %w", err)
		}
	}
	files := map[string]string{
		sources: line,
		conf:    aptConfig(dir, empty, status, os.Geteuid() == 0, machineProxy()),
	}
	for f, text := range files {
		if b, err := os.ReadFile(f); err == nil && string(b) == text {
			continue
		}
		if err := writeFileAtomic(f, []byte(text)); err != nil {
			return "", fmt.Errorf("apt cache: %w", err)
		}
	}
	return conf, nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// concurrent run never reads half a file.
func writeFileAtomic(file string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// hasLists reports whether the suite's lists hold a Packages file.
func (a *aptRepo) hasLists(suite string) bool {
	m, _ := filepath.Glob(filepath.Join(a.listsDir(suite), "*_Packages*"))
	return len(m) > 0
}

// listsFresh reports whether the suite's lists exist and are younger than
// maxAge.
func (a *aptRepo) listsFresh(suite string, maxAge time.Duration, now time.Time) bool {
	st, err := os.Stat(a.stampFile(suite))
	return err == nil && now.Sub(st.ModTime()) < maxAge && a.hasLists(suite)
}

// ensure makes the suite's lists usable: it runs apt-get update when they
// are missing, older than listsMaxAge, or force is set (and this process
// has not updated them yet). An update that fails with lists in place is
// a warning: the old lists are used.
func (a *aptRepo) ensure(ctx context.Context, suite string, force bool) error {
	conf, err := a.setup(suite)
	if err != nil {
		return err
	}
	a.mu.Lock()
	done, failed := a.refreshed[suite], a.failed[suite]
	a.mu.Unlock()
	if failed != nil {
		return failed // once per run is enough (offline)
	}
	if done || (!force && a.listsFresh(suite, listsMaxAge, time.Now())) {
		return nil
	}
	a.mu.Lock()
	offline := a.offline
	a.mu.Unlock()
	if offline != nil {
		// Updating another suite cannot work either: each try costs
		// apt's retries.
		if a.hasLists(suite) {
			return nil
		}
		return fmt.Errorf("suite %s: no lists: %w", suite, errOffline)
	}
	unlock, err := lockCache(ctx, a.dir, a.log)
	if err != nil {
		return err
	}
	defer unlock()
	// Another run may have updated them while we waited.
	if st, err := os.Stat(a.stampFile(suite)); err == nil && time.Since(st.ModTime()) < time.Minute && a.hasLists(suite) {
		a.markRefreshed(suite)
		return nil
	}
	start := time.Now()
	fmt.Fprintf(a.log, "vmtest: apt-get update of Debian's %s (lists in %s)\n", suite, a.listsDir(suite))
	uctx, cancel := context.WithTimeout(ctx, aptUpdateTimeout)
	defer cancel()
	_, err = aptRun(uctx, conf, "", "apt-get", "update", "-q", "-o", "APT::Update::Error-Mode=any")
	if err == nil && !a.hasLists(suite) {
		err = fmt.Errorf("apt-get update left no Packages list in %s", a.listsDir(suite))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if unreachable(err) {
			a.mu.Lock()
			a.offline = err
			a.mu.Unlock()
		}
		if a.hasLists(suite) {
			fmt.Fprintf(a.log, "vmtest: %s: %v; using the lists of the last update\n", suite, err)
			a.markRefreshed(suite) // no second try in this run
			return nil
		}
		err = fmt.Errorf("suite %s: %w", suite, err)
		a.mu.Lock()
		a.failed[suite] = err
		a.mu.Unlock()
		return err
	}
	now := time.Now()
	if err := os.WriteFile(a.stampFile(suite), []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return fmt.Errorf("apt cache: %w", err)
	}
	a.markRefreshed(suite)
	fmt.Fprintf(a.log, "vmtest: %s lists updated in %s\n", suite, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (a *aptRepo) markRefreshed(suite string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshed[suite] = true
	delete(a.images, suite)
}

// wasRefreshed reports whether this process updated the suite's lists.
func (a *aptRepo) wasRefreshed(suite string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refreshed[suite]
}

// imageNameRE matches the package names resolution looks at: the meta
// packages linux-image-amd64 and linux-image-X.Y-amd64, and the kernels
// linux-image-RELEASE[-unsigned] (RELEASE ends in -amd64).
var imageNameRE = regexp.MustCompile(`^linux-image-(?:[0-9][^ ]*-)?amd64(?:-unsigned)?$`)

// linuxImages returns the suite's linux-image-* packages (all versions its
// lists have), updating the lists first if needed.
func (a *aptRepo) linuxImages(ctx context.Context, suite string) ([]debPackage, error) {
	if err := a.ensure(ctx, suite, false); err != nil {
		return nil, err
	}
	a.mu.Lock()
	pkgs, ok := a.images[suite]
	a.mu.Unlock()
	if ok {
		return pkgs, nil
	}
	conf := a.configFile(suite)
	out, err := aptRun(ctx, conf, "", "apt-cache", "pkgnames", "linux-image-")
	if err != nil {
		return nil, fmt.Errorf("suite %s: %w", suite, err)
	}
	var names []string
	for _, n := range strings.Fields(out) {
		if imageNameRE.MatchString(n) {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		out, err = aptRun(ctx, conf, "", "apt-cache", append([]string{"show"}, names...)...)
		if err != nil && out == "" {
			return nil, fmt.Errorf("suite %s: %w", suite, err)
		}
		pkgs = parseStanzas(out)
		for i := range pkgs {
			pkgs[i].Suite = suite
		}
	}
	a.mu.Lock()
	a.images[suite] = pkgs
	a.mu.Unlock()
	return pkgs, nil
}

// download fetches name=version for each package from the suite into dir
// with apt-get download.
func (a *aptRepo) download(ctx context.Context, suite, dir string, version string, names ...string) error {
	if _, err := a.setup(suite); err != nil {
		return err
	}
	args := []string{"download", "-q"}
	for _, n := range names {
		args = append(args, n+"="+version)
	}
	if _, err := aptRun(ctx, a.configFile(suite), dir, "apt-get", args...); err != nil {
		return fmt.Errorf("download from %s: %w", suite, err)
	}
	return nil
}

// errOffline: an earlier update of this run could not reach the mirror.
var errOffline = errors.New("the mirror is out of reach")

// unreachable reports whether an apt error says the network or the mirror
// cannot be reached (rather than, say, a suite the mirror lacks).
func unreachable(err error) bool {
	msg := err.Error()
	for _, s := range []string{"Could not connect", "Could not resolve", "Temporary failure resolving", "Connection timed out", "Network is unreachable", "No route to host"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// aptMessage shortens apt's stderr to its error lines ("E: ..."), less
// the generic "Some index files failed to download" one; else the whole.
func aptMessage(stderr string) string {
	var errs []string
	for _, l := range strings.Split(stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "E: ") && !strings.HasPrefix(l, "E: Some index files failed to download") {
			errs = append(errs, strings.Join(strings.Fields(l), " "))
		}
	}
	if len(errs) == 0 {
		return strings.TrimSpace(stderr)
	}
	return strings.Join(errs, "; ")
}

// aptRun runs an apt command with the configuration conf (APT_CONFIG) in
// dir and returns its stdout.
func aptRun(ctx context.Context, conf, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "APT_CONFIG="+conf, "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := aptMessage(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
		}
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// kernelChoice is a resolved kernel package.
type kernelChoice struct {
	Package, Version, Suite string
}

// resolveKernel finds the kernel package for spec in the runner's apt:
// a series in seriesFamilies (see pickSeries), NewestSpec in
// newestSuites (pickNewest), a linux-image-* name in seriesFamilies. It
// returns the suites it looked in, for messages.
func (a *aptRepo) resolveKernel(ctx context.Context, spec string) (kernelChoice, []string, error) {
	var pick func([]debPackage) (debPackage, bool)
	families := seriesFamilies
	switch {
	case spec == NewestSpec:
		pick, families = pickNewest, [][]string{newestSuites}
	case seriesRE.MatchString(spec):
		pick = func(p []debPackage) (debPackage, bool) { return pickSeries(spec, p) }
	case strings.HasPrefix(spec, "linux-image-"):
		pick = func(p []debPackage) (debPackage, bool) { return pickNamed(spec, p) }
	default:
		return kernelChoice{}, nil, fmt.Errorf("kernel %q: want a series such as 6.1 or 6.12, %q, or a linux-image-* package name", spec, NewestSpec)
	}
	var looked, errs, offline []string
	for _, fam := range families {
		var pkgs []debPackage
		for _, s := range fam {
			p, err := a.linuxImages(ctx, s)
			if err != nil {
				if ctx.Err() != nil {
					return kernelChoice{}, looked, ctx.Err()
				}
				if me := (*mirrorError)(nil); errors.As(err, &me) {
					return kernelChoice{}, looked, err // no use trying other suites
				}
				if errors.Is(err, errOffline) {
					offline = append(offline, s)
				} else {
					errs = append(errs, err.Error())
				}
				continue
			}
			looked = append(looked, s)
			pkgs = append(pkgs, p...)
		}
		if p, ok := pick(pkgs); ok {
			return kernelChoice{Package: p.Name, Version: p.Version, Suite: p.Suite}, looked, nil
		}
	}
	msg := fmt.Sprintf("kernel %s: no Debian package found in %s", spec, strings.Join(looked, ", "))
	if len(looked) == 0 {
		msg = fmt.Sprintf("kernel %s: no Debian suite's lists could be read", spec)
	}
	switch {
	case len(looked) == 0:
	case spec == NewestSpec:
		msg += " (no linux-image-RELEASE-amd64)"
	case seriesRE.MatchString(spec):
		msg += fmt.Sprintf(" (neither linux-image-%s-amd64 nor a linux-image-%s.* kernel behind linux-image-amd64)", spec, spec)
	}
	if len(errs) > 0 {
		msg += "; " + strings.Join(errs, "; ")
	}
	if len(offline) > 0 {
		msg += fmt.Sprintf("; no lists of %s (not tried: the mirror is out of reach)", strings.Join(offline, ", "))
	}
	return kernelChoice{}, looked, errors.New(msg)
}

// kernelRelease returns the kernel release a linux-image-RELEASE[-unsigned]
// package installs ("6.1.0-57-amd64", "7.3.4+deb13-amd64"), or "" for a
// meta package or another flavour (rt, cloud) than imageFlavor.
func kernelRelease(pkg string) string {
	r, ok := strings.CutPrefix(pkg, "linux-image-")
	if !ok {
		return ""
	}
	r = strings.TrimSuffix(r, "-unsigned")
	rest, ok := strings.CutSuffix(r, "-"+imageFlavor)
	if !ok || !releaseHeadRE.MatchString(rest) {
		return ""
	}
	last := rest[strings.LastIndex(rest, "-")+1:]
	if !strings.ContainsAny(last, "0123456789") { // "rt", "cloud"
		return ""
	}
	return r
}

// releaseHeadRE: a kernel release starts with three numbers ("6.12" is a
// meta package's series).
var releaseHeadRE = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+`)

// better reports whether p is a better choice than q: a higher version,
// else the signed package over the -unsigned one.
func better(p, q debPackage) bool {
	if c := compareVersions(p.Version, q.Version); c != 0 {
		return c > 0
	}
	return !strings.HasSuffix(p.Name, "-unsigned") && strings.HasSuffix(q.Name, "-unsigned")
}

// pickSeries chooses series' kernel among one family's packages: the
// kernels that the meta packages linux-image-SERIES-amd64 and
// linux-image-amd64 depend on, if in the series; without such a meta
// package, the kernels of the series themselves. The highest version wins.
func pickSeries(series string, pkgs []debPackage) (debPackage, bool) {
	var best debPackage
	found := false
	consider := func(p debPackage) {
		if !found || better(p, best) {
			best, found = p, true
		}
	}
	for _, m := range pkgs {
		if m.Name != "linux-image-"+series+"-"+imageFlavor && m.Name != "linux-image-"+imageFlavor {
			continue
		}
		for _, alts := range parseDepends(m.Depends) {
			d := alts[0]
			if r := kernelRelease(d.Name); r == "" || !sameSeries(r, series) {
				continue
			}
			if k, ok := findVersion(pkgs, d.Name, m.Suite, d); ok {
				consider(k)
			}
		}
	}
	if found {
		return best, true
	}
	for _, p := range pkgs {
		if r := kernelRelease(p.Name); r != "" && sameSeries(r, series) {
			consider(p)
		}
	}
	return best, found
}

// findVersion returns the package name of the suite that satisfies the
// dependency d: its exact version, or the highest one.
func findVersion(pkgs []debPackage, name, suite string, d debDep) (debPackage, bool) {
	var best debPackage
	found := false
	for _, p := range pkgs {
		if p.Name != name || p.Suite != suite {
			continue
		}
		if d.Op == "=" && p.Version != d.Version {
			continue
		}
		if !found || compareVersions(p.Version, best.Version) > 0 {
			best, found = p, true
		}
	}
	return best, found
}

// pickNewest chooses the kernel (linux-image-RELEASE-amd64, signed or
// not; not -dbg, -rt or -cloud) with the highest version.
func pickNewest(pkgs []debPackage) (debPackage, bool) {
	var best debPackage
	found := false
	for _, p := range pkgs {
		if kernelRelease(p.Name) == "" {
			continue
		}
		if !found || better(p, best) {
			best, found = p, true
		}
	}
	return best, found
}

// pickNamed chooses the highest version of the package name.
func pickNamed(name string, pkgs []debPackage) (debPackage, bool) {
	var best debPackage
	found := false
	for _, p := range pkgs {
		if p.Name == name && (!found || better(p, best)) {
			best, found = p, true
		}
	}
	return best, found
}
