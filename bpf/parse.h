/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parse: Ethernet, 802.1Q, ARP, IPv4, IPv6 (with extension headers),
 * TCP/UDP/ICMP/ICMPv6 -> struct flow_key.
 *
 * One parse_* function per header. Each takes the cursor, checks the whole
 * header lies before data_end, fills its part of the key and advances.
 * A header that is missing or short leaves its fields (and every later
 * layer's) zero, as Open vSwitch's flow extraction does; pkt_info says how
 * far parsing got so conntrack can call such packets invalid.
 */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.h"
#include "context.h"

/* How much of the packet's head we want linear before parsing. */
#define PARSE_PULL_LEN 128

struct cursor {
	void *pos;
	void *end;
};

/* The first 8 bytes of an ICMP message (linux/icmp.h pulls in libc headers). */
struct icmp_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;       /* echo and other queries */
	__be16 sequence;
};

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Ethernet/IPv4 ARP, the only kind OVS parses into arp_* fields. */
struct arp_eth_ipv4 {
	__be16 hrd;
	__be16 pro;
	__u8 hln;
	__u8 pln;
	__be16 op;
	__u8 sha[6];
	__be32 spa;
	__u8 tha[6];
	__be32 tpa;
} __attribute__((packed));

#define CURSOR_HAS(c, n) ((c)->pos + (n) <= (c)->end)

/*
 * Whole key words. Right after parsing, the flow cache and the subtables
 * load the key 8 bytes at a time (emc_key, classify), and a load that spans
 * several smaller stores still in the store buffer cannot take its value
 * from them: it waits until they reach the cache (a store-forwarding stall;
 * perf found a cache hit's first key-word load its hottest instruction).
 * So the words an IPv4 or IPv6 TCP/UDP/ICMP packet fills are each written
 * by one 8-byte store: Ethernet addresses, source-address tail with type
 * and tag, IPv4 addresses, the L3/L4 word (nw_proto .. tp_dst), tcp_flags'
 * word, and ipv6_label with pkt_mark (which pipeline() sets). A byte or
 * two read back from such a store is forwarded. memcpy: one store (the key
 * is 8-aligned) that TBAA cannot reorder against the fields' own accesses.
 */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "key words are composed little-endian");

static __always_inline void key_word(void *word, __u64 v)
{
	__builtin_memcpy(__builtin_assume_aligned(word, 8), &v, 8);
}

/* 8 packet bytes in one load, whatever their alignment: the verifier
 * allows unaligned packet loads where the CPU does them. */
static __always_inline __u64 pkt_u64(const void *p)
{
	return *(const __u64 *)__builtin_assume_aligned(p, 8);
}

/* dl_src[2..5], dl_type and vlan_tci: key word 2. */
static __always_inline void key_set_eth_tail(struct flow_key *k, __u32 src_tail,
					     __be16 type, __be16 tci)
{
	key_word(&k->dl_src[2], src_tail | (__u64)type << 32 | (__u64)tci << 48);
}

/* A VLAN tag and the type behind it into key word 2, after parse_eth. */
static __always_inline void key_set_tag(struct flow_key *k, __be16 type, __be16 tci)
{
	__u32 src_tail;

	__builtin_memcpy(&src_tail, __builtin_assume_aligned(&k->dl_src[2], 8), 4);
	key_set_eth_tail(k, src_tail, type, tci);
}

/* nw_proto, nw_tos, nw_ttl, nw_frag, and no ports yet: key word 4. */
static __always_inline void key_set_l3(struct flow_key *k, __u8 proto, __u8 tos,
				       __u8 ttl, __u8 frag)
{
	key_word(&k->nw_proto, proto | (__u32)tos << 8 | (__u32)ttl << 16 | (__u32)frag << 24);
}

/* tp_src and tp_dst, as the packet has them (source first, network
 * order), into key word 4 after key_set_l3. */
static __always_inline void key_set_ports(struct flow_key *k, __u32 ports)
{
	__u32 l3;

	__builtin_memcpy(&l3, __builtin_assume_aligned(&k->nw_proto, 8), 4);
	key_word(&k->nw_proto, l3 | (__u64)ports << 32);
}

/* ipv6_label and pkt_mark: a word every flow-cache key reads (pkt_mark). */
static __always_inline void key_set_label_mark(struct flow_key *k, __be32 label, __be32 mark)
{
	key_word(&k->ipv6_label, label | (__u64)mark << 32);
}

