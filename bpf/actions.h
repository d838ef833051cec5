/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Act: run a flow's action list on the packet.
 *
 * Output is deferred by one: each output first flushes the previous one as a
 * clone (bpf_clone_redirect), then becomes the pending output. When the
 * pipeline ends, the pending output consumes the packet itself with
 * bpf_redirect_peer (a veth whose peer is in another namespace: straight to
 * the peer's ingress, the fastest path measured here) or bpf_redirect (taps
 * and everything else). So a single output costs no clone, and outputs
 * happen in action order; a rewrite sends the pending output first, so each
 * output carries the packet as it was at that point.
 *
 * The XDP program shares everything here but output (xdp.h): step() in
 * datapath.c hands each action to exec_ct or exec_meta when it does not touch the
 * packet, else to exec_action (TC) or exec_action_xdp.
 */
#pragma once

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "maps.h"
#include "parse.h"
#include "conntrack.h"
#include "rewrite.h"
#include "learn.h"

static __always_inline void port_tx(__u32 port, __u32 len)
{
	struct port_counts *ps = bpf_map_lookup_elem(&port_stats, &port);

	if (ps) {
		ps->tx_packets++;
		ps->tx_bytes += len;
	}
}

/*
 * Checks shared by every output: OpenFlow never sends a packet back out of
 * its in_port unless asked with IN_PORT (allow_in_port), and the port must
 * exist. Records the output for the trace. Returns the port, or NULL.
 */
static __always_inline struct port *out_port(struct out_state *o, __u32 port,
					     int allow_in_port)
{
	struct port *p;

	if (port == o->in_port && !allow_in_port)
		return NULL;
	p = bpf_map_lookup_elem(&ports, &port);
	if (!p || !port_present(p)) {
		count(CNT_OUTPUT_NOPORT);
		o->noport = 1;
		return NULL;
	}
	if (o->nout < TRACE_MAX_OUT)
		o->port[o->nout] = port;
	o->nout++;
	return p;
}

#define PV_SET 0x10000 /* out_state.pending_vlan holds a TCI to send with */

/* TC: give the skb the outer 802.1Q tag want (VLAN_CFI | PCP | VID), or
 * none (0), where it has now. bpf_skb_vlan_push leaves the tag in the
 * skb's metadata, as a NIC would. */
static __always_inline void skb_retag(struct __sk_buff *skb, __u32 now, __u32 want)
{
	if (now & VLAN_CFI)
		bpf_skb_vlan_pop(skb);
	if (want & VLAN_CFI)
		bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), want & 0xefff);
}

/* TC: the pending output as a clone tagged as NORMAL chose, then the
 * packet's own tag back. Inlined, not global: a frame of its own made one
 * call chain of tc_ingress 544 bytes of stack on Linux 6.1 (over 512;
 * each frame counts at least 32). */
static __always_inline void clone_retagged(struct __sk_buff *skb, struct out_state *o)
{
	skb_retag(skb, o->vlan_now, o->pending_vlan);
	bpf_clone_redirect(skb, o->pending_ifindex, 0);
	skb_retag(skb, o->pending_vlan, o->vlan_now);
}

/*
 * The tunnel key of an output to tunnel port p, into o->pending_tk: the
 * remote end, key (VNI) and local end from the port's options, or from
 * the flow's tun_dst, tun_id and tun_src where an option is "flow".
 * Returns 0 when there is no remote end to send to.
 */
static __always_inline int tunnel_key(struct out_state *o, const struct port *p)
{
	__u32 remote;

	remote = bpf_ntohl(p->tun_flags & TUN_REMOTE_FLOW ? o->tun_dst : p->remote_ip);
	if (!remote)
		return 0;
	__builtin_memset(&o->pending_tk, 0, sizeof(o->pending_tk));
	o->pending_tk.remote_ipv4 = remote;
	o->pending_tk.tunnel_id = p->tun_flags & TUN_KEY_FLOW ? (__u32)bpf_be64_to_cpu(o->tun_id) : (__u32)p->tun_key;
	o->pending_tk.local_ipv4 = bpf_ntohl(p->tun_flags & TUN_LOCAL_FLOW ? o->tun_src : p->local_ip);
	o->pending_tk.tunnel_ttl = 64;
	return 1;
}

/* TC: a tunnel device sends the packet where its tunnel key says. Global:
 * see output_special. */
__noinline int tunnel_send(struct __sk_buff *skb, struct out_state *o)
{
	if (!skb || !o)
		return 0;
	return bpf_skb_set_tunnel_key(skb, &o->pending_tk, sizeof(o->pending_tk),
				      (o->pending_flags & PORT_F_TUN_NOCSUM) ? BPF_F_ZERO_CSUM_TX : 0);
}

/*
 * TC: send the pending output now, as a clone; the packet stays ours.
 * special = 0 (a constant: the code is specialised) leaves out tunnel
 * ports, for the exact-match cache's replay, which never has them: the
 * calls took tc_ingress's stack from 96 to 112 bytes, and one of its call
 * chains past Linux 6.1's 512 (each frame counts in 32s).
 */
