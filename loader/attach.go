package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// Attach modes.
const (
	ModeAuto = "auto" // TCX where the kernel has it, else tc
	ModeTCX  = "tcx"
	ModeTC   = "tc"  // clsact qdisc + cls_bpf filter in direct-action mode, through netlink
	ModeXDP  = "xdp" // XDP first, for flow tables it can carry out (loader/xdp.go); TCX or tc behind it
)

const (
	flagPeer     = uint32(bpf.DatapathPortFlagPORT_F_PEER)
	flagOwnQdisc = uint32(bpf.DatapathPortFlagPORT_F_OWN_QDISC)
	flagXDP      = uint32(bpf.DatapathPortFlagPORT_F_XDP)
	tcFilterName = "ebpfovs"
	tcFilterPrio = 0xeb0f // our cls_bpf filter's priority on the ingress hook
)

// PortSpec names an interface to attach, optionally with its OpenFlow
// number and its settings (add-port's; nil: a system port with none).
type PortSpec struct {
	Name   string
	OFPort uint32 // 0 = next free
	Config *vsctl.Port
}

func (s PortSpec) internal() bool {
	return s.Config != nil && s.Config.Type == vsctl.Internal
}

func (s PortSpec) patch() bool {
	return s.Config != nil && s.Config.Type == vsctl.Patch
}

func (s PortSpec) tunnel() bool {
	return s.Config != nil && s.Config.Type.Tunnel()
}

// ParsePortSpec parses "IFACE" or "IFACE=OFPORT".
func ParsePortSpec(s string) (PortSpec, error) {
	name, num, has := strings.Cut(s, "=")
	if name == "" || len(name) > unix.IFNAMSIZ-1 || strings.ContainsAny(name, "/ \t") {
		return PortSpec{}, fmt.Errorf("%q: invalid interface name", s)
	}
	ps := PortSpec{Name: name}
	if has {
		n, err := strconv.ParseUint(num, 10, 32)
		if err != nil || n < 1 || n > uint64(MaxPort) {
			return PortSpec{}, fmt.Errorf("%q: port number must be 1..%d", s, MaxPort)
		}
		ps.OFPort = uint32(n)
	}
	return ps, nil
}

// AttachResult reports one port of an Attach call.
type AttachResult struct {
	Port
	Already bool     // was attached before this call: nothing changed
	Auto    PortKind // what --mode auto took the device for ("": another mode, or Already)
}

