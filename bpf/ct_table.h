/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The connection table: keys (canonical: both directions find one entry),
 * timeouts (per protocol and zone, and the kernel's shortened TCP ones),
 * and the entries themselves -- owned while written (ct_own), found
 * through the `conntrack` hash into array slots (ct_find), removed only by
 * the one caller that wins an entry's gen (ct_delete_ref), swept when
 * expired, and created by ct_commit within the zone's and the bridge's
 * limits (ct_reserve, ct_insert; ct_commit in conntrack.h).
 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "context.h"
#include "maps.h"
#include "parse.h"
#include "ct_tcp.h"

/* ICMP query types that may open a connection, and their replies
 * (nf_conntrack_proto_icmp.c, nf_conntrack_proto_icmpv6.c). */
static __always_inline int icmp_reply_type(__u8 type, int v6)
{
	if (v6) {
		switch (type) {
		case 128: return 129; /* echo */
		case 139: return 140; /* node information */
		}
		return -1;
	}
	switch (type) {
	case 8:  return 0;   /* echo */
	case 13: return 14;  /* timestamp */
	case 15: return 16;  /* information */
	case 17: return 18;  /* address mask */
	}
	return -1;
}

static __always_inline int icmp_is_reply(__u8 type, int v6)
{
	if (v6)
		return type == 129 || type == 140;
	return type == 0 || type == 14 || type == 16 || type == 18;
}

/* -1, 0, 1 as a < b, a == b, a > b, for addresses in network order
 * (IPv4 in word 0, the rest zero). */
static __always_inline int addr_cmp(const __be32 *a, const __be32 *b)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (a[i] != b[i])
			return bpf_ntohl(a[i]) < bpf_ntohl(b[i]) ? -1 : 1;
	}
	return 0;
}

/*
 * The key's last two 32-bit words -- the ports, then zone, proto and
 * family -- stored whole. The key is read back at once in 32-bit words
 * (copied to the stack for the lookup, hashed by the kernel), and a load
 * that spans two smaller stores still in the store buffer cannot take its
 * value from them: it waits until they reach the cache. Written field by
 * field, that store-forwarding stall cost ~9 ns a packet (perf, on the
 * copy in ct_execute). memcpy: alias-safe, and one 32-bit store.
 */
static __always_inline void ct_key_tail(struct ct_key *ck, __be16 port_a, __be16 port_b,
					__u16 zone, __u8 proto, __u8 family)
{
	struct {
		__be16 port_a, port_b;
		__u16 zone;
		__u8 proto, family;
	} t = { port_a, port_b, zone, proto, family };
	__u32 w[2];

	__builtin_memcpy(w, &t, sizeof(w)); /* in registers: t never reaches memory */
	__builtin_memcpy(&ck->port_a, &w[0], 4);
	__builtin_memcpy(&ck->zone, &w[1], 4);
}

/*
 * Fill the connection key. Returns -1 when the packet cannot be tracked
 * (truncated L4 header, fragment, ICMP that is not a query or reply).
 */
static __always_inline int ct_build_key(const struct flow_key *k,
					const struct pkt_info *pi, __u16 zone,
					struct ct_key *ck, __u8 *pkt_is_a)
{
	int v6 = pi->is_ipv6, cmp;
	__be16 sp = 0, dp = 0;

	if ((!pi->is_ipv4 && !v6) || (k->nw_frag & FRAG_ANY))
		return -1; /* fragments: untracked until reassembly exists */
	switch (k->nw_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (!pi->l4_ok || pi->udp_bad_len)
			return -1;
		sp = k->tp_src;
		dp = k->tp_dst;
		break;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (!pi->l4_ok)
			return -1;
		/* Queries and their replies; errors go through ct_related(). */
		if (icmp_reply_type(pi->icmp_type, v6) < 0 && !icmp_is_reply(pi->icmp_type, v6))
			return -1;
		sp = dp = pi->icmp_id;
		break;
	}