static __always_inline int parse_eth(struct cursor *c, struct flow_key *k)
{
	struct ethhdr *eth = c->pos;
	const __u32 *from = c->pos;

	if (!CURSOR_HAS(c, sizeof(*eth)))
		return -1;
	/* Destination and source are adjacent in both: an 8-byte copy and a
	 * 4-byte one, where memcpy from a byte-aligned header makes twelve
	 * 1-byte ones. (The verifier allows unaligned packet loads where the
	 * CPU does.) */
	key_word(k->dl_dst, pkt_u64(from));
	key_set_eth_tail(k, from[2], eth->h_proto, 0);
	c->pos += sizeof(*eth);
	return 0;
}

/* An in-band 802.1Q tag (one level; QinQ outer tags are left for later). */
static __always_inline int parse_vlan(struct cursor *c, struct flow_key *k)
{
	struct vlan_hdr *vh = c->pos;

	if (k->dl_type != bpf_htons(ETH_P_8021Q))
		return 0;
	if (!CURSOR_HAS(c, sizeof(*vh)))
		return -1;
	key_set_tag(k, vh->proto, vh->tci | bpf_htons(VLAN_CFI));
	c->pos += sizeof(*vh);
	return 0;
}

static __always_inline int parse_arp(struct cursor *c, struct flow_key *k)
{
	struct arp_eth_ipv4 *arp = c->pos;

	if (!CURSOR_HAS(c, sizeof(*arp)))
		return -1;
	if (arp->hrd != bpf_htons(1) || arp->pro != bpf_htons(ETH_P_IP) ||
	    arp->hln != 6 || arp->pln != 4)
		return 0;
	/* OVS keeps arp_op in nw_proto when it fits in 8 bits. */
	if (bpf_ntohs(arp->op) <= 0xff)
		k->nw_proto = bpf_ntohs(arp->op);
	k->nw_src = arp->spa;
	k->nw_dst = arp->tpa;
	__builtin_memcpy(k->arp_sha, arp->sha, 6);
	__builtin_memcpy(k->arp_tha, arp->tha, 6);
	return 0;
}

static __always_inline int parse_ipv4(struct cursor *c, struct flow_key *k,
				      struct pkt_info *pi, __u32 avail)
{
	struct iphdr *ip = c->pos;
	__u8 frag = 0;
	__u32 hlen;

	if (!CURSOR_HAS(c, sizeof(*ip)))
		return -1;
	if (ip->version != 4 || ip->ihl < 5)
		return -1;
	hlen = ip->ihl * 4;
	/* As OVS's ipv4_sanity_check: total length within header..packet. */
	if (bpf_ntohs(ip->tot_len) < hlen || bpf_ntohs(ip->tot_len) > avail)
		return -1;
	key_word(&k->nw_src, pkt_u64(&ip->saddr)); /* and daddr, adjacent in both */
	if (ip->frag_off & bpf_htons(0x3fff)) {          /* MF or offset */
		frag = FRAG_ANY;
		if (ip->frag_off & bpf_htons(0x1fff))    /* offset != 0 */
			frag |= FRAG_LATER;
	}
	key_set_l3(k, ip->protocol, ip->tos, ip->ttl, frag);
	/* Options are skipped; bound hlen so the verifier knows the cursor stays sane. */
	if (hlen > 60 || !CURSOR_HAS(c, hlen))
		return -1;
	pi->is_ipv4 = 1;
	pi->l3_len = bpf_ntohs(ip->tot_len); /* no Ethernet padding: the kernel trims it */
	pi->l4_len = bpf_ntohs(ip->tot_len) - hlen;
	c->pos += hlen;
	return 0;
}

#define TCP_MAX_WSCALE 14

/* IPv6 extension headers OVS walks (parse_ipv6_ext_hdrs), at most this many. */
#define MAX_EXT_HDRS 6

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;   /* offset << 3 | M */
	__be32 id;
};

static __always_inline int parse_ipv6(struct cursor *c, struct flow_key *k,
				      struct pkt_info *pi, __u32 avail)
{
	struct ipv6hdr *ip6 = c->pos;
	__u8 next, frag = 0;
	void *payload;
	int i;

