package flowtable

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

func compileFlow(t *testing.T, s string) (*Compiled, error) {
	t.Helper()
	f, err := ofctl.ParseFlow(s, nil)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return Compile(f)
}

// TestCompileMatchSlots: the new match fields land in their bytes of
// struct flow_key, value and mask.
func TestCompileMatchSlots(t *testing.T) {
	for _, c := range []struct {
		flow      string
		off       uintptr
		key, mask []byte
	}{
		{"arp,arp_sha=02:00:00:00:0a:07,actions=drop", unsafe.Offsetof(fk.ArpSha),
			[]byte{2, 0, 0, 0, 0x0a, 7}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"arp,arp_tha=02:00:00:00:0a:07/ff:ff:ff:00:00:00,actions=drop", unsafe.Offsetof(fk.ArpTha),
			[]byte{2, 0, 0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0, 0, 0}},
		{"pkt_mark=0x12345678,actions=drop", unsafe.Offsetof(fk.PktMark),
			[]byte{0x12, 0x34, 0x56, 0x78}, []byte{0xff, 0xff, 0xff, 0xff}},
		{"pkt_mark=0x10/0xf0,actions=drop", unsafe.Offsetof(fk.PktMark),
			[]byte{0, 0, 0, 0x10}, []byte{0, 0, 0, 0xf0}},
		// The original tuple: IPv4 in the first word of the IPv6 slots.
		{"ip,ct_state=+est,ct_nw_src=10.0.10.0/24,actions=drop", unsafe.Offsetof(fk.CtIpv6Src),
			[]byte{10, 0, 10, 0, 0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0, 0, 0, 0, 0}},
		{"ip,ct_state=+est,ct_nw_dst=10.0.10.2,actions=drop", unsafe.Offsetof(fk.CtIpv6Dst),
			[]byte{10, 0, 10, 2, 0, 0, 0, 0}, []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}},
		{"ipv6,ct_state=+est,ct_ipv6_src=2001:db8::1,actions=drop", unsafe.Offsetof(fk.CtIpv6Src),
			[]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, ones(16)},
		{"ipv6,ct_state=+est,ct_ipv6_dst=2001:db8::/32,actions=drop", unsafe.Offsetof(fk.CtIpv6Dst),
			[]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, append(ones(4), make([]byte, 12)...)},
		// ct_tp_src, ct_tp_dst, ct_nw_proto: consecutive, big-endian ports.
		{"ct_state=+est,ct_nw_proto=6,ct_tp_src=0x1234/0xff00,ct_tp_dst=443,actions=drop", unsafe.Offsetof(fk.CtTpSrc),
			[]byte{0x12, 0, 0x01, 0xbb, 6, 0}, []byte{0xff, 0, 0xff, 0xff, 0xff, 0}},
	} {
		cf, err := compileFlow(t, c.flow)
		if err != nil {
			t.Fatalf("%q: %v", c.flow, err)
		}
		n := uintptr(len(c.key))
		if got := cf.key[c.off : c.off+n]; string(got) != string(c.key) {
			t.Errorf("%q: key % x, want % x", c.flow, got, c.key)
		}
		if got := cf.mask[c.off : c.off+n]; string(got) != string(c.mask) {
			t.Errorf("%q: mask % x, want % x", c.flow, got, c.mask)
		}
	}
}

func ones(n int) []byte { return []byte(strings.Repeat("\xff", n)) }

