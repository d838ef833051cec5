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
 * Timeouts (per zone, and the kernel's shortened TCP ones) are chosen in
 * ct_timeout_ns(). Limits (maxconns, per zone) are checked in ct_commit().
 * Two CPUs updating one TCP connection: see tcp_update().
 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/errno.h>
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

/*
 * tcp_conntracks[dir][index][old], as one bounds-checked flat index: the
 * verifier of Linux 6.1 loses the bounds of the three-part offset clang
 * builds for the 3-D access and rejects it. The barrier keeps clang from
 * dropping the check it can prove redundant. Out of range reads as sIV.
 */
static __always_inline __u8 tcp_transition(int dir, __u32 index, __u32 old)
{
	__u32 i = (dir & 1) * (TCP_N_SETS * TCP_CT_MAX) + index * TCP_CT_MAX + old;

	asm volatile("" : "+r"(i));
	if (i >= sizeof(tcp_conntracks))
		return sIV;
	return ((const __u8 *)tcp_conntracks)[i];
}

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

/* Sequence arithmetic (RFC 1982), as the kernel's before()/after(). */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}
#define seq_after(a, b) seq_before(b, a)

#define MAXACKWINCONST 66000
#define MAXACKWINDOW(s) ((s)->td_maxwin > MAXACKWINCONST ? (s)->td_maxwin : MAXACKWINCONST)

/* What nf_conntrack_tcp_packet() decides about a segment. */
enum {
	TCPV_ACCEPT,   /* in window: state and tracking updated */
	TCPV_IGNORE,   /* tracked (NF_ACCEPT), state unchanged */
	TCPV_INVALID,  /* -NF_ACCEPT: +inv, nothing changes */
	TCPV_REOPEN,   /* a SYN reopens a closed connection: kill it, track anew */
	TCPV_KILL,     /* accepted, then the connection goes (a RST is its only reply) */
	TCPV_GONE,     /* tcp_update: the connection went before the update could own it */
};

/* tcp_packet() opts */
#define TP_ENTRY     0x01 /* the connection exists (else: tcp_new) */
#define TP_SEENREPLY 0x02
#define TP_ASSURED   0x04
#define TP_REPLY     0x08 /* the packet's direction */
#define TP_LIBERAL   0x10 /* nf_conntrack_tcp_be_liberal */

/* tcp_options(): a SYN's window scale and SACK-permitted into its sender. */
static __always_inline void tcp_side_options(struct ct_tcp_side *s, const struct pkt_info *pi)
{
	s->td_scale = 0;
	s->flags &= CT_TCP_F_BE_LIBERAL;
	if (pi->tcp_sackok)
		s->flags |= CT_TCP_F_SACK_PERM;
	if (pi->tcp_wscale != 0xff) {
		s->td_scale = pi->tcp_wscale;
		s->flags |= CT_TCP_F_WINDOW_SCALE;
	}
}

/* tcp_init_sender() */
static __always_inline void tcp_init_sender(struct ct_tcp_side *sender, struct ct_tcp_side *receiver,
					    const struct pkt_info *pi, __u32 end, __u32 win, int reply)
{
	sender->td_end = sender->td_maxend = end;
	sender->td_maxwin = win ? win : 1;
	tcp_side_options(sender, pi);
	/* RFC 1323: both sides must send the window scale option to use it. */
	if (reply && !((sender->flags & CT_TCP_F_WINDOW_SCALE) &&
		       (receiver->flags & CT_TCP_F_WINDOW_SCALE))) {
		sender->td_scale = 0;
		receiver->td_scale = 0;
	}
}

/* tcp_in_window()'s four tests of a segment against the tracking, in the
 * order it makes them; the fast path (tcp_fast_ack) needs all four. */
static __always_inline int tcp_seq_ok(const struct ct_tcp_side *sender, __u32 seq)
{
	return seq_before(seq, sender->td_maxend + 1); /* not over the upper bound */
}

static __always_inline int tcp_ack_ok(const struct ct_tcp_side *receiver, __u32 sack)
{
	return seq_before(sack, receiver->td_end + 1); /* acks only data seen */
}