	if (!CURSOR_HAS(c, sizeof(*ip6)))
		return -1;
	if (ip6->version != 6)
		return -1;
	if (bpf_ntohs(ip6->payload_len) + sizeof(*ip6) > avail)
		return -1;
	/* The addresses in whole words, as the IPv4 ones (see key_word). */
	key_word(&k->ipv6_src[0], pkt_u64(&ip6->saddr.s6_addr32[0]));
	key_word(&k->ipv6_src[2], pkt_u64(&ip6->saddr.s6_addr32[2]));
	key_word(&k->ipv6_dst[0], pkt_u64(&ip6->daddr.s6_addr32[0]));
	key_word(&k->ipv6_dst[2], pkt_u64(&ip6->daddr.s6_addr32[2]));
	next = ip6->nexthdr;
	pi->l4_len = bpf_ntohs(ip6->payload_len);
	pi->l3_len = pi->l4_len + sizeof(*ip6);
	c->pos += sizeof(*ip6);
	payload = c->pos;

	/* Extension headers: a bounded walk; the verifier needs the bound. */
	for (i = 0; i < MAX_EXT_HDRS; i++) {
		__u8 *h;
		__u32 len;

		/* Verifier-driven, as after the loop (below): each turn starts
		 * from one unknown offset, so the verifier sees the same state
		 * at every turn and checks the body about once, not once per
		 * turn and header kind (Linux 7.3: ~20k instructions a turn). */
		*(volatile __u32 *)&pi->ext_len = (__u32)(c->pos - payload);
		c->pos = payload + ((*(volatile __u32 *)&pi->ext_len) & 0x3fff);
		h = c->pos;

		switch (next) {
		case IPPROTO_HOPOPTS:
		case IPPROTO_ROUTING:
		case IPPROTO_DSTOPTS:
		case IPPROTO_AH:
			if (!CURSOR_HAS(c, 8))
				return -1;
			/* AH counts 4-byte units less 2, the others 8-byte units less 1. */
			len = next == IPPROTO_AH ? (h[1] + 2) * 4 : (h[1] + 1) * 8;
			next = h[0];
			if (!CURSOR_HAS(c, len))
				return -1;
			c->pos += len;
			continue;
		case IPPROTO_FRAGMENT: {
			struct ipv6_frag_hdr *fh = c->pos;

			if (!CURSOR_HAS(c, sizeof(*fh)))
				return -1;
			next = fh->nexthdr;
			c->pos += sizeof(*fh);
			/* As OVS's miniflow_extract: an atomic fragment (no
			 * offset, no M) is not a fragment; a later one ends
			 * the walk with nw_proto 44, the fragment header's. */
			if (!fh->frag_off)
				continue;
			frag = FRAG_ANY;
			if (!(fh->frag_off & bpf_htons(0xfff8)))
				continue;
			frag |= FRAG_LATER;
			next = IPPROTO_FRAGMENT;
			break;
		}
		}
		break;
	}
	if (i == MAX_EXT_HDRS)
		return -1;
	/*
	 * Verifier-driven: each number of extension headers leaves the cursor
	 * at an offset of its own, and the verifier checked everything after
	 * (the L4 headers) once per offset: ~80k processed instructions. Read
	 * back from memory, the offset is one unknown value, bounded here,
	 * and the rest is checked once.
	 */
	*(volatile __u32 *)&pi->ext_len = (__u32)(c->pos - payload);
	c->pos = payload + ((*(volatile __u32 *)&pi->ext_len) & 0x3fff);
	/* As OVS's miniflow_extract: the label, TOS and TTL only once the
	 * extension headers parsed (a failed walk above leaves them 0). */
	key_set_label_mark(k, bpf_htonl(((__u32)(ip6->flow_lbl[0] & 0x0f) << 16) |
					((__u32)ip6->flow_lbl[1] << 8) | ip6->flow_lbl[2]),
			   k->pkt_mark);
	key_set_l3(k, next, (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4), ip6->hop_limit, frag);
	pi->l4_len -= (__u32)(c->pos - payload);
	pi->is_ipv6 = 1;
	return 0;
}

/*
 * TCP options conntrack uses: window scale and SACK-permitted (nf_conntrack
 * tcp_options(), on SYNs) and the SACK blocks' highest right edge
 * (tcp_sack()). parse() copies the option bytes into pi->tcp_opts; this
 * walks them. At most 12 options (SYNs carry about five, SACKed ACKs
 * about eight).
 */
/* An option byte; the mask survives clang (see reg_index in actions.h). */
static __always_inline __u32 opt_at(const struct pkt_info *pi, __u32 i)
{
	asm volatile("" : "+r"(i));
	return pi->tcp_opts[i & 63];
}

