package loader

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// kindsNS makes a namespace with one device of each kind auto tells
// apart but a NIC: a veth pair, a tap and a bridge device (no native XDP), all up.
func kindsNS(t *testing.T, prefix string) *testenv.NS {
	ns := testenv.NewNS(t, prefix)
	ns.Run(t, "ip", "link", "add", "kv0", "type", "veth", "peer", "name", "kv1")
	ns.Run(t, "ip", "tuntap", "add", "dev", "ktap", "mode", "tap")
	ns.Run(t, "ip", "link", "add", "kdum", "type", "bridge")
	for _, dev := range []string{"kv0", "kv1", "ktap", "kdum"} {
		ns.Run(t, "ip", "link", "set", dev, "up")
	}
	return ns
}

// TestPortKind: auto tells veth, tap and other virtual devices apart by
// their link kind, and NICs by the bus under them, which sysfs shows
// independently (a device symlink) for the NICs of this machine.
func TestPortKind(t *testing.T) {
	testenv.RequirePrivileged(t)
	ns := kindsNS(t, "pkind")
	want := map[string]PortKind{"kv0": KindVeth, "kv1": KindVeth, "ktap": KindTap, "kdum": KindVirtual}
	ns.Do(func() error {
		for dev, k := range want {
			lnk, err := netlink.LinkByName(dev)
			if err != nil {
				t.Fatal(err)
			}
			if got := portKind(lnk); got != k {
				t.Errorf("%s (%s): kind %s, want %s", dev, lnk.Type(), got, k)
			}
		}
		return nil
	})
	// Our own namespace, as it is (read only): a NIC is physical exactly
	// when sysfs, which this process sees for this namespace, has a
	// device under it.
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	nics := 0
	for _, lnk := range links {
		name := lnk.Attrs().Name
		if lnk.Type() == "veth" || lnk.Type() == "tuntap" {
			continue
		}
		_, err := os.Stat("/sys/class/net/" + name + "/device")
		onBus := err == nil
		if got := portKind(lnk); (got == KindPhysical) != onBus {
			t.Errorf("%s: kind %s, but sysfs says on a bus: %v", name, got, onBus)
		}
		if onBus {
			nics++
		}
	}
	t.Logf("%d NICs in this namespace", nics)
	if nics == 0 && !testenv.InVM() {
		t.Log("no NIC here: the physical kind was not seen")
	}
}