// TestCompileCtTupleSlots: the original tuple's fields are where
// bpf/common.h puts them, the IPv4 addresses in word 0 of the IPv6 ones,
// the ports big-endian; no other key byte is touched.
func TestCompileCtTupleSlots(t *testing.T) {
	cf, err := compileFlow(t, "ip,ct_state=+est,ct_nw_src=10.0.10.1,ct_nw_dst=10.0.10.2,ct_nw_proto=6,ct_tp_src=40000,ct_tp_dst=80,actions=drop")
	if err != nil {
		t.Fatal(err)
	}
	k, m := cf.key.flowKey(), cf.mask.flowKey()
	be32 := func(b ...byte) uint32 { return *(*uint32)(unsafe.Pointer(&b[0])) } // as the key holds it
	be16 := func(v uint16) uint16 { b := []byte{byte(v >> 8), byte(v)}; return *(*uint16)(unsafe.Pointer(&b[0])) }
	if k.CtIpv6Src != [4]uint32{be32(10, 0, 10, 1)} || m.CtIpv6Src != [4]uint32{0xffffffff} {
		t.Errorf("ct_nw_src: key %x mask %x", k.CtIpv6Src, m.CtIpv6Src)
	}
	if k.CtIpv6Dst != [4]uint32{be32(10, 0, 10, 2)} || m.CtIpv6Dst != [4]uint32{0xffffffff} {
		t.Errorf("ct_nw_dst: key %x mask %x", k.CtIpv6Dst, m.CtIpv6Dst)
	}
	if k.CtTpSrc != be16(40000) || k.CtTpDst != be16(80) || m.CtTpSrc != 0xffff || m.CtTpDst != 0xffff {
		t.Errorf("ct_tp_src/dst: key %#x %#x mask %#x %#x", k.CtTpSrc, k.CtTpDst, m.CtTpSrc, m.CtTpDst)
	}
	if k.CtNwProto != 6 || m.CtNwProto != 0xff {
		t.Errorf("ct_nw_proto: key %d mask %#x", k.CtNwProto, m.CtNwProto)
	}
	// ct_state and dl_type besides: the tuple's 5 fields add nothing else.
	m.CtIpv6Src, m.CtIpv6Dst, m.CtTpSrc, m.CtTpDst, m.CtNwProto, m.CtState, m.DlType = [4]uint32{}, [4]uint32{}, 0, 0, 0, 0, 0
	if m != (bpf.DatapathFlowKey{}) {
		t.Errorf("other mask bytes set: %+v", m)
	}
}

// TestCompileTunnelFields: tun_id, tun_src and tun_dst are key words 29
// and 30 (bytes 232-247), matched as any field; set_tunnel, loads and
// moves write them in the key (PF_KEY words 58-61) for later tables and
// tunnel outputs.
func TestCompileTunnelFields(t *testing.T) {
	cf, err := compileFlow(t, "tun_id=0x5,tun_src=192.0.2.1,tun_dst=10.0.0.0/8,actions=drop")
	if err != nil {
		t.Fatal(err)
	}
	k, m := cf.key.flowKey(), cf.mask.flowKey()
	if got := cf.mask.words(); len(got) != 2 || got[0] != 29 || got[1] != 30 {
		t.Errorf("mask covers words %v, want [29 30]", got)
	}
	be := func(v uint64) uint64 { // the key's bytes are big-endian
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], v)
		return binary.NativeEndian.Uint64(b[:])
	}
	if k.TunId != be(5) || m.TunId != ^uint64(0) || m.TunDst != uint32(be(0xff000000)>>32) {
		t.Errorf("key %+v mask %+v", k, m)
	}
	const (
		load = bpf.DatapathActionTypeACT_LOAD
		move = bpf.DatapathActionTypeACT_MOVE
	)
	for _, c := range []struct {
		flow string
		want []bpf.DatapathAction
	}{
		{"actions=set_tunnel:0x1", []bpf.DatapathAction{act(load, 32, (pfKey+59)<<8, 1), act(load, 32, (pfKey+58)<<8, 0)}},
		{"actions=set_tunnel64:0x100000002", []bpf.DatapathAction{act(load, 32, (pfKey+59)<<8, 2), act(load, 32, (pfKey+58)<<8, 1)}},
		{"actions=set_field:0x3->tun_id", []bpf.DatapathAction{act(load, 32, (pfKey+59)<<8, 3), act(load, 32, (pfKey+58)<<8, 0)}},
		{"actions=set_field:10.0.0.2->tun_dst", []bpf.DatapathAction{act(load, 32, (pfKey+61)<<8, 0x0a000002)}},
		{"actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[]", []bpf.DatapathAction{act(move, 0, (pfKey+59)<<8, 0<<8|32<<16)}},
		{"actions=move:NXM_NX_REG0[0..23]->NXM_NX_TUN_ID[0..23]", []bpf.DatapathAction{act(move, 0, 0, uint32(pfKey+59)<<8|24<<16)}},
	} {
		cf, err := compileFlow(t, c.flow)
		if err != nil {
			t.Errorf("%q: %v", c.flow, err)
			continue
		}
		if got := cf.actions.A[:cf.actions.N]; fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%q: %+v, want %+v", c.flow, got, c.want)
		}
	}
}

