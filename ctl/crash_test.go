package ctl_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/testenv"
)

// TestKillAtEveryStep: an operator may kill -9 an ebpfovs command at any
// instant. Each command that changes the kernel's state (creating a
// bridge, attaching and detaching ports in every mode, removing a bridge)
// runs once to list its steps (a pin, a link, a qdisc, a filter, a table
// write: loader.Options.Steps), then once per step killed right after
// it. After each kill, re-running the command must succeed and do what it
// says, and undoing it must bring the kernel back to exactly the state
// before; and a detach right after the kill must leave the kernel as it
// would without the killed command. "The kernel's state" is read from the
// kernel: each device's TCX programs, XDP program, tc filters and clsact
// qdisc, the bpffs pins, and the bridge's programs, maps and links in the
// kernel's lists of them (kernelState).
//
// A new bridge is killed in every attach mode: at each step of creating
// it in the first mode, and from bridge_complete on (the mode's own steps)
// in the others. In the VMs, where each load of the datapath takes 5-15 s,
// the steps are sampled (crashSample); the host kills every one.
func TestKillAtEveryStep(t *testing.T) {
	testenv.RequirePrivileged(t)
	lab := testenv.NewLab(t, testenv.LabOptions{VMs: 2})
	k := &killer{t: t, lab: lab, c: newCLI(t, lab.Host.Path), conns: 20000 + 8*rand.Uint32N(4000)}
	k.dir = filepath.Join(k.c.global[1], "br0")
	t.Cleanup(func() { k.c.run("detach") })
	modes := []string{"tcx", "tc", "xdp"}
	if !testenv.HasTCX() {
		modes = []string{"tc", "xdp"} // xdp falls back to tc behind it
	}
	nothing := k.state()
	if nothing.objects != "" {
		t.Fatalf("before anything: %s", nothing.objects)
	}

	// A new bridge in each mode. Creating the bridge (maps, programs, the
	// pins up to bridge_complete) is the same in every mode: killed at
	// each of its steps in the first mode; in the others only from
	// bridge_complete on, where the mode's own steps begin.
	for i, m := range modes {
		t.Run("new-bridge-"+m, func(t *testing.T) {
			k.t = t
			cc := crashCase{
				cmd:   k.attachArgs(m, "vnet1", "vnet2"),
				check: func() { k.wantPorts("vnet1", "vnet2") },
				undo:  []string{"detach"},
				after: []string{"detach"},
				load:  true,
			}
			if i > 0 {
				cc.from = "pin bridge_complete"
			}
			k.each(cc)
		})
	}
	for _, m := range modes {
		t.Run("attach-"+m, func(t *testing.T) {
			k.t = t
			k.c.must(k.attachArgs(m, "vnet1")...)
			k.each(crashCase{
				cmd:   k.attachArgs(m, "vnet2"),
				check: func() { k.wantPorts("vnet1", "vnet2") },
				undo:  []string{"detach", "vnet2"},
				after: []string{"detach", "vnet2"},
			})
			k.c.must("detach")
		})
		t.Run("detach-"+m, func(t *testing.T) {
			k.t = t
			k.c.must(k.attachArgs(m, "vnet1", "vnet2")...)
			k.each(crashCase{
				cmd:   []string{"detach", "vnet2"},
				check: func() { k.wantPorts("vnet1") },
				undo:  k.attachArgs(m, "vnet2"),
			})
			k.c.must("detach")
		})
	}
	// An internal port: a veth pair created, then attached; deleted with
	// the port.
	internal := []string{"add-port", "--may-exist", "qr0", "type=internal", "tag=3"}
	t.Run("add-port-internal", func(t *testing.T) {
		k.t = t
		k.c.must(k.attachArgs(modes[0], "vnet1")...)
		k.each(crashCase{
			cmd: internal,
			check: func() {
				k.wantPorts("vnet1", "qr0")
				if d := k.state().devices; !strings.Contains(d, "; qr0:") || !strings.Contains(d, "; ebo") {
					k.t.Fatalf("add-port type=internal made no veth pair: %s", d)
				}
			},
			undo:  []string{"del-port", "qr0"},
			after: []string{"detach", "qr0"},
		})
		k.c.must("detach")
	})
	t.Run("del-port-internal", func(t *testing.T) {
		k.t = t
		k.c.must(k.attachArgs(modes[0], "vnet1")...)
		k.c.must(internal...)
		k.each(crashCase{
			cmd: []string{"del-port", "qr0"},
			check: func() {
				k.wantPorts("vnet1")
				if d := k.state().devices; strings.Contains(d, "qr0") || strings.Contains(d, "ebo") {
					k.t.Fatalf("del-port left the internal port's devices: %s", d)
				}
			},
			undo: internal,
		})
		k.c.must("detach")
	})
	// A patch port whose peer is on another bridge, br1: both bridges'
	// tables change.
	t.Run("patch-ports", func(t *testing.T) {
		k.t = t
		k.c.must(k.attachArgs(modes[0], "vnet1")...)
		c1 := &cli{t: t, global: append([]string{}, k.c.global...)}
		c1.global[3] = "br1"
		c1.must("attach", "--max-flows=4096", "--max-conns=16384", "vnet2")
		c1.must("add-port", "p1", "type=patch", "options:peer=p0")
		linked := func(want bool) {
			sh := c1.must("show")
			if got := strings.Contains(sh, "tail call to br0 port 2(p0)"); got != want {
				k.t.Fatalf("br1's p1 linked to br0's p0: %v, want %v:\n%s", got, want, sh)
			}
		}
		patch := []string{"add-port", "--may-exist", "p0", "type=patch", "options:peer=p1"}
		k.each(crashCase{
			cmd:      patch,
			check:    func() { k.wantPorts("vnet1", "p0"); linked(true) },
			undo:     []string{"del-port", "p0"},
			after:    []string{"detach", "p0"},
			restored: func() { linked(false) },
		})
		k.c.must(patch...)
		k.each(crashCase{
			cmd:      []string{"del-port", "p0"},
			check:    func() { k.wantPorts("vnet1"); linked(false) },
			undo:     patch,
			restored: func() { linked(true) },
		})
		c1.must("detach")
		k.c.must("detach")
	})
	// A VXLAN port: the bridge's VXLAN device made with the first port on
	// its UDP port, with tc_tunnel on it; deleted with the last.
	vxlan := []string{"add-port", "--may-exist", "vx0", "type=vxlan", "options:remote_ip=192.0.2.2", "options:key=5"}
	hasDevice := func(want bool) {
		if d := k.state().devices; strings.Contains(d, "; ebv") != want {
			k.t.Fatalf("the bridge's vxlan device there: %v, want %v: %s", !want, want, d)
		}
	}
	t.Run("tunnel-ports", func(t *testing.T) {
		k.t = t
		k.c.must(k.attachArgs(modes[0], "vnet1")...)
		k.each(crashCase{
			cmd:      vxlan,
			check:    func() { k.wantPorts("vnet1", "vx0"); hasDevice(true) },
			undo:     []string{"del-port", "vx0"},
			after:    []string{"detach", "vx0"},
			restored: func() { hasDevice(false) },
		})
		k.c.must(vxlan...)
		k.each(crashCase{
			cmd:      []string{"del-port", "vx0"},
			check:    func() { k.wantPorts("vnet1"); hasDevice(false) },
			undo:     vxlan,
			restored: func() { hasDevice(true) },
		})
		k.c.must("detach")
	})
	t.Run("remove-bridge", func(t *testing.T) {
		k.t = t
		pre := func() {
			k.c.must(k.attachArgs("tc", "vnet1")...)
			k.c.must(k.attachArgs("xdp", "vnet2")...)
		}
		k.each(crashCase{pre: pre, cmd: []string{"detach"}, check: func() { k.wantPorts() }, load: true, end: &nothing})
	})
	k.t = t
	k.wantState(nothing, "after all")
}

