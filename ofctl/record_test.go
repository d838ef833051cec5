package ofctl

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// recordFlows are flows for the codec tests: together with the flows of
// flowCases they use every action type, and each exercises something the
// encoding must keep (nesting, pointers, subfields, masks, byte slices).
var recordFlows = []string{
	"ip,actions=ct(commit,zone=NXM_NX_REG0[0..15],table=3,exec(load:0x1->NXM_NX_CT_MARK[]),nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,hash))",
	"ip,actions=ct(commit,zone=NXM_NX_REG0[0..15],table=3,nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,hash),exec(load:0x1->NXM_NX_CT_MARK[]))",
	"ip,actions=ct(commit,nat(src=10.0.0.1),exec(nat(dst=10.0.0.2)))",
	"tcp6,actions=ct(commit,force,zone=7,alg=ftp,exec(set_field:0x5/0xff->ct_mark,move:NXM_NX_REG1[]->NXM_NX_CT_LABEL[0..31]),nat(dst=[2001:db8::1]-[2001:db8::9]:80-90,random))",
	"ipv6,actions=ct(commit,nat(src=::ffff:1.2.3.4)),ct(nat),ct(table=2,zone=NXM_NX_CT_ZONE[])",
	"ipv6,actions=ct(commit,exec(set_field:0x1234/0xffff0000ffff->ct_label))",
	"actions=controller(reason=no_match,max_len=128,id=7,userdata=de.ad.be.ef,pause,meter_id=3),controller(userdata=01),CONTROLLER:0",
	"ip,actions=dec_ttl,dec_ttl(1,2,3),set_tunnel:0x5,set_tunnel64:0x7,set_tunnel:0x123456789",
	"ip,ct_state=+trk+est,actions=resubmit(,3,ct),resubmit(2,4),resubmit:5,resubmit(,254)",
	"actions=note:aa.bb.cc.dd.ee.ff.00.11,note:,note:" + strings.Repeat("ab", 40),
	"table=2,cookie=0xfedcba9876543210,idle_timeout=1,hard_timeout=65535,importance=9,send_flow_rem,check_overlap,reset_counts,no_packet_counts,no_byte_counts,priority=65535,actions=goto_table:7",
	"actions=output:NXM_NX_REG3[16..31],output:4294967294,IN_PORT,exit",
	"ip,actions=mod_nw_src:1.2.3.4,mod_nw_dst:255.255.255.255,mod_nw_tos:252,mod_nw_ttl:9,mod_nw_ecn:1",
	"tcp6,actions=mod_tp_src:1,mod_tp_dst:65535,set_field:2001:db8::1/64->ipv6_dst",
	"actions=push_vlan:0x88a8,mod_vlan_vid:4095,mod_vlan_pcp:7,strip_vlan,mod_dl_src:01:02:03:04:05:06,mod_dl_dst:ff:ff:ff:ff:ff:ff",
	"actions=set_queue:4294967295,pop_queue,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0xffffffffffffffff->NXM_NX_TUN_ID[]",
	"udp,actions=set_field:53->udp_dst,set_field:0x8000/0x8000->udp_src,move:NXM_OF_UDP_SRC[]->reg0[0..15]",
	"vlan_tci=0x1000/0x1000,actions=set_field:5->vlan_vid,set_field:3->vlan_pcp,set_field:0x1/0x1->vlan_vid,move:OXM_OF_VLAN_PCP[]->reg1[0..2],move:dl_vlan_pcp[]->reg1[3..5]",
	"icmp,actions=set_field:8->ip_dscp,move:OXM_OF_IP_DSCP[]->NXM_NX_REG2[0..5],move:icmp_type[]->reg2[8..15]",
	// Masked and IPv6 matches, every match field at least once.
	"ipv6,ipv6_src=2001:db8::/32,ipv6_dst=fe80::1/ffff:0:ffff::,ipv6_label=0x12345/0xf00ff,nw_tos=8,nw_ecn=2,nw_ttl=1,ip_frag=not_later,actions=drop",
	"tcp6,tcp_flags=+syn-ack,tp_src=0x100/0xff00,tp_dst=443,actions=drop",
	"icmp6,icmp_type=135,icmp_code=0,actions=drop",
	"arp,arp_op=2,arp_spa=10.0.0.0/8,arp_tpa=10.1.2.3,arp_sha=00:11:22:33:44:55,arp_tha=00:00:00:00:00:00/01:00:00:00:00:00,actions=drop",
	"priority=1,in_port=65534,dl_src=aa:bb:cc:00:00:00/ff:ff:ff:00:00:00,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,dl_vlan=4095,dl_vlan_pcp=5,ip,nw_src=1.2.3.0/24,nw_dst=4.5.6.7,nw_proto=47,actions=drop",
	"metadata=0x5/0xff,reg0=1,reg1=2/3,reg2=4,reg3=5,reg4=6,reg5=7,reg6=8,reg7=9,reg8=10,reg9=11,reg10=12,reg11=13,reg12=14,reg13=15,reg14=16,reg15=0xffffffff,actions=drop",
	"ct_state=+trk-inv,ct_zone=65535,ct_mark=0x1/0xf,ct_label=0x10000000000000000000000000000001/0xf000000000000000000000000000000f,tun_id=0x5/0xff,tun_src=192.0.2.1,tun_dst=10.0.0.0/255.0.0.255,pkt_mark=0x7,actions=drop",
	"vlan_tci=0x6005/0xe0ff,sctp,sctp_src=9,actions=drop",
	"ip,ct_state=+rpl,ct_nw_src=10.0.0.0/255.0.255.0,ct_nw_dst=10.1.2.3,ct_nw_proto=6,ct_tp_src=0x8000/0x8000,ct_tp_dst=443,actions=drop",
	"ipv6,ct_state=+trk-inv,ct_ipv6_src=2001:db8::/32,ct_ipv6_dst=fe80::1,ct_nw_proto=58,ct_tp_src=128,ct_tp_dst=0,actions=drop",
	// in_port_oxm is in_port; OXM_OF_IN_PORT names its 32 bits in actions.
	"in_port_oxm=4294967294,ip,actions=ct(zone=OXM_OF_IN_PORT[0..15]),move:OXM_OF_IN_PORT[]->NXM_NX_REG0[],set_field:LOCAL->in_port_oxm,output:OXM_OF_IN_PORT[0..15]",
	"ct_state=+est,actions=move:NXM_NX_CT_NW_SRC[]->NXM_NX_REG0[],move:NXM_NX_CT_IPV6_DST[96..127]->NXM_NX_REG1[],move:NXM_NX_CT_NW_PROTO[]->NXM_NX_REG2[0..7],move:NXM_NX_CT_TP_SRC[]->NXM_NX_REG2[16..31]",
	// learn: every option away from its default, every kind of spec
	// (field or immediate source; match, load or output), a 128-bit
	// immediate, a partial one, a port name.
	"table=10,priority=1,actions=learn(table=20,idle_timeout=1,hard_timeout=300,fin_idle_timeout=5,fin_hard_timeout=7,priority=1,delete_learned,cookie=0xfedcba9876543210,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[]),output:1",
	"actions=learn(),learn(table=0,in_port=2,eth_type=0x86dd,ipv6_src=2001:db8::1,NXM_NX_REG0[0..3]=0xf,load:0xfedcba9876543210fedcba->NXM_NX_IPV6_DST[],vlan_vid=0x1005,ct_state=0x21)",
}

