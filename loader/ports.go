package loader

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/flowtable"
	"github.com/ebpfovs/ebpfovs/ofctl"
	"github.com/ebpfovs/ebpfovs/vsctl"
)

// MaxPort is the highest OpenFlow port number a bridge can hold.
const MaxPort = flowtable.MaxPort

// Port is one attached port.
type Port struct {
	OFPort   uint32
	Name     string
	Ifindex  int
	Mode     string // "tcx" or "tc"; "xdp+tcx" or "xdp+tc" in XDP mode
	Peer     bool   // output uses bpf_redirect_peer
	MAC      net.HardwareAddr
	Attached time.Duration // how long ago
	Stats    bpf.DatapathPortCounts
	Config   vsctl.Port // type and VLAN settings, as add-port and set-port take them
	Device   string     // the device the datapath is on: Name, or an internal port's end of its veth pair ("" for a patch port)
	PeerPort uint32     // a patch port's peer's number on its bridge, 0 while it has none
}

// portOf describes port ofport, attached as p.
func (b *Bridge) portOf(ofport uint32, p *bpf.DatapathPort, mac net.HardwareAddr) Port {
	c := b.portConfig(ofport, p)
	c.OFPort = ofport
	dev := c.Name
	switch c.Type {
	case vsctl.Internal:
		dev = b.internalDevice(c.Name)
	case vsctl.Patch:
		dev = ""
	case vsctl.VXLAN, vsctl.Geneve, vsctl.GRE:
		dev = b.tunnelDevice(kindOfPort(p), p.DstPort)
	}
	return Port{
		OFPort:   ofport,
		Name:     c.Name,
		Ifindex:  int(p.Ifindex),
		Mode:     portMode(p),
		Peer:     p.Flags&flagPeer != 0,
		MAC:      mac,
		Attached: time.Duration(monotonicNow() - p.AttachedNs),
		Config:   c,
		Device:   dev,
		PeerPort: p.PeerPort,
	}
}

func modeName(m uint32) string {
	switch bpf.DatapathAttachMode(m) {
	case bpf.DatapathAttachModeATTACH_TCX:
		return "tcx"
	case bpf.DatapathAttachModeATTACH_TC:
		return "tc"
	}
	return "none"
}

// portMode names how the port is attached: tcx, tc, xdp+tcx or xdp+tc;
// patch for a patch port.
func portMode(p *bpf.DatapathPort) string {
	switch p.Type {
	case typePatch:
		return "patch"
	case typeTunnel:
		return string(kindOfPort(p).typ)
	}
	if p.Flags&flagXDP != 0 {
		return "xdp+" + modeName(p.Mode)
	}
	return modeName(p.Mode)
}

func portName(p *bpf.DatapathPort) string {
	b := make([]byte, len(p.Name))
	for i, c := range p.Name {
		b[i] = byte(c)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func setPortName(p *bpf.DatapathPort, name string) {
	for i := range p.Name {
		p.Name[i] = 0
	}
	for i := 0; i < len(name) && i < len(p.Name)-1; i++ {
		p.Name[i] = int8(name[i])
	}
}

// rawPorts reads the port table: OpenFlow number -> entry, attached ports only.
func (b *Bridge) rawPorts() (map[uint32]bpf.DatapathPort, error) {
	out := map[uint32]bpf.DatapathPort{}
	for n := uint32(1); n <= MaxPort; n++ {
		var p bpf.DatapathPort
		if err := b.maps.Ports.Lookup(n, &p); err != nil {
			return nil, fmt.Errorf("read port %d: %w", n, err)
		}
		if portPresent(&p) {
			out[n] = p
		}
	}
	return out, nil
}

// Ports lists the attached ports in OpenFlow number order, with counters
// (and the hits the flow cache's entries hold: emchits.go).
func (b *Bridge) Ports() ([]Port, error) {
	raw, err := b.rawPorts()
	if err != nil {
		return nil, err
	}
	var out []Port
	err = b.withEMCHits(func(h *emcHits) error {
		out = b.portsWithStats(raw, h)
		return nil
	})
	return out, err
}

func (b *Bridge) portsWithStats(raw map[uint32]bpf.DatapathPort, h *emcHits) []Port {
	now := monotonicNow()
	var out []Port
	for n := uint32(1); n <= MaxPort; n++ {
		p, ok := raw[n]
		if !ok {
			continue
		}
		port := b.portOf(n, &p, nil)
		port.Attached = time.Duration(now - p.AttachedNs)
		var per []bpf.DatapathPortCounts
		if err := b.maps.PortStats.Lookup(n, &per); err == nil {
			for _, c := range per {
				port.Stats.RxPackets += c.RxPackets
				port.Stats.RxBytes += c.RxBytes
				port.Stats.TxPackets += c.TxPackets
				port.Stats.TxBytes += c.TxBytes
				port.Stats.RxDropped += c.RxDropped
			}
		}
		port.Stats.RxPackets += h.rx[n].packets
		port.Stats.RxBytes += h.rx[n].bytes
		port.Stats.TxPackets += h.tx[n].packets
		port.Stats.TxBytes += h.tx[n].bytes
		port.Stats.RxDropped += h.rxDropped[n]
		out = append(out, port)
	}
	return out
}

// PortMap resolves port names for the flow parser and printer.
type PortMap struct {
	byName map[string]uint32
	byNum  map[uint32]string
}

// PortNumber implements ofctl.PortMap.
func (m *PortMap) PortNumber(name string) (uint32, bool) {
	n, ok := m.byName[name]
	return n, ok
}

// PortName implements ofctl.PortMap.
func (m *PortMap) PortName(num uint32) (string, bool) {
	s, ok := m.byNum[num]
	return s, ok
}

var _ ofctl.PortMap = (*PortMap)(nil)

// PortMap returns the bridge's current port names.
func (b *Bridge) PortMap() (*PortMap, error) {
	raw, err := b.rawPorts()
	if err != nil {
		return nil, err
	}
	m := &PortMap{byName: map[string]uint32{}, byNum: map[uint32]string{}}
	for n, p := range raw {
		name := portName(&p)
		m.byName[name] = n
		m.byNum[n] = name
	}
	return m, nil
}

// zeroPerCPU returns a zero value for every possible CPU of a per-CPU map.
func zeroPerCPU[T any]() ([]T, error) {
	n, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	return make([]T, n), nil
}
