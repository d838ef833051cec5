/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types and constants shared by the datapath and the Go loader.
 *
 * Every struct here crosses the kernel/user boundary through a map, so every
 * hole is a named padding field (implicit padding makes hash lookups miss,
 * because the kernel hashes the padding bytes too). bpf2go turns these into
 * Go types (see gen.go).
 */
#pragma once

#include <linux/types.h>

/* Sizes. Map sizes (MAX_FLOWS, CT_MAX_ENTRIES, MAC_MAX_ENTRIES) are
 * defaults the loader may change when it creates a bridge; the others are
 * bounds compiled into the programs. The constants shared with Go are
 * enums, which bpf2go exports (gen.go's -type list): the loader reads them
 * from bpf/datapath_bpfel.go, never from a copy. */
enum limit {
	MAX_PORTS       = 256,    /* OpenFlow ports 1..255 (0 is never a port) */
	MAX_TABLES      = 256,    /* OpenFlow tables 0..254; 255 is EMC_TABLE */
	MAX_MASKS       = 4096,   /* distinct (table, mask) subtables, all tables */
	MAX_SUBTABLES   = 32,     /* distinct masks within one table */
	MAX_FLOWS       = 131072,
	MAX_ACTIONS     = 16,     /* actions in one flow's list */
	MAX_PASSES      = 8,      /* classifier passes a packet may take (1 + recirculations) */
	MAX_RECIRC      = 4,      /* ct(table=N) copies waiting for their pass (a power of two) */
	MAX_DEPTH       = 8,      /* nested resubmits (a power of two: indexes are masked) */
	MAX_STEPS       = 128,    /* lookups + actions + returns per packet */
	WALK_STEPS      = 32,     /* steps in one run of the walk stage: the verifier's loop bound
				   * (a longer walk goes on in a new run: stages.h) */
	GENERATIONS     = 2,      /* flow-table generations: the loader fills one while the other runs */
	CT_MAX_ENTRIES  = 262144,
	CT_ZONES        = 65536,  /* conntrack zones 0..65535 */
	CT_DELETE_MAX   = 64,     /* keys per run of ct_delete_keys (datapath.c) */
	CT_SLOT_SLACK   = 1024,   /* ct_slots beyond CT_MAX_ENTRIES: taken, not yet keyed (maps.h) */
	MAC_MAX_ENTRIES = 8192,
	MAX_PATCH_HOPS  = 8,      /* bridges a packet may cross through patch ports (loops end there) */
};

/* OpenFlow reserved ports (ofp_port_t values), as actions use them. */
#define OFPP_IN_PORT 0xfff8
#define OFPP_NORMAL  0xfffa
#define OFPP_FLOOD   0xfffb
#define OFPP_ALL     0xfffc

/* ct_state bits, numbered as Open vSwitch numbers them (ovs-fields(7)). */
#define CS_NEW  0x01
#define CS_EST  0x02
#define CS_REL  0x04
#define CS_RPL  0x08
#define CS_INV  0x10
#define CS_TRK  0x20
#define CS_SNAT 0x40
#define CS_DNAT 0x80

/* OVS marks a present 802.1Q header with this bit in vlan_tci. */
#define VLAN_CFI 0x1000

/* nw_frag values (OVS FLOW_NW_FRAG_*). */
#define FRAG_ANY   0x01
#define FRAG_LATER 0x02

/*
 * flow_key is what the classifier matches: the packet's headers plus the
 * metadata OpenFlow exposes (in_port, ct_*, metadata, registers). All
 * multi-byte fields are in network byte order, so the loader can copy a
 * field's big-endian value and mask straight from the parsed flow. 192
 * bytes = 24 u64 words. For IPv6, nw_proto/nw_tos/nw_ttl/nw_frag and
 * tp_src/tp_dst hold what they hold for IPv4, as in OVS. New fields go at
 * the end, so the words of the older ones (and their masks) stay put.
 */
struct flow_key {
	__be32 in_port;   /* OpenFlow port number */
	__be32 ct_state;  /* CS_* bits */
	__u8 dl_dst[6];
	__u8 dl_src[6];
	__be16 dl_type;
	__be16 vlan_tci;  /* VLAN_CFI | PCP | VID when tagged, 0 otherwise */
	__be32 nw_src;    /* IPv4 source; ARP: sender protocol address */
	__be32 nw_dst;    /* IPv4 destination; ARP: target protocol address */
	__u8 nw_proto;    /* IP protocol; ARP: opcode (low 8 bits) */
	__u8 nw_tos;      /* DSCP and ECN */
	__u8 nw_ttl;
	__u8 nw_frag;     /* FRAG_* */
	__be16 tp_src;    /* L4 source port; ICMP: type */
	__be16 tp_dst;    /* L4 destination port; ICMP: code */
	__be16 ct_zone;
	__be16 tcp_flags;
	__be32 ct_mark;
	__be64 metadata;  /* OpenFlow metadata: pipeline state, starts 0 */
	__be32 regs[16];  /* NXM registers reg0..reg15: pipeline state, start 0 */
	__be32 ipv6_src[4];
	__be32 ipv6_dst[4];
	__be32 ipv6_label; /* the 20-bit flow label */
	__be32 pkt_mark;   /* skb->mark at ingress; set_field:V->pkt_mark changes both */
	__u8 ct_label[16]; /* the connection's 128-bit label, big-endian */
	__u8 arp_sha[6];   /* ARP sender hardware address */
	__u8 arp_tha[6];   /* ARP target hardware address */
	/* The connection's original-direction tuple, set by a ct() whose
	 * table=N pass follows (OVS's ct_nw_src..ct_tp_dst; IPv4 in word 0);
	 * zero before, and for an invalid packet. */
	__be32 ct_ipv6_src[4];
	__be32 ct_ipv6_dst[4];
	__be16 ct_tp_src;  /* ICMP: the original direction's type */
	__be16 ct_tp_dst;  /* ICMP: its code */
	__u8 ct_nw_proto;
	__u8 pad[7];
	/* Tunnel metadata (OVS's tun_id, tun_src, tun_dst): a packet's from
	 * the tunnel port it came in on, 0 otherwise; set_tunnel and loads
	 * into them choose a tunnel output's. */
	__be64 tun_id;
	__be32 tun_src;
	__be32 tun_dst;
} __attribute__((aligned(8)));