// handBuiltActions are the action types the parser never produces; the
// codec must still carry them.
var handBuiltActions = []Action{
	Drop{},
	SetField{Field: FieldNwSrc, Value: []byte{1, 2, 3, 4}},
	SetField{Field: FieldReg0, Value: []byte{0, 0, 0, 5}, Mask: []byte{0, 0, 0, 0xff}},
	SetField{Field: FieldVlanVID, Value: []byte{0x10, 5}, Mask: []byte{0x1f, 0xff}},
	SetField{Field: FieldInPortOXM, Value: []byte{0xff, 0xff, 0xff, 0xfe}},
	NAT{},
	CT{Table: 255, Exec: []Action{NAT{Dst: true, AddrMin: netip.MustParseAddr("1.2.3.4"), PortMin: 80}}},
	Resubmit{Port: PortInPort, Table: 255},
	FinTimeout{IdleTimeout: 5, HardTimeout: 7},
	FinTimeout{},
	// Specs the parser does not make: an output of an immediate, a load
	// without a source.
	Learn{Specs: []LearnSpec{{Kind: LearnOutput, Immediate: true, Value: []byte{0, 2}}, {Kind: LearnLoad, Dst: Subfield{Field: FieldReg0, Name: "NXM_NX_REG0", Ofs: 1, NBits: 3, mf: "reg0"}}}},
}

