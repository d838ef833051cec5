/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The exact-match cache (EMC, as in OVS's userspace datapath): the whole
 * walk of a packet -- every lookup, resubmit and recirculation -- replayed
 * for the next packet with the same key, without a classifier lookup.
 *
 * Key: the ingress device, and the packet's key words that any flow of the
 * generation looks at or any action reads (a move's source...), masked by
 * the union of all its masks and reads (the loader writes that shape into
 * tables[gen][EMC_TABLE]), plus pkt_mark; a flow on the connection's
 * tuple (ct_nw_src...) looks at the packet's addresses and ports. Fields no
 * flow looks at (TCP flags, TTL, ...) stay out, so one entry serves a
 * whole stream. The epoch ties an entry to one version of the flow table
 * and ports; the loader bumps it on every change.
 *
 * Value: what the walk did that depends on nothing but that key -- the
 * flows it matched (their counters go up), its table misses, its outputs --
 * and at most one ct(), without commit, with the result it gave. A hit
 * runs that ct() again (conntrack is per packet: TCP's window, counters,
 * expiry) and uses the entry only if ct_state, ct_mark and ct_label come out
 * as stored; otherwise the packet takes the full walk, which finds the
 * conntrack result already there (ct_result.done), as for a second ct() in
 * the same zone. A ct(nat)'s translation is part of the result: stored,
 * compared where a flow looks at it (emc_ct_same), and the connection's
 * own applied on a hit. Walks that did anything else --
 * NORMAL (the MAC table changes), another rewrite, a commit, ct_clear,
 * exit, a flow with a timeout, more than EMC_OUTS outputs or EMC_FLOWS
 * matches, a limit -- are not stored.
 *
 * Why this is exact: the walk up to its ct() is a function of the key and
 * the flow table, so a packet with the same key runs the same ct(), in the
 * same zone; after it, a function of the key and the ct result, which the
 * hit compares. One slot per hash (direct-mapped) in a per-CPU array: no
 * kernel hash of a long key, no locking; a collision only costs a full walk.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "context.h"
#include "maps.h"

/*
 * Gather the packet's EMC key into c->emc and find its slot. Call after
 * parsing, before the walk changes the key. Leaves c->emc.ok 0 when the
 * cache is off: by the bridge (CFG_NO_CACHE), for the generation (its
 * shape needs more than MAX_GATHER words), or for this packet.
 */
static __always_inline void emc_key(struct pkt_ctx *c, const struct bridge_config *cfg,
				    __u32 ifindex)
{
	__u32 idx = (c->gen & 1) * MAX_TABLES + EMC_TABLE, w;
	const __u64 *kw = (const __u64 *)&c->key;
	struct table *shape;
	__u64 h;

	c->emc.ok = 0;
	if (cfg->flags & CFG_NO_CACHE)
		return;
	shape = bpf_map_lookup_elem(&tables, &idx);
	if (!shape || !shape->emc)
		return;
	/* A multiply-xor hash of the words: a few ns, where the kernel's
	 * jhash of a 72-byte map key costs about 30. The slot is the
	 * product's top bits (Fibonacci hashing): a multiplication carries a
	 * bit only upwards, so only the top bits depend on every bit of
	 * every word. Low bits missed a word's top byte -- a port's low
	 * byte, an IPv4 destination's last octet -- and keys differing
	 * there all shared one slot (TestEMCSpread). */
	h = ifindex * 0x9e3779b97f4a7c15ULL;
	c->emc.nwords = shape->cache_nwords;
	c->emc.shape = shape->emc;
	for (w = 0; w < MAX_GATHER; w++) {
		__u32 k = shape->cache_words[w];

		if (w >= c->emc.nwords)
			break; /* the rest are unused: neither hashed nor compared */
		/* The bound on k is for the verifier (as in classify()). */
		c->emc.e.w[w] = k < FLOW_KEY_WORDS ? kw[k] & shape->cache_mask[w] : 0;
		h = (h ^ c->emc.e.w[w]) * 0x9e3779b97f4a7c15ULL;
	}
	c->emc.idx = h >> (64 - EMC_BITS);
	c->emc.e.epoch = cfg->epoch;
	c->emc.e.ifindex = ifindex;
	c->emc.e.nflows = 0;
	c->emc.e.nmiss = 0;
	c->emc.e.has_ct = 0;
	c->emc.e.hint.valid = 0;
	c->emc.ok = 1;
}

/* The entry for c's key, or NULL. */
static __always_inline struct emc_entry *emc_find(const struct pkt_ctx *c)
{
	__u32 idx = c->emc.idx, w;
	struct emc_entry *e;

	if (!c->emc.ok)
		return NULL;
	e = bpf_map_lookup_elem(&emc, &idx);
	if (!e || e->epoch != c->emc.e.epoch || e->ifindex != c->emc.e.ifindex)
		return NULL;
	/* Same epoch, same shape: the first nwords words are the key. */
	for (w = 0; w < MAX_GATHER && w < c->emc.nwords; w++)
		if (e->w[w] != c->emc.e.w[w])
			return NULL;
	return e;
}

/* A lookup of the walk: a match is counted on replay; a flow with a
 * timeout must be checked on every packet, so its walk is not stored. */
static __always_inline void emc_note_lookup(struct pkt_ctx *c, int found,
					    const struct flow_ref *ref)
{
	__u8 n = c->emc.e.nflows;

	if (!found) {
		if (c->depth == 0)
			c->emc.e.nmiss++;
		return;
	}
	if (ref->idle_timeout || ref->hard_deadline_ns || n >= EMC_FLOWS) {
		c->emc.ok = 0;
		return;
	}
	c->emc.e.flows[n & (EMC_FLOWS - 1)] = ref->flow_id;
	c->emc.e.nflows = n + 1;
}

/* An action of the walk, before it runs: whether a replay can do the same. */
static __always_inline void emc_note_action(struct pkt_ctx *c)
{
	const struct action *a = &c->act;

	switch (a->type) {
	case ACT_OUTPUT:
	case ACT_OUTPUT_REG:
	case ACT_FLOOD:
		return;
	case ACT_LOAD: /* registers and metadata only: not the connection's */
		if ((a->aux >> 8) < PF_CT_MARK)
			return;
		break;
	case ACT_MOVE:
		if (((a->arg >> 8) & 0xff) < PF_CT_MARK)
			return;
		break;
	case ACT_CT:
		if (!c->emc.e.has_ct && !(a->flags & CT_COMMIT))
			return; /* emc_note_ct records it once it has run */
		break;
	case ACT_NAT:
		/* Right after the walk's one ct(nat), which worked out the
		 * translation: the hit applies it again (emc_replay). */
		if (c->emc.e.has_ct && (c->emc.e.ct_flags & CT_NAT) && !c->emc.e.nat_op &&
		    !c->ct.natted && !c->ct.nat_related) {
			c->emc.e.nat_op = c->ct.nat_op;
			c->emc.e.nat_port = c->ct.nat_port;
			__builtin_memcpy(c->emc.e.nat_addr, c->ct.nat_addr, 16);
			if (c->ct.nat_op)
				return;
		}
		break;
	case ACT_CT_END: /* the fork: the replay does not walk */
		return;
	}
	c->emc.ok = 0;
}

/*
 * The connection a ct() found, as h remembers it for the next hit: a
 * committed TCP connection over IPv4 (the result of a tracked key: not a
 * fragment, a whole TCP header). Anything else leaves h empty.
 */
static __always_inline void emc_hint_note(struct emc_ct_hint *h, const struct pkt_ctx *c)
{
	h->valid = c->ct.has_entry && c->pi.is_ipv4 && c->key.nw_proto == IPPROTO_TCP ?
		   HINT_VALID | (c->ct.via_nat ? HINT_VIA_NAT : 0) : 0;
	__builtin_memcpy(&h->addrs, &c->key.nw_src, 8);
	__builtin_memcpy(&h->ports, &c->key.tp_src, 4);
	h->dir = c->ct.dir;
	h->zone = c->ct.zone;
	h->ref = c->ct.ref;
}

/* Whether c's packet is the connection h remembers (emc_hint_note): the
 * same addresses and ports, and (as the entry's key may not say) a whole
 * TCP header over IPv4, not a fragment. */
static __always_inline int emc_hint_match(const struct emc_ct_hint *h, const struct pkt_ctx *c)
{
	__u64 addrs;
	__u32 ports;

	__builtin_memcpy(&addrs, &c->key.nw_src, 8);
	__builtin_memcpy(&ports, &c->key.tp_src, 4);
	return h->valid && addrs == h->addrs && ports == h->ports &&
	       c->pi.is_ipv4 && c->pi.l4_ok && c->key.nw_proto == IPPROTO_TCP &&
	       !(c->key.nw_frag & FRAG_ANY);
}

/* The walk's ct(), after it ran. */
static __always_inline void emc_note_ct(struct pkt_ctx *c)
{
	/* A related error's original tuple (ct_nw_src, ...) is the quoted
	 * connection's, which the key does not hold: not stored. */
	if (c->ct.ct_state & CS_REL) {
		c->emc.ok = 0;
		return;
	}
	emc_hint_note(&c->emc.e.hint, c);
	c->emc.e.has_ct = 1;
	c->emc.e.zone = c->ct.zone;
	c->emc.e.ct_flags = c->act.flags & (CT_FORCE | CT_NAT);
	c->emc.e.nat_op = 0;
	c->emc.e.ct_state = c->ct.ct_state;
	c->emc.e.ct_mark = c->ct.mark;
	__builtin_memcpy(c->emc.e.ct_label, c->ct.labels, 16);
}

/* Whether the ct() a hit replayed gave what the entry was stored with:
 * its result, and with nat a translation of the same kind, the same in
 * every field a flow looks at (emc_shape: a field no flow looks at may
 * differ, and the hit applies the connection's own). */
static __always_inline int emc_ct_same(const struct pkt_ctx *c, const struct emc_entry *e)
{
	const __u32 *l = (const __u32 *)c->ct.labels;
	__u32 free = c->emc.shape;

	if (e->nat_op) {
		if (e->nat_op == NAT_R_DST)
			free >>= 2; /* the DST bits, where the SRC ones were */
		if (c->ct.nat_op != e->nat_op)
			return 0;
		if (!(free & EMC_FREE_SRC_PORT) && c->ct.nat_port != e->nat_port)
			return 0;
		if (!(free & EMC_FREE_SRC_ADDR) &&
		    (c->ct.nat_addr[0] != e->nat_addr[0] || c->ct.nat_addr[1] != e->nat_addr[1] ||
		     c->ct.nat_addr[2] != e->nat_addr[2] || c->ct.nat_addr[3] != e->nat_addr[3]))
			return 0;
	}
	return c->ct.ct_state == e->ct_state && c->ct.mark == e->ct_mark &&
	       l[0] == e->ct_label[0] && l[1] == e->ct_label[1] &&
	       l[2] == e->ct_label[2] && l[3] == e->ct_label[3];
}

/*
 * Whether a flow or port born (installed, attached) at epoch birth was
 * there for an entry of epoch epoch: a flow id or port number reused
 * since must not receive the entry's counts. Epochs are 31-bit and wrap:
 * serial arithmetic, as seq_before().
 */
static __always_inline int emc_born(__u32 epoch, __u32 birth)
{
	return ((epoch - birth) & 0x7fffffff) < 0x40000000;
}

/*
 * Fold e's hits into the counters its walk counts: each flow's, table
 * misses, the in_port's rx (or rx_dropped, if the walk sent nothing), each
 * output's tx, emc_hits and packets. Runs in the datapath on e's CPU (before the slot
 * is overwritten), so nothing writes e meanwhile; CNT_EMC_FOLD_SEQ is odd
 * while it runs, for readers, which add the hits of the entries still in
 * the cache themselves (loader/emc.go).
 */
static __always_inline void emc_fold(struct emc_entry *e)
{
	__u64 n = e->hit_packets, bytes = e->hit_bytes;
	struct port_counts *ps;
	struct flow_counts *fs;
	__u32 i, id, seq = CNT_EMC_FOLD_SEQ;
	__u64 *folding;

	if (!n)
		return;
	folding = bpf_map_lookup_elem(&counters, &seq);
	if (folding)
		*folding += 1;
	for (i = 0; i < EMC_FLOWS && i < e->nflows; i++) {
		id = e->flows[i];
		fs = bpf_map_lookup_elem(&flow_stats, &id);
		if (fs && emc_born(e->epoch, fs->birth)) {
			fs->packets += n;
			fs->bytes += bytes;
		}
	}
	if (e->nmiss)
		count_n(CNT_MISS, n * e->nmiss);
	id = e->in_port;
	ps = bpf_map_lookup_elem(&port_stats, &id);
	if (ps && emc_born(e->epoch, ps->birth)) {
		ps->rx_packets += n;
		ps->rx_bytes += bytes;
		if (!e->nout)
			ps->rx_dropped += n;
	}
	for (i = 0; i < EMC_OUTS && i < e->nout; i++) {
		id = e->out[i];
		ps = bpf_map_lookup_elem(&port_stats, &id);
		if (ps && emc_born(e->epoch, ps->birth)) {
			ps->tx_packets += n;
			ps->tx_bytes += bytes;
		}
	}
	count_n(CNT_EMC_HITS, n);
	count_n(CNT_PACKETS, n);
	e->hit_packets = 0;
	e->hit_bytes = 0;
	if (folding)
		*folding += 1;
}

/* The walk is over: store it, if it can be replayed, folding the hits of
 * the entry it replaces. */
static __always_inline void emc_store(struct pkt_ctx *c)
{
	__u32 idx = c->emc.idx, i;
	struct emc_entry *old;

	/* Not a walk into another bridge (a patch port): its tail call is
	 * not replayed; nor one to a tunnel port, whose key the walk's
	 * writes to the tunnel fields may choose. */
	if (!c->emc.ok || c->out.noport || c->out.nout > EMC_OUTS || c->out.patch || c->out.tunnel_out)
		return;
	old = bpf_map_lookup_elem(&emc, &idx);
	if (old)
		emc_fold(old);
	c->emc.e.hit_packets = 0;
	c->emc.e.hit_bytes = 0;
	c->emc.e.in_port = c->out.in_port;
	c->emc.e.nout = c->out.nout;
	for (i = 0; i < EMC_OUTS; i++)
		c->emc.e.out[i] = c->out.port[i];
	/* The value from scratch, a map: see step() on helpers' arguments. */
	bpf_map_update_elem(&emc, &idx, &c->emc.e, BPF_ANY);
}