static __always_inline void flush_pending_x(struct __sk_buff *skb, struct out_state *o,
					    const int special)
{
	if (o->pending && !o->dryrun) {
		if (special && (o->pending_flags & PORT_F_TUNNEL))
			tunnel_send(skb, o);
		if (o->pending_vlan)
			clone_retagged(skb, o);
		else
			bpf_clone_redirect(skb, o->pending_ifindex, 0);
		if (!o->notx)
			port_tx(o->pending, skb->len);
	}
	o->pending = 0;
	o->pending_vlan = 0;
}

#define flush_pending(skb, o) flush_pending_x(skb, o, 1)

/* TC: queue an output to OpenFlow port `port`, sending the previous one. */
/*
 * An output to a patch port (recorded, carried out last: patch_out) or a
 * tunnel port (its tunnel key prepared, after the pending output left).
 * Returns 1 when output() has nothing more to do. Global: one copy, out
 * of the way of every inlined output.
 */
__noinline int output_special(struct __sk_buff *skb, struct out_state *o, __u32 port,
			      const struct port *p)
{
	if (!skb || !o || !p)
		return 1;
	if (p->type == PORT_PATCH) {
		/* Last, whatever comes after: a tail call ends the program. */
		if (o->patch) {
			count(CNT_PATCH_EXTRA);
			return 1;
		}
		o->patch = port;
		o->patch_peer = p->peer_port;
		o->patch_vlan = 0;
		return 1;
	}
	flush_pending(skb, o);
	o->tunnel_out = 1;
	if (!tunnel_key(o, p)) {
		count(CNT_TUNNEL_NO_REMOTE);
		return 1;
	}
	return 0;
}

/* TC: queue an output to OpenFlow port `port`, sending the previous one.
 * special: see flush_pending_x. */
static __always_inline void output_x(struct __sk_buff *skb, struct out_state *o,
				     __u32 port, int allow_in_port, const int special)
{
	struct port *p = out_port(o, port, allow_in_port);

	if (!p)
		return;
	if (special && (p->type == PORT_PATCH || (p->flags & PORT_F_TUNNEL)) &&
	    output_special(skb, o, port, p))
		return;
	flush_pending_x(skb, o, special);
	o->pending = port;
	o->pending_ifindex = p->ifindex;
	o->pending_flags = p->flags;
}

#define output(skb, o, port, allow_in_port) output_x(skb, o, port, allow_in_port, 1)

/*
 * NORMAL: a learning L2 switch with VLANs, as OVS's xlate_normal. Learns
 * the source in VLAN vlan and returns the port the destination was learnt
 * on in it, or 0: flood.
 */
static __always_inline __u32 normal_dest(struct pkt_ctx *c, __u32 vlan)
{
	struct mac_key mk = {};
	struct mac_entry *me;
	__u64 now = dp_now();

	mk.vlan = vlan & 0x0fff;

	/* Learn the source, unless it is a multicast address. Refresh at most
	 * once a second so steady traffic does not write the map per packet. */
	if (!(c->key.dl_src[0] & 1) && !c->dryrun) {
		__builtin_memcpy(mk.mac, c->key.dl_src, 6);
		me = bpf_map_lookup_elem(&macs, &mk);
		if (!me || me->port != c->out.in_port ||
		    now - me->seen_ns > 1000000000ULL) {
			struct mac_entry ne = { .port = c->out.in_port, .seen_ns = now };

			bpf_map_update_elem(&macs, &mk, &ne, BPF_ANY);
		}
	}

	if (!(c->key.dl_dst[0] & 1)) {
		__builtin_memcpy(mk.mac, c->key.dl_dst, 6);
		me = bpf_map_lookup_elem(&macs, &mk);
		if (me)
			return me->port; /* in_port itself: output drops it */
	}
	return 0;
}

/* OVS's xbundle_trunks_vlan: port p (number n) carries VLAN vlan tagged.
 * port_trunks holds the trunks as configured; a native mode with a tag
 * other than 0 trunks its native VLAN and never VLAN 0, as OVS's
 * bundle_set makes its effective trunks. */
static __always_inline int trunks_vlan(const struct port *p, __u32 n, __u32 vlan)
{
	struct vlan_bitmap *b;

	if (p->vlan_mode == VLAN_MODE_ACCESS)
		return 0;
	if (p->vlan_mode != VLAN_MODE_TRUNK && p->tag) {
		if (vlan == p->tag)
			return 1;
		if (!vlan)
			return 0;
	}
	if (!(p->flags & PORT_F_TRUNKS))
		return 1;
	b = bpf_map_lookup_elem(&port_trunks, &n);
	return b && ((b->w[(vlan >> 6) & 63] >> (vlan & 63)) & 1);
}

/* OVS's xbundle_includes_vlan: the port's own VLAN (a trunk has none), or
 * one it trunks. */
static __always_inline int includes_vlan(const struct port *p, __u32 n, __u32 vlan)
{
	if (p->vlan_mode != VLAN_MODE_TRUNK && vlan == p->tag)
		return 1;
	return trunks_vlan(p, n, vlan);
}

/*
 * The VLAN of a frame with VID vid (0: untagged or priority-tagged)
 * received on p, or -1 when p does not allow it (OVS's input_vid_is_valid
 * and input_vid_to_vlan).
 */
