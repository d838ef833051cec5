package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Kernel is a Debian kernel unpacked in the cache: one package
// (linux-image-RELEASE up to Debian's 6.x kernels) or several (from 7.x on
// linux-image-RELEASE only depends on linux-binary-RELEASE, the kernel,
// linux-modules-RELEASE and linux-base-RELEASE, its config and built-in
// module lists).
type Kernel struct {
	// Spec is what the user asked for: a series ("6.1", "6.12"), "newest"
	// or a package name.
	Spec string
	// Package is the Debian package, e.g. "linux-image-6.1.0-56-amd64".
	Package string
	// Version is the package version, e.g. "6.1.192-2".
	Version string
	// Release is the kernel release (`uname -r` in the guest), the name of
	// its directory under /lib/modules, e.g. "6.1.0-56-amd64".
	Release string
	// Root is the directory the packages were unpacked into.
	Root string
	// Packages are all the packages unpacked into Root.
	Packages []string
	// Newest: fetched as NewestSpec (pruned when a newer one comes).
	Newest bool
}

// String names the kernel in logs and summaries.
func (k *Kernel) String() string { return k.Release }

// firstExisting returns the first of paths that exists, else the first.
func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// Vmlinuz is the path of the kernel image: boot/vmlinuz-RELEASE (Debian's
// 6.x packages) or usr/lib/modules/RELEASE/vmlinuz (7.x's linux-binary).
func (k *Kernel) Vmlinuz() string {
	return firstExisting(
		filepath.Join(k.Root, "boot", "vmlinuz-"+k.Release),
		filepath.Join(k.Root, "usr", "lib", "modules", k.Release, "vmlinuz"),
		filepath.Join(k.Root, "lib", "modules", k.Release, "vmlinuz"),
	)
}

// ModulesDir is the kernel's /lib/modules/RELEASE directory in the cache:
// lib/modules/RELEASE or usr/lib/modules/RELEASE.
func (k *Kernel) ModulesDir() string {
	return firstExisting(
		filepath.Join(k.Root, "lib", "modules", k.Release),
		filepath.Join(k.Root, "usr", "lib", "modules", k.Release),
	)
}

// ConfigFile is the kernel's configuration: boot/config-RELEASE, or
// config in the modules directory (7.x's linux-base).
func (k *Kernel) ConfigFile() string {
	return firstExisting(
		filepath.Join(k.Root, "boot", "config-"+k.Release),
		filepath.Join(k.Root, "usr", "lib", "modules", k.Release, "config"),
		filepath.Join(k.Root, "lib", "modules", k.Release, "config"),
	)
}

// Config returns the value of CONFIG_NAME in the kernel's configuration
// ("y", "m", a string, or "" when unset).
func (k *Kernel) Config(name string) (string, error) {
	f, err := os.Open(k.ConfigFile())
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	prefix := "CONFIG_" + name + "="
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), prefix); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", s.Err()
}

// DefaultCacheDir is where kernels are cached: /var/cache/ebpfovs-vm for
// root, else $XDG_CACHE_HOME/ebpfovs-vm (~/.cache/ebpfovs-vm). The
// environment variable EBPFOVS_VM_CACHE overrides both. The runner's apt
// (lists of Debian's suites) is in its apt/ directory.
func DefaultCacheDir() string {
	if d := os.Getenv("EBPFOVS_VM_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/ebpfovs-vm"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "ebpfovs-vm")
	}
	return filepath.Join(os.TempDir(), "ebpfovs-vm-cache")
}

// seriesRE matches a kernel series such as "6.1" or "6.12".
var seriesRE = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)

// imageFlavor is the Debian kernel flavour we boot: the generic one, which
// has every driver as a module (the cloud flavour lacks some).
const imageFlavor = "amd64"

// ValidSpec reports whether spec is a kernel spec: a series "X.Y",
// NewestSpec, or a linux-image-* package name.
func ValidSpec(spec string) error {
	if seriesRE.MatchString(spec) || spec == NewestSpec || strings.HasPrefix(spec, "linux-image-") {
		return nil
	}
	return fmt.Errorf("kernel %q: want a series such as 6.1 or 6.12, %q, or a linux-image-* package name", spec, NewestSpec)
}

