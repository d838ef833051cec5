package vm

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// Marker starts every line the guest's /init prints for the host.
const Marker = "EBPFOVS-VMTEST"

// DefaultModules are the kernel modules the tests need (Debian builds them
// as modules): veth pairs, clsact (sch_ingress) and cls_bpf for the tc
// attach mode, tap devices, the Linux bridge of testenv's baseline labs, and
// the NETLINK_XFRM and NETLINK_NETFILTER families, for which
// netlink.NewHandleAt opens a socket next to NETLINK_ROUTE (a host's
// modprobe loads them when the socket is opened; without them every
// testenv.NS.Handle fails with "protocol not supported"). NETLINK_NETFILTER
// is named by its alias net-pf-16-proto-12: the nfnetlink module up to
// Debian's 6.x kernels, built into the "netfilter" object from 7.x on (no
// module of that name is left). nf_tables,
// nft_ct, nft_objref (named counters; part of nf_tables since 6.2, hence
// optional), nf_conntrack and nf_conntrack_netlink serve testenv.KernelCT,
// the kernel's own conntrack as an oracle for the datapath's; their
// libcrc32c needs a crc32c implementation (the alias crypto-crc32c) at load
// time. nf_nat, nft_chain_nat (nftables' nat chains) and nft_nat (its snat
// and dnat statements) serve KernelCT.SetNAT, nf_nat as the oracle for the
// datapath's NAT; nft_masq (alias nft-expr-masq), the masquerade of the
// Neutron pair's router namespace. vxlan, geneve and ip_gre (gretap) serve
// the bridges' flow-based tunnel devices (tunnel ports). See Kernel.ResolveModules for aliases and the "?" of
// optional ones.
var DefaultModules = []string{
	"veth", "sch_ingress", "cls_bpf", "tun", "bridge", "xfrm_user", "net-pf-16-proto-12",
	"crypto-crc32c", "nf_tables", "nft_ct", "nft_objref?", "nf_conntrack", "nf_conntrack_netlink",
	"nf_nat", "nft_chain_nat", "nft_nat", "nft_masq", "vxlan", "geneve", "ip_gre",
}

// DefaultTools are the host commands the tests run (testenv/*.go,
// */*_test.go), copied into the guest's /usr/local/bin with their shared
// libraries, ahead of busybox's applets in PATH: iproute2's ip, tc and
// bridge, util-linux's nsenter, ethtool, iputils' ping, OpenBSD netcat and
// coreutils' readlink (busybox's takes a single file), nftables' nft
// (testenv.KernelCT, the Neutron pair's router) and dnsmasq (the Neutron
// pair's DHCP servers; its client is busybox's udhcpc).
var DefaultTools = []string{"ip", "tc", "bridge", "nsenter", "ethtool", "ping", "nc", "readlink", "nft", "dnsmasq"}

// hostEtcFiles are copied into the guest when the host has them: nft and
// libc resolve protocol and service names with them.
var hostEtcFiles = []string{"/etc/protocols", "/etc/services"}

// ImageSpec says what goes into a guest's initramfs.
type ImageSpec struct {
	// Kernel provides the modules.
	Kernel *Kernel
	// Modules are loaded at boot, with their dependencies; nil means
	// DefaultModules.
	Modules []string
	// Tools are host commands (names looked up in PATH, or absolute paths)
	// copied to /usr/local/bin; nil means DefaultTools.
	Tools []string
	// Busybox is a statically linked busybox; "" means /bin/busybox.
	Busybox string
	// Tests are run in this order.
	Tests []TestPackage
	// TestArgs are passed to every test binary after -test.v and
	// -test.timeout, e.g. "-test.run=TestLab".
	TestArgs []string
	// TestTimeout is each binary's -test.timeout.
	TestTimeout time.Duration
	// Parallel is how many test binaries run at once (0 means 1). Their
	// output lines interleave, each with its "[PKG] " prefix.
	Parallel int
	// Gzip compresses the image (to less than half). Under TCG the boot
	// time is the same either way: inflating costs the guest what reading
	// the larger file saves.
	Gzip bool
}

// Image describes a built initramfs.
type Image struct {
	Path    string
	Size    int64
	Modules []Module // loaded at boot, in order
	Files   int
}