// killer runs the commands of TestKillAtEveryStep.
type killer struct {
	t     *testing.T
	lab   *testenv.Lab
	c     *cli
	dir   string
	conns uint32 // the bridge's --max-conns: finds its maps in the kernel's list
}

// crashCase is one command killed at each of its steps.
type crashCase struct {
	pre   func()       // makes the state before cmd, each time (nil: it is there already)
	cmd   []string     // the command killed
	check func()       // what cmd did, after it was re-run
	undo  []string     // brings the state back to before cmd (nil: the state after cmd is the end)
	after []string     // also run right after a kill, instead of the re-run: must restore the state before cmd
	load  bool         // cmd loads the datapath (sampled in the VMs)
	from  string       // kill only from the step of this name on ("": every step)
	end   *kernelState // the state cmd leaves (nil: what its first run left)
	// restored, when set, checks what kernelState does not show is as
	// before cmd, after undo and after `after`.
	restored func()
}

func (k *killer) attachArgs(mode string, ports ...string) []string {
	return append([]string{"attach", "--mode", mode, "--max-flows=4096", fmt.Sprintf("--max-conns=%d", k.conns)}, ports...)
}

func (k *killer) each(cc crashCase) {
	t := k.t
	t.Helper()
	if cc.pre != nil {
		cc.pre()
	}
	before := k.state()
	steps := k.steps(cc.cmd)
	if len(steps) == 0 {
		t.Fatalf("%v: no steps", cc.cmd)
	}
	end := k.state()
	if cc.end != nil {
		end = *cc.end
		k.wantState(end, "%v", cc.cmd)
	}
	t.Logf("%v: %d steps; leaves %s", cc.cmd, len(steps), end)
	// What finds leftovers must find the bridge's objects while it lives.
	if strings.Contains(end.pins, "prog_tc_ingress") && !strings.Contains(end.objects, "prog:tc_walk") {
		t.Fatalf("the bridge's objects not found in the kernel's lists: %s", end.objects)
	}
	if cc.undo != nil {
		k.c.must(cc.undo...)
		k.wantState(before, "undoing %v", cc.cmd)
	}
	first := 0
	if cc.from != "" {
		if first = slices.Index(steps, cc.from); first < 0 {
			t.Fatalf("%v: no step %q in %q", cc.cmd, cc.from, steps)
		}
	}
	for _, i := range crashSample(steps, cc.load, first) {
		where := fmt.Sprintf("%v killed after step %d (%s)", cc.cmd, i, steps[i-1])
		if cc.pre != nil {
			cc.pre()
		}
		k.kill(cc.cmd, i)
		// A command killed after its last step has done its work: the
		// re-run may say so, as a detach of what is not a port, or of a
		// bridge that is gone, does.
		if o, e, code := k.c.run(cc.cmd...); code != 0 {
			if !strings.Contains(e, "not a port") && !strings.Contains(e, "no such bridge") {
				t.Fatalf("%s; re-run: exit %d: %s%s", where, code, e, o)
			}
			k.wantState(end, "%s; re-run said it was done: %s", where, e)
		}
		cc.check()
		k.wantState(end, "%s, then re-run", where)
		if cc.undo == nil {
			continue
		}
		k.c.must(cc.undo...)
		k.wantState(before, "%s, re-run and undone", where)
		if cc.restored != nil {
			cc.restored()
		}
		if cc.after == nil {
			continue
		}
		k.kill(cc.cmd, i)
		// Killed before it made the bridge, there is none to detach.
		noBridge := !strings.Contains(before.pins, "br0") && !strings.Contains(k.state().pins, "br0")
		if o, e, code := k.c.run(cc.after...); code != 0 && !(noBridge && strings.Contains(e, "no such bridge")) {
			t.Fatalf("%s; %v: exit %d: %s%s", where, cc.after, code, e, o)
		}
		k.wantState(before, "%s, then %v", where, cc.after)
		if cc.restored != nil {
			cc.restored()
		}
	}
}