// Resolution is what a kernel spec stands for in Debian's lists today.
type Resolution struct {
	Spec, Package, Version string
	// Suite is the Debian suite the package is taken from.
	Suite string
	// Release is the kernel release the package installs.
	Release string
	// Suites are the suites whose lists were consulted.
	Suites []string
}

// ResolveKernel finds the Debian package and version for spec with the
// runner's own apt in cacheDir (see apt.go), updating the lists of the
// suites it needs when they are missing or older than a day:
//
//   - a series "X.Y" through a meta package: linux-image-X.Y-amd64 (6.12
//     in bookworm-security) or linux-image-amd64 when it depends on an
//     X.Y kernel (6.1 on bookworm), in bookworm's suites, else trixie's,
//     else unstable; without a meta package, the highest linux-image-X.Y.*
//     kernel there;
//   - NewestSpec: the highest version of a linux-image-RELEASE-amd64 (signed
//     or not; no -rt, -cloud or -dbg) in trixie-backports and unstable;
//   - a linux-image-* package name: its highest version, looked up like a
//     series.
func ResolveKernel(ctx context.Context, cacheDir, spec string, log io.Writer) (*Resolution, error) {
	if err := ValidSpec(spec); err != nil {
		return nil, err
	}
	c, looked, err := aptFor(cacheDir, log).resolveKernel(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &Resolution{Spec: spec, Package: c.Package, Version: c.Version, Suite: c.Suite, Release: kernelRelease(c.Package), Suites: looked}, nil
}

// completeMarker is written last into a cache entry; entries without it
// are partial (an interrupted download) and are redone.
const completeMarker = ".ebpfovs-vm-complete"

// FetchKernel returns the kernel for spec from the cache in cacheDir,
// downloading and unpacking it first if needed. A cache entry is
// cacheDir/PACKAGE_VERSION: the unpacked package(s) plus a modules.dep
// made by `depmod -b`. Fetching a newer kernel for a series (or for
// NewestSpec) removes the older entries of that series (or the older
// newest). Concurrent runs serialize on a lock in cacheDir. Progress goes
// to log.
//
// When the lists cannot resolve spec (offline, no lists), the newest
// complete cache entry of the same series (or the newest fetched as
// NewestSpec) is used, so cached kernels keep working offline.
func FetchKernel(ctx context.Context, cacheDir, spec string, log io.Writer) (*Kernel, error) {
	res, err := ResolveKernel(ctx, cacheDir, spec, log)
	if err != nil {
		if ctx.Err() == nil {
			if k := newestCached(cacheDir, spec); k != nil {
				fmt.Fprintf(log, "vmtest: %v; using the cached %s %s\n", err, k.Package, k.Version)
				return k, nil
			}
		}
		return nil, err
	}
	k, err := fetchResolved(ctx, cacheDir, spec, res, log)
	a := aptFor(cacheDir, log)
	if err != nil && ctx.Err() == nil && !a.wasRefreshed(res.Suite) {
		// The lists may be up to a day old: the mirror may have dropped
		// that version since. Refresh them and try again.
		fmt.Fprintf(log, "vmtest: %v; refreshing %s's lists and retrying\n", err, res.Suite)
		if rerr := a.ensure(ctx, res.Suite, true); rerr != nil {
			return nil, err
		}
		if res, rerr := ResolveKernel(ctx, cacheDir, spec, log); rerr == nil {
			k, err = fetchResolved(ctx, cacheDir, spec, res, log)
		}
	}
	return k, err
}

// fetchResolved returns the cache entry of res, downloading it if needed.
func fetchResolved(ctx context.Context, cacheDir, spec string, res *Resolution, log io.Writer) (*Kernel, error) {
	entry := filepath.Join(cacheDir, res.Package+"_"+strings.ReplaceAll(res.Version, ":", "%3a"))
	if k, err := loadCached(entry, spec); err == nil {
		return k, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := lockCache(ctx, cacheDir, log)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another run may have fetched it while we waited for the lock.
	if k, err := loadCached(entry, spec); err == nil {
		return k, nil
	}
	if err := download(ctx, aptFor(cacheDir, log), entry, res, spec == NewestSpec, log); err != nil {
		return nil, err
	}
	k, err := loadCached(entry, spec)
	if err != nil {
		return nil, err
	}
	switch {
	case seriesRE.MatchString(spec):
		pruneSeries(cacheDir, k, log)
	case spec == NewestSpec:
		pruneNewest(cacheDir, k, log)
	}
	return k, nil
}

// fetchTimeout bounds downloading, unpacking and depmod of one kernel
// (about 30 s on a CI host).
const fetchTimeout = 10 * time.Minute

// download fetches res's package with the runner's apt into a temporary
// directory of the cache and unpacks it. If it holds no kernel (Debian's
// 7.x linux-image-RELEASE is only dependencies), the packages it depends
// on at its very version (linux-binary-*, linux-modules-*, linux-base-*),
// and theirs, are fetched and unpacked too. Then depmod runs and the
// result is renamed to entry.
func download(ctx context.Context, a *aptRepo, entry string, res *Resolution, newest bool, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	start := time.Now()
	cacheDir := filepath.Dir(entry)
	fmt.Fprintf(log, "vmtest: downloading %s %s from Debian's %s into %s\n", res.Package, res.Version, res.Suite, cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	debs := filepath.Join(tmp, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	fetched := map[string]bool{}
	var order []string
	// fetch downloads and unpacks names, and returns the exact-version
	// dependencies of theirs not fetched yet.
	fetch := func(names []string) ([]string, error) {
		if err := a.download(ctx, res.Suite, debs, res.Version, names...); err != nil {
			return nil, err
		}
		var next []string
		for _, n := range names {
			fetched[n] = true
			order = append(order, n)
		}
		files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
		if len(files) != len(names) {
			return nil, fmt.Errorf("download %s: apt-get download left %d .deb files, want %d", strings.Join(names, " "), len(files), len(names))
		}
		for _, f := range files {
			deps, err := runOutput(ctx, "", "dpkg-deb", "-f", f, "Depends")
			if err != nil {
				return nil, err
			}
			for _, d := range exactDeps(strings.TrimSpace(deps), res.Version) {
				if !fetched[d] && !contains(next, d) {
					next = append(next, d)
				}
			}
			if _, err := runOutput(ctx, "", "dpkg-deb", "-x", f, root); err != nil {
				return nil, fmt.Errorf("unpack %s: %w", filepath.Base(f), err)
			}
			if err := os.Remove(f); err != nil {
				return nil, err
			}
		}
		return next, nil
	}
	next, err := fetch([]string{res.Package})
	if err != nil {
		return err
	}
	release, err := releaseOf(root)
	if errors.Is(err, errNoKernel) && len(next) > 0 {
		// A dependency package: the kernel is in the packages it pins.
		fmt.Fprintf(log, "vmtest: %s holds no kernel; fetching %s\n", res.Package, strings.Join(next, " "))
		for len(next) > 0 {
			if next, err = fetch(next); err != nil {
				return err
			}
		}
		release, err = releaseOf(root)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", res.Package, err)
	}
	if err := linkModules(root, release); err != nil {
		return fmt.Errorf("%s: %w", res.Package, err)
	}
	// Debian's packages ship no modules.dep: the postinst runs depmod.
	if _, err := runOutput(ctx, "", "depmod", "-b", root, release); err != nil {
		return fmt.Errorf("%s: %w", res.Package, err)
	}
	meta := fmt.Sprintf("package=%s\nversion=%s\nrelease=%s\nsuite=%s\npackages=%s\n", res.Package, res.Version, release, res.Suite, strings.Join(order, " "))
	if newest {
		meta += "newest=1\n"
	}
	if err := os.WriteFile(filepath.Join(root, completeMarker), []byte(meta), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(entry); err != nil { // a partial entry of an interrupted run
		return fmt.Errorf("kernel cache: %w", err)
	}
	if err := os.Rename(root, entry); err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	fmt.Fprintf(log, "vmtest: %s ready in %s (%s)\n", release, time.Since(start).Round(time.Second), entry)
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// linkModules makes root/lib/modules/RELEASE exist when the modules are in
// root/usr/lib/modules/RELEASE (Debian's 7.x packages), so that `depmod
// -b root` (which only looks in lib/modules) finds them: a symlink lib ->
// usr/lib, or lib/modules -> ../usr/lib/modules.
func linkModules(root, release string) error {
	if _, err := os.Stat(filepath.Join(root, "lib", "modules", release)); err == nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "lib", "modules", release)); err != nil {
		return fmt.Errorf("no lib/modules/%s nor usr/lib/modules/%s in the package(s)", release, release)
	}
	if _, err := os.Lstat(filepath.Join(root, "lib")); errors.Is(err, os.ErrNotExist) {
		return os.Symlink("usr/lib", filepath.Join(root, "lib"))
	}
	if _, err := os.Lstat(filepath.Join(root, "lib", "modules")); errors.Is(err, os.ErrNotExist) {
		return os.Symlink("../usr/lib/modules", filepath.Join(root, "lib", "modules"))
	}
	return fmt.Errorf("modules in usr/lib/modules/%s, and a lib/modules without them", release)
}

// lockWait bounds how long FetchKernel waits for another run's download.
const lockWait = 15 * time.Minute

// lockCache takes an exclusive flock on cacheDir/.lock, so that concurrent
// runs do not download the same kernel twice or prune what another
// unpacks. It polls, so it honours ctx and gives up after lockWait.
func lockCache(ctx context.Context, cacheDir string, log io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	deadline := time.Now().Add(lockWait)
	for said := false; ; said = true {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("kernel cache %s: lock: %w", cacheDir, err)
		}
		if !said {
			fmt.Fprintf(log, "vmtest: waiting for another vmtest to finish downloading into %s\n", cacheDir)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// pruneSeries removes the cache entries of k's series other than k: a
// series follows Debian's newest kernel, so older ones are dead weight
// (400 MB each). Called with the cache lock held.
func pruneSeries(cacheDir string, k *Kernel, log io.Writer) {
	prune(cacheDir, k, log, func(old *Kernel) bool { return sameSeries(old.Release, k.Spec) })
}

// pruneNewest removes the entries fetched as NewestSpec other than k, of a
// lower release: newest moved on.
func pruneNewest(cacheDir string, k *Kernel, log io.Writer) {
	prune(cacheDir, k, log, func(old *Kernel) bool { return old.Newest && releaseLess(old.Release, k.Release) })
}

func prune(cacheDir string, k *Kernel, log io.Writer, older func(*Kernel) bool) {
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	for _, e := range entries {
		old, err := loadCached(e, k.Spec)
		if err != nil || e == k.Root || !older(old) {
			continue
		}
		if err := os.RemoveAll(e); err != nil {
			fmt.Fprintf(log, "vmtest: cannot remove the older kernel %s: %v\n", e, err)
			continue
		}
		fmt.Fprintf(log, "vmtest: removed the older %s from the cache\n", old.Release)
	}
}

// sameSeries reports whether a kernel release belongs to the series
// ("6.1.0-56-amd64" to "6.1", not to "6.12") in the flavour we boot (not
// "-cloud-amd64" or "-rt-amd64").
func sameSeries(release, series string) bool {
	rest, ok := strings.CutSuffix(release, "-"+imageFlavor)
	if !ok || !strings.HasPrefix(rest, series+".") {
		return false
	}
	last := rest[strings.LastIndex(rest, "-")+1:]
	return strings.ContainsAny(last, "0123456789") // "cloud", "rt": another flavour
}

// loadCached reads a complete cache entry.
func loadCached(entry, spec string) (*Kernel, error) {
	b, err := os.ReadFile(filepath.Join(entry, completeMarker))
	if err != nil {
		return nil, err
	}
	k := &Kernel{Spec: spec, Root: entry}
	for _, l := range strings.Split(string(b), "\n") {
		key, val, _ := strings.Cut(l, "=")
		switch key {
		case "package":
			k.Package = val
		case "version":
			k.Version = val
		case "release":
			k.Release = val
		case "packages":
			k.Packages = strings.Fields(val)
		case "newest":
			k.Newest = val == "1"
		}
	}
	if k.Package == "" || k.Release == "" {
		return nil, fmt.Errorf("%s: bad cache marker", entry)
	}
	if len(k.Packages) == 0 {
		k.Packages = []string{k.Package}
	}
	if _, err := os.Stat(k.Vmlinuz()); err != nil {
		return nil, err
	}
	return k, nil
}

// newestCached returns the complete cache entry of spec's series (or
// package, or fetched as NewestSpec) with the highest kernel release, or
// nil.
func newestCached(cacheDir, spec string) *Kernel {
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	var best *Kernel
	for _, e := range entries {
		k, err := loadCached(e, spec)
		if err != nil {
			continue
		}
		switch {
		case seriesRE.MatchString(spec):
			if !sameSeries(k.Release, spec) {
				continue
			}
		case spec == NewestSpec:
			if !k.Newest {
				continue
			}
		case k.Package != spec:
			continue
		}
		if best == nil || releaseLess(best.Release, k.Release) {
			best = k
		}
	}
	return best
}

// releaseLess orders kernel releases by their numbers: 6.1.0-9 < 6.1.0-56.
func releaseLess(a, b string) bool {
	na, nb := releaseNumbers(a), releaseNumbers(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if na[i] != nb[i] {
			return na[i] < nb[i]
		}
	}
	return len(na) < len(nb)
}

var numberRE = regexp.MustCompile(`[0-9]+`)

func releaseNumbers(r string) []int {
	var n []int
	for _, f := range numberRE.FindAllString(r, -1) {
		v, _ := strconv.Atoi(f)
		n = append(n, v)
	}
	return n
}

// errNoKernel: the unpacked packages hold no kernel image.
var errNoKernel = errors.New("no kernel image (boot/vmlinuz-RELEASE or usr/lib/modules/RELEASE/vmlinuz)")

// releaseOf finds the single kernel release unpacked under root: one with
// an image at boot/vmlinuz-RELEASE (Debian's 6.x packages) or
// [usr/]lib/modules/RELEASE/vmlinuz (7.x's linux-binary-RELEASE), judged by
// the files, not the version.
func releaseOf(root string) (string, error) {
	found := map[string]bool{}
	for _, dir := range []string{filepath.Join(root, "usr", "lib", "modules"), filepath.Join(root, "lib", "modules")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), "vmlinuz")); err == nil {
				found[e.Name()] = true
			}
		}
	}
	boot, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	for _, b := range boot {
		found[strings.TrimPrefix(filepath.Base(b), "vmlinuz-")] = true
	}
	var rels []string
	for r := range found {
		rels = append(rels, r)
	}
	sort.Strings(rels)
	switch len(rels) {
	case 0:
		return "", errNoKernel
	case 1:
		return rels[0], nil
	}
	return "", fmt.Errorf("want one kernel image, found %v", rels)
}

// Module is a kernel module file.
type Module struct {
	// Name is the module name with '-' as '_' (e.g. "sch_ingress").
	Name string
	// Path is relative to the modules directory, e.g.
	// "kernel/net/sched/sch_ingress.ko.xz".
	Path string
}

// moduleName turns a module path or name into the kernel's module name.
func moduleName(p string) string {
	n := filepath.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		n = strings.TrimSuffix(n, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(n, ".ko"), "-", "_")
}

// ResolveModules returns the modules to load for names, dependencies
// first, each once, following modules.dep. A name may also be an alias
// from modules.alias ("crypto-crc32c"): it stands for the module providing
// it, a "generic" one if several do (it works on any CPU), or a built-in
// module that has it. Modules built into the kernel (modules.builtin,
// modules.builtin.modinfo: see builtinModules) need no file and are left
// out; an
// unknown name is an error, unless it ends in "?" (optional: a module some
// kernels have and others merged into another one).
func (k *Kernel) ResolveModules(names []string) ([]Module, error) {
	depFile := filepath.Join(k.ModulesDir(), "modules.dep")
	deps, err := parseModulesDep(depFile)
	if err != nil {
		return nil, err
	}
	builtin, builtinAliases := k.builtinModules()
	aliases := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.alias")); err == nil {
		aliases = parseAliases(string(b))
	}
	for a, mods := range builtinAliases {
		aliases[a] = append(aliases[a], mods...)
	}
	var resolved []string
	for _, n := range names {
		n, optional := strings.CutSuffix(n, "?")
		r := resolveAlias(n, deps, builtin, aliases)
		if _, ok := deps[moduleName(r)]; optional && !ok && !builtin[moduleName(r)] {
			continue
		}
		resolved = append(resolved, r)
	}
	return resolveModules(resolved, deps, builtin, k.Release)
}

// builtinModules returns the modules built into the kernel and the plain
// aliases they provide. Two files say so, in the modules directory:
// modules.builtin, a module path a line, and modules.builtin.modinfo, the
// built-in modules' "NAME.KEY=VALUE" strings, NUL-terminated. Both are
// read: from Debian's 7.x packages on they are in linux-base-RELEASE, and
// a built-in object may appear in the modinfo alone or under another name
// than the module it replaced (7.x builds nfnetlink into the "netfilter"
// object, which carries its alias net-pf-16-proto-12).
func (k *Kernel) builtinModules() (map[string]bool, map[string][]string) {
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	aliases := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin.modinfo")); err == nil {
		names, al := parseBuiltinModinfo(b)
		for _, n := range names {
			builtin[n] = true
		}
		aliases = al
	}
	return builtin, aliases
}

