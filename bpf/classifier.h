/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Classify: find the highest-priority flow of one table that matches a key.
 *
 * Tuple space search. Every distinct mask a table uses is a subtable; all
 * flows with that mask live in one hash map (`flows`), keyed by
 * (table, mask id, key & mask). A lookup masks the key once per subtable and
 * does one hash lookup, so its cost grows with the number of distinct masks,
 * never with the number of flows. Subtables are sorted by the highest priority
 * they hold; once the best match found outranks every remaining subtable, the
 * search stops (OVS's classifier does the same).
 *
 * The loader writes a new generation of tables and flow entries while
 * packets use the other, then flips bridge_config.gen: a packet reads the
 * generation once and sees one flow table, before or after a change.
 *
 * Two flows with the same table, mask and masked values but different
 * priorities share a hash key: the map holds the higher one, which is the only
 * one that can ever win. The loader keeps the full list and re-installs the
 * lower flow when the higher is deleted.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "context.h"
#include "maps.h"

/*
 * A flow past its hard_timeout, or idle longer than its idle_timeout, never
 * matches: no daemon is needed to expire it (the loader deletes it when it
 * next sees it). Until then a lower-priority flow with the identical match,
 * which shares its hash slot, stays shadowed.
 */
static __always_inline int flow_expired(const struct flow_ref *ref, __u64 *now)
{
	__u64 *used;

	if (!ref->hard_deadline_ns && !ref->idle_timeout)
		return 0;
	if (!*now)
		*now = dp_now();
	if (ref->hard_deadline_ns && *now >= ref->hard_deadline_ns)
		return 1;
	if (ref->idle_timeout) {
		used = bpf_map_lookup_elem(&flow_used, &ref->flow_id);
		/* Signed: the loader stamps flow_used with CLOCK_MONOTONIC,
		 * which runs up to a tick ahead of our coarse clock. */
		if (used && (__s64)(*now - *used) >= (__s64)ref->idle_timeout * 1000000000LL)
			return 1;
	}
	return 0;
}

/*
 * Tables with CACHE_MIN_SUBTABLES or more subtables first ask flow_cache,
 * keyed by the packet's key words the table's flows look at (masked by the
 * union of the table's masks), and remember the search's answer there
 * (a miss too): the answer depends on nothing else. The epoch in the key ties an entry to one version of the
 * flow table. A cached flow with a timeout is checked again on every hit.
 */
/*
 * One subtable: mask the packet's key with mask_id's mask into *lk (whose
 * table and generation classify wrote) and look the result up. Returns 1
 * and fills *ref when a flow has exactly that masked key. The gather has
 * no branch, so the verifier walks classify's loop of MAX_SUBTABLES at a
 * few dozen instructions an iteration (with the branchy gather inlined it
 * took ~100k): every word index is masked to 64 words, which the key
 * (inside the packet context, c) and the mask (struct flow_mask) both
 * have, and unused indexes name a zero word of the mask (MASK_WORD_ZERO).
 */
_Static_assert(sizeof(struct flow_mask) >= 64 * 8 && MASK_WORD_ZERO * 8 >= sizeof(struct flow_key) + 1 + MAX_GATHER,
	       "probe() reads 64 words of a mask; MASK_WORD_ZERO must be in its padding");
_Static_assert(sizeof(struct pkt_ctx) >= 64 * 8 && __builtin_offsetof(struct pkt_ctx, key) == 0,
	       "probe() reads 64 words of the packet context, the key first");

static __always_inline int probe(const struct pkt_ctx *c, struct flow_lookup *lk,
				 __u32 mask_id, struct flow_ref *ref)
{
	const __u64 *kw = (const __u64 *)c, *mw;
	struct flow_mask *mask;
	struct flow_ref *hit;
	__u32 w, k;

	mask = bpf_map_lookup_elem(&masks, &mask_id);
	if (!mask)
		return 0;
	mw = (const __u64 *)&mask->bits;
	for (w = 0; w < MAX_GATHER; w++) {
		k = mask->words[w] & 63;
		lk->w[w] = kw[k] & mw[k];
	}
	lk->mask_id = mask_id;
	hit = bpf_map_lookup_elem(&flows, lk);
	if (!hit)
		return 0;
	*ref = *hit;
	return 1;
}

/* classify()'s result, | : the table holds learned flows (table.learned). */
#define CLASSIFY_LEARNED 2

/*
 * The highest-priority flow of table_id that matches key. Global (verified
 * once, on its own): the walk calls it at every lookup. Returns 1 and
 * fills *best when a flow matched, 0 otherwise; | CLASSIFY_LEARNED for a
 * table learn() adds flows to, whose answer may change with any packet.
 */
__noinline int classify(const struct pkt_ctx *c, __u32 table_id, __u32 gen,
			__u32 epoch, struct flow_ref *best)
{
	struct cache_key ck = {};
	struct flow_ref *hit;
	struct flow_lookup lk; /* on the stack for the helper; every byte written */
	int cached = 0;
	__u64 now = 0;
	const __u64 *kw;
	struct table *t;
	int found = 0;
	__u32 i, w;

	__u32 idx = (gen & 1) * MAX_TABLES + table_id;

	if (!c || !best || table_id >= MAX_TABLES)
		return 0;
	t = bpf_map_lookup_elem(&tables, &idx);
	if (!t)
		return 0;

	kw = (const __u64 *)&c->key;
	/* Not a table learn() adds to: its answers change without a new epoch. */
	if (t->nsubtables >= CACHE_MIN_SUBTABLES && t->cache_nwords && !t->learned &&
	    !(epoch & 0x80000000)) {
		cached = 1;
		ck.epoch = epoch;
		ck.table = table_id;
		for (w = 0; w < MAX_GATHER; w++) {
			__u32 k = t->cache_words[w];

			if (w < t->cache_nwords && k < FLOW_KEY_WORDS)
				ck.w[w] = kw[k] & t->cache_mask[w];
		}
		hit = bpf_map_lookup_elem(&flow_cache, &ck);
		if (hit) {
			if (hit->flow_id == NO_TABLE)
				return 0;
			if (!flow_expired(hit, &now)) {
				*best = *hit;
				return 1;
			}
		}
	}

	/* Table and generation once, long before the hash reads them: two
	 * 2-byte stores still in the store buffer would stall its first
	 * 4-byte load at every subtable (~6 ns each, measured). */
	lk.table = table_id;
	lk.gen = gen & 1;
	for (i = 0; i < MAX_SUBTABLES; i++) {
		struct flow_ref ref;

		if (i >= t->nsubtables)
			break;
		/* Sorted by max priority: nothing further can beat what we have. */
		if (found && best->priority >= t->st[i].max_priority)
			break;
		if (probe(c, &lk, t->st[i].mask_id, &ref) &&
		    (!found || ref.priority > best->priority) &&
		    !flow_expired(&ref, &now)) {
			*best = ref;
			found = 1;
		}
	}
	if (cached) {
		/* The value from the stack, not through best (see step()). */
		struct flow_ref val = { .flow_id = NO_TABLE };

		if (found)
			val = *best;
		bpf_map_update_elem(&flow_cache, &ck, &val, BPF_ANY);
	}
	return found | (t->learned ? CLASSIFY_LEARNED : 0);
}