// crashSample is every step from steps[first] on, on the host. In the
// VMs, where this test was a third of each kernel's time, a sample: the
// first and last of each run of pins and unpins of maps and every other
// step, thinned to at most 6 for a command that loads the datapath (2
// when first cuts the bridge's creation away: the first mode's case kills
// those steps) and 4 for a port's steps. The host kills every step of
// every case; what differs between kernels is the kinds of links,
// filters and programs, which every sampled case still creates and
// removes. Steps are numbered from 1.
func crashSample(steps []string, load bool, first int) []int {
	var out []int
	for i := first; i < len(steps); i++ {
		out = append(out, i+1)
	}
	if !testenv.InVM() {
		return out
	}
	limit := 4
	switch {
	case load && first > 0:
		limit = 2
	case load:
		limit = 6
	}
	isMap := func(i int) bool {
		s := steps[i]
		return (strings.HasPrefix(s, "pin ") || strings.HasPrefix(s, "unpin ")) && !strings.Contains(s, "prog_") && !strings.Contains(s, "link_port")
	}
	var keep []int
	for i := first; i < len(steps); i++ {
		if !isMap(i) || i == 0 || i == len(steps)-1 || !isMap(i-1) || !isMap(i+1) {
			keep = append(keep, i+1)
		}
	}
	for len(keep) > limit {
		var half []int
		for j, n := range keep {
			if j%2 == 0 || j == len(keep)-1 {
				half = append(half, n)
			}
		}
		keep = half
	}
	return keep
}

