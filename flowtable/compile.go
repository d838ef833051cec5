package flowtable

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// keyBytes is struct flow_key as bytes: fields are big-endian in the datapath.
type keyBytes [248]byte

// maxGather is MAX_GATHER: the key words one subtable hashes.
const maxGather = int(bpf.DatapathGatherMAX_GATHER)

// maskWordZero is MASK_WORD_ZERO (bpf/common.h): a word of struct
// flow_mask past the key, always zero, that unused gather slots name.
const maskWordZero = uint8(bpf.DatapathMaskWordMASK_WORD_ZERO)

// words lists the 8-byte words of the key a mask covers.
func (k *keyBytes) words() []uint8 {
	var ws []uint8
	for w := 0; w < len(k)/8; w++ {
		for _, b := range k[w*8 : w*8+8] {
			if b != 0 {
				ws = append(ws, uint8(w))
				break
			}
		}
	}
	return ws
}

// gather is the part of a masked key a subtable hashes: its words, in
// order, zero after the last (as classify() builds it).
func (k *keyBytes) gather(words []uint8) [maxGather]uint64 {
	var out [maxGather]uint64
	for i, w := range words {
		out[i] = binary.NativeEndian.Uint64(k[int(w)*8:])
	}
	return out
}

func init() {
	if unsafe.Sizeof(bpf.DatapathFlowKey{}) != unsafe.Sizeof(keyBytes{}) {
		panic("flow_key size changed: update keyBytes")
	}
}

func (k *keyBytes) flowKey() bpf.DatapathFlowKey {
	return *(*bpf.DatapathFlowKey)(unsafe.Pointer(k))
}

// keyBytesOf is the inverse of flowKey.
func keyBytesOf(k *bpf.DatapathFlowKey) keyBytes {
	return *(*keyBytes)(unsafe.Pointer(k))
}

// keySlot says where a match field lives in struct flow_key.
type keySlot struct {
	off, size int
}

var fk bpf.DatapathFlowKey