/*
 * One option that conntrack reads, of kind 3, 4 or 5 and length len (2..40)
 * at off. Global, and called only for those kinds: the walk's loop is
 * then a few instructions per option for the verifier (with this inlined,
 * the walk took ~47k processed instructions), and the NOPs and
 * timestamps of an established connection's segments cost no call.
 */
__noinline int tcp_option(struct pkt_info *pi, __u32 off, __u32 kind, __u32 len)
{
	__u32 b;

	if (!pi || off > 38 || len > 40)
		return 0;
	if (kind == 3 && len == 3) {
		__u8 ws = opt_at(pi, off + 2);

		pi->tcp_wscale = ws > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : ws;
	} else if (kind == 4 && len == 2) {
		pi->tcp_sackok = 1;
	} else if (kind == 5) {
		for (b = 0; b < 4; b++) {
			__u32 e = off + 2 + b * 8 + 4, right;

			if (2 + b * 8 + 8 > len || e + 4 > 40)
				break;
			right = opt_at(pi, e) << 24 | opt_at(pi, e + 1) << 16 |
				opt_at(pi, e + 2) << 8 | opt_at(pi, e + 3);
			if ((__s32)(right - pi->tcp_sack) > 0)
				pi->tcp_sack = right;
		}
	}
	return 0;
}

/* The options' walk. Global: checked once, whatever state parse() is in. */
__noinline int tcp_options(struct pkt_info *pi)
{
	__u32 off = 0, optlen, kind, len;
	int i;

	if (!pi)
		return 0;
	optlen = pi->tcp_optlen;
	for (i = 0; i < 12; i++) {
		if (off >= optlen || off >= 39)
			break;
		kind = opt_at(pi, off);
		if (kind == 0)
			break;
		if (kind == 1) {
			off++;
			continue;
		}
		len = opt_at(pi, off + 1);
		if (len < 2 || off + len > optlen || len > 40)
			break;
		if (kind >= 3 && kind <= 5)
			tcp_option(pi, off, kind, len);
		off += len;
	}
	return 0;
}

static __always_inline int parse_tcp(struct cursor *c, struct flow_key *k,
				     struct pkt_info *pi)
{
	struct tcphdr *th = c->pos;
	__u8 *flags;

	/* As OVS: a TCP header with a bad data offset yields no L4 fields. */
	if (!CURSOR_HAS(c, sizeof(*th)) || th->doff < 5 ||
	    !CURSOR_HAS(c, th->doff * 4))
		return -1;
	key_set_ports(k, *(const __u32 *)th);
	flags = (__u8 *)th + 13;
	pi->tcp_flags = *flags;
	pi->tcp_seq = bpf_ntohl(th->seq);
	pi->tcp_ack = pi->tcp_sack = bpf_ntohl(th->ack_seq);
	pi->tcp_win = bpf_ntohs(th->window);
	pi->tcp_wscale = 0xff;
	pi->tcp_len = pi->l4_len > th->doff * 4 ? pi->l4_len - th->doff * 4 : 0;
	pi->tcp_optlen = th->doff * 4 - 20; /* copied and walked by parse() */
	/* Most segments of a Linux stream carry only NOP, NOP, timestamp:
	 * nothing conntrack reads, so nothing to copy or walk (the kernel's
	 * tcp_sack() has the same shortcut). */
	if (th->doff == 8 && CURSOR_HAS(c, 24) &&
	    *(__be32 *)(th + 1) == bpf_htonl(0x0101080a))
		pi->tcp_optlen = 0;
	/* OVS's tcp_flags field is the 12 low bits of bytes 12-13; its word
	 * (ct_zone, tcp_flags, ct_mark) is otherwise zero until conntrack. */
	key_word(&k->ct_zone, (__u64)(*(__be16 *)((__u8 *)th + 12) & bpf_htons(0x0fff)) << 16);
	pi->l4_ok = 1;
	return 0;
}

static __always_inline int parse_udp(struct cursor *c, struct flow_key *k,
				     struct pkt_info *pi)
{
	struct udphdr *uh = c->pos;
	__u32 len;

	if (!CURSOR_HAS(c, sizeof(*uh)))
		return -1;
	key_set_ports(k, *(const __u32 *)uh);
	pi->l4_ok = 1;
	/* Conntrack's check (nf_conntrack udp_error, OVS's check_l4_udp): a
	 * length field shorter than the header or longer than the IP payload
	 * makes the datagram invalid to conntrack; the flow key and rewrites
	 * take it as it is. */
	len = bpf_ntohs(uh->len);
	pi->udp_bad_len = len < sizeof(*uh) || len > pi->l4_len;
	return 0;
}

