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
)

// Attach modes.
const (
	ModeAuto = "auto" // TCX where the kernel has it, else tc
	ModeTCX  = "tcx"
	ModeTC   = "tc"  // clsact qdisc + cls_bpf filter in direct-action mode, through netlink
	ModeXDP  = "xdp" // XDP first, for flow tables it can carry out (loader/xdp.go); TCX or tc behind it
)

const (
	flagPeer     = 0x01 // PORT_F_PEER
	flagOwnQdisc = 0x02 // PORT_F_OWN_QDISC
	flagXDP      = 0x04 // PORT_F_XDP
	tcFilterName = "ebpfovs"
	tcFilterPrio = 0xeb0f // our cls_bpf filter's priority on the ingress hook
)

// PortSpec names an interface to attach, optionally with its OpenFlow number.
type PortSpec struct {
	Name   string
	OFPort uint32 // 0 = next free
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
		if err != nil || n < 1 || n > MaxPort {
			return PortSpec{}, fmt.Errorf("%q: port number must be 1..%d", s, MaxPort)
		}
		ps.OFPort = uint32(n)
	}
	return ps, nil
}

// AttachResult reports one port of an Attach call.
type AttachResult struct {
	Port
	Already bool // was attached before this call: nothing changed
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
	}
	opts = opts.withDefaults()
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	// Check the interfaces exist before creating anything.
	if err := inNetNS(opts.NetNS, func() error {
		for _, s := range specs {
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
	var done []uint32
	err := inNetNS(b.opts.NetNS, func() error {
		prog, err := loadPinnedProgram(b.dir, pinProgIngress)
		if err != nil {
			return err
		}
		defer prog.Close()
		var xdp *ebpf.Program
		if mode == ModeXDP {
			if xdp, err = loadPinnedProgram(b.dir, pinProgXDP); err != nil {
				return err
			}
			defer xdp.Close()
		}
		raw, err := b.rawPorts()
		if err != nil {
			return err
		}
		for _, s := range specs {
			r, err := b.attachOne(prog, xdp, raw, s, mode)
			if err != nil {
				return err
			}
			if !r.Already {
				done = append(done, r.OFPort)
				raw[r.OFPort] = bpf.DatapathPort{Ifindex: uint32(r.Ifindex)}
			}
			results = append(results, r)
		}
		return b.updateMaxPort()
	})
	if err != nil {
		// Roll back what this call attached, newest first.
		for i := len(done) - 1; i >= 0; i-- {
			inNetNS(b.opts.NetNS, func() error { return b.detachPort(done[i]) })
		}
		inNetNS(b.opts.NetNS, b.updateMaxPort)
		return nil, err
	}
	return results, nil
}

// attachOne attaches one interface: the TC program (TCX, or tc), and in
// XDP mode the XDP program in front of it.
func (b *Bridge) attachOne(prog, xdp *ebpf.Program, raw map[uint32]bpf.DatapathPort, s PortSpec, mode string) (AttachResult, error) {
	lnk, err := netlink.LinkByName(s.Name)
	if err != nil {
		return AttachResult{}, noSuchInterface(s.Name, b.opts.NetNS)
	}
	attrs := lnk.Attrs()
	ifindex := uint32(attrs.Index)

	var existing uint32
	if err := b.maps.PortByIfindex.Lookup(ifindex, &existing); err == nil {
		if s.OFPort != 0 && s.OFPort != existing {
			return AttachResult{}, fmt.Errorf("%s: already attached as port %d", s.Name, existing)
		}
		p := raw[existing]
		return AttachResult{Already: true, Port: Port{OFPort: existing, Name: portName(&p), Ifindex: int(ifindex),
			Mode: portMode(&p), Peer: p.Flags&flagPeer != 0, MAC: attrs.HardwareAddr}}, nil
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

	port := bpf.DatapathPort{Ifindex: ifindex, AttachedNs: monotonicNow()}
	setPortName(&port, s.Name)
	// A veth whose peer is in another namespace can take bpf_redirect_peer.
	if lnk.Type() == "veth" && attrs.NetNsID >= 0 {
		port.Flags |= flagPeer
	}

	// TCX unless tc is asked for; auto (and xdp, for what XDP passes on)
	// falls back to tc where the kernel has no TCX (before 6.6).
	useTC := mode == ModeTC
	if !useTC {
		err := b.attachTCX(prog, ofport, int(ifindex))
		switch {
		case err == nil:
			port.Mode = uint32(bpf.DatapathAttachModeATTACH_TCX)
		case mode != ModeTCX && errors.Is(err, ebpf.ErrNotSupported):
			useTC = true
		default:
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	if useTC {
		own, err := attachTC(prog, lnk)
		if err != nil {
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		port.Mode = uint32(bpf.DatapathAttachModeATTACH_TC)
		port.TcPrio, port.TcHandle = tcFilterPrio, 1
		if own {
			port.Flags |= flagOwnQdisc
		}
	}

	if xdp != nil {
		if err := b.attachXDP(xdp, ofport, int(ifindex)); err != nil {
			b.detachProgram(ofport, &port)
			return AttachResult{}, fmt.Errorf("%s: %w", s.Name, err)
		}
		port.Flags |= flagXDP
	}

	// The programs pass packets of unknown ifindexes up the stack, so
	// writing the port table after attaching never drops traffic.
	undo := func() {
		b.maps.PortByIfindex.Delete(ifindex)
		b.maps.TxPorts.Delete(ofport)
		b.detachProgram(ofport, &port)
		b.maps.Ports.Put(ofport, &bpf.DatapathPort{})
	}
	if err := b.maps.Ports.Put(ofport, &port); err != nil {
		undo()
		return AttachResult{}, fmt.Errorf("%s: write port table: %w", s.Name, err)
	}
	if err := b.maps.TxPorts.Put(ofport, ifindex); err != nil {
		undo()
		return AttachResult{}, fmt.Errorf("%s: write XDP port map: %w", s.Name, err)
	}
	if err := b.maps.PortByIfindex.Put(ifindex, ofport); err != nil {
		undo()
		return AttachResult{}, fmt.Errorf("%s: write port table: %w", s.Name, err)
	}
	if zero, err := zeroPerCPU[bpf.DatapathPortCounts](); err == nil {
		// Born in the current epoch: cache entries of an older one
		// counted the number's previous port (emc_fold, emcHits).
		var cfg bpf.DatapathBridgeConfig
		if b.maps.Config.Lookup(uint32(0), &cfg) == nil {
			for i := range zero {
				zero[i].Birth = cfg.Epoch
			}
		}
		b.maps.PortStats.Put(ofport, zero)
	}
	return AttachResult{Port: Port{OFPort: ofport, Name: s.Name, Ifindex: int(ifindex), Mode: portMode(&port), Peer: port.Flags&flagPeer != 0, MAC: attrs.HardwareAddr}}, nil
}

func (b *Bridge) linkPin(ofport uint32) string {
	return filepath.Join(b.dir, fmt.Sprintf("link_port%d", ofport))
}

func (b *Bridge) xdpLinkPin(ofport uint32) string {
	return filepath.Join(b.dir, fmt.Sprintf("xdp_link_port%d", ofport))
}

// attachXDP attaches the XDP program in the driver's native mode, or the
// kernel's generic XDP where the driver has none, through a pinned link.
func (b *Bridge) attachXDP(prog *ebpf.Program, ofport uint32, ifindex int) error {
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPGenericMode})
	}
	if err != nil {
		return fmt.Errorf("attach xdp: %w", err)
	}
	defer l.Close()
	if err := l.Pin(b.xdpLinkPin(ofport)); err != nil {
		return fmt.Errorf("pin xdp link: %w", err)
	}
	return nil
}

func (b *Bridge) attachTCX(prog *ebpf.Program, ofport uint32, ifindex int) error {
	if old, err := link.LoadPinnedLink(b.linkPin(ofport), nil); err == nil {
		// Left by an attach killed before it wrote the port table (the
		// port number is free there, or we would not be here): taken
		// over if it is this device's, else removed.
		defer old.Close()
		if info, err := old.Info(); err == nil && info.Type == link.TCXType &&
			info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
			if err := old.Update(prog); err != nil {
				return fmt.Errorf("take over the tcx link left by an interrupted attach: %w", err)
			}
			return nil
		}
		if err := old.Unpin(); err != nil {
			return fmt.Errorf("remove the tcx link left by an interrupted attach: %w", err)
		}
	}
	l, err := link.AttachTCX(link.TCXOptions{
		Interface: ifindex,
		Program:   prog,
		Attach:    ebpf.AttachTCXIngress,
	})
	if err != nil {
		return fmt.Errorf("attach tcx ingress: %w", err)
	}
	defer l.Close()
	// The pin keeps the link (and so the attachment) alive after we exit.
	if err := l.Pin(b.linkPin(ofport)); err != nil {
		return fmt.Errorf("pin tcx link: %w", err)
	}
	return nil
}

// attachTC adds our cls_bpf filter on the clsact ingress hook, creating the
// qdisc if the device has none. It reports whether it created the qdisc.
func attachTC(prog *ebpf.Program, lnk netlink.Link) (ownQdisc bool, err error) {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: lnk.Attrs().Index,
			Handle:    netlink.MakeHandle(0xffff, 0),
			Parent:    netlink.HANDLE_CLSACT,
		},
		QdiscType: "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err == nil {
		ownQdisc = true
	} else if !errors.Is(err, unix.EEXIST) {
		return false, fmt.Errorf("add clsact qdisc: %w", err)
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
	err = netlink.FilterAdd(filter)
	if errors.Is(err, unix.EEXIST) && ourTCFilter(lnk, progID(prog)) != nil {
		// Ours, left by an attach killed before it wrote the port table
		// (the port is not in it, or attachOne would not be here): take
		// it over. The qdisc is taken as ours too if nothing else uses it.
		err = netlink.FilterReplace(filter)
		ownQdisc = onlyOurTCFilter(lnk, progID(prog))
	}
	if err != nil {
		if ownQdisc {
			netlink.QdiscDel(qdisc)
		}
		return false, fmt.Errorf("add cls_bpf filter: %w", err)
	}
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

// onlyOurTCFilter reports whether lnk's clsact hooks hold our filter and
// nothing else.
func onlyOurTCFilter(lnk netlink.Link, id int) bool {
	in, err1 := netlink.FilterList(lnk, netlink.HANDLE_MIN_INGRESS)
	eg, err2 := netlink.FilterList(lnk, netlink.HANDLE_MIN_EGRESS)
	return err1 == nil && err2 == nil && len(in) == 1 && len(eg) == 0 && ourTCFilter(lnk, id) != nil
}

// detachTC removes our filter, and the clsact qdisc if we created it and
// nothing else uses it. A device that is already gone is not an error.
func detachTC(p *bpf.DatapathPort) error {
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
	if err := netlink.FilterDel(filter); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete cls_bpf filter: %w", err)
	}
	if p.Flags&flagOwnQdisc == 0 {
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
	if err := netlink.QdiscDel(qdisc); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("delete clsact qdisc: %w", err)
	}
	return nil
}

// detachProgram takes our programs off the port's device: XDP first, so no
// packet is left passing from XDP to a TC program that is gone.
func (b *Bridge) detachProgram(ofport uint32, p *bpf.DatapathPort) error {
	if p.Flags&flagXDP != 0 {
		if err := unpinDetach(b.xdpLinkPin(ofport)); err != nil {
			return fmt.Errorf("xdp: %w", err)
		}
	}
	switch bpf.DatapathAttachMode(p.Mode) {
	case bpf.DatapathAttachModeATTACH_TCX:
		return unpinDetach(b.linkPin(ofport))
	case bpf.DatapathAttachModeATTACH_TC:
		return detachTC(p)
	}
	return nil
}

// unpinDetach detaches a pinned link and removes its pin; no pin is no error.
func unpinDetach(pin string) error {
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open pinned link: %w", err)
	}
	defer l.Close()
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("unpin link: %w", err)
	}
	// Closing the last reference detaches; Detach makes it immediate
	// even if another process still holds the link open.
	if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.ENOLINK) {
		return fmt.Errorf("detach link: %w", err)
	}
	return nil
}