// fieldSlots maps every match field the datapath implements to its bytes
// in the key. Sub-byte fields (icmp_type in tp_src, nw_ecn in nw_tos) use
// the slot of their storage, as Open vSwitch stores them.
var fieldSlots = map[ofctl.FieldID]keySlot{
	ofctl.FieldInPort:    {int(unsafe.Offsetof(fk.InPort)), 4},
	ofctl.FieldCtState:   {int(unsafe.Offsetof(fk.CtState)), 4},
	ofctl.FieldDlDst:     {int(unsafe.Offsetof(fk.DlDst)), 6},
	ofctl.FieldDlSrc:     {int(unsafe.Offsetof(fk.DlSrc)), 6},
	ofctl.FieldDlType:    {int(unsafe.Offsetof(fk.DlType)), 2},
	ofctl.FieldVlanTCI:   {int(unsafe.Offsetof(fk.VlanTci)), 2},
	ofctl.FieldNwSrc:     {int(unsafe.Offsetof(fk.NwSrc)), 4},
	ofctl.FieldNwDst:     {int(unsafe.Offsetof(fk.NwDst)), 4},
	ofctl.FieldArpSpa:    {int(unsafe.Offsetof(fk.NwSrc)), 4},
	ofctl.FieldArpTpa:    {int(unsafe.Offsetof(fk.NwDst)), 4},
	ofctl.FieldNwProto:   {int(unsafe.Offsetof(fk.NwProto)), 1},
	ofctl.FieldNwTos:     {int(unsafe.Offsetof(fk.NwTos)), 1},
	ofctl.FieldNwEcn:     {int(unsafe.Offsetof(fk.NwTos)), 1},
	ofctl.FieldNwTTL:     {int(unsafe.Offsetof(fk.NwTtl)), 1},
	ofctl.FieldIPFrag:    {int(unsafe.Offsetof(fk.NwFrag)), 1},
	ofctl.FieldTpSrc:     {int(unsafe.Offsetof(fk.TpSrc)), 2},
	ofctl.FieldTpDst:     {int(unsafe.Offsetof(fk.TpDst)), 2},
	ofctl.FieldIcmpType:  {int(unsafe.Offsetof(fk.TpSrc)) + 1, 1},
	ofctl.FieldIcmpCode:  {int(unsafe.Offsetof(fk.TpDst)) + 1, 1},
	ofctl.FieldCtZone:    {int(unsafe.Offsetof(fk.CtZone)), 2},
	ofctl.FieldTCPFlags:  {int(unsafe.Offsetof(fk.TcpFlags)), 2},
	ofctl.FieldCtMark:    {int(unsafe.Offsetof(fk.CtMark)), 4},
	ofctl.FieldMetadata:  {int(unsafe.Offsetof(fk.Metadata)), 8},
	ofctl.FieldIPv6Src:   {int(unsafe.Offsetof(fk.Ipv6Src)), 16},
	ofctl.FieldIPv6Dst:   {int(unsafe.Offsetof(fk.Ipv6Dst)), 16},
	ofctl.FieldIPv6Label: {int(unsafe.Offsetof(fk.Ipv6Label)), 4},
	ofctl.FieldCtLabel:   {int(unsafe.Offsetof(fk.CtLabel)), 16},
	ofctl.FieldArpSha:    {int(unsafe.Offsetof(fk.ArpSha)), 6},
	ofctl.FieldArpTha:    {int(unsafe.Offsetof(fk.ArpTha)), 6},
	ofctl.FieldPktMark:   {int(unsafe.Offsetof(fk.PktMark)), 4},
	ofctl.FieldTunID:     {int(unsafe.Offsetof(fk.TunId)), 8},
	ofctl.FieldTunSrc:    {int(unsafe.Offsetof(fk.TunSrc)), 4},
	ofctl.FieldTunDst:    {int(unsafe.Offsetof(fk.TunDst)), 4},
	// The connection's original tuple, which a ct(table=N) pass sets
	// (bpf/actions.h's ct_orig_tuple): an IPv4 address is the first word
	// of its IPv6 slot, as the datapath writes it.
	ofctl.FieldCtNwSrc:   {int(unsafe.Offsetof(fk.CtIpv6Src)), 4},
	ofctl.FieldCtNwDst:   {int(unsafe.Offsetof(fk.CtIpv6Dst)), 4},
	ofctl.FieldCtIPv6Src: {int(unsafe.Offsetof(fk.CtIpv6Src)), 16},
	ofctl.FieldCtIPv6Dst: {int(unsafe.Offsetof(fk.CtIpv6Dst)), 16},
	ofctl.FieldCtTpSrc:   {int(unsafe.Offsetof(fk.CtTpSrc)), 2},
	ofctl.FieldCtTpDst:   {int(unsafe.Offsetof(fk.CtTpDst)), 2},
	ofctl.FieldCtNwProto: {int(unsafe.Offsetof(fk.CtNwProto)), 1},
	// OXM_OF_IN_PORT, a view no match holds, is read as a source (move,
	// ct(zone=...)): the key's in_port. Its 32-bit OpenFlow 1.1+ value
	// differs from in_port's only for reserved ports (0xffffff00 and up),
	// which no packet's in_port is here.
	ofctl.FieldInPortOXM: {int(unsafe.Offsetof(fk.InPort)), 4},
}

func init() {
	for i := 0; i < 16; i++ {
		fieldSlots[ofctl.FieldReg0+ofctl.FieldID(i)] = keySlot{int(unsafe.Offsetof(fk.Regs)) + 4*i, 4}
	}
}

// Compiled is a flow as the datapath sees it: its key and mask as struct
// flow_key bytes, its actions as struct action_list.
type Compiled struct {
	table    uint32
	priority uint32
	key      keyBytes // already masked
	mask     keyBytes
	actions  bpf.DatapathActionList
	idle     uint16     // idle_timeout, s
	learns   []learnTpl // its learn actions (Build gives each its template id)
}

// errUnsupported reports what the parser accepts but the datapath cannot do yet.
func errUnsupported(what string) error {
	return fmt.Errorf("%s: not yet supported by the ebpfovs datapath", what)
}

