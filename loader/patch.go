package loader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// Patch ports join two bridges under the same bpffs root, as OVS's do:
// port P of bridge A with options:peer=Q, and port Q of bridge B with
// options:peer=P. Neither has a device. When both exist, each bridge's
// patch_ports holds the other's tc_patch program at its port's number and
// each port entry the other's number (peer_port): an output to P is a
// tail call into B's pipeline, as received on Q (bpf/actions.h,
// patch_out). A port whose peer is not there yet is kept, as OVS keeps
// it, and sends nothing (patch_no_peer) until the peer is added. Every
// command holds the lock of the whole bpffs root, so one bridge's command
// may write the other's tables.

const typePatch = uint8(bpf.DatapathPortTypePORT_PATCH)

// peerRef is a patch port's peer: its bridge's tables and its number.
type peerRef struct {
	dir    string
	maps   bpf.DatapathMaps
	ofport uint32
	port   bpf.DatapathPort
}

func (r *peerRef) close() { r.maps.Close() }

// findPeer looks for the port named peer on the other bridges under the
// bpffs root, for patch port name of this bridge. nil: there is none.
// A port of that name on this bridge, or one that is not a patch port
// whose peer is name, is an input error.
func (b *Bridge) findPeer(name, peer string) (*peerRef, error) {
	raw, err := b.rawPorts()
	if err != nil {
		return nil, err
	}
	if _, _, ok := findPort(raw, peer); ok {
		return nil, inputErrorf("%s: options:peer=%s: %s is a port of this bridge (%s); a patch port joins two bridges", name, peer, peer, b.opts.Bridge)
	}
	others, err := b.otherBridges()
	if err != nil {
		return nil, err
	}
	for _, other := range others {
		dir := filepath.Join(b.opts.BPFFS, other)
		r := &peerRef{dir: dir}
		if err := loadPinnedMaps(dir, &r.maps); err != nil {
			continue
		}
		for n := uint32(1); n <= MaxPort; n++ {
			var p bpf.DatapathPort
			if r.maps.Ports.Lookup(n, &p) != nil || !portPresent(&p) || portName(&p) != peer {
				continue
			}
			if p.Type != typePatch || cString(p.Peer[:]) != name {
				r.close()
				return nil, inputErrorf("%s: options:peer=%s: %s on bridge %s is not a patch port with options:peer=%s", name, peer, peer, other, name)
			}
			r.ofport, r.port = n, p
			return r, nil
		}
		r.close()
	}
	return nil, nil
}

// linkPeer joins patch port ofport of this bridge (entry p, not yet
// written) to its peer r: r's side first, then ours; p gets the peer's
// number.
func (b *Bridge) linkPeer(ofport uint32, p *bpf.DatapathPort, r *peerRef) error {
	ours, err := loadPinnedProgram(b.dir, pinProgPatch)
	if err != nil {
		return err
	}
	defer ours.Close()
	theirs, err := loadPinnedProgram(r.dir, pinProgPatch)
	if err != nil {
		return err
	}
	defer theirs.Close()
	if err := r.maps.PatchPorts.Put(r.ofport, ours); err != nil {
		return fmt.Errorf("%s: link to its peer: %w", portName(p), err)
	}
	b.step("peer patch_ports")
	r.port.PeerPort = ofport
	if err := r.maps.Ports.Put(r.ofport, &r.port); err != nil {
		return fmt.Errorf("%s: link to its peer: %w", portName(p), err)
	}
	b.step("peer ports")
	if err := r.maps.Config.Update(uint32(0), r.bumpedConfig(), ebpf.UpdateExist); err != nil {
		return fmt.Errorf("%s: link to its peer: %w", portName(p), err)
	}
	if err := b.maps.PatchPorts.Put(ofport, theirs); err != nil {
		return fmt.Errorf("%s: link to its peer: %w", portName(p), err)
	}
	b.step(fmt.Sprintf("patch_ports %d", ofport))
	p.PeerPort = r.ofport
	return nil
}

// bumpedConfig is the peer bridge's config with a new epoch: its cached
// walks (flow_cache, emc) may name the port that changed.
func (r *peerRef) bumpedConfig() *bpf.DatapathBridgeConfig {
	var cfg bpf.DatapathBridgeConfig
	r.maps.Config.Lookup(uint32(0), &cfg)
	cfg.Epoch = (cfg.Epoch + 1) & 0x7fffffff
	return &cfg
}