func mustSubfield(s string) Subfield {
	sf, err := ParseSubfield(s)
	if err != nil {
		panic(err)
	}
	return sf
}

// recordTestFlows returns every flow the codec tests use: the ones of the
// package's tables (good flows; ParseModFlow's AsAdd for each), the fuzz
// corpus and recordFlows, plus one flow with handBuiltActions.
func recordTestFlows(t testing.TB) []*Flow {
	t.Helper()
	var in []string
	for _, c := range append(append([]flowCase{}, flowCases...), flowCasesOwn...) {
		in = append(in, c.in)
	}
	// Errors are included in case one of them parses after a change: then
	// it is a good flow like any other.
	for _, c := range errorCases {
		in = append(in, c.in)
	}
	in = append(in, ovsErrorCases...)
	in = append(in, recordFlows...)
	corpus, _ := filepath.Glob("testdata/fuzz/FuzzParseFlow/*")
	for _, name := range corpus {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if s, ok := strings.CutPrefix(l, "string("); ok {
				if s, err := strconv.Unquote(strings.TrimSuffix(s, ")")); err == nil {
					in = append(in, s)
				}
			}
		}
	}
	var flows []*Flow
	for _, s := range in {
		if f, err := ParseFlow(s, testPorts); err == nil {
			flows = append(flows, f)
		}
		if f, err := ParseModFlow(s, testPorts); err == nil {
			flows = append(flows, f.AsAdd())
		}
	}
	for _, s := range recordFlows {
		if _, err := ParseFlow(s, nil); err != nil {
			t.Fatalf("recordFlows: %q: %v", s, err)
		}
	}
	f, err := ParseFlow("table=1,tcp,actions=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Actions = append(f.Actions, handBuiltActions...)
	return append(flows, f)
}

func TestRecordRoundTrip(t *testing.T) {
	flows := recordTestFlows(t)
	largest, largestText := 0, ""
	for _, f := range flows {
		rec, err := f.MarshalBinary()
		if err != nil {
			t.Errorf("%q: MarshalBinary: %v", f, err)
			continue
		}
		if rec[0] != recordVersion {
			t.Errorf("%q: record starts with %d, not the version", f, rec[0])
		}
		g, err := UnmarshalFlow(rec)
		if err != nil {
			t.Errorf("%q: UnmarshalFlow: %v", f, err)
			continue
		}
		if !reflect.DeepEqual(f, g) {
			t.Errorf("%q: decodes to a different flow\n got %#v %#v\nwant %#v %#v", f, g.Match.Fields(), g.Actions, f.Match.Fields(), f.Actions)
		}
		text := g.String()
		if text != f.String() {
			t.Errorf("%q: decodes to %q", f, text)
		}
		if !f.SameRule(g) || !f.SameVersion(g) || !f.Equal(g) {
			t.Errorf("%q: decoded flow not the same rule and version", f)
		}
		// The decoded flow owns its memory.
		clear(rec)
		if g.String() != text {
			t.Errorf("%q: decoded flow shares the record's bytes", f)
		}
		if len(rec) > largest {
			largest, largestText = len(rec), f.String()
		}
	}
	if len(flows) < 250 {
		t.Errorf("only %d flows round-tripped", len(flows))
	}
	t.Logf("%d flows; largest record %d bytes: %s (%d bytes of text)", len(flows), largest, largestText, len(largestText))
}

// TestRecordFlowsMatchEveryField: recordFlows match every stored field
// at least once, so that the round trip covers each field's encoding.
func TestRecordFlowsMatchEveryField(t *testing.T) {
	seen := map[FieldID]bool{}
	for _, s := range recordFlows {
		f, err := ParseFlow(s, nil)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		for _, fm := range f.Match.Fields() {
			seen[fm.Field] = true
		}
	}
	for i := FieldID(0); i < numStoredFields; i++ {
		if !seen[i] {
			t.Errorf("no flow of recordFlows matches %s", i)
		}
	}
}

