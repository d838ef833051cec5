/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Context: everything the datapath knows about the packet in flight. It
 * lives in the per-CPU `scratch` map (maps.h), not on the stack: with the
 * resubmit stack it is larger than the BPF stack leaves room for.
 */
#pragma once

#include <linux/types.h>
#include "common.h"

/* What parsing learnt beyond the flow key; consumed by conntrack. Fields
 * before `written` start at zero for every packet (ctx_init); the rest are
 * written by the parser before anything reads them. */
struct pkt_info {
	__u32 len;        /* skb->len (the whole frame), for flow and port byte counters */
	__u8 is_ipv4;     /* a complete IPv4 header was parsed */
	__u8 is_ipv6;     /* a complete IPv6 header (and extension headers) was parsed */
	__u8 l4_ok;       /* the TCP/UDP/ICMP header is complete and sane */
	__u8 tcp_flags;   /* low 8 TCP flag bits */
	__u8 icmp_type;
	__u8 icmp_code;
	__be16 icmp_id;   /* echo identifier */
	__u8 icmp_error;  /* an ICMP/ICMPv6 error quoting a packet: inner_* below */
	__u8 inner_proto;
	__u8 udp_bad_len; /* a UDP length field conntrack refuses (parse_udp) */
	__u8 tcp_sackok;  /* SACK-permitted option present */
	__be16 inner_sport; /* ICMP: the quoted query's id */
	__be16 inner_dport;
	__u32 l4_len;      /* L4 header + payload, from the IP header's lengths */
	__u32 tcp_optlen;  /* bytes of TCP options copied to tcp_opts (<= 40) */
	__u8 written[0];
	__u32 ext_len;     /* IPv6: bytes of extension headers (parse_ipv6) */
	__u32 l3_len;      /* is_ipv4/is_ipv6: the IP packet's length, its header on
			    * (IPv4 total length; IPv6 payload length + 40), as
			    * nf_conntrack counts a connection's bytes */
	__be32 inner_src[4]; /* icmp_error: the quoted packet's addresses (IPv4 in [0]) */
	__be32 inner_dst[4];
	/* TCP, for window tracking (host order): l4_ok and nw_proto TCP */
	__u32 tcp_seq;
	__u32 tcp_ack;
	__u32 tcp_sack;    /* highest SACK right edge, or tcp_ack */
	__u32 tcp_len;     /* payload bytes */
	__u16 tcp_win;
	__u8 tcp_wscale;   /* window scale option, 0xff when absent */
	__u8 pad2;
	__u8 tcp_opts[64]; /* 64 so that every index masked with 63 is in bounds */
};

#define CT_DIR_ORIG  0
#define CT_DIR_REPLY 1

/* Conntrack's result for the packet, carried across recirculations. */
struct ct_result {
	__u8 done;       /* conntrack ran for this packet in `zone` */
	__u8 dir;        /* CT_DIR_* */
	__u8 has_entry;  /* the connection is committed */
	__u8 pkt_is_a;   /* the packet's source is key.addr_a/port_a */
	__u8 icmp_type;  /* ICMP: the connection's original direction's type */
	__u8 icmp_code;  /* and code (ct_tp_src, ct_tp_dst) */
	__u16 zone;
	__u32 ct_state;
	__u32 mark;
	__u8 labels[16];
	/* ct(nat): what ACT_NAT does to this packet (ct_nat.h, ct_nat_op) */
	__u8 nat_op;         /* NAT_R_SRC: set the source to nat_addr:nat_port; NAT_R_DST: the destination */
	__u8 nat_bit;        /* CS_SNAT or CS_DNAT, once done */
	__u8 natted;         /* done in this zone: a second ct(nat) in it does nothing */
	__u8 nat_related;    /* an ICMP error: the op is the outer header's; the quoted
	                      * packet's other endpoint changes too (set_nat_icmp_error) */
	__u8 nat_failed;     /* ct(commit,nat(...)) found no free tuple: the packet is
	                      * dropped, as nf_nat's clash at confirmation drops it */
	__u8 via_nat;        /* the NATed connection was found through its reply key */
	__u8 pad3[2];
	__be16 nat_port;
	__u16 pad2;
	__be32 nat_addr[4];  /* IPv4: [0] */
	struct ct_ref ref;   /* has_entry: the connection's slot */
	struct ct_key key;   /* the connection's key; not filled by a cache hit's
			      * slot path (ct_execute_ref), which leaves has_entry set */
	struct ct_tcp tcp;   /* TCP: the connection's tracking, worked on here */
	struct ct_entry entry; /* a new entry being built, or a dry run's copy (not stack: too big) */
	struct nat_range nat_range; /* ACT_NAT_RANGE's, for a ct(commit,nat(...)) */
};