	if (v6)
		cmp = addr_cmp(k->ipv6_src, k->ipv6_dst);
	else /* IPv4 apart: no 16-byte copies of one word on the way */
		cmp = k->nw_src == k->nw_dst ? 0 :
		      bpf_ntohl(k->nw_src) < bpf_ntohl(k->nw_dst) ? -1 : 1;
	*pkt_is_a = cmp < 0 || (cmp == 0 && bpf_ntohs(sp) <= bpf_ntohs(dp));
	if (v6) {
		__builtin_memcpy(ck->addr_a, *pkt_is_a ? k->ipv6_src : k->ipv6_dst, 16);
		__builtin_memcpy(ck->addr_b, *pkt_is_a ? k->ipv6_dst : k->ipv6_src, 16);
	} else {
		__builtin_memset(ck->addr_a, 0, 16);
		__builtin_memset(ck->addr_b, 0, 16);
		ck->addr_a[0] = *pkt_is_a ? k->nw_src : k->nw_dst;
		ck->addr_b[0] = *pkt_is_a ? k->nw_dst : k->nw_src;
	}
	ct_key_tail(ck, *pkt_is_a ? sp : dp, *pkt_is_a ? dp : sp, zone, k->nw_proto, v6 ? 6 : 4);
	return 0;
}

#define TCP_TIMEOUT_RETRANS 300 /* nf_conntrack's timeouts[TCP_CONNTRACK_RETRANS] */
#define TCP_TIMEOUT_UNACK   300 /* timeouts[TCP_CONNTRACK_UNACK] */
#define TCP_MAX_RETRANS     3   /* nf_conntrack_tcp_max_retrans */

/* A zone policy's value where it sets one, else the default. */
static __always_inline __u32 policy_or(__u32 v, __u32 dflt)
{
	return v ? v : dflt;
}

/* A TCP connection's timeout after an accepted packet, as the end of
 * nf_conntrack_tcp_packet() picks it: the state's, shortened to the
 * retransmission timeout after 3 retransmissions or on a zero window, to
 * the close timeout after a RST, to the unacknowledged-data timeout while
 * either side has data in flight. seen_reply: the connection had seen a
 * reply before this packet. */
static __always_inline __u64 tcp_timeout_ns(const struct ct_tcp *t, int rst, int seen_reply,
					    const struct ct_timeouts *tp)
{
	__u32 st = t->state, to, retrans, unack;

	if (st >= TCP_CT_MAX)
		st = TCP_CT_CLOSE;
	to = policy_or(tp ? tp->tcp[st] : 0, tcp_timeouts[st]);
	retrans = policy_or(tp ? tp->tcp_retrans : 0, TCP_TIMEOUT_RETRANS);
	unack = policy_or(tp ? tp->tcp_unack : 0, TCP_TIMEOUT_UNACK);
	if (t->retrans >= TCP_MAX_RETRANS && to > retrans)
		to = retrans;
	else if (rst)
		to = policy_or(tp ? tp->tcp[TCP_CT_CLOSE] : 0, tcp_timeouts[TCP_CT_CLOSE]);
	else if (((t->side[0].flags | t->side[1].flags) & CT_TCP_F_DATA_UNACK) && to > unack)
		to = unack;
	else if (t->last_win == 0 && to > retrans)
		to = retrans;
	/* ESTABLISHED before any reply: a mid-stream pickup, which the kernel
	 * keeps no longer than unacknowledged data. */
	if (!seen_reply && st == TCP_CT_ESTABLISHED && to > unack)
		to = unack;
	return SECS(to);
}

/* The timeout for a connection in its current state: the zone's policy
 * where it sets one, else nf_conntrack's defaults. t: TCP's tracking
 * (NULL for other protocols); rst: the packet is a RST; flags: the entry's
 * CT_E_* (TCP: as they were before the packet). */