// compileMatch writes the flow's match into key and mask.
func compileMatch(m *ofctl.Match) (key, mask keyBytes, err error) {
	for _, fm := range m.Fields() {
		if fm.Field == ofctl.FieldArpOp {
			// The datapath keeps arp_op in nw_proto, as OVS does for ops < 256.
			v := uint16(fm.Value[0])<<8 | uint16(fm.Value[1])
			mk := uint16(fm.Mask[0])<<8 | uint16(fm.Mask[1])
			if v > 0xff || mk&0xff00 != 0 && mk != 0xffff {
				return key, mask, fmt.Errorf("arp_op=%d: only opcodes up to 255 are supported", v)
			}
			off := int(unsafe.Offsetof(fk.NwProto))
			key[off] |= byte(v)
			mask[off] |= byte(mk)
			continue
		}
		slot, ok := fieldSlots[fm.Field]
		if !ok {
			return key, mask, errUnsupported(fm.Field.Info().Name)
		}
		if len(fm.Value) != slot.size || len(fm.Mask) != slot.size {
			return key, mask, fmt.Errorf("%s: field is %d bytes, datapath slot %d", fm.Field.Info().Name, len(fm.Value), slot.size)
		}
		for i := 0; i < slot.size; i++ {
			mask[slot.off+i] |= fm.Mask[i]
			key[slot.off+i] |= fm.Value[i] & fm.Mask[i]
		}
	}
	return key, mask, nil
}

// compileActions encodes an action list for the datapath.
func compileActions(acts []ofctl.Action) (bpf.DatapathActionList, error) {
	return compileActionsLearn(acts, nil)
}

// compileActionsLearn is compileActions, adding each learn action's
// template to *learns (nil: learn is refused, as inside a learned flow).
func compileActionsLearn(acts []ofctl.Action, learns *[]learnTpl) (bpf.DatapathActionList, error) {
	var out bpf.DatapathActionList
	add := func(a bpf.DatapathAction) error {
		if int(out.N) >= len(out.A) {
			return inputErrorf("too many actions: the datapath runs at most %d per flow", len(out.A))
		}
		out.A[out.N] = a
		out.N++
		return nil
	}
	// The header fields a run of writes changed in the key, written into
	// the packet (ACT_HDR_COMMIT: hdr.go) before any other action.
	var commit uint32
	flush := func() error {
		if commit == 0 {
			return nil
		}
		c := commit
		commit = 0
		return add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_HDR_COMMIT), Arg: c})
	}
	for _, a := range acts {
		var err error
		if !headerWrite(a) {
			if err := flush(); err != nil {
				return out, err
			}
		}
		switch a := a.(type) {
		case ofctl.Drop, *ofctl.Drop:
		case ofctl.SetTunnel:
			err = keyLoad(ofctl.Subfield{Field: ofctl.FieldTunID, NBits: 64}, a.ID, add)
		case *ofctl.SetTunnel:
			err = keyLoad(ofctl.Subfield{Field: ofctl.FieldTunID, NBits: 64}, a.ID, add)
		case ofctl.Note, *ofctl.Note:
			// A note is for controllers; the datapath does nothing with it.
		case ofctl.CTClear, *ofctl.CTClear:
			err = add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_CT_CLEAR)})
		case ofctl.Exit, *ofctl.Exit:
			err = add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_EXIT)})
		case ofctl.Output:
			err = compileOutput(a.Port, add)
		case *ofctl.Output:
			err = compileOutput(a.Port, add)
		case ofctl.CT:
			err = compileCT(&a, add)
		case *ofctl.CT:
			err = compileCT(a, add)
		case ofctl.Resubmit:
			err = compileResubmit(a, add)
		case *ofctl.Resubmit:
			err = compileResubmit(*a, add)
		case ofctl.Load:
			var done bool
			if done, err = compileVlanTCILoad(a, add); !done && err == nil {
				done, err = compileLoad(a, add)
			}
			if !done && err == nil {
				var c uint32
				c, err = compileHdrLoad(a, add)
				commit |= c
				done = c != 0
			}
			if !done && err == nil {
				var act bpf.DatapathAction
				if act, _, err = compileRewrite(a); err == nil {
					err = add(act)
				}
			}
		case ofctl.Move:
			var c uint32
			switch {
			case tunnelFields[a.Dst.Field]:
				err = keyMove(a, add)
			default:
				if c, err = compileHdrMove(a, add); c == 0 {
					err = compileMove(a, false, add)
				}
			}
			commit |= c
		case ofctl.FinTimeout:
			// Only in a learned flow (ofctl parses no other): the datapath
			// writes the flow's learned slot into the low 16 bits.
			err = add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_FIN_TIMEOUT), Aux: a.IdleTimeout, Arg: uint32(a.HardTimeout) << 16})
		case ofctl.Learn:
			err = compileLearnAction(&a, learns, int(out.N), add)
		case *ofctl.Learn:
			err = compileLearnAction(a, learns, int(out.N), add)
		case ofctl.GotoTable:
			// goto_table ends the action list, where it is a resubmit.
			err = add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_RESUBMIT), Arg: uint32(a.Table)})
		case *ofctl.GotoTable:
			err = add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_RESUBMIT), Arg: uint32(a.Table)})
		default:
			act, ok, cerr := compileRewrite(a)
			if cerr != nil {
				return out, cerr
			}
			if !ok {
				return out, errUnsupported(fmt.Sprintf("action %s", a.String(nil)))
			}
			err = add(act)
		}
		if err != nil {
			return out, err
		}
	}
	return out, flush()
}

