/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * NAT in conntrack: ct(commit,nat(src=...)) and ct(commit,nat(dst=...)),
 * then ct(nat) on the connection's later packets (docs/nat.md).
 *
 * One entry per connection, two keys. A connection committed with a
 * translation stores it in its entry -- the translated endpoint
 * (nat_addr, nat_port) -- and has a second key, its reply tuple's
 * (nat_key), beside its original one (okey); both point at the entry, and
 * ct_delete_ref removes both. No NAT state lives anywhere else, so none
 * can outlive its connection.
 *
 * The reply key is the reservation. Inserted with BPF_NOEXIST, it fails
 * with -EEXIST when another connection of the zone already uses that
 * tuple in either direction (keys are canonical), and the search takes
 * the next port: two CPUs racing for one port cannot both win, and there
 * is no lookup-then-insert window.
 *
 * The search is nf_nat's (nf_nat_l4proto_unique_tuple): the original port
 * first (unless random or hash), then from an offset in the range
 * (random; for nat(dst) without flags, its start) in rounds of 128, 64,
 * 32, 16 and 8 tries, each round from a new random offset; a range of at
 * most 128 ports is tried once through. TCP, UDP and ICMP/ICMPv6 echo
 * (the identifier is the port), over IPv4 and IPv6.
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
#include "ct_table.h"

/* The tries of one search: 1 (the original port) + 128 + 64 + 32 + 16 + 8. */
#define NAT_TRIES 249

/* The state of one port search (bpf_loop's context: on the stack, kept
 * small: Linux 6.1 allows 512 bytes for the whole call chain, and this
 * one runs under ct_execute's frame). The candidate key is built in the
 * entry itself (nat_key), a map value a helper takes as a key on every
 * kernel. */
struct nat_search {
	struct ct_ref ref;  /* what the keys point at */
	__be16 peer_port;   /* the endpoint the translated one faces: its port; its
			     * address is okey's a or b (peer_is_a), the translated
			     * one's the entry's nat_addr: both read from the entry */
	__u16 orig_port;    /* host order: the translated endpoint's port before */
	__u16 min;          /* host order: the range searched */
	__u32 size;
	__u32 off;          /* the next try is min + off % size */
	__u32 round;        /* tries in this round */
	__u32 left;         /* tries left in it */
	__u16 port;         /* host order: the port reserved */
	__u16 zone;
	__u8 keep;          /* try orig_port first */
	__u8 icmp;          /* the identifier is both ports of the key */
	__u8 same_addr;     /* nat_addr is the original address: orig_port is no translation */
	__u8 done;          /* NAT_FOUND, NAT_NONE (no translation needed) or NAT_FAILED */
	__u8 proto;
	__u8 family;        /* 4 or 6 */
	__u8 peer_is_a;
	__u8 pad;
	__u32 slot;
};

/* NAT_FAILED: no free tuple; NAT_ERROR: the table refused the key (full). */
enum { NAT_SEARCHING = 0, NAT_FOUND, NAT_NONE, NAT_FAILED, NAT_ERROR };

/* Try port p (host order) for the reply key: written into the entry, then
 * inserted. Returns 1 (stop) once done, 0 when the tuple is taken. */
static __always_inline long nat_try_port(struct nat_search *s, __u32 p)
{
	__be16 tp = bpf_htons((__u16)p), pp;
	const __be32 *peer;
	struct ct_entry *e;
	__u32 slot;
	int t_is_a, cmp;
	long err;

	pp = s->icmp ? tp : s->peer_port;
	/* The entry says what the key will find before the key exists. */
	slot = s->slot;
	e = bpf_map_lookup_elem(&ct_slots, &slot);
	if (!e) {
		s->done = NAT_ERROR;
		return 1;
	}
	/* Canonical order, as ct_build_key: the lower address (then port) is a. */
	peer = s->peer_is_a ? e->okey.addr_a : e->okey.addr_b;
	cmp = addr_cmp(e->nat_addr, peer);
	t_is_a = cmp < 0 || (cmp == 0 && p <= bpf_ntohs(pp));
	if (t_is_a) {
		__builtin_memcpy(e->nat_key.addr_a, e->nat_addr, 16);
		__builtin_memcpy(e->nat_key.addr_b, peer, 16);
	} else {
		__builtin_memcpy(e->nat_key.addr_a, peer, 16);
		__builtin_memcpy(e->nat_key.addr_b, e->nat_addr, 16);
	}
	ct_key_tail(&e->nat_key, t_is_a ? tp : pp, t_is_a ? pp : tp, s->zone, s->proto, s->family);
	e->nat_port = tp;
	/* (int): up to Linux 6.3 a map update called directly returns an int
	 * whose upper 32 bits in r0 are not a sign extension (map ops
	 * returned int until 6.4): -EEXIST came back as 0xffffffef. */
	err = (int)bpf_map_update_elem(&conntrack, &e->nat_key, &s->ref, BPF_NOEXIST);
	if (err == -EEXIST)
		return 0; /* taken: the next port */
	s->done = err ? NAT_ERROR : NAT_FOUND;
	s->port = p;
	return 1;
}

