/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Rewrite: the actions that change the packet (mod_dl_*, mod_nw_*,
 * mod_tp_*, mod_nw_tos, TTL, VLAN tags). Each also updates the flow key,
 * so later lookups (resubmit, recirculation) see the packet as it is now.
 *
 * Offsets are found again from the packet each time: a VLAN push or pop
 * moves the L3 header. Checksums are updated incrementally with the
 * kernel's csum helpers (L4 over the pseudo-header for address changes).
 * Helpers that change the packet invalidate packet pointers; nothing here
 * keeps one across a helper call.
 */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "context.h"

/* L3 header offset, or -1 when the packet's type is not `want` (or it is too short). */
static __always_inline int l3_offset(struct __sk_buff *skb, __be16 want)
{
	__be16 proto;
	int off = 12;

	if (bpf_skb_load_bytes(skb, off, &proto, 2))
		return -1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		off += 4; /* an in-band tag (tags the driver took out do not count) */
		if (bpf_skb_load_bytes(skb, off, &proto, 2))
			return -1;
	}
	if (proto != want)
		return -1;
	return off + 2;
}

static __always_inline int ipv4_offset(struct __sk_buff *skb)
{
	return l3_offset(skb, bpf_htons(ETH_P_IP));
}

/* L4 offset of an IPv4 packet whose L4 header is present (not a later fragment). */
static __always_inline int l4_offset(struct __sk_buff *skb, int l3)
{
	__u8 vihl;
	__be16 frag;

	if (bpf_skb_load_bytes(skb, l3, &vihl, 1) ||
	    bpf_skb_load_bytes(skb, l3 + 6, &frag, 2))
		return -1;
	if (frag & bpf_htons(0x1fff))
		return -1;
	return l3 + (vihl & 0x0f) * 4;
}

/* Where the TCP/UDP checksum is, and the flags its updates need. */
static __always_inline int l4_csum(__u8 proto, int l4, __u64 *flags)
{
	if (proto == IPPROTO_TCP) {
		*flags = 0;
		return l4 + 16;
	}
	if (proto == IPPROTO_UDP) {
		*flags = BPF_F_MARK_MANGLED_0; /* a zero UDP checksum stays zero */
		return l4 + 6;
	}
	return -1;
}

/*
 * L4 offset of an IPv6 packet (at l3) whose L4 header parse found, after
 * any extension headers: their length is the payload length less pi.l4_len
 * (which parse counts from the L4 header on). Parse does not store the
 * offset: one more live value there made the pipeline's stack frame a slot
 * too big for Linux 6.1's 512-byte limit on the whole call chain.
 */
static __always_inline int ipv6_l4_offset(struct __sk_buff *skb, const struct pkt_ctx *c, int l3)
{
	__be16 plen;

	if (!c->pi.is_ipv6 || !c->pi.l4_ok || (c->key.nw_frag & FRAG_LATER) ||
	    bpf_skb_load_bytes(skb, l3 + 4, &plen, 2) || bpf_ntohs(plen) < c->pi.l4_len)
		return -1;
	return l3 + 40 + (bpf_ntohs(plen) - c->pi.l4_len);
}

static __always_inline void set_dl(struct __sk_buff *skb, struct pkt_ctx *c,
				   const struct action *a)
{
	__u8 mac[6] = { a->aux >> 8, a->aux, a->arg >> 24, a->arg >> 16, a->arg >> 8, a->arg };

	if (a->flags & SET_DST) {
		bpf_skb_store_bytes(skb, 0, mac, 6, 0);
		__builtin_memcpy(c->key.dl_dst, mac, 6);
	} else {
		bpf_skb_store_bytes(skb, 6, mac, 6, 0);
		__builtin_memcpy(c->key.dl_src, mac, 6);
	}
}

static __always_inline void set_nw(struct __sk_buff *skb, struct pkt_ctx *c,
				   const struct action *a)
{
	int l3 = ipv4_offset(skb), off, l4, cs;
	__be32 old, new = bpf_htonl(a->arg);
	__u64 fl;

	if (l3 < 0)
		return;
	off = l3 + ((a->flags & SET_DST) ? 16 : 12);
	if (bpf_skb_load_bytes(skb, off, &old, 4))
		return;
	l4 = l4_offset(skb, l3);
	cs = l4 < 0 ? -1 : l4_csum(c->key.nw_proto, l4, &fl);
	if (cs >= 0)
		bpf_l4_csum_replace(skb, cs, old, new, fl | BPF_F_PSEUDO_HDR | 4);
	bpf_l3_csum_replace(skb, l3 + 10, old, new, 4);
	bpf_skb_store_bytes(skb, off, &new, 4, 0);
	if (a->flags & SET_DST)
		c->key.nw_dst = new;
	else
		c->key.nw_src = new;
}