// Attach creates the bridge if needed and attaches the datapath to each
// interface. It is all or nothing: when any port fails, the ports this call
// attached are detached again, and a bridge this call created is removed.
func Attach(opts Options, specs []PortSpec, mode string) ([]AttachResult, error) {
	switch mode {
	case "", ModeAuto, ModeTCX, ModeTC, ModeXDP:
	default:
		return nil, fmt.Errorf("--mode %s: unknown mode (auto, tcx, tc, xdp)", mode)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		if seen[s.Name] {
			return nil, fmt.Errorf("%s: interface given twice", s.Name)
		}
		seen[s.Name] = true
		if s.Config != nil {
			if err := supportedType(*s.Config); err != nil {
				return nil, err
			}
		}
	}
	opts = opts.withDefaults()
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	// Check the interfaces exist before creating anything.
	if err := inNetNS(opts.NetNS, func() error {
		for _, s := range specs {
			if s.internal() || s.patch() || s.tunnel() {
				continue // created by attachOne; none; the bridge's own
			}
			if _, err := netlink.LinkByName(s.Name); err != nil {
				return noSuchInterface(s.Name, opts.NetNS)
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}

	b, created, err := openOrCreate(opts)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	res, err := b.attachAll(specs, mode)
	if err != nil && created {
		b.destroyPins()
	}
	return res, err
}

func noSuchInterface(name, ns string) error {
	if ns != "" {
		return fmt.Errorf("%s: no such interface in network namespace %s", name, ns)
	}
	return fmt.Errorf("%s: no such interface", name)
}

func (b *Bridge) attachAll(specs []PortSpec, mode string) ([]AttachResult, error) {
	var results []AttachResult
	var begun []uint32
	err := inNetNS(b.opts.NetNS, func() error {
		if _, err := b.recoverChanges(); err != nil {
			return err
		}
		progs := attachPrograms{dir: b.dir}
		defer progs.close()
		raw, err := b.rawPorts()
		if err != nil {
			return err
		}
		for _, s := range specs {
			r, err := b.attachOne(&progs, raw, s, mode, &begun)
			if err != nil {
				return err
			}
			if !r.Already {
				raw[r.OFPort] = bpf.DatapathPort{Ifindex: uint32(r.Ifindex), Type: uint8(portTypes[r.Config.Type])}
			}
			results = append(results, r)
		}
		return b.updateMaxPort()
	})
	if err != nil {
		// Undo what this call attached: its change records say what.
		inNetNS(b.opts.NetNS, func() error { _, err := b.recoverChanges(); return err })
		return nil, err
	}
	// Until here a killed call is undone by the next command, all of it.
	if err := b.endChanges(begun); err != nil {
		return nil, err
	}
	return results, nil
}

// attachPrograms opens the pinned programs an attach needs, each once,
// when a port first needs it: the XDP program only for a port that gets
// XDP.
type attachPrograms struct {
	dir     string
	tc, xdp *ebpf.Program
}

func (p *attachPrograms) get(name string, prog **ebpf.Program) (*ebpf.Program, error) {
	if *prog == nil {
		l, err := loadPinnedProgram(p.dir, name)
		if err != nil {
			return nil, err
		}
		*prog = l
	}
	return *prog, nil
}

func (p *attachPrograms) ingress() (*ebpf.Program, error) { return p.get(pinProgIngress, &p.tc) }
func (p *attachPrograms) xdpProg() (*ebpf.Program, error) { return p.get(pinProgXDP, &p.xdp) }

func (p *attachPrograms) close() {
	for _, prog := range []*ebpf.Program{p.tc, p.xdp} {
		if prog != nil {
			prog.Close()
		}
	}
}

// attachOne attaches one interface: the TC program (TCX, or tc), and in
// XDP mode the XDP program in front of it; auto picks one of those by the
// device's kind (Options.AutoModes). The change is recorded before the
// kernel is touched (begun gets the port number); the caller ends it.
func (b *Bridge) attachOne(progs *attachPrograms, raw map[uint32]bpf.DatapathPort, s PortSpec, mode string, begun *[]uint32) (AttachResult, error) {
	if s.patch() {
		return b.attachNewPatch(raw, s, begun)
	}
	if s.tunnel() {
		if n, p, ok := findPort(raw, s.Name); ok {
			if p.Type != typeTunnel {
				return AttachResult{}, inputErrorf("%s: a port of that name is on bridge %s already", s.Name, b.opts.Bridge)
			}
			return AttachResult{Already: true, Port: b.portOf(n, &p, nil)}, nil
		}
		ofport, err := b.freeNumber(raw, s)
		if err != nil {
			return AttachResult{}, err
		}
		return b.attachTunnel(raw, ofport, s, begun)
	}
	// An internal port's device is the bridge's end of its veth pair.
	dev := s.Name
	if s.internal() {
		dev = b.internalDevice(s.Name)
	}
	lnk, err := netlink.LinkByName(dev)
	if err == nil {
		var existing uint32
		if err := b.maps.PortByIfindex.Lookup(uint32(lnk.Attrs().Index), &existing); err == nil {
			if s.OFPort != 0 && s.OFPort != existing {
				return AttachResult{}, fmt.Errorf("%s: already attached as port %d", s.Name, existing)
			}
			p := raw[existing]
			return AttachResult{Already: true, Port: b.portOf(existing, &p, lnk.Attrs().HardwareAddr)}, nil
		}
	} else if !s.internal() {
		return AttachResult{}, noSuchInterface(s.Name, b.opts.NetNS)
	} else {
		lnk = nil
	}
	for _, p := range raw {
		if portName(&p) == s.Name {
			return AttachResult{}, inputErrorf("%s: a port of that name is on bridge %s already", s.Name, b.opts.Bridge)
		}
	}

	ofport := s.OFPort
	if ofport == 0 {
		for n := uint32(1); n <= MaxPort; n++ {
			if _, used := raw[n]; !used {
				ofport = n
				break
			}
		}
		if ofport == 0 {
			return AttachResult{}, fmt.Errorf("%s: bridge %s is full (%d ports)", s.Name, b.opts.Bridge, MaxPort)
		}
	} else if _, used := raw[ofport]; used {
		return AttachResult{}, fmt.Errorf("%s=%d: port %d is already in use", s.Name, ofport, ofport)
	}

	port := bpf.DatapathPort{AttachedNs: monotonicNow()}
	setPortName(&port, s.Name)
	cfg := vsctl.New(s.Name)
	if s.Config != nil {
		cfg = *s.Config
	}
	setPortConfig(&port, cfg)
	if s.internal() && lnk == nil {
		// Recorded before the veth pair exists: undoAttach deletes it
		// by name.
		if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
			return AttachResult{}, err
		}
		*begun = append(*begun, ofport)
		if lnk, err = b.createInternal(s.Name); err != nil {
			return AttachResult{}, err
		}
	}
	attrs := lnk.Attrs()
	ifindex := uint32(attrs.Index)
	port.Ifindex = ifindex
	// auto: the mode measured best for this kind of device. TCX falls
	// back to tc before Linux 6.6 unless tcx itself was asked for.
	var kind PortKind
	strictTCX := mode == ModeTCX
	if mode == ModeAuto || mode == "" {
		kind = KindVeth // an internal port's device is the bridge's end of a veth pair
		if !s.internal() {
			kind = portKind(lnk)
		}
		mode = b.opts.AutoModes.mode(kind)
	}
	prog, err := progs.ingress()
	if err != nil {
		return AttachResult{}, err
	}
	var xdp *ebpf.Program
	if mode == ModeXDP {
		if xdp, err = progs.xdpProg(); err != nil {
			return AttachResult{}, err
		}
	}
	// A veth whose peer is in another namespace can take bpf_redirect_peer.
	if lnk.Type() == "veth" && attrs.NetNsID >= 0 {
		port.Flags |= flagPeer
	}
	if xdp != nil {
		port.Flags |= flagXDP
	}
	// TCX unless tc is asked for; auto's TCX (and xdp, for what XDP
	// passes on) falls back to tc where the kernel has no TCX (before 6.6).
	useTC := mode == ModeTC
	if useTC {
		planTC(&port, lnk)
	} else {
		port.Mode = uint32(bpf.DatapathAttachModeATTACH_TCX)
	}
	if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
		return AttachResult{}, err
	}
	if len(*begun) == 0 || (*begun)[len(*begun)-1] != ofport {
		*begun = append(*begun, ofport)
	}

	if !useTC {
		err := b.attachTCX(prog, ofport, s.Name, int(ifindex))
		switch {
		case err == nil:
		case !strictTCX && errors.Is(err, ebpf.ErrNotSupported):
			useTC = true
			planTC(&port, lnk)
			if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
				return AttachResult{}, err
			}
		default:
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if useTC {
		own, err := b.attachTC(prog, lnk, port.Flags&flagOwnQdisc != 0)
		if err != nil {
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		if !own && port.Flags&flagOwnQdisc != 0 {
			// Another clsact appeared since planTC looked: not ours.
			port.Flags &^= flagOwnQdisc
			if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
				return AttachResult{}, err
			}
		}
	}
	if xdp != nil {
		err := b.attachXDP(xdp, ofport, s.Name, int(ifindex), lnk.Type())
		switch {
		case err == nil:
		case kind != "":
			// auto's XDP is a speed-up, not a requirement: where the
			// device or kernel refuses it, the port stays TC's alone.
			port.Flags &^= flagXDP
			if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
				return AttachResult{}, err
			}
		default:
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}

	// The programs pass packets of unknown ifindexes up the stack, so
	// writing the port table after attaching never drops traffic.
	if err := b.writeTrunks(ofport, cfg); err != nil {
		return AttachResult{}, err
	}
	if err := b.maps.Ports.Put(ofport, &port); err != nil {
		return AttachResult{}, fmt.Errorf("%s: write port table: %w", s.Name, err)
	}
	b.step(fmt.Sprintf("ports %d", ofport))
	if err := b.maps.TxPorts.Put(ofport, ifindex); err != nil {
		return AttachResult{}, fmt.Errorf("%s: write XDP port map: %w", s.Name, err)
	}
	b.step(fmt.Sprintf("tx_ports %d", ofport))
	b.zeroPortStats(ofport)
	if err := b.maps.PortByIfindex.Put(ifindex, ofport); err != nil {
		return AttachResult{}, fmt.Errorf("%s: write port table: %w", s.Name, err)
	}
	b.step("port_by_ifindex " + s.Name)
	return AttachResult{Port: b.portOf(ofport, &port, attrs.HardwareAddr), Auto: kind}, nil
}

// planTC makes port a tc-mode port; the clsact qdisc will be ours (to
// remove on detach) if the device has none yet.
func planTC(port *bpf.DatapathPort, lnk netlink.Link) {
	port.Mode = uint32(bpf.DatapathAttachModeATTACH_TC)
	port.TcPrio, port.TcHandle = tcFilterPrio, 1
	port.Flags &^= flagOwnQdisc
	if !hasClsact(lnk) {
		port.Flags |= flagOwnQdisc
	}
}

// hasClsact reports whether lnk has a clsact qdisc.
func hasClsact(lnk netlink.Link) bool {
	qs, err := netlink.QdiscList(lnk)
	if err != nil {
		return true // cannot tell: never take it for ours
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_CLSACT {
			return true
		}
	}
	return false
}

func (b *Bridge) linkPin(ofport uint32) string {
	return filepath.Join(b.dir, fmt.Sprintf("link_port%d", ofport))
}

func (b *Bridge) xdpLinkPin(ofport uint32) string {
	return filepath.Join(b.dir, fmt.Sprintf("xdp_link_port%d", ofport))
}

// attachXDP attaches the XDP program in the driver (native XDP), or fails:
// never in the kernel's generic mode, which runs after the skb is built
// and would make the port slower than TC alone.
func (b *Bridge) attachXDP(prog *ebpf.Program, ofport uint32, name string, ifindex int, kind string) error {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		return xdpAttachError(err, kind)
	}
	defer l.Close()
	b.step("xdp link " + name)
	if err := l.Pin(b.xdpLinkPin(ofport)); err != nil {
		return fmt.Errorf("pin xdp link: %w", err)
	}
	b.step("pin " + filepath.Base(b.xdpLinkPin(ofport)))
	return nil
}

// xdpAttachError says in one line what the kernel or the device lacks
// when a native XDP link cannot be made (err from link.AttachXDP; kind is
// the device's link kind).
func xdpAttachError(err error, kind string) error {
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("--mode xdp: this kernel cannot attach XDP programs by link (Linux 5.9 or later): %w", err)
	case errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL):
		return fmt.Errorf("--mode xdp: the %s device has no native XDP (its driver does not run XDP programs; generic XDP would be slower than --mode tc): %w", kind, err)
	}
	return fmt.Errorf("attach native xdp: %w", err)
}

