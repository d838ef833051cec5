/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * XDP mode: what differs when the walk runs in the XDP program.
 *
 * Parse, classify, conntrack and the actions that do not touch the packet
 * are TC's own code (parse.h, classifier.h, conntrack.h, exec_meta). What
 * XDP does differently is output: there is no skb to clone, so a packet
 * goes to one port (bpf_redirect_map into tx_ports) or, for FLOOD, ALL and
 * NORMAL's unknown destinations, to every port but its in_port (a devmap
 * broadcast).
 *
 * The loader lets XDP walk a flow-table generation only when every flow's
 * actions fit that: at most one output-like action and no rewrites (see
 * loader/xdp.go). Other tables set no CFG_XDP_GEN bit and xdp_ingress
 * passes each packet on to tc_ingress before touching any state, so a
 * packet is never half handled by both.
 *
 * Whatever the table, the exact-match cache's fast path (xdp_fast) comes
 * first: a walk TC stored, replayed here when it ends in one output or a
 * drop and its ct() (if any) gives the stored result again -- established
 * connections, stateless flows, drops of new connections by policy.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "context.h"
#include "maps.h"
#include "actions.h"

/*
 * A frame longer than its device's MTU allows (MTU + the Ethernet header +
 * one VLAN tag) can only be a GSO packet that tun or veth handed to the
 * kernel's generic XDP: a VM's 64 KB TSO segment. No XDP redirect carries
 * it: generic XDP refuses any frame over the target's MTU (EMSGSIZE) and
 * drops it, so xdp_ingress passes it on to TC, which sends it whole.
 * bpf_check_mtu alone would measure only the linear part; given an L3
 * length it measures that (plus the device's header, plus len_diff: minus
 * the tag allowed) against MTU + header. The length is bounded as
 * parse_xdp bounds it, for the verifier.
 */
static __always_inline int xdp_oversized(struct xdp_md *ctx)
{
	__u64 len = bpf_xdp_get_buff_len(ctx);
	__u32 l3;

	asm volatile("%0 &= 0x3ffff" : "+r"(len));
	l3 = len > ETH_HLEN ? (__u32)len - ETH_HLEN : 1; /* 0 would mean "the linear part" */
	return bpf_check_mtu(ctx, 0, &l3, -(int)sizeof(struct vlan_hdr), 0) == BPF_MTU_CHK_RET_FRAG_NEEDED;
}

/* XDP: one output, sent when the walk ends. */
static __always_inline void xdp_output(struct out_state *o, __u32 port, int allow_in_port)
{
	struct port *p = out_port(o, port, allow_in_port);

	if (!p)
		return;
	if (o->pending || o->flood) {
		/* The loader's check makes this unreachable; a racing flow
		 * change could get here: keep the first output. */
		count(CNT_XDP_ABORTED);
		return;
	}
	o->pending = port;
}

/* One port of an XDP flood: counted and recorded, if it exists (the
 * broadcast sends). Global, as flood_one(). */
__noinline int xdp_flood_one(struct out_state *o, __u32 port, __u32 len)
{
	struct port *p;

	if (!o)
		return 0;
	p = bpf_map_lookup_elem(&ports, &port);
	if (p && p->ifindex) {
		if (o->nout < TRACE_MAX_OUT)
			o->port[o->nout] = port;
		o->nout++;
		port_tx(port, len);
	}
	return 0;
}

/* XDP: FLOOD/ALL. The broadcast sends; this counts and records each port. */
__noinline int xdp_flood(struct out_state *o, __u32 len)
{
	struct bridge_config *cfg;
	__u32 zero = 0, port, max;

	if (!o)
		return 0;
	if (o->pending || o->flood) {
		count(CNT_XDP_ABORTED);
		return 0;
	}
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg)
		return 0;
	o->flood = 1;
	max = cfg->max_port;
	for (port = 1; port < MAX_PORTS; port++) {
		if (port > max)
			break;
		if (port != o->in_port)
			xdp_flood_one(o, port, len);
	}
	return 0;
}

/* XDP: run c->act, an output. Rewrites never reach here (the loader's
 * check); if a racing flow change brings one, the packet is dropped and
 * counted. */
__noinline __u32 exec_action_xdp(struct pkt_ctx *c)
{
	const struct action *a;
	__u32 port;

	if (!c)
		return NO_TABLE;
	a = &c->act;
	switch (a->type) {
	case ACT_OUTPUT:
		if (a->arg == OFPP_IN_PORT)
			xdp_output(&c->out, c->out.in_port, 1);
		else
			xdp_output(&c->out, a->arg, 0);
		return NO_TABLE;
	case ACT_OUTPUT_REG:
		xdp_output(&c->out, output_reg_port(c, a), 0);
		return NO_TABLE;
	case ACT_NORMAL:
		/* The frame's own VLAN: with VLAN ports (CFG_VLAN_PORTS)
		 * XDP passes the walk to TC. */
		port = normal_dest(c, bpf_ntohs(c->key.vlan_tci) & 0x0fff);
		if (port)
			xdp_output(&c->out, port, 0);
		else
			xdp_flood(&c->out, c->pi.len);
		return NO_TABLE;
	case ACT_FLOOD:
		xdp_flood(&c->out, c->pi.len);
		return NO_TABLE;
	}
	/* Rewrites and pkt_mark (not exec_meta's): the loader's check keeps
	 * them out of XDP; a racing flow change could bring one. */
	count(CNT_XDP_ABORTED);
	c->out.pending = 0;
	c->out.flood = 0;
	c->halt = 1;
	return NO_TABLE;
}

/*
 * XDP: replay the walk the exact-match cache stored for the packet's key,
 * as TC's emc_replay does, when XDP can carry it out whole: at most one
 * output, to a port of the bridge, no NAT, and a ct() whose result comes
 * out as stored (ct_execute_expect). Counted as TC's hits are, by the
 * entry (emc_fold). Returns the verdict, or -1 before anything changed:
 * the packet goes on to TC untouched.
 */
static __always_inline int xdp_fast(struct pkt_ctx *c, struct emc_entry *e)
{
	__u32 port = e->out[0];
	struct port *p;

	if (e->nout > 1 || e->nat_op)
		return -1;
	if (e->nout) {
		p = bpf_map_lookup_elem(&ports, &port);
		if (!p || !p->ifindex)
			return -1;
	}
	if (e->has_ct &&
	    !ct_execute_expect(&c->key, &c->pi, &c->ct, e, e->ct_flags | (c->liberal ? CT_LIBERAL : 0)))
		return -1;
	e->hit_packets++;
	e->hit_bytes += c->pi.len;
	count(CNT_XDP_FAST);
	if (!e->nout)
		return XDP_DROP;
	return bpf_redirect_map(&tx_ports, port, 0);
}

/* XDP: send the packet where the walk decided, or drop it. */
static __always_inline int finish_xdp(struct out_state *o, __u32 len)
{
	if (o->flood)
		return bpf_redirect_map(&tx_ports, 0, BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS);
	if (!o->pending)
		return XDP_DROP;
	port_tx(o->pending, len);
	return bpf_redirect_map(&tx_ports, o->pending, 0);
}