static __always_inline void set_tp(struct __sk_buff *skb, struct pkt_ctx *c,
				   const struct action *a)
{
	int l3 = ipv4_offset(skb), l4, cs, off;
	__be16 old, new = bpf_htons(a->aux);
	__u64 fl;

	if (l3 >= 0)
		l4 = l4_offset(skb, l3);
	else if ((l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6))) >= 0)
		l4 = ipv6_l4_offset(skb, c, l3);
	else
		return;
	if (l4 < 0)
		return;
	cs = l4_csum(c->key.nw_proto, l4, &fl);
	if (cs < 0)
		return; /* ports only in TCP and UDP */
	off = l4 + ((a->flags & SET_DST) ? 2 : 0);
	if (bpf_skb_load_bytes(skb, off, &old, 2))
		return;
	bpf_l4_csum_replace(skb, cs, old, new, fl | 2);
	bpf_skb_store_bytes(skb, off, &new, 2, 0);
	if (a->flags & SET_DST)
		c->key.tp_dst = new;
	else
		c->key.tp_src = new;
}

/* Rewrite one byte of the IPv4 header (TOS at 1, TTL at 8) and fix the
 * header checksum over the 16-bit word that holds it. */
static __always_inline void set_ip_byte(struct __sk_buff *skb, int l3, int at, __u8 v)
{
	__be16 old, new;
	int word = l3 + (at & ~1);

	if (bpf_skb_load_bytes(skb, word, &old, 2))
		return;
	new = old;
	((__u8 *)&new)[at & 1] = v;
	bpf_l3_csum_replace(skb, l3 + 10, old, new, 2);
	bpf_skb_store_bytes(skb, word, &new, 2, 0);
}

/* mod_nw_tos, set_field to ip_dscp: the DSCP bits of the IPv4 TOS byte
 * or of the IPv6 traffic class (bits 4-11 of the header, no checksum). */
static __always_inline void set_tos(struct __sk_buff *skb, struct pkt_ctx *c, __u8 dscp)
{
	int l3 = ipv4_offset(skb);
	__be16 w;
	__u16 h;
	__u8 tos;

	if (l3 >= 0) {
		if (bpf_skb_load_bytes(skb, l3 + 1, &tos, 1))
			return;
		tos = (tos & 0x03) | (dscp & 0xfc);
		set_ip_byte(skb, l3, 1, tos);
		c->key.nw_tos = tos;
		return;
	}
	l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6));
	if (l3 < 0 || bpf_skb_load_bytes(skb, l3, &w, 2))
		return;
	h = bpf_ntohs(w);
	tos = ((h >> 4) & 0x03) | (dscp & 0xfc);
	w = bpf_htons((h & 0xf00f) | ((__u16)tos << 4));
	bpf_skb_store_bytes(skb, l3, &w, 2, 0);
	c->key.nw_tos = tos;
}

/* mod_nw_ttl, dec_ttl: the IPv4 TTL (with the header checksum) or the
 * IPv6 hop limit (at 7, no checksum). */
static __always_inline void set_ttl(struct __sk_buff *skb, struct pkt_ctx *c,
				    int dec, __u8 v)
{
	int l3 = ipv4_offset(skb), v6 = 0;
	__u8 ttl;

	if (l3 < 0) {
		l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6));
		v6 = 1;
	}
	if (l3 < 0 || bpf_skb_load_bytes(skb, l3 + (v6 ? 7 : 8), &ttl, 1))
		return;
	if (dec) {
		if (ttl <= 1) {
			c->halt = 1; /* OVS: no decrement; the packet goes no further */
			return;
		}
		v = ttl - 1;
	}
	if (v6)
		bpf_skb_store_bytes(skb, l3 + 7, &v, 1, 0);
	else
		set_ip_byte(skb, l3, 8, v);
	c->key.nw_ttl = v;
}

/* VLAN actions. bpf_skb_vlan_push leaves the new tag in the skb's
 * metadata (as a NIC would), bpf_skb_vlan_pop removes the outer tag
 * wherever it is. */