static __always_inline int input_vlan(const struct port *p, __u32 n, __u32 vid)
{
	switch (p->vlan_mode) {
	case VLAN_MODE_ACCESS:
		return vid ? -1 : p->tag;
	case VLAN_MODE_NATIVE_TAGGED:
	case VLAN_MODE_NATIVE_UNTAGGED:
		if (!vid)
			return p->tag;
		break;
	}
	return trunks_vlan(p, n, vid) ? (int)vid : -1;
}

/* The TCI a NORMAL output to p carries in VLAN vlan, with the frame's
 * priority pcp (OVS's output_vlan_to_vid; no priority tags: VID 0 goes
 * untagged). */
static __always_inline __u32 output_tci(const struct port *p, __u32 vlan, __u32 pcp)
{
	if (p->vlan_mode == VLAN_MODE_ACCESS ||
	    (p->vlan_mode == VLAN_MODE_NATIVE_UNTAGGED && vlan == p->tag))
		return 0;
	return vlan ? VLAN_CFI | pcp | vlan : 0;
}
#define VP_ANY 0x10000 /* flood_one: FLOOD's, every port, the packet as it is */

/* One port of a flood, or NORMAL's output (TC): an output if the port
 * exists and, for NORMAL (vp = PCP | VLAN), is in the VLAN, tagged as the
 * port's settings say. Global: see flood(). */
__noinline int flood_one(struct __sk_buff *skb, struct out_state *o, __u32 port, __u32 vp)
{
	struct port *p;
	__u32 tci;

	if (!skb || !o)
		return 0;
	p = bpf_map_lookup_elem(&ports, &port);
	if (!p || !port_present(p))
		return 0;
	if (vp & VP_ANY) {
		output(skb, o, port, 0);
		return 0;
	}
	if (!includes_vlan(p, port, vp & 0x0fff))
		return 0;
	tci = output_tci(p, vp & 0x0fff, vp & 0xe000);
	output(skb, o, port, 0);
	if (o->pending == port && tci != o->vlan_now)
		o->pending_vlan = PV_SET | tci;
	else if (o->patch == port && tci != o->vlan_now)
		o->patch_vlan = PV_SET | tci;
	return 0;
}

/*
 * FLOOD and ALL: every port but in_port (OpenFlow's ALL excludes the input
 * port too; the two differ only by per-port no-flood config, which ebpfovs
 * does not have). Global, so the verifier walks the port loop once rather
 * than once per action slot; each port is a call to flood_one(), so the
 * loop's MAX_PORTS iterations cost the verifier a few instructions each
 * (with output() inlined into the loop they took ~200k). TC only; XDP has
 * xdp_flood() (xdp.h).
 */
__noinline int flood(struct __sk_buff *skb, struct out_state *o, __u32 vp)
{
	struct bridge_config *cfg;
	__u32 zero = 0, port, max;

	if (!skb || !o)
		return 0;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return 0;
	max = cfg->max_port;
	for (port = 1; port < MAX_PORTS; port++) {
		if (port > max)
			break;
		if (port != o->in_port)
			flood_one(skb, o, port, vp);
	}
	return 0;
}

/*
 * NORMAL (TC), as OVS's xlate_normal: the frame's VLAN by its in_port's
 * settings (a VID the port does not allow: dropped, counted), learning and
 * lookup in that VLAN, and output or flooding to the VLAN's ports only,
 * each tagged as its settings say. Global; its flood is flood()'s loop.
 */
__noinline int normal(struct __sk_buff *skb, struct pkt_ctx *c)
{
	__u32 port, tci, vid, vp;
	struct port *in;
	int vlan;

	if (!skb || !c)
		return 0;
	port = c->out.in_port;
	in = bpf_map_lookup_elem(&ports, &port);
	if (!in)
		return 0;
	tci = bpf_ntohs(c->key.vlan_tci);
	vid = tci & VLAN_CFI ? tci & 0x0fff : 0;
	vlan = input_vlan(in, port, vid);
	if (vlan < 0) {
		count(CNT_NORMAL_VLAN_DROP);
		return 0;
	}
	c->out.vlan_now = tci;
	vp = (vlan & 0x0fff) | (tci & VLAN_CFI ? tci & 0xe000 : 0);
	port = normal_dest(c, vlan);
	if (port)
		flood_one(skb, &c->out, port, vp);
	else
		flood(skb, &c->out, vp);
	return 0;
}

/*
 * The register index, masked where the verifier sees it. Clang knows
 * field < 16 from the caller's test and would drop a plain "& 15", then
 * index with a register the verifier cannot bound; the empty asm hides the
 * value from clang so the mask stays.
 */
static __always_inline __u32 reg_index(__u32 field)
{
	asm volatile("" : "+r"(field));
	return field & 15;
}

