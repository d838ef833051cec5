package flowtable

import (
	"encoding/binary"
	"errors"
	"math/rand"
	"strings"
	"testing"

	"github.com/ebpfovs/ebpfovs/bpf"
	"github.com/ebpfovs/ebpfovs/ofctl"
)

// applyTemplate does what the datapath's learn_execute does with a
// template and a packet's key: the learned flow's masked key and actions.
func applyTemplate(t *Template, mask keyBytes, src keyBytes) (keyBytes, bpf.DatapathActionList) {
	var key keyBytes
	acts := t.Acts
	word := func(k *keyBytes, w uint8) uint32 { return binary.BigEndian.Uint32(k[4*int(w):]) }
	for _, op := range t.Ops[:t.Nops] {
		v := op.Value
		if op.Kind&lopImm == 0 {
			v = uint32(uint64(word(&src, op.SrcWord)) >> op.SrcOfs & lowBits(int(op.Nbits)))
		}
		m := uint32(lowBits(int(op.Nbits)) << op.DstOfs)
		if op.Kind&lopMatch != 0 {
			x := word(&key, op.DstWord)
			binary.BigEndian.PutUint32(key[4*int(op.DstWord):], x&^m|v<<op.DstOfs&m)
		} else {
			a := &acts.A[op.DstWord]
			a.Arg = a.Arg&^m | v<<op.DstOfs&m
		}
	}
	for i := range key {
		key[i] &= mask[i]
	}
	return key, acts
}

// TestCompileLearnMatchesLearned: for random packets, the flow the
// datapath builds from a learn's template (its key, mask and actions) is
// the flow ofctl says the learn adds, compiled as any flow is.
func TestCompileLearnMatchesLearned(t *testing.T) {
	specs := []string{
		// Neutron's br-tun table 10.
		"actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x5,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:NXM_OF_IN_PORT[])",
		"ip, actions=learn(table=3,idle_timeout=10,priority=7,dl_type=0x800,NXM_OF_IP_DST[]=NXM_OF_IP_SRC[],NXM_OF_IP_SRC[0..7]=0x5,load:NXM_NX_REG0[3..20]->NXM_NX_REG5[10..27],load:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],load:0x1234->NXM_NX_REG3[],output:NXM_NX_REG1[0..15])",
		"actions=learn(table=2,fin_idle_timeout=2,fin_hard_timeout=5,NXM_NX_REG0[],NXM_NX_TUN_ID[0..31]=NXM_NX_REG4[],output:NXM_OF_IN_PORT[])",
	}
	rng := rand.New(rand.NewSource(1))
	for _, s := range specs {
		f, err := ofctl.ParseFlow(s, nil)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		l, ok := f.Actions[0].(ofctl.Learn)
		if !ok {
			lp, okp := f.Actions[0].(*ofctl.Learn)
			if !okp {
				t.Fatalf("%s: parsed as %T", s, f.Actions[0])
			}
			l = *lp
		}
		lt, err := compileLearn(&l)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		for i := 0; i < 50; i++ {
			var src keyBytes
			rng.Read(src[:])
			// Output sources (in_port, reg1) hold real port numbers.
			binary.BigEndian.PutUint32(src[fieldSlots[ofctl.FieldInPort].off:], uint32(1+rng.Intn(255)))
			binary.BigEndian.PutUint32(src[fieldSlots[ofctl.FieldReg0+1].off:], uint32(1+rng.Intn(255)))
			srcKey := src.flowKey()
			lf, err := l.Learned(func(sf ofctl.Subfield) []byte {
				v, err := SubfieldOf(&srcKey, sf)
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				return v
			})
			if err != nil {
				t.Fatalf("%s: Learned: %v", s, err)
			}
			c, err := Compile(lf)
			if err != nil {
				t.Fatalf("%s: the learned flow %s: %v", s, lf, err)
			}
			key, acts := applyTemplate(&lt.tpl, lt.mask, src)
			if lt.mask != c.mask {
				t.Fatalf("%s: template mask differs from the learned flow's (%s)", s, lf)
			}
			if key != c.key {
				t.Fatalf("%s: packet %d: template key differs from the learned flow's (%s)", s, i, lf)
			}
			if acts != c.actions {
				t.Fatalf("%s: packet %d: template actions\n%+v\ndiffer from the learned flow's (%s)\n%+v", s, i, acts.A[:acts.N], lf, c.actions.A[:c.actions.N])
			}
			if lt.tpl.Table != uint32(lf.Table) || lt.tpl.Priority != uint32(lf.Priority) ||
				lt.tpl.IdleTimeout != lf.IdleTimeout || lt.tpl.HardTimeout != lf.HardTimeout {
				t.Fatalf("%s: template table/priority/timeouts differ from %s", s, lf)
			}
		}
	}
}