#define FLOW_KEY_WORDS (sizeof(struct flow_key) / 8)

/*
 * A subtable hashes only the 8-byte words of the key its mask covers (OVS's
 * miniflow idea, in fixed size): at most MAX_GATHER of them, so the cost of
 * a probe does not grow with the size of the flow key.
 */
enum gather { MAX_GATHER = 8 };

/*
 * A subtable's mask. Verifier-driven layout: the lookup gathers key word
 * words[w] & 63 for every w without a branch (classifier.h, probe), so
 * the value is 64 words long, and the loader points the unused
 * words[nwords..] at word MASK_WORD_ZERO, which lies in the padding and
 * is zero: those gather 0, as the loader's keys have them. (32 words
 * were enough until the key grew past 247 bytes, with the tunnel fields.)
 */
enum mask_word { MASK_WORD_ZERO = 63 };
struct flow_mask {
	struct flow_key bits;    /* the bits the subtable matches */
	__u8 nwords;             /* words[0..nwords) are the key words covered */
	__u8 words[MAX_GATHER];  /* the rest: MASK_WORD_ZERO */
	__u8 learned;            /* a learned subtable (learn.h; loader only: its id differs from
	                          * a mask with the same bits that installed flows use) */
	__u8 pad[512 - sizeof(struct flow_key) - 2 - MAX_GATHER]; /* up to 64 words; zero */
};

/* Key of the flows hash: generation, one subtable (table, mask), and the
 * covered words of the packet's key, masked, in mask->words order. */
struct flow_lookup {
	__u16 table;
	__u16 gen;
	__u32 mask_id;
	__u64 w[MAX_GATHER];
};

/* Value of the flows hash: the highest-priority flow with exactly this match. */
struct flow_ref {
	__u32 flow_id;      /* index into flow_stats, flow_used and flow_meta */
	__u32 priority;
	__u32 acts;         /* index into flow_actions: flow_id + gen * MAX_FLOWS */
	__u16 idle_timeout; /* seconds, 0: none; checked against flow_used */
	__u16 birth;        /* a learned flow: its slot's incarnation, never 0 (flow_counts.birth
	                     * of another is stale: lookup_push starts it anew); 0 otherwise */
	__u64 hard_deadline_ns; /* CLOCK_MONOTONIC, 0: none (install time + hard_timeout) */
};

/* One mask used in a table, with the highest priority of its flows. */
struct subtable {
	__u32 mask_id;
	__u32 max_priority;
};

/* A table's subtables, sorted by max_priority, highest first. The tables map
 * holds GENERATIONS copies: index gen * MAX_TABLES + table. */
struct table {
	__u32 nsubtables;
	__u32 emc;       /* EMC_TABLE only: enum emc_shape (emc.h); 0: the EMC is off */
	struct subtable st[MAX_SUBTABLES];
	/* The flow_cache key of this table: the key words any of its masks
	 * covers, masked by the union of its masks -- fields no flow looks at
	 * (ports, TCP flags...) stay out, so packets of many connections share
	 * an entry. cache_nwords 0: the table does not use the cache. */
	__u8 cache_nwords;
	__u8 cache_words[MAX_GATHER];
	/* Some learn() adds flows to this table: a walk that looks it up is
	 * not stored in the exact-match cache, so a flow learned since takes
	 * effect for the next packet (design.md). */
	__u8 learned;
	__u8 pad2[6];
	__u64 cache_mask[MAX_GATHER];
};

