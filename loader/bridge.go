package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// Defaults for Options.
const (
	DefaultBPFFS  = "/sys/fs/bpf/ebpfovs"
	DefaultBridge = "br0"
)

// Pinned program names under <bpffs>/<bridge>/. The two ingress programs'
// are exported for tools that read a running bridge (bench's run-time
// statistics); the rest are the loader's own.
const (
	PinProgTCIngress  = "prog_tc_ingress"
	PinProgXDPIngress = "prog_xdp_ingress"

	pinProgIngress = PinProgTCIngress
	pinProgTrace   = "prog_tc_trace"
	pinProgPatch   = "prog_tc_patch"
	pinProgTunnel  = "prog_tc_tunnel"
	pinProgXDP     = PinProgXDPIngress
	pinProgCTGC    = "prog_ct_gc"
	pinProgCTFlush = "prog_ct_flush"
	pinProgCTDel   = "prog_ct_delete"
	// pinComplete (the bridge_complete map) is pinned when everything
	// else is: a directory without it is a half-built bridge.
	pinComplete = "bridge_complete"
	// pinLayout is the version of the pins' layout, in bridge_complete.
	pinLayout = 16 // 16: learn() (learned_slots, learn_templates, learn_meta, learn_state; learned flows' ids and action slots after the installed ones'); 12: flow records are typed (binary); 13: connections carry their keys (NAT); 14: the xdp_fast counter; 15: VLAN, patch and tunnel ports (port_trunks, patch_ports, tunnel_ports, prog_tc_patch, prog_tc_tunnel, their counters)
)

// Options say which bridge a call works on.
type Options struct {
	BPFFS  string // where bridges pin their state; default DefaultBPFFS
	Bridge string // default DefaultBridge
	NetNS  string // network namespace of the ports (`ip netns` name or path); "" = ours

	// Sizes of a bridge's tables, used when Attach creates it (0: the
	// datapath's defaults, 131072 flows and 262144 connections).
	MaxFlows uint32
	MaxConns uint32

	// AtomicRelease: Attach loads the datapath so that a connection's
	// owner always releases it with an atomic add, as on architectures
	// other than amd64, where a plain store does (bpf/ct_table.h,
	// ct_release). For tests of that path.
	AtomicRelease bool

	// AutoModes is what `--mode auto` attaches to each kind of port
	// (nil: DefaultAutoModes, what was measured).
	AutoModes AutoModes

	// Steps, when set, is called at each step boundary of a change to the
	// kernel's state: after each pin, link, filter, qdisc and table write
	// of creating or removing a bridge, attaching or detaching a port,
	// changing flows. The fault-injection tests kill the command or pause
	// it there (ctl/crash_test.go); ebpfovs itself never sets it.
	Steps func(step string)

	// LockWait, when set, is called once when the command has to wait for
	// another one that holds the bridges' lock; holder describes it.
	LockWait func(holder string)
}

func (o Options) withDefaults() Options {
	if o.BPFFS == "" {
		o.BPFFS = DefaultBPFFS
	}
	if o.Bridge == "" {
		o.Bridge = DefaultBridge
	}
	if o.AutoModes == nil {
		o.AutoModes = DefaultAutoModes()
	}
	return o
}

// ErrNoBridge means the bridge has no pinned state: nothing is attached.
var ErrNoBridge = errors.New("no such bridge")

// bridgeNameRE: a bridge's name is a directory under the bpffs root and,
// in Open vSwitch, a network device's: at most IFNAMSIZ-1 (15) bytes of
// letters, digits, '_', '.' and '-' (and never "." or "..": checkOptions).
var bridgeNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)

// MaxConnsLimit is the most connections a bridge can be created for: its
// tables then take some 4 GiB of kernel memory.
const MaxConnsLimit = 1 << 24

// Bridge is an open handle on one bridge's pinned maps. Mutating calls hold
// an exclusive lock on the bpffs directory, so concurrent `ebpfovs`
// invocations serialize.
type Bridge struct {
	opts Options
	dir  string
	lock *os.File
	maps bpf.DatapathMaps

	ctCountMem []byte // ct_count, mapped on first use (ctlimits.go)
}

