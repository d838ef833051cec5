package vm

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pkg(suite, name, version, depends string) debPackage {
	return debPackage{Name: name, Version: version, Depends: depends, Suite: suite}
}

// bookwormFamily is what bookworm's suites had in December 2026.
var bookwormFamily = []debPackage{
	pkg("bookworm", "linux-image-amd64", "6.1.176-1", "linux-image-6.1.0-50-amd64 (= 6.1.176-1)"),
	pkg("bookworm", "linux-image-6.1.0-50-amd64", "6.1.176-1", "kmod, linux-base (>= 4.3~)"),
	pkg("bookworm", "linux-image-6.1.0-50-amd64-unsigned", "6.1.176-1", ""),
	pkg("bookworm", "linux-image-6.1.0-50-cloud-amd64", "6.1.176-1", ""),
	pkg("bookworm-security", "linux-image-amd64", "6.1.192-3", "linux-image-6.1.0-57-amd64 (= 6.1.192-3)"),
	pkg("bookworm-security", "linux-image-6.1.0-57-amd64", "6.1.192-3", ""),
	pkg("bookworm-security", "linux-image-6.12-amd64", "6.12.118-1~deb12u1", "linux-image-6.12.118+deb12-amd64 (= 6.12.118-1~deb12u1)"),
	pkg("bookworm-security", "linux-image-6.12.118+deb12-amd64", "6.12.118-1~deb12u1", ""),
	pkg("bookworm-backports", "linux-image-amd64", "6.12.95-1~bpo12+1", "linux-image-6.12.95+deb12-amd64 (= 6.12.95-1~bpo12+1)"),
	pkg("bookworm-backports", "linux-image-6.12.95+deb12-amd64", "6.12.95-1~bpo12+1", ""),
	pkg("bookworm-backports", "linux-image-6.10.11+bpo-amd64", "6.10.11-1~bpo12+1", ""),
}

// newestFamily is trixie-backports and unstable.
var newestFamily = []debPackage{
	pkg("trixie-backports", "linux-image-amd64", "7.3.4-1~bpo13+1", "linux-base-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)"),
	pkg("trixie-backports", "linux-image-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", ""),
	pkg("trixie-backports", "linux-image-7.3.4+deb13-rt-amd64", "7.3.4-1~bpo13+1", ""),
	pkg("trixie-backports", "linux-image-7.2.12+deb13-amd64", "7.2.12-1~bpo13+1", ""),
	pkg("unstable", "linux-image-amd64", "7.2.13-1", "linux-image-7.2.13+deb14-amd64 (= 7.2.13-1)"),
	pkg("unstable", "linux-image-7.2.13+deb14-amd64", "7.2.13-1", ""),
	pkg("unstable", "linux-image-7.2.13+deb14-amd64-unsigned", "7.2.13-1", ""),
	pkg("unstable", "linux-image-7.3.4+deb13-cloud-amd64", "7.9.0-1", ""), // another flavour, however new
}

func TestPickSeries(t *testing.T) {
	for _, c := range []struct {
		series string
		pkgs   []debPackage
		want   string // name=version@suite, "" for none
	}{
		{"6.1", bookwormFamily, "linux-image-6.1.0-57-amd64=6.1.192-3@bookworm-security"},
		{"6.12", bookwormFamily, "linux-image-6.12.118+deb12-amd64=6.12.118-1~deb12u1@bookworm-security"},
		{"6.10", bookwormFamily, "linux-image-6.10.11+bpo-amd64=6.10.11-1~bpo12+1@bookworm-backports"}, // no meta package: the kernel itself
		{"6.16", bookwormFamily, ""},
		{"7.3", newestFamily, "linux-image-7.3.4+deb13-amd64=7.3.4-1~bpo13+1@trixie-backports"},
		{"7.2", newestFamily, "linux-image-7.2.13+deb14-amd64=7.2.13-1@unstable"},
	} {
		got := ""
		if p, ok := pickSeries(c.series, c.pkgs); ok {
			got = p.Name + "=" + p.Version + "@" + p.Suite
		}
		if got != c.want {
			t.Errorf("series %s: %q, want %q", c.series, got, c.want)
		}
	}
}

