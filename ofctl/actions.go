package ofctl

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Action is one OpenFlow action.  String returns the text ovs-ofctl
// dump-flows prints for it (port numbers translated with ports when not
// nil).
type Action interface {
	String(ports PortMap) string
}

// Output sends the packet to a port.  Reserved ports print by name
// ("NORMAL", "FLOOD", "ALL", "IN_PORT", "LOCAL", "TABLE"), CONTROLLER prints
// with its maximum length ("CONTROLLER:65535"), physical ports as
// "output:N" (or "output:NAME").
type Output struct {
	Port   uint32
	MaxLen uint16 // bytes sent to the controller; only used for PortController
}

// String implements Action.
func (a Output) String(ports PortMap) string {
	s := ""
	if a.Port < PortMax {
		s = "output:"
	}
	s += formatPort(a.Port, ports)
	if a.Port == PortController {
		s += ":" + strconv.Itoa(int(a.MaxLen))
	}
	return s
}

// OutputReg outputs to the port number found in a subfield.
type OutputReg struct {
	Src Subfield
}

// String implements Action.
func (a OutputReg) String(PortMap) string { return "output:" + a.Src.String() }

// Drop is "drop".  The parser represents "drop" as an empty action list; Drop
// is only useful for printing.
type Drop struct{}

// String implements Action.
func (Drop) String(PortMap) string { return "drop" }

// Controller sends the packet to the controller with options.  A controller
// action without options is parsed as Output{Port: PortController}.
type Controller struct {
	MaxLen   uint16 // default 65535
	Reason   string // "" means "action"
	ID       uint16
	Userdata []byte
	Pause    bool
	MeterID  uint32 // 0 = none
}

// String implements Action.
func (a Controller) String(PortMap) string {
	if (a.Reason == "" || a.Reason == "action") && a.ID == 0 && len(a.Userdata) == 0 && !a.Pause && a.MeterID == 0 {
		return fmt.Sprintf("CONTROLLER:%d", a.MaxLen)
	}
	var parts []string
	if a.Reason != "" && a.Reason != "action" {
		parts = append(parts, "reason="+a.Reason)
	}
	if a.MaxLen != 65535 {
		parts = append(parts, fmt.Sprintf("max_len=%d", a.MaxLen))
	}
	if a.ID != 0 {
		parts = append(parts, fmt.Sprintf("id=%d", a.ID))
	}
	if len(a.Userdata) > 0 {
		parts = append(parts, "userdata="+hexWithDots(a.Userdata))
	}
	if a.Pause {
		parts = append(parts, "pause")
	}
	if a.MeterID != 0 {
		parts = append(parts, fmt.Sprintf("meter_id=%d", a.MeterID))
	}
	return "controller(" + strings.Join(parts, ",") + ")"
}

// CT sends the packet through the connection tracker.
type CT struct {
	Commit bool
	Force  bool
	Table  int // recirculation table, -1 = none
	// Zone is the immediate zone (0 = default zone).
	Zone uint16
	// ZoneField is the subfield holding the zone (e.g. NXM_NX_REG0[0..15]),
	// or nil to use Zone.
	ZoneField *Subfield
	Alg       uint16 // 21 = ftp, 69 = tftp, 0 = none
	// NAT is the nat(...) argument (OVS keeps it as the first nested
	// action; it prints outside exec()).
	NAT *NAT
	// Exec holds the actions of exec(...).
	Exec []Action
}

// String implements Action.
func (a CT) String(ports PortMap) string {
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Force {
		parts = append(parts, "force")
	}
	if a.Table >= 0 && a.Table != 255 {
		parts = append(parts, fmt.Sprintf("table=%d", a.Table))
	}
	if a.ZoneField != nil {
		parts = append(parts, "zone="+a.ZoneField.String())
	} else if a.Zone != 0 {
		parts = append(parts, fmt.Sprintf("zone=%d", a.Zone))
	}
	if a.NAT != nil {
		parts = append(parts, a.NAT.String(ports))
	}
	if len(a.Exec) > 0 {
		parts = append(parts, "exec("+formatActions(a.Exec, ports)+")")
	}
	switch a.Alg {
	case 0:
	case 21:
		parts = append(parts, "alg=ftp")
	case 69:
		parts = append(parts, "alg=tftp")
	default:
		parts = append(parts, fmt.Sprintf("alg=%d", a.Alg))
	}
	return "ct(" + strings.Join(parts, ",") + ")"
}