static __always_inline __u64 ct_timeout_ns(__u8 proto, const struct ct_tcp *t, int rst,
					   __u8 flags, __u64 age_ns, __u16 zone)
{
	__u32 z = zone, v = 0, zero = 0;
	struct bridge_config *cfg = bpf_map_lookup_elem(&config, &zero);
	struct ct_timeouts *tp = NULL;
	int stream;

	/* A hash lookup costs more than the rest of an established packet's
	 * tracking: skipped while no zone has a policy (the loader's flag). */
	if (cfg && (cfg->flags & CFG_CT_POLICIES))
		tp = bpf_map_lookup_elem(&ct_timeout_policy, &z);

	switch (proto) {
	case IPPROTO_TCP:
		if (t)
			return tcp_timeout_ns(t, rst, flags & CT_E_SEEN_REPLY, tp);
		return SECS(TCP_TIMEOUT_RETRANS);
	case IPPROTO_UDP:
		/* Signed: an entry the loader made has a start a tick ahead. */
		stream = (flags & CT_E_SEEN_REPLY) && (__s64)age_ns > (__s64)SECS(UDP_STREAM_AFTER);
		if (tp)
			v = stream ? tp->udp_replied : tp->udp_unreplied;
		return SECS(v ? v : (stream ? UDP_TIMEOUT_STREAM : UDP_TIMEOUT));
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (tp)
			v = tp->icmp;
		return SECS(v ? v : ICMP_TIMEOUT);
	}
	if (tp)
		v = tp->generic;
	return SECS(v ? v : GENERIC_TIMEOUT);
}


/*
 * Both directions of a connection may be on two CPUs at once. A TCP update
 * reads the tracking, runs the state machine and writes the tracking; two
 * CPUs doing that at once would lose one update (a window edge, ASSURED).
 * So the entry carries a sequence number, odd while a CPU owns the entry
 * (the kernel takes the connection's spinlock): an update takes it from
 * even to odd with one compare-and-swap, runs the state machine on the
 * tracking in place, writes flags, expiry and the packet counters (plain
 * adds: only the owner writes them), and makes it even again (the
 * release, ct_release() below). A CPU that finds the entry owned tries
 * again, CT_TRIES times. Every update is thus computed from the state the
 * last one left; none is lost. One or two atomic operations per packet: an
 * optimistic read (two reads of the sequence and a compare-and-swap) cost
 * two more, and the counters two more again. A packet in softirq owns the
 * entry for well under a microsecond.
 */
/*
 * 1 << 23 is BPF_MAX_LOOPS, the most one bpf_loop call takes: ~17 ms of
 * tries measured on this project's VMs, seconds under TCG. Only a preempted owner makes a
 * CPU spin that long (softirq cannot be preempted on bare metal; a VM's
 * host can deschedule a vCPU for tens of milliseconds), and the kernel's
 * conntrack spins on the connection's lock without a bound. 1 << 16
 * (~0.1 ms) was too few: a TCG VM's FIN lost to a preempted owner came out
 * +inv and left the connection ESTABLISHED (CI, TestLabAuto on 7.3).
 * bpf_loop: the verifier checks the callback once, whatever the count.
 */
#define CT_TRIES (1 << 23)

/*
 * Set by the loader on amd64 (loader/bridge.go); read-only data, so the
 * verifier drops the branch not taken. x86 keeps stores in program order
 * (TSO), so there a plain store of the next even sequence releases the
 * entry, as the kernel's spin_unlock does on x86. Elsewhere the release is
 * an atomic add, which orders the owner's writes before it on every
 * architecture (BPF has no store-release before Linux 6.16). A locked
 * instruction also waits for the store buffer to drain: perf put the two
 * atomics of an update at ~9 ns of an established packet's ~100.
 */
volatile const __u32 ct_release_plain = 0;

static __always_inline void ct_release(struct ct_entry *e, __u64 owned)
{
	if (ct_release_plain) {
		/* The compiler must not move the owner's writes past it. */
		asm volatile("" ::: "memory");
		*(volatile __u64 *)&e->seq = owned + 1;
	} else {
		__sync_fetch_and_add(&e->seq, 1);
	}
}

/* One try at owning o->e (ct_own). */
struct ct_own_try {
	struct ct_entry *e;
	__u64 owned; /* the odd seq, once owned */
};