/* Pipeline fields (registers, metadata) for load, move and output:reg. */
static __always_inline __u64 pf_read(const struct pkt_ctx *c, __u32 field)
{
	if (field < 16)
		return bpf_ntohl(c->key.regs[reg_index(field)]);
	if (field == PF_METADATA)
		return bpf_be64_to_cpu(c->key.metadata);
	if (field == PF_PKT_MARK)
		return bpf_ntohl(c->key.pkt_mark);
	/* Any other match field, a key word at a time. field - PF_KEY is
	 * bounded below the key's size: a variable offset into the per-CPU
	 * map value that the verifier checks against the value's size. */
	if (field >= PF_KEY && field - PF_KEY < sizeof(struct flow_key) / 4)
		return bpf_ntohl(((const __be32 *)&c->key)[field - PF_KEY]);
	return 0;
}

static __always_inline void pf_write(struct pkt_ctx *c, __u32 field, __u64 v)
{
	if (field < 16)
		c->key.regs[reg_index(field)] = bpf_htonl((__u32)v);
	else if (field == PF_METADATA)
		c->key.metadata = bpf_cpu_to_be64(v);
	else if (field == PF_PKT_MARK) /* the key; ACT_SET_MARK copies it to skb->mark */
		c->key.pkt_mark = bpf_htonl((__u32)v);
	else if (field >= PF_KEY && field - PF_KEY < sizeof(struct flow_key) / 4) {
		/* A header field's key word (ACT_HDR_COMMIT writes the packet),
		 * or a tunnel field's (outputs read their mirror in c->out). */
		((__be32 *)&c->key)[field - PF_KEY] = bpf_htonl((__u32)v);
		if (field - PF_KEY >= __builtin_offsetof(struct flow_key, tun_id) / 4) {
			c->out.tun_id = c->key.tun_id;
			c->out.tun_src = c->key.tun_src;
			c->out.tun_dst = c->key.tun_dst;
		}
	}
}

static __always_inline __u64 low_bits(__u32 nbits)
{
	return nbits >= 64 ? ~0ULL : (1ULL << nbits) - 1;
}

/*
 * ct(commit, exec(set_field:V/M->ct_mark|ct_label, move:SRC->ct_mark|...)):
 * the loader turns the exec into loads and moves that follow the ct
 * action, split at 32-bit boundaries. They change the committed
 * connection (both directions see it) and the packet's ct fields, which
 * a ct(table=N) recirculation then matches. Writes v's low nbits to
 * FIELD[ofs..ofs+nbits).
 */
static __always_inline void ct_exec_write(struct pkt_ctx *c, __u32 field, __u32 ofs,
					  __u32 nbits, __u32 v)
{
	__u32 i, m = nbits >= 32 ? 0xffffffff : (1U << nbits) - 1;
	struct ct_entry *e = NULL;
	__u32 slot = c->ct.ref.slot;
	__u64 seq = 0;

	/* The connection conntrack found or committed, if it is still there. */
	if (c->ct.has_entry && !c->dryrun) {
		e = bpf_map_lookup_elem(&ct_slots, &slot);
		seq = e ? ct_owned(e, c->ct.ref.gen) : 0;
		if (!seq)
			e = NULL;
	}
	if (field == PF_CT_MARK) {
		ofs &= 31;
		c->ct.mark = (c->ct.mark & ~(m << ofs)) | ((v & m) << ofs);
		c->key.ct_mark = bpf_htonl(c->ct.mark);
		if (e) {
			e->mark = c->ct.mark;
			ct_release(e, seq);
		}
		return;
	}
	/* ct_label: the loader splits writes at 32-bit boundaries; this one
	 * lies in the big-endian word holding bit ofs. */
	i = 12 - (ofs / 32) * 4;
	if (i > 12) {
		if (e)
			ct_release(e, seq);
		return;
	}
	m <<= ofs & 31;
	v = (v << (ofs & 31)) & m;
	for (int b = 0; b < 4; b++) {
		__u8 mb = m >> (24 - 8 * b), vb = v >> (24 - 8 * b);

		c->ct.labels[i + b] = (c->ct.labels[i + b] & ~mb) | (vb & mb);
		c->key.ct_label[i + b] = c->ct.labels[i + b];
	}
	/* Whole, after the loop: clang would hoist per-byte stores through a
	 * possibly-NULL e above its check, which the verifier refuses. */
	if (e) {
		__builtin_memcpy(e->labels, c->ct.labels, 16);
		ct_release(e, seq);
	}
}

/* load:VALUE->FIELD[ofs..ofs+nbits-1] */
static __always_inline void load(struct pkt_ctx *c, const struct action *a)
{
	__u32 field = a->aux >> 8, ofs = a->aux & 63;
	__u64 m = low_bits(a->flags) << ofs;

	pf_write(c, field, (pf_read(c, field) & ~m) | (((__u64)a->arg << ofs) & m));
}

/* move:SRC[a..b]->DST[c..d] */
static __always_inline void move(struct pkt_ctx *c, const struct action *a)
{
	__u32 sf = a->aux >> 8, so = a->aux & 63;
	__u32 df = (a->arg >> 8) & 0xff, dof = a->arg & 63, n = (a->arg >> 16) & 127;
	__u64 v = (pf_read(c, sf) >> so) & low_bits(n);
	__u64 m = low_bits(n) << dof;

	pf_write(c, df, (pf_read(c, df) & ~m) | ((v << dof) & m));
}

