package vm

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	// Each pair: a < b.
	for _, c := range [][2]string{
		{"7.2.13-1", "7.3.4-1~bpo13+1"},
		{"6.1.176-1", "6.1.192-3"},
		{"6.12.95-1~bpo12+1", "6.12.118-1~deb12u1"},
		{"6.12.118-1~deb12u1", "6.12.118-1"},
		{"1.0~rc1", "1.0"},
		{"1.0", "1.0+b1"},
		{"1.0", "1.0a"},
		{"1.0a", "1.0+"},
		{"2.0", "1:0.1"},
		{"1.2", "1.10"},
		{"1.0-1", "1.0-1.1"},
		{"1.09", "1.10"},
		{"6.1.0-9", "6.1.0-56"},
	} {
		if got := compareVersions(c[0], c[1]); got >= 0 {
			t.Errorf("compareVersions(%q, %q) = %d, want < 0", c[0], c[1], got)
		}
		if got := compareVersions(c[1], c[0]); got <= 0 {
			t.Errorf("compareVersions(%q, %q) = %d, want > 0", c[1], c[0], got)
		}
	}
	for _, v := range []string{"7.3.4-1~bpo13+1", "1:2.0", "0"} {
		if compareVersions(v, v) != 0 {
			t.Errorf("%q != itself", v)
		}
	}
	if compareVersions("1.0", "1.00") != 0 || compareVersions("0:1.0", "1.0") != 0 {
		t.Error("1.0, 1.00 and 0:1.0 are the same version")
	}
}

const stanzas = `Package: linux-image-amd64
Source: linux-signed-amd64 (7.3.4+1~bpo13+1)
Version: 7.3.4-1~bpo13+1
Depends: linux-base-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1),
 linux-modules-amd64 (= 7.3.4-1~bpo13+1)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel.

Package: linux-image-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), kmod:any (>= 1)
Pre-Depends: linux-base (>= 4.17~)
`

func TestParseStanzas(t *testing.T) {
	pkgs := parseStanzas(stanzas)
	if len(pkgs) != 2 {
		t.Fatalf("%d stanzas, want 2: %+v", len(pkgs), pkgs)
	}
	meta, img := pkgs[0], pkgs[1]
	if meta.Name != "linux-image-amd64" || meta.Version != "7.3.4-1~bpo13+1" || !strings.HasSuffix(meta.Depends, ", linux-modules-amd64 (= 7.3.4-1~bpo13+1)") {
		t.Errorf("meta package (Depends continued on the next line): %+v", meta)
	}
	deps := parseDepends(img.Depends)
	if len(deps) != 5 || len(deps[0]) != 3 || deps[0][1] != (debDep{"initramfs-tools", ">=", "0.120+deb8u2"}) || deps[4][0] != (debDep{"kmod", ">=", "1"}) {
		t.Errorf("Depends parsed as %+v", deps)
	}
	got := exactDeps(img.Depends, img.Version)
	want := []string{"linux-base-7.3.4+deb13-amd64", "linux-binary-7.3.4+deb13-amd64", "linux-modules-7.3.4+deb13-amd64"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exactDeps = %v, want %v", got, want)
	}
	if got := exactDeps(img.Depends, "7.3.3-1"); len(got) != 0 {
		t.Errorf("exactDeps of another version = %v, want none", got)
	}
}