func act(typ bpf.DatapathActionType, flags uint8, aux uint16, arg uint32) bpf.DatapathAction {
	return bpf.DatapathAction{Type: uint8(typ), Flags: flags, Aux: aux, Arg: arg}
}

// ip6Aux is IP6_AUX of bpf/common.h.
func ip6Aux(word, ofs, nbits uint16) uint16 { return word<<12 | nbits<<5 | ofs }

// TestCompileSetActions: pkt_mark and IPv6 set_field/load/move encodings.
func TestCompileSetActions(t *testing.T) {
	const (
		mark     = bpf.DatapathActionTypeACT_SET_MARK
		ip6      = bpf.DatapathActionTypeACT_SET_IP6
		move     = bpf.DatapathActionTypeACT_MOVE
		load     = bpf.DatapathActionTypeACT_LOAD
		commit   = bpf.DatapathActionTypeACT_HDR_COMMIT
		output   = bpf.DatapathActionTypeACT_OUTPUT
		hfArpOp  = bpf.DatapathHdrFieldHF_ARP_OP
		hfTpDst  = bpf.DatapathHdrFieldHF_TP_DST
		hfDlDst  = bpf.DatapathHdrFieldHF_DL_DST
		hfNwDst  = bpf.DatapathHdrFieldHF_NW_DST
		hfArpSha = bpf.DatapathHdrFieldHF_ARP_SHA
		// arp_sha is bytes 176-181: word 44 and the high half of word 45.
		shaWord    = uint16(unsafe.Offsetof(fk.ArpSha) / 4)
		ofppInPort = 0xfff8
	)
	for _, c := range []struct {
		flow string
		want []bpf.DatapathAction
	}{
		{"actions=set_field:0xab->pkt_mark", []bpf.DatapathAction{act(mark, 32, 0, 0xab)}},
		{"actions=set_field:0x500/0xff00->pkt_mark", []bpf.DatapathAction{act(mark, 8, 8, 0x5)}},
		{"actions=load:0x3->NXM_NX_PKT_MARK[8..9]", []bpf.DatapathAction{act(mark, 2, 8, 0x3)}},
		// A move into pkt_mark changes the key, then copies it to skb->mark.
		{"actions=move:NXM_NX_REG1[]->NXM_NX_PKT_MARK[]", []bpf.DatapathAction{act(move, 0, 1<<8, uint32(pfPktMark)<<8|32<<16), act(mark, 0, 0, 0)}},
		{"actions=move:NXM_NX_PKT_MARK[0..15]->NXM_NX_REG2[16..31]", []bpf.DatapathAction{act(move, 0, pfPktMark<<8, 2<<8|16|16<<16)}},
		// Packet fields are read from the key's 32-bit words (PF_KEY + w):
		// tp_dst is bytes 38-39 (word 9, its low half), in_port word 0.
		{"tcp,actions=move:NXM_OF_TCP_DST[]->NXM_NX_REG0[0..15]", []bpf.DatapathAction{act(move, 0, (pfKey+9)<<8, 0<<8|0|16<<16)}},
		{"actions=move:NXM_OF_IN_PORT[4..11]->NXM_NX_REG1[0..7]", []bpf.DatapathAction{act(move, 0, pfKey<<8|4, 1<<8|8<<16)}},
		// eth_src is bytes 14-19: its low 32 bits are word 4, its high 16
		// bits the low half of word 3.
		{"actions=move:NXM_OF_ETH_SRC[]->OXM_OF_METADATA[0..47]", []bpf.DatapathAction{
			act(move, 0, (pfKey+4)<<8, uint32(pfMetadata)<<8|0|32<<16), act(move, 0, (pfKey+3)<<8, uint32(pfMetadata)<<8|32|16<<16)}},
		// Into ct_label inside exec: cut again at the label's 32-bit words.
		{"ip,actions=ct(commit,exec(move:NXM_OF_IP_SRC[]->NXM_NX_CT_LABEL[16..47]))", []bpf.DatapathAction{
			act(bpf.DatapathActionTypeACT_CT, uint8(bpf.DatapathCtFlagCT_COMMIT|bpf.DatapathCtFlagCT_DEFER), 0, uint32(noTable)),
			act(move, 0, (pfKey+6)<<8, uint32(pfCtLabel)<<8|16|16<<16), act(move, 0, (pfKey+6)<<8|16, uint32(pfCtLabel)<<8|32|16<<16),
			act(bpf.DatapathActionTypeACT_CT_END, 0, 0, uint32(noTable))}},
		{"ip,actions=ct(zone=NXM_OF_IN_PORT[],table=1)", []bpf.DatapathAction{
			act(bpf.DatapathActionTypeACT_CT, uint8(bpf.DatapathCtFlagCT_ZONE_FIELD), pfKey<<8, 1)}},
		// OXM_OF_IN_PORT is the same key word, 32 bits wide.
		{"ip,actions=ct(zone=OXM_OF_IN_PORT[0..15],table=1)", []bpf.DatapathAction{
			act(bpf.DatapathActionTypeACT_CT, uint8(bpf.DatapathCtFlagCT_ZONE_FIELD), pfKey<<8, 1)}},
		{"actions=move:OXM_OF_IN_PORT[]->NXM_NX_REG1[]", []bpf.DatapathAction{act(move, 0, pfKey<<8, 1<<8|32<<16)}},
		// The original tuple, read from its key words: ct_ipv6_src is
		// bytes 188-203 (words 47-50), ct_nw_src its word 47; ct_tp_src
		// and ct_tp_dst share word 55, ct_nw_proto is the high byte of 56.
		{"ct_state=+est,actions=move:NXM_NX_CT_NW_SRC[]->NXM_NX_REG0[]", []bpf.DatapathAction{act(move, 0, (pfKey+47)<<8, 0<<8|32<<16)}},
		{"ct_state=+est,actions=move:NXM_NX_CT_NW_DST[]->NXM_NX_REG0[]", []bpf.DatapathAction{act(move, 0, (pfKey+51)<<8, 0<<8|32<<16)}},
		{"ct_state=+est,actions=move:NXM_NX_CT_IPV6_SRC[0..31]->NXM_NX_REG0[]", []bpf.DatapathAction{act(move, 0, (pfKey+50)<<8, 0<<8|32<<16)}},
		{"ct_state=+est,actions=move:NXM_NX_CT_IPV6_DST[96..127]->NXM_NX_REG0[]", []bpf.DatapathAction{act(move, 0, (pfKey+51)<<8, 0<<8|32<<16)}},
		{"ct_state=+est,actions=move:NXM_NX_CT_TP_SRC[]->NXM_NX_REG0[16..31],move:NXM_NX_CT_TP_DST[]->NXM_NX_REG0[0..15]", []bpf.DatapathAction{
			act(move, 0, (pfKey+55)<<8|16, 0<<8|16|16<<16), act(move, 0, (pfKey+55)<<8, 0<<8|0|16<<16)}},
		{"ct_state=+est,actions=move:NXM_NX_CT_NW_PROTO[]->NXM_NX_REG0[0..7]", []bpf.DatapathAction{act(move, 0, (pfKey+56)<<8|24, 0<<8|8<<16)}},
		{"ct_state=+est,ct_nw_proto=6,actions=output:NXM_NX_CT_TP_DST[]", []bpf.DatapathAction{
			act(bpf.DatapathActionTypeACT_OUTPUT_REG, 16, (pfKey+55)<<8, 0)}},
		// The high word of the address comes first in the header (word 0).
		{"ipv6,actions=set_field:2001:db8::1:2->ipv6_src", []bpf.DatapathAction{
			act(ip6, setSrc, ip6Aux(3, 0, 32), 0x00010002), act(ip6, setSrc, ip6Aux(2, 0, 32), 0),
			act(ip6, setSrc, ip6Aux(1, 0, 32), 0), act(ip6, setSrc, ip6Aux(0, 0, 32), 0x20010db8)}},
		{"ipv6,actions=set_field:2001:db8:ffff::/ffff:ffff:ffff::->ipv6_dst", []bpf.DatapathAction{
			act(ip6, setDst, ip6Aux(1, 16, 16), 0xffff0000), act(ip6, setDst, ip6Aux(0, 0, 32), 0x20010db8)}},
		{"ipv6,actions=load:0xabcd->NXM_NX_IPV6_DST[4..19]", []bpf.DatapathAction{act(ip6, setDst, ip6Aux(3, 4, 16), 0xabcd0)}},
		{"ipv6,actions=load:0x1ff->NXM_NX_IPV6_SRC[28..36]", []bpf.DatapathAction{
			act(ip6, setSrc, ip6Aux(3, 28, 4), 0xf0000000), act(ip6, setSrc, ip6Aux(2, 0, 5), 0x1f)}},
		{"ipv6,actions=set_field:0x12345->ipv6_label", []bpf.DatapathAction{act(ip6, setLabel, ip6Aux(0, 0, 20), 0x12345)}},
		{"ipv6,actions=set_field:0x50/0xf0->ipv6_label", []bpf.DatapathAction{act(ip6, setLabel, ip6Aux(0, 4, 4), 0x50)}},
		// Header fields: their key words, then one commit for the run.
		// arp_op lives in nw_proto, the high byte of word 8.
		{"arp,actions=load:0x2->NXM_OF_ARP_OP[]", []bpf.DatapathAction{act(load, 8, (pfKey+8)<<8|24, 2), act(commit, 0, 0, 1<<hfArpOp)}},
		{"tcp,actions=move:NXM_OF_TCP_SRC[]->NXM_OF_TCP_DST[],output:1", []bpf.DatapathAction{
			act(move, 0, (pfKey+9)<<8|16, uint32(pfKey+9)<<8|0|16<<16), act(commit, 0, 0, 1<<hfTpDst), act(output, 0, 0, 1)}},
		// eth_dst is bytes 8-13: words 2 and the high half of 3; eth_src
		// the low half of 3 and word 4: three runs of bits.
		{"ip,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0xa->NXM_OF_IP_DST[0..7]", []bpf.DatapathAction{
			act(move, 0, (pfKey+4)<<8, uint32(pfKey+3)<<8|16|16<<16), act(move, 0, (pfKey+4)<<8|16, uint32(pfKey+2)<<8|0|16<<16),
			act(move, 0, (pfKey+3)<<8, uint32(pfKey+2)<<8|16|16<<16),
			act(load, 8, (pfKey+7)<<8, 0xa), act(commit, 0, 0, 1<<hfDlDst|1<<hfNwDst)}},
		{"arp,actions=load:0xfa163e000077->NXM_NX_ARP_SHA[],IN_PORT", []bpf.DatapathAction{
			act(load, 16, (pfKey+shaWord+1)<<8|16, 0x0077), act(load, 32, (pfKey+shaWord)<<8, 0xfa163e00),
			act(commit, 0, 0, 1<<hfArpSha), act(output, 0, 0, ofppInPort)}},
	} {
		cf, err := compileFlow(t, c.flow)
		if err != nil {
			t.Fatalf("%q: %v", c.flow, err)
		}
		got := cf.actions.A[:cf.actions.N]
		if len(got) != len(c.want) {
			t.Errorf("%q: %d actions %+v, want %+v", c.flow, len(got), got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%q: action %d = %+v, want %+v", c.flow, i, got[i], c.want[i])
			}
		}
	}
}