// NAT is the nat action (only valid inside ct).
type NAT struct {
	Src, Dst   bool       // at most one; neither = use the existing mapping
	AddrMin    netip.Addr // invalid when no address range is given
	AddrMax    netip.Addr // invalid when the range is a single address
	PortMin    uint16
	PortMax    uint16 // 0 when the range is a single port
	Persistent bool
	Hash       bool
	Random     bool
}

// String implements Action.
func (a NAT) String(PortMap) string {
	if !a.Src && !a.Dst {
		return "nat"
	}
	s := "nat("
	if a.Src {
		s += "src"
	} else {
		s += "dst"
	}
	if a.AddrMin.IsValid() {
		s += "="
		if a.AddrMin.Is4() {
			s += a.AddrMin.String()
			if a.AddrMax.IsValid() && a.AddrMax != a.AddrMin {
				s += "-" + a.AddrMax.String()
			}
		} else {
			s += bracketIPv6(a.AddrMin, a.PortMin != 0)
			if a.AddrMax.IsValid() && a.AddrMax != a.AddrMin {
				s += "-" + bracketIPv6(a.AddrMax, a.PortMin != 0)
			}
		}
		if a.PortMin != 0 {
			s += fmt.Sprintf(":%d", a.PortMin)
			if a.PortMax != 0 && a.PortMax != a.PortMin {
				s += fmt.Sprintf("-%d", a.PortMax)
			}
		}
		if a.Persistent {
			s += ",persistent"
		}
		if a.Hash {
			s += ",hash"
		}
		if a.Random {
			s += ",random"
		}
	}
	return s + ")"
}

func bracketIPv6(a netip.Addr, bracket bool) string {
	b := a.As16()
	s := formatIPv6(b[:])
	if bracket {
		return "[" + s + "]"
	}
	return s
}

// CTClear is "ct_clear".
type CTClear struct{}

// String implements Action.
func (CTClear) String(PortMap) string { return "ct_clear" }

// Resubmit searches a table again, optionally with a different in_port.
type Resubmit struct {
	Port  uint32 // PortInPort = keep the packet's in_port (unset)
	Table int    // -1 = the current table (unset)
	CT    bool   // use the conntrack original direction tuple (",ct")
}

// String implements Action.
func (a Resubmit) String(ports PortMap) string {
	table := a.Table
	if table == 255 {
		table = -1
	}
	if a.Port != PortInPort && table < 0 && !a.CT {
		return "resubmit:" + formatPort(a.Port, ports)
	}
	s := "resubmit("
	if a.Port != PortInPort {
		s += formatPort(a.Port, ports)
	}
	s += ","
	if table >= 0 {
		s += strconv.Itoa(table)
	}
	if a.CT {
		s += ",ct"
	}
	return s + ")"
}

// GotoTable is the goto_table instruction.
type GotoTable struct {
	Table uint8
}

// String implements Action.
func (a GotoTable) String(PortMap) string { return fmt.Sprintf("goto_table:%d", a.Table) }

// Note is "note:XX.XX...".  The parser pads the data with zeros as OVS's
// encoding does (to 6, 14, 22, ... bytes).
type Note struct {
	Data []byte
}

// String implements Action.
func (a Note) String(PortMap) string { return "note:" + hexWithDots(a.Data) }

// Load writes a constant into a subfield (at most 64 bits).
type Load struct {
	Dst   Subfield
	Value uint64
}

// String implements Action.
func (a Load) String(PortMap) string { return "load:" + hexC(a.Value) + "->" + a.Dst.String() }

// Move copies a subfield into another one of the same width.
type Move struct {
	Src, Dst Subfield
}

// String implements Action.
func (a Move) String(PortMap) string { return "move:" + a.Src.String() + "->" + a.Dst.String() }

// SetField sets a field to a value under a mask.  The parser never produces
// it: "set_field" is normalized to the action ovs-ofctl dump-flows shows for
// it (mod_dl_src, mod_nw_src, mod_tp_dst, mod_vlan_vid, load, ...).
type SetField struct {
	Field FieldID
	Value []byte
	Mask  []byte // nil = exact
}

// String implements Action.
func (a SetField) String(ports PortMap) string {
	d := &fieldDefs[a.Field]
	return "set_field:" + formatFieldValue(a.Field, a.Value, a.Mask, ports) + "->" + d.mf
}

// ModVlanVid sets the VLAN VID, pushing a VLAN header if there is none.
type ModVlanVid struct{ VID uint16 }