// Dir is where the bridge's state is pinned.
func (b *Bridge) Dir() string { return b.dir }

// Name is the bridge's name.
func (b *Bridge) Name() string { return b.opts.Bridge }

// Close releases the bridge's maps and lock; the datapath keeps running.
func (b *Bridge) Close() error {
	var err error
	if b.ctCountMem != nil {
		err = unix.Munmap(b.ctCountMem)
		b.ctCountMem = nil
	}
	err = errors.Join(err, b.maps.Close())
	if b.lock != nil {
		b.lock.Close() // closing the fd drops the flock
		b.lock = nil
	}
	return err
}

func checkOptions(o Options) error {
	if !bridgeNameRE.MatchString(o.Bridge) || o.Bridge == "." || o.Bridge == ".." {
		return inputErrorf("invalid bridge name %q: up to 15 letters, digits, '_', '.', '-', and not . or ..", o.Bridge)
	}
	if o.MaxConns > MaxConnsLimit {
		return inputErrorf("--max-conns %d: at most %d connections", o.MaxConns, MaxConnsLimit)
	}
	return o.AutoModes.check()
}

// lockDir takes an exclusive flock on the bpffs root, serializing ebpfovs
// calls. When another call holds it, wait (if set) is told who, once,
// before this one waits its turn.
func lockDir(dir string, wait func(holder string)) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		if wait != nil {
			wait(lockHolder(f))
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// lockHolder names the process holding a flock on f, from /proc/locks
// ("1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF"), or "another
// ebpfovs command" when it cannot tell.
func lockHolder(f *os.File) string {
	var st unix.Stat_t
	locks, err := os.ReadFile("/proc/locks")
	if err != nil || unix.Fstat(int(f.Fd()), &st) != nil {
		return "another ebpfovs command"
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(locks), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != want || fields[4] == "0" {
			continue
		}
		comm, _ := os.ReadFile("/proc/" + fields[4] + "/comm")
		if c := strings.TrimSpace(string(comm)); c != "" {
			return fmt.Sprintf("process %s (%s)", fields[4], c)
		}
		return "process " + fields[4]
	}
	return "another ebpfovs command"
}

// Open opens an existing bridge. It returns an error wrapping ErrNoBridge
// when the bridge has never been created (no port attached yet).
func Open(opts Options) (*Bridge, error) {
	opts = opts.withDefaults()
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	if err := EnsureBPFFS(opts.BPFFS); err != nil {
		return nil, err
	}
	lock, err := lockDir(opts.BPFFS, opts.LockWait)
	if err != nil {
		return nil, err
	}
	b := &Bridge{opts: opts, dir: filepath.Join(opts.BPFFS, opts.Bridge), lock: lock}
	if _, err := os.Stat(filepath.Join(b.dir, pinComplete)); err != nil {
		lock.Close()
		if hasOwnPins(b.dir) {
			return nil, fmt.Errorf("bridge %s: %w", opts.Bridge, errHalfBuilt)
		}
		return nil, fmt.Errorf("bridge %s: %w (nothing pinned under %s; attach a port first)", opts.Bridge, ErrNoBridge, b.dir)
	}
	if layout := pinnedLayout(b.dir); layout != pinLayout {
		lock.Close()
		return nil, fmt.Errorf("bridge %s: pinned by another version of ebpfovs (layout %d; this one reads %d): detach it with that version, or remove %s and its ports' programs by hand",
			opts.Bridge, layout, pinLayout, b.dir)
	}
	if err := loadPinnedMaps(b.dir, &b.maps); err != nil {
		lock.Close()
		return nil, fmt.Errorf("bridge %s: %w", opts.Bridge, err)
	}
	return b, nil
}

// pinnedLayout reads the layout version in a bridge's bridge_complete, or 0.
func pinnedLayout(dir string) uint32 {
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, pinComplete), nil)
	if err != nil {
		return 0
	}
	defer m.Close()
	var v uint32
	if m.Lookup(uint32(0), &v) != nil {
		return 0
	}
	return v
}

