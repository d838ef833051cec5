package vm

import (
	"os"
	"path/filepath"
	"reflect"
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