/* The port an output:FIELD[ofs..] action names. */
static __always_inline __u32 output_reg_port(const struct pkt_ctx *c, const struct action *a)
{
	return (pf_read(c, a->aux >> 8) >> (a->aux & 63)) & low_bits(a->flags);
}

/* Whether c->act is for exec_meta: it changes the pipeline's state, not the packet. */
static __always_inline int act_is_meta(__u8 type)
{
	return type == ACT_LOAD || type == ACT_MOVE || type == ACT_CT_CLEAR || type == ACT_EXIT ||
	       type == ACT_NAT_RANGE || type == ACT_NAT_RANGE6 || type == ACT_CT_END ||
	       type == ACT_LEARN || type == ACT_FIN_TIMEOUT;
}

/*
 * ct_nw_src..ct_tp_dst for a ct(table=N) pass: the connection's tuple in
 * its original direction, as Open vSwitch's kernel datapath reports it
 * (net/openvswitch/conntrack.c): the packet's own for the original
 * direction, reversed for a reply; for a related ICMP error, the tuple of
 * the connection it quotes; for ICMP, the original direction's type and
 * code in the ports. Zero for an invalid packet. Global, verified once:
 * inlined into exec_ct, which the walk's loop inlines at every step, it
 * cost ~16k of tc_walk's verified instructions.
 */
__noinline int ct_orig_tuple(struct pkt_ctx *c, __u32 state)
{
	__be32 src[4] = {}, dst[4] = {};
	const struct pkt_info *pi;
	struct flow_key *k;
	__be16 sp, dp;
	__u8 proto;
	int rev;

	if (!c)
		return 0;
	k = &c->key;
	pi = &c->pi;

	__builtin_memset(k->ct_ipv6_src, 0, __builtin_offsetof(struct flow_key, pad) -
					    __builtin_offsetof(struct flow_key, ct_ipv6_src));
	if (!(state & CS_TRK) || (state & CS_INV))
		return 0;
	if (state & CS_REL) {
		/* The quoted packet went orig-wards if the error goes reply-wards. */
		rev = !(state & CS_RPL);
		__builtin_memcpy(src, pi->inner_src, 16);
		__builtin_memcpy(dst, pi->inner_dst, 16);
		sp = pi->inner_sport;
		dp = pi->inner_dport;
		proto = pi->inner_proto;
	} else {
		rev = state & CS_RPL;
		if (pi->is_ipv6) {
			__builtin_memcpy(src, k->ipv6_src, 16);
			__builtin_memcpy(dst, k->ipv6_dst, 16);
		} else {
			src[0] = k->nw_src;
			dst[0] = k->nw_dst;
		}
		sp = k->tp_src;
		dp = k->tp_dst;
		proto = k->nw_proto;
		if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
			sp = bpf_htons(c->ct.icmp_type);
			dp = bpf_htons(c->ct.icmp_code);
			rev = 0; /* no ports to swap: type and code are the originator's */
			if (state & CS_RPL) {
				__builtin_memcpy(k->ct_ipv6_src, dst, 16);
				__builtin_memcpy(k->ct_ipv6_dst, src, 16);
				goto ports;
			}
		}
	}
	__builtin_memcpy(k->ct_ipv6_src, rev ? dst : src, 16);
	__builtin_memcpy(k->ct_ipv6_dst, rev ? src : dst, 16);
	if (rev) {
		__be16 t = sp;

		sp = dp;
		dp = t;
	}
ports:
	k->ct_tp_src = sp;
	k->ct_tp_dst = dp;
	k->ct_nw_proto = proto;
	return 0;
}

/* Every ct_* field of the key 0: an untracked packet (ct_clear, and the
 * packet that goes on after a ct(), as OVS's flow_clear_conntrack). */
static __always_inline void ct_clear_key(struct pkt_ctx *c)
{
	c->key.ct_state = 0;
	c->key.ct_zone = 0;
	c->key.ct_mark = 0;
	__builtin_memset(c->key.ct_label, 0, 16);
	ct_orig_tuple(c, 0);
}

/*
 * ct(table=N) forks the packet, as OVS's recirculation does: a copy waits
 * for its own pass in table N (step() starts it once the current pass and
 * the copies forked before it are done) with the pipeline state as it is
 * now and the conntrack result in its ct_* fields; the packet going on
 * with the rest of the actions is untracked. At most MAX_RECIRC copies
 * wait (more are dropped, counted as the pass limit). Global: verified
 * once.
 */