func TestPickNewest(t *testing.T) {
	p, ok := pickNewest(newestFamily)
	if !ok || p.Name != "linux-image-7.3.4+deb13-amd64" || p.Suite != "trixie-backports" {
		t.Errorf("newest: %+v, want linux-image-7.3.4+deb13-amd64 of trixie-backports", p)
	}
	// Signed before unsigned at the same version.
	p, ok = pickNewest(newestFamily[4:7])
	if !ok || p.Name != "linux-image-7.2.13+deb14-amd64" {
		t.Errorf("newest of unstable: %+v, want the signed linux-image-7.2.13+deb14-amd64", p)
	}
	p, ok = pickNewest([]debPackage{pkg("unstable", "linux-image-7.2.13+deb14-amd64-unsigned", "7.2.13-1", "")})
	if !ok || p.Name != "linux-image-7.2.13+deb14-amd64-unsigned" {
		t.Errorf("only an unsigned kernel: %+v", p)
	}
	if _, ok := pickNewest([]debPackage{newestFamily[0], newestFamily[2], newestFamily[7]}); ok {
		t.Error("a meta package, rt or cloud kernel is not a newest kernel")
	}
	if p, ok := pickNamed("linux-image-6.1.0-50-amd64", bookwormFamily); !ok || p.Version != "6.1.176-1" {
		t.Errorf("named: %+v", p)
	}
}