static __always_inline int tcp_in_recv_win(const struct ct_tcp_side *sender,
					   const struct ct_tcp_side *receiver, __u32 end)
{
	return !receiver->td_maxwin || seq_after(end, sender->td_end - receiver->td_maxwin - 1);
}

static __always_inline int tcp_ack_recent(const struct ct_tcp_side *sender,
					  const struct ct_tcp_side *receiver, __u32 sack)
{
	return seq_after(sack, receiver->td_end - MAXACKWINDOW(sender) - 1);
}

/* What tcp_in_window() records of a segment in the window. */
static __always_inline void tcp_window_update(struct ct_tcp *t, struct ct_tcp_side *sender,
					      struct ct_tcp_side *receiver, int reply,
					      __u32 index, const struct pkt_info *pi, __u32 seq,
					      __u32 end, __u32 ack, __u32 sack)
{
	__u32 win = pi->tcp_win, swin;

	if (!(pi->tcp_flags & TH_SYN))
		win <<= sender->td_scale;
	swin = win + (sack - ack);
	if (sender->td_maxwin < swin)
		sender->td_maxwin = swin;
	if (seq_after(end, sender->td_end)) {
		sender->td_end = end;
		sender->flags |= CT_TCP_F_DATA_UNACK;
	}
	if (pi->tcp_flags & TH_ACK) {
		if (!(sender->flags & CT_TCP_F_MAXACK_SET)) {
			sender->td_maxack = ack;
			sender->flags |= CT_TCP_F_MAXACK_SET;
		} else if (seq_after(ack, sender->td_maxack)) {
			sender->td_maxack = ack;
		}
	}
	if (receiver->td_maxwin != 0 && seq_after(end, sender->td_maxend))
		receiver->td_maxwin += end - sender->td_maxend;
	if (seq_after(sack + win, receiver->td_maxend - 1)) {
		receiver->td_maxend = sack + win;
		if (win == 0)
			receiver->td_maxend++;
	}
	if (ack == receiver->td_end)
		receiver->flags &= ~CT_TCP_F_DATA_UNACK;
	if (index == TCP_ACK_SET) {
		if (t->last_dir == reply && t->last_seq == seq && t->last_ack == ack &&
		    t->last_end == end && t->last_win == pi->tcp_win) {
			t->retrans++;
		} else {
			t->last_dir = reply;
			t->last_seq = seq;
			t->last_ack = ack;
			t->last_end = end;
			t->last_win = pi->tcp_win;
			t->retrans = 0;
		}
	}
}

/*
 * tcp_in_window() of Linux 6.1: is the segment within what the receiver
 * allows? ACCEPT updates the tracking; IGNORE (old or overshooting data)
 * and INVALID leave it (but for the overshoot case). With be_liberal, what
 * would be IGNORE or INVALID is accepted, without updates.
 */
