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
 * ct_mark/ct_label are set by exec(...) loads (actions.h: ct_exec_load).
 *
 * Where later work goes: TCP window tracking in tcp_update() (with per-
 * direction state in struct ct_entry), per-zone timeouts in
 * ct_timeout_ns(), limits in ct_commit().
 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "maps.h"
#include "parse.h"

#define SECS(n) ((__u64)(n) * 1000000000ULL)

/* nf_conntrack's default timeouts (nf_conntrack_proto_*.c). */
static const __u32 tcp_timeouts[TCP_CT_MAX] = {
	[TCP_CT_NONE]        = 120,
	[TCP_CT_SYN_SENT]    = 120,
	[TCP_CT_SYN_RECV]    = 60,
	[TCP_CT_ESTABLISHED] = 5 * 24 * 3600,
	[TCP_CT_FIN_WAIT]    = 120,
	[TCP_CT_CLOSE_WAIT]  = 60,
	[TCP_CT_LAST_ACK]    = 30,
	[TCP_CT_TIME_WAIT]   = 120,
	[TCP_CT_CLOSE]       = 10,
	[TCP_CT_SYN_SENT2]   = 120,
};
#define UDP_TIMEOUT        30
#define UDP_TIMEOUT_STREAM 120
#define UDP_STREAM_AFTER   2   /* seconds of replied traffic before "stream" */
#define ICMP_TIMEOUT       30
#define GENERIC_TIMEOUT    600

/* Index of a TCP segment in the transition table (get_conntrack_index). */
enum { TCP_SYN_SET, TCP_SYNACK_SET, TCP_FIN_SET, TCP_ACK_SET, TCP_RST_SET, TCP_NONE_SET, TCP_N_SETS };

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20
#define TH_ECE 0x40
#define TH_CWR 0x80

#define sNO TCP_CT_NONE
#define sSS TCP_CT_SYN_SENT
#define sSR TCP_CT_SYN_RECV
#define sES TCP_CT_ESTABLISHED
#define sFW TCP_CT_FIN_WAIT
#define sCW TCP_CT_CLOSE_WAIT
#define sLA TCP_CT_LAST_ACK
#define sTW TCP_CT_TIME_WAIT
#define sCL TCP_CT_CLOSE
#define sS2 TCP_CT_SYN_SENT2
#define sIV TCP_CT_MAX
#define sIG TCP_CT_IGNORE