/* bpf_loop callback: 1 (stop) once o->e is owned, else 0 (go on). */
static long ct_own_once(__u32 i, struct ct_own_try *o)
{
	__u64 seq = *(volatile __u64 *)&o->e->seq;

	if (seq & 1)
		return 0; /* another CPU owns it */
	if (__sync_val_compare_and_swap(&o->e->seq, seq, seq + 1) != seq)
		return 0;
	o->owned = seq + 1;
	return 1;
}

/*
 * Own e: take its seq from even to odd. Returns the odd seq (pass it to
 * ct_release), or 0 when CT_TRIES attempts found it owned (counted).
 *
 * The first try is inline: an entry is almost never owned. Then up to
 * CT_TRIES (8,388,608, the most bpf_loop allows) through bpf_loop, whose
 * callback the verifier checks once however many turns it takes. An
 * owner holds the entry for a few hundred instructions, but a VM's CPU
 * can be preempted by its host while it does: with 32 tries, and later
 * with 65,536, a packet of the other direction then came out +inv in
 * CI's TCG VMs, and a FIN found +inv leaves the connection ESTABLISHED
 * for good. The kernel's conntrack spins on the connection's lock
 * without a bound.
 *
 * Global, verified once: inlined, each of its eight call sites in
 * ct_execute multiplied the verifier's work by its tries, and some
 * kernels' verifiers gave up at 1,000,000 instructions. A call costs the
 * owner ~1 ns (docs/performance.md).
 */
__noinline __u64 ct_own(struct ct_entry *e)
{
	struct ct_own_try o = { .e = e };
	__u64 seq;

	if (!e)
		return 0;
	seq = *(volatile __u64 *)&e->seq;
	if (!(seq & 1) && __sync_val_compare_and_swap(&e->seq, seq, seq + 1) == seq)
		return seq + 1;
	bpf_loop(CT_TRIES, ct_own_once, &o, 0);
	if (!o.owned)
		count(CNT_CT_RACE); /* a preempted owner, or a pathological storm */
	return o.owned;
}

static __always_inline __u64 *ct_counter(__u32 i)
{
	return bpf_map_lookup_elem(&ct_count, &i);
}

/* Add d to the live connections of zone and of all zones. */
static __always_inline void ct_count_add(__u16 zone, __s64 d)
{
	__u64 *zc = ct_counter(zone), *tc = ct_counter(CT_COUNT_TOTAL);

	if (zc)
		__sync_fetch_and_add(zc, d);
	if (tc)
		__sync_fetch_and_add(tc, d);
}

/*
 * The connection k names, and its reference, or NULL. Read without
 * owning it: what it says may be stale by the time it is used, so a
 * writer owns the entry and checks the reference's gen (ct_owned).
 */
static __always_inline struct ct_entry *ct_find(const struct ct_key *k, struct ct_ref *ref)
{
	struct ct_ref *r = bpf_map_lookup_elem(&conntrack, k);
	struct ct_entry *e;

	if (!r)
		return NULL;
	*ref = *r;
	e = bpf_map_lookup_elem(&ct_slots, &ref->slot);
	if (!e || e->gen != ref->gen)
		return NULL; /* being removed (or already replaced) */
	return e;
}

/* Own e if it still holds ref's connection: returns the owned seq, or 0
 * (the connection went meanwhile, or the entry stayed owned). */
static __always_inline __u64 ct_owned(struct ct_entry *e, __u32 gen)
{
	__u64 seq = ct_own(e);

	if (seq && e->gen != gen) {
		ct_release(e, seq);
		return 0;
	}
	return seq;
}

/* A slot for a new connection: a freed one, else one never used. */
static __always_inline struct ct_entry *ct_slot_take(__u32 *slot)
{
	__u64 *next;

	if (bpf_map_pop_elem(&ct_free, slot) != 0) {
		next = ct_counter(CT_COUNT_SLOTS);
		if (!next)
			return NULL;
		/* Past the end it only grows: the lookup fails, nothing else. */
		*slot = __sync_fetch_and_add(next, 1);
	}
	return bpf_map_lookup_elem(&ct_slots, slot);
}