// String implements Action.
func (a ModVlanVid) String(PortMap) string { return fmt.Sprintf("mod_vlan_vid:%d", a.VID) }

// ModVlanPcp sets the VLAN priority, pushing a VLAN header if there is none.
type ModVlanPcp struct{ PCP uint8 }

// String implements Action.
func (a ModVlanPcp) String(PortMap) string { return fmt.Sprintf("mod_vlan_pcp:%d", a.PCP) }

// StripVlan removes the VLAN header ("strip_vlan", also "pop_vlan").
type StripVlan struct{}

// String implements Action.
func (StripVlan) String(PortMap) string { return "strip_vlan" }

// PushVlan pushes a VLAN header with the given TPID.
type PushVlan struct{ EtherType uint16 }

// String implements Action.
func (a PushVlan) String(PortMap) string { return "push_vlan:" + hexC(uint64(a.EtherType)) }

// ModDlSrc sets the Ethernet source.
type ModDlSrc struct{ MAC [6]byte }

// String implements Action.
func (a ModDlSrc) String(PortMap) string { return "mod_dl_src:" + formatMAC(a.MAC[:]) }

// ModDlDst sets the Ethernet destination.
type ModDlDst struct{ MAC [6]byte }

// String implements Action.
func (a ModDlDst) String(PortMap) string { return "mod_dl_dst:" + formatMAC(a.MAC[:]) }

// ModNwSrc sets the IPv4 source.
type ModNwSrc struct{ IP [4]byte }

// String implements Action.
func (a ModNwSrc) String(PortMap) string { return "mod_nw_src:" + formatIPv4(a.IP[:]) }

// ModNwDst sets the IPv4 destination.
type ModNwDst struct{ IP [4]byte }

// String implements Action.
func (a ModNwDst) String(PortMap) string { return "mod_nw_dst:" + formatIPv4(a.IP[:]) }

// ModNwTos sets the DSCP bits of the IP TOS byte (TOS is a multiple of 4).
type ModNwTos struct{ TOS uint8 }

// String implements Action.
func (a ModNwTos) String(PortMap) string { return fmt.Sprintf("mod_nw_tos:%d", a.TOS) }

// ModTpSrc sets the TCP/UDP/SCTP source port.
type ModTpSrc struct{ Port uint16 }

// String implements Action.
func (a ModTpSrc) String(PortMap) string { return fmt.Sprintf("mod_tp_src:%d", a.Port) }

// ModTpDst sets the TCP/UDP/SCTP destination port.
type ModTpDst struct{ Port uint16 }

// String implements Action.
func (a ModTpDst) String(PortMap) string { return fmt.Sprintf("mod_tp_dst:%d", a.Port) }

// DecTTL decrements the IP TTL; ControllerIDs (if any) receive the packet
// when the TTL expires.
type DecTTL struct{ ControllerIDs []uint16 }

// String implements Action.
func (a DecTTL) String(PortMap) string {
	if len(a.ControllerIDs) == 0 {
		return "dec_ttl"
	}
	ids := make([]string, len(a.ControllerIDs))
	for i, id := range a.ControllerIDs {
		ids[i] = strconv.Itoa(int(id))
	}
	return "dec_ttl(" + strings.Join(ids, ",") + ")"
}

// SetTunnel sets the tunnel ID.
type SetTunnel struct {
	ID    uint64
	Use64 bool // "set_tunnel64"
}

// String implements Action.
func (a SetTunnel) String(PortMap) string {
	if a.Use64 || a.ID > 0xffffffff {
		return "set_tunnel64:" + hexC(a.ID)
	}
	return "set_tunnel:" + hexC(a.ID)
}

// SetQueue sets the output queue.
type SetQueue struct{ Queue uint32 }

// String implements Action.
func (a SetQueue) String(PortMap) string { return fmt.Sprintf("set_queue:%d", a.Queue) }

// PopQueue restores the queue to the one the packet arrived with.
type PopQueue struct{}

// String implements Action.
func (PopQueue) String(PortMap) string { return "pop_queue" }

// Exit stops action processing.
type Exit struct{}

// String implements Action.
func (Exit) String(PortMap) string { return "exit" }

// formatActions emulates ofpacts_format(): "drop" for no actions.
func formatActions(acts []Action, ports PortMap) string {
	if len(acts) == 0 {
		return "drop"
	}
	parts := make([]string, len(acts))
	for i, a := range acts {
		parts[i] = a.String(ports)
	}
	return strings.Join(parts, ",")
}