// TestRecordCoversActionTypes fails when an action type is added without a
// codec: it lists, with go/parser, every type of the package that has a
// String(PortMap) string method (the Action interface) and requires each
// one in the round-trip flows, which only pass if encoding and decoding
// work.
func TestRecordCoversActionTypes(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := gotoken.NewFileSet()
	declared := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || fn.Name.Name != "String" || !isActionStringSig(fn.Type) {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			declared[recv.(*ast.Ident).Name] = true
		}
	}
	// setFieldCheck only lives while the parser checks the actions:
	// stripChecks removes it before a Flow is returned.
	delete(declared, "setFieldCheck")
	if _, err := (&Flow{Actions: []Action{setFieldCheck{}}}).MarshalBinary(); err == nil || !strings.Contains(err.Error(), "no binary encoding for action ofctl.setFieldCheck") {
		t.Errorf("setFieldCheck encoded: %v", err)
	}
	if len(declared) < 29 {
		t.Fatalf("found only %d action types: %v", len(declared), declared)
	}
	seen := map[string]bool{}
	var walk func([]Action)
	walk = func(acts []Action) {
		for _, a := range acts {
			seen[reflect.TypeOf(a).Name()] = true
			if ct, ok := a.(CT); ok {
				walk(ct.Exec)
				if ct.NAT != nil {
					seen["NAT"] = true
				}
			}
		}
	}
	for _, f := range recordTestFlows(t) {
		walk(f.Actions)
	}
	for name := range declared {
		if !seen[name] {
			t.Errorf("action type %s is in no round-trip flow: give it a record encoding (record.go) and a flow in recordFlows or handBuiltActions", name)
		}
	}
}

// isActionStringSig tells whether a method type is String(PortMap) string.
func isActionStringSig(ft *ast.FuncType) bool {
	if ft.Params == nil || len(ft.Params.List) != 1 || ft.Results == nil || len(ft.Results.List) != 1 {
		return false
	}
	p := ft.Params.List[0]
	if len(p.Names) > 1 {
		return false
	}
	pt, ok1 := p.Type.(*ast.Ident)
	rt, ok2 := ft.Results.List[0].Type.(*ast.Ident)
	return ok1 && ok2 && pt.Name == "PortMap" && rt.Name == "string"
}