// TestAutoModes: --mode auto attaches each port the way Options.AutoModes
// says for its kind (the defaults: TCX everywhere, tc before 6.6), and
// says what it took each device for; where auto's XDP cannot attach the
// port stays TC's; --mode xdp there is refused and all undone; and a
// table that names no mode is refused before anything exists.
func TestAutoModes(t *testing.T) {
	testenv.RequirePrivileged(t)
	ns := kindsNS(t, "pauto")
	tcx := "tcx"
	if !testenv.HasTCX() {
		tcx = "tc"
	}
	specs := []PortSpec{{Name: "kv0"}, {Name: "ktap"}, {Name: "kdum"}}
	attach := func(t *testing.T, modes AutoModes, mode string) (map[string]string, error) {
		opts := Options{BPFFS: testenv.TempBPFFS(t), Bridge: "auto", NetNS: ns.Path, MaxFlows: 1024, MaxConns: 4096, AutoModes: modes}
		res, err := Attach(opts, specs, mode)
		t.Cleanup(func() { Detach(opts, nil) })
		got := map[string]string{}
		for _, r := range res {
			got[r.Name] = fmt.Sprintf("%s auto:%s", r.Mode, r.Auto)
		}
		if err != nil {
			// Nothing is left: no bridge, no program on any device.
			plain := opts
			plain.AutoModes = nil
			if _, oerr := Open(plain); !errors.Is(oerr, ErrNoBridge) {
				t.Errorf("after the failed attach the bridge is there (%v)", oerr)
			}
			for _, s := range specs {
				if out := ns.Run(t, "ip", "link", "show", s.Name); strings.Contains(out, "xdp") {
					t.Errorf("after the failed attach %s has XDP: %s", s.Name, out)
				}
			}
		}
		return got, err
	}
	t.Run("defaults", func(t *testing.T) {
		got, err := attach(t, nil, ModeAuto)
		if err != nil {
			t.Fatal(err)
		}
		tap := tcx // tun's generic XDP linearizes a VM's TSO frames before 6.9
		if testenv.KernelAtLeast(6, 9) {
			tap = "xdp+" + tcx
		}
		want := map[string]string{"kv0": tcx + " auto:veth", "ktap": tap + " auto:tap", "kdum": tcx + " auto:virtual"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("attached %v, want %v", got, want)
		}
	})
	t.Run("per-kind", func(t *testing.T) {
		got, err := attach(t, AutoModes{KindVeth: ModeXDP, KindTap: ModeTC}, ModeAuto)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"kv0": "xdp+" + tcx + " auto:veth", "ktap": "tc auto:tap", "kdum": tcx + " auto:virtual"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("attached %v, want %v", got, want)
		}
	})
	t.Run("fallback", func(t *testing.T) {
		// auto's XDP on a device without native XDP: TC alone, no error.
		got, err := attach(t, AutoModes{KindVirtual: ModeXDP}, ModeAuto)
		if err != nil {
			t.Fatal(err)
		}
		if got["kdum"] != tcx+" auto:virtual" {
			t.Errorf("kdum attached %s, want %s auto:virtual", got["kdum"], tcx)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// --mode xdp on a device without native XDP: refused, and the
		// ports attached before it are undone.
		_, err := attach(t, nil, ModeXDP)
		if err == nil || !strings.Contains(err.Error(), "kdum: --mode xdp: the bridge device has no native XDP") {
			t.Fatalf("attach: %v, want kdum refused for want of native XDP", err)
		}
	})
	t.Run("bad-table", func(t *testing.T) {
		_, err := attach(t, AutoModes{KindTap: "fast"}, ModeAuto)
		if err == nil || !strings.Contains(err.Error(), `auto mode for tap ports: "fast"`) {
			t.Fatalf("attach: %v, want the table refused", err)
		}
	})
}

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{{"6.9.0", true}, {"6.18.44-fc-v1300", true}, {"7.3.4+deb13-amd64", true}, {"6.8.12", false}, {"6.1.0-57-amd64", false}, {"5.19", false}, {"unknown", false}} {
		if got := kernelAtLeast(c.release, 6, 9); got != c.want {
			t.Errorf("kernelAtLeast(%q, 6, 9) = %v", c.release, got)
		}
	}
}

// TestXDPAttachError: what a refused XDP link says, by cause. A kernel
// without XDP links (before 5.9) is older than every kernel of the
// matrix, so this is the one cause checked on the error alone; the
// attach that fails with it is undone as TestAutoModes/refused is.
func TestXDPAttachError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("bpf_link: %w", ebpf.ErrNotSupported), "--mode xdp: this kernel cannot attach XDP programs by link (Linux 5.9 or later)"},
		{fmt.Errorf("create link: %w", unix.EOPNOTSUPP), "--mode xdp: the bridge device has no native XDP"},
		{fmt.Errorf("create link: %w", unix.EINVAL), "--mode xdp: the bridge device has no native XDP"},
		{fmt.Errorf("create link: %w", unix.EBUSY), "attach native xdp: create link: device or resource busy"},
	} {
		got := xdpAttachError(c.err, "bridge")
		if !strings.HasPrefix(got.Error(), c.want) || !errors.Is(got, c.err) || strings.Contains(got.Error(), "\n") {
			t.Errorf("%v: %q, want one line starting %q that wraps it", c.err, got, c.want)
		}
	}
}