//go:embed init.sh.tmpl
var initTemplate string

// guestModprobe is the kernel's modprobe in the guest (/init writes it to
// /proc/sys/kernel/modprobe): busybox's modprobe, which reports a request
// for a module that the kernel has but the image lacks (see unstagedFile).
// Requests for modules the kernel does not have at all fail silently, as
// on any host (6.1 asks for bpf_preload at every bpffs mount).
const guestModprobe = "/sbin/vmtest-modprobe"

// unstagedFile, in the guest's modules directory, lists the names and
// plain aliases of the kernel's modules that are not in the image.
const unstagedFile = "vmtest-unstaged"

const modprobeScript = `#!/bin/sh
/bin/busybox modprobe "$@" 2>/dev/null && exit 0
rc=$?
for last; do :; done
if grep -qxF -- "$last" "/lib/modules/$(uname -r)/` + unstagedFile + `" 2>/dev/null; then
	echo "` + Marker + ` note the kernel asked for module $last, which the image lacks: add it to vm.DefaultModules" >/dev/console
fi
exit $rc
`

// initPlan is the data of init.sh.tmpl.
type initPlan struct {
	Marker      string
	Modprobe    string
	Modules     []string // guest paths, in load order
	Workers     [][]TestPackage
	TestTimeout string
	TestArgs    []string
}

// InitScript renders the guest's /init for the given packages, modules
// (guest paths of .ko files in load order) and test arguments. The packages
// are dealt to parallel workers in turn (0 or 1: one after the other).
func InitScript(pkgs []TestPackage, modules []string, testArgs []string, testTimeout time.Duration, parallel int) ([]byte, error) {
	t, err := template.New("init").Funcs(template.FuncMap{"quote": shQuote}).Parse(initTemplate)
	if err != nil {
		return nil, fmt.Errorf("init.sh.tmpl: %w", err)
	}
	if parallel < 1 {
		parallel = 1
	}
	workers := make([][]TestPackage, min(parallel, len(pkgs)))
	for i, p := range pkgs {
		workers[i%len(workers)] = append(workers[i%len(workers)], p)
	}
	var b bytes.Buffer
	err = t.Execute(&b, initPlan{
		Marker:      Marker,
		Modprobe:    guestModprobe,
		Modules:     modules,
		Workers:     workers,
		TestTimeout: testTimeout.String(),
		TestArgs:    testArgs,
	})
	if err != nil {
		return nil, fmt.Errorf("init.sh.tmpl: %w", err)
	}
	return b.Bytes(), nil
}

var shSafe = regexp.MustCompile(`^[A-Za-z0-9_./=:,+-]+$`)