func (b *Bridge) attachTCX(prog *ebpf.Program, ofport uint32, name string, ifindex int) error {
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   prog,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err != nil {
		return fmt.Errorf("attach tcx ingress: %w", err)
	}
	defer l.Close()
	// Until it is pinned, the link lives as long as this process.
	b.step("tcx link " + name)
	// The pin keeps the link (and so the attachment) alive after we exit.
	if err := l.Pin(b.linkPin(ofport)); err != nil {
		return fmt.Errorf("pin tcx link: %w", err)
	}
	b.step("pin " + filepath.Base(b.linkPin(ofport)))
	return nil
}

// attachTC adds our cls_bpf filter on the clsact ingress hook, creating the
// qdisc first if planned (the device had none). It reports whether it
// created the qdisc.
func (b *Bridge) attachTC(prog *ebpf.Program, lnk netlink.Link, planOwn bool) (ownQdisc bool, err error) {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: lnk.Attrs().Index,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if planOwn {
		if err := netlink.QdiscAdd(qdisc); err == nil {
			ownQdisc = true
			b.step("clsact qdisc " + lnk.Attrs().Name)
		} else if !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("add clsact qdisc: %w", err)
		}
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: lnk.Attrs().Index,
			Parent:    netlink.HANDLE_MIN_INGRESS,
			Handle:    1,
			Protocol:  unix.ETH_P_ALL,
			Priority:  tcFilterPrio,
		},
		Fd:           prog.FD(),
		Name:         tcFilterName,
		DirectAction: true,
	}
	if err := netlink.FilterAdd(filter); err != nil {
		if ownQdisc {
			netlink.QdiscDel(qdisc)
		}
		if errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("add cls_bpf filter: a filter with ebpfovs's priority %#x is already on the device (another bridge's?)", tcFilterPrio)
		}
		return false, fmt.Errorf("add cls_bpf filter: %w", err)
	}
	b.step("cls_bpf filter " + lnk.Attrs().Name)
	return ownQdisc, nil
}