static __always_inline void vlan(struct __sk_buff *skb, struct pkt_ctx *c,
				 const struct action *a)
{
	__u16 tci = bpf_ntohs(c->key.vlan_tci);
	int tagged = tci & VLAN_CFI;

	switch (a->flags) {
	case VLAN_SET_VID:
		tci = tagged ? (tci & 0xf000) | (a->aux & 0x0fff) : VLAN_CFI | (a->aux & 0x0fff);
		break;
	case VLAN_SET_PCP:
		tci = tagged ? (tci & 0x1fff) | ((a->aux & 7) << 13) : VLAN_CFI | ((a->aux & 7) << 13);
		break;
	case VLAN_STRIP:
		if (tagged && !bpf_skb_vlan_pop(skb))
			c->key.vlan_tci = 0;
		return;
	case VLAN_PUSH:
		/* The old tag (if any) moves into the packet; the new one copies it. */
		if (!bpf_skb_vlan_push(skb, bpf_htons(a->aux), tagged ? (tci & ~VLAN_CFI) : 0))
			c->key.vlan_tci = bpf_htons(tagged ? tci : VLAN_CFI);
		return;
	default:
		return;
	}
	if (tagged && bpf_skb_vlan_pop(skb))
		return;
	if (!bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), tci & ~VLAN_CFI))
		c->key.vlan_tci = bpf_htons(tci);
}

/*
 * set_field:V[/M]->pkt_mark, load:V->NXM_NX_PKT_MARK[a..b]: the key (later
 * lookups match it) and skb->mark (what the kernel sees once the packet
 * leaves; outputs before this action cloned the packet with the old mark).
 * nbits 0 only copies the key's mark, which a move into it changed.
 */
static __always_inline void set_mark(struct __sk_buff *skb, struct pkt_ctx *c,
				     const struct action *a)
{
	__u32 ofs = a->aux & 31;
	__u32 m = (a->flags >= 32 ? 0xffffffff : (1U << a->flags) - 1) << ofs;
	__u32 v = (bpf_ntohl(c->key.pkt_mark) & ~m) | ((a->arg << ofs) & m);

	c->key.pkt_mark = bpf_htonl(v);
	skb->mark = v;
}

/*
 * set_field to ipv6_src, ipv6_dst, ipv6_label: one 32-bit word of the
 * header per action (the loader splits wider loads). Addresses are in the
 * TCP/UDP/ICMPv6 pseudo-header, so their checksum follows; the label is
 * in none. The L4 header is found after the extension headers
 * (ipv6_l4_offset).
 */
static __always_inline void set_ip6(struct __sk_buff *skb, struct pkt_ctx *c,
				    const struct action *a)
{
	int l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6)), off, cs = -1;
	__u32 word = IP6_AUX_WORD(a->aux), nbits = IP6_AUX_NBITS(a->aux);
	__u32 m = (nbits >= 32 ? 0xffffffff : (1U << nbits) - 1) << IP6_AUX_OFS(a->aux);
	__be32 old, new;
	__u64 fl = 0;
	int l4;

	if (l3 < 0)
		return;
	if (a->flags & SET_LABEL) {
		off = l3;        /* version, traffic class, label */
		m &= 0x000fffff;
	} else {
		off = l3 + ((a->flags & SET_DST) ? 24 : 8) + word * 4;
	}
	if (bpf_skb_load_bytes(skb, off, &old, 4))
		return;
	new = bpf_htonl((bpf_ntohl(old) & ~m) | (a->arg & m));
	if (!(a->flags & SET_LABEL) && (l4 = ipv6_l4_offset(skb, c, l3)) >= 0) {
		switch (c->key.nw_proto) {
		case IPPROTO_TCP:
			cs = l4 + 16;
			break;
		case IPPROTO_UDP:
			cs = l4 + 6;
			fl = BPF_F_MARK_MANGLED_0;
			break;
		case IPPROTO_ICMPV6:
			cs = l4 + 2;
			break;
		}
	}
	if (cs >= 0)
		bpf_l4_csum_replace(skb, cs, old, new, fl | BPF_F_PSEUDO_HDR | 4);
	bpf_skb_store_bytes(skb, off, &new, 4, 0);
	if (a->flags & SET_LABEL)
		c->key.ipv6_label = bpf_htonl(bpf_ntohl(new) & 0x000fffff);
	else if (a->flags & SET_DST)
		c->key.ipv6_dst[word] = new;
	else
		c->key.ipv6_src[word] = new;
}