func TestKernelRelease(t *testing.T) {
	for name, want := range map[string]string{
		"linux-image-6.1.0-57-amd64":                "6.1.0-57-amd64",
		"linux-image-6.1.0-57-amd64-unsigned":       "6.1.0-57-amd64",
		"linux-image-7.3.4+deb13-amd64":             "7.3.4+deb13-amd64",
		"linux-image-6.12.118+deb12-amd64":          "6.12.118+deb12-amd64",
		"linux-image-amd64":                         "",
		"linux-image-6.12-amd64":                    "",
		"linux-image-7.3.4+deb13-rt-amd64":          "",
		"linux-image-7.3.4+deb13-cloud-amd64":       "",
		"linux-image-7.3.4+deb13-amd64-dbg":         "",
		"linux-image-amd64-signed-template":         "",
		"linux-binary-7.3.4+deb13-amd64":            "",
		"linux-image-6.1.0-57-cloud-amd64-unsigned": "",
	} {
		if got := kernelRelease(name); got != want {
			t.Errorf("kernelRelease(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestAptConfig(t *testing.T) {
	conf := aptConfig("/c/apt/unstable", "/c/apt/empty", "/c/apt/status", true, []string{`Acquire::http::Proxy "http://p:3128/";`})
	for _, want := range []string{
		`Dir::Etc::Main "/dev/null";`,
		`Dir::Etc::Parts "/c/apt/empty";`,
		`Dir::Etc::SourceList "/c/apt/unstable/sources.list";`,
		`Dir::Etc::SourceParts "/c/apt/empty";`,
		`Dir::State::Lists "/c/apt/unstable/lists";`,
		`Dir::State::status "/c/apt/status";`,
		`Dir::Cache "/c/apt/unstable/cache";`,
		`APT::Architecture "amd64";`,
		`Acquire::Check-Valid-Until "false";`,
		`APT::Sandbox::User "root";`,
		`Acquire::http::Proxy "http://p:3128/";`,
	} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("apt.conf lacks %s:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "/etc/apt") || strings.Contains(conf, "/var/lib/apt") {
		t.Errorf("apt.conf names the machine's apt:\n%s", conf)
	}
	if strings.Contains(aptConfig("/d", "/e", "/s", false, nil), "Sandbox") {
		t.Error("not root: apt's own sandbox user is left alone")
	}
	if got := sourcesLine("bookworm-security", "http://mirror.test/debian-security", "/k.gpg"); got != "deb [signed-by=/k.gpg] http://mirror.test/debian-security bookworm-security main\n" {
		t.Errorf("sources line %q", got)
	}
	got := parseAptConfigShell([]byte("HTTP='http://proxy:3128/'\nHTTPS=''\nOTHER='x'\n"))
	if strings.Join(got, "|") != `Acquire::http::Proxy "http://proxy:3128/";` {
		t.Errorf("proxy lines %q", got)
	}
	for _, fam := range append(seriesFamilies, newestSuites) {
		for _, s := range fam {
			if _, ok := suiteByName(s); !ok {
				t.Errorf("suite %s is not in debianSuites", s)
			}
		}
	}
}

// fakeAPT installs apt-get and apt-cache stand-ins first in PATH: they
// serve root/SUITE/Packages (a suite without one fails to update) and the
// .deb files in root/SUITE/debs, and log every call to root/calls.
// The stand-ins are shell scripts using awk, sed and sort: without them
// the test skips.
func fakeAPT(t *testing.T, root string) {
	t.Helper()
	for _, c := range []string{"awk", "sed", "sort"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skip(err)
		}
	}
	bin := filepath.Join(root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
suitedir=$(dirname "$APT_CONFIG")
suite=$(basename "$suitedir")
echo "$suite $(basename "$0") $*" >>"$FAKEAPT/calls"
case "$(basename "$0") $1" in
"apt-get update")
	[ -f "$FAKEAPT/$suite/Packages" ] || { echo "E: cannot reach $suite" >&2; exit 100; }
	cp "$FAKEAPT/$suite/Packages" "$suitedir/lists/fake_dists_${suite}_main_binary-amd64_Packages" ;;
"apt-cache pkgnames")
	sed -n "s/^Package: \($2.*\)/\1/p" "$suitedir"/lists/*_Packages | sort -u ;;
"apt-cache show")
	shift
	awk -v names=" $* " 'BEGIN { RS = "" } { split($0, l, "\n"); sub(/^Package: /, "", l[1]); if (index(names, " " l[1] " ")) print $0 "\n" }' "$suitedir"/lists/*_Packages ;;
"apt-get download")
	shift
	for a; do
		case "$a" in -*) continue ;; esac
		cp "$FAKEAPT/$suite/debs/${a%%=*}.deb" . || exit 100
	done ;;
*) echo "fake apt: $0 $*" >&2; exit 1 ;;
esac
`
	for _, name := range []string{"apt-get", "apt-cache"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FAKEAPT", root)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	keyring := filepath.Join(root, "keyring.gpg")
	if err := os.WriteFile(keyring, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	old := DebianKeyring
	DebianKeyring = keyring
	t.Cleanup(func() { DebianKeyring = old })
	proxyOnce.Do(func() {}) // not the machine's apt-config
	// Nor its apt sources.
	t.Setenv(EnvDebianMirror, "http://mirror.test/debian")
	t.Setenv(EnvSecurityMirror, "http://mirror.test/debian-security")
	setMachineAptDir(t, t.TempDir())
}

// setMachineAptDir points the apt repositories made from now on at the
// apt sources under dir.
func setMachineAptDir(t *testing.T, dir string) {
	t.Helper()
	old := machineAptDir
	machineAptDir = dir
	t.Cleanup(func() { machineAptDir = old })
}

// writePackages writes a suite's Packages list for fakeAPT.
func writePackages(t *testing.T, root, suite string, pkgs ...debPackage) {
	t.Helper()
	var b strings.Builder
	for _, p := range pkgs {
		b.WriteString("Package: " + p.Name + "\nVersion: " + p.Version + "\n")
		if p.Depends != "" {
			b.WriteString("Depends: " + p.Depends + "\n")
		}
		b.WriteString("Description: test\n\n")
	}
	if err := os.MkdirAll(filepath.Join(root, suite, "debs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, suite, "Packages"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func calls(t *testing.T, root string) string {
	b, _ := os.ReadFile(filepath.Join(root, "calls"))
	return string(b)
}

// TestResolveKernelFakeAPT resolves specs through the runner's apt with
// stand-ins for apt-get and apt-cache: only the suites a spec needs are
// updated, once; fresh lists are not updated again; a suite that cannot
// be updated is skipped.
func TestResolveKernelFakeAPT(t *testing.T) {
	root := t.TempDir()
	fakeAPT(t, root)
	for _, s := range []string{"bookworm", "bookworm-security", "bookworm-backports"} {
		var ps []debPackage
		for _, p := range bookwormFamily {
			if p.Suite == s {
				ps = append(ps, p)
			}
		}
		writePackages(t, root, s, ps...)
	}
	writePackages(t, root, "trixie-backports", newestFamily[:4]...)
	writePackages(t, root, "unstable", newestFamily[4:]...)
	// bookworm-updates has no Packages: its update fails.
	cache := filepath.Join(root, "cache")
	ctx := context.Background()
	for spec, want := range map[string]string{
		"6.1":    "linux-image-6.1.0-57-amd64 6.1.192-3 bookworm-security 6.1.0-57-amd64",
		"6.12":   "linux-image-6.12.118+deb12-amd64 6.12.118-1~deb12u1 bookworm-security 6.12.118+deb12-amd64",
		"newest": "linux-image-7.3.4+deb13-amd64 7.3.4-1~bpo13+1 trixie-backports 7.3.4+deb13-amd64",
	} {
		res, err := ResolveKernel(ctx, cache, spec, io.Discard)
		if err != nil {
			t.Errorf("%s: %v", spec, err)
			continue
		}
		if got := strings.Join([]string{res.Package, res.Version, res.Suite, res.Release}, " "); got != want {
			t.Errorf("%s: %s, want %s", spec, got, want)
		}
	}
	log := calls(t, root)
	if n := strings.Count(log, "bookworm apt-get update"); n != 1 {
		t.Errorf("bookworm updated %d times, want once:\n%s", n, log)
	}
	if strings.Contains(log, "trixie apt-get") || strings.Contains(log, "trixie-security apt-get") {
		t.Errorf("trixie's lists were fetched, which none of the specs needs:\n%s", log)
	}
	if !strings.Contains(log, "bookworm-updates apt-get update") {
		t.Errorf("bookworm-updates was not tried:\n%s", log)
	}
	for _, f := range []string{"apt/bookworm/apt.conf", "apt/bookworm/sources.list", "apt/bookworm/updated", "apt/status", "apt/empty"} {
		if _, err := os.Stat(filepath.Join(cache, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := ResolveKernel(ctx, cache, "9.9", io.Discard); err == nil || !strings.Contains(err.Error(), "no Debian package found in bookworm, bookworm-security") {
		t.Errorf("9.9: %v", err)
	}
	if _, err := ResolveKernel(ctx, cache, "latest", io.Discard); err == nil {
		t.Error("latest is not a kernel spec")
	}

	// A new process (a fresh aptRepo) with lists younger than a day does
	// not update them.
	aptReposMu.Lock()
	delete(aptRepos, filepath.Join(cache, "apt"))
	aptReposMu.Unlock()
	os.Remove(filepath.Join(root, "calls"))
	if _, err := ResolveKernel(ctx, cache, "newest", io.Discard); err != nil {
		t.Fatal(err)
	}
	if log := calls(t, root); strings.Contains(log, "update") {
		t.Errorf("fresh lists were updated:\n%s", log)
	}
	// Lists older than a day are.
	old := time.Now().Add(-25 * time.Hour)
	os.Chtimes(filepath.Join(cache, "apt", "unstable", "updated"), old, old)
	aptReposMu.Lock()
	delete(aptRepos, filepath.Join(cache, "apt"))
	aptReposMu.Unlock()
	if _, err := ResolveKernel(ctx, cache, "newest", io.Discard); err != nil {
		t.Fatal(err)
	}
	if log := calls(t, root); !strings.Contains(log, "unstable apt-get update") || strings.Contains(log, "trixie-backports apt-get update") {
		t.Errorf("want unstable's day-old lists updated, trixie-backports' not:\n%s", log)
	}
}

// buildDeb builds a .deb with dpkg-deb from files (path -> content).
func buildDeb(t *testing.T, out, name, version, depends string, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	control := "Package: " + name + "\nVersion: " + version + "\nArchitecture: amd64\nMaintainer: test <test@example.org>\nDescription: test\n"
	if depends != "" {
		control += "Depends: " + depends + "\n"
	}
	files["DEBIAN/control"] = control
	writeTree(t, dir, files)
	if b, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "-b", dir, out).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -b: %v\n%s", err, b)
	}
}

// TestFetchKernelLayouts fetches a kernel of each layout through fakeAPT
// with real .deb files: 6.x's single linux-image package, and 7.x's
// linux-image dependency package whose kernel, modules and config come in
// the packages it pins (linux-binary, linux-modules, linux-base).
func TestFetchKernelLayouts(t *testing.T) {
	for _, c := range []string{"dpkg-deb", "depmod"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skip(err)
		}
	}
	root := t.TempDir()
	fakeAPT(t, root)
	const r7, v7 = "7.3.4+deb13-amd64", "7.3.4-1~bpo13+1"
	pin := " (= " + v7 + ")"
	writePackages(t, root, "trixie-backports",
		pkg("", "linux-image-amd64", v7, "linux-image-"+r7+pin),
		pkg("", "linux-image-"+r7, v7, "dracut | initramfs-tools, linux-base-"+r7+pin+", linux-binary-"+r7+pin+", linux-modules-"+r7+pin))
	writePackages(t, root, "unstable")
	debs := filepath.Join(root, "trixie-backports", "debs")
	buildDeb(t, filepath.Join(debs, "linux-image-"+r7+".deb"), "linux-image-"+r7, v7,
		"dracut | initramfs-tools, linux-base-"+r7+pin+", linux-binary-"+r7+pin+", linux-modules-"+r7+pin,
		map[string]string{"usr/share/doc/linux-image-" + r7 + "/x": ""})
	buildDeb(t, filepath.Join(debs, "linux-binary-"+r7+".deb"), "linux-binary-"+r7, v7, "linux-base-"+r7+pin,
		map[string]string{"usr/lib/modules/" + r7 + "/vmlinuz": "kernel"})
	buildDeb(t, filepath.Join(debs, "linux-modules-"+r7+".deb"), "linux-modules-"+r7, v7, "kmod, linux-base-"+r7+pin,
		map[string]string{"usr/lib/modules/" + r7 + "/kernel/README": ""})
	buildDeb(t, filepath.Join(debs, "linux-base-"+r7+".deb"), "linux-base-"+r7, v7, "",
		map[string]string{
			"usr/lib/modules/" + r7 + "/config":                  "CONFIG_NETFILTER_NETLINK=y\n",
			"usr/lib/modules/" + r7 + "/modules.builtin":         "kernel/net/netfilter/netfilter.ko\n",
			"usr/lib/modules/" + r7 + "/modules.builtin.modinfo": "netfilter.alias=net-pf-16-proto-12\x00",
		})

	const r6, v6 = "6.1.0-57-amd64", "6.1.192-3"
	writePackages(t, root, "bookworm",
		pkg("", "linux-image-amd64", v6, "linux-image-"+r6+" (= "+v6+")"),
		pkg("", "linux-image-"+r6, v6, "kmod, linux-base (>= 4.3~)"))
	buildDeb(t, filepath.Join(root, "bookworm", "debs", "linux-image-"+r6+".deb"), "linux-image-"+r6, v6, "kmod, linux-base (>= 4.3~)",
		map[string]string{
			"boot/vmlinuz-" + r6:                   "kernel",
			"boot/config-" + r6:                    "CONFIG_NETFILTER_NETLINK=m\n",
			"lib/modules/" + r6 + "/kernel/README": "",
		})

	cache := filepath.Join(root, "cache")
	ctx := context.Background()
	for _, c := range []struct{ spec, release, netlink string }{{"newest", r7, "y"}, {"6.1", r6, "m"}} {
		k, err := FetchKernel(ctx, cache, c.spec, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v\napt calls:\n%s", c.spec, err, calls(t, root))
		}
		if k.Release != c.release {
			t.Errorf("%s: release %s, want %s", c.spec, k.Release, c.release)
		}
		if b, err := os.ReadFile(k.Vmlinuz()); err != nil || string(b) != "kernel" {
			t.Errorf("%s: vmlinuz %s: %q, %v", c.spec, k.Vmlinuz(), b, err)
		}
		if _, err := os.Stat(filepath.Join(k.ModulesDir(), "modules.dep")); err != nil {
			t.Errorf("%s: depmod did not run: %v", c.spec, err)
		}
		if v, err := k.Config("NETFILTER_NETLINK"); err != nil || v != c.netlink {
			t.Errorf("%s: CONFIG_NETFILTER_NETLINK %q, %v", c.spec, v, err)
		}
	}
	k, err := FetchKernel(ctx, cache, "newest", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linux-image-" + r7, "linux-base-" + r7, "linux-binary-" + r7, "linux-modules-" + r7}
	if strings.Join(k.Packages, " ") != strings.Join(want, " ") || !k.Newest {
		t.Errorf("7.x entry: packages %v, newest %v; want %v, newest", k.Packages, k.Newest, want)
	}
	if b, a := k.builtinModules(); !b["netfilter"] || len(a["net-pf-16-proto-12"]) != 1 {
		t.Errorf("7.x built-in modules (from linux-base): %v, aliases %v", b, a)
	}
	if n := strings.Count(calls(t, root), "apt-get download"); n != 3 {
		t.Errorf("%d downloads (the second newest must come from the cache), want 3 (7.x: 2, 6.x: 1):\n%s", n, calls(t, root))
	}
}

func TestAptMessage(t *testing.T) {
	stderr := "E: Failed to fetch http://mirror.test/debian/dists/unstable/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\nE: Some index files failed to download. They have been ignored, or old ones used instead.\n"
	msg := aptMessage(stderr)
	if msg != "E: Failed to fetch http://mirror.test/debian/dists/unstable/InRelease Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)" {
		t.Errorf("message %q", msg)
	}
	if !unreachable(errors.New(msg)) || unreachable(errors.New("E: The repository 'x' does not have a Release file.")) {
		t.Error("unreachable: a refused connection is, a missing suite is not")
	}
	if aptMessage("W: something\n") != "W: something" {
		t.Error("without E: lines, the whole stderr")
	}
}