// detachPort takes a port off the bridge: stop steering its packets into
// the pipeline first, then detach the program, then free the number.
func (b *Bridge) detachPort(ofport uint32) error {
	var p bpf.DatapathPort
	if err := b.maps.Ports.Lookup(ofport, &p); err != nil {
		return fmt.Errorf("read port %d: %w", ofport, err)
	}
	if p.Ifindex == 0 {
		return nil
	}
	if err := b.maps.PortByIfindex.Delete(p.Ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("port %d: %w", ofport, err)
	}
	if err := b.maps.TxPorts.Delete(ofport); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("port %d: %w", ofport, err)
	}
	if err := b.detachProgram(ofport, &p); err != nil {
		return fmt.Errorf("port %d (%s): %w", ofport, portName(&p), err)
	}
	return b.maps.Ports.Put(ofport, &bpf.DatapathPort{})
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
	for n := range raw {
		if n > cfg.MaxPort {
			cfg.MaxPort = n
		}
	}
	if err := b.maps.Config.Put(uint32(0), &cfg); err != nil {
		return fmt.Errorf("write bridge config: %w", err)
	}
	return nil
}

// removeHalfBuilt removes what a killed command left of a bridge it was
// creating (it has no ports: they come after the bridge is complete).
func removeHalfBuilt(opts Options) error {
	opts = opts.withDefaults()
	lock, err := lockDir(opts.BPFFS)
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

// removeLeftoverTC removes the cls_bpf filter of ours (program id) that an
// attach killed before it wrote the port table left on lnk (and the
// clsact qdisc, if nothing else uses it). It reports whether there was
// one. Runs in the bridge's network namespace.
func (b *Bridge) removeLeftoverTC(lnk netlink.Link, id int) bool {
	var ofport uint32
	if b.maps.PortByIfindex.Lookup(uint32(lnk.Attrs().Index), &ofport) == nil || ourTCFilter(lnk, id) == nil {
		return false // a port after all, or nothing of ours
	}
	p := bpf.DatapathPort{Ifindex: uint32(lnk.Attrs().Index), TcPrio: tcFilterPrio, TcHandle: 1}
	if onlyOurTCFilter(lnk, id) {
		p.Flags |= flagOwnQdisc
	}
	detachTC(&p)
	return true
}

// removeLeftoverLinks unpins (and so detaches) the TCX and XDP links of
// ours on the device name that no port of the table owns: what an attach
// killed before it wrote the port table left. It reports whether there
// were any.
func (b *Bridge) removeLeftoverLinks(name string) bool {
	ifindex := 0
	inNetNS(b.opts.NetNS, func() error {
		if lnk, err := netlink.LinkByName(name); err == nil {
			ifindex = lnk.Attrs().Index
		}
		return nil
	})
	var known uint32
	if ifindex == 0 || b.maps.PortByIfindex.Lookup(uint32(ifindex), &known) == nil {
		return false
	}
	pins, _ := filepath.Glob(filepath.Join(b.dir, "*link_port*"))
	found := false
	for _, pin := range pins {
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			continue
		}
		info, err := l.Info()
		on := err == nil && ((info.TCX() != nil && int(info.TCX().Ifindex) == ifindex) ||
			(info.XDP() != nil && int(info.XDP().Ifindex) == ifindex))
		if on && l.Unpin() == nil {
			found = true
		}
		l.Close()
	}
	return found
}

