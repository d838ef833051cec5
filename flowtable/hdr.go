package flowtable

import (
	"fmt"
	"unsafe"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// Writes to header fields (load, move, set_field into eth_src, arp_sha,
// ip_dst, tcp_src, ...) are two steps in the datapath: loads and moves into
// the field's words of the key (PF_KEY + w, cut at 32-bit words as sources
// are: sourcePieces), then ACT_HDR_COMMIT, which writes the field from the
// key into the packet through the same rewrites as mod_dl_src and its kin
// (bpf/actions.h, hdr_commit). So a subfield write, or a 48-bit one, needs
// no action of its own per width. One ACT_HDR_COMMIT ends a run of header
// writes (compileActions), for all the fields they wrote: each field is
// written whole from the key, so their order does not matter, and Neutron's
// ARP responder (six writes) fits the datapath's 16 actions per flow.

// headerFields maps each writable header field to the datapath's.
var headerFields = map[ofctl.FieldID]bpf.DatapathHdrField{
	ofctl.FieldDlSrc:  bpf.DatapathHdrFieldHF_DL_SRC,
	ofctl.FieldDlDst:  bpf.DatapathHdrFieldHF_DL_DST,
	ofctl.FieldNwSrc:  bpf.DatapathHdrFieldHF_NW_SRC,
	ofctl.FieldNwDst:  bpf.DatapathHdrFieldHF_NW_DST,
	ofctl.FieldTpSrc:  bpf.DatapathHdrFieldHF_TP_SRC,
	ofctl.FieldTpDst:  bpf.DatapathHdrFieldHF_TP_DST,
	ofctl.FieldNwTos:  bpf.DatapathHdrFieldHF_NW_TOS,
	ofctl.FieldNwTTL:  bpf.DatapathHdrFieldHF_NW_TTL,
	ofctl.FieldArpOp:  bpf.DatapathHdrFieldHF_ARP_OP,
	ofctl.FieldArpSha: bpf.DatapathHdrFieldHF_ARP_SHA,
	ofctl.FieldArpSpa: bpf.DatapathHdrFieldHF_ARP_SPA,
	ofctl.FieldArpTha: bpf.DatapathHdrFieldHF_ARP_THA,
	ofctl.FieldArpTpa: bpf.DatapathHdrFieldHF_ARP_TPA,
}

// destPieces are where a header field's subfield lies in the key's words.
// arp_op is kept in nw_proto (opcodes up to 255, as the match keeps it):
// its low 8 bits only.
func destPieces(sf ofctl.Subfield) ([]piece, error) {
	if sf.Field == ofctl.FieldArpOp {
		if sf.Ofs+sf.NBits > 8 && !(sf.Ofs == 0 && sf.NBits == 16) {
			return nil, errUnsupported(fmt.Sprintf("writing %s (the datapath keeps opcodes up to 255)", sf))
		}
		off := int(unsafe.Offsetof(fk.NwProto))
		n := min(sf.NBits, 8-sf.Ofs)
		return []piece{{field: pfKey + uint16(off/4), ofs: (3-off%4)*8 + sf.Ofs, n: n}}, nil
	}
	if sf.Field == ofctl.FieldNwTos && sf.Ofs < 2 {
		return nil, errUnsupported(fmt.Sprintf("writing %s (the ECN bits: use mod_nw_ecn)", sf))
	}
	return sourcePieces(sf)
}

// compileHdrLoad encodes load:V->FIELD[ofs..] into a header field's key
// words and returns the ACT_HDR_COMMIT bit the field needs, or 0 for other
// destinations.
func compileHdrLoad(a ofctl.Load, add func(bpf.DatapathAction) error) (commit uint32, err error) {
	hf, ok := headerFields[a.Dst.Field]
	if !ok || a.Dst.Field == ofctl.FieldNwTTL && a.Dst.Ofs == 0 && a.Dst.NBits == 8 {
		return 0, nil // mod_nw_ttl: ACT_SET_TTL, one action (compileRewrite)
	}
	commit = 1 << hf
	if a.Dst.Field == ofctl.FieldArpOp && a.Value > 0xff {
		return commit, errUnsupported(fmt.Sprintf("action %s (the datapath keeps ARP opcodes up to 255)", a.String(nil)))
	}
	return commit, keyLoad(a.Dst, a.Value, add)
}

// tunnelFields are key fields without packet bytes (set_tunnel, loads and
// moves into tun_id, tun_src, tun_dst): their writes end in the key,
// where later tables match them and a tunnel output reads them.
var tunnelFields = map[ofctl.FieldID]bool{ofctl.FieldTunID: true, ofctl.FieldTunSrc: true, ofctl.FieldTunDst: true}

// keyLoad writes value into subfield dst of the key: one ACT_LOAD per
// piece of its 32-bit key words.
func keyLoad(dst ofctl.Subfield, value uint64, add func(bpf.DatapathAction) error) error {
	pieces, err := destPieces(dst)
	if err != nil {
		return err
	}
	for _, p := range pieces {
		v := uint32(value>>p.at) & uint32(lowBits(p.n))
		if err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_LOAD), Aux: p.field<<8 | uint16(p.ofs), Flags: uint8(p.n), Arg: v}); err != nil {
			return err
		}
	}
	return nil
}

// keyMove copies a move's source into its destination's key words.
func keyMove(a ofctl.Move, add func(bpf.DatapathAction) error) error {
	src, err := sourcePieces(a.Src)
	if err != nil {
		return errUnsupported(fmt.Sprintf("action %s", a.String(nil)))
	}
	dst, err := destPieces(a.Dst)
	if err != nil {
		return err
	}
	for _, s := range src {
		for _, d := range dst {
			// The bits [lo, hi) of the subfield both pieces hold.
			lo, hi := max(s.at, d.at), min(s.at+s.n, d.at+d.n)
			if lo >= hi {
				continue
			}
			err := add(bpf.DatapathAction{Type: uint8(bpf.DatapathActionTypeACT_MOVE),
				Aux: s.field<<8 | uint16(s.ofs+lo-s.at),
				Arg: uint32(d.field)<<8 | uint32(d.ofs+lo-d.at) | uint32(hi-lo)<<16})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// compileHdrMove encodes move:SRC->FIELD[ofs..] for a header field: one
// ACT_MOVE per run of bits that lies in one word of the source and one of
// the destination. It returns the ACT_HDR_COMMIT bit the field needs, or 0
// for other destinations.
func compileHdrMove(a ofctl.Move, add func(bpf.DatapathAction) error) (commit uint32, err error) {
	hf, ok := headerFields[a.Dst.Field]
	if !ok {
		return 0, nil
	}
	return 1 << hf, keyMove(a, add)
}

func lowBits(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}
