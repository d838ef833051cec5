/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack: what the ct() action does to a packet.
 *
 *  1. Build the connection key: zone, protocol and the two endpoints in a
 *     canonical order, so both directions find the same entry in one lookup.
 *  2. Look the connection up; an expired entry counts as absent and is removed.
 *  3. Run the protocol's state machine (TCP: nf_conntrack's transition table).
 *     An existing connection is updated by every ct() that sees a valid
 *     packet, committed or not, as the kernel updates a confirmed conntrack.
 *  4. ct(commit) creates the entry if the connection is new and valid. Only
 *     commit creates: an uncommitted connection stays +new.
 *  5. Report ct_state: +trk, and +new / +est / +rpl, or +inv.
 *
 * A packet is tracked at most once per zone: a second ct() in the same zone
 * (e.g. ct(table=0) then ct(commit)) reuses the first result, as OVS does
 * when the skb already carries a conntrack for that zone.
 *
 * ICMP errors quoting a tracked connection are related (ct_related()).
 * ct(force) replaces a connection committed in the other direction.
 * ct_mark/ct_label are set by exec(...) loads (actions.h: ct_exec_write).
 *
 * Timeouts (per zone, and the kernel's shortened TCP ones) are chosen in
 * ct_timeout_ns(). Limits (maxconns, per zone) are checked in ct_commit().
 * Two CPUs updating one TCP connection: see tcp_update().
 *
 * Three headers, one concern each: ct_tcp.h (the TCP state machine),
 * ct_table.h (keys, timeouts, the table's entries), and this one (what a
 * ct() does with them).
 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "maps.h"
#include "parse.h"
#include "ct_tcp.h"   /* the TCP state machine */
#include "ct_table.h" /* keys, timeouts, the table */
#include "ct_nat.h"   /* NAT: a connection's translation and second key */

/*
 * An ICMP error quoting a packet of a tracked connection is related to it
 * (nf_conntrack_inet_error): +rel, and +rpl when the error travels toward
 * the connection's originator, i.e. the quoted packet went in the original
 * direction. It changes no state. An error quoting nothing we track is
 * +inv.
 */
static __always_inline int ct_related(const struct flow_key *k,
				      const struct pkt_info *pi,
				      struct ct_result *res, __u16 zone,
				      struct ct_key *sk)
{
	int v6 = pi->is_ipv6, cmp;
	struct ct_entry *e;
	struct ct_ref ref;
	__u8 inner_is_a;

	if (!pi->icmp_error)
		return -1;
	cmp = addr_cmp(pi->inner_src, pi->inner_dst);
	inner_is_a = cmp < 0 || (cmp == 0 && bpf_ntohs(pi->inner_sport) <= bpf_ntohs(pi->inner_dport));
	if (inner_is_a) {
		__builtin_memcpy(res->key.addr_a, pi->inner_src, 16);
		__builtin_memcpy(res->key.addr_b, pi->inner_dst, 16);
	} else {
		__builtin_memcpy(res->key.addr_a, pi->inner_dst, 16);
		__builtin_memcpy(res->key.addr_b, pi->inner_src, 16);
	}
	ct_key_tail(&res->key, inner_is_a ? pi->inner_sport : pi->inner_dport,
		    inner_is_a ? pi->inner_dport : pi->inner_sport, zone, pi->inner_proto, v6 ? 6 : 4);
	/* The error must go to where the quoted packet came from (the
	 * kernel's "outer daddr != inner" check). */
	if (v6 ? __builtin_memcmp(k->ipv6_dst, pi->inner_src, 16) : k->nw_dst != pi->inner_src[0])
		return -1;
	*sk = res->key;
	e = ct_find(sk, &ref);
	if (!e || e->expires_ns < dp_now())
		return -1;
	/* The quoted packet went orig-wards: the error goes reply-wards. A
	 * NATed connection's quoted packet may have found either key. */
	if (e->nat) {
		int d;

		res->pkt_is_a = inner_is_a;
		d = ct_nat_direction(res, ref.slot, ref.gen);
		asm volatile("" : "+r"(d)); /* as in ct_execute: keep the mask */
		res->dir = (d & 1) == CT_DIR_ORIG ? CT_DIR_REPLY : CT_DIR_ORIG;
		res->nat_related = 1;
	} else {
		res->dir = (inner_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ? CT_DIR_REPLY : CT_DIR_ORIG;
	}
	res->has_entry = 1;
	res->ref = ref;
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	res->ct_state = CS_TRK | CS_REL | (res->dir == CT_DIR_REPLY ? CS_RPL : 0);
	return 0;
}

/*
 * Whether a packet of connection e in direction dir, with the flags ef
 * it will leave, gets the result cache entry want stored: ct_result_of's
 * ct_state, and e's mark and label. Called owning e.
 */
static __always_inline int ct_want_ok(const struct ct_entry *e, __u8 dir, __u8 ef,
				      const struct emc_entry *want)
{
	__u32 state = dir == CT_DIR_REPLY ? CS_TRK | CS_EST | CS_RPL :
		      CS_TRK | ((ef & CT_E_SEEN_REPLY) ? CS_EST : CS_NEW);
	__u32 l[4];

	__builtin_memcpy(l, e->labels, 16);
	return state == want->ct_state && e->mark == want->ct_mark &&
	       l[0] == want->ct_label[0] && l[1] == want->ct_label[1] &&
	       l[2] == want->ct_label[2] && l[3] == want->ct_label[3];
}

/* An existing connection's TCP update, atomic as above. Returns TCPV_*,
 * or TCPV_GONE when the connection went before it could be owned. The
 * state machine works on the entry's tracking in place, as the kernel's
 * does; flags, expiry and counters are written only for accept and
 * ignore.
 *
 * With want (XDP's fast path, ct_execute_expect), the update happens only
 * if its result is want's -- accept or ignore, and the ct_state, mark and
 * label the cache entry stored -- else nothing is written and it returns
 * TCPV_DECLINED: the state machine then runs on a copy (res->tcp), which
 * goes back into the entry only when accepted. Callers pass want as a
 * constant NULL or not, so each gets only its own code. */
static __always_inline int tcp_update(struct ct_entry *e, __u32 gen, struct ct_result *res,
				      const struct pkt_info *pi, __u32 opts,
				      __u32 zone, __u64 now, int dry, const int fast,
				      const struct emc_entry *want)
{
	struct ct_tcp *t = want ? &res->tcp : &e->tcp;
	__u64 seq;
	__u8 ef, old;
	int v;

	/* Not owned after CT_TRIES tries: passing the packet without
	 * recording it would desynchronize the tracking from what the
	 * endpoints saw, so it is invalid: dropped by the usual flows, and
	 * TCP sends it again. */
	seq = ct_own(e);
	if (!seq)
		return want ? TCPV_DECLINED : TCPV_INVALID;
	if (e->gen != gen) {
		ct_release(e, seq);
		return TCPV_GONE;
	}
	ef = e->flags;
	old = e->tcp.state;
	if (want)
		*t = e->tcp;
	if (fast && tcp_fast_ack(t, pi, res->dir == CT_DIR_REPLY))
		v = TCPV_ACCEPT;
	else
		v = tcp_packet(t, pi, opts | TP_ENTRY |
			       (res->dir == CT_DIR_REPLY ? TP_REPLY : 0) |
			       ((ef & CT_E_SEEN_REPLY) ? TP_SEENREPLY : 0) |
			       ((ef & CT_E_ASSURED) ? TP_ASSURED : 0));
	if (want) {
		if ((v != TCPV_ACCEPT && v != TCPV_IGNORE) || !ct_want_ok(e, res->dir, ef, want)) {
			ct_release(e, seq);
			return TCPV_DECLINED;
		}
		e->tcp = *t;
	}
	if (v == TCPV_ACCEPT || v == TCPV_IGNORE) {
		if (v == TCPV_ACCEPT && (ef & CT_E_SEEN_REPLY) && e->tcp.state == sES &&
		    (old == sSR || old == sES))
			ef |= CT_E_ASSURED;
		if (res->dir == CT_DIR_REPLY)
			ef |= CT_E_SEEN_REPLY;
		/* As the kernel: a packet the tracker ignores refreshes
		 * nothing, nor is it counted (nf_conntrack_tcp_packet
		 * returns before nf_ct_refresh_acct); the timeout sees the
		 * flags as they were before the packet. */
		if (v == TCPV_ACCEPT) {
			e->expires_ns = now + ct_timeout_ns(IPPROTO_TCP, &e->tcp,
							    pi->tcp_flags & TH_RST, e->flags,
							    now - e->start_ns, zone);
			if (!dry) { /* a dry run works on a copy, and counts nothing */
				e->packets[res->dir & 1]++;
				e->bytes[res->dir & 1] += pi->l3_len;
			}
		}
		e->flags = ef;
	}
	ct_release(e, seq);
	return v; /* invalid, kill, reopen: the caller acts */
}

/* Another protocol's update of an existing connection: SEEN_REPLY (the
 * only flag these set), expiry and counters, owned as TCP's. Returns 0,
 * or -1 when the connection went before it could be owned. With want
 * (as tcp_update's), -2 and nothing written unless the result is want's. */
static __always_inline int ct_touch(struct ct_entry *e, __u32 gen, __u8 proto, __u8 dir,
				    __u32 len, __u32 zone, __u64 now, int dry,
				    const struct emc_entry *want)
{
	__u64 seq = ct_owned(e, gen);

	if (!seq)
		return -1;
	if (want && !ct_want_ok(e, dir, e->flags | (dir == CT_DIR_REPLY ? CT_E_SEEN_REPLY : 0), want)) {
		ct_release(e, seq);
		return -2;
	}
	if (dir == CT_DIR_REPLY)
		e->flags |= CT_E_SEEN_REPLY;
	e->expires_ns = now + ct_timeout_ns(proto, NULL, 0, e->flags, now - e->start_ns, zone);
	if (!dry) {
		e->packets[dir & 1]++;
		e->bytes[dir & 1] += len;
	}
	ct_release(e, seq);
	return 0;
}

/*
 * The result of a packet of existing connection e (res->dir set), also
 * when the packet killed it: e's mark and labels, and +trk+est+rpl in the
 * reply direction; in the original, +trk+est once a reply was seen, else
 * +trk+new.
 */
static __always_inline void ct_result_of(struct ct_result *res, const struct ct_entry *e)
{
	res->icmp_type = e->icmp_type;
	res->icmp_code = e->icmp_code;
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	if (res->dir == CT_DIR_REPLY)
		res->ct_state = CS_TRK | CS_EST | CS_RPL;
	else
		res->ct_state = CS_TRK | ((e->flags & CT_E_SEEN_REPLY) ? CS_EST : CS_NEW);
}

/*
 * Create the entry for a new, valid connection (ct(commit)). Refused
 * (the packet stays +new, uncommitted, as in OVS's userspace conntrack)
 * when its zone's limit or maxconns is reached, or the table is full;
 * with a nat() range that has no free tuple left, refused as +inv.
 */
static __always_inline void ct_commit(struct ct_result *res, const struct ct_key *k,
				      const struct pkt_info *pi, __u64 now,
				      __u32 flags)
{
	struct ct_entry *ne;
	__u32 zero = 0, why;
	__u16 zone = res->key.zone;
	long err;

	if (flags & CT_DRYRUN)
		return;
	ne = bpf_map_lookup_elem(&ct_new, &zero);
	if (!ne)
		return;
	__builtin_memset(ne, 0, sizeof(*ne));
	ne->start_ns = now;
	if (res->key.proto == IPPROTO_TCP)
		ne->tcp = res->tcp; /* other protocols leave it zero */
	ne->flags = res->pkt_is_a ? CT_E_A_IS_ORIG : 0;
	ne->icmp_type = pi->icmp_type;
	ne->icmp_code = pi->icmp_code;
	ne->id = bpf_get_prandom_u32();
	ne->packets[CT_DIR_ORIG] = 1;
	ne->bytes[CT_DIR_ORIG] = pi->l3_len;
	ne->expires_ns = now + ct_timeout_ns(res->key.proto, &ne->tcp, pi->tcp_flags & TH_RST,
					     ne->flags, 0, zone);
	ne->okey = *k;

	why = ct_reserve(zone);
	if (why && ct_sweep(now)) /* expired connections may be holding the places */
		why = ct_reserve(zone);
	if (why) {
		count(why);
		return;
	}
	/* ct(commit,nat(src|dst=...)): TCP, UDP and ICMP echo (ct_nat.h). */
	if ((flags & CT_NAT) && (res->nat_range.flags & (NAT_R_SRC | NAT_R_DST)) &&
	    (res->key.proto == IPPROTO_TCP || res->key.proto == IPPROTO_UDP ||
	     res->key.proto == IPPROTO_ICMP || res->key.proto == IPPROTO_ICMPV6))
		err = ct_insert_nat(res, ne);
	else
		err = ct_insert(k, ne, &res->ref);
	if (err == 0) {
		res->has_entry = 1;
		return;
	}
	ct_count_add(zone, -1);
	if (err == -EADDRNOTAVAIL) {
		/* No free tuple in the range: refused, and the packet dropped
		 * (exec_ct), as nf_nat's clash at confirmation drops it. */
		count(CNT_CT_NAT_FAIL);
		res->ct_state = CS_TRK | CS_INV;
		res->nat_failed = 1;
		return;
	}
	/* EEXIST: another CPU committed it first; EBUSY: counted as a race */
	if (err != -EEXIST && err != -EBUSY)
		count(CNT_CT_FULL);
}

/*
 * ct_execute runs conntrack for one ct() action and returns the ct_state
 * the packet gets. Global (verified once) for the same reason as classify.
 */
__noinline int ct_execute(const struct flow_key *key, const struct pkt_info *pi,
			  struct ct_result *res, __u32 zone, __u32 flags)
{
	struct ct_entry *e = NULL;
	struct ct_ref ref = {};
	struct ct_key k;    /* res->key on the stack: helpers up to 6.1 take keys from there */
	__u64 now = dp_now();
	int dry = flags & CT_DRYRUN;
	int killed = 0;
	__u8 proto;

	if (!key || !pi || !res)
		return CS_TRK | CS_INV;

	/* OVS's skb_nfct_cached(): ct(force) does not reuse a reply-direction
	 * result; the connection is replaced below. */
	if (res->done && res->zone == zone &&
	    !((flags & CT_FORCE) && (flags & CT_COMMIT) && res->has_entry &&
	      res->dir == CT_DIR_REPLY)) {
		/* Already tracked in this zone: only a commit can add something. */
		if ((flags & CT_COMMIT) && !res->has_entry &&
		    !(res->ct_state & CS_INV)) {
			k = res->key;
			ct_commit(res, &k, pi, now, flags);
		}
		if (flags & CT_NAT)
			ct_nat_result(res);
		return res->ct_state;
	}

	/* The working copies (tcp, entry) are written before they are read. */
	__builtin_memset(res, 0, __builtin_offsetof(struct ct_result, tcp));
	res->done = 1;
	res->zone = zone;
	if (pi->icmp_error && (key->nw_proto == IPPROTO_ICMP || key->nw_proto == IPPROTO_ICMPV6)) {
		if (ct_related(key, pi, res, zone, &k))
			goto invalid;
		if ((flags & CT_NAT) && res->nat_related)
			ct_nat_result(res); /* the error about a NATed connection, translated */
		return res->ct_state;
	}
	if (ct_build_key(key, pi, zone, &res->key, &res->pkt_is_a))
		goto invalid;
	/* Read once: the verifier does not know two loads give one value. */
	proto = key->nw_proto;
	k = res->key;

	e = ct_find(&k, &ref);
	if (e && e->expires_ns < now) {
		if (!dry && ct_delete_ref(&k, &ref) == 0)
			count(CNT_CT_EXPIRED);
		e = NULL;
	}
	if (e && dry) {
		/* Work on a copy: the result is the same, the table untouched.
		 * Taken while another CPU owns the entry, the copy is not owned. */
		res->entry = *e;
		res->entry.seq &= ~1ULL;
		e = &res->entry;
	}
	if (e && e->nat) {
		/* Two keys: which one matched says the direction. */
		int d = ct_nat_direction(res, ref.slot, ref.gen);

		/* clang proves d is 0 or 1 and drops the mask that
		 * e->packets[dir & 1] relies on; the verifier cannot. */
		asm volatile("" : "+r"(d));
		res->dir = d & 1;
	} else if (e)
		res->dir = (res->pkt_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ?
			   CT_DIR_ORIG : CT_DIR_REPLY;
	else
		res->dir = CT_DIR_ORIG;
	if (e && res->dir == CT_DIR_REPLY && (flags & CT_FORCE) && (flags & CT_COMMIT)) {
		/* ct(force): committed the other way round; start it afresh this way. */
		if (!dry)
			ct_delete_ref(&k, &ref);
		e = NULL;
		res->dir = CT_DIR_ORIG;
	}

	switch (proto) {
	case IPPROTO_TCP: {
		__u32 opts = (flags & CT_LIBERAL) ? TP_LIBERAL : 0;
		int v;

		/* An existing connection is updated (and written) here. */
		v = e ? tcp_update(e, ref.gen, res, pi, opts, zone, now, dry, 0, NULL) :
			tcp_packet(&res->tcp, pi, opts);
		if (v == TCPV_REOPEN || v == TCPV_GONE) {
			/* Kill the closed connection; the SYN starts a new one.
			 * Or it went meanwhile: the packet is a new one's. */
			if (v == TCPV_REOPEN && !dry)
				ct_delete_ref(&k, &ref);
			e = NULL;
			res->dir = CT_DIR_ORIG;
			v = tcp_packet(&res->tcp, pi, opts);
		}
		if (v == TCPV_INVALID || v == TCPV_REOPEN)
			goto invalid;
		if (v == TCPV_KILL && e && !dry) {
			/* The packet that ends the connection is still its own,
			 * translated as the others (nf_nat's RST to a SYN): the
			 * translation is read before the connection goes. */
			if (flags & CT_NAT) {
				res->has_entry = 1;
				res->ref = ref;
				ct_nat_result(res);
			}
			ct_delete_ref(&k, &ref);
			killed = 1;
		}
		break;
	}
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6: {
		int v6 = proto == IPPROTO_ICMPV6;

		/* Queries open connections; replies only answer existing ones. */
		if (!e && icmp_reply_type(pi->icmp_type, v6) < 0)
			goto invalid;
		if (e && res->dir == CT_DIR_ORIG && pi->icmp_type != e->icmp_type)
			goto invalid;
		if (e && res->dir == CT_DIR_REPLY &&
		    pi->icmp_type != icmp_reply_type(e->icmp_type, v6))
			goto invalid;
		break;
	}
	}

	/* TCP updated the connection in tcp_update; the others do here. */
	if (e && proto != IPPROTO_TCP &&
	    ct_touch(e, ref.gen, proto, res->dir, pi->l3_len, zone, now, dry, NULL)) {
		/* It went meanwhile: the packet is a new connection's. */
		if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) &&
		    icmp_reply_type(pi->icmp_type, proto == IPPROTO_ICMPV6) < 0)
			goto invalid;
		e = NULL;
		res->dir = CT_DIR_ORIG;
	}

	if (!e) {
		res->icmp_type = pi->icmp_type;
		res->icmp_code = pi->icmp_code;
		res->ct_state = CS_TRK | CS_NEW;
		if (flags & CT_COMMIT)
			ct_commit(res, &k, pi, now, flags);
		if (flags & CT_NAT)
			ct_nat_result(res);
		return res->ct_state;
	}

	/* An existing connection: updated above. */
	/* Killed: gone from the table; the packet still counts as this connection's. */
	res->has_entry = !killed;
	res->ref = ref;
	ct_result_of(res, e);
	if ((flags & CT_NAT) && !killed)
		ct_nat_result(res);
	return res->ct_state;

invalid:
	count(CNT_CT_INVALID);
	res->ct_state = CS_TRK | CS_INV;
	return res->ct_state;
}

/*
 * The rare ends of ct_execute_ref(): the TCP update found the packet
 * invalid or killing the connection (TCPV_*), and wrote the tracking, as
 * for ct_execute's invalid and killed packets; res->ref and res->dir are
 * set. These results need the key, built here. Global, to keep its stack
 * key out of the packet program's frame (the verifier's 512 bytes).
 */
__noinline int ct_execute_ref_end(const struct flow_key *key, const struct pkt_info *pi,
				  struct ct_result *res, __u32 zone, int v)
{
	struct ct_entry *e;
	struct ct_ref ref;
	struct ct_key k;

	if (!key || !pi || !res)
		return 0;
	ref = res->ref;
	res->has_entry = 0;
	res->mark = 0;
	__builtin_memset(res->labels, 0, 16);
	ct_build_key(key, pi, zone, &res->key, &res->pkt_is_a);
	e = bpf_map_lookup_elem(&ct_slots, &ref.slot);
	if (v != TCPV_KILL || !e) {
		count(CNT_CT_INVALID);
		res->ct_state = CS_TRK | CS_INV;
		return 0;
	}
	k = res->key; /* a stack key for the helpers */
	ct_delete_ref(&k, &ref);
	/* Gone from the table; the packet still counts as this connection's. */
	ct_result_of(res, e);
	return 0;
}

/*
 * A cache hit's ct() for the connection its entry saw last (emc.h): the
 * packet has that connection's addresses and ports and goes to its slot
 * with ref, without building a key or looking one up. Returns 1 with res
 * as ct_execute() leaves it -- except res->key, which only an
 * uncommitted, killed or invalid result needs, and which those get --
 * or 0 when ct_execute() must run, before anything was changed: the slot
 * holds another connection, the connection expired (ct_execute removes
 * it), or a SYN reopens it (tcp_packet returns REOPEN before it writes).
 * TCP over IPv4 only, never a commit, a dry run or a reply-direction
 * ct(force) (the cache stores no such walk); with ct(nat), the
 * translation as ct_nat_result gives it.
 */
__noinline int ct_execute_ref(const struct flow_key *key, const struct pkt_info *pi,
			      struct ct_result *res, const struct emc_ct_hint *h, __u32 flags)
{
	struct ct_entry *e;
	struct ct_ref ref;
	__u32 zone;
	__u8 dir;
	__u64 now;
	int v;

	if (!key || !pi || !res || !h)
		return 0;
	ref = h->ref;
	zone = h->zone;
	dir = h->dir;
	e = bpf_map_lookup_elem(&ct_slots, &ref.slot);
	if (!e || e->gen != ref.gen)
		return 0;
	now = dp_now();
	if (e->expires_ns < now)
		return 0;
	res->dir = dir;
	v = tcp_update(e, ref.gen, res, pi, (flags & CT_LIBERAL) ? TP_LIBERAL : 0, zone, now, 0, 1, NULL);
	if (v == TCPV_GONE || v == TCPV_REOPEN)
		return 0;
	res->done = 1;
	res->zone = zone;
	res->ref = ref;
	/* ct(nat): the hint's packet found the connection through the key
	 * this one would (same addresses and ports): its translation is the
	 * same. Worked out before a RST that ends the connection removes it. */
	res->nat_op = 0;
	res->natted = 0;
	res->nat_related = 0;
	res->nat_failed = 0;
	res->nat_bit = 0;
	res->via_nat = 0;
	if ((flags & CT_NAT) && v != TCPV_INVALID)
		ct_nat_op_via(res, e, h->valid & HINT_VIA_NAT);
	if (v == TCPV_ACCEPT || v == TCPV_IGNORE) {
		res->has_entry = 1;
		ct_result_of(res, e);
		return 1;
	}
	ct_execute_ref_end(key, pi, res, zone, v);
	return 1;
}

/*
 * XDP's ct() for a cache hit (xdp_fast): the packet tracked as ct_execute
 * tracks it, when that gives the result cache entry want stored -- or, if
 * it would not, or would need more than a lookup and an update (a commit,
 * NAT, force, an ICMP error, an invalid or expired packet, a SYN that
 * reopens, a RST that kills), nothing changes at all and it returns 0:
 * the packet goes on to TC untouched, which tracks it. Returns 1 with res
 * as ct_execute leaves it. Global, as ct_execute.
 */
__noinline int ct_execute_expect(const struct flow_key *key, const struct pkt_info *pi,
				 struct ct_result *res, const struct emc_entry *want, __u32 flags)
{
	__u32 opts = (flags & CT_LIBERAL) ? TP_LIBERAL : 0, zone;
	struct ct_ref ref = {};
	struct ct_entry *e;
	struct ct_key k;
	__u64 now;
	__u8 proto;
	int v, v6;

	if (!key || !pi || !res || !want)
		return 0;
	if (pi->icmp_error || (flags & (CT_COMMIT | CT_FORCE | CT_NAT | CT_DRYRUN)))
		return 0;
	zone = want->zone;
	__builtin_memset(res, 0, __builtin_offsetof(struct ct_result, tcp));
	if (ct_build_key(key, pi, zone, &res->key, &res->pkt_is_a))
		return 0;
	proto = key->nw_proto;
	v6 = proto == IPPROTO_ICMPV6;
	k = res->key;
	e = ct_find(&k, &ref);
	now = dp_now();
	res->zone = zone;
	if (!e) {
		/* No connection: a lookup, and nothing to update. */
		if (proto == IPPROTO_TCP && tcp_packet(&res->tcp, pi, opts) != TCPV_ACCEPT)
			return 0;
		if ((proto == IPPROTO_ICMP || v6) && icmp_reply_type(pi->icmp_type, v6) < 0)
			return 0;
		if (want->ct_state != (CS_TRK | CS_NEW) || want->ct_mark ||
		    (want->ct_label[0] | want->ct_label[1] | want->ct_label[2] | want->ct_label[3]))
			return 0;
		res->icmp_type = pi->icmp_type;
		res->icmp_code = pi->icmp_code;
		res->ct_state = CS_TRK | CS_NEW;
		res->done = 1; /* only now: a declined packet's walk tracks it afresh */
		return 1;
	}
	if (e->nat || e->expires_ns < now)
		return 0;
	res->dir = (res->pkt_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ? CT_DIR_ORIG : CT_DIR_REPLY;
	if (proto == IPPROTO_TCP) {
		v = tcp_update(e, ref.gen, res, pi, opts, zone, now, 0, 1, want);
		if (v != TCPV_ACCEPT && v != TCPV_IGNORE)
			return 0;
	} else {
		if ((proto == IPPROTO_ICMP || v6) &&
		    pi->icmp_type != (res->dir == CT_DIR_ORIG ? e->icmp_type :
						icmp_reply_type(e->icmp_type, v6)))
			return 0;
		if (ct_touch(e, ref.gen, proto, res->dir, pi->l3_len, zone, now, 0, want))
			return 0;
	}
	res->has_entry = 1;
	res->ref = ref;
	ct_result_of(res, e);
	res->done = 1;
	return 1;
}
