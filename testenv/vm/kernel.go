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

// Kernel is a Debian kernel package unpacked in the cache.
type Kernel struct {
	// Spec is what the user asked for: a series ("6.1", "6.12") or a
	// package name.
	Spec string
	// Package is the Debian package, e.g. "linux-image-6.1.0-56-amd64".
	Package string
	// Version is the package version, e.g. "6.1.192-2".
	Version string
	// Release is the kernel release (`uname -r` in the guest), the name of
	// its directory under /lib/modules, e.g. "6.1.0-56-amd64".
	Release string
	// Root is the directory the package was unpacked into.
	Root string
}

// String names the kernel in logs and summaries.
func (k *Kernel) String() string { return k.Release }

// Vmlinuz is the path of the kernel image.
func (k *Kernel) Vmlinuz() string { return filepath.Join(k.Root, "boot", "vmlinuz-"+k.Release) }

// ModulesDir is the kernel's /lib/modules/RELEASE directory in the cache.
func (k *Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Release) }

// Config returns the value of CONFIG_NAME in the kernel's boot/config
// ("y", "m", a string, or "" when unset).
func (k *Kernel) Config(name string) (string, error) {
	f, err := os.Open(filepath.Join(k.Root, "boot", "config-"+k.Release))
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
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
// environment variable EBPFOVS_VM_CACHE overrides both.
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

// ResolvePackage finds the Debian package and version for spec with
// apt-cache (no network: it reads apt's lists). A series "X.Y" is resolved
// through a meta package: linux-image-X.Y-amd64 (e.g. 6.12 in
// bookworm-security or bookworm-backports) or linux-image-amd64 when it
// depends on an X.Y kernel (6.1 on bookworm). Anything else must be the
// name of a linux-image package.
func ResolvePackage(ctx context.Context, spec string) (pkg, version string, err error) {
	pkg = spec
	if seriesRE.MatchString(spec) {
		pkg = ""
		prefix := "linux-image-" + spec + "."
		for _, meta := range []string{"linux-image-" + spec + "-" + imageFlavor, "linux-image-" + imageFlavor} {
			deps, err := aptDepends(ctx, meta)
			if err != nil {
				continue // no such meta package
			}
			for _, d := range deps {
				if strings.HasPrefix(d, prefix) && strings.HasSuffix(d, "-"+imageFlavor) {
					pkg = d
					break
				}
			}
			if pkg != "" {
				break
			}
		}
		if pkg == "" {
			return "", "", fmt.Errorf("kernel %s: no Debian package found (apt-cache knows neither linux-image-%s-%s nor a linux-image-%s kernel behind linux-image-%s); check `apt-cache search linux-image-%s`, `apt-get update`, or enable the suite that has it (e.g. bookworm-backports)",
				spec, spec, imageFlavor, spec, imageFlavor, spec)
		}
	} else if !strings.HasPrefix(spec, "linux-image-") {
		return "", "", fmt.Errorf("kernel %q: want a series such as 6.1 or 6.12, or a linux-image-* package name", spec)
	}
	version, err = aptCandidate(ctx, pkg)
	if err != nil {
		return "", "", fmt.Errorf("kernel %s: %w", spec, err)
	}
	return pkg, version, nil
}

// aptDepends returns the Depends of pkg's candidate version.
func aptDepends(ctx context.Context, pkg string) ([]string, error) {
	out, err := runOutput(ctx, "", "apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-enhances", pkg)
	if err != nil {
		return nil, err
	}
	var deps []string
	for _, l := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(l), "Depends: "); ok {
			deps = append(deps, strings.Trim(d, "<>"))
		}
	}
	return deps, nil
}

// aptCandidate returns the version apt would install of pkg.
func aptCandidate(ctx context.Context, pkg string) (string, error) {
	out, err := runOutput(ctx, "", "apt-cache", "policy", pkg)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate: "); ok && v != "(none)" {
			return v, nil
		}
	}
	return "", fmt.Errorf("apt-cache policy %s: no candidate version (is the package in apt's lists? try apt-get update)", pkg)
}

// completeMarker is written last into a cache entry; entries without it
// are partial (an interrupted download) and are redone.
const completeMarker = ".ebpfovs-vm-complete"