// headerWrite: a load or move into a header field (hdr.go), or a rewrite
// that writes key and packet at once (mod_dl_src, ...), which a run of
// header writes may hold.
func headerWrite(a ofctl.Action) bool {
	switch a := a.(type) {
	case ofctl.Load:
		_, ok := headerFields[a.Dst.Field]
		return ok && !(a.Dst.Field == ofctl.FieldNwTTL && a.Dst.Ofs == 0 && a.Dst.NBits == 8)
	case ofctl.Move:
		_, ok := headerFields[a.Dst.Field]
		return ok
	case ofctl.ModDlSrc, ofctl.ModDlDst:
		return true
	}
	return false
}

func compileOutput(port uint32, add func(bpf.DatapathAction) error) error {
	a := bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_OUTPUT), Arg: port}
	switch {
	case port >= 1 && port < ofctl.PortMax:
		if port > MaxPort {
			return fmt.Errorf("output:%d: ports above %d are not supported", port, MaxPort)
		}
	case port == ofctl.PortInPort:
		a.Arg = ofctl.PortInPort // OpenFlow's OFPP_IN_PORT, as the datapath reads it
	case port == ofctl.PortNormal:
		a = bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_NORMAL)}
	case port == ofctl.PortFlood:
		a = bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_FLOOD)}
	case port == ofctl.PortAll:
		a = bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_FLOOD)}
	case port == ofctl.PortLocal:
		return errUnsupported("output to LOCAL (a bridge has no local port)")
	case port == ofctl.PortController:
		return errUnsupported("controller (ebpfovs has no OpenFlow controller connection)")
	default:
		return fmt.Errorf("output:%d: invalid port", port)
	}
	return add(a)
}