enum action_type {
	ACT_NONE = 0,
	ACT_OUTPUT,   /* arg: OpenFlow port, or OFPP_IN_PORT */
	ACT_NORMAL,   /* learning L2 switch */
	ACT_FLOOD,    /* every port but in_port (FLOOD and ALL) */
	ACT_CT,       /* conntrack; flags CT_COMMIT/CT_FORCE, aux = zone, arg = table or NO_TABLE */
	ACT_RESUBMIT, /* look up table arg (NO_TABLE: the current one) with in_port aux (0: as is),
	               * run the actions found, then go on; goto_table is a resubmit at the end */
	ACT_SET_DL,   /* flags SET_SRC/SET_DST; MAC bytes 0-1 in aux, 2-5 in arg (host order) */
	ACT_SET_NW,   /* flags SET_SRC/SET_DST; IPv4 address in arg (host order) */
	ACT_SET_TP,   /* flags SET_SRC/SET_DST; port in aux (host order) */
	ACT_SET_TOS,  /* DSCP bits of arg; ECN kept */
	ACT_SET_TTL,  /* arg */
	ACT_DEC_TTL,  /* at TTL <= 1: no decrement, the packet's processing stops */
	ACT_VLAN,     /* flags VLAN_*; aux: VID, PCP or TPID */
	ACT_LOAD,     /* load arg into FIELD[ofs..ofs+nbits): aux = field << 8 | ofs, flags = nbits */
	ACT_MOVE,     /* aux = src field << 8 | ofs, arg = (dst field << 8 | ofs) | nbits << 16 */
	ACT_OUTPUT_REG, /* output to the port in FIELD[ofs..+nbits): aux = field << 8 | ofs, flags = nbits */
	ACT_CT_CLEAR, /* forget conntrack: ct_* fields 0, the next ct() tracks afresh */
	ACT_EXIT,     /* stop all processing; outputs so far stand */
	ACT_SET_MARK, /* pkt_mark[ofs..ofs+nbits) = arg, and skb->mark: aux = ofs, flags = nbits
	               * (nbits 0: only copy key.pkt_mark to skb->mark, after a move into it) */
	ACT_NAT_RANGE, /* the range of the ct(commit,nat(...)) that follows: flags NAT_*, aux = port,
	                * arg = IPv4 address (host order); the minimum, or with NAT_R_MAX the maximum */
	ACT_NAT_RANGE6, /* an IPv6 range's other words (after ACT_NAT_RANGE): flags = word (1-3),
	                 * | NAT_R_MAX for the maximum's; arg = the word (host order) */
	ACT_NAT,      /* after a ct(nat...): apply the translation conntrack found for the packet */
	ACT_CT_END,   /* the end of a ct() with exec() or nat (CT_DEFER): fork its copy for table
	               * arg (recirc_fork), or with NO_TABLE make the packet untracked */
	ACT_SET_IP6,  /* flags SET_SRC/SET_DST/SET_LABEL; aux = IP6_AUX(word, ofs, nbits):
	               * bits [ofs, ofs+nbits) of the address's 32-bit word `word` (0: the
	               * first in the packet), or of the label (word 0), become arg's (host
	               * order, in place); the L4 checksum follows the addresses */
	ACT_HDR_COMMIT, /* write the header fields of arg (bit hf for each enum hdr_field) from
	                 * the key into the packet: after a run of loads and moves into their
	                 * key words (PF_KEY + w) */
	ACT_LEARN,    /* learn(...): add or refresh the flow of template arg (learn.h) */
	ACT_FIN_TIMEOUT, /* first in a learned flow with fin timeouts: a TCP FIN or RST shortens
	                  * the flow's idle timeout to aux and its hard timeout to arg >> 16 s;
	                  * arg & 0xffff is the flow's learned slot (the datapath writes it) */
};

/* Header fields that load, move and set_field write (ACT_HDR_COMMIT). */
enum hdr_field {
	HF_DL_SRC = 1,
	HF_DL_DST,
	HF_NW_SRC,   /* IPv4 (checksums follow) */
	HF_NW_DST,
	HF_TP_SRC,   /* TCP/UDP over IPv4 (checksums follow) */
	HF_TP_DST,
	HF_NW_TOS,   /* DSCP bits */
	HF_NW_TTL,
	HF_ARP_OP,   /* from nw_proto: opcodes up to 255 */
	HF_ARP_SHA,
	HF_ARP_SPA,  /* from nw_src */
	HF_ARP_THA,
	HF_ARP_TPA,  /* from nw_dst */
};

/* Fields of ACT_LOAD/ACT_MOVE/ACT_OUTPUT_REG: 0..15 the registers, then: */
enum packet_field {
	PF_METADATA = 16,
	PF_CT_MARK  = 17, /* only in ct(commit, exec(...)): the connection's mark */
	PF_CT_LABEL = 18, /* likewise, 32 bits at a time (ofs 0..127) */
	PF_PKT_MARK = 19, /* load/move/output:reg read it; ACT_SET_MARK writes the packet's */
	/* PF_KEY + w: word w of struct flow_key as a 32-bit number (the
	 * key's bytes are big-endian): move, output:FIELD and ct(zone=FIELD)
	 * sources other than the pipeline's own fields, and the destinations
	 * of loads and moves into header fields, which an ACT_HDR_COMMIT then
	 * writes into the packet. The loader splits a subfield at the key's
	 * 32-bit word boundaries. */
	PF_KEY      = 32,
};

/* action.flags of ACT_SET_DL/NW/TP/IP6 */
enum set_flag {
	SET_SRC   = 0x01,
	SET_DST   = 0x02,
	SET_LABEL = 0x04, /* ACT_SET_IP6: the IPv6 flow label */
};

#define IP6_AUX(word, ofs, nbits) ((word) << 12 | (nbits) << 5 | (ofs))
#define IP6_AUX_WORD(aux)  (((aux) >> 12) & 3)
#define IP6_AUX_NBITS(aux) (((aux) >> 5) & 63)
#define IP6_AUX_OFS(aux)   ((aux) & 31)

/* action.flags of ACT_VLAN */
enum vlan_op {
	VLAN_SET_VID = 1, /* tag untagged packets (PCP 0), else change the VID */
	VLAN_SET_PCP = 2,
	VLAN_STRIP   = 3,
	VLAN_PUSH    = 4, /* a new outer tag, VID and PCP copied from the old one */
};

/*
 * EMC_TABLE's table.emc: EMC_ON when the exact-match cache may be used,
 * and which fields a ct(nat) rewrites no flow looks at, nor the
 * connection's tuple (flowtable/shape.go). A hit may apply a connection's
 * own translation there where the stored walk applied another's: the walk
 * after it cannot have depended on the difference.
 */
enum emc_shape {
	EMC_ON            = 0x01,
	EMC_FREE_SRC_ADDR = 0x02,
	EMC_FREE_SRC_PORT = 0x04,
	EMC_FREE_DST_ADDR = 0x08, /* the SRC bits << 2 */
	EMC_FREE_DST_PORT = 0x10,
};