// errHalfBuilt: the bridge's directory holds some of its pins but not
// the last one create() makes.
var errHalfBuilt = errors.New("left half-built by a command that did not finish; the next attach builds it anew")

// hasOwnPins reports whether dir holds anything ebpfovs pins.
func hasOwnPins(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if ownPin(e.Name()) {
			return true
		}
	}
	return false
}

// openOrCreate opens the bridge, creating it (loading and pinning the
// datapath, installing OVS's default flow) when it does not exist yet, or
// anew when a killed command left it half-built: its pins are removed
// first (it has no ports: the first port is attached only after the
// bridge is complete).
func openOrCreate(opts Options) (b *Bridge, created bool, err error) {
	b, err = Open(opts)
	halfBuilt := errors.Is(err, errHalfBuilt)
	if err == nil || (!errors.Is(err, ErrNoBridge) && !halfBuilt) {
		return b, false, err
	}
	opts = opts.withDefaults()
	lock, err := lockDir(opts.BPFFS, opts.LockWait)
	if err != nil {
		return nil, false, err
	}
	b = &Bridge{opts: opts, dir: filepath.Join(opts.BPFFS, opts.Bridge), lock: lock}
	if halfBuilt {
		if links, _ := filepath.Glob(filepath.Join(b.dir, "*link_port*")); len(links) > 0 {
			lock.Close()
			return nil, false, fmt.Errorf("bridge %s: incomplete, with ports' links pinned (%s): pinned by an older ebpfovs? remove %s and its ports' programs by hand",
				opts.Bridge, filepath.Base(links[0]), b.dir)
		}
		if err := b.destroyPins(); err != nil {
			lock.Close()
			return nil, false, fmt.Errorf("bridge %s: remove the half-built bridge: %w", opts.Bridge, err)
		}
	}
	if err := b.create(); err != nil {
		b.destroyPins()
		lock.Close()
		return nil, false, err
	}
	return b, true, nil
}

func (b *Bridge) create() error {
	if err := checkKernel(datapathNeeds); err != nil {
		return err
	}
	spec, err := datapathSpec(b.opts.AtomicRelease)
	if err != nil {
		return err
	}
	if n := b.opts.MaxFlows; n != 0 {
		// Learned flows (bpf/learn.h) take the ids after the installed
		// flows' and the action slots after both generations'.
		for name, size := range map[string]uint32{"flows": 2 * (n + learnMax), "flow_actions": 2*n + learnMax,
			"flow_meta": n, "flow_stats": n + learnMax, "flow_used": n + learnMax} {
			spec.Maps[name].MaxEntries = size
		}
	}
	if n := b.opts.MaxConns; n != 0 {
		// The connections live in ct_slots, a little larger than the
		// table of keys (bpf/maps.h).
		slack := spec.Maps["ct_slots"].MaxEntries - spec.Maps["conntrack"].MaxEntries
		spec.Maps["conntrack"].MaxEntries = n
		spec.Maps["ct_slots"].MaxEntries = n + slack
		spec.Maps["ct_free"].MaxEntries = n + slack
	}
	// Nothing is pinned while the datapath is loaded and filled: a
	// command killed meanwhile leaves nothing (the kernel frees what only
	// its file descriptors held).
	var objs bpf.DatapathObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return loadError(err)
	}
	defer objs.DatapathPrograms.Close()
	b.maps = objs.DatapathMaps
	if err := fillStages(&objs); err != nil {
		return err
	}
	if err := b.initLearnLimit(); err != nil {
		return err
	}
	if err := b.initCTLimits(); err != nil {
		return err
	}
	if err := b.installDefaultFlow(); err != nil {
		return err
	}
	// Then each map and program is pinned, in a fixed order, and
	// bridge_complete last: Open refuses a directory without it.
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return fmt.Errorf("create bridge %s: %w", b.opts.Bridge, err)
	}
	b.step("mkdir " + b.opts.Bridge)
	if err := forEachMap(&b.maps, func(name string, m *ebpf.Map) error {
		if name == pinComplete {
			return nil
		}
		if err := m.Pin(filepath.Join(b.dir, name)); err != nil {
			return fmt.Errorf("pin map %s: %w", name, err)
		}
		b.step("pin " + name)
		return nil
	}); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		prog *ebpf.Program
	}{
		{pinProgIngress, objs.TcIngress}, {pinProgTrace, objs.TcTrace}, {pinProgPatch, objs.TcPatch}, {pinProgTunnel, objs.TcTunnel}, {pinProgXDP, objs.XdpIngress},
		{pinProgCTGC, objs.CtGc}, {pinProgCTFlush, objs.CtFlush}, {pinProgCTDel, objs.CtDeleteKeys},
	} {
		if err := p.prog.Pin(filepath.Join(b.dir, p.name)); err != nil {
			return fmt.Errorf("pin program %s: %w", p.name, err)
		}
		b.step("pin " + p.name)
	}
	if err := b.maps.BridgeComplete.Put(uint32(0), uint32(pinLayout)); err != nil {
		return fmt.Errorf("mark the bridge complete: %w", err)
	}
	if err := b.maps.BridgeComplete.Pin(filepath.Join(b.dir, pinComplete)); err != nil {
		return fmt.Errorf("mark the bridge complete: %w", err)
	}
	b.step("pin " + pinComplete)
	return nil
}