static __always_inline int tcp_in_window(struct ct_tcp *t, int reply, __u32 index,
					 const struct pkt_info *pi, int liberal)
{
	struct ct_tcp_side *sender = &t->side[reply & 1], *receiver = &t->side[(!reply) & 1];
	__u8 fl = pi->tcp_flags;
	__u32 seq = pi->tcp_seq, ack = pi->tcp_ack, sack = ack, win = pi->tcp_win, swin, end;
	int syn = fl & TH_SYN, in_recv_win;

	liberal = liberal || (sender->flags & CT_TCP_F_BE_LIBERAL);
	end = seq + pi->tcp_len + (syn ? 1 : 0) + ((fl & TH_FIN) ? 1 : 0);
	if ((receiver->flags & CT_TCP_F_SACK_PERM) && seq_after(pi->tcp_sack, sack))
		sack = pi->tcp_sack;

	if (sender->td_maxwin == 0) {
		if (syn) {
			tcp_init_sender(sender, receiver, pi, end, win, reply);
			if (!(fl & TH_ACK))
				return TCPV_ACCEPT; /* simultaneous open */
		} else {
			/* Mid-connection: use what the packet says. */
			sender->td_end = end;
			swin = win << sender->td_scale;
			sender->td_maxwin = swin ? swin : 1;
			sender->td_maxend = end + sender->td_maxwin;
			if (receiver->td_maxwin == 0)
				receiver->td_end = receiver->td_maxend = sack;
			else if (sack == receiver->td_end + 1)
				receiver->td_end++; /* likely a reply to a keepalive */
		}
	} else if (syn && seq_after(end, sender->td_end) &&
		   (t->state == sSS || t->state == sSR)) {
		/* RFC 793: a reinitialized TCP uses higher sequence numbers. */
		tcp_init_sender(sender, receiver, pi, end, win, reply);
		if (reply && !(fl & TH_ACK))
			return TCPV_ACCEPT;
	}

	if (!(fl & TH_ACK))
		ack = sack = receiver->td_end;
	else if ((fl & (TH_ACK | TH_RST)) == (TH_ACK | TH_RST) && ack == 0)
		ack = sack = receiver->td_end; /* broken stacks: RST+ACK with ack 0 */
	if ((fl & TH_RST) && seq == 0 && t->state == sSS)
		seq = end = sender->td_end; /* RST answering a SYN */

	if (!tcp_seq_ok(sender, seq)) {
		__u32 overshot = end - sender->td_maxend + 1;

		in_recv_win = receiver->td_maxwin &&
			      seq_after(end, sender->td_end - receiver->td_maxwin - 1);
		if (in_recv_win && tcp_ack_recent(sender, receiver, sack) &&
		    overshot <= receiver->td_maxwin && tcp_ack_ok(receiver, sack)) {
			/* More than the window allows: tolerated, remembered. */
			sender->td_end = end;
			sender->flags |= CT_TCP_F_DATA_UNACK;
			return liberal ? TCPV_ACCEPT : TCPV_IGNORE;
		}
		return liberal ? TCPV_ACCEPT : TCPV_INVALID; /* SEQ over the upper bound */
	}
	if (!tcp_ack_ok(receiver, sack))
		return liberal ? TCPV_ACCEPT : TCPV_INVALID; /* ACK for data not seen */
	if (!tcp_in_recv_win(sender, receiver, end))
		return liberal ? TCPV_ACCEPT : TCPV_IGNORE; /* old data retransmitted */
	if (!tcp_ack_recent(sender, receiver, sack))
		return liberal ? TCPV_ACCEPT : TCPV_IGNORE; /* overly delayed ACK */

	tcp_window_update(t, sender, receiver, reply, index, pi, seq, end, ack, sack);
	return TCPV_ACCEPT;
}

/*
 * nf_conntrack_tcp_packet() of Linux 6.1, on t: an owned connection's
 * tracking, written in place as the kernel writes it under the
 * connection's lock (so what tcp_in_window() records before it finds a
 * segment invalid stays, as there), or, for a new connection, a fresh one
 * (tcp_new()). Returns TCPV_*; t->state is the state after the packet.
 * Global: it is large, and a reopened connection runs it twice.
 */