/* bpf_loop callback: one try of the search, in rounds as nf_nat's (the
 * original port was tried before the loop). */
static long nat_try(__u32 i, struct nat_search *s)
{
	__u32 p;

	if (s->left == 0) {
		/* nf_nat: give up after a round that covered the range, or
		 * one of fewer than 16 tries; else half as many, elsewhere. */
		if (s->round >= s->size || s->round < 16) {
			s->done = NAT_FAILED;
			return 1;
		}
		s->round /= 2;
		s->left = s->round;
		s->off = bpf_get_prandom_u32();
	}
	s->left--;
	p = s->min + (s->size ? s->off % s->size : 0);
	s->off++;
	return nat_try_port(s, p);
}

/*
 * The address a range gives a connection (host-order words into out):
 * its only one; else one picked by a hash of the source (and, unless
 * persistent, the destination and zone), as nf_nat's find_best_ips_proto
 * keys it (not its jhash: the same inputs pick the same address). An
 * IPv6 range picks within its last word when its other words agree, else
 * takes its first address.
 */
static __always_inline void nat_pick_addr(const struct nat_range *r, const __be32 *src,
					  const __be32 *dst, __u16 zone, int v6, __u32 *out)
{
	int w = v6 ? 3 : 0, i;
	__u32 n, h = 0;

	for (i = 0; i < 4; i++)
		out[i] = r->min_addr[i];
	if (v6 && (r->min_addr[0] != r->max_addr[0] || r->min_addr[1] != r->max_addr[1] ||
		   r->min_addr[2] != r->max_addr[2]))
		return;
	if (r->max_addr[w] <= r->min_addr[w])
		return;
	n = r->max_addr[w] - r->min_addr[w] + 1;
	for (i = 0; i < 4; i++)
		h = (h ^ bpf_ntohl(src[i])) * 0x9e3779b1u;
	if (!(r->flags & NAT_R_PERSISTENT))
		h ^= (bpf_ntohl(dst[w]) ^ zone) * 0x85ebca6bu;
	h ^= h >> 15;
	h *= 0x2c1b3c6du;
	h ^= h >> 12;
	out[w] = n ? r->min_addr[w] + (__u32)(((__u64)h * n) >> 32) : h;
}

/* Whether addr (network order) lies in the range (host-order words). */
static __always_inline int nat_in_range(const struct nat_range *r, const __be32 *addr)
{
	__u32 lo = 1, hi = 1; /* addr >= min so far, addr <= max so far */
	int i;

	for (i = 0; i < 4; i++) {
		__u32 a = bpf_ntohl(addr[i]);

		if (lo == 1 && a != r->min_addr[i])
			lo = a > r->min_addr[i] ? 2 : 0;
		if (hi == 1 && a != r->max_addr[i])
			hi = a < r->max_addr[i] ? 2 : 0;
	}
	return lo && hi;
}

/*
 * Insert the new connection ne, keyed k, with the translation res's
 * nat_range asks for: its entry (owned meanwhile: a remover finding the
 * reply key waits until both keys are in), its reply key (the port
 * search), then k. Returns 0 with the reference in res->ref, -EADDRNOTAVAIL
 * when the range has no free tuple, or what ct_insert returns. Global,
 * verified once; its stack holds the search, off ct_execute's frame.
 */