// parseBuiltinModinfo reads modules.builtin.modinfo: NUL-terminated
// "module.key=value" strings. It returns the module names and their plain
// (wildcard-free) aliases, alias -> modules.
func parseBuiltinModinfo(b []byte) ([]string, map[string][]string) {
	var names []string
	seen := map[string]bool{}
	aliases := map[string][]string{}
	for _, rec := range strings.Split(string(b), "\x00") {
		kv, val, ok := strings.Cut(rec, "=")
		if !ok {
			continue
		}
		mod, key, ok := strings.Cut(kv, ".")
		if !ok || mod == "" {
			continue
		}
		mod = moduleName(mod)
		if !seen[mod] {
			seen[mod] = true
			names = append(names, mod)
		}
		if key == "alias" && val != "" && !strings.ContainsAny(val, "*?[") {
			aliases[val] = append(aliases[val], mod)
		}
	}
	return names, aliases
}

// parseAliases reads the plain (wildcard-free) aliases of modules.alias:
// alias -> module names, in file order.
func parseAliases(text string) map[string][]string {
	m := map[string][]string{}
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "alias" && !strings.ContainsAny(f[1], "*?[") {
			m[f[1]] = append(m[f[1]], moduleName(f[2]))
		}
	}
	return m
}

// resolveAlias returns the module name for n: n itself when it is a module
// or built in, else the module its alias names (preferring a "generic"
// one), else n unchanged for resolveModules to report.
func resolveAlias(n string, deps map[string]modDep, builtin map[string]bool, aliases map[string][]string) string {
	if _, ok := deps[moduleName(n)]; ok || builtin[moduleName(n)] {
		return n
	}
	best := ""
	for _, m := range aliases[n] {
		if _, ok := deps[m]; !ok && !builtin[m] {
			continue
		}
		if best == "" || (strings.Contains(m, "generic") && !strings.Contains(best, "generic")) {
			best = m
		}
	}
	if best == "" {
		return n
	}
	return best
}