// ourTCFilter returns the cls_bpf filter this bridge puts on lnk's
// ingress hook (our priority, handle and name, and the bridge's program,
// id: another bridge's filter on the device is not ours), or nil.
func ourTCFilter(lnk netlink.Link, id int) *netlink.BpfFilter {
	fs, err := netlink.FilterList(lnk, netlink.HANDLE_MIN_INGRESS)
	if err != nil || id == 0 {
		return nil
	}
	for _, f := range fs {
		bf, ok := f.(*netlink.BpfFilter)
		if ok && bf.Priority == tcFilterPrio && bf.Handle == 1 && strings.HasPrefix(bf.Name, tcFilterName) && bf.Id == id {
			return bf
		}
	}
	return nil
}

// progID is prog's kernel id, or 0.
func progID(prog *ebpf.Program) int {
	if info, err := prog.Info(); err == nil {
		if id, ok := info.ID(); ok {
			return int(id)
		}
	}
	return 0
}

// detachTC removes our filter, and the clsact qdisc if we created it and
// nothing else uses it. A device that is already gone is not an error,
// nor is a filter or qdisc that is (a detach finishing a killed one's).
func (b *Bridge) detachTC(p *bpf.DatapathPort) error {
	lnk, err := netlink.LinkByIndex(int(p.Ifindex))
	if err != nil {
		return nil
	}
	filter := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: int(p.Ifindex),
		Parent:    netlink.HANDLE_MIN_INGRESS,
		Handle:    p.TcHandle,
		Protocol:  unix.ETH_P_ALL,
		Priority:  uint16(p.TcPrio),
	}}
	if err := netlink.FilterDel(filter); err == nil {
		b.step("delete cls_bpf filter " + lnk.Attrs().Name)
	} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete cls_bpf filter: %w", err)
	}
	return b.removeOwnQdisc(p, lnk)
}