// FetchKernel returns the kernel for spec from the cache in cacheDir,
// downloading and unpacking it first if needed. A cache entry is
// cacheDir/PACKAGE_VERSION: the unpacked package plus a modules.dep made by
// `depmod -b`. Fetching a newer kernel for a series removes the older
// entries of that series. Concurrent runs serialize on a lock in cacheDir.
// Progress goes to log.
//
// When apt-cache cannot resolve spec (e.g. apt's lists are missing), the
// newest complete cache entry of the same series is used, so cached kernels
// keep working offline.
func FetchKernel(ctx context.Context, cacheDir, spec string, log io.Writer) (*Kernel, error) {
	pkg, version, err := ResolvePackage(ctx, spec)
	if err != nil {
		if k := newestCached(cacheDir, spec); k != nil {
			fmt.Fprintf(log, "vmtest: %v; using the cached %s %s\n", err, k.Package, k.Version)
			return k, nil
		}
		return nil, err
	}
	entry := filepath.Join(cacheDir, pkg+"_"+strings.ReplaceAll(version, ":", "%3a"))
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
	if err := download(ctx, cacheDir, entry, pkg, version, log); err != nil {
		return nil, err
	}
	k, err := loadCached(entry, spec)
	if err != nil {
		return nil, err
	}
	if seriesRE.MatchString(spec) {
		pruneSeries(cacheDir, k, log)
	}
	return k, nil
}

// fetchTimeout bounds downloading, unpacking and depmod of one kernel
// (about 30 s on a CI host).
const fetchTimeout = 10 * time.Minute

// download fetches pkg=version with apt-get into a temporary directory of
// the cache, unpacks it, runs depmod and renames the result to entry.
func download(ctx context.Context, cacheDir, entry, pkg, version string, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	start := time.Now()
	fmt.Fprintf(log, "vmtest: downloading %s %s into %s\n", pkg, version, cacheDir)
	tmp, err := os.MkdirTemp(cacheDir, ".fetch-")
	if err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"download", "-q"}
	if os.Geteuid() == 0 {
		// apt drops to the _apt user, which cannot write into root's
		// cache; stay root for this download instead of warning.
		args = append(args, "-o", "APT::Sandbox::User=root")
	}
	if _, err := runOutput(ctx, tmp, "apt-get", append(args, pkg+"="+version)...); err != nil {
		return fmt.Errorf("download %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("download %s: apt-get download left %d .deb files", pkg, len(debs))
	}
	root := filepath.Join(tmp, "root")
	if _, err := runOutput(ctx, "", "dpkg-deb", "-x", debs[0], root); err != nil {
		return fmt.Errorf("unpack %s: %w", debs[0], err)
	}
	if err := os.Remove(debs[0]); err != nil {
		return err
	}
	release, err := releaseOf(root)
	if err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	// Debian's packages ship no modules.dep: the postinst runs depmod.
	if _, err := runOutput(ctx, "", "depmod", "-b", root, release); err != nil {
		return fmt.Errorf("%s: %w", pkg, err)
	}
	meta := fmt.Sprintf("package=%s\nversion=%s\nrelease=%s\n", pkg, version, release)
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
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	for _, e := range entries {
		old, err := loadCached(e, k.Spec)
		if err != nil || e == k.Root || !sameSeries(old.Release, k.Spec) {
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
		}
	}
	if k.Package == "" || k.Release == "" {
		return nil, fmt.Errorf("%s: bad cache marker", entry)
	}
	if _, err := os.Stat(k.Vmlinuz()); err != nil {
		return nil, err
	}
	return k, nil
}

// newestCached returns the complete cache entry of spec's series (or
// package) with the highest kernel release, or nil.
func newestCached(cacheDir, spec string) *Kernel {
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "linux-image-*"))
	var best *Kernel
	for _, e := range entries {
		k, err := loadCached(e, spec)
		if err != nil {
			continue
		}
		if seriesRE.MatchString(spec) {
			if !sameSeries(k.Release, spec) {
				continue
			}
		} else if k.Package != spec {
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

// releaseOf finds the single kernel release under root/lib/modules.
func releaseOf(root string) (string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("no lib/modules in the package: %w", err)
	}
	var rels []string
	for _, e := range ents {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+e.Name())); err == nil {
				rels = append(rels, e.Name())
			}
		}
	}
	if len(rels) != 1 {
		return "", fmt.Errorf("want one kernel with a boot/vmlinuz-RELEASE and lib/modules/RELEASE, found %v", rels)
	}
	return rels[0], nil
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
// it, a "generic" one if several do (it works on any CPU). Modules built
// into the kernel (modules.builtin) need no file and are left out; an
// unknown name is an error, unless it ends in "?" (optional: a module some
// kernels have and others merged into another one).
func (k *Kernel) ResolveModules(names []string) ([]Module, error) {
	depFile := filepath.Join(k.ModulesDir(), "modules.dep")
	deps, err := parseModulesDep(depFile)
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	aliases := map[string][]string{}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.alias")); err == nil {
		aliases = parseAliases(string(b))
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