// child runs the ebpfovs command in a new process: this test binary
// (TestMain, stepChild), logging its steps to log and killed after step
// killAt (0: never).
func (k *killer) child(args []string, log string, killAt int) (*os.ProcessState, string) {
	cmd := exec.Command(os.Args[0], append(append([]string{}, k.c.global...), args...)...)
	cmd.Env = append(os.Environ(), envChild+"=1", envStepLog+"="+log, fmt.Sprintf("%s=%d", envKillAt, killAt))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		k.t.Fatalf("run %v: %v", args, err)
	}
	return cmd.ProcessState, out.String()
}

// steps runs args to the end and returns the names of its steps.
func (k *killer) steps(args []string) []string {
	log := filepath.Join(k.t.TempDir(), "steps")
	st, out := k.child(args, log, 0)
	if !st.Success() {
		k.t.Fatalf("%v: %v: %s", args, st, out)
	}
	f, err := os.Open(log)
	if err != nil {
		k.t.Fatal(err)
	}
	defer f.Close()
	var steps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, name, _ := strings.Cut(sc.Text(), " ")
		steps = append(steps, name)
	}
	return steps
}

// kill runs args and kills it after step i: it must die of SIGKILL.
func (k *killer) kill(args []string, i int) {
	k.t.Helper()
	st, out := k.child(args, filepath.Join(k.t.TempDir(), "steps"), i)
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		k.t.Fatalf("%v with a kill at step %d: %v, not killed: %s", args, i, st, out)
	}
}

// wantPorts: show lists exactly these ports, in this order.
func (k *killer) wantPorts(names ...string) {
	k.t.Helper()
	o, e, code := k.c.run("show")
	if len(names) == 0 {
		if code == 0 || !strings.Contains(e, "no such bridge") {
			k.t.Fatalf("show after the bridge's removal: exit %d: %s%s", code, e, o)
		}
		return
	}
	if code != 0 {
		k.t.Fatalf("show: exit %d: %s", code, e)
	}
	var got []string
	for _, line := range strings.Split(o, "\n") {
		if _, rest, ok := strings.Cut(line, "("); ok && strings.HasPrefix(strings.TrimSpace(line), strconv.Itoa(len(got)+1)) {
			name, _, _ := strings.Cut(rest, ")")
			got = append(got, name)
		}
	}
	if !slices.Equal(got, names) {
		k.t.Fatalf("ports %v, want %v:\n%s", got, names, o)
	}
}

// kernelState is what the tests compare: per device, what of ours or
// anyone's is attached; the pins; the bridge's objects in the kernel.
type kernelState struct {
	devices string
	pins    string
	objects string
}

func (s kernelState) String() string {
	return fmt.Sprintf("devices {%s} pins {%s} objects {%s}", s.devices, s.pins, s.objects)
}