// removeOwnQdisc removes the clsact qdisc of a port that created it, if
// no filter is left on it.
func (b *Bridge) removeOwnQdisc(p *bpf.DatapathPort, lnk netlink.Link) error {
	if p.Flags&flagOwnQdisc == 0 || !hasClsact(lnk) {
		return nil
	}
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		if fs, err := netlink.FilterList(lnk, parent); err != nil || len(fs) > 0 {
			return nil // someone else's filters: leave the qdisc
		}
	}
	qdisc := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: int(p.Ifindex),
		Handle:    netlink.MakeHandle(0xffff, 0),
		Parent:    netlink.HANDLE_CLSACT,
	}, QdiscType: "clsact"}
	if err := netlink.QdiscDel(qdisc); err == nil {
		b.step("delete clsact qdisc " + lnk.Attrs().Name)
	} else if !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete clsact qdisc: %w", err)
	}
	return nil
}

// detachProgram takes our programs off the port's device: XDP first, so no
// packet is left passing from XDP to a TC program that is gone.
func (b *Bridge) detachProgram(ofport uint32, p *bpf.DatapathPort) error {
	if p.Flags&flagXDP != 0 {
		if err := b.unpinDetach(b.xdpLinkPin(ofport)); err != nil {
			return fmt.Errorf("xdp: %w", err)
		}
	}
	switch bpf.DatapathAttachMode(p.Mode) {
	case bpf.DatapathAttachModeATTACH_TCX:
		return b.unpinDetach(b.linkPin(ofport))
	case bpf.DatapathAttachModeATTACH_TC:
		return b.detachTC(p)
	}
	return nil
}

// unpinDetach detaches a pinned link and removes its pin; no pin is no error.
func (b *Bridge) unpinDetach(pin string) error {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned link: %w", err)
	}
	defer l.Close()
	// Detach first: a link that is unpinned but still attached would
	// outlive a kill only as long as this process does, but an attached
	// link nobody can find is what a detach must never leave.
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.ENOLINK) {
		return fmt.Errorf("detach link: %w", err)
	}
	b.step("detach " + filepath.Base(pin))
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin link: %w", err)
	}
	b.step("unpin " + filepath.Base(pin))
	return nil
}

// detachPort takes a port off the bridge (detachAs).
func (b *Bridge) detachPort(ofport uint32) error {
	var p bpf.DatapathPort
	if err := b.maps.Ports.Lookup(ofport, &p); err != nil {
		return fmt.Errorf("read port %d: %w", ofport, err)
	}
	if p.Ifindex == 0 {
		return nil
	}
	return b.detachAs(ofport, &p)
}