/* action.flags of ACT_CT */
enum ct_flag {
	CT_COMMIT     = 0x01,
	CT_FORCE      = 0x02, /* a connection seen in the other direction is replaced */
	CT_ZONE_FIELD = 0x04, /* the zone is FIELD[ofs..ofs+15], aux = field << 8 | ofs */
	CT_DEFER      = 0x10, /* exec() or nat actions follow: ACT_CT_END forks the copy after them */
	CT_NAT        = 0x08, /* ct(nat...): find the packet's translation (ACT_NAT applies it); with
	                       * CT_COMMIT and the range ACT_NAT_RANGE left, a new connection gets one */
	CT_LIBERAL    = 0x40, /* the bridge's CFG_TCP_LIBERAL */
	CT_DRYRUN     = 0x80, /* compute the result, change nothing (ebpfovs trace) */
};

/* ACT_NAT_RANGE flags: nat(src|dst=MIN[-MAX][:PMIN[-PMAX]],random|hash,persistent) */
enum nat_flag {
	NAT_R_SRC        = 0x01,
	NAT_R_DST        = 0x02,
	NAT_R_RANDOM     = 0x04,
	NAT_R_HASH       = 0x08,
	NAT_R_PERSISTENT = 0x10,
	NAT_R_ADDR       = 0x20, /* an address range was given (else the address stays) */
	NAT_R_PORTS      = 0x40, /* a port range was given */
	NAT_R_MAX        = 0x80, /* this ACT_NAT_RANGE is the range's maximum */
};

/* A ct(commit,nat(...)) range, as ACT_NAT_RANGE leaves it for the ct()
 * after it (host order). */
struct nat_range {
	__u32 min_addr[4], max_addr[4]; /* 32-bit words, the first the most significant (IPv4: [0]) */
	__u16 min_port, max_port;
	__u8 flags;             /* NAT_R_* but NAT_R_MAX */
	__u8 pad[3];
};

/* action.arg of ACT_RESUBMIT and ACT_CT: no table (stay in this one) */
enum no_table { NO_TABLE = 0xffffffffu };

struct action {
	__u8 type;   /* enum action_type */
	__u8 flags;
	__u16 aux;   /* ACT_CT: zone; ACT_RESUBMIT: in_port to look up with */
	__u32 arg;
};

struct action_list {
	__u32 n;
	__u32 pad;
	struct action a[MAX_ACTIONS];
};

/*
 * The flow as the user gave it, typed (ofctl's binary record: Flow's
 * MarshalBinary), so every `ebpfovs` call can rebuild the classifier maps
 * and print dump-flows without parsing text again. Never read by the
 * datapath.
 */
#define FLOW_RECORD_MAX 496

struct flow_record {
	__u64 created_ns;   /* CLOCK_MONOTONIC at install */
	__u32 seq;          /* install order, for stable dumps */
	__u16 len;          /* bytes of data used */
	__u16 pad;
	__u8 data[FLOW_RECORD_MAX];
};

struct flow_counts {
	__u64 packets;
	__u64 bytes;
	__u32 birth;   /* bridge_config.epoch when the flow was installed (emc_fold) */
	__u32 pad;
};

/*
 * learn() (learn.h). A learning flow's learn action names a template the
 * loader compiled from its specs: the learned flow's table, priority,
 * timeouts, its subtable (a mask with .learned set: the match fields and
 * bits are the specs', only the values come from the packet), and its
 * action list with the bits the packet gives left zero. The ops copy
 * those bits: from the learning packet's key (or an immediate) into the
 * learned flow's key, or into an action's argument.
 */
enum learn_limit {
	LEARN_MAX       = 8192, /* learned flows per bridge (learned_slots) */
	LEARN_OPS       = 32,   /* ops of one template */
	LEARN_TEMPLATES = 256,  /* distinct learn actions in the flow table */
	LEARN_TRIES     = 8,    /* slots one learn looks at for a free one */
};

enum learn_op_kind {
	LOP_MATCH = 1, /* the learned key's 32-bit word dst_word, bits [dst_ofs, +nbits) */
	LOP_ACT   = 2, /* action dst_word's arg, bits [dst_ofs, +nbits) */
	LOP_IMM   = 0x80, /* | : the value is `value`, not the packet's */
};

/* The value: bits [src_ofs, +nbits) of the packet key's 32-bit word
 * src_word, as PF_KEY + w reads it (a number: the key is big-endian). */
struct learn_op {
	__u8 kind;     /* enum learn_op_kind */
	__u8 nbits;    /* 1..32 */
	__u8 src_word;
	__u8 src_ofs;
	__u8 dst_word;
	__u8 dst_ofs;
	__u16 pad;
	__u32 value;   /* LOP_IMM */
};

struct learn_template {
	__u32 table;
	__u32 priority;
	__u32 mask_id;     /* the learned subtable's mask */
	__u32 flow_base;   /* the bridge's flow ids: learned slot s is flow flow_base + s,
	                    * its actions at flow_actions[2 * flow_base + s] */
	__u16 idle_timeout;
	__u16 hard_timeout;
	__u32 nops;
	__u32 gens;        /* the generations whose flows use it (loader only) */
	__u32 pad;
	struct learn_op ops[LEARN_OPS];
	struct action_list acts;
};

/* Where learn() takes slots: the next to try, among the first `limit`
 * (set-learn-limit; a new bridge's is LEARN_MAX, 0 learns nothing). */
struct learn_alloc_state {
	__u64 cursor;
	__u32 limit;
	__u32 pad;
};

/* learned_slot.state: LEARNED_LIVE | incarnation << 1. */
enum learned_state { LEARNED_LIVE = 1 };

/* A learned flow: where its entry is, and what the loader prints it from. */
struct learned_slot {
	__u64 state;          /* 64 bits: the atomics BPF has without -mcpu=v3 */
	__u32 template;       /* learn_templates id */
	__u32 pad;
	__u64 created_ns;     /* CLOCK_MONOTONIC when learned (with these actions) */
	struct flow_lookup key; /* its entries in flows (gen 0 here; gen 1 likewise) */
	struct flow_key src;  /* the key of the packet that learned it */
};