func compileCT(ct *ofctl.CT, add func(bpf.DatapathAction) error) error {
	if ct.Alg != 0 {
		return errUnsupported("ct(alg)")
	}
	if ct.NAT != nil {
		// The range first: ACT_NAT_RANGE leaves it for the ct() (ct_nat.h).
		if err := compileNATRange(ct.NAT, add); err != nil {
			return err
		}
	}
	a := bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_CT), Aux: ct.Zone, Arg: noTable}
	if ct.NAT != nil {
		a.Flags |= uint8(bpf.DatapathCtFlagCT_NAT)
	}
	// With exec() or nat, the copy a ct(table=N) forks must carry what they
	// do: ACT_CT_END forks it after them.
	deferred := ct.NAT != nil || len(ct.Exec) > 0
	if deferred {
		a.Flags |= uint8(bpf.DatapathCtFlagCT_DEFER)
	}
	if ct.Commit {
		a.Flags |= uint8(bpf.DatapathCtFlagCT_COMMIT)
	}
	if ct.Force {
		a.Flags |= uint8(bpf.DatapathCtFlagCT_FORCE)
	}
	if ct.Table >= 0 {
		a.Arg = uint32(ct.Table)
	}
	if sf := ct.ZoneField; sf != nil {
		p, err := sourcePieces(*sf)
		if err == nil && len(p) != 1 {
			err = errUnsupported("a zone whose 16 bits lie in two 32-bit words of the datapath's key")
		}
		if err == nil && sf.NBits != 16 {
			err = errors.New("a zone is 16 bits")
		}
		if err != nil {
			return fmt.Errorf("ct(zone=%s): %w", sf, err)
		}
		a.Flags |= uint8(bpf.DatapathCtFlagCT_ZONE_FIELD)
		a.Aux = p[0].field<<8 | uint16(p[0].ofs)
	}
	if err := add(a); err != nil {
		return err
	}
	if ct.NAT != nil {
		// The translation conntrack found, applied to the packet (TC).
		if err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_NAT)}); err != nil {
			return err
		}
	}
	// exec(set_field:V/M->ct_mark|ct_label) arrives as loads; they run right
	// after the ct action, on the connection it committed.
	for _, x := range ct.Exec {
		if mv, ok := x.(ofctl.Move); ok {
			if err := compileMove(mv, true, add); err != nil {
				return err
			}
			continue
		}
		ld, ok := x.(ofctl.Load)
		if !ok {
			return errUnsupported("ct(exec(" + x.String(nil) + "))")
		}
		var field uint16
		switch ld.Dst.Field {
		case ofctl.FieldCtMark:
			field = pfCtMark
		case ofctl.FieldCtLabel:
			field = pfCtLabel
		default:
			return errUnsupported("ct(exec(" + x.String(nil) + "))")
		}
		// One action per 32-bit word the load touches.
		ofs, end, v := ld.Dst.Ofs, ld.Dst.Ofs+ld.Dst.NBits, ld.Value
		for ofs < end {
			hi := min(end, (ofs/32+1)*32)
			n := hi - ofs
			err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_LOAD), Aux: field<<8 | uint16(ofs),
				Flags: uint8(n), Arg: uint32(v & (1<<n - 1))})
			if err != nil {
				return err
			}
			v >>= n
			ofs = hi
		}
	}
	if deferred {
		return add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_CT_END), Arg: a.Arg})
	}
	return nil
}

// compileRewrite encodes the actions that change the packet (rewrite.h).
// ok is false for actions it does not know.
func compileRewrite(a ofctl.Action) (act bpf.DatapathAction, ok bool, err error) {
	typ := func(t bpf.DatapathActionType) uint8 { return uint8(t) }
	dl := func(flags uint8, mac [6]byte) bpf.DatapathAction {
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_DL), Flags: flags,
			Aux: uint16(mac[0])<<8 | uint16(mac[1]), Arg: binary.BigEndian.Uint32(mac[2:])}
	}
	switch a := a.(type) {
	case ofctl.ModDlSrc:
		return dl(setSrc, a.MAC), true, nil
	case ofctl.ModDlDst:
		return dl(setDst, a.MAC), true, nil
	case ofctl.ModNwSrc:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_NW), Flags: setSrc, Arg: binary.BigEndian.Uint32(a.IP[:])}, true, nil
	case ofctl.ModNwDst:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_NW), Flags: setDst, Arg: binary.BigEndian.Uint32(a.IP[:])}, true, nil
	case ofctl.ModTpSrc:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_TP), Flags: setSrc, Aux: a.Port}, true, nil
	case ofctl.ModTpDst:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_TP), Flags: setDst, Aux: a.Port}, true, nil
	case ofctl.ModNwTos:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_TOS), Arg: uint32(a.TOS)}, true, nil
	case ofctl.DecTTL:
		if len(a.ControllerIDs) > 0 {
			return act, false, errUnsupported("dec_ttl(controller ids) (ebpfovs has no controller)")
		}
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_DEC_TTL)}, true, nil
	case ofctl.ModVlanVid:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_VLAN), Flags: vlanSetVID, Aux: a.VID}, true, nil
	case ofctl.ModVlanPcp:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_VLAN), Flags: vlanSetPCP, Aux: uint16(a.PCP)}, true, nil
	case ofctl.StripVlan:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_VLAN), Flags: vlanStrip}, true, nil
	case ofctl.PushVlan:
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_VLAN), Flags: vlanPush, Aux: a.EtherType}, true, nil
	case ofctl.Load:
		// mod_nw_ttl is a load into the whole IP TTL field.
		if a.Dst.Field == ofctl.FieldNwTTL && a.Dst.Ofs == 0 && a.Dst.NBits == 8 {
			return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_SET_TTL), Arg: uint32(a.Value)}, true, nil
		}
		return act, false, errUnsupported(fmt.Sprintf("action %s", a.String(nil)))
	case ofctl.OutputReg:
		p, err := sourcePieces(a.Src)
		if err != nil || len(p) != 1 || a.Src.NBits > 32 {
			return act, false, errUnsupported(fmt.Sprintf("action %s", a.String(nil)))
		}
		return bpf.DatapathAction{Type: typ(bpf.DatapathActionTypeACT_OUTPUT_REG), Aux: p[0].field<<8 | uint16(p[0].ofs), Flags: uint8(a.Src.NBits)}, true, nil
	}
	return act, false, nil
}