/* Give a slot back. Each slot is pushed once per take, and the stack is
 * as large as the array, so the push cannot fail for want of room. */
static __always_inline void ct_slot_give(__u32 slot)
{
	bpf_map_push_elem(&ct_free, &slot, 0);
}

/* Whether two connection keys are the same (ten 32-bit words). */
static __always_inline int ct_key_eq(const struct ct_key *a, const struct ct_key *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;
	__u32 d = 0;
	int i;

	/* Straight-line code: unrolled, and the barrier keeps clang from
	 * turning each word into a compare and branch -- ten branches, whose
	 * paths the verifier walked one by one (46k instructions in
	 * ct_nat_result alone). */
#pragma clang loop unroll(full)
	for (i = 0; i < (int)(sizeof(*a) / 4); i++) {
		d |= x[i] ^ y[i];
		asm volatile("" : "+r"(d));
	}
	return d == 0;
}

/*
 * Remove the connection in slot if it is still gen's. Only one caller
 * can: the one that, owning the entry, finds gen there and moves it on
 * (from then on every reference to the slot is stale). That caller
 * deletes the connection's keys -- its original one, and a NATed
 * connection's reply key (ct_nat.h) -- read from the entry: the slot is
 * not given back until they are gone, so nothing rewrites them meanwhile,
 * and no one can add a key again while it is there. Then it takes the
 * connection off the counts and frees the slot. Returns 0 if this call
 * removed it. Global, verified once, and given no key: the key a caller
 * found may be either of a NATed connection's two, and a pointer to a
 * map's key cannot be a global function's argument.
 */
__noinline int ct_delete_slot(__u32 slot, __u32 gen)
{
	struct ct_entry *e = bpf_map_lookup_elem(&ct_slots, &slot);
	__u64 seq;

	if (!e)
		return -1;
	seq = ct_owned(e, gen);
	if (!seq)
		return -1;
	e->gen++;
	ct_release(e, seq);
	bpf_map_delete_elem(&conntrack, &e->okey);
	if (e->nat)
		bpf_map_delete_elem(&conntrack, &e->nat_key);
	ct_count_add(e->okey.zone, -1);
	ct_slot_give(slot);
	return 0;
}

/* Remove the connection ref names (found under k: ct_delete_slot). */
static __always_inline int ct_delete_ref(struct ct_key *k, const struct ct_ref *ref)
{
	return ct_delete_slot(ref->slot, ref->gen);
}

static __always_inline int ct_delete(struct ct_key *k)
{
	struct ct_ref *r = bpf_map_lookup_elem(&conntrack, k);
	struct ct_ref ref;

	if (!r)
		return -1;
	ref = *r;
	return ct_delete_ref(k, &ref);
}

struct ct_sweep {
	__u64 now;
};

/* bpf_for_each_map_elem callback: remove key if it has expired. Deleting
 * the element being visited is allowed for hash maps. What it removed is
 * counted in a map, not in *s: the verifier of newer kernels walks a
 * callback until its state stops changing, and a count on the stack
 * never would. */
static long ct_sweep_one(void *map, struct ct_key *k, struct ct_ref *r,
			 struct ct_sweep *s)
{
	struct ct_ref ref = *r;
	struct ct_entry *e = bpf_map_lookup_elem(&ct_slots, &ref.slot);

	if (e && e->gen == ref.gen && e->expires_ns < s->now && ct_delete_ref(k, &ref) == 0)
		count(CNT_CT_EXPIRED);
	return 0; /* go on */
}

/* flush-conntrack's choice, for ct_flush_one. */
struct ct_flush_arg {
	__u32 one_zone; /* else every zone */
	__u32 zone;
};

/* bpf_for_each_map_elem callback: remove key if the flush selects it
 * (counted in a map, as ct_sweep_one explains). */
static long ct_flush_one(void *map, struct ct_key *k, struct ct_ref *r,
			 struct ct_flush_arg *a)
{
	struct ct_ref ref = *r;