// detachAs takes port ofport, attached as p, off the bridge: stop steering
// its packets into the pipeline first, then detach the program, then free
// the number. Each step may have been done already (by a killed detach
// this one finishes).
func (b *Bridge) detachAs(ofport uint32, p *bpf.DatapathPort) error {
	var cur uint32
	if b.maps.PortByIfindex.Lookup(p.Ifindex, &cur) == nil && cur == ofport {
		if err := b.maps.PortByIfindex.Delete(p.Ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("port %d: %w", ofport, err)
		}
		b.step("delete port_by_ifindex " + portName(p))
	}
	if err := b.maps.TxPorts.Delete(ofport); err == nil {
		b.step(fmt.Sprintf("delete tx_ports %d", ofport))
	} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("port %d: %w", ofport, err)
	}
	if err := b.detachProgram(ofport, p); err != nil {
		return fmt.Errorf("port %d (%s): %w", ofport, portName(p), err)
	}
	if p.Type == typePatch {
		if err := b.unlinkPeer(ofport, p); err != nil {
			return fmt.Errorf("port %d: %w", ofport, err)
		}
	}
	if p.Type == typeTunnel {
		if err := b.detachTunnel(ofport, p, false); err != nil {
			return fmt.Errorf("port %d: %w", ofport, err)
		}
	}
	if err := b.maps.Ports.Put(ofport, &bpf.DatapathPort{}); err != nil {
		return fmt.Errorf("port %d: %w", ofport, err)
	}
	b.step(fmt.Sprintf("clear ports %d", ofport))
	if p.Type == uint8(bpf.DatapathPortTypePORT_INTERNAL) {
		return b.deleteInternal(portName(p), false)
	}
	return nil
}

// attachNewPatch adds patch port s unless a port of its name is there
// (Already, if it is a patch port).
func (b *Bridge) attachNewPatch(raw map[uint32]bpf.DatapathPort, s PortSpec, begun *[]uint32) (AttachResult, error) {
	if n, p, ok := findPort(raw, s.Name); ok {
		if p.Type != typePatch {
			return AttachResult{}, inputErrorf("%s: a port of that name is on bridge %s already", s.Name, b.opts.Bridge)
		}
		return AttachResult{Already: true, Port: b.portOf(n, &p, nil)}, nil
	}
	ofport, err := b.freeNumber(raw, s)
	if err != nil {
		return AttachResult{}, err
	}
	return b.attachPatch(ofport, s, begun)
}

