package vm

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/net/sched/sch_ingress.ko.xz": "sch_ingress",
		"kernel/drivers/net/veth.ko":         "veth",
		"kernel/net/sched/cls-bpf.ko.zst":    "cls_bpf",
		"sch-ingress":                        "sch_ingress",
		"bridge":                             "bridge",
	} {
		if got := moduleName(in); got != want {
			t.Errorf("moduleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveModules(t *testing.T) {
	dep := filepath.Join(t.TempDir(), "modules.dep")
	err := os.WriteFile(dep, []byte(strings.Join([]string{
		"kernel/drivers/net/veth.ko.xz:",
		"kernel/net/bridge/bridge.ko.xz: kernel/net/802/stp.ko.xz kernel/net/llc/llc.ko.xz",
		"kernel/net/802/stp.ko.xz: kernel/net/llc/llc.ko.xz",
		"kernel/net/llc/llc.ko.xz:",
		"kernel/net/xfrm/xfrm_user.ko.xz: kernel/net/xfrm/xfrm_algo.ko.xz",
		"kernel/net/xfrm/xfrm_algo.ko.xz:",
		"kernel/a.ko: kernel/b.ko",
		"kernel/b.ko: kernel/a.ko",
		"",
	}, "\n")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	deps, err := parseModulesDep(dep)
	if err != nil {
		t.Fatal(err)
	}
	builtin := map[string]bool{"tun": true}
	mods, err := resolveModules([]string{"veth", "bridge", "tun", "xfrm-user", "stp"}, deps, builtin, "6.1.0-1-amd64")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.Name+"="+m.Path)
	}
	want := []string{
		"veth=kernel/drivers/net/veth.ko.xz",
		"llc=kernel/net/llc/llc.ko.xz",
		"stp=kernel/net/802/stp.ko.xz",
		"bridge=kernel/net/bridge/bridge.ko.xz",
		"xfrm_algo=kernel/net/xfrm/xfrm_algo.ko.xz",
		"xfrm_user=kernel/net/xfrm/xfrm_user.ko.xz",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolved\n%s\nwant (dependencies first, built-in tun left out, each once)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := resolveModules([]string{"nosuch"}, deps, builtin, "6.1.0-1-amd64"); err == nil || !strings.Contains(err.Error(), "nosuch is neither a module nor built into 6.1.0-1-amd64") {
		t.Errorf("unknown module: %v", err)
	}
	if _, err := resolveModules([]string{"a"}, deps, builtin, "r"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("dependency cycle: %v", err)
	}
}

func TestResolveAlias(t *testing.T) {
	deps := map[string]modDep{"crc32c_intel": {}, "crc32c_generic": {}, "veth": {}}
	aliases := parseAliases(strings.Join([]string{
		"alias crypto-crc32c crc32c_intel",
		"alias crypto-crc32c crc32c_generic",
		"alias pci:v00008086d*sv*sd*bc*sc*i* e1000e",
		"alias rtnl-link-veth veth",
		"alias gone nosuchmodule",
	}, "\n"))
	for in, want := range map[string]string{
		"crypto-crc32c":  "crc32c_generic", // generic: works on any CPU
		"rtnl-link-veth": "veth",
		"veth":           "veth",
		"gone":           "gone", // its module does not exist: left for resolveModules to report
		"unknown":        "unknown",
	} {
		if got := resolveAlias(in, deps, nil, aliases); got != want {
			t.Errorf("resolveAlias(%q) = %q, want %q", in, got, want)
		}
	}
	if _, ok := aliases["pci:v00008086d*sv*sd*bc*sc*i*"]; ok {
		t.Error("wildcard aliases must be left out")
	}
}

func TestReleaseOrder(t *testing.T) {
	if !releaseLess("6.1.0-9-amd64", "6.1.0-56-amd64") || releaseLess("6.1.0-56-amd64", "6.1.0-9-amd64") {
		t.Error("6.1.0-9 must sort before 6.1.0-56")
	}
	if !releaseLess("6.12.9+deb12-amd64", "6.12.117+deb12-amd64") {
		t.Error("6.12.9 must sort before 6.12.117")
	}
	if !sameSeries("6.1.0-56-amd64", "6.1") || sameSeries("6.12.117+deb12-amd64", "6.1") || sameSeries("6.1.0-56-cloud-amd64", "6.1") != false {
		t.Error("sameSeries: 6.1.0-56-amd64 is 6.1; 6.12.x and the cloud flavour are not")
	}
}

// TestKernelResolveModules runs ResolveModules on a fake unpacked kernel:
// aliases, optional names, built-in modules.
func TestKernelResolveModules(t *testing.T) {
	k := &Kernel{Release: "6.1.0-1-amd64", Root: t.TempDir()}
	if err := os.MkdirAll(k.ModulesDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"modules.dep":     "kernel/lib/libcrc32c.ko:\nkernel/crypto/crc32c_generic.ko:\nkernel/net/netfilter/nf_tables.ko: kernel/lib/libcrc32c.ko\n",
		"modules.builtin": "kernel/drivers/net/tun.ko\n",
		"modules.alias":   "alias crypto-crc32c crc32c_generic\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(k.ModulesDir(), name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mods, err := k.ResolveModules([]string{"crypto-crc32c", "nf_tables", "nft_objref?", "tun"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mods {
		got = append(got, m.Name)
	}
	if strings.Join(got, " ") != "crc32c_generic libcrc32c nf_tables" {
		t.Errorf("modules %v, want crc32c_generic libcrc32c nf_tables (nft_objref optional and absent, tun built in)", got)
	}
	if _, err := k.ResolveModules([]string{"nft_objref"}); err == nil {
		t.Error("a missing module without ? is not an error")
	}
}

// writeTree creates files (path -> content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, text := range files {
		f := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKernelLayouts finds the kernel, modules and config of both package
// layouts: Debian's 6.x (boot/vmlinuz-R, boot/config-R, lib/modules/R) and
// 7.x (usr/lib/modules/R/{vmlinuz,config}, the modules beside them), by the
// files alone.
func TestKernelLayouts(t *testing.T) {
	old := t.TempDir()
	writeTree(t, old, map[string]string{
		"boot/vmlinuz-6.1.0-57-amd64":                  "kernel",
		"boot/config-6.1.0-57-amd64":                   "CONFIG_NETFILTER_NETLINK=m\nCONFIG_LOCALVERSION=\"\"\n",
		"lib/modules/6.1.0-57-amd64/kernel/veth.ko.xz": "",
	})
	neu := t.TempDir()
	writeTree(t, neu, map[string]string{
		"usr/lib/modules/7.3.4+deb13-amd64/vmlinuz":             "kernel",
		"usr/lib/modules/7.3.4+deb13-amd64/config":              "CONFIG_NETFILTER_NETLINK=y\n",
		"usr/lib/modules/7.3.4+deb13-amd64/kernel/veth.ko.xz":   "",
		"usr/share/doc/linux-image-7.3.4+deb13-amd64/changelog": "",
	})
	shell := t.TempDir()
	writeTree(t, shell, map[string]string{"usr/share/lintian/overrides/linux-image-7.3.4+deb13-amd64": ""})
	two := t.TempDir()
	writeTree(t, two, map[string]string{"boot/vmlinuz-6.1.0-1-amd64": "", "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz": ""})

	for _, c := range []struct {
		root, release, vmlinuz, modules, netlink string
	}{
		{old, "6.1.0-57-amd64", "boot/vmlinuz-6.1.0-57-amd64", "lib/modules/6.1.0-57-amd64", "m"},
		{neu, "7.3.4+deb13-amd64", "usr/lib/modules/7.3.4+deb13-amd64/vmlinuz", "usr/lib/modules/7.3.4+deb13-amd64", "y"},
	} {
		r, err := releaseOf(c.root)
		if err != nil || r != c.release {
			t.Errorf("releaseOf: %q, %v; want %s", r, err, c.release)
			continue
		}
		k := &Kernel{Release: r, Root: c.root}
		if got := k.Vmlinuz(); got != filepath.Join(c.root, c.vmlinuz) {
			t.Errorf("%s: Vmlinuz %s, want %s", r, got, c.vmlinuz)
		}
		if got := k.ModulesDir(); got != filepath.Join(c.root, c.modules) {
			t.Errorf("%s: ModulesDir %s, want %s", r, got, c.modules)
		}
		if v, err := k.Config("NETFILTER_NETLINK"); err != nil || v != c.netlink {
			t.Errorf("%s: CONFIG_NETFILTER_NETLINK %q, %v; want %s", r, v, err, c.netlink)
		}
		if err := linkModules(c.root, r); err != nil {
			t.Errorf("%s: linkModules: %v", r, err)
		}
		if st, err := os.Stat(filepath.Join(c.root, "lib", "modules", r, "kernel", "veth.ko.xz")); err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s: depmod -b would not find lib/modules/%s: %v", r, r, err)
		}
		// Still found the same way through the link.
		if _, err := os.Stat(k.Vmlinuz()); err != nil {
			t.Error(err)
		}
	}
	if target, err := os.Readlink(filepath.Join(neu, "lib")); err != nil || target != "usr/lib" {
		t.Errorf("7.x layout: lib -> %q, %v; want lib -> usr/lib", target, err)
	}
	if _, err := releaseOf(shell); !errors.Is(err, errNoKernel) {
		t.Errorf("a dependency package: %v, want errNoKernel", err)
	}
	if _, err := releaseOf(two); err == nil || errors.Is(err, errNoKernel) {
		t.Errorf("two kernels: %v, want an error", err)
	}
}

// TestBuiltinModinfo: from Debian's 7.x kernels on, nfnetlink is no module
// but part of the built-in "netfilter" object, which only
// modules.builtin.modinfo names with nfnetlink's alias; DefaultModules
// names it by that alias, which 6.x's modules.alias gives to nfnetlink.ko.
func TestBuiltinModinfo(t *testing.T) {
	modinfo := strings.Join([]string{
		"netfilter.description=Netfilter messages via netlink socket",
		"netfilter.alias=net-pf-16-proto-12",
		"netfilter.file=net/netfilter/netfilter",
		"crc32.license=GPL",
		"unix.alias=net-pf-1",
		"bad-record",
		"",
	}, "\x00")
	names, aliases := parseBuiltinModinfo([]byte(modinfo))
	if strings.Join(names, " ") != "netfilter crc32 unix" || strings.Join(aliases["net-pf-16-proto-12"], " ") != "netfilter" {
		t.Errorf("modinfo: names %v, aliases %v", names, aliases)
	}

	neu := &Kernel{Release: "7.3.4+deb13-amd64", Root: t.TempDir()}
	writeTree(t, neu.Root, map[string]string{
		"usr/lib/modules/7.3.4+deb13-amd64/vmlinuz":                 "",
		"usr/lib/modules/7.3.4+deb13-amd64/modules.builtin":         "kernel/net/netfilter/netfilter.ko\nkernel/lib/crc/crc32.ko\n",
		"usr/lib/modules/7.3.4+deb13-amd64/modules.builtin.modinfo": modinfo,
		"usr/lib/modules/7.3.4+deb13-amd64/modules.dep":             "kernel/drivers/net/veth.ko.xz:\nkernel/net/netfilter/nf_conntrack_netlink.ko.xz:\n",
		"usr/lib/modules/7.3.4+deb13-amd64/modules.alias":           "alias rtnl-link-veth veth\n",
	})
	mods, err := neu.ResolveModules([]string{"veth", "net-pf-16-proto-12", "nf_conntrack_netlink", "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) != 2 || mods[0].Name != "veth" || mods[1].Name != "nf_conntrack_netlink" {
		t.Errorf("7.x modules %+v, want veth and nf_conntrack_netlink (NETLINK_NETFILTER and unix built in)", mods)
	}
	if _, err := neu.ResolveModules([]string{"nfnetlink"}); err == nil || !strings.Contains(err.Error(), "nfnetlink is neither a module nor built into 7.3.4+deb13-amd64") {
		t.Errorf("nfnetlink by name on 7.x: %v", err)
	}

	old := &Kernel{Release: "6.1.0-57-amd64", Root: t.TempDir()}
	writeTree(t, old.Root, map[string]string{
		"boot/vmlinuz-6.1.0-57-amd64":                "",
		"lib/modules/6.1.0-57-amd64/modules.builtin": "kernel/net/unix/unix.ko\n",
		"lib/modules/6.1.0-57-amd64/modules.dep":     "kernel/net/netfilter/nfnetlink.ko:\n",
		"lib/modules/6.1.0-57-amd64/modules.alias":   "alias net-pf-16-proto-12 nfnetlink\n",
	})
	mods, err = old.ResolveModules([]string{"net-pf-16-proto-12"})
	if err != nil || len(mods) != 1 || mods[0].Name != "nfnetlink" {
		t.Errorf("6.x NETLINK_NETFILTER: %+v, %v; want the nfnetlink module", mods, err)
	}
	if !slices.Contains(DefaultModules, "net-pf-16-proto-12") {
		t.Error("DefaultModules must name NETLINK_NETFILTER by its alias")
	}
}

// TestNewestCache: entries fetched as newest are found offline and pruned
// when a newer one comes; a series' entries are left alone.
func TestNewestCache(t *testing.T) {
	cache := t.TempDir()
	entry := func(pkg, version, release string, newest bool) *Kernel {
		root := filepath.Join(cache, pkg+"_"+version)
		marker := "package=" + pkg + "\nversion=" + version + "\nrelease=" + release + "\n"
		if newest {
			marker += "newest=1\n"
		}
		writeTree(t, root, map[string]string{
			"usr/lib/modules/" + release + "/vmlinuz": "",
			completeMarker: marker,
		})
		k, err := loadCached(root, NewestSpec)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	entry("linux-image-7.2.12+deb13-amd64", "7.2.12-1~bpo13+1", "7.2.12+deb13-amd64", true)
	series := entry("linux-image-7.1.3+deb13-amd64", "7.1.3-1~bpo13+1", "7.1.3+deb13-amd64", false)
	if k := newestCached(cache, NewestSpec); k == nil || k.Release != "7.2.12+deb13-amd64" {
		t.Fatalf("newest cached: %+v", k)
	}
	k := entry("linux-image-7.3.4+deb13-amd64", "7.3.4-1~bpo13+1", "7.3.4+deb13-amd64", true)
	if k := newestCached(cache, NewestSpec); k == nil || k.Release != "7.3.4+deb13-amd64" {
		t.Fatalf("newest cached: %+v", k)
	}
	pruneNewest(cache, k, io.Discard)
	left, _ := filepath.Glob(filepath.Join(cache, "linux-image-*"))
	if len(left) != 2 || !slices.Contains(left, k.Root) || !slices.Contains(left, series.Root) {
		t.Errorf("after pruning: %v, want 7.3.4 and the 7.1 series' entry", left)
	}
	if k := newestCached(cache, "7.1"); k == nil || k.Release != "7.1.3+deb13-amd64" {
		t.Errorf("7.1 cached: %+v", k)
	}
}