// unlinkPeer undoes linkPeer for patch port ofport (as p) of this bridge:
// the peer's side, if it is linked to this port, then ours. Each step may
// have been done already.
func (b *Bridge) unlinkPeer(ofport uint32, p *bpf.DatapathPort) error {
	name, peer := portName(p), cString(p.Peer[:])
	others, err := b.otherBridges()
	if err != nil {
		return err
	}
	for _, other := range others {
		var m bpf.DatapathMaps
		if loadPinnedMaps(filepath.Join(b.opts.BPFFS, other), &m) != nil {
			continue
		}
		err := func() error {
			defer m.Close()
			for n := uint32(1); n <= MaxPort; n++ {
				var q bpf.DatapathPort
				if m.Ports.Lookup(n, &q) != nil || q.Type != typePatch || portName(&q) != peer ||
					cString(q.Peer[:]) != name || q.PeerPort != ofport {
					continue
				}
				q.PeerPort = 0
				if err := m.Ports.Put(n, &q); err != nil {
					return err
				}
				b.step("peer ports")
				if err := m.PatchPorts.Delete(n); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
					return err
				}
				b.step("peer patch_ports")
			}
			return nil
		}()
		if err != nil {
			return fmt.Errorf("%s: unlink its peer on bridge %s: %w", name, other, err)
		}
	}
	if err := b.maps.PatchPorts.Delete(ofport); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("%s: %w", name, err)
	}
	b.step(fmt.Sprintf("delete patch_ports %d", ofport))
	return nil
}

// attachPatch adds patch port s as number ofport: recorded, then joined to
// its peer if it exists, then in the port table.
func (b *Bridge) attachPatch(ofport uint32, s PortSpec, begun *[]uint32) (AttachResult, error) {
	cfg := *s.Config
	peer, err := b.findPeer(s.Name, cfg.Options["peer"])
	if err != nil {
		return AttachResult{}, err
	}
	if peer != nil {
		defer peer.close()
	}
	port := bpf.DatapathPort{AttachedNs: monotonicNow()}
	setPortName(&port, s.Name)
	setPortConfig(&port, cfg)
	setCString(port.Peer[:], cfg.Options["peer"])
	if err := b.beginChange(ofport, bpf.DatapathPortOpPORT_OP_ATTACH, &port); err != nil {
		return AttachResult{}, err
	}
	*begun = append(*begun, ofport)
	if peer != nil {
		if err := b.linkPeer(ofport, &port, peer); err != nil {
			return AttachResult{}, err
		}
	}
	if err := b.writePort(ofport, cfg, &port); err != nil {
		return AttachResult{}, err
	}
	return AttachResult{Port: b.portOf(ofport, &port, nil)}, nil
}

// PeerBridge names the bridge of a patch port's peer, or "" while it has
// none.
func (b *Bridge) PeerBridge(p Port) string {
	if p.Config.Type != vsctl.Patch || p.PeerPort == 0 {
		return ""
	}
	others, _ := b.otherBridges()
	for _, other := range others {
		m, err := ebpf.LoadPinnedMap(filepath.Join(b.opts.BPFFS, other, "ports"), nil)
		if err != nil {
			continue
		}
		var q bpf.DatapathPort
		found := m.Lookup(p.PeerPort, &q) == nil && q.Type == typePatch &&
			portName(&q) == p.Config.Options["peer"] && cString(q.Peer[:]) == p.Name
		m.Close()
		if found {
			return other
		}
	}
	return ""
}

// otherBridges names the bridges under the same bpffs root as this one,
// pinned by this version (a patch port's peer can only be on one of them).
func (b *Bridge) otherBridges() ([]string, error) {
	entries, err := os.ReadDir(b.opts.BPFFS)
	if err != nil {
		return nil, fmt.Errorf("list bridges: %w", err)
	}
	var out []string
	for _, e := range entries {
		dir := filepath.Join(b.opts.BPFFS, e.Name())
		if e.IsDir() && dir != b.dir && pinnedLayout(dir) == pinLayout {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// portPresent: the port table's entry is a port (one with a device, or a
// patch port, which has none), as bpf/common.h's port_present.
func portPresent(p *bpf.DatapathPort) bool {
	return p.Ifindex != 0 || p.Type == typePatch
}

func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

func setCString(b []int8, s string) {
	for i := range b {
		b[i] = 0
	}
	for i := 0; i < len(s) && i < len(b)-1; i++ {
		b[i] = int8(s[i])
	}
}