// shQuote single-quotes s for sh unless it has only safe characters; a
// quote inside is closed, backslash-escaped and reopened.
func shQuote(s string) string {
	if shSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// BuildInitramfs writes the initramfs described by spec to file.
func BuildInitramfs(ctx context.Context, file string, spec ImageSpec) (*Image, error) {
	if spec.Modules == nil {
		spec.Modules = DefaultModules
	}
	if spec.Tools == nil {
		spec.Tools = DefaultTools
	}
	if spec.Busybox == "" {
		spec.Busybox = "/bin/busybox"
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	var w io.Writer = bw
	var gz *gzip.Writer
	if spec.Gzip {
		gz, _ = gzip.NewWriterLevel(bw, gzip.BestSpeed)
		w = gz
	}
	c := newCPIOWriter(w)
	img := &Image{Path: file}

	if err := addBase(c); err != nil {
		return nil, err
	}
	if err := addBusybox(ctx, c, spec.Busybox); err != nil {
		return nil, err
	}
	if err := addTools(ctx, c, spec.Tools); err != nil {
		return nil, err
	}
	img.Modules, err = addModules(ctx, c, spec.Kernel, spec.Modules)
	if err != nil {
		return nil, err
	}
	if err := addTests(c, spec.Tests); err != nil {
		return nil, err
	}
	var modPaths []string
	for _, m := range img.Modules {
		modPaths = append(modPaths, guestModulePath(spec.Kernel, m))
	}
	script, err := InitScript(spec.Tests, modPaths, spec.TestArgs, spec.TestTimeout, spec.Parallel)
	if err != nil {
		return nil, err
	}
	if err := c.Bytes("/init", 0o755, script); err != nil {
		return nil, err
	}
	if err := c.Bytes(guestModprobe, 0o755, []byte(modprobeScript)); err != nil {
		return nil, err
	}
	if err := c.Close(); err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", file, err)
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return nil, fmt.Errorf("initramfs %s: %w", file, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("initramfs %s: %w", file, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	img.Size, img.Files = st.Size(), c.files
	return img, f.Close()
}

// addBase adds the directories, device nodes and /etc files every guest
// needs before /init mounts anything.
func addBase(c *cpioWriter) error {
	for _, d := range []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/root", "/etc", "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/var/tmp", "/mnt"} {
		perm := os.FileMode(0o755)
		if d == "/tmp" || d == "/var/tmp" {
			perm = 0o777
		}
		if err := c.Dir(d, perm); err != nil {
			return err
		}
	}
	// The kernel opens /dev/console for init before devtmpfs is mounted.
	if err := c.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := c.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return err
	}
	files := map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1 localhost vmtest\n",
		"/etc/hostname": "vmtest\n",
	}
	for _, p := range []string{"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/hostname"} {
		if err := c.Bytes(p, 0o644, []byte(files[p])); err != nil {
			return err
		}
	}
	for _, p := range hostEtcFiles {
		if _, err := os.Stat(p); err == nil {
			if err := c.HostFile(p, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// addBusybox adds a static busybox as /bin/busybox and a link for every
// applet at the path `busybox --list-full` gives.
func addBusybox(ctx context.Context, c *cpioWriter, bb string) error {
	if libs, err := sharedLibraries(ctx, bb); err != nil || len(libs) > 0 {
		return fmt.Errorf("%s must be a static busybox (apt-get install busybox-static): libraries %v, %v", bb, libs, err)
	}
	if err := c.HostFile("/bin/busybox", bb); err != nil {
		return err
	}
	out, err := runOutput(ctx, "", bb, "--list-full")
	if err != nil {
		return fmt.Errorf("busybox applets: %w", err)
	}
	for _, a := range strings.Fields(out) {
		p := "/" + a
		if c.Has(p) {
			continue
		}
		if err := c.Symlink(p, "/bin/busybox"); err != nil {
			return err
		}
	}
	if !c.Has("/bin/sh") {
		return fmt.Errorf("%s has no sh applet", bb)
	}
	return nil
}

// addTools copies host commands to /usr/local/bin with the shared
// libraries ldd lists, at the paths the dynamic loader looks for them.
func addTools(ctx context.Context, c *cpioWriter, tools []string) error {
	for _, t := range tools {
		p, err := exec.LookPath(t)
		if err != nil {
			return fmt.Errorf("tool %s for the guest: %w (scripts/install-vm-deps.sh installs it)", t, err)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("tool %s: %w", t, err)
		}
		if err := c.HostFile("/usr/local/bin/"+filepath.Base(t), real); err != nil {
			return err
		}
		libs, err := sharedLibraries(ctx, real)
		if err != nil {
			return fmt.Errorf("tool %s: %w", t, err)
		}
		for _, lib := range libs {
			if c.Has(lib) {
				continue
			}
			src, err := filepath.EvalSymlinks(lib)
			if err != nil {
				return fmt.Errorf("tool %s: library: %w", t, err)
			}
			if err := c.HostFile(lib, src); err != nil {
				return err
			}
		}
	}
	return nil
}

// lddLine matches "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
// and "/lib64/ld-linux-x86-64.so.2 (0x...)".
var lddLine = regexp.MustCompile(`^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)`)

// sharedLibraries lists the absolute paths of the libraries (and the
// dynamic loader) bin needs, from ldd; none for a static binary.
func sharedLibraries(ctx context.Context, bin string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "ldd", bin)
	out, err := cmd.CombinedOutput()
	if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %v: %s", bin, err, bytes.TrimSpace(out))
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "=> not found") {
			return nil, fmt.Errorf("ldd %s: %s", bin, strings.TrimSpace(l))
		}
		if m := lddLine.FindStringSubmatch(l); m != nil {
			libs = append(libs, m[1])
		}
	}
	return libs, nil
}

// guestModulePath is where module m is in the guest, uncompressed.
func guestModulePath(k *Kernel, m Module) string {
	return path.Join("/lib/modules", k.Release, uncompressedName(m.Path))
}

func uncompressedName(p string) string {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		p = strings.TrimSuffix(p, ext)
	}
	return p
}

// addModules adds the modules for names and their dependencies,
// uncompressed (busybox's insmod and kernels without
// CONFIG_MODULE_DECOMPRESS need plain .ko files), with a modules.dep and a
// modules.alias for them so that the kernel's own module requests
// (guestModprobe) find them too, and the unstagedFile.
func addModules(ctx context.Context, c *cpioWriter, k *Kernel, names []string) ([]Module, error) {
	mods, err := k.ResolveModules(names)
	if err != nil {
		return nil, err
	}
	deps, err := parseModulesDep(filepath.Join(k.ModulesDir(), "modules.dep"))
	if err != nil {
		return nil, err
	}
	var depFile, aliasFile strings.Builder
	staged := map[string]bool{}
	for _, m := range mods {
		data, err := readModule(ctx, filepath.Join(k.ModulesDir(), m.Path))
		if err != nil {
			return nil, err
		}
		if err := c.Bytes(guestModulePath(k, m), 0o644, data); err != nil {
			return nil, err
		}
		staged[m.Name] = true
		fmt.Fprintf(&depFile, "%s:", uncompressedName(m.Path))
		for _, d := range deps[m.Name].deps {
			if dd, ok := deps[d]; ok {
				fmt.Fprintf(&depFile, " %s", uncompressedName(dd.path))
			}
		}
		depFile.WriteString("\n")
	}
	var unstaged strings.Builder
	for name := range deps {
		if !staged[name] {
			unstaged.WriteString(name + "\n")
		}
	}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir(), "modules.alias")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) != 3 || f[0] != "alias" {
				continue
			}
			switch {
			case staged[moduleName(f[2])]:
				aliasFile.WriteString(l + "\n")
			case !strings.ContainsAny(f[1], "*?["):
				unstaged.WriteString(f[1] + "\n")
			}
		}
	}
	dir := path.Join("/lib/modules", k.Release)
	if err := c.Bytes(dir+"/modules.dep", 0o644, []byte(depFile.String())); err != nil {
		return nil, err
	}
	if err := c.Bytes(dir+"/modules.alias", 0o644, []byte(aliasFile.String())); err != nil {
		return nil, err
	}
	if err := c.Bytes(dir+"/"+unstagedFile, 0o644, []byte(unstaged.String())); err != nil {
		return nil, err
	}
	return mods, nil
}

