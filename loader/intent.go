package loader

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// A port change (attach or detach) takes several steps in the kernel: a
// link or a qdisc and a filter, three tables. A command killed between two
// of them would leave a device attached that no table knows, or a table
// entry without its program. So each change is recorded in port_changes
// (bpf/maps.h) before the kernel is touched, and the record is cleared
// when the whole command is done. The next attach or detach finds the
// records a killed command left (recoverChanges): it undoes an attach (the
// command did not report success: all of it goes) and finishes a detach.
// docs/design.md, "Crash consistency".

// beginChange records, before any step of it, what a change of port
// ofport will do: op, and the port as attached (or to be attached).
func (b *Bridge) beginChange(ofport uint32, op bpf.DatapathPortOp, p *bpf.DatapathPort) error {
	c := bpf.DatapathPortChange{Op: op, Port: *p}
	if err := b.maps.PortChanges.Put(ofport, &c); err != nil {
		return fmt.Errorf("record the change of port %d: %w", ofport, err)
	}
	b.step(fmt.Sprintf("record %s port %d", opName(op), ofport))
	return nil
}

// endChanges clears the records of a command's changes: it is done.
func (b *Bridge) endChanges(ofports []uint32) error {
	for _, n := range ofports {
		if err := b.maps.PortChanges.Put(n, &bpf.DatapathPortChange{}); err != nil {
			return fmt.Errorf("clear the change of port %d: %w", n, err)
		}
		b.step(fmt.Sprintf("clear change port %d", n))
	}
	return nil
}

func opName(op bpf.DatapathPortOp) string {
	switch op {
	case bpf.DatapathPortOpPORT_OP_ATTACH:
		return "attach"
	case bpf.DatapathPortOpPORT_OP_DETACH:
		return "detach"
	}
	return "none"
}

// pendingChanges reads the change records left in port_changes, by port.
func (b *Bridge) pendingChanges() (map[uint32]bpf.DatapathPortChange, error) {
	out := map[uint32]bpf.DatapathPortChange{}
	var n uint32
	var c bpf.DatapathPortChange
	it := b.maps.PortChanges.Iterate()
	for it.Next(&n, &c) {
		if c.Op != bpf.DatapathPortOpPORT_OP_NONE {
			out[n] = c
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read port changes: %w", err)
	}
	return out, nil
}

// recoverChanges undoes the attaches and finishes the detaches that a
// command left recorded (killed, or failed and rolling back), newest port
// number first, and returns the ports it took off the bridge either way.
// Runs in the bridge's network namespace.
func (b *Bridge) recoverChanges() ([]Port, error) {
	changes, err := b.pendingChanges()
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	nums := make([]uint32, 0, len(changes))
	for n := range changes {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] })
	var removed []Port
	var errs []error
	for _, n := range nums {
		c := changes[n]
		switch c.Op {
		case bpf.DatapathPortOpPORT_OP_ATTACH:
			err = b.undoAttach(n, &c.Port)
		case bpf.DatapathPortOpPORT_OP_DETACH:
			err = b.detachAs(n, &c.Port)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("recover the interrupted %s of port %d (%s): %w", opName(c.Op), n, portName(&c.Port), err))
			continue
		}
		removed = append(removed, Port{OFPort: n, Name: portName(&c.Port), Ifindex: int(c.Port.Ifindex), Mode: portMode(&c.Port)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := b.updateMaxPort(); err != nil {
		return nil, err
	}
	return removed, b.endChanges(nums)
}

// undoAttach removes whatever an interrupted attach of port ofport, planned
// as p, did: its table entries, its links, its filter (found by the
// bridge's program id: never another's), the clsact qdisc it created. The
// port number was free when the attach began, so what is there is its.
func (b *Bridge) undoAttach(ofport uint32, p *bpf.DatapathPort) error {
	var cur uint32
	if b.maps.PortByIfindex.Lookup(p.Ifindex, &cur) == nil && cur == ofport {
		if err := b.maps.PortByIfindex.Delete(p.Ifindex); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
		b.step("delete port_by_ifindex " + portName(p))
	}
	if err := b.maps.TxPorts.Delete(ofport); err == nil {
		b.step(fmt.Sprintf("delete tx_ports %d", ofport))
	} else if !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	// XDP first, as detachProgram does; both links by their pins, which
	// only this bridge makes; an auto-mode attach may have tried TCX
	// before it fell back to tc.
	if err := b.unpinDetach(b.xdpLinkPin(ofport)); err != nil {
		return fmt.Errorf("xdp: %w", err)
	}
	if err := b.unpinDetach(b.linkPin(ofport)); err != nil {
		return err
	}
	if bpf.DatapathAttachMode(p.Mode) == bpf.DatapathAttachModeATTACH_TC {
		if lnk, err := netlink.LinkByIndex(int(p.Ifindex)); err == nil {
			if ourTCFilter(lnk, b.ingressProgID()) != nil {
				if err := b.detachTC(p); err != nil {
					return err
				}
			} else if err := b.removeOwnQdisc(p, lnk); err != nil {
				return err
			}
		}
	}
	if p.Type == typePatch {
		if err := b.unlinkPeer(ofport, p); err != nil {
			return err
		}
	}
	if p.Type == typeTunnel {
		if err := b.detachTunnel(ofport, p, true); err != nil {
			return err
		}
	}
	if err := b.maps.Ports.Put(ofport, &bpf.DatapathPort{}); err != nil {
		return err
	}
	b.step(fmt.Sprintf("clear ports %d", ofport))
	if p.Type == uint8(bpf.DatapathPortTypePORT_INTERNAL) {
		return b.deleteInternal(portName(p), true)
	}
	return nil
}
