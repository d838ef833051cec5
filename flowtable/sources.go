package flowtable

import (
	"fmt"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// A piece is a run of a source subfield's bits that one datapath field
// holds: bits [ofs, ofs+n) of datapath field `field` (bpf/common.h's enum
// packet_field) are the subfield's bits [at, at+n).
type piece struct {
	field uint16
	ofs   int
	n     int
	at    int
}

// sourcePieces says where the datapath reads a move's, an output:FIELD's
// or a ct(zone=FIELD)'s source: a register, metadata or pkt_mark whole;
// any other match field from the key, PF_KEY + w being the key's 32-bit
// word w. The key holds fields big-endian, so a subfield's bits run
// upwards within a word and are cut where the field crosses into the
// next word (a MAC address spans two).
func sourcePieces(sf ofctl.Subfield) ([]piece, error) {
	if f, ok := pipelineField(sf.Field); ok {
		return []piece{{field: f, ofs: sf.Ofs, n: sf.NBits}}, nil
	}
	return keyPieces(sf)
}

// keyPieces says where a subfield lies in the key's 32-bit words (PF_KEY
// + w), registers and metadata included.
func keyPieces(sf ofctl.Subfield) ([]piece, error) {
	slot, ok := fieldSlots[sf.Field]
	// The key keeps nw_tos whole, ECN included; OVS's NXM_OF_IP_TOS reads
	// its ECN bits as 0.
	if !ok || sf.Field == ofctl.FieldNwTos && sf.Ofs < 2 {
		return nil, errUnsupported(fmt.Sprintf("reading %s", sf))
	}
	last := slot.off + slot.size - 1 // the field's least significant byte
	var out []piece
	for b, end := sf.Ofs, sf.Ofs+sf.NBits; b < end; {
		byteOff := last - b/8
		w := byteOff / 4
		// Field bits below hi lie in word w: up to its first byte, or the field's.
		hi := min(end, (last-max(4*w, slot.off))*8+8)
		out = append(out, piece{field: pfKey + uint16(w), ofs: (3-byteOff%4)*8 + b%8, n: hi - b, at: b - sf.Ofs})
		b = hi
	}
	return out, nil
}

// compileMove encodes move:SRC->DST as one ACT_MOVE per piece of the
// source (and, into ct_mark or ct_label inside ct(exec(...)), per 32-bit
// word of the destination: the datapath writes the connection a word at
// a time).
func compileMove(a ofctl.Move, ctExec bool, add func(bpf.DatapathAction) error) error {
	unsupported := errUnsupported(fmt.Sprintf("action %s", a.String(nil)))
	if ctExec {
		unsupported = errUnsupported("ct(exec(" + a.String(nil) + "))")
	}
	src, err := sourcePieces(a.Src)
	if err != nil {
		return unsupported
	}
	var df uint16
	switch {
	case ctExec && a.Dst.Field == ofctl.FieldCtMark:
		df = pfCtMark
	case ctExec && a.Dst.Field == ofctl.FieldCtLabel:
		df = pfCtLabel
	case ctExec:
		return unsupported
	default:
		var ok bool
		if df, ok = pipelineField(a.Dst.Field); !ok {
			return unsupported
		}
	}
	for _, p := range src {
		for p.n > 0 {
			n := p.n
			if ctExec { // cut at the destination's 32-bit words
				d := a.Dst.Ofs + p.at
				n = min(n, (d/32+1)*32-d)
			}
			err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_MOVE), Aux: p.field<<8 | uint16(p.ofs),
				Arg: uint32(df)<<8 | uint32(a.Dst.Ofs+p.at) | uint32(n)<<16})
			if err != nil {
				return err
			}
			p.ofs, p.at, p.n = p.ofs+n, p.at+n, p.n-n
		}
	}
	if df == pfPktMark {
		// The move changed the key's mark; this copies it to the packet.
		return add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_SET_MARK)})
	}
	return nil
}