/* ICMP and ICMPv6 error types, which quote the packet that caused them. */
static __always_inline int icmp_is_error(__u8 type, int v6)
{
	if (v6)
		return type >= 1 && type <= 4;
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

/*
 * The quoted packet of an ICMP error: its IP header and first 8 bytes of
 * L4 (ports, or a query's id). Conntrack looks its connection up for +rel.
 */
static __always_inline void parse_icmp_inner(struct cursor *c, struct pkt_info *pi, int v6)
{
	struct iphdr *ip = c->pos;
	struct ipv6hdr *ip6 = c->pos;
	__u32 hlen = v6 ? sizeof(*ip6) : 0;
	__be16 *l4;

	__builtin_memset(pi->inner_src, 0, sizeof(pi->inner_src) + sizeof(pi->inner_dst));
	if (v6) {
		if (!CURSOR_HAS(c, sizeof(*ip6)))
			return;
		__builtin_memcpy(pi->inner_src, &ip6->saddr, 16);
		__builtin_memcpy(pi->inner_dst, &ip6->daddr, 16);
		pi->inner_proto = ip6->nexthdr; /* extension headers: not followed */
	} else {
		if (!CURSOR_HAS(c, sizeof(*ip)) || ip->ihl < 5)
			return;
		hlen = ip->ihl * 4;
		pi->inner_src[0] = ip->saddr;
		pi->inner_dst[0] = ip->daddr;
		pi->inner_proto = ip->protocol;
	}
	if (hlen > 60 || !CURSOR_HAS(c, hlen + 8))
		return;
	l4 = c->pos + hlen;
	if (pi->inner_proto == IPPROTO_ICMP || pi->inner_proto == IPPROTO_ICMPV6) {
		pi->inner_sport = pi->inner_dport = l4[2]; /* id */
	} else {
		pi->inner_sport = l4[0];
		pi->inner_dport = l4[1];
	}
	pi->icmp_error = 1;
}

static __always_inline int parse_icmp(struct cursor *c, struct flow_key *k,
				      struct pkt_info *pi)
{
	struct icmp_hdr *ih = c->pos;

	if (!CURSOR_HAS(c, sizeof(*ih)))
		return -1;
	/* OVS stores icmp_type and icmp_code in tp_src and tp_dst. */
	key_set_ports(k, bpf_htons(ih->type) | (__u32)bpf_htons(ih->code) << 16);
	pi->icmp_type = ih->type;
	pi->icmp_code = ih->code;
	pi->icmp_id = ih->id;
	pi->l4_ok = 1;
	if (icmp_is_error(ih->type, pi->is_ipv6)) {
		c->pos += sizeof(*ih);
		parse_icmp_inner(c, pi, pi->is_ipv6);
	}
	return 0;
}

/*
 * The headers from c->pos on, for both programs. len is the frame's whole
 * length (start is its first byte); vlan_tci a tag the driver already took
 * out of the frame, or 0. Returns 0 when every header present was
 * complete, -1 when one was truncated or malformed (the key then holds what
 * came before it). A TCP header's options are left to the caller, which
 * copies them with its program's helper: *optoff is their offset.
 */
static __always_inline int parse_headers(struct cursor *c, void *start, __u32 len,
					 __u16 vlan_tci, struct flow_key *k,
					 struct pkt_info *pi, __u32 *optoff)
{
	pi->len = len;
	if (parse_eth(c, k))
		return -1;
	if (vlan_tci)
		key_set_tag(k, k->dl_type, bpf_htons(vlan_tci | VLAN_CFI));
	else if (parse_vlan(c, k))
		return -1;

	if (k->dl_type == bpf_htons(ETH_P_ARP))
		return parse_arp(c, k);
	if (k->dl_type == bpf_htons(ETH_P_IP)) {
		if (parse_ipv4(c, k, pi, len - (__u32)(c->pos - start)))
			return -1;
	} else if (k->dl_type == bpf_htons(ETH_P_IPV6)) {
		if (parse_ipv6(c, k, pi, len - (__u32)(c->pos - start)))
			return -1;
	} else {
		return 0;
	}
	if (k->nw_frag & FRAG_LATER)
		return 0; /* no L4 header in later fragments */

	switch (k->nw_proto) {
	case IPPROTO_TCP:
		*optoff = (__u32)(c->pos - start) + 20;
		return parse_tcp(c, k, pi);
	case IPPROTO_UDP:
		return parse_udp(c, k, pi);
	case IPPROTO_ICMP:
		if (pi->is_ipv4)
			return parse_icmp(c, k, pi);
		break;
	case IPPROTO_ICMPV6:
		if (pi->is_ipv6)
			return parse_icmp(c, k, pi); /* same first 8 bytes */
		break;
	}
	return 0;
}

/*
 * The length of TCP options to copy (4..40), or 0 for none. Verifier-driven:
 * Linux 6.1 wants a nonzero lower bound on the copying helper's length
 * ("!= 0" gives none there). The barriers make clang compare and pass this
 * one register, and keep it from folding the two checks into one compare on
 * n - 4 (whose bounds the verifier does not carry back to n). The callers
 * test the result against 4 and 40 again, right before the helper call.
 */
#define TCP_OPTS_LEN(pi, err, n)                                         \
	do {                                                             \
		(n) = (err) ? 0 : (pi)->tcp_optlen; /* 0, 4, ..., 40 */ \
		asm volatile("" : "+r"(n));                              \
	} while (0)

/* The helper that copies packet bytes: bpf_skb_load_bytes (TC) or
 * bpf_xdp_load_bytes (XDP), called on the program's context. */
typedef long (*load_bytes_fn)(const void *ctx, __u32 off, void *to, __u32 len);

/* Copy the TCP options parse_headers() found at optoff into pi and walk
 * them; none after a parse error or a failed copy. Always inlined: load
 * is a helper, which a BPF call names by number, never through a pointer. */
static __always_inline void tcp_options_load(const void *ctx, load_bytes_fn load,
					     struct pkt_info *pi, int err, __u32 optoff)
{
	__u64 n;

	TCP_OPTS_LEN(pi, err, n);
	if (n >= 4) {
		asm volatile("" : "+r"(n));
		if (n > 40 || load(ctx, optoff, pi->tcp_opts, n))
			pi->tcp_optlen = 0;
		else
			tcp_options(pi);
	} else {
		pi->tcp_optlen = 0;
	}
}

/* TC: parse the skb into k (which must be zeroed) and pi. Returns 0, or -1
 * when a header was truncated or malformed. */
static __always_inline int parse(struct __sk_buff *skb, struct flow_key *k, struct pkt_info *pi)
{
	__u32 pull, optoff = 0;
	struct cursor c;
	void *start;
	int err;

	/* Headers may sit in paged data (GSO, veth); make the first bytes
	 * linear -- only when some bytes are paged: pulling a fully linear
	 * packet still costs a call into the kernel. */
	if ((long)skb->data + PARSE_PULL_LEN > (long)skb->data_end &&
	    (long)skb->data_end - (long)skb->data < skb->len) {
		pull = skb->len < PARSE_PULL_LEN ? skb->len : PARSE_PULL_LEN;
		bpf_skb_pull_data(skb, pull);
	}
	start = (void *)(long)skb->data;
	c.pos = start;
	c.end = (void *)(long)skb->data_end;

	err = parse_headers(&c, start, skb->len,
			    skb->vlan_present ? skb->vlan_tci : 0, k, pi, &optoff);
	tcp_options_load(skb, bpf_skb_load_bytes, pi, err, optoff);
	return err;
}

/* XDP: parse the frame into k (which must be zeroed) and pi. The frame's
 * headers are in its first buffer; a multi-buffer frame (xdp.frags: jumbo
 * frames, GRO-sized ones) has the rest in fragments, which count in its
 * length. The VLAN tag is in the frame. */
static __always_inline int parse_xdp(struct xdp_md *ctx, struct flow_key *k,
				     struct pkt_info *pi)
{
	struct cursor c;
	__u32 optoff = 0;
	void *start;
	__u64 len;
	int err;

	start = (void *)(long)ctx->data;
	c.pos = start;
	c.end = (void *)(long)ctx->data_end;
	/* The whole frame's length, fragments included. Bounded for the
	 * verifier, which takes a helper's result as any 64-bit value and
	 * refuses packet-pointer arithmetic with it (a frame has at most
	 * MAX_SKB_FRAGS 4 KB fragments: far below the bound). */
	len = bpf_xdp_get_buff_len(ctx);
	asm volatile("%0 &= 0x3ffff" : "+r"(len));
	err = parse_headers(&c, start, (__u32)len, 0, k, pi, &optoff);
	tcp_options_load(ctx, (load_bytes_fn)bpf_xdp_load_bytes, pi, err, optoff);
	return err;
}