/* The ICMP echo identifier (ct(nat) translates it as a port): the ICMPv4
 * checksum has no pseudo-header, so only the two bytes count. */
static __always_inline void set_icmp_id(struct __sk_buff *skb, struct pkt_ctx *c, __be16 id)
{
	int l3, l4;
	__be16 old;

	/* ICMPv6's checksum covers a pseudo-header, but not the identifier's
	 * part of it: a plain replace there too. */
	if (c->pi.is_ipv6) {
		l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6));
		l4 = l3 < 0 ? -1 : ipv6_l4_offset(skb, c, l3);
	} else {
		l3 = ipv4_offset(skb);
		l4 = l3 < 0 ? -1 : l4_offset(skb, l3);
	}
	if (l4 < 0 || bpf_skb_load_bytes(skb, l4 + 4, &old, 2))
		return;
	bpf_l4_csum_replace(skb, l4 + 2, old, id, 2);
	bpf_skb_store_bytes(skb, l4 + 4, &id, 2, 0);
	c->pi.icmp_id = id;
}

/* Fold a change of a value in an ICMP error's payload into its checksum
 * (ICMPv4: no pseudo-header), and store it. */
static __always_inline void icmp_payload_store(struct __sk_buff *skb, int icmp, int off,
					       const void *old, const void *new, int size)
{
	if (size == 4)
		bpf_l4_csum_replace(skb, icmp + 2, *(const __u32 *)old, *(const __u32 *)new, 4);
	else
		bpf_l4_csum_replace(skb, icmp + 2, *(const __u16 *)old, *(const __u16 *)new, 2);
	bpf_skb_store_bytes(skb, off, new, size, 0);
}

/*
 * The quoted packet's side of an ICMP error about a NATed connection:
 * its address at aoff (nwords 32-bit words) and, for TCP and UDP, its
 * port at poff become the translation's, with the quoted L4 checksum (a
 * UDP one of 0 stays 0; TCP's only when the whole header is quoted, as
 * nf_nat) -- plain replaces there: it is payload here, not this skb's
 * checksum -- and each change folded into the ICMP checksum at icmp + 2.
 */
