/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Conntrack's TCP state machine, as nf_conntrack_proto_tcp.c of Linux
 * 6.1+ has it: the state transition table, flag checks, window tracking
 * (tcp_in_window with its accept/ignore/invalid outcomes), RST and
 * challenge-ACK handling, reopen rules (tcp_packet), and the fast path a
 * cache hit's in-window ACK takes (tcp_fast_ack). It works on a struct
 * ct_tcp and the packet; the table (ct_table.h) and ct() (conntrack.h)
 * decide which tracking it works on and what becomes of its verdict.
 */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "context.h"
#include "maps.h"

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
	TCPV_DECLINED, /* tcp_update for XDP: not the expected result, nothing written */
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
	/* As the kernel: a SYN in SYN_SENT before any reply (the client's
	 * retransmitted, or the server's in a simultaneous open) is tracked
	 * but renews no timeout ("do not renew timeout on SYN retransmit")
	 * and, returning before nf_ct_refresh_acct, is not counted. */
	if ((opts & TP_ENTRY) && !(opts & TP_SEENREPLY) && index == TCP_SYN_SET && old == sSS)
		return TCPV_IGNORE;
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
