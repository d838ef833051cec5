package bpf_test

import (
	"maps"
	"testing"

	"github.com/ebpfovs/ebpfovs/dpctl"
	"github.com/ebpfovs/ebpfovs/loader"
	"github.com/ebpfovs/ebpfovs/testenv"
)

func (d *dp) runXDP(in uint32, frame []byte) uint32 {
	d.t.Helper()
	var verdict uint32
	err := d.ns.Do(func() (err error) {
		verdict, err = d.b.RunXDP(frame, d.ifindex[in])
		return err
	})
	if err != nil {
		d.t.Fatal(err)
	}
	return verdict
}

// txCounts reads every port's tx packet counter.
func (d *dp) txCounts() map[uint32]uint64 {
	d.t.Helper()
	ports, err := d.b.Ports()
	if err != nil {
		d.t.Fatal(err)
	}
	out := map[uint32]uint64{}
	for _, p := range ports {
		out[p.OFPort] = p.Stats.TxPackets
	}
	return out
}

// TestXDP runs xdp_ingress with BPF_PROG_TEST_RUN: which flow tables it
// carries out itself (the verdict, and the port counters show where the
// packet went), and which it leaves to TC untouched.
func TestXDP(t *testing.T) {
	d := newDP(t)
	arp := testenv.Build(testenv.PacketSpec{Proto: "arp", SrcMAC: mac1, DstMAC: bcast, SrcIP: ip1, DstIP: ip2})
	udp := testenv.Build(testenv.PacketSpec{SrcMAC: mac1, DstMAC: mac2, SrcIP: ip1, DstIP: ip2, Proto: "udp", SrcPort: 1, DstPort: 2})
	syn := testenv.Build(tcp("S", 40000, 5000))

	for _, tc := range []struct {
		name    string
		flows   []string
		in      uint32
		frame   []byte
		verdict uint32
		tx      []uint32 // ports whose tx counter went up by one
		toTC    bool     // passed to TC before any state changed
	}{
		{"NORMAL floods a broadcast", []string{"priority=0 actions=NORMAL"}, 1, arp, loader.XDPRedirect, []uint32{2, 3}, false},
		{"FLOOD", []string{"actions=FLOOD"}, 2, udp, loader.XDPRedirect, []uint32{1, 3}, false},
		{"one output", []string{"in_port=1, actions=output:3"}, 1, udp, loader.XDPRedirect, []uint32{3}, false},
		{"output:REG", []string{"in_port=1, actions=load:2->NXM_NX_REG0[],output:NXM_NX_REG0[]"}, 1, udp, loader.XDPRedirect, []uint32{2}, false},
		{"resubmit then output", []string{"in_port=1, actions=resubmit(,1)", "table=1, actions=output:2"}, 1, udp, loader.XDPRedirect, []uint32{2}, false},
		{"the lab's flows, a SYN", labFlows, 1, syn, loader.XDPRedirect, []uint32{2}, false},
		{"no match: drop", []string{"in_port=2, actions=output:1"}, 1, udp, loader.XDPDrop, nil, false},
		{"output to the in_port is dropped", []string{"actions=output:1"}, 1, udp, loader.XDPDrop, nil, false},
		{"in_port", []string{"actions=in_port"}, 1, udp, loader.XDPRedirect, []uint32{1}, false},
		{"a rewrite anywhere: TC", []string{"in_port=1, actions=output:2", "in_port=3, actions=mod_dl_src:02:00:00:00:00:09,output:1"}, 1, udp, loader.XDPPass, nil, true},
		{"two outputs in a flow: TC", []string{"actions=output:2,output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"output and resubmit in a flow: TC", []string{"actions=output:2,resubmit(,1)", "table=1, actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"a pkt_mark match: TC", []string{"pkt_mark=5, actions=output:2", "actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
		{"set_field to pkt_mark: TC", []string{"actions=set_field:5->pkt_mark,output:2"}, 1, udp, loader.XDPPass, nil, true},
		{"output and ct(table=N) in a flow: TC", []string{"ip, actions=ct(table=1),output:2", "table=1, actions=output:3"}, 1, udp, loader.XDPPass, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.setFlows(tc.flows...)
			if _, err := d.b.FlushConntrack(dpctl.Filter{}); err != nil {
				t.Fatal(err)
			}
			before, toTC, xdp := d.txCounts(), d.counter("xdp_to_tc"), d.counter("xdp_packets")
			if got := d.runXDP(tc.in, tc.frame); got != tc.verdict {
				t.Fatalf("verdict %d, want %d", got, tc.verdict)
			}
			after := d.txCounts()
			want := maps.Clone(before)
			for _, p := range tc.tx {
				want[p]++
			}
			if !maps.Equal(after, want) {
				t.Errorf("tx counters %v -> %v, want %v", before, after, want)
			}
			if got := d.counter("xdp_to_tc") - toTC; got != map[bool]uint64{true: 1}[tc.toTC] {
				t.Errorf("xdp_to_tc went up by %d", got)
			}
			if got := d.counter("xdp_packets") - xdp; got != map[bool]uint64{false: 1}[tc.toTC] {
				t.Errorf("xdp_packets went up by %d", got)
			}
			if tc.toTC && len(d.conns()) != 0 {
				t.Errorf("passed to TC but conntrack changed: %v", d.conns())
			}
		})
	}
	// The lab's SYN committed its connection in XDP.
	d.setFlows(labFlows...)
	d.runXDP(1, syn)
	if got := format(d.conns()); len(got) != 1 {
		t.Fatalf("after the SYN through XDP: %v, want one connection", got)
	}
}