	if ((!a->one_zone || k->zone == a->zone) && ct_delete_ref(k, &ref) == 0)
		count(CNT_CT_FLUSHED);
	return 0; /* go on */
}

/* Remove every connection expired at now (counted in CNT_CT_EXPIRED). */
static __always_inline void ct_sweep_all(__u64 now)
{
	struct ct_sweep s = { .now = now };

	bpf_for_each_map_elem(&conntrack, ct_sweep_one, &s, 0);
}

/*
 * No room for a new connection: remove the expired ones, if no sweep ran
 * in the last CT_SWEEP_INTERVAL_NS. A sweep visits every entry (the table
 * cannot be walked from a cursor), so the interval bounds what packets pay
 * for it. Returns whether it removed any.
 */
static __always_inline int ct_sweep(__u64 now)
{
	struct ct_limits *l;
	__u32 zero = 0;
	__u64 before;

	l = bpf_map_lookup_elem(&ct_limit, &zero);
	if (!l || now - l->last_sweep_ns < CT_SWEEP_INTERVAL_NS)
		return 0;
	l->last_sweep_ns = now; /* a race lets two CPUs sweep: harmless */
	before = counter_value(CNT_CT_EXPIRED);
	ct_sweep_all(now);
	return counter_value(CNT_CT_EXPIRED) != before;
}

/*
 * Reserve a place for a new connection in zone, as OVS checks the zone's
 * limit, then maxconns. The counts go up first and are compared after, so
 * commits racing on other CPUs can never take a count past its limit
 * (both may refuse, never both pass). Returns 0, or the counter that says
 * why not.
 */
static __always_inline __u32 ct_reserve(__u16 zone)
{
	__u32 zero = 0, z = zone, limit;
	struct ct_limits *l = bpf_map_lookup_elem(&ct_limit, &zero);
	__u32 *zl = bpf_map_lookup_elem(&ct_zone_limit, &z);
	__u64 *zc = ct_counter(z), *tc = ct_counter(CT_COUNT_TOTAL);

	if (!l || !zc || !tc)
		return CNT_CT_FULL;
	limit = zl ? *zl : l->default_limit; /* 0: unlimited */
	__sync_fetch_and_add(zc, 1);
	__sync_fetch_and_add(tc, 1);
	if (limit && *zc > limit) {
		ct_count_add(zone, -1);
		return CNT_CT_ZONE_LIMIT;
	}
	if (*tc > l->maxconns) {
		ct_count_add(zone, -1);
		return CNT_CT_MAXCONNS;
	}
	return 0;
}

/*
 * Put the new connection ne in a slot and its key in the table. The slot
 * is filled while owned (a reader holding a stale reference may be
 * trying to own it), with a gen no reference has, before the key points
 * at it. Returns 0 with the connection's reference in *ref, -EEXIST
 * (another CPU committed k first) or another error (no room).
 */
static __always_inline long ct_insert(const struct ct_key *k, struct ct_entry *ne,
				      struct ct_ref *out)
{
	struct ct_entry *e;
	struct ct_ref ref;
	__u64 seq;
	long err;

	e = ct_slot_take(&ref.slot);
	if (!e)
		return -ENOSPC;
	seq = ct_own(e);
	if (!seq) {
		ct_slot_give(ref.slot);
		return -EBUSY;
	}
	ref.gen = e->gen + 1;
	ne->seq = seq;
	ne->gen = ref.gen;
	*e = *ne;
	ct_release(e, seq);
	/* (int): see nat_try_port (ct_nat.h): before Linux 6.4 the upper half
	 * of the result is not a sign extension. */
	err = (int)bpf_map_update_elem(&conntrack, k, &ref, BPF_NOEXIST);
	if (err) {
		/* Not keyed: no one can have a reference; retire the gen anyway. */
		seq = ct_own(e);
		if (seq) {
			e->gen++;
			ct_release(e, seq);
		}
		ct_slot_give(ref.slot);
		return err;
	}
	*out = ref;
	return 0;
}