// pipelineField is the datapath's number for a register, metadata or
// pkt_mark (ACT_LOAD/ACT_MOVE/ACT_OUTPUT_REG: 0..15 the registers, then
// PF_METADATA; PF_PKT_MARK, which ACT_LOAD does not write: ACT_SET_MARK does).
func pipelineField(f ofctl.FieldID) (uint16, bool) {
	switch {
	case f >= ofctl.FieldReg0 && f <= ofctl.FieldReg15:
		return uint16(f - ofctl.FieldReg0), true
	case f == ofctl.FieldMetadata:
		return pfMetadata, true
	case f == ofctl.FieldPktMark:
		return pfPktMark, true
	}
	return 0, false
}

// compileLoad encodes a load into a register, metadata, pkt_mark or an
// IPv6 address or label: one action per 32 bits of value (the action's
// argument is 32 bits wide).
func compileLoad(a ofctl.Load, add func(bpf.DatapathAction) error) (bool, error) {
	switch a.Dst.Field {
	case ofctl.FieldPktMark:
		return true, add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_SET_MARK), Aux: uint16(a.Dst.Ofs),
			Flags: uint8(a.Dst.NBits), Arg: uint32(a.Value)})
	case ofctl.FieldIPv6Src, ofctl.FieldIPv6Dst, ofctl.FieldIPv6Label:
		return true, compileSetIPv6(a, add)
	case ofctl.FieldTunID, ofctl.FieldTunSrc, ofctl.FieldTunDst:
		return true, keyLoad(a.Dst, a.Value, add)
	}
	f, ok := pipelineField(a.Dst.Field)
	if !ok {
		return false, nil
	}
	ofs, n, v := a.Dst.Ofs, a.Dst.NBits, a.Value
	for n > 0 {
		part := min(n, 32)
		err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_LOAD), Aux: f<<8 | uint16(ofs), Flags: uint8(part), Arg: uint32(v)})
		if err != nil {
			return true, err
		}
		ofs, n, v = ofs+part, n-part, v>>32
	}
	return true, nil
}

// compileSetIPv6 encodes a load into ipv6_src, ipv6_dst (bits 0..127,
// bit 0 the last bit of the address) or ipv6_label as ACT_SET_IP6
// actions, one per 32-bit word of the header it touches.
func compileSetIPv6(a ofctl.Load, add func(bpf.DatapathAction) error) error {
	var flags uint8
	switch a.Dst.Field {
	case ofctl.FieldIPv6Src:
		flags = setSrc
	case ofctl.FieldIPv6Dst:
		flags = setDst
	case ofctl.FieldIPv6Label:
		flags = setLabel
		if a.Dst.Ofs+a.Dst.NBits > 20 {
			return fmt.Errorf("action %s: the flow label is 20 bits", a.String(nil))
		}
	}
	ofs, end, v := a.Dst.Ofs, a.Dst.Ofs+a.Dst.NBits, a.Value
	for ofs < end {
		hi := min(end, (ofs/32+1)*32)
		n := hi - ofs
		word := 3 - ofs/32 // the header stores the address's high word first
		if flags == setLabel {
			word = 0
		}
		err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_SET_IP6), Flags: flags,
			Aux: uint16(word<<12 | n<<5 | ofs%32), Arg: uint32(v&(1<<n-1)) << (ofs % 32)})
		if err != nil {
			return err
		}
		v >>= n
		ofs = hi
	}
	return nil
}