__noinline int recirc_fork(struct pkt_ctx *c, __u32 table)
{
	struct recirc *r;
	__u32 i;

	if (!c)
		return 0;
	if (c->recirc_n >= MAX_RECIRC) {
		count(CNT_PASS_LIMIT);
		c->emc.ok = 0;
	} else {
		i = (c->recirc_head + c->recirc_n) & (MAX_RECIRC - 1);
		r = &c->recirc[i];
		ct_orig_tuple(c, c->ct.ct_state);
		__builtin_memcpy(r->ct, &c->ct, sizeof(r->ct));
		r->table = table;
		r->ct_state = bpf_htonl(c->ct.ct_state);
		r->ct_zone = bpf_htons(c->ct.zone);
		r->ct_mark = bpf_htonl(c->ct.mark);
		__builtin_memcpy(r->ct_label, c->ct.labels, 16);
		r->metadata = c->key.metadata;
		__builtin_memcpy(r->regs, c->key.regs, sizeof(r->regs));
		__builtin_memcpy(r->ct_ipv6_src, c->key.ct_ipv6_src, 16);
		__builtin_memcpy(r->ct_ipv6_dst, c->key.ct_ipv6_dst, 16);
		r->ct_tp_src = c->key.ct_tp_src;
		r->ct_tp_dst = c->key.ct_tp_dst;
		r->ct_nw_proto = c->key.ct_nw_proto;
		c->recirc_n++;
	}
	ct_clear_key(c);
	return 0;
}

/* A forked copy's pass starts: its pipeline state and ct_* fields back in
 * the key (recirc_fork). Returns its table. */
static __always_inline __u32 recirc_resume(struct pkt_ctx *c)
{
	struct recirc *r = &c->recirc[c->recirc_head & (MAX_RECIRC - 1)];
	const struct ct_result *saved = (const struct ct_result *)r->ct;

	c->recirc_head++;
	c->recirc_n--;
	/* The result is still the copy's when the packet's last ct() ran in
	 * its zone (a commit since then is the same connection's). */
	if (!c->ct.done || c->ct.zone != saved->zone)
		__builtin_memcpy(&c->ct, r->ct, sizeof(r->ct));
	c->key.ct_state = r->ct_state;
	c->key.ct_zone = r->ct_zone;
	c->key.ct_mark = r->ct_mark;
	__builtin_memcpy(c->key.ct_label, r->ct_label, 16);
	c->key.metadata = r->metadata;
	__builtin_memcpy(c->key.regs, r->regs, sizeof(r->regs));
	__builtin_memcpy(c->key.ct_ipv6_src, r->ct_ipv6_src, 16);
	__builtin_memcpy(c->key.ct_ipv6_dst, r->ct_ipv6_dst, 16);
	c->key.ct_tp_src = r->ct_tp_src;
	c->key.ct_tp_dst = r->ct_tp_dst;
	c->key.ct_nw_proto = r->ct_nw_proto;
	return r->table;
}

/*
 * Run c->act, a ct(): conntrack, then a ct(table=N) forks a copy for
 * table N (recirc_fork); the packet goes on untracked. With exec() or
 * nat, ACT_CT_END does that after them (the copy has their mark, label
 * and translation). Returns
 * NO_TABLE. Inlined into both programs' step loops: ct_execute ->
 * tcp_packet is the deepest call chain, and on Linux 6.1 one more frame
 * in it exceeds the 512-byte combined stack.
 */
static __always_inline __u32 exec_ct(struct pkt_ctx *c)
{
	const struct action *a = &c->act;
	__u32 zone;

	/* ct(zone=REG[a..b]): OVN keeps each port's zone in a register. */
	zone = (a->flags & CT_ZONE_FIELD) ?
	       (pf_read(c, a->aux >> 8) >> (a->aux & 63)) & 0xffff : a->aux;
	ct_execute(&c->key, &c->pi, &c->ct, zone,
		   (a->flags & ~(CT_ZONE_FIELD | CT_DEFER)) | (c->dryrun ? CT_DRYRUN : 0) |
		   (c->liberal ? CT_LIBERAL : 0));
	/* The range ACT_NAT_RANGE left is this ct()'s only: a bare
	 * ct(commit,nat) after it must not find it. */
	c->ct.nat_range.flags = 0;
	if (c->ct.nat_failed) {
		/* The kernel datapath fails the ct action, and with it the
		 * rest of the packet's actions: outputs before it stand. */
		c->ct.nat_failed = 0;
		c->halt = 1;
		c->emc.ok = 0;
		return NO_TABLE;
	}
	if (a->flags & CT_DEFER)
		return NO_TABLE; /* ACT_CT_END forks, after exec() and nat */
	if (a->arg != NO_TABLE)
		recirc_fork(c, a->arg);
	else
		ct_clear_key(c);
	return NO_TABLE;
}

/*
 * Run c->act when it changes only the pipeline's state, not the packet:
 * load, move, ct_clear, exit. Both programs (TC and XDP) call it from
 * their step loop. Global: the verifier checks it once.
 */