/* port.flags */
enum port_flag {
	PORT_F_PEER      = 0x01, /* veth whose peer lives in another netns: bpf_redirect_peer */
	PORT_F_OWN_QDISC = 0x02, /* ATTACH_TC: we created the clsact qdisc (loader only) */
	PORT_F_XDP       = 0x04, /* an XDP program runs first on this port's ingress (loader only) */
	PORT_F_TRUNKS    = 0x08, /* NORMAL: the port carries only the VLANs of its port_trunks bits */
	PORT_F_TAG       = 0x10, /* port.tag is set (loader only: OVS tells tag=0 from no tag) */
	PORT_F_VLAN_MODE = 0x20, /* port.vlan_mode was set, not implied by the tag (loader only) */
	PORT_F_TUNNEL    = 0x40, /* PORT_TUNNEL: output sets the skb's tunnel key first */
	PORT_F_TUN_NOCSUM = 0x80, /* PORT_TUNNEL: no checksum in the tunnel header (gre: a
	                           * collect_md gretap refuses GRE checksums it was not set up for) */
};

/* port.type: ovs-vsctl's Interface type (vsctl/). */
enum port_type {
	PORT_SYSTEM   = 0, /* a device that exists (tap, veth) */
	PORT_INTERNAL = 1, /* a veth pair ebpfovs created: the named end is the port's interface */
	PORT_PATCH    = 2, /* no device: output goes on in the peer bridge's pipeline (patch_ports) */
	PORT_TUNNEL   = 3, /* a remote end of a flow-based tunnel device the bridge owns (vxlan) */
};

/* port.tun_flags: a tunnel port's options that come from the flow. */
enum tunnel_flag {
	TUN_REMOTE_FLOW = 0x01, /* options:remote_ip=flow: tun_dst chooses the remote end */
	TUN_KEY_FLOW    = 0x02, /* options:key=flow: tun_id is the key (VNI) */
	TUN_LOCAL_FLOW  = 0x04, /* options:local_ip=flow: tun_src is the local end */
};

/* port.tun_kind: the device a tunnel port's packets go through. The
 * datapath treats them alike: each is a flow-based (collect_md) device
 * that takes the skb's tunnel key (bpf_skb_set_tunnel_key). */
enum tunnel_kind {
	TUN_KIND_VXLAN  = 0,
	TUN_KIND_GENEVE = 1,
	TUN_KIND_GRE    = 2, /* gretap: Ethernet over GRE, the key in GRE's key field */
};

/* tunnel_ports' key: a packet from tunnel device ifindex, sent by remote
 * (0: a remote_ip=flow port, which takes any). */
struct tunnel_port_key {
	__u32 ifindex;
	__be32 remote;
};

/*
 * port.vlan_mode: how NORMAL treats 802.1Q tags on the port, as OVS's Port
 * vlan_mode (ofproto-dpif-xlate.c). The zero value is OVS's default for a
 * port without a tag: a trunk of every VLAN (PORT_F_TRUNKS clear), where a
 * frame's VLAN is its tag's VID and untagged frames are VLAN 0.
 */
enum port_vlan_mode {
	VLAN_MODE_TRUNK           = 0, /* tagged in and out; VLAN = the frame's VID */
	VLAN_MODE_ACCESS          = 1, /* untagged in and out; VLAN = port.tag; tagged frames dropped */
	VLAN_MODE_NATIVE_TAGGED   = 2, /* untagged in = port.tag; out always tagged */
	VLAN_MODE_NATIVE_UNTAGGED = 3, /* untagged in = port.tag; out untagged on port.tag */
};

enum attach_mode {
	ATTACH_NONE = 0,
	ATTACH_TCX,
	ATTACH_TC,   /* clsact + cls_bpf (direct-action) through netlink */
};

/* One OpenFlow port. The datapath reads ifindex and flags; the rest is for the loader. */
struct port {
	__u32 ifindex;
	__u32 flags;      /* PORT_F_* */
	__u32 mode;       /* enum attach_mode */
	__u32 tc_prio;    /* ATTACH_TC: the filter's priority and handle, so detach removes only ours */
	__u32 tc_handle;
	__u16 tag;        /* VLAN_MODE_ACCESS and native modes: the port's VLAN */
	__u8 vlan_mode;   /* enum port_vlan_mode */
	__u8 type;        /* enum port_type (loader only) */
	__u64 attached_ns; /* CLOCK_MONOTONIC at attach */
	char name[16];
	__u32 peer_port;   /* PORT_PATCH: the peer's number on its bridge, 0 while it has none */
	__u32 tun_flags;   /* PORT_TUNNEL: TUN_* */
	char peer[16];     /* PORT_PATCH: options:peer (loader only) */
	__u64 tun_key;     /* PORT_TUNNEL: options:key, the VNI (unless TUN_KEY_FLOW) */
	__be32 remote_ip;  /* PORT_TUNNEL: options:remote_ip (unless TUN_REMOTE_FLOW) */
	__be32 local_ip;   /* PORT_TUNNEL: options:local_ip, 0: the route's */
	__u16 dst_port;    /* PORT_TUNNEL: options:dst_port (loader only) */
	__u8 tun_kind;     /* PORT_TUNNEL: enum tunnel_kind (loader only) */
	__u8 pad3;
	__u16 pad2[2];
};

/* The port table's entry is a port: a device, or a patch port (no device). */
static __always_inline int port_present(const struct port *p)
{
	return p->ifindex || p->type == PORT_PATCH;
}