// ct(exec) and pkt_mark fields of ACT_LOAD/ACT_MOVE (bpf/common.h's enum packet_field).
const (
	pfMetadata = uint16(bpf.DatapathPacketFieldPF_METADATA)
	pfCtMark   = uint16(bpf.DatapathPacketFieldPF_CT_MARK)
	pfCtLabel  = uint16(bpf.DatapathPacketFieldPF_CT_LABEL)
	pfPktMark  = uint16(bpf.DatapathPacketFieldPF_PKT_MARK)
	pfKey      = uint16(bpf.DatapathPacketFieldPF_KEY)
)

// Flags of the rewrite actions (bpf/common.h's enum set_flag and enum vlan_op).
const (
	setSrc     = uint8(bpf.DatapathSetFlagSET_SRC)
	setDst     = uint8(bpf.DatapathSetFlagSET_DST)
	setLabel   = uint8(bpf.DatapathSetFlagSET_LABEL)
	vlanSetVID = uint8(bpf.DatapathVlanOpVLAN_SET_VID)
	vlanSetPCP = uint8(bpf.DatapathVlanOpVLAN_SET_PCP)
	vlanStrip  = uint8(bpf.DatapathVlanOpVLAN_STRIP)
	vlanPush   = uint8(bpf.DatapathVlanOpVLAN_PUSH)
)

func compileResubmit(r ofctl.Resubmit, add func(bpf.DatapathAction) error) error {
	if r.CT {
		return errUnsupported("resubmit(...,ct)")
	}
	a := bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_RESUBMIT), Arg: noTable}
	if r.Table >= 0 {
		a.Arg = uint32(r.Table)
	}
	if r.Port != ofctl.PortInPort {
		if r.Port < 1 || r.Port > MaxPort {
			return fmt.Errorf("resubmit(%d,...): ports above %d are not supported", r.Port, MaxPort)
		}
		a.Aux = uint16(r.Port)
	}
	return add(a)
}

// Compile turns one parsed flow into its datapath form, or says why the
// datapath cannot hold it.
func Compile(f *ofctl.Flow) (*Compiled, error) {
	key, mask, err := compileMatch(&f.Match)
	if err != nil {
		return nil, err
	}
	var learns []learnTpl
	acts, err := compileActionsLearn(f.Actions, &learns)
	if err != nil {
		return nil, err
	}
	if n := len(mask.words()); n > maxGather {
		return nil, fmt.Errorf("the match spans %d 8-byte words of the flow key; the datapath hashes at most %d per mask: match fewer fields", n, maxGather)
	}
	return &Compiled{table: uint32(f.Table), priority: uint32(f.Priority), key: key, mask: mask, actions: acts, idle: f.IdleTimeout, learns: learns}, nil
}

// CheckActions says whether the datapath can run actions (mod-flows checks
// its new actions before any flow takes them).
func CheckActions(actions []ofctl.Action) error {
	var learns []learnTpl
	_, err := compileActionsLearn(actions, &learns)
	return err
}

// compileVlanTCILoad encodes a load into the whole vlan_tci (Neutron's
// learned flows' load:0->NXM_OF_VLAN_TCI[]) as OVS applies it: without
// the CFI bit no tag (strip_vlan), with it the VID and PCP (a tag pushed
// on an untagged packet).
func compileVlanTCILoad(a ofctl.Load, add func(bpf.DatapathAction) error) (bool, error) {
	if a.Dst.Field != ofctl.FieldVlanTCI {
		return false, nil
	}
	if a.Dst.Ofs != 0 || a.Dst.NBits != 16 {
		return true, errUnsupported(fmt.Sprintf("action %s (a part of vlan_tci)", a.String(nil)))
	}
	vlan := func(op uint8, aux uint16) error {
		return add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_VLAN), Flags: op, Aux: aux})
	}
	if a.Value&0x1000 == 0 {
		return true, vlan(vlanStrip, 0)
	}
	if err := vlan(vlanSetVID, uint16(a.Value&0xfff)); err != nil {
		return true, err
	}
	return true, vlan(vlanSetPCP, uint16(a.Value>>13&7))
}