__noinline int tcp_packet(struct ct_tcp *t, const struct pkt_info *pi, __u32 opts)
{
	__u32 index, seq, end;
	int reply = !!(opts & TP_REPLY), v;
	__u8 old, new;

	if (!t || !pi)
		return TCPV_INVALID;
	if (!tcp_flags_valid(pi->tcp_flags))
		return TCPV_INVALID;
	index = tcp_index(pi->tcp_flags);
	if (index >= TCP_N_SETS)
		return TCPV_INVALID;
	seq = pi->tcp_seq;
	end = seq + pi->tcp_len + ((pi->tcp_flags & TH_SYN) ? 1 : 0) + ((pi->tcp_flags & TH_FIN) ? 1 : 0);

	if (!(opts & TP_ENTRY)) {
		/* tcp_new(): only a SYN, or (loose) an ACK, starts a connection. */
		new = tcp_transition(0, index, sNO);
		if (new >= TCP_CT_MAX)
			return TCPV_INVALID;
		__builtin_memset(t, 0, sizeof(*t));
		t->side[0].td_end = end;
		t->side[0].td_maxwin = pi->tcp_win ? pi->tcp_win : 1;
		if (new == sSS) {
			t->side[0].td_maxend = end;
			tcp_side_options(&t->side[0], pi);
		} else {
			/* Picked up mid-stream: window scaling unknown, be liberal. */
			t->side[0].td_maxend = end + t->side[0].td_maxwin;
			t->side[0].flags = t->side[1].flags = CT_TCP_F_SACK_PERM | CT_TCP_F_BE_LIBERAL;
		}
		t->last_index = TCP_NONE_SET;
		reply = 0;
	}

	old = t->state;
	if (old >= TCP_CT_MAX)
		return TCPV_INVALID;
	new = tcp_transition(reply, index, old);

	switch (new) {
	case sSS:
		if (old < sTW)
			break;
		/* A closed connection (FIN seen, or this side's RST last) reopens. */
		if (((t->side[0].flags | t->side[1].flags) & CT_TCP_F_CLOSE_INIT) ||
		    (t->last_dir == reply && t->last_index == TCP_RST_SET))
			return TCPV_REOPEN;
		/* fallthrough */
	case sIG:
		if (index == TCP_SYNACK_SET && t->last_index == TCP_SYN_SET &&
		    t->last_dir != reply && pi->tcp_ack == t->last_end) {
			/* A SYN/ACK to a SYN we ignored: get in sync from it. */
			struct ct_tcp_side *ls = &t->side[t->last_dir & 1];

			old = sSS;
			new = sSR;
			ls->td_end = ls->td_maxend = t->last_end;
			ls->td_maxwin = t->last_win ? t->last_win : 1;
			ls->td_scale = t->last_wscale;
			t->last_flags &= ~CT_TCP_LF_CHALLENGE_ACK;
			ls->flags = t->last_flags;
			__builtin_memset(&t->side[reply & 1], 0, sizeof(t->side[0]));
			break;
		}
		t->last_index = index;
		t->last_dir = reply;
		t->last_seq = seq;
		t->last_end = end;
		t->last_win = pi->tcp_win;
		/* A reply ACK to our SYN may be a challenge ACK (RFC 5961): a
		 * RST carrying its ack number then closes the connection. */
		if (index == TCP_ACK_SET && reply && old == sSS)
			t->last_ack = pi->tcp_ack;
		if (index == TCP_SYN_SET && !reply) {
			t->last_flags = 0;
			t->last_wscale = 0;
			if (pi->tcp_wscale != 0xff) {
				t->last_flags |= CT_TCP_F_WINDOW_SCALE;
				t->last_wscale = pi->tcp_wscale;
			}
			if (pi->tcp_sackok)
				t->last_flags |= CT_TCP_F_SACK_PERM;
			if (old == sLA)
				t->last_flags |= CT_TCP_LF_CHALLENGE_ACK;
		}
		return TCPV_IGNORE;
	case sIV:
		return TCPV_INVALID;
	case sTW:
		/* An RFC 5961 challenge ACK does not ack the last FIN. */
		if (old == sLA && index == TCP_ACK_SET && t->last_dir != reply &&
		    t->last_index == TCP_SYN_SET && (t->last_flags & CT_TCP_LF_CHALLENGE_ACK)) {
			t->last_flags &= ~CT_TCP_LF_CHALLENGE_ACK;
			return TCPV_IGNORE;
		}
		break;
	case sS2:
		t->last_flags |= CT_TCP_LF_SIMUL_OPEN;
		break;
	case sSR:
		if (reply && index == TCP_ACK_SET && (t->last_flags & CT_TCP_LF_SIMUL_OPEN))
			new = sES;
		break;
	case sCL:
		if (index != TCP_RST_SET)
			break;
		if (old == sFW || old == sLA || old == sTW || old == sCL || old == sCW)
			goto in_window; /* closing anyway: no checks */
		if ((t->side[(!reply) & 1].flags & CT_TCP_F_MAXACK_SET) && t->last_index != TCP_SYN_SET) {
			if (seq == 0 && old != sES)
				break;
			if (seq_before(seq, t->side[(!reply) & 1].td_maxack))
				return TCPV_INVALID; /* invalid RST */
			if (old != sES || seq == t->side[(!reply) & 1].td_maxack)
				break;
			if (t->last_index == TCP_ACK_SET && t->last_dir == reply && seq == t->last_end)
				break; /* part of a train */
			new = old; /* inexact: keep the state, a challenge ACK may follow */
		}
		if ((((opts & TP_SEENREPLY) && t->last_index == TCP_SYN_SET) ||
		     (!(opts & TP_ASSURED) && t->last_index == TCP_ACK_SET)) &&
		    pi->tcp_ack == t->last_end)
			goto in_window; /* RST to a SYN or ACK we let through */
		if (old == sSS && t->last_index == TCP_ACK_SET && t->last_dir == 1 &&
		    seq == t->last_ack)
			goto in_window; /* RST answering a challenge ACK */
		break;
	}

	v = tcp_in_window(t, reply, index, pi, !!(opts & TP_LIBERAL));
	if (v != TCPV_ACCEPT)
		return v;
in_window:
	t->last_index = index;
	t->last_dir = reply;
	t->state = new;
	if (old != new && new == sFW)
		t->side[reply & 1].flags |= CT_TCP_F_CLOSE_INIT;
	/* A connection whose only answer is a RST is gone at once. */
	if ((opts & TP_ENTRY) && !(opts & TP_SEENREPLY) && (pi->tcp_flags & TH_RST))
		return TCPV_KILL;
	return TCPV_ACCEPT;
}