/* One bit per VLAN ID, VID v at w[v / 64] bit v % 64. */
struct vlan_bitmap {
	__u64 w[64];
};

/* A port change in progress (maps.h, port_changes; loader only). */
enum port_op {
	PORT_OP_NONE = 0,
	PORT_OP_ATTACH = 1, /* undone by the next command */
	PORT_OP_DETACH = 2, /* finished by the next command */
};

struct port_change {
	enum port_op op;
	__u32 pad;
	struct port port; /* as the attach plans it, or as it was before the detach */
};

struct port_counts {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
	__u64 rx_dropped;
	__u32 birth;   /* bridge_config.epoch when the port was attached (emc_fold) */
	__u32 pad;
};

struct bridge_config {
	__u32 max_port;  /* highest OpenFlow port in use: bounds flooding */
	__u32 gen;       /* the flow-table generation packets use; the loader flips it */
	__u32 epoch;     /* bumped on every flow-table change: invalidates flow_cache */
	__u32 flags;     /* CFG_* */
};

enum cfg_flag {
	CFG_NO_CACHE    = 0x01, /* bypass flow_cache (benchmarks of the classifier itself) */
	CFG_TCP_LIBERAL = 0x02, /* nf_conntrack_tcp_be_liberal: no out-of-window verdicts */
	/* Flow-table generation 0 (1) uses only actions the XDP program can carry
	 * out (docs/design.md, "XDP mode"); otherwise XDP passes every packet to TC. */
	CFG_XDP_GEN0    = 0x04,
	CFG_XDP_GEN1    = 0x08,
	CFG_CT_POLICIES = 0x10, /* some zone has a timeout policy: look it up (else skip the lookup) */
	/* Some port has a VLAN setting (tag, trunks, vlan_mode): NORMAL tags
	 * and untags per port, which XDP does not do (XDP passes to TC). */
	CFG_VLAN_PORTS  = 0x20,
	/* Some port is a patch port: output to it is a tail call into the peer
	 * bridge, which only TC makes (XDP passes walks to TC). */
	CFG_PATCH_PORTS = 0x40,
	/* Some port is a tunnel port: output to it sets the skb's tunnel key,
	 * which XDP has no skb for (XDP passes walks to TC). */
	CFG_TUNNEL_PORTS = 0x80,
};

/*
 * The exact-match cache (emc.h): the key words a packet's whole walk can
 * depend on, for a generation, are the cache words of its tables entry
 * EMC_TABLE (not an OpenFlow table: 255 is the "all tables" wildcard).
 */
#define EMC_TABLE   (MAX_TABLES - 1)
#define EMC_BITS 12
#define EMC_ENTRIES (1 << EMC_BITS) /* per CPU, direct-mapped */
#define EMC_OUTS    4    /* outputs an entry replays */
#define EMC_FLOWS   4    /* flows an entry counts (lookups that matched) */

/*
 * The conntrack hash's value: where the connection lives in ct_slots. The
 * entries sit in an array so that a cache entry can keep a connection's
 * slot and skip the hash (docs/ct-slots.md). gen tells a reference to the
 * slot's current occupant from a stale one: it changes, under the entry's
 * ownership (seq), when a connection is removed and when one moves in.
 */
struct ct_ref {
	__u32 slot;
	__u32 gen;
};

/*
 * A cache entry's last connection (TCP over IPv4, docs/ct-slots.md): a
 * hit whose packet has these addresses and ports, in zone, is that
 * connection's packet, in direction dir, as long as its slot still holds
 * it (ref.gen), and goes to the slot without the conntrack hash.
 */
enum emc_hint_flag {
	HINT_VALID   = 0x01,
	HINT_VIA_NAT = 0x02, /* the packet found a NATed connection through its reply key (ct_nat_op) */
};

struct emc_ct_hint {
	__u64 addrs;       /* the key's nw_src and nw_dst, as one word */
	__u32 ports;       /* the key's tp_src and tp_dst */
	__u8 valid;        /* enum emc_hint_flag */
	__u8 dir;          /* CT_DIR_* */
	__u16 zone;        /* the ct()'s */
	struct ct_ref ref;
};

struct emc_entry {
	__u32 epoch;       /* bridge_config.epoch it belongs to */
	__u32 ifindex;     /* the packet's ingress device */
	__u64 w[MAX_GATHER]; /* EMC_TABLE's cache words of the packet's key, masked */
	__u32 ct_label[4]; /* has_ct: the result's ct_label (big-endian bytes) */
	__u32 ct_state;    /* has_ct: the result's ct_state and ct_mark */
	__u32 ct_mark;
	__u32 in_port;
	__u16 zone;        /* has_ct: the ct()'s zone and flags */
	__u8 ct_flags;
	__u8 has_ct;       /* the walk ran one ct(): replay it, and use the entry
	                    * only if it gives ct_state, ct_mark, ct_label again */
	__u8 nout;
	__u8 nflows;
	__u8 nmiss;        /* table misses the walk counted */
	__u8 nat_op;       /* has_ct with nat: the translation the walk applied (ct_result's
	                    * nat_op, nat_addr, nat_port): a hit applies it again, and only
	                    * if conntrack gives the same one */
	__be16 nat_port;
	__u16 pad;
	__be32 nat_addr[4];
	__u32 out[EMC_OUTS];   /* OpenFlow ports, in output order */
	__u32 flows[EMC_FLOWS];
	struct emc_ct_hint hint; /* has_ct: the last connection it tracked */
	/* Hits since the entry was stored, not yet in the counters they stand
	 * for (emc_fold; readers add them: docs/design.md). */
	__u64 hit_packets;
	__u64 hit_bytes;
};