// TestCompileSourcesRefused: sources the datapath cannot read as asked.
func TestCompileSourcesRefused(t *testing.T) {
	for _, c := range []struct{ flow, want string }{
		// Bits 24..39 of eth_src lie in two key words: a zone is read in one.
		{"ip,actions=ct(zone=NXM_OF_ETH_SRC[24..39])", "ct(zone=NXM_OF_ETH_SRC[24..39]): a zone whose 16 bits lie in two 32-bit words of the datapath's key: not yet supported by the ebpfovs datapath"},
		{"arp,actions=move:NXM_OF_ARP_OP[]->NXM_NX_REG0[0..15]", "action move:NXM_OF_ARP_OP[]->NXM_NX_REG0[0..15]: not yet supported by the ebpfovs datapath"},
		{"ip,actions=move:NXM_OF_IP_TOS[]->NXM_NX_REG0[0..7]", "action move:NXM_OF_IP_TOS[]->NXM_NX_REG0[0..7]: not yet supported by the ebpfovs datapath"},
	} {
		_, err := compileFlow(t, c.flow)
		if err == nil || err.Error() != c.want {
			t.Errorf("%q: %v, want %q", c.flow, err, c.want)
		}
	}
}

// TestCompileNAT: ct(nat...) is the range (two ACT_NAT_RANGE), the ct()
// with CT_NAT, and ACT_NAT after it; a bare nat has no range.
func TestCompileNAT(t *testing.T) {
	const (
		rng  = bpf.DatapathActionTypeACT_NAT_RANGE
		ct   = bpf.DatapathActionTypeACT_CT
		nat  = bpf.DatapathActionTypeACT_NAT
		ctNA = uint8(bpf.DatapathCtFlagCT_NAT) | uint8(bpf.DatapathCtFlagCT_DEFER)
		cmt  = uint8(bpf.DatapathCtFlagCT_COMMIT)
		end  = bpf.DatapathActionTypeACT_CT_END
	)
	for _, c := range []struct {
		flow string
		want []bpf.DatapathAction
	}{
		{"ip,actions=ct(commit,nat(src=10.0.0.1-10.0.0.2:1000-2000,random))", []bpf.DatapathAction{
			act(rng, natSrc|natRandom|natAddr|natPorts, 1000, 0x0a000001),
			act(rng, natSrc|natRandom|natAddr|natPorts|natMax, 2000, 0x0a000002),
			act(ct, cmt|ctNA, 0, uint32(noTable)), act(nat, 0, 0, 0), act(end, 0, 0, uint32(noTable))}},
		{"tcp,actions=ct(commit,table=3,nat(dst=10.0.0.9:80))", []bpf.DatapathAction{
			act(rng, natDst|natAddr|natPorts, 80, 0x0a000009), act(rng, natDst|natAddr|natPorts|natMax, 80, 0x0a000009),
			act(ct, cmt|ctNA, 0, 3), act(nat, 0, 0, 0), act(end, 0, 0, 3)}},
		{"ip,actions=ct(commit,nat(src))", []bpf.DatapathAction{
			act(rng, natSrc, 0, 0), act(rng, natSrc|natMax, 0, 0),
			act(ct, cmt|ctNA, 0, uint32(noTable)), act(nat, 0, 0, 0), act(end, 0, 0, uint32(noTable))}},
		{"ip,actions=ct(table=1,nat)", []bpf.DatapathAction{act(ct, ctNA, 0, 1), act(nat, 0, 0, 0), act(end, 0, 0, 1)}},
	} {
		cf, err := compileFlow(t, c.flow)
		if err != nil {
			t.Fatalf("%q: %v", c.flow, err)
		}
		if got := cf.actions.A[:cf.actions.N]; !slices.Equal(got, c.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", c.flow, got, c.want)
		}
	}
	// IPv6: the first word in ACT_NAT_RANGE, the other three after it.
	r6 := bpf.DatapathActionTypeACT_NAT_RANGE6
	cf, err := compileFlow(t, "ipv6,actions=ct(commit,nat(src=[2001:db8::1]-[2001:db8::5]:80))")
	if err != nil {
		t.Fatal(err)
	}
	want := []bpf.DatapathAction{
		act(rng, natSrc|natAddr|natPorts, 80, 0x20010db8), act(rng, natSrc|natAddr|natPorts|natMax, 80, 0x20010db8),
		act(r6, 1, 0, 0), act(r6, 1|natMax, 0, 0), act(r6, 2, 0, 0), act(r6, 2|natMax, 0, 0),
		act(r6, 3, 0, 1), act(r6, 3|natMax, 0, 5),
		act(ct, cmt|ctNA, 0, uint32(noTable)), act(nat, 0, 0, 0), act(end, 0, 0, uint32(noTable))}
	if got := cf.actions.A[:cf.actions.N]; !slices.Equal(got, want) {
		t.Errorf("IPv6 range:\n got %+v\nwant %+v", got, want)
	}
}