// wantState waits (objects are freed after their last reference goes,
// asynchronously) until the kernel's state is want.
func (k *killer) wantState(want kernelState, format string, args ...any) {
	k.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := k.state()
		if got.String() == want.String() {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s:\n got %s\nwant %s", fmt.Sprintf(format, args...), got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (k *killer) state() kernelState {
	var s kernelState
	var devs []string
	k.lab.Host.Do(func() error {
		for _, vm := range k.lab.VMs {
			devs = append(devs, deviceState(vm.Port))
		}
		// Devices ebpfovs may create (internal ports' veth pairs).
		links, _ := netlink.LinkList()
		for _, l := range links {
			if n := l.Attrs().Name; n != "lo" && !strings.HasPrefix(n, "vnet") {
				devs = append(devs, deviceState(n))
			}
		}
		return nil
	})
	s.devices = strings.Join(devs, "; ")
	var pins []string
	filepath.WalkDir(k.c.global[1], func(p string, d os.DirEntry, err error) error {
		if err == nil && p != k.c.global[1] {
			rel, _ := filepath.Rel(k.c.global[1], p)
			pins = append(pins, rel)
		}
		return nil
	})
	s.pins = strings.Join(pins, " ")
	s.objects = bridgeObjects(k.conns)
	return s
}

// deviceState names what is attached to a device: TCX programs, XDP,
// tc filters (priority, name), a clsact qdisc. Runs in its namespace.
func deviceState(name string) string {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return name + ": " + err.Error()
	}
	var parts []string
	if res, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress}); err == nil && len(res.Programs) > 0 {
		parts = append(parts, fmt.Sprintf("tcx:%d", len(res.Programs)))
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		parts = append(parts, "xdp")
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, _ := netlink.FilterList(l, parent)
		for _, f := range fs {
			desc := fmt.Sprintf("filter:%#x", f.Attrs().Priority)
			if bf, ok := f.(*netlink.BpfFilter); ok {
				desc += ":" + bf.Name
			}
			parts = append(parts, desc)
		}
	}
	qs, _ := netlink.QdiscList(l)
	for _, q := range qs {
		if q.Type() == "clsact" {
			parts = append(parts, "clsact")
		}
	}
	return name + ":" + strings.Join(parts, ",")
}

// bridgeObjects lists, from the kernel's lists of maps, programs and
// links, the objects of the bridge whose conntrack table holds conns
// entries (no other bridge's, whatever runs beside this test): that map,
// the programs that use a map of the bridge, the maps they use, and so on,
// and the links of those programs. Counted by kind and name.
func bridgeObjects(conns uint32) string {
	maps := map[ebpf.MapID]string{}
	for id := ebpf.MapID(0); ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		if info, err := m.Info(); err == nil && info.Name == "conntrack" && info.MaxEntries == conns {
			maps[id] = info.Name
		}
		m.Close()
	}
	if len(maps) == 0 {
		return ""
	}
	type prog struct {
		name string
		maps []ebpf.MapID
	}
	progs := map[ebpf.ProgramID]prog{}
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		if info, err := p.Info(); err == nil {
			ids, _ := info.MapIDs()
			progs[id] = prog{info.Name, ids}
		}
		p.Close()
	}
	ours := map[ebpf.ProgramID]string{}
	for grew := true; grew; {
		grew = false
		for id, p := range progs {
			if _, done := ours[id]; done {
				continue
			}
			if !slices.ContainsFunc(p.maps, func(m ebpf.MapID) bool { _, ok := maps[m]; return ok }) {
				continue
			}
			ours[id] = p.name
			grew = true
			for _, m := range p.maps {
				if _, ok := maps[m]; !ok {
					maps[m] = mapName(m)
				}
			}
		}
	}
	var names []string
	for _, n := range maps {
		names = append(names, "map:"+n)
	}
	for _, n := range ours {
		names = append(names, "prog:"+n)
	}
	it := new(link.Iterator)
	for it.Next() {
		if info, err := it.Link.Info(); err == nil {
			if n, ok := ours[info.Program]; ok {
				names = append(names, fmt.Sprintf("link:%v:%s", info.Type, n))
			}
		}
	}
	it.Close()
	sort.Strings(names)
	return strings.Join(names, " ")
}

func mapName(id ebpf.MapID) string {
	m, err := ebpf.NewMapFromID(id)
	if err != nil {
		return fmt.Sprintf("gone%d", id)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return fmt.Sprintf("unknown%d", id)
	}
	return info.Name
}