// TestBuildLearn: a learning flow gives its target table a learned
// subtable (a mask id of its own, though a flow there has the same bits),
// no flow cache, and its ACT_LEARN the template's id, which stays while
// the other generation uses it.
func TestBuildLearn(t *testing.T) {
	learnFlow := "table=0, actions=learn(table=1,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[])"
	img := build(t, 0, nil, learnFlow, "table=1, dl_dst=00:00:00:00:00:01, actions=drop",
		"table=1, tcp, actions=drop", "table=1, udp, actions=drop")
	tbl := img.Tables[1]
	if tbl.Learned != 1 || tbl.CacheNwords != 0 {
		t.Fatalf("table 1: learned %d, cache words %d; want 1, 0", tbl.Learned, tbl.CacheNwords)
	}
	var learnedMask, plainMask = -1, -1
	for i := uint32(0); i < tbl.Nsubtables; i++ {
		m := img.Masks[tbl.St[i].MaskId]
		if m.Learned == 1 {
			learnedMask = int(tbl.St[i].MaskId)
		} else if m.Bits.DlDst == [6]uint8{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
			plainMask = int(tbl.St[i].MaskId)
		}
	}
	if learnedMask < 0 || plainMask < 0 || learnedMask == plainMask {
		t.Fatalf("table 1: learned subtable mask %d, dl_dst flow's mask %d: want two", learnedMask, plainMask)
	}
	if len(img.Templates) != 1 || len(img.NewLearns) != 1 {
		t.Fatalf("%d templates, %d new, want 1, 1", len(img.Templates), len(img.NewLearns))
	}
	var tid uint32
	for id, tp := range img.Templates {
		tid = id
		if tp.Gens != 1 || tp.MaskId != uint32(learnedMask) || tp.FlowBase != testMaxFlows {
			t.Fatalf("template: gens %d mask %d base %d", tp.Gens, tp.MaskId, tp.FlowBase)
		}
	}
	if img.Tables[0].Learned != 0 {
		t.Errorf("table 0 marked learned")
	}

	// Generation 1 without the learning flow: the template stays, for
	// generation 0; then generation 0 without it too: it is freed, unless
	// a learned flow still uses it.
	heldMasks := map[uint32]Mask{}
	for id, m := range img.Masks {
		heldMasks[id] = m
	}
	img1, err := Build(flowsOf(t, "table=1, actions=drop"), 1, testMaxFlows, Held{Masks: heldMasks, Templates: img.Templates})
	if err != nil {
		t.Fatal(err)
	}
	if tp, ok := img1.Templates[tid]; !ok || tp.Gens != 1 || len(img1.FreeTemplates) != 0 {
		t.Fatalf("generation 1 without the learn: template %+v kept %v, free %v", tp.Gens, ok, img1.FreeTemplates)
	}
	use := []LearnedUse{{Table: 1, MaskID: uint32(learnedMask), Priority: 32768, Template: tid}}
	img2, err := Build(flowsOf(t, "table=1, actions=drop"), 0, testMaxFlows, Held{Masks: heldMasks, Templates: img1.Templates, Learned: use})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := img2.Templates[tid]; !ok || img2.Tables[1].Learned != 1 {
		t.Fatalf("a learned flow lives: its template and subtable must stay")
	}
	if img2.XDP != 0 {
		t.Errorf("a learned flow lives: XDP may not run the generation (its actions are not the image's)")
	}
	img3, err := Build(flowsOf(t, "table=1, actions=drop"), 0, testMaxFlows, Held{Masks: heldMasks, Templates: img1.Templates})
	if err != nil {
		t.Fatal(err)
	}
	if len(img3.FreeTemplates) != 1 || img3.FreeTemplates[0] != tid || len(img3.Templates) != 0 {
		t.Fatalf("nothing uses the template: free %v, kept %d", img3.FreeTemplates, len(img3.Templates))
	}
}

// TestCompileLearnRefused: learn specs the datapath cannot hold are the
// flow's error (InputError: exit 2), naming the spec.
func TestCompileLearnRefused(t *testing.T) {
	for _, tc := range []struct{ flow, want string }{
		{"ipv6,actions=learn(table=1,eth_type=0x86dd,load:NXM_OF_ETH_SRC[]->NXM_NX_IPV6_SRC[0..47])", "learn: load:NXM_OF_ETH_SRC[]->NXM_NX_IPV6_SRC[0..47]"},
		{"actions=learn(table=1,NXM_NX_REG0[],NXM_NX_REG2[],NXM_NX_REG4[],NXM_NX_REG6[],NXM_NX_REG8[],NXM_NX_REG10[],NXM_NX_REG12[],NXM_NX_REG14[],NXM_OF_ETH_SRC[])", "learned match spans 10 8-byte words"},
	} {
		f, err := ofctl.ParseFlow(tc.flow, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.flow, err)
		}
		_, err = Compile(f)
		var ie *InputError
		if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (%T), want an InputError with %q", tc.flow, err, err, tc.want)
		}
	}
}