/* Outputs decided so far for the packet. */
struct out_state {
	__u32 in_port;
	__u32 pending;        /* OpenFlow port of the pending output, 0 if none */
	__u32 pending_ifindex;
	__u32 pending_flags;  /* PORT_F_* */
	__u32 nout;
	__u32 port[TRACE_MAX_OUT];
	__u32 dryrun;         /* record outputs, send nothing */
	__u32 flood;          /* XDP: send to every port but in_port (devmap broadcast) */
	__u32 noport;         /* an output named a port that does not exist */
	__u32 notx;           /* an EMC hit: send, but the entry counts tx (emc_fold) */
	/* NORMAL's per-port 802.1Q tags (actions.h): PV_SET | the TCI the
	 * pending output needs (0: untagged), or 0 when it takes the packet as
	 * it is; vlan_now is the packet's own TCI, put back after a clone. */
	__u32 pending_vlan;
	__u32 vlan_now;
	/* The walk's output to a patch port, carried out last (a tail call
	 * into the peer bridge: patch_out), its peer's number and tag. */
	__u32 patch;
	__u32 patch_peer;
	__u32 patch_vlan;
	__u32 hops;           /* patch ports the packet crossed to get here */
	/* The key's tunnel fields (network order), mirrored for outputs to
	 * tunnel ports, which only see this (pf_write keeps them equal), and
	 * the pending output's tunnel key (PORT_F_TUNNEL in pending_flags):
	 * in the map value, not on the stack, for bpf_skb_set_tunnel_key. */
	__u64 tun_id;
	__u32 tun_src;
	__u32 tun_dst;
	__u32 tunnel_out;     /* the walk output to a tunnel port: not cached */
	struct bpf_tunnel_key pending_tk;
};

/* The walk as the exact-match cache will store it (emc.h). */
struct emc_rec {
	__u32 ok;          /* still storable */
	__u32 idx;         /* the packet's slot */
	__u32 nwords;      /* e.w[0..nwords) are the key; the rest are not looked at */
	__u32 shape;       /* the generation's enum emc_shape */
	struct emc_entry e;
};

/*
 * A copy of the packet a ct(table=N) forked (OVS's recirculation): the
 * pass it waits for, and the pipeline state it takes there -- metadata,
 * registers and the conntrack fields as that ct() left them. The packet's
 * own fields are the packet's when the pass starts (one skb carries them).
 */
struct recirc {
	/* The ct()'s result, but for the new entry's scratch (ct_result.entry):
	 * the copy's own, as OVS's recirculated clone keeps its skb's nfct. A
	 * ct() of the packet in another zone since, or a ct_clear, replaced
	 * c->ct; recirc_resume puts this back, so the copy's next ct() in its
	 * zone reuses it (ct_execute) rather than tracking the packet again. */
	__u8 ct[__builtin_offsetof(struct ct_result, entry)];
	__u32 table;
	__be32 ct_state;
	__be64 metadata;
	__be32 regs[16];
	__be16 ct_zone;
	__u8 ct_nw_proto;
	__u8 pad;
	__be32 ct_mark;
	__u8 ct_label[16];
	__be32 ct_ipv6_src[4];
	__be32 ct_ipv6_dst[4];
	__be16 ct_tp_src;
	__be16 ct_tp_dst;
};

/* An action list being run: a pass's flow, or a resubmit's. */
struct frame {
	__u32 acts;       /* flow_actions index */
	__u32 idx;        /* next action */
	__u32 table;      /* the table it was found in (resubmit's default) */
	__be32 in_port;   /* key.in_port to restore when the frame ends */
};

struct pkt_ctx {
	struct flow_key key;
	struct pkt_info pi;
	struct ct_result ct;
	struct out_state out;
	struct frame frames[MAX_DEPTH];
	__u32 depth;       /* frames in use; 0 between passes */
	__u32 passes;      /* passes started */
	__u32 next_table;  /* the first pass is due in this table, or NO_TABLE */
	__u32 recirc_head; /* recirc[head % MAX_RECIRC] is the next pass due */
	__u32 recirc_n;    /* copies waiting */
	struct recirc recirc[MAX_RECIRC];
	__u32 gen;         /* flow-table generation, read once per packet */
	__u32 epoch;       /* flow-table version for flow_cache; top bit: bypass it */
	__u32 tracing;     /* tc_trace: record lookups in trace_buf */
	__u32 dryrun;      /* tc_trace asked not to change any state (ebpfovs trace) */
	__u32 halt;        /* dec_ttl expired the packet: no further actions */
	__u32 liberal;     /* CFG_TCP_LIBERAL */
	__u32 steps;       /* steps taken, in all passes (MAX_STEPS) */
	struct action act; /* the action step() hands to the program's exec_* */
	__u32 pad2;
	struct emc_rec emc;
};