// step reports a step boundary to Options.Steps.
func (b *Bridge) step(name string) {
	if b.opts.Steps != nil {
		b.opts.Steps(name)
	}
}

// forEachMap calls fn for each map of the datapath, by pin name, in the
// order of bpf.DatapathMaps' fields.
func forEachMap(m *bpf.DatapathMaps, fn func(name string, m *ebpf.Map) error) error {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		mp, _ := v.Field(i).Interface().(*ebpf.Map)
		if err := fn(v.Type().Field(i).Tag.Get("ebpf"), mp); err != nil {
			return err
		}
	}
	return nil
}

// fillStages puts each stage program in the prog array its entry programs
// tail-call through (bpf/stages.h). The arrays are pinned with the bridge:
// a prog array loses its programs when nothing in userspace holds it.
func fillStages(objs *bpf.DatapathObjects) error {
	for _, s := range []struct {
		m    *ebpf.Map
		idx  bpf.DatapathStage
		prog *ebpf.Program
	}{
		{objs.TcStages, bpf.DatapathStageSTAGE_WALK, objs.TcWalk},
		{objs.XdpStages, bpf.DatapathStageSTAGE_WALK, objs.XdpWalk},
	} {
		if err := s.m.Put(uint32(s.idx), s.prog); err != nil {
			return fmt.Errorf("fill stage %d: %w", s.idx, err)
		}
	}
	return nil
}

// linkPinRE matches the pins of the links attach makes (linkPin, xdpLinkPin).
var linkPinRE = regexp.MustCompile(`^(xdp_)?link_port[0-9]+$`)

// ownPin reports whether name is a pin ebpfovs makes in a bridge's
// directory: a map of the datapath, a program, a link.
func ownPin(name string) bool {
	switch name {
	case pinProgIngress, pinProgTrace, pinProgPatch, pinProgTunnel, pinProgXDP, pinProgCTGC, pinProgCTFlush, pinProgCTDel:
		return true
	}
	if linkPinRE.MatchString(name) {
		return true
	}
	t := reflect.TypeOf(bpf.DatapathMaps{})
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Tag.Get("ebpf") == name {
			return true
		}
	}
	return false
}