/* Per-table flow cache: a table's key words -> the classifier's answer. */
#define CACHE_MIN_SUBTABLES 3     /* below this a tuple search is as cheap as the cache */
#define CACHE_ENTRIES       65536

struct cache_key {
	__u32 epoch;
	__u32 table;
	__u64 w[MAX_GATHER]; /* table->cache_words of the key, masked */
};

/* MAC learning table for the NORMAL action. */
struct mac_key {
	__u8 mac[6];
	__u16 vlan;  /* VID, 0 when untagged */
};

struct mac_entry {
	__u32 port;
	__u32 pad;
	__u64 seen_ns;
};

/*
 * Conntrack. One entry per connection, keyed by its two endpoints in a
 * canonical order (lower address/port first), so packets of both directions
 * find it with one lookup; flags record which endpoint opened it.
 */
struct ct_key {
	__be32 addr_a[4];   /* IPv4 uses [0]; the lower endpoint */
	__be32 addr_b[4];
	__be16 port_a;      /* ICMP echo: the identifier, in both */
	__be16 port_b;
	__u16 zone;
	__u8 proto;
	__u8 family;        /* 4 or 6 */
};

/* ct_entry.flags */
enum ct_entry_flag {
	CT_E_A_IS_ORIG  = 0x01, /* endpoint a sent the first packet */
	CT_E_SEEN_REPLY = 0x02,
	CT_E_ASSURED    = 0x04,
};

/* nf_conntrack's per-direction TCP tracking (struct ip_ct_tcp_state). */
struct ct_tcp_side {
	__u32 td_end;       /* highest seq + len seen */
	__u32 td_maxend;    /* highest ack + window seen */
	__u32 td_maxwin;    /* largest window seen */
	__u32 td_maxack;    /* highest ack seen */
	__u8 td_scale;      /* window scale */
	__u8 flags;         /* CT_TCP_F_* (IP_CT_TCP_FLAG_*) */
	__u16 pad;
};

#define CT_TCP_F_WINDOW_SCALE 0x01
#define CT_TCP_F_SACK_PERM    0x02
#define CT_TCP_F_CLOSE_INIT   0x04
#define CT_TCP_F_BE_LIBERAL   0x08
#define CT_TCP_F_DATA_UNACK   0x10
#define CT_TCP_F_MAXACK_SET   0x20
/* ct_tcp.last_flags only */
#define CT_TCP_LF_CHALLENGE_ACK 0x40
#define CT_TCP_LF_SIMUL_OPEN    0x80

/* A connection's TCP tracking (struct ip_ct_tcp). */
struct ct_tcp {
	struct ct_tcp_side side[2]; /* [0] original direction, [1] reply */
	__u32 last_seq;
	__u32 last_ack;
	__u32 last_end;
	__u16 last_win;
	__u8 state;         /* enum tcp_ct_state */
	__u8 last_index;    /* TCP segment index of the last in-window packet */
	__u8 last_dir;
	__u8 last_wscale;
	__u8 last_flags;
	__u8 retrans;
	__u32 pad;
};

struct ct_entry {
	__u64 start_ns;     /* CLOCK_MONOTONIC at commit */
	__u64 expires_ns;   /* CLOCK_MONOTONIC; past it the entry is gone */
	__u64 packets[2];   /* [0] original direction, [1] reply */
	__u64 bytes[2];     /* L3 bytes (IP header on, no Ethernet or padding), as nf_conntrack_acct */
	__u32 mark;
	__u32 id;
	__u64 seq;          /* odd while a CPU owns the entry (tcp, flags, expires_ns, counters, mark, labels, gen; ct_table.h: ct_own) */
	__u8 labels[16];    /* ct_label, big-endian */
	struct ct_tcp tcp;  /* TCP only */
	__u8 flags;         /* CT_E_* */
	__u8 icmp_type;     /* ICMP: the originator's type */
	__u8 icmp_code;
	__u8 nat;           /* CT_NAT_*: the translation committed with the connection */
	__u32 gen;          /* the slot's occupant: a ct_ref with another gen is stale */
	/* NAT (ct_nat.h): the connection has two keys, its original tuple's
	 * (okey) and its reply tuple's (nat_key), both pointing at this
	 * entry; whoever removes the entry removes both. Written before
	 * either key is inserted, never changed after. */
	struct ct_key okey;
	struct ct_key nat_key;
	__be32 nat_addr[4]; /* the translated endpoint: SNAT the new source, DNAT the new destination (IPv4: [0]) */
	__be16 nat_port;    /* and its port (ICMP: the echo identifier) */
	__u16 pad2;
	__u32 pad3;
};

/* ct_entry.nat */
enum ct_nat {
	CT_NAT_SRC = 0x01,
	CT_NAT_DST = 0x02,
};

/*
 * Connection limits (ct-set-maxconns, ct-set-limits), one entry. A commit
 * that would take the live connections of all zones past maxconns, or of
 * its zone past the zone's limit, is refused. Zone limits live in
 * ct_zone_limit; zones without one take default_limit; 0 is unlimited.
 */
struct ct_limits {
	__u32 maxconns;       /* the loader sets it to the table size at creation */
	__u32 default_limit;  /* per zone, for zones without their own; 0: none */
	__u64 last_sweep_ns;  /* CLOCK_MONOTONIC of the datapath's last expiry sweep */
};

/* ct_count indexes: [zone] live connections in zone, [CT_COUNT_TOTAL] in all. */
enum ct_count_index {
	CT_COUNT_TOTAL = CT_ZONES,
	CT_COUNT_SLOTS = CT_ZONES + 1, /* ct_slots never used yet start here */
};

/* The datapath sweeps the table for expired entries when a commit finds no
 * room, at most this often: a sweep visits every entry. */
#define CT_SWEEP_INTERVAL_NS 1000000000ULL