__noinline long ct_insert_nat(struct ct_result *res, struct ct_entry *ne)
{
	struct nat_search s = {};
	struct ct_entry *e;
	__u32 lo, hi, flags, *t = (__u32 *)ne->nat_addr;
	const __be32 *src, *dst;
	int snat, is_a, v6, i;
	__u64 seq;
	long err;

	if (!res || !ne)
		return -EINVAL;
	flags = res->nat_range.flags;
	snat = flags & NAT_R_SRC;
	/* The original direction's endpoints. */
	is_a = res->pkt_is_a;
	src = is_a ? res->key.addr_a : res->key.addr_b;
	dst = is_a ? res->key.addr_b : res->key.addr_a;
	s.zone = res->key.zone;
	s.proto = res->key.proto;
	s.family = res->key.family;
	v6 = s.family == 6;
	s.icmp = s.proto == IPPROTO_ICMP || s.proto == IPPROTO_ICMPV6;
	/* The peer is the original destination for SNAT, source for DNAT. */
	s.peer_is_a = snat ? !is_a : !!is_a;
	s.peer_port = (snat == !!is_a) ? res->key.port_b : res->key.port_a;
	s.orig_port = bpf_ntohs((snat == !!is_a) ? res->key.port_a : res->key.port_b);
	/* The translated endpoint's address, built in ne (not the stack:
	 * Linux 6.1's 512 bytes for the call chain). nf_nat keeps a source
	 * already in the range; else the range picks. */
	__builtin_memcpy(ne->nat_addr, snat ? src : dst, 16);
	if ((flags & NAT_R_ADDR) && (!snat || !nat_in_range(&res->nat_range, ne->nat_addr))) {
		nat_pick_addr(&res->nat_range, src, dst, s.zone, v6, t);
		for (i = 0; i < 4; i++)
			t[i] = bpf_htonl(t[i]);
	}

	/* The ports searched: the range given, else as nf_nat does without
	 * one -- ICMP any identifier; a source port its class (1-511,
	 * 600-1023, 1024-65535); a destination port only itself. */
	if (flags & NAT_R_PORTS) {
		lo = res->nat_range.min_port;
		hi = res->nat_range.max_port;
	} else if (s.icmp) {
		lo = 0;
		hi = 65535;
	} else if (!snat) {
		lo = hi = s.orig_port;
	} else if (s.orig_port < 512) {
		lo = 1;
		hi = 511;
	} else if (s.orig_port < 1024) {
		lo = 600;
		hi = 1023;
	} else {
		lo = 1024;
		hi = 65535;
	}
	if (hi < lo)
		hi = lo;
	s.min = lo;
	s.size = hi - lo + 1;
	s.keep = !(flags & (NAT_R_RANDOM | NAT_R_HASH)) && s.orig_port >= lo && s.orig_port <= hi;
	/* The original tuple is no translation: the address and the port stay. */
	s.same_addr = addr_cmp(ne->nat_addr, snat ? src : dst) == 0 && s.keep;
	s.round = s.size < 128 ? s.size : 128;
	s.left = s.round;
	s.off = (!snat && !(flags & (NAT_R_RANDOM | NAT_R_HASH))) ? 0 : bpf_get_prandom_u32();

	e = ct_slot_take(&s.slot);
	if (!e)
		return -ENOSPC;
	seq = ct_own(e);
	if (!seq) {
		ct_slot_give(s.slot);
		return -EBUSY;
	}
	s.ref.slot = s.slot;
	s.ref.gen = e->gen + 1;
	ne->seq = seq;
	ne->gen = s.ref.gen;
	ne->nat = snat ? CT_NAT_SRC : CT_NAT_DST;
	*e = *ne; /* ne->okey is res->key, set by ct_commit */

	/* The original port first (then the search), outside the callback. */
	if (s.keep) {
		if (s.same_addr)
			s.done = NAT_NONE; /* the original tuple: okey's insert tells if it is free */
		else
			nat_try_port(&s, s.orig_port);
	}
	if (s.done == NAT_SEARCHING)
		bpf_loop(NAT_TRIES - 1, nat_try, &s, 0);
	if (s.done == NAT_NONE) {
		e->nat = 0;
	} else if (s.done != NAT_FOUND) {
		e->gen++; /* no key points at it: retire the gen anyway */
		ct_release(e, seq);
		ct_slot_give(s.slot);
		return s.done == NAT_ERROR ? -ENOSPC : -EADDRNOTAVAIL;
	}
	err = (int)bpf_map_update_elem(&conntrack, &e->okey, &s.ref, BPF_NOEXIST);
	if (err) {
		if (e->nat)
			bpf_map_delete_elem(&conntrack, &e->nat_key);
		e->gen++;
		ct_release(e, seq);
		ct_slot_give(s.slot);
		return err;
	}
	ct_release(e, seq);
	res->ref = s.ref;
	return 0;
}