func mustRecord(t *testing.T, s string) []byte {
	t.Helper()
	f, err := ParseFlow(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestRecordErrors(t *testing.T) {
	rec := mustRecord(t, recordFlows[0])
	for i := range rec {
		if f, err := UnmarshalFlow(rec[:i]); err == nil {
			t.Errorf("record truncated to %d of %d bytes decodes to %q", i, len(rec), f)
		}
	}
	if _, err := UnmarshalFlow(append(rec[:len(rec):len(rec)], 0)); err == nil || !strings.Contains(err.Error(), "1 trailing bytes") {
		t.Errorf("trailing byte: %v", err)
	}

	// Header: version, table, priority, cookie, timeouts, importance,
	// flags; then the match's field count.
	const hdr = 1 + 1 + 2 + 8 + 2 + 2 + 2 + 1
	exit := mustRecord(t, "actions=exit") // header, 0 fields, 1 action, tagExit
	reg0 := mustRecord(t, "reg0=5/0xff,actions=drop")
	setField, err := (&Flow{Actions: []Action{SetField{Field: FieldNwSrc, Value: []byte{1, 2, 3, 4}}}}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// header, 0 fields, 1 action, tagLearn, table .. cookie (19 bytes),
	// delete_learned, u16 1 spec: the spec's kind is at learnSpecAt.
	learnRec := mustRecord(t, "actions=learn(output:NXM_OF_IN_PORT[])")
	learnSpecAt := hdr + 1 + 2 + 1 + 19 + 1 + 2
	if learnRec[hdr+3] != tagLearn || learnRec[learnSpecAt] != byte(LearnOutput) {
		t.Fatalf("learn record layout: %x", learnRec)
	}
	edit := func(rec []byte, fn func([]byte) []byte) []byte {
		return fn(append([]byte(nil), rec...))
	}
	for _, c := range []struct {
		name string
		rec  []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"version 0", edit(exit, func(b []byte) []byte { b[0] = 0; return b }), "format version 0, want 1"},
		{"version 2", edit(exit, func(b []byte) []byte { b[0] = 2; return b }), "format version 2, want 1"},
		{"unknown flag", edit(exit, func(b []byte) []byte { b[hdr-1] = 0x80; return b }), "unknown flow flags 0x80"},
		{"unknown tag", edit(exit, func(b []byte) []byte { b[len(b)-1] = 0xff; return b }), "unknown action tag 255"},
		{"tag 0", edit(exit, func(b []byte) []byte { b[len(b)-1] = 0; return b }), "unknown action tag 0"},
		{"action count", edit(exit, func(b []byte) []byte { b[len(b)-2] = 2; return b }), "truncated"},
		{"field id", edit(reg0, func(b []byte) []byte { b[hdr+1] = byte(numStoredFields); return b }), fmt.Sprintf("field id %d out of range", numStoredFields)},
		{"field id exact", edit(reg0, func(b []byte) []byte { b[hdr+1] = 0x7f | fieldExact; return b }), "field id 127 out of range"},
		{"field count", edit(reg0, func(b []byte) []byte { b[hdr] = 2; return b }), "out of order"},
		{"value outside mask", edit(reg0, func(b []byte) []byte { b[hdr+2] = 1; return b }), "not normalized"},
		{"zero mask", edit(reg0, func(b []byte) []byte { copy(b[hdr+6:], []byte{0, 0, 0, 0}); return b }), "not normalized"},
		{"set_field value length", edit(setField, func(b []byte) []byte {
			// ... tagSetField, field, u16 4, 1 2 3 4, u16 0: shorten the value.
			i := bytes.Index(b, []byte{tagSetField, byte(FieldNwSrc), 0, 4})
			b[i+3] = 3
			return append(b[:i+4+3], b[i+4+4:]...)
		}), "set_field nw_src: value of 3 bytes and mask of 0, want 4"},
		{"subfield name", edit(mustRecord(t, "actions=load:1->NXM_NX_REG0[]"), func(b []byte) []byte {
			i := bytes.Index(b, []byte("NXM_NX_REG0"))
			b[i+10] = 'X'
			return b
		}), `unknown subfield name "NXM_NX_REGX"`},
		{"subfield range", edit(mustRecord(t, "actions=load:1->NXM_NX_REG0[0..15]"), func(b []byte) []byte {
			i := bytes.Index(b, []byte("NXM_NX_REG0"))
			b[i+11] = 17 // ofs 17 + 16 bits > 32
			return b
		}), "bits 17..32 out of range"},
		{"bool", edit(mustRecord(t, "actions=set_tunnel64:1"), func(b []byte) []byte { b[len(b)-1] = 2; return b }), "boolean 2"},
		{"learn spec kind", edit(learnRec, func(b []byte) []byte { b[learnSpecAt] = 3; return b }), "unknown learn spec kind 3"},
		{"learn spec flags", edit(learnRec, func(b []byte) []byte { b[learnSpecAt+1] = 0x10; return b }), "unknown learn spec flags 0x10"},
		{"learn spec count", edit(learnRec, func(b []byte) []byte { b[learnSpecAt-1] = 0xff; return b }), "truncated"},
		{"learn delete_learned", edit(learnRec, func(b []byte) []byte { b[learnSpecAt-3] = 2; return b }), "boolean 2"},
	} {
		f, err := UnmarshalFlow(c.rec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: UnmarshalFlow = %v, %v; want error containing %q", c.name, f, err, c.want)
		}
	}

	// What MarshalBinary refuses.
	filter, err := ParseMatch("tcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := ParseModFlow("tcp,actions=drop", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f    *Flow
		want string
	}{
		{filter, "a flow filter has no binary encoding"},
		{mod, "a flow filter has no binary encoding"},
		{&Flow{CookieMask: 1}, "cookie mask"},
		{&Flow{Actions: []Action{CT{Table: 256}}}, "table 256 out of range"},
		{&Flow{Actions: []Action{CT{Exec: []Action{nil}}}}, "no binary encoding for action <nil>"},
		{&Flow{Actions: []Action{NAT{Src: true, AddrMin: netip.MustParseAddr("fe80::1%eth0")}}}, "zones have no binary encoding"},
		{&Flow{Actions: []Action{Learn{Specs: []LearnSpec{{Dst: Subfield{Field: FieldReg0, NBits: 1}}}}}}, "subfield of reg0 without a name"},
	} {
		if _, err := c.f.MarshalBinary(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("MarshalBinary(%#v) = %v, want error containing %q", c.f, err, c.want)
		}
	}
}

func TestSameRuleSameVersion(t *testing.T) {
	for _, c := range []struct {
		a, b              string
		sameRule, sameVer bool
	}{
		{"tcp,tp_dst=80,actions=1", "tcp,tp_dst=80,actions=1", true, true},
		{"tcp,tp_dst=80,actions=1", "tcp,tcp_dst=80,actions=output:1", true, true},
		{"actions=drop", "actions=", true, true},
		{"ip,actions=mod_nw_ttl:5", "ip,actions=load:5->NXM_NX_IP_TTL[]", true, true},
		{"ip,actions=ct(commit,exec(set_field:1->ct_mark))", "ip,actions=ct(commit,exec(load:1->NXM_NX_CT_MARK[]))", true, true},
		{"send_flow_rem,actions=1", "actions=1", true, true}, // flags are ignored, as OVS does
		// Rule differences.
		{"priority=5,actions=1", "priority=6,actions=1", false, true},
		{"table=1,actions=1", "table=2,actions=1", false, true},
		{"ip,nw_src=10.0.0.0/24,actions=1", "ip,nw_src=10.0.0.0/16,actions=1", false, true},
		{"reg0=5/0xff,actions=1", "reg0=5,actions=1", false, true},
		{"reg0=5/0xff,actions=1", "reg0=5/0xfff,actions=1", false, true},
		{"ipv6,ipv6_src=2001:db8::/64,actions=1", "ipv6,ipv6_src=2001:db8::/63,actions=1", false, true},
		{"tcp,actions=1", "tcp6,actions=1", false, true},
		{"actions=1", "in_port=1,actions=1", false, true},
		// Version differences.
		{"cookie=1,actions=1", "cookie=2,actions=1", true, false},
		{"cookie=1,actions=1", "actions=1", true, false},
		{"idle_timeout=5,actions=1", "actions=1", true, false},
		{"hard_timeout=5,actions=1", "hard_timeout=6,actions=1", true, false},
		{"importance=1,actions=1", "actions=1", true, false},
		{"actions=1,2", "actions=2,1", true, false},
		{"actions=1", "actions=1,1", true, false},
		{"actions=drop", "actions=1", true, false},
		{"ip,actions=ct(commit,exec(load:1->NXM_NX_CT_MARK[]))", "ip,actions=ct(commit,exec(load:2->NXM_NX_CT_MARK[]))", true, false},
		{"ip,actions=ct(commit,exec(load:1->NXM_NX_CT_MARK[],load:1->NXM_NX_CT_LABEL[0..63]))", "ip,actions=ct(commit,exec(load:1->NXM_NX_CT_LABEL[0..63],load:1->NXM_NX_CT_MARK[]))", true, false},
		{"ip,actions=ct(commit,nat(src=10.0.0.1))", "ip,actions=ct(commit,nat(src=10.0.0.2))", true, false},
		{"ip,actions=ct(commit,zone=NXM_NX_REG0[0..15])", "ip,actions=ct(commit,zone=NXM_NX_REG0[16..31])", true, false},
		{"actions=load:1->NXM_NX_REG0[0..7]", "actions=load:1->NXM_NX_REG0[0..8]", true, false},
		{"actions=note:01", "actions=note:02", true, false},
		{"ip,actions=dec_ttl(1)", "ip,actions=dec_ttl", true, false},
		{"actions=set_tunnel:5", "actions=set_tunnel64:5", true, false},
	} {
		a, err := ParseFlow(c.a, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseFlow(c.b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.SameRule(b); got != c.sameRule || b.SameRule(a) != got {
			t.Errorf("SameRule(%q, %q) = %v, want %v", c.a, c.b, got, c.sameRule)
		}
		if got := a.SameVersion(b); got != c.sameVer || b.SameVersion(a) != got {
			t.Errorf("SameVersion(%q, %q) = %v, want %v", c.a, c.b, got, c.sameVer)
		}
		if (a.ruleKey() == b.ruleKey()) != c.sameRule {
			t.Errorf("ruleKey disagrees with SameRule for %q, %q", c.a, c.b)
		}
	}
}

// TestSameAgreesWithText checks the typed comparisons against the text
// ones Diff used before them, on every pair of test flows: same rule when
// table, priority and match print the same; same version when diff-flows
// prints the same line.
func TestSameAgreesWithText(t *testing.T) {
	flows := recordTestFlows(t)
	rule := make([]string, len(flows))
	version := make([]string, len(flows))
	for i, f := range flows {
		rule[i] = "table=" + strconv.Itoa(int(f.Table)) + " " + f.MatchString(nil)
		prefix := f.MatchString(nil)
		if f.Table != 0 {
			prefix = "table=" + strconv.Itoa(int(f.Table)) + " " + prefix
		}
		version[i] = strings.TrimPrefix(diffLine(f, nil), prefix)
	}
	for i, f := range flows {
		for j, g := range flows {
			if got, want := f.SameRule(g), rule[i] == rule[j]; got != want {
				t.Errorf("SameRule(%q, %q) = %v, text says %v", f, g, got, want)
			}
			if got, want := f.SameVersion(g), version[i] == version[j]; rule[i] == rule[j] && got != want {
				t.Errorf("SameVersion(%q, %q) = %v, text says %v", f, g, got, want)
			}
		}
	}
}

// TestRecordFieldNumbers: records store match fields by FieldID, so the
// stored fields' numbers are part of the format. Renumbering them (a new
// field in the middle) must change recordVersion and this list.
func TestRecordFieldNumbers(t *testing.T) {
	want := []string{"in_port", "dl_src", "dl_dst", "dl_type", "vlan_tci", "nw_src", "nw_dst", "nw_proto",
		"nw_tos", "nw_ecn", "nw_ttl", "nw_frag", "tp_src", "tp_dst", "tcp_flags", "icmp_type", "icmp_code",
		"arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha", "ipv6_src", "ipv6_dst", "ipv6_label", "metadata",
		"reg0", "reg1", "reg2", "reg3", "reg4", "reg5", "reg6", "reg7", "reg8", "reg9", "reg10", "reg11",
		"reg12", "reg13", "reg14", "reg15", "ct_state", "ct_zone", "ct_mark", "ct_label", "tun_id", "pkt_mark",
		"ct_nw_proto", "ct_nw_src", "ct_nw_dst", "ct_ipv6_src", "ct_ipv6_dst", "ct_tp_src", "ct_tp_dst", "tun_src", "tun_dst"}
	if recordVersion != 1 {
		t.Fatalf("recordVersion %d: update this list for it", recordVersion)
	}
	for i := FieldID(0); i < numStoredFields; i++ {
		if int(i) >= len(want) {
			t.Errorf("field %d (%s) is new: fine at the end of the stored fields, add it here", i, i.Info().Name)
			continue
		}
		if got := i.Info().Name; got != want[i] {
			t.Errorf("field %d is %s, was %s: stored records would change meaning; bump recordVersion", i, got, want[i])
		}
	}
	if int(numStoredFields) >= 0x80 {
		t.Errorf("%d stored fields: a record's field byte has room for 127", numStoredFields)
	}
}

// TestRecordTagNumbers: records store actions by tag, so the tags' numbers
// are part of the format. New action types take new numbers after the
// others (records written before them still decode); renumbering one must
// change recordVersion and this list.
func TestRecordTagNumbers(t *testing.T) {
	want := []byte{tagOutput, tagOutputReg, tagDrop, tagController, tagCT, tagNAT, tagCTClear,
		tagResubmit, tagGotoTable, tagNote, tagLoad, tagMove, tagSetField, tagModVlanVid,
		tagModVlanPcp, tagStripVlan, tagPushVlan, tagModDlSrc, tagModDlDst, tagModNwSrc,
		tagModNwDst, tagModNwTos, tagModTpSrc, tagModTpDst, tagDecTTL, tagSetTunnel,
		tagSetQueue, tagPopQueue, tagExit, tagLearn, tagFinTimeout}
	for i, tag := range want {
		if int(tag) != i+1 {
			t.Errorf("tag #%d is %d: stored records would change meaning; bump recordVersion", i+1, tag)
		}
	}
	// A record of recordVersion 1 written before learn existed.
	old := []byte{1, // version
		0, 0x80, 0, // table 0, priority 32768
		0, 0, 0, 0, 0, 0, 0, 0, // cookie
		0, 0, 0, 0, 0, 0, // idle_timeout, hard_timeout, importance
		0,                                 // flags
		0,                                 // no match
		0, 2, tagOutput, 0, 0, 0, 2, 0, 0, // 2 actions: output:2,
		tagExit, // exit
	}
	f, err := UnmarshalFlow(old)
	if err != nil || f.String() != "actions=output:2,exit" {
		t.Errorf("old record decodes to %v, %v", f, err)
	}
	if rec := mustRecord(t, "actions=output:2,exit"); !bytes.Equal(rec, old) {
		t.Errorf("the record of actions=output:2,exit changed: %x, was %x", rec, old)
	}
}