// Detach takes the named ports off the bridge. With no names it detaches
// every port and removes the bridge's pins altogether (also what a killed
// command left of a bridge it was creating).
func Detach(opts Options, names []string) ([]Port, error) {
	b, err := Open(opts)
	if errors.Is(err, errHalfBuilt) && len(names) == 0 {
		return nil, removeHalfBuilt(opts)
	}
	if err != nil {
		return nil, err
	}
	defer b.Close()
	ports, err := b.Ports()
	if err != nil {
		return nil, err
	}
	byName := map[string]Port{}
	for _, p := range ports {
		byName[p.Name] = p
	}
	var todo []Port
	if len(names) == 0 {
		todo = ports
	} else {
		for _, n := range names {
			p, ok := byName[n]
			if !ok {
				leftTC := false
				inNetNS(b.opts.NetNS, func() error {
					if lnk, err := netlink.LinkByName(n); err == nil {
						leftTC = b.removeLeftoverTC(lnk, b.ingressProgID())
					}
					return nil
				})
				if leftLinks := b.removeLeftoverLinks(n); leftTC || leftLinks {
					continue // not a port, but ours was on it: gone now
				}
				return nil, fmt.Errorf("%s: not a port of bridge %s", n, b.opts.Bridge)
			}
			todo = append(todo, p)
		}
	}
	err = inNetNS(b.opts.NetNS, func() error {
		var errs []error
		for _, p := range todo {
			if err := b.detachPort(p.OFPort); err != nil {
				errs = append(errs, err)
			}
		}
		if err := b.updateMaxPort(); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		// Filters an interrupted attach left on devices the port table
		// does not know (the links go with the pins below).
		id := b.ingressProgID()
		inNetNS(b.opts.NetNS, func() error {
			links, _ := netlink.LinkList()
			for _, l := range links {
				b.removeLeftoverTC(l, id)
			}
			return nil
		})
		if err := b.destroyPins(); err != nil {
			return todo, fmt.Errorf("remove pins of bridge %s: %w", b.opts.Bridge, err)
		}
	}
	return todo, nil
}
