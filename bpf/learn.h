/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * learn(): the datapath adds flows itself, with no daemon and no upcall.
 *
 * Open vSwitch runs learn() in ovs-vswitchd. Here a learned flow's match
 * fields and mask, table, priority, timeouts and action shape are fixed by
 * the learn spec, so the loader compiles each learn action into a template
 * (struct learn_template) and a subtable of its own in the target table (a
 * mask with .learned set). A packet that runs ACT_LEARN copies the bits the
 * spec takes from it into a key and an action list (the template's ops),
 * and puts the flow into the flows hash under that subtable, once per
 * generation (so the classifier finds it whichever runs; the loader's
 * images leave learned subtables' entries alone). The flow's counters,
 * idle time and actions live at a learned slot of their own (flow id
 * flow_base + slot): the loader never writes those ids.
 *
 * The same flow learned again with the same actions is refreshed (its
 * hard timeout starts again, as OVS's learn refreshes a flow); with other
 * actions it takes a new slot and its entry is replaced in one update, so
 * a packet sees the old flow or the new one, never a mix. A walk that
 * looks up a table learned flows go to is never stored in the exact-match
 * cache, so a new flow takes effect for the next packet.
 *
 * Slots are taken round-robin among the first `limit` (set-learn-limit);
 * a live slot whose flow expired (or whose entry another slot took) is
 * taken back on the way. No free slot among LEARN_TRIES: not learned,
 * counted (CNT_LEARN_FULL).
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "context.h"
#include "maps.h"
#include "classifier.h"
#include "ct_tcp.h"

/* Slot sl's entry in generation gen (x->lk is the scratch key). */
static __always_inline struct flow_ref *learned_ref(struct learn_scratch *x,
						    const struct learned_slot *sl, __u32 gen)
{
	x->lk = sl->key;
	x->lk.gen = gen;
	return bpf_map_lookup_elem(&flows, &x->lk);
}

/* Removes slot sl's entries (flow flow_id), in both generations, unless
 * another slot's flow took them. */
static __always_inline void learned_unlink(struct learn_scratch *x,
					   const struct learned_slot *sl, __u32 flow_id)
{
	struct flow_ref *ref;
	__u32 g;

	for (g = 0; g < GENERATIONS; g++) {
		ref = learned_ref(x, sl, g);
		if (ref && ref->flow_id == flow_id)
			bpf_map_delete_elem(&flows, &x->lk);
	}
}

/* Whether slot sl holds no flow that can still match: its entry is gone,
 * another slot's, or past its timeouts. */
static __always_inline int learned_stale(struct learn_scratch *x, const struct learned_slot *sl,
					 __u32 flow_id, __u64 *now)
{
	struct flow_ref *ref = learned_ref(x, sl, 0);

	return !ref || ref->flow_id != flow_id || flow_expired(ref, now);
}

/*
 * A slot for a new learned flow: state moved to live with a new
 * incarnation (never 0 in its low 16 bits: flow_ref.birth). A stale live
 * slot's entries are removed when it is taken. Returns LEARN_MAX when none
 * of LEARN_TRIES slots is free. Uses x->lk.
 */
static __always_inline __u32 learn_alloc(struct learn_scratch *x, const struct learn_template *t,
					 __u64 *now)
{
	__u32 zero = 0, i, s, limit;
	struct learned_slot *sl;
	struct learn_alloc_state *st;
	__u64 old, next;

	st = bpf_map_lookup_elem(&learn_state, &zero);
	if (!st)
		return LEARN_MAX;
	/* The first `limit` slots only: past it, learning stops (counted). */
	limit = st->limit < LEARN_MAX ? st->limit : LEARN_MAX;
	for (i = 0; i < LEARN_TRIES && limit; i++) {
		s = (__u32)(__sync_fetch_and_add(&st->cursor, 1) % limit);
		sl = bpf_map_lookup_elem(&learned_slots, &s);
		if (!sl)
			break;
		old = sl->state;
		if ((old & LEARNED_LIVE) && !learned_stale(x, sl, t->flow_base + s, now))
			continue;
		next = (old | LEARNED_LIVE) + 2;
		if (!(next & 0x1fffe))
			next += 2;
		if (__sync_val_compare_and_swap(&sl->state, old, next) != old)
			continue; /* another CPU took it */
		if (old & LEARNED_LIVE)
			learned_unlink(x, sl, t->flow_base + s);
		return s;
	}
	count(CNT_LEARN_FULL);
	return LEARN_MAX;
}

/* The value an op takes: an immediate, or bits of the packet's key as
 * PF_KEY + w reads them. Widths up to 32 in 64-bit arithmetic (a 32-bit
 * shift by 32 is undefined). */
static __always_inline __u32 learn_value(const struct pkt_ctx *c, const struct learn_op *op)
{
	const __be32 *kw = (const __be32 *)c;

	if (op->kind & LOP_IMM)
		return op->value;
	/* word & 63: inside the context, which holds the key first (classifier.h) */
	return (__u32)(((__u64)bpf_ntohl(kw[op->src_word & 63]) >> (op->src_ofs & 31)) &
		       ((1ULL << (op->nbits & 63)) - 1));
}

/* bits [ofs, ofs+n) of x become v. */
static __always_inline __u32 set_bits(__u32 x, __u32 v, __u32 ofs, __u32 n)
{
	__u64 m = ((1ULL << (n & 63)) - 1) << (ofs & 31);

	return (__u32)((x & ~m) | (((__u64)v << (ofs & 31)) & m));
}

/* Whether two action lists are the same, word by word (no memcmp in BPF). */
static __always_inline int same_actions(const struct action_list *a, const struct action_list *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	__u64 d = 0;
	__u32 i;

	for (i = 0; i < sizeof(*a) / 8; i++)
		d |= x[i] ^ y[i];
	return !d;
}

/*
 * ACT_LEARN: add, refresh or change the flow template tpl_id describes for
 * this packet. Global: verified once, whichever program runs it.
 */
__noinline int learn_execute(struct pkt_ctx *c, __u32 tpl_id)
{
	struct flow_ref *oldref;
	const struct learn_template *t;
	const struct learn_op *op;
	struct learned_slot *sl;
	struct learn_scratch *x;
	struct action_list *al;
	struct flow_mask *mask;
	__u32 zero = 0, i, k, s, g, old_slot = LEARN_MAX, idx;
	struct flow_lookup key;
	__be32 *kw;
	__u64 now = 0, deadline = 0, *used;
	const __u64 *mw;

	if (!c)
		return 0;
	t = bpf_map_lookup_elem(&learn_templates, &tpl_id);
	x = bpf_map_lookup_elem(&learn_scratch, &zero);
	if (!t || !x)
		return 0;
	mask = bpf_map_lookup_elem(&masks, &t->mask_id);
	if (!mask)
		return 0;

	/* The learned flow's key and actions: the template's, with the
	 * packet's bits copied in. */
	__builtin_memset(x->key, 0, sizeof(struct flow_key));
	x->acts = t->acts;
	kw = (__be32 *)x->key;
	for (i = 0; i < LEARN_OPS; i++) {
		__u32 v;

		if (i >= t->nops)
			break;
		op = &t->ops[i];
		v = learn_value(c, op);
		if (op->kind & LOP_MATCH) {
			k = op->dst_word & 63;
			kw[k] = bpf_htonl(set_bits(bpf_ntohl(kw[k]), v, op->dst_ofs, op->nbits));
		} else {
			struct action *a = &x->acts.a[op->dst_word & (MAX_ACTIONS - 1)];

			a->arg = set_bits(a->arg, v, op->dst_ofs, op->nbits);
		}
	}
	/* Its entry's key, gathered as probe() gathers a packet's. */
	mw = (const __u64 *)&mask->bits;
	for (i = 0; i < MAX_GATHER; i++) {
		k = mask->words[i] & 63;
		x->lk.w[i] = x->key[k] & mw[k];
	}
	x->lk.table = t->table;
	x->lk.gen = 0;
	x->lk.mask_id = t->mask_id;

	now = dp_now();
	if (t->hard_timeout)
		deadline = now + (__u64)t->hard_timeout * 1000000000ULL;
	x->lk.gen = c->gen & 1;
	oldref = bpf_map_lookup_elem(&flows, &x->lk);
	if (oldref && oldref->flow_id >= t->flow_base &&
	    oldref->flow_id - t->flow_base < LEARN_MAX && oldref->priority == t->priority) {
		old_slot = oldref->flow_id - t->flow_base;
		if (x->acts.a[0].type == ACT_FIN_TIMEOUT)
			x->acts.a[0].arg = (x->acts.a[0].arg & 0xffff0000) | old_slot;
		idx = oldref->acts;
		al = bpf_map_lookup_elem(&flow_actions, &idx);
		if (al && same_actions(al, &x->acts)) {
			/* The same flow: learning it again restarts its hard
			 * timeout (coarsely: at most once a second), in both
			 * generations' entries. */
			if (deadline > oldref->hard_deadline_ns + 1000000000ULL) {
				oldref->hard_deadline_ns = deadline;
				x->lk.gen ^= 1;
				oldref = bpf_map_lookup_elem(&flows, &x->lk);
				if (oldref)
					oldref->hard_deadline_ns = deadline;
			}
			return 0;
		}
	}
	key = x->lk;

	s = learn_alloc(x, t, &now);
	if (s >= LEARN_MAX)
		return 0;
	sl = bpf_map_lookup_elem(&learned_slots, &s);
	if (!sl)
		return 0;
	/* fin_timeout (first, when the spec has fin timeouts) finds its flow
	 * by the slot in its argument. */
	if (x->acts.a[0].type == ACT_FIN_TIMEOUT)
		x->acts.a[0].arg = (x->acts.a[0].arg & 0xffff0000) | s;
	idx = 2 * t->flow_base + s;
	bpf_map_update_elem(&flow_actions, &idx, &x->acts, BPF_ANY);
	idx = t->flow_base + s;
	used = bpf_map_lookup_elem(&flow_used, &idx);
	if (used)
		*used = now;
	key.gen = 0;
	sl->template = tpl_id;
	sl->created_ns = now;
	sl->key = key;
	__builtin_memcpy(&sl->src, &c->key, sizeof(struct flow_key));

	x->ref.flow_id = idx;
	x->ref.priority = t->priority;
	x->ref.acts = 2 * t->flow_base + s;
	x->ref.idle_timeout = t->idle_timeout;
	x->ref.birth = (sl->state >> 1) & 0xffff;
	x->ref.hard_deadline_ns = deadline;
	/* One update per generation: a packet finds the old flow or the new one. */
	for (g = 0; g < GENERATIONS; g++) {
		key.gen = g;
		if (bpf_map_update_elem(&flows, &key, &x->ref, BPF_ANY)) {
			learned_unlink(x, sl, idx);
			__sync_fetch_and_and(&sl->state, ~(__u64)LEARNED_LIVE);
			count(CNT_LEARN_FULL);
			return 0;
		}
	}
	count(CNT_LEARNED);
	if (old_slot < LEARN_MAX) {
		sl = bpf_map_lookup_elem(&learned_slots, &old_slot);
		if (sl)
			__sync_fetch_and_and(&sl->state, ~(__u64)LEARNED_LIVE);
	}
	return 0;
}

/*
 * ACT_FIN_TIMEOUT: a TCP packet with FIN or RST shortens its learned
 * flow's timeouts (OVS's fin_timeout: the idle timeout to aux when that is
 * shorter or there was none; the hard timeout likewise, counted from now).
 */
static __always_inline void fin_timeout(struct pkt_ctx *c, const struct action *a)
{
	__u32 s = a->arg & 0xffff, hard = a->arg >> 16, zero = 0, g;
	struct learn_scratch *x;
	struct learned_slot *sl;
	struct flow_ref *ref;
	__u64 deadline = 0;

	if (c->key.nw_proto != IPPROTO_TCP || !(c->pi.tcp_flags & (TH_FIN | TH_RST)) || c->dryrun)
		return;
	sl = bpf_map_lookup_elem(&learned_slots, &s);
	x = bpf_map_lookup_elem(&learn_scratch, &zero);
	if (!sl || !x)
		return;
	if (hard)
		deadline = dp_now() + (__u64)hard * 1000000000ULL;
	for (g = 0; g < GENERATIONS; g++) {
		ref = learned_ref(x, sl, g);
		if (!ref)
			continue;
		if (a->aux && (!ref->idle_timeout || a->aux < ref->idle_timeout))
			ref->idle_timeout = a->aux;
		if (deadline && (!ref->hard_deadline_ns || deadline < ref->hard_deadline_ns))
			ref->hard_deadline_ns = deadline;
	}
}