/*
 * A zone's timeout policy (OVS's zone timeout policies; the kernel's
 * per-zone cttimeout), seconds; 0 keeps nf_conntrack's default.
 */
struct ct_timeouts {
	__u32 tcp[10];       /* by enum tcp_ct_state */
	__u32 udp_unreplied; /* udp_first, udp_single */
	__u32 udp_replied;   /* udp_multiple */
	__u32 icmp;          /* icmp_first, icmp_reply */
	__u32 generic;
	__u32 tcp_retrans;   /* tcp_retransmit: 3+ retransmissions, or a zero window */
	__u32 tcp_unack;     /* tcp_unack: data in flight not acknowledged */
};

/* TCP states, numbered as nf_conntrack numbers them. */
enum tcp_ct_state {
	TCP_CT_NONE = 0,
	TCP_CT_SYN_SENT,
	TCP_CT_SYN_RECV,
	TCP_CT_ESTABLISHED,
	TCP_CT_FIN_WAIT,
	TCP_CT_CLOSE_WAIT,
	TCP_CT_LAST_ACK,
	TCP_CT_TIME_WAIT,
	TCP_CT_CLOSE,
	TCP_CT_SYN_SENT2,
	TCP_CT_MAX,          /* "invalid" in the transition table */
	TCP_CT_IGNORE,
};

/*
 * The datapath's stages (stages.h): programs chained by tail calls, each
 * verified on its own. The index of a stage in tc_stages and xdp_stages
 * (maps.h), which the loader fills.
 */
enum stage {
	STAGE_WALK = 0, /* classify and act, one pass; a recirculation calls it again */
	STAGE_MAX,
};

/* Datapath counters (per-CPU array, index = enum counter). */
enum counter {
	CNT_PACKETS = 0,
	CNT_NOT_OURS,       /* ingress on an ifindex with no port: passed up */
	CNT_MISS,           /* no flow matched: dropped */
	CNT_PASS_LIMIT,     /* more than MAX_PASSES recirculations: dropped */
	CNT_TRUNCATED,      /* headers shorter than they claim */
	CNT_CT_INVALID,
	CNT_CT_FULL,        /* commit refused: the table is full (insert failed) */
	CNT_OUTPUT_NOPORT,  /* output to a port that does not exist */
	CNT_DEPTH_LIMIT,    /* resubmit nested deeper than MAX_DEPTH: skipped */
	CNT_STEP_LIMIT,     /* more than MAX_STEPS steps: the rest skipped */
	CNT_CT_MAXCONNS,    /* commit refused: maxconns connections live */
	CNT_CT_ZONE_LIMIT,  /* commit refused: the zone's limit reached */
	CNT_CT_EXPIRED,     /* expired connections the datapath removed */
	CNT_CT_RACE,        /* a TCP update lost to other CPUs CT_TRIES times: the packet is +inv */
	CNT_XDP_PACKETS,    /* packets the XDP program carried through the pipeline */
	CNT_XDP_TO_TC,      /* passed to the TC program: the flow table needs an skb */
	CNT_XDP_ABORTED,    /* XDP met an action it cannot do (a flow table change raced): dropped */
	CNT_EMC_HITS,       /* packets the exact-match cache carried (emc.h) */
	CNT_CT_FLUSHED,     /* connections flush-conntrack removed in the kernel (ct_flush) */
	CNT_STAGE_FAIL,     /* a tail call to the next stage failed (stages.h): dropped */
	CNT_CT_NAT_FAIL,    /* commit refused: no free address and port in the nat() range (+inv) */
	CNT_XDP_FAST,       /* packets XDP finished from the exact-match cache (xdp_fast) */
	CNT_NORMAL_VLAN_DROP, /* NORMAL: a frame's VLAN not allowed on its in_port (OVS: "disallowed VLAN VID") */
	CNT_PATCH_NO_PEER,  /* output to a patch port whose peer is missing: nothing sent there */
	CNT_PATCH_LOOP,     /* a packet crossed MAX_PATCH_HOPS patch ports: dropped */
	CNT_PATCH_EXTRA,    /* a second patch port output in one walk: not sent (one tail call per packet) */
	CNT_TUNNEL_NO_PORT, /* a packet from a tunnel device that no tunnel port takes: dropped */
	CNT_TUNNEL_NO_REMOTE, /* output to a remote_ip=flow tunnel port with tun_dst 0: not sent */
	CNT_LEARNED,        /* flows learn() added (or changed) */
	CNT_LEARN_FULL,     /* learn() found no free slot: LEARN_MAX learned flows live */
	CNT_EMC_FOLD_SEQ,   /* odd while emc_fold() runs on this CPU: readers retry (not shown) */
	CNT_MAX,
};

/*
 * What the trace program (tc_trace, run only by BPF_PROG_TEST_RUN) records
 * about one packet, for `ebpfovs trace` and the datapath tests.
 */
#define TRACE_MAX_OUT     16
#define TRACE_MAX_LOOKUPS 32

struct trace_lookup {
	__u32 table;
	__u32 flow_id;      /* NO_TABLE when nothing matched */
	__u32 priority;
	__u32 ct_state;     /* ct_state the lookup saw */
	__u32 depth;        /* 0 for a pass, 1.. inside resubmits */
	__u32 pass;         /* 0 first, then one per recirculation */
};

struct trace {
	__u32 nlookups;
	__u32 nout;
	struct trace_lookup lookup[TRACE_MAX_LOOKUPS];
	__u32 out_port[TRACE_MAX_OUT];  /* OpenFlow ports, in output order */
	__u32 verdict;                  /* TC_ACT_* the program returned */
	__u32 ct_state;                 /* last conntrack result */
};