/*
 * Which direction a packet of NAT connection e goes, when it found e
 * through key k: through the original key as without NAT; through the
 * reply key, the reply if it comes from the translated endpoint's peer
 * side -- SNAT: not from nat_addr:nat_port; DNAT: from it. Returns
 * CT_DIR_*.
 */
static __always_inline __u8 ct_nat_dir(const struct ct_entry *e, const struct ct_key *k,
				       __u8 pkt_is_a)
{
	int from_t;

	if (!e->nat || !ct_key_eq(k, &e->nat_key))
		return (pkt_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ? CT_DIR_ORIG : CT_DIR_REPLY;
	/* The packet's source is k's a or b; the translated endpoint is one of them. */
	from_t = pkt_is_a ? (addr_cmp(k->addr_a, e->nat_addr) == 0 && k->port_a == e->nat_port) :
			    (addr_cmp(k->addr_b, e->nat_addr) == 0 && k->port_b == e->nat_port);
	if (e->nat & CT_NAT_SRC)
		return from_t ? CT_DIR_ORIG : CT_DIR_REPLY;
	return from_t ? CT_DIR_REPLY : CT_DIR_ORIG;
}

/*
 * What ACT_NAT does to a packet of connection e in direction dir that
 * found it through k: the original direction, not yet translated
 * (through okey), takes the translation; the reply, not yet translated
 * back (through nat_key), takes the original endpoint back. Anything
 * else is already as it should be.
 */
static __always_inline void ct_nat_op_via(struct ct_result *res, const struct ct_entry *e,
					  __u32 via_nat)
{
	__u32 snat = e->nat & CT_NAT_SRC, use_a;
	const struct ct_key *o = &e->okey;

	res->nat_op = 0;
	if (!e->nat || res->natted)
		return;
	res->via_nat = !!via_nat;
	/* SNAT sets the source on the way out and the destination on the
	 * way back; DNAT the other way round. */
	res->nat_op = snat ? NAT_R_SRC : NAT_R_DST;
	res->nat_bit = snat ? CS_SNAT : CS_DNAT;
	if (res->dir == CT_DIR_ORIG && !via_nat) {
		__builtin_memcpy(res->nat_addr, e->nat_addr, 16);
		res->nat_port = e->nat_port;
		return;
	}
	if (res->dir != CT_DIR_REPLY || !via_nat) {
		res->nat_op = 0; /* already translated */
		return;
	}
	res->nat_op ^= NAT_R_SRC | NAT_R_DST;
	res->nat_bit ^= CS_SNAT | CS_DNAT;
	/* Back to the original endpoint: SNAT's originator, DNAT's target. */
	use_a = !!(e->flags & CT_E_A_IS_ORIG) == !!snat;
	__builtin_memcpy(res->nat_addr, use_a ? o->addr_a : o->addr_b, 16);
	res->nat_port = use_a ? o->port_a : o->port_b;
}

/* ct_nat_op_via for the packet whose key k found the connection. */
static __always_inline void ct_nat_op(struct ct_result *res, const struct ct_entry *e,
				      const struct ct_key *k)
{
	ct_nat_op_via(res, e, ct_key_eq(k, &e->nat_key));
}

/*
 * The two entry points ct_execute calls, global so the verifier checks
 * them once: inlined, their branches multiplied the states of ct_execute
 * (7k processed instructions became 121k).
 */

/* The direction of the packet whose key res->key found the connection in
 * slot, gen (ct_nat_dir); CT_DIR_ORIG if it went meanwhile. */
__noinline int ct_nat_direction(struct ct_result *res, __u32 slot, __u32 gen)
{
	struct ct_entry *e = bpf_map_lookup_elem(&ct_slots, &slot);

	if (!res || !e || e->gen != gen)
		return CT_DIR_ORIG;
	return ct_nat_dir(e, &res->key, res->pkt_is_a);
}

/* ct(nat): what ACT_NAT does to the packet (ct_nat_op), from the entry of
 * res's connection, if it has one with a translation. */
__noinline int ct_nat_result(struct ct_result *res)
{
	struct ct_entry *e;
	__u32 slot;

	if (!res)
		return 0;
	res->nat_op = 0;
	if (!res->has_entry)
		return 0;
	slot = res->ref.slot;
	e = bpf_map_lookup_elem(&ct_slots, &slot);
	if (e && e->gen == res->ref.gen && e->nat)
		ct_nat_op(res, e, &res->key);
	return 0;
}