/*
 * The common segment of an established connection, an ACK without SYN,
 * FIN or RST (PSH, URG, ECE, CWR as they come: tcp_flags_valid() accepts
 * them all) in the window, as tcp_packet() would take it: ESTABLISHED stays
 * (both directions), no option, window-scale or state change, and
 * tcp_in_window()'s tests pass (all four), so only its update runs.
 * Returns 1 when it took the segment (TCPV_ACCEPT), or 0, having written
 * nothing, when tcp_packet() must: another state or flag, a side not set
 * up yet, a test failing (what fails is for tcp_packet to classify).
 */
static __always_inline int tcp_fast_ack(struct ct_tcp *t, const struct pkt_info *pi, int reply)
{
	struct ct_tcp_side *sender = &t->side[reply & 1], *receiver = &t->side[(!reply) & 1];
	__u32 seq = pi->tcp_seq, end = seq + pi->tcp_len, ack = pi->tcp_ack, sack = ack;

	if (t->state != sES || (pi->tcp_flags & (TH_SYN | TH_FIN | TH_RST | TH_ACK)) != TH_ACK ||
	    !sender->td_maxwin)
		return 0;
	if ((receiver->flags & CT_TCP_F_SACK_PERM) && seq_after(pi->tcp_sack, sack))
		sack = pi->tcp_sack;
	if (!tcp_seq_ok(sender, seq) || !tcp_ack_ok(receiver, sack) ||
	    !tcp_in_recv_win(sender, receiver, end) || !tcp_ack_recent(sender, receiver, sack))
		return 0;
	tcp_window_update(t, sender, receiver, reply, TCP_ACK_SET, pi, seq, end, ack, sack);
	t->last_index = TCP_ACK_SET;
	t->last_dir = reply;
	return 1;
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
#define CT_TRIES 32

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

/*
 * Own e: take its seq from even to odd. Returns the odd seq (pass it to
 * ct_release), or 0 when CT_TRIES attempts found it owned (counted).
 *
 * Global, verified once: inlined, each of its eight call sites in
 * ct_execute multiplied the verifier's work by its CT_TRIES iterations,
 * and some kernels' verifiers gave up at 1,000,000 instructions. A call
 * costs the owner ~1 ns (docs/performance.md).
 */
__noinline __u64 ct_own(struct ct_entry *e)
{
	__u64 seq;
	__u32 i;

	if (!e)
		return 0;
	for (i = 0; i < CT_TRIES; i++) {
		seq = *(volatile __u64 *)&e->seq;
		if (seq & 1)
			continue; /* another CPU owns it */
		if (__sync_val_compare_and_swap(&e->seq, seq, seq + 1) == seq)
			return seq + 1;
	}
	/* Lost CT_TRIES races in a row. In softirq an owner holds the entry
	 * for a few hundred instructions, so this takes a preempted owner
	 * (possible in BPF_PROG_TEST_RUN) or a pathological storm. */
	count(CNT_CT_RACE);
	return 0;
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

/*
 * Remove the connection ref names under k. Only one caller can: the one
 * that, owning the entry, finds ref's gen there and moves it on (from
 * then on every reference to the slot is stale). That caller deletes the
 * key -- no one else can, and no one can add k again while it is there
 * -- takes the connection off the counts and frees the slot. Returns 0 if
 * this call removed it.
 */
static __always_inline int ct_delete_ref(struct ct_key *k, const struct ct_ref *ref)
{
	__u32 slot = ref->slot;
	struct ct_entry *e = bpf_map_lookup_elem(&ct_slots, &slot);
	__u16 zone = k->zone;
	__u64 seq;

	if (!e)
		return -1;
	seq = ct_owned(e, ref->gen);
	if (!seq)
		return -1;
	e->gen++;
	ct_release(e, seq);
	bpf_map_delete_elem(&conntrack, k);
	ct_count_add(zone, -1);
	ct_slot_give(slot);
	return 0;
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
	err = bpf_map_update_elem(&conntrack, k, &ref, BPF_NOEXIST);
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

/*
 * Create the entry for a new, valid connection (ct(commit)). Refused
 * (the packet stays +new, uncommitted, as in OVS's userspace conntrack)
 * when its zone's limit or maxconns is reached, or the table is full.
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
	ne->bytes[CT_DIR_ORIG] = pi->len;
	ne->expires_ns = now + ct_timeout_ns(res->key.proto, &ne->tcp, pi->tcp_flags & TH_RST,
					     ne->flags, 0, zone);

	why = ct_reserve(zone);
	if (why && ct_sweep(now)) /* expired connections may be holding the places */
		why = ct_reserve(zone);
	if (why) {
		count(why);
		return;
	}
	err = ct_insert(k, ne, &res->ref);
	if (err == 0) {
		res->has_entry = 1;
		return;
	}
	ct_count_add(zone, -1);
	/* EEXIST: another CPU committed it first; EBUSY: counted as a race */
	if (err != -EEXIST && err != -EBUSY)
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
	/* The quoted packet went orig-wards: the error goes reply-wards. */
	res->dir = (inner_is_a == !!(e->flags & CT_E_A_IS_ORIG)) ? CT_DIR_REPLY : CT_DIR_ORIG;
	res->has_entry = 1;
	res->ref = ref;
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	res->ct_state = CS_TRK | CS_REL | (res->dir == CT_DIR_REPLY ? CS_RPL : 0);
	return 0;
}

/* An existing connection's TCP update, atomic as above. Returns TCPV_*,
 * or TCPV_GONE when the connection went before it could be owned. The
 * state machine works on the entry's tracking in place, as the kernel's
 * does; flags, expiry and counters are written only for accept and
 * ignore. */
static __always_inline int tcp_update(struct ct_entry *e, __u32 gen, struct ct_result *res,
				      const struct pkt_info *pi, __u32 opts,
				      __u32 zone, __u64 now, int dry, const int fast)
{
	__u64 seq;
	__u8 ef, old;
	int v;

	/* Not owned after CT_TRIES tries: passing the packet without
	 * recording it would desynchronize the tracking from what the
	 * endpoints saw, so it is invalid: dropped by the usual flows, and
	 * TCP sends it again. */
	seq = ct_own(e);
	if (!seq)
		return TCPV_INVALID;
	if (e->gen != gen) {
		ct_release(e, seq);
		return TCPV_GONE;
	}
	ef = e->flags;
	old = e->tcp.state;
	if (fast && tcp_fast_ack(&e->tcp, pi, res->dir == CT_DIR_REPLY))
		v = TCPV_ACCEPT;
	else
		v = tcp_packet(&e->tcp, pi, opts | TP_ENTRY |
			       (res->dir == CT_DIR_REPLY ? TP_REPLY : 0) |
			       ((ef & CT_E_SEEN_REPLY) ? TP_SEENREPLY : 0) |
			       ((ef & CT_E_ASSURED) ? TP_ASSURED : 0));
	if (v == TCPV_ACCEPT || v == TCPV_IGNORE) {
		if (v == TCPV_ACCEPT && (ef & CT_E_SEEN_REPLY) && e->tcp.state == sES &&
		    (old == sSR || old == sES))
			ef |= CT_E_ASSURED;
		if (res->dir == CT_DIR_REPLY)
			ef |= CT_E_SEEN_REPLY;
		/* As the kernel: a packet the tracker ignores refreshes
		 * nothing; the timeout sees the flags as they were
		 * before the packet. */
		if (v == TCPV_ACCEPT)
			e->expires_ns = now + ct_timeout_ns(IPPROTO_TCP, &e->tcp,
							    pi->tcp_flags & TH_RST, e->flags,
							    now - e->start_ns, zone);
		e->flags = ef;
		if (!dry) { /* a dry run works on a copy, and counts nothing */
			e->packets[res->dir & 1]++;
			e->bytes[res->dir & 1] += pi->len;
		}
	}
	ct_release(e, seq);
	return v; /* invalid, kill, reopen: the caller acts */
}

/* Another protocol's update of an existing connection: SEEN_REPLY (the
 * only flag these set), expiry and counters, owned as TCP's. Returns 0,
 * or -1 when the connection went before it could be owned. */
static __always_inline int ct_touch(struct ct_entry *e, __u32 gen, __u8 proto, __u8 dir,
				    __u32 len, __u32 zone, __u64 now, int dry)
{
	__u64 seq = ct_owned(e, gen);

	if (!seq)
		return -1;
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
	res->mark = e->mark;
	__builtin_memcpy(res->labels, e->labels, 16);
	if (res->dir == CT_DIR_REPLY)
		res->ct_state = CS_TRK | CS_EST | CS_RPL;
	else
		res->ct_state = CS_TRK | ((e->flags & CT_E_SEEN_REPLY) ? CS_EST : CS_NEW);
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
		return res->ct_state;
	}

	/* The working copies (tcp, entry) are written before they are read. */
	__builtin_memset(res, 0, __builtin_offsetof(struct ct_result, tcp));
	res->done = 1;
	res->zone = zone;
	if (pi->icmp_error && (key->nw_proto == IPPROTO_ICMP || key->nw_proto == IPPROTO_ICMPV6)) {
		if (ct_related(key, pi, res, zone, &k))
			goto invalid;
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
	if (e)
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
		v = e ? tcp_update(e, ref.gen, res, pi, opts, zone, now, dry, 0) :
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
	    ct_touch(e, ref.gen, proto, res->dir, pi->len, zone, now, dry)) {
		/* It went meanwhile: the packet is a new connection's. */
		if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) &&
		    icmp_reply_type(pi->icmp_type, proto == IPPROTO_ICMPV6) < 0)
			goto invalid;
		e = NULL;
		res->dir = CT_DIR_ORIG;
	}

	if (!e) {
		res->ct_state = CS_TRK | CS_NEW;
		if (flags & CT_COMMIT)
			ct_commit(res, &k, pi, now, flags);
		return res->ct_state;
	}

	/* An existing connection: updated above. */
	/* Killed: gone from the table; the packet still counts as this connection's. */
	res->has_entry = !killed;
	res->ref = ref;
	ct_result_of(res, e);
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
 * ct(force) (the cache stores no such walk).
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
	v = tcp_update(e, ref.gen, res, pi, (flags & CT_LIBERAL) ? TP_LIBERAL : 0, zone, now, 0, 1);
	if (v == TCPV_GONE || v == TCPV_REOPEN)
		return 0;
	res->done = 1;
	res->zone = zone;
	res->ref = ref;
	if (v == TCPV_ACCEPT || v == TCPV_IGNORE) {
		res->has_entry = 1;
		ct_result_of(res, e);
		return 1;
	}
	ct_execute_ref_end(key, pi, res, zone, v);
	return 1;
}