__noinline __u32 exec_meta(struct pkt_ctx *c)
{
	__u32 f, ctf = 0, ofs = 0, n = 0, v = 0;
	const struct action *a;

	if (!c)
		return NO_TABLE;
	a = &c->act;
	switch (a->type) {
	case ACT_LOAD:
		f = a->aux >> 8;
		if (f == PF_CT_MARK || f == PF_CT_LABEL) {
			ctf = f, ofs = a->aux & 127, n = a->flags, v = a->arg;
			break;
		}
		load(c, a);
		break;
	case ACT_MOVE:
		f = (a->arg >> 8) & 0xff;
		if (f == PF_CT_MARK || f == PF_CT_LABEL) {
			n = (a->arg >> 16) & 127;
			ctf = f, ofs = a->arg & 127;
			v = (pf_read(c, a->aux >> 8) >> (a->aux & 63)) & low_bits(n);
			break;
		}
		move(c, a);
		break;
	case ACT_CT_CLEAR:
		/* Every ct_* field, as OVS's ct_clear. */
		ct_clear_key(c);
		c->ct.done = 0;
		break;
	case ACT_EXIT:
		c->halt = 1;
		break;
	case ACT_NAT_RANGE:
		/* For the ct(commit,nat(...)) right after it; an IPv6 range's
		 * other words follow (ACT_NAT_RANGE6). */
		if (a->flags & NAT_R_MAX) {
			__builtin_memset(c->ct.nat_range.max_addr, 0, 16);
			c->ct.nat_range.max_addr[0] = a->arg;
			c->ct.nat_range.max_port = a->aux;
		} else {
			__builtin_memset(c->ct.nat_range.min_addr, 0, 16);
			c->ct.nat_range.min_addr[0] = a->arg;
			c->ct.nat_range.min_port = a->aux;
			c->ct.nat_range.flags = a->flags;
		}
		break;
	case ACT_CT_END:
		if (a->arg != NO_TABLE)
			recirc_fork(c, a->arg);
		else
			ct_clear_key(c);
		break;
	case ACT_NAT_RANGE6:
		f = a->flags & 3;
		if (a->flags & NAT_R_MAX)
			c->ct.nat_range.max_addr[f] = a->arg;
		else
			c->ct.nat_range.min_addr[f] = a->arg;
		break;
	case ACT_LEARN:
		if (!c->dryrun) /* ebpfovs trace changes nothing */
			learn_execute(c, a->arg);
		break;
	case ACT_FIN_TIMEOUT:
		fin_timeout(c, a);
		break;
	}
	/* One call site for loads and moves into the connection: inlined
	 * twice, its map lookup and ownership would be verified twice. */
	if (ctf)
		ct_exec_write(c, ctf, ofs, n, v);
	return NO_TABLE;
}

/* TC: an ARP field from the key into the packet (no checksum). */
static __always_inline void set_arp(struct __sk_buff *skb, struct pkt_ctx *c, __u32 hf)
{
	int l3 = l3_offset(skb, bpf_htons(ETH_P_ARP));
	__be16 op = bpf_htons(c->key.nw_proto);

	if (l3 < 0)
		return;
	switch (hf) {
	case HF_ARP_OP:
		bpf_skb_store_bytes(skb, l3 + 6, &op, 2, 0);
		break;
	case HF_ARP_SHA:
		bpf_skb_store_bytes(skb, l3 + 8, c->key.arp_sha, 6, 0);
		break;
	case HF_ARP_SPA:
		bpf_skb_store_bytes(skb, l3 + 14, &c->key.nw_src, 4, 0);
		break;
	case HF_ARP_THA:
		bpf_skb_store_bytes(skb, l3 + 18, c->key.arp_tha, 6, 0);
		break;
	case HF_ARP_TPA:
		bpf_skb_store_bytes(skb, l3 + 24, &c->key.nw_dst, 4, 0);
		break;
	}
}

/*
 * TC: write header field hf (enum hdr_field) into the packet from the key,
 * which loads and moves into its words changed: through the same rewrites
 * as mod_dl_src, mod_nw_src, ... (checksums follow). Global: one copy of
 * those rewrites for all header writes, checked once.
 */
__noinline int hdr_commit_one(struct __sk_buff *skb, struct pkt_ctx *c, __u32 hf)
{
	struct action t = {};
	const __u8 *m;

	if (!skb || !c)
		return 0;
	switch (hf) {
	case HF_DL_SRC:
	case HF_DL_DST:
		m = hf == HF_DL_SRC ? c->key.dl_src : c->key.dl_dst;
		t.flags = hf == HF_DL_SRC ? SET_SRC : SET_DST;
		t.aux = (__u16)m[0] << 8 | m[1];
		t.arg = (__u32)m[2] << 24 | (__u32)m[3] << 16 | (__u32)m[4] << 8 | m[5];
		set_dl(skb, c, &t);
		break;
	case HF_NW_SRC:
	case HF_NW_DST:
		t.flags = hf == HF_NW_SRC ? SET_SRC : SET_DST;
		t.arg = bpf_ntohl(hf == HF_NW_SRC ? c->key.nw_src : c->key.nw_dst);
		set_nw(skb, c, &t);
		break;
	case HF_TP_SRC:
	case HF_TP_DST:
		t.flags = hf == HF_TP_SRC ? SET_SRC : SET_DST;
		t.aux = bpf_ntohs(hf == HF_TP_SRC ? c->key.tp_src : c->key.tp_dst);
		set_tp(skb, c, &t);
		break;
	case HF_NW_TOS:
		set_tos(skb, c, c->key.nw_tos);
		break;
	case HF_NW_TTL:
		set_ttl(skb, c, 0, c->key.nw_ttl);
		break;
	default:
		set_arp(skb, c, hf);
	}
	return 0;
}

/* TC: ACT_HDR_COMMIT: the header fields of mask (bit hf for each) from the
 * key into the packet; the loader puts one after a run of header writes. */