// destroyPins removes what ebpfovs pinned for the bridge, and its
// directory if nothing else is left in it: never anything it did not
// make, whatever the directory holds (a pin of another tool, a directory).
// bridge_complete goes first, so that a command killed meanwhile leaves a
// bridge the next one takes for half-built; then links, programs, maps.
func (b *Bridge) destroyPins() error {
	if b.ctCountMem != nil {
		unix.Munmap(b.ctCountMem)
		b.ctCountMem = nil
	}
	b.maps.Close()
	b.maps = bpf.DatapathMaps{}
	entries, err := os.ReadDir(b.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var own, foreign []string
	for _, e := range entries {
		if e.IsDir() || !ownPin(e.Name()) {
			foreign = append(foreign, e.Name())
		} else {
			own = append(own, e.Name())
		}
	}
	sort.SliceStable(own, func(i, j int) bool { return removalRank(own[i]) < removalRank(own[j]) })
	var errs []string
	for _, name := range own {
		if err := os.Remove(filepath.Join(b.dir, name)); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		b.step("unpin " + name)
	}
	if len(foreign) > 0 {
		errs = append(errs, fmt.Sprintf("%s: left in place, with what ebpfovs did not make there: %s",
			b.dir, strings.Join(foreign, ", ")))
	} else if err := os.Remove(b.dir); err != nil {
		errs = append(errs, err.Error())
	} else {
		b.step("rmdir " + b.opts.Bridge)
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// removalRank orders a bridge's pins for removal: the completion marker,
// links, programs, maps.
func removalRank(name string) int {
	switch {
	case name == pinComplete:
		return 0
	case linkPinRE.MatchString(name):
		return 1
	case strings.HasPrefix(name, "prog_"):
		return 2
	}
	return 3
}

// loadPinnedMaps opens every map of the datapath from its pin in dir.
func loadPinnedMaps(dir string, m *bpf.DatapathMaps) error {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Tag.Get("ebpf")
		mp, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			m.Close()
			return fmt.Errorf("open pinned map %s: %w", name, err)
		}
		v.Field(i).Set(reflect.ValueOf(mp))
	}
	return nil
}

func loadPinnedProgram(dir, name string) (*ebpf.Program, error) {
	p, err := ebpf.LoadPinnedProgram(filepath.Join(dir, name), nil)
	if err != nil {
		return nil, fmt.Errorf("open pinned program %s: %w", name, err)
	}
	return p, nil
}

// releasePlain says whether connections are released with a plain store:
// on amd64 (x86 keeps stores in order: bpf/ct_table.h, ct_release),
// unless the caller asked for the atomic add.
func releasePlain(atomicRelease bool) bool {
	return runtime.GOARCH == "amd64" && !atomicRelease
}

var progNameRE = regexp.MustCompile(`program (\w+):`)

// loadError is the one line a failed load of the datapath gives: for a
// verifier rejection, the program, the instructions the verifier
// processed, the kernel release and the full log's path.
func loadError(err error) error {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return fmt.Errorf("load datapath: %w", err)
	}
	prog := "a program"
	if m := progNameRE.FindStringSubmatch(err.Error()); m != nil {
		prog = "program " + m[1]
	}
	var c ProgramCost
	parseVerifierStats(strings.Join(ve.Log, "\n"), &c)
	insns := ""
	if c.Insns > 0 {
		insns = fmt.Sprintf(" after %d processed instructions", c.Insns)
	}
	last := ""
	if n := len(ve.Log); n > 0 {
		last = ": " + sanitizeLine(ve.Log[n-1])
	}
	return fmt.Errorf("load datapath: the verifier of Linux %s rejected %s%s%s%s",
		KernelRelease(), prog, insns, last, saveVerifierLog(ve))
}

// sanitizeLine keeps a kernel log line printable and short.
func sanitizeLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.TrimSpace(s)
}

// saveVerifierLog writes the verifier's whole log to a temporary file, as
// the error shows only its last line, and returns " (full log: PATH)", or
// "" when the file cannot be written.
func saveVerifierLog(ve *ebpf.VerifierError) string {
	f, err := os.CreateTemp("", "ebpfovs-verifier-*.log")
	if err != nil {
		return ""
	}
	_, err = fmt.Fprintf(f, "%+v\n", ve)
	if cerr := f.Close(); err != nil || cerr != nil {
		os.Remove(f.Name())
		return ""
	}
	return " (full log: " + f.Name() + ")"
}