// freeNumber is s's port number, or the lowest free one.
func (b *Bridge) freeNumber(raw map[uint32]bpf.DatapathPort, s PortSpec) (uint32, error) {
	if s.OFPort != 0 {
		if _, used := raw[s.OFPort]; used {
			return 0, fmt.Errorf("%s=%d: port %d is already in use", s.Name, s.OFPort, s.OFPort)
		}
		return s.OFPort, nil
	}
	for n := uint32(1); n <= MaxPort; n++ {
		if _, used := raw[n]; !used {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%s: bridge %s is full (%d ports)", s.Name, b.opts.Bridge, MaxPort)
}

// updateMaxPort records the highest port number for flooding, and starts a
// new flow-table epoch: walks the datapath cached (flow_cache, emc) may
// name ports that changed.
func (b *Bridge) updateMaxPort() error {
	raw, err := b.rawPorts()
	if err != nil {
		return err
	}
	var cfg bpf.DatapathBridgeConfig
	if err := b.maps.Config.Lookup(uint32(0), &cfg); err != nil {
		return fmt.Errorf("read bridge config: %w", err)
	}
	cfg.MaxPort = 0
	cfg.Epoch = (cfg.Epoch + 1) & 0x7fffffff
	cfg.Flags &^= cfgVLANPorts | cfgPatchPorts | cfgTunnelPorts
	for n, p := range raw {
		if n > cfg.MaxPort {
			cfg.MaxPort = n
		}
		if hasVLANSettings(&p) {
			cfg.Flags |= cfgVLANPorts
		}
		if p.Type == typePatch {
			cfg.Flags |= cfgPatchPorts
		}
		if p.Type == typeTunnel {
			cfg.Flags |= cfgTunnelPorts
		}
	}
	if err := b.maps.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write bridge config: %w", err)
	}
	b.step("config max_port")
	return nil
}

// removeHalfBuilt removes what a killed command left of a bridge it was
// creating (it has no ports: they come after the bridge is complete).
func removeHalfBuilt(opts Options) error {
	opts = opts.withDefaults()
	lock, err := lockDir(opts.BPFFS, opts.LockWait)
	if err != nil {
		return err
	}
	defer lock.Close()
	b := &Bridge{opts: opts, dir: filepath.Join(opts.BPFFS, opts.Bridge)}
	if err := b.destroyPins(); err != nil {
		return fmt.Errorf("bridge %s: remove the half-built bridge: %w", opts.Bridge, err)
	}
	return nil
}

// ingressProgID is the kernel id of the bridge's attached program, or 0.
func (b *Bridge) ingressProgID() int {
	prog, err := loadPinnedProgram(b.dir, pinProgIngress)
	if err != nil {
		return 0
	}
	defer prog.Close()
	return progID(prog)
}

// Detach takes the named ports off the bridge. With no names it detaches
// every port and removes the bridge's pins altogether (also what a killed
// command left of a bridge it was creating). It first finishes or undoes
// what a killed attach or detach left (recoverChanges): a name that
// recovery took off the bridge that way counts as detached.
func Detach(opts Options, names []string) ([]Port, error) {
	b, err := Open(opts)
	if errors.Is(err, errHalfBuilt) && len(names) == 0 {
		return nil, removeHalfBuilt(opts)
	}
	if errors.Is(err, ErrNoBridge) && len(names) == 0 {
		// The empty directory a command killed right after making it, or
		// right before removing it, left: nothing else is there.
		o := opts.withDefaults()
		if os.Remove(filepath.Join(o.BPFFS, o.Bridge)) == nil {
			return nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	var finished []Port
	if err := inNetNS(b.opts.NetNS, func() error {
		var err error
		finished, err = b.recoverChanges()
		return err
	}); err != nil {
		return nil, err
	}
	ports, err := b.Ports()
	if err != nil {
		return nil, err
	}
	byName := map[string]Port{}
	for _, p := range ports {
		byName[p.Name] = p
	}
	var todo, done []Port
	if len(names) == 0 {
		todo = ports
		done = finished
	} else {
	names:
		for _, n := range names {
			if p, ok := byName[n]; ok {
				todo = append(todo, p)
				continue
			}
			for _, p := range finished {
				if p.Name == n {
					done = append(done, p)
					continue names
				}
			}
			return nil, fmt.Errorf("%s: not a port of bridge %s", n, b.opts.Bridge)
		}
	}
	err = inNetNS(b.opts.NetNS, func() error {
		raw, err := b.rawPorts()
		if err != nil {
			return err
		}
		// Every port's detach is recorded before any is begun: a killed
		// call is finished by the next command, all of it.
		var begun []uint32
		for _, p := range todo {
			rp := raw[p.OFPort]
			if err := b.beginChange(p.OFPort, bpf.DatapathPortOpPORT_OP_DETACH, &rp); err != nil {
				return err
			}
			begun = append(begun, p.OFPort)
		}
		var errs []error
		for _, p := range todo {
			rp := raw[p.OFPort]
			if err := b.detachAs(p.OFPort, &rp); err != nil {
				errs = append(errs, err)
			}
		}
		if err := b.updateMaxPort(); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		return b.endChanges(begun)
	})
	if err != nil {
		return nil, err
	}
	done = append(done, todo...)
	if len(names) == 0 {
		if err := b.destroyPins(); err != nil {
			return done, fmt.Errorf("remove pins of bridge %s: %w", b.opts.Bridge, err)
		}
	}
	return done, nil
}

// zeroPortStats starts port ofport's counters at zero, born in the
// current epoch: cache entries of an older one counted the number's
// previous port (emc_fold, emcHits).
func (b *Bridge) zeroPortStats(ofport uint32) {
	zero, err := zeroPerCPU[bpf.DatapathPortCounts]()
	if err != nil {
		return
	}
	var cfg bpf.DatapathBridgeConfig
	if b.maps.Config.Lookup(uint32(0), &cfg) == nil {
		for i := range zero {
			zero[i].Birth = cfg.Epoch
		}
	}
	b.maps.PortStats.Put(ofport, zero)
	b.step(fmt.Sprintf("port_stats %d", ofport))
}