static __always_inline void hdr_commit(struct __sk_buff *skb, struct pkt_ctx *c, __u32 mask)
{
	__u32 hf;

	for (hf = HF_DL_SRC; hf <= HF_ARP_TPA; hf++)
		if (mask & (1U << hf))
			hdr_commit_one(skb, c, hf);
}

/*
 * TC: run c->act, an output or a rewrite (resubmit is the pipeline's, in
 * datapath.c; the rest is exec_ct's and exec_meta's). A rewrite first sends
 * the pending output, so each output carries the packet as it was then.
 * Global, so the verifier checks it once rather than at every step.
 */
__noinline __u32 exec_action(struct __sk_buff *skb, struct pkt_ctx *c)
{
	const struct action *a;

	if (!skb || !c)
		return NO_TABLE;
	a = &c->act;
	switch (a->type) {
	case ACT_OUTPUT:
		if (a->arg == OFPP_IN_PORT)
			output(skb, &c->out, c->out.in_port, 1);
		else
			output(skb, &c->out, a->arg, 0);
		return NO_TABLE;
	case ACT_OUTPUT_REG:
		output(skb, &c->out, output_reg_port(c, a), 0);
		return NO_TABLE;
	case ACT_NORMAL:
		normal(skb, c);
		return NO_TABLE;
	case ACT_FLOOD:
		flood(skb, &c->out, VP_ANY);
		return NO_TABLE;
	case ACT_SET_DL:
	case ACT_SET_NW:
	case ACT_SET_TP:
	case ACT_SET_TOS:
	case ACT_SET_TTL:
	case ACT_DEC_TTL:
	case ACT_VLAN:
	case ACT_SET_MARK:
	case ACT_SET_IP6:
	case ACT_NAT:
		flush_pending(skb, &c->out);
		break;
	case ACT_HDR_COMMIT:
		flush_pending(skb, &c->out);
		hdr_commit(skb, c, a->arg);
		return NO_TABLE;
	default:
		return NO_TABLE;
	}
	switch (a->type) {
	case ACT_SET_DL:
		set_dl(skb, c, a);
		break;
	case ACT_SET_NW:
		set_nw(skb, c, a);
		break;
	case ACT_SET_TP:
		set_tp(skb, c, a);
		break;
	case ACT_SET_TOS:
		set_tos(skb, c, a->arg);
		break;
	case ACT_SET_TTL:
		set_ttl(skb, c, 0, a->arg);
		break;
	case ACT_DEC_TTL:
		set_ttl(skb, c, 1, 0);
		break;
	case ACT_VLAN:
		vlan(skb, c, a);
		break;
	case ACT_SET_MARK:
		set_mark(skb, c, a);
		break;
	case ACT_SET_IP6:
		set_ip6(skb, c, a);
		break;
	case ACT_NAT:
		set_nat(skb, c, 1);
		break;
	}
	return NO_TABLE;
}

/*
 * TC: a walk that output to a patch port goes on in the peer bridge's
 * pipeline, as received on the peer port, as OVS's patch_port_output: the
 * other outputs leave first, as clones; then a tail call to the peer's
 * tc_patch, with the peer port and the hops so far in cb[0] and cb[1] (a
 * tail call keeps the skb; nothing else carries over: the peer bridge
 * starts with fresh registers, metadata and conntrack state). Inlined into
 * the program's main function, where tail calls are made (stages.h).
 * Returns only if the tail call failed: no peer (counted), the packet
 * dropped.
 */
static __always_inline int patch_out(struct __sk_buff *skb, struct out_state *o)
{
	flush_pending(skb, o);
	if (o->hops + 1 >= MAX_PATCH_HOPS) {
		count(CNT_PATCH_LOOP);
		return TC_ACT_SHOT;
	}
	if (!o->patch_peer) {
		count(CNT_PATCH_NO_PEER);
		return TC_ACT_SHOT;
	}
	port_tx(o->patch, skb->len);
	if (o->patch_vlan)
		skb_retag(skb, o->vlan_now, o->patch_vlan);
	skb->cb[0] = o->patch_peer;
	skb->cb[1] = o->hops + 1;
	bpf_tail_call(skb, &patch_ports, o->patch);
	count(CNT_PATCH_NO_PEER);
	return TC_ACT_SHOT;
}

/* TC: hand the packet to its pending output, or drop it (earlier outputs
 * went as clones). special: see flush_pending_x. */
static __always_inline int finish_x(struct __sk_buff *skb, struct out_state *o, const int special)
{
	if (special && o->patch && !o->dryrun)
		return patch_out(skb, o);
	if (!o->pending)
		return TC_ACT_SHOT;
	if (!o->dryrun && !o->notx)
		port_tx(o->pending, skb->len);
	if (o->pending_vlan && !o->dryrun)
		skb_retag(skb, o->vlan_now, o->pending_vlan);
	if (special && (o->pending_flags & PORT_F_TUNNEL) && !o->dryrun)
		tunnel_send(skb, o);
	if (o->pending_flags & PORT_F_PEER)
		return bpf_redirect_peer(o->pending_ifindex, 0);
	return bpf_redirect(o->pending_ifindex, 0);
}

#define finish(skb, o) finish_x(skb, o, 1)