// readModule returns a module file's content, decompressed.
func readModule(ctx context.Context, file string) ([]byte, error) {
	var tool string
	switch filepath.Ext(file) {
	case ".ko":
		return os.ReadFile(file)
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return nil, fmt.Errorf("module %s: unknown compression", file)
	}
	out, err := runOutput(ctx, "", tool, "-dc", file)
	if err != nil {
		return nil, fmt.Errorf("decompress module: %w", err)
	}
	return []byte(out), nil
}

// addTests adds the test binaries and, for each, a copy of its package
// directory: the regular files directly in it and its testdata tree (what
// a test may open by a relative path).
func addTests(c *cpioWriter, pkgs []TestPackage) error {
	for _, p := range pkgs {
		if err := c.HostFile(p.GuestBinary(), p.Binary); err != nil {
			return err
		}
		if err := c.Dir(p.GuestDir(), 0o755); err != nil {
			return err
		}
		ents, err := os.ReadDir(p.Dir)
		if err != nil {
			return fmt.Errorf("package %s: %w", p.Name, err)
		}
		for _, e := range ents {
			src := filepath.Join(p.Dir, e.Name())
			switch {
			case e.Type().IsRegular():
				if err := c.HostFile(path.Join(p.GuestDir(), e.Name()), src); err != nil {
					return err
				}
			case e.IsDir() && e.Name() == "testdata":
				if err := addTree(c, src, path.Join(p.GuestDir(), "testdata")); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// addTree copies a host directory tree (regular files, directories and
// symlinks) to dst.
func addTree(c *cpioWriter, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		g := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			return c.Dir(g, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return c.Symlink(g, t)
		case d.Type().IsRegular():
			return c.HostFile(g, p)
		}
		return nil
	})
}