static __always_inline void nat_quoted(struct __sk_buff *skb, struct pkt_ctx *c, int icmp,
				       __u8 proto, int in4, int aoff, int poff, const int nwords)
{
	struct ct_result *r = &c->ct;
	__be16 old_p, new_p = r->nat_port, old_c, new_c;
	__be32 old_a;
	int coff = -1, i;

	if (proto == IPPROTO_UDP)
		coff = in4 + 6;
	else if (proto == IPPROTO_TCP && in4 + 20 <= (int)skb->len)
		coff = in4 + 16;
	if (coff >= 0 && bpf_skb_load_bytes(skb, coff, &old_c, 2))
		coff = -1;
	if (proto == IPPROTO_UDP && coff >= 0 && old_c == 0)
		coff = -1;
	for (i = 0; i < nwords; i++) {
		if (bpf_skb_load_bytes(skb, aoff + 4 * i, &old_a, 4))
			return;
		icmp_payload_store(skb, icmp, aoff + 4 * i, &old_a, &r->nat_addr[i & 3], 4);
		if (coff >= 0)
			bpf_l3_csum_replace(skb, coff, old_a, r->nat_addr[i & 3], 4);
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return;
	if (bpf_skb_load_bytes(skb, poff, &old_p, 2))
		return;
	icmp_payload_store(skb, icmp, poff, &old_p, &new_p, 2);
	if (coff < 0)
		return;
	bpf_l3_csum_replace(skb, coff, old_p, new_p, 2);
	if (bpf_skb_load_bytes(skb, coff, &new_c, 2))
		return;
	if (proto == IPPROTO_UDP && new_c == 0) {
		new_c = 0xffff; /* CSUM_MANGLED_0 */
		bpf_skb_store_bytes(skb, coff, &new_c, 2, 0);
	}
	bpf_l4_csum_replace(skb, icmp + 2, old_c, new_c, 2);
}

/*
 * An ICMP or ICMPv6 error about a NATed connection
 * (nf_nat_icmp_reply_translation): the outer header takes the
 * translation a packet of the error's direction takes (its address
 * only), and the quoted packet the same change on its other side
 * (nat_quoted); IPv4's quoted header checksum follows its address.
 * ICMPv6's checksum covers the outer addresses too: set_ip6 updates it.
 */
static __always_inline void set_nat_icmp_error(struct __sk_buff *skb, struct pkt_ctx *c)
{
	struct ct_result *r = &c->ct;
	int l3, icmp, in3, in4, dst = r->nat_op == NAT_R_DST, i;
	__be32 old_a, new_a = r->nat_addr[0];
	__be16 old_ic, new_ic;
	struct action x = {};
	__u8 vihl, proto;

	x.flags = dst ? SET_DST : SET_SRC;
	if (c->pi.is_ipv6) {
		l3 = l3_offset(skb, bpf_htons(ETH_P_IPV6));
		icmp = l3 < 0 ? -1 : ipv6_l4_offset(skb, c, l3);
		if (icmp < 0)
			return;
		in3 = icmp + 8;
		if (bpf_skb_load_bytes(skb, in3 + 6, &proto, 1))
			return;
		for (i = 0; i < 4; i++) {
			x.aux = IP6_AUX(i, 0, 32);
			x.arg = bpf_ntohl(r->nat_addr[i & 3]);
			set_ip6(skb, c, &x);
		}
		/* The quoted packet without extension headers (as parse reads it). */
		in4 = in3 + 40;
		nat_quoted(skb, c, icmp, proto, in4, in3 + (dst ? 8 : 24), in4 + (dst ? 0 : 2), 4);
		return;
	}
	l3 = ipv4_offset(skb);
	icmp = l3 < 0 ? -1 : l4_offset(skb, l3);
	if (icmp < 0)
		return;
	in3 = icmp + 8;
	if (bpf_skb_load_bytes(skb, in3, &vihl, 1) || bpf_skb_load_bytes(skb, in3 + 9, &proto, 1))
		return;
	in4 = in3 + (vihl & 0x0f) * 4;
	x.arg = bpf_ntohl(new_a);
	set_nw(skb, c, &x);
	/* The quoted packet went the other way: its other side changes. */
	if (bpf_skb_load_bytes(skb, in3 + (dst ? 12 : 16), &old_a, 4) ||
	    bpf_skb_load_bytes(skb, in3 + 10, &old_ic, 2))
		return;
	nat_quoted(skb, c, icmp, proto, in4, in3 + (dst ? 12 : 16), in4 + (dst ? 0 : 2), 1);
	bpf_l3_csum_replace(skb, in3 + 10, old_a, new_a, 4);
	if (bpf_skb_load_bytes(skb, in3 + 10, &new_ic, 2))
		return;
	bpf_l4_csum_replace(skb, icmp + 2, old_ic, new_ic, 2);
}

/*
 * ACT_NAT: the translation conntrack found for the packet (ct_nat.h,
 * ct_nat_op): its source or destination address, then port (ICMP: the
 * echo identifier), each with its checksums as nf_nat fixes them (the L4
 * checksum's pseudo-header for the address; a UDP checksum of 0 stays 0).
 * Then the packet is +snat or +dnat, and the zone's translation is done;
 * exec_action forks the ct(table=N)'s copy after it (actions.h).
 * related: the caller may meet an ICMP error (the walk; the cache stores
 * none, so its replay leaves that code out).
 */
static __always_inline void set_nat(struct __sk_buff *skb, struct pkt_ctx *c, const int related)
{
	struct ct_result *r = &c->ct;
	struct action x = {};
	__u32 bit;
	int i;

	if (!r->nat_op || r->natted)
		return;
	if (related && r->nat_related) {
		set_nat_icmp_error(skb, c);
		goto done;
	}
	x.flags = r->nat_op == NAT_R_DST ? SET_DST : SET_SRC;
	if (c->pi.is_ipv6) {
		/* A word at a time, each with the L4 checksum (set_ip6). */
		for (i = 0; i < 4; i++) {
			x.aux = IP6_AUX(i, 0, 32);
			x.arg = bpf_ntohl(r->nat_addr[i & 3]);
			set_ip6(skb, c, &x);
		}
	} else {
		x.arg = bpf_ntohl(r->nat_addr[0]);
		set_nw(skb, c, &x);
	}
	if (c->key.nw_proto == IPPROTO_ICMP || c->key.nw_proto == IPPROTO_ICMPV6) {
		set_icmp_id(skb, c, r->nat_port);
	} else {
		x.aux = bpf_ntohs(r->nat_port);
		set_tp(skb, c, &x);
	}
done:
	r->natted = 1;
	bit = r->nat_bit;
	r->ct_state |= bit;
}