/* nf_conntrack_proto_tcp.c's tcp_conntracks[direction][segment][old state]. */
static const __u8 tcp_conntracks[2][TCP_N_SETS][TCP_CT_MAX] = {
	{ /* ORIGINAL */
	/*            sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
	/* syn    */ { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
	/* synack */ { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
	/* fin    */ { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
	/* ack    */ { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
	/* rst    */ { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
	/* none   */ { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
	{ /* REPLY */
	/*            sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
	/* syn    */ { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 },
	/* synack */ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
	/* fin    */ { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
	/* ack    */ { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
	/* rst    */ { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
	/* none   */ { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
	},
};

static __always_inline __u32 tcp_index(__u8 flags)
{
	if (flags & TH_RST)
		return TCP_RST_SET;
	if (flags & TH_SYN)
		return (flags & TH_ACK) ? TCP_SYNACK_SET : TCP_SYN_SET;
	if (flags & TH_FIN)
		return TCP_FIN_SET;
	if (flags & TH_ACK)
		return TCP_ACK_SET;
	return TCP_NONE_SET;
}

/* tcp_error()'s flag check: PSH, ECE and CWR aside, only these combinations are valid. */
static __always_inline int tcp_flags_valid(__u8 flags)
{
	switch (flags & ~(TH_ECE | TH_CWR | TH_PSH)) {
	case TH_SYN:
	case TH_SYN | TH_URG:
	case TH_SYN | TH_ACK:
	case TH_RST:
	case TH_RST | TH_ACK:
	case TH_FIN | TH_ACK:
	case TH_FIN | TH_ACK | TH_URG:
	case TH_ACK:
	case TH_ACK | TH_URG:
		return 1;
	}
	return 0;
}

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

/* -1, 0, 1 as a < b, a == b, a > b, for addresses in network order. */
static __always_inline int addr_cmp(const __be32 *a, const __be32 *b, int words)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (i >= words)
			break;
		if (a[i] != b[i])
			return bpf_ntohl(a[i]) < bpf_ntohl(b[i]) ? -1 : 1;
	}
	return 0;
}

/*
 * Fill the connection key. Returns -1 when the packet cannot be tracked
 * (truncated L4 header, fragment, ICMP that is not a query or reply).
 */
static __always_inline int ct_build_key(const struct flow_key *k,
					const struct pkt_info *pi, __u16 zone,
					struct ct_key *ck, __u8 *pkt_is_a)
{
	int v6 = pi->is_ipv6, words = v6 ? 4 : 1, cmp;
	__be32 src4[1] = { k->nw_src }, dst4[1] = { k->nw_dst };
	const __be32 *src = v6 ? k->ipv6_src : src4;
	const __be32 *dst = v6 ? k->ipv6_dst : dst4;
	__be16 sp = 0, dp = 0;

	if ((!pi->is_ipv4 && !v6) || (k->nw_frag & FRAG_ANY))
		return -1; /* fragments: untracked until reassembly exists */
	switch (k->nw_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (!pi->l4_ok)
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

	ck->zone = zone;
	ck->proto = k->nw_proto;
	ck->family = v6 ? 6 : 4;
	cmp = addr_cmp(src, dst, words);
	*pkt_is_a = cmp < 0 || (cmp == 0 && bpf_ntohs(sp) <= bpf_ntohs(dp));
	if (*pkt_is_a) {
		__builtin_memcpy(ck->addr_a, src, 4);
		__builtin_memcpy(ck->addr_b, dst, 4);
		if (v6) {
			__builtin_memcpy(ck->addr_a, k->ipv6_src, 16);
			__builtin_memcpy(ck->addr_b, k->ipv6_dst, 16);
		}
		ck->port_a = sp;
		ck->port_b = dp;
	} else {
		__builtin_memcpy(ck->addr_a, dst, 4);
		__builtin_memcpy(ck->addr_b, src, 4);
		if (v6) {
			__builtin_memcpy(ck->addr_a, k->ipv6_dst, 16);
			__builtin_memcpy(ck->addr_b, k->ipv6_src, 16);
		}
		ck->port_a = dp;
		ck->port_b = sp;
	}
	return 0;
}

static __always_inline __u64 ct_timeout_ns(__u8 proto, __u8 tcp_state,
					   __u8 flags, __u64 age_ns)
{
	switch (proto) {
	case IPPROTO_TCP:
		if (tcp_state < TCP_CT_MAX)
			return SECS(tcp_timeouts[tcp_state]);
		return SECS(tcp_timeouts[TCP_CT_CLOSE]);
	case IPPROTO_UDP:
		if ((flags & CT_E_SEEN_REPLY) && age_ns > SECS(UDP_STREAM_AFTER))
			return SECS(UDP_TIMEOUT_STREAM);
		return SECS(UDP_TIMEOUT);
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return SECS(ICMP_TIMEOUT);
	}
	return SECS(GENERIC_TIMEOUT);
}

/*
 * TCP: the state after this segment, or sIV when the segment is invalid.
 * *reopen is set when a SYN reopens a closed connection (TIME_WAIT/CLOSE):
 * the old entry must go and the packet counts as a new connection.
 * A segment the table ignores (sIG) keeps the old state but, as in
 * nf_conntrack (which returns NF_ACCEPT for it), is still tracked: it is
 * not +inv.
 */
static __always_inline __u8 tcp_update(const struct pkt_info *pi, __u8 dir,
				       __u8 old, int *reopen)
{
	__u32 idx = tcp_index(pi->tcp_flags);
	__u8 new;

	if (!tcp_flags_valid(pi->tcp_flags))
		return sIV;
	if (dir > 1 || idx >= TCP_N_SETS || old >= TCP_CT_MAX)
		return sIV;
	new = tcp_conntracks[dir][idx][old];
	if (new == sSS && old >= sTW && old != sS2) {
		*reopen = 1;
		return sSS;
	}
	/* Later: sequence and window checks (tcp_in_window) refine sIG/sIV here. */
	if (new == sIG)
		return old;
	return new;
}

static __always_inline void ct_account(struct ct_entry *e, __u8 dir, __u32 len)
{
	if (dir > 1)
		return;
	__sync_fetch_and_add(&e->packets[dir], 1);
	__sync_fetch_and_add(&e->bytes[dir], len);
}

/* Create the entry for a new, valid connection (ct(commit)). */
static __always_inline void ct_commit(struct ct_result *res,
				      const struct pkt_info *pi, __u64 now,
				      __u32 flags)
{
	struct ct_entry e = {};

	if (flags & CT_DRYRUN)
		return;
	e.start_ns = now;
	e.tcp_state = res->new_state;
	e.flags = res->pkt_is_a ? CT_E_A_IS_ORIG : 0;
	e.icmp_type = pi->icmp_type;
	e.icmp_code = pi->icmp_code;
	e.id = bpf_get_prandom_u32();
	e.packets[CT_DIR_ORIG] = 1;
	e.bytes[CT_DIR_ORIG] = pi->len;
	e.expires_ns = now + ct_timeout_ns(res->key.proto, e.tcp_state, e.flags, 0);
	if (bpf_map_update_elem(&conntrack, &res->key, &e, BPF_NOEXIST) == 0)
		res->has_entry = 1;
	else
		count(CNT_CT_FULL);
}

/*
 * An ICMP error quoting a packet of a tracked connection is related to it
 * (nf_conntrack_inet_error): +rel, and +rpl when the error travels toward
 * the connection's originator, i.e. the quoted packet went in the original
 * direction. It changes no state. An error quoting nothing we track is
 * +inv.
 */
static __always_inline int ct_related(const struct flow_key *k,
				      const struct pkt_info *pi,
				      struct ct_result *res, __u16 zone)
{
	int v6 = pi->is_ipv6, cmp;
	struct ct_entry *e;
	__u8 inner_is_a;

	if (!pi->icmp_error)
		return -1;
	res->key.zone = zone;
	res->key.proto = pi->inner_proto;
	res->key.family = v6 ? 6 : 4;
	cmp = addr_cmp(pi->inner_src, pi->inner_dst, v6 ? 4 : 1);
	inner_is_a = cmp < 0 || (cmp == 0 && bpf_ntohs(pi->inner_sport) <= bpf_ntohs(pi->inner_dport));
	if (inner_is_a) {
		__builtin_memcpy(res->key.addr_a, pi->inner_src, 16);
		__builtin_memcpy(res->key.addr_b, pi->inner_dst, 16);
		res->key.port_a = pi->inner_sport;
		res->key.port_b = pi->inner_dport;
	} else {
		__builtin_memcpy(res->key.addr_a, pi->inner_dst, 16);
		__builtin_memcpy(res->key.addr_b, pi->inner_src, 16);
		res->key.port_a = pi->inner_dport;
		res->key.port_b = pi->inner_sport;
	}
	e = bpf_map_lookup_elem(&conntrack, &res->key);
	if (!e || e->expires_ns < bpf_ktime_get_ns())
		return -1;
	/* The quoted packet went orig-wards: the error goes reply-wards. */
	res->dir = (inner_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ? CT_DIR_REPLY : CT_DIR_ORIG;
	res->has_entry = 1;
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	res->ct_state = CS_TRK | CS_REL | (res->dir == CT_DIR_REPLY ? CS_RPL : 0);
	return 0;
}

/*
 * ct_execute runs conntrack for one ct() action and returns the ct_state
 * the packet gets. Global (verified once) for the same reason as classify.
 */
__noinline int ct_execute(const struct flow_key *key, const struct pkt_info *pi,
			  struct ct_result *res, __u32 zone, __u32 flags)
{
	struct ct_entry *e = NULL, copy;
	__u64 now = bpf_ktime_get_ns();
	int dry = flags & CT_DRYRUN;
	int reopen = 0;
	__u8 old = sNO, proto;

	if (!key || !pi || !res)
		return CS_TRK | CS_INV;

	/* OVS's skb_nfct_cached(): ct(force) does not reuse a reply-direction
	 * result; the connection is replaced below. */
	if (res->done && res->zone == zone &&
	    !((flags & CT_FORCE) && (flags & CT_COMMIT) && res->has_entry &&
	      res->dir == CT_DIR_REPLY)) {
		/* Already tracked in this zone: only a commit can add something. */
		if ((flags & CT_COMMIT) && !res->has_entry &&
		    !(res->ct_state & CS_INV))
			ct_commit(res, pi, now, flags);
		return res->ct_state;
	}

	__builtin_memset(res, 0, sizeof(*res));
	res->done = 1;
	res->zone = zone;
	if (pi->icmp_error && (key->nw_proto == IPPROTO_ICMP || key->nw_proto == IPPROTO_ICMPV6)) {
		if (ct_related(key, pi, res, zone))
			goto invalid;
		return res->ct_state;
	}
	if (ct_build_key(key, pi, zone, &res->key, &res->pkt_is_a))
		goto invalid;
	/* Read once: the verifier does not know two loads give one value. */
	proto = key->nw_proto;

	e = bpf_map_lookup_elem(&conntrack, &res->key);
	if (e && e->expires_ns < now) {
		if (!dry)
			bpf_map_delete_elem(&conntrack, &res->key);
		e = NULL;
	}
	if (e && dry) {
		/* Work on a copy: the result is the same, the table untouched. */
		copy = *e;
		e = &copy;
	}
	if (e)
		res->dir = (res->pkt_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ?
			   CT_DIR_ORIG : CT_DIR_REPLY;
	else
		res->dir = CT_DIR_ORIG;
	if (e && res->dir == CT_DIR_REPLY && (flags & CT_FORCE) && (flags & CT_COMMIT)) {
		/* ct(force): committed the other way round; start it afresh this way. */
		if (!dry)
			bpf_map_delete_elem(&conntrack, &res->key);
		e = NULL;
		res->dir = CT_DIR_ORIG;
	}

	switch (proto) {
	case IPPROTO_TCP:
		old = e ? e->tcp_state : sNO;
		res->new_state = tcp_update(pi, res->dir, old, &reopen);
		if (reopen && e) {
			if (!dry)
				bpf_map_delete_elem(&conntrack, &res->key);
			e = NULL;
			res->dir = CT_DIR_ORIG;
		}
		if (res->new_state >= TCP_CT_MAX)
			goto invalid;
		break;
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

	if (!e) {
		res->ct_state = CS_TRK | CS_NEW;
		if (flags & CT_COMMIT)
			ct_commit(res, pi, now, flags);
		return res->ct_state;
	}

	/* An existing connection: update it. */
	res->has_entry = 1;
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	if (proto == IPPROTO_TCP) {
		if (res->new_state == sES && (old == sSR || old == sES))
			e->flags |= CT_E_ASSURED;
		e->tcp_state = res->new_state;
	}
	if (res->dir == CT_DIR_REPLY) {
		e->flags |= CT_E_SEEN_REPLY;
		res->ct_state = CS_TRK | CS_EST | CS_RPL;
	} else {
		res->ct_state = CS_TRK |
			((e->flags & CT_E_SEEN_REPLY) ? CS_EST : CS_NEW);
	}
	e->expires_ns = now + ct_timeout_ns(proto, e->tcp_state,
					    e->flags, now - e->start_ns);
	ct_account(e, res->dir, pi->len);
	return res->ct_state;

invalid:
	count(CNT_CT_INVALID);
	res->ct_state = CS_TRK | CS_INV;
	return res->ct_state;
}