// parseModulesDep reads modules.dep: "path: dep-path dep-path ...", keyed
// by module name.
func parseModulesDep(file string) (map[string]modDep, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read modules.dep (depmod ran?): %w", err)
	}
	deps := map[string]modDep{}
	for _, l := range strings.Split(string(b), "\n") {
		mod, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		var d []string
		for _, p := range strings.Fields(rest) {
			d = append(d, moduleName(p))
		}
		deps[moduleName(mod)] = modDep{path: mod, deps: d}
	}
	if len(deps) == 0 {
		return nil, fmt.Errorf("%s lists no modules", file)
	}
	return deps, nil
}

type modDep struct {
	path string
	deps []string // names; modules.dep lists the whole closure
}

// resolveModules orders the closure of names: a depth-first walk emits
// each module after its dependencies.
func resolveModules(names []string, deps map[string]modDep, builtin map[string]bool, release string) ([]Module, error) {
	var out []Module
	state := map[string]int{} // 1: visiting, 2: done
	var visit func(n, from string) error
	visit = func(n, from string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", n)
		case 2:
			return nil
		}
		d, ok := deps[n]
		if !ok {
			if builtin[n] {
				state[n] = 2
				return nil
			}
			if from != "" {
				return fmt.Errorf("module %s (needed by %s) is not in %s's modules.dep", n, from, release)
			}
			return fmt.Errorf("module %s is neither a module nor built into %s", n, release)
		}
		state[n] = 1
		sorted := append([]string(nil), d.deps...)
		sort.Strings(sorted)
		for _, dep := range sorted {
			if err := visit(dep, n); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, Module{Name: n, Path: d.path})
		return nil
	}
	for _, n := range names {
		if err := visit(moduleName(n), ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// runOutput runs a host command and returns its stdout; a failure includes
// the command line and its stderr.
func runOutput(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
		}
		return string(out), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}
