// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * The ebpfovs datapath: a packet's walk reads straight down this file.
 *
 *   parse (parse.h) -> classify (emc.h, classifier.h) -> act (actions.h), where the
 *   ct() action runs conntrack (conntrack.h) and may send the packet back to
 *   classify in another table (recirculation: a new pass), and resubmit
 *   looks up another table and runs its actions before going on (a nested
 *   frame).
 *
 * The walk is a loop of steps: start a pass (a lookup), run one action,
 * enter a resubmit (a lookup), or leave a finished frame. Bounds: MAX_STEPS
 * steps, MAX_PASSES passes, MAX_DEPTH nested frames.
 *
 * A packet whose key the exact-match cache knows skips the walk: emc.h
 * replays what the walk did for the last packet with that key.
 *
 * The pipeline is two stages (stages.h), each its own program, so that
 * the verifier checks each on its own: the entry (parse, the cache, the
 * port) and the walk (at most WALK_STEPS steps a run; a longer walk goes
 * on in a new run, a tail call to the walk again). tc_ingress is attached to every port; tc_trace is the same
 * entry with tracing on, run only through BPF_PROG_TEST_RUN by `ebpfovs
 * trace` and the tests (with cb[0] bit 0 set it is a dry run that changes
 * no state -- conntrack, MAC table, counters -- and sends nothing); both
 * go on in tc_walk. xdp_ingress and xdp_walk are the same in XDP mode
 * (xdp.h). Three more programs, never attached, do the connection table's
 * housekeeping in the kernel when the loader runs them: ct_gc, ct_flush
 * and ct_delete_keys.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "common.h"
#include "context.h"
#include "maps.h"
#include "parse.h"
#include "classifier.h"
#include "conntrack.h"
#include "rewrite.h"
#include "actions.h"
#include "emc.h"
#include "xdp.h"
#include "stages.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* BTF only describes what the object uses; these anchor the enums bpf2go
 * turns into Go constants for the loader. */
const enum action_type *unused_action_type __attribute__((unused));
const enum attach_mode *unused_attach_mode __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum tcp_ct_state *unused_tcp_ct_state __attribute__((unused));
const enum stage *unused_stage __attribute__((unused));
const enum limit *unused_limit __attribute__((unused));
const enum gather *unused_gather __attribute__((unused));
const enum mask_word *unused_mask_word __attribute__((unused));
const enum packet_field *unused_packet_field __attribute__((unused));
const enum set_flag *unused_set_flag __attribute__((unused));
const enum vlan_op *unused_vlan_op __attribute__((unused));
const enum ct_flag *unused_ct_flag __attribute__((unused));
const enum no_table *unused_no_table __attribute__((unused));
const enum cfg_flag *unused_cfg_flag __attribute__((unused));
const enum ct_entry_flag *unused_ct_entry_flag __attribute__((unused));
const enum port_flag *unused_port_flag __attribute__((unused));
const enum ct_count_index *unused_ct_count_index __attribute__((unused));
const enum nat_flag *unused_nat_flag __attribute__((unused));
const enum ct_nat *unused_ct_nat __attribute__((unused));
const enum emc_shape *unused_emc_shape __attribute__((unused));
const enum port_type *unused_port_type __attribute__((unused));
const enum port_vlan_mode *unused_port_vlan_mode __attribute__((unused));
const enum hdr_field *unused_hdr_field __attribute__((unused));
const enum tunnel_flag *unused_tunnel_flag __attribute__((unused));
const enum learn_limit *unused_learn_limit __attribute__((unused));
const enum learn_op_kind *unused_learn_op_kind __attribute__((unused));
const enum learned_state *unused_learned_state __attribute__((unused));
const enum tunnel_kind *unused_tunnel_kind __attribute__((unused));

static __always_inline void trace_lookup(struct pkt_ctx *c, __u32 table,
					 int found, const struct flow_ref *ref)
{
	__u32 zero = 0, i;
	struct trace *tr;

	if (!c->tracing)
		return;
	tr = bpf_map_lookup_elem(&trace_buf, &zero);
	if (!tr || tr->nlookups >= TRACE_MAX_LOOKUPS)
		return;
	i = tr->nlookups & (TRACE_MAX_LOOKUPS - 1);
	tr->lookup[i].table = table;
	tr->lookup[i].flow_id = found ? ref->flow_id : NO_TABLE;
	tr->lookup[i].priority = found ? ref->priority : 0;
	tr->lookup[i].ct_state = bpf_ntohl(c->key.ct_state);
	tr->lookup[i].depth = c->depth;
	tr->lookup[i].pass = c->passes - 1;
	tr->nlookups++;
}

/* Look table up and, on a match, push a frame running the flow's actions. */
static __always_inline void lookup_push(struct pkt_ctx *c, __u32 table,
					__be32 restore_in_port)
{
	struct flow_counts *fs;
	struct flow_ref ref;
	struct frame *f;
	int found;

	found = classify(c, table, c->gen, c->epoch, &ref);
	if (found & CLASSIFY_LEARNED)
		c->emc.ok = 0; /* a flow learned next must take effect: not cached */
	found &= 1;
	trace_lookup(c, table, found, &ref);
	if (c->emc.ok)
		emc_note_lookup(c, found, &ref);
	if (!found) {
		/* A miss ends a pass (OpenFlow: drop); in a resubmit it is just no actions. */
		if (c->depth == 0)
			count(CNT_MISS);
		c->key.in_port = restore_in_port;
		return;
	}
	fs = c->dryrun ? NULL : bpf_map_lookup_elem(&flow_stats, &ref.flow_id);
	if (fs && ref.birth && fs->birth != ref.birth) {
		/* A learned flow's counters, on this CPU, still of the slot's
		 * last flow: the datapath cannot zero other CPUs' when it learns. */
		fs->packets = 0;
		fs->bytes = 0;
		fs->birth = ref.birth;
	}
	if (fs) {
		fs->packets++;
		fs->bytes += c->pi.len;
	}
	if (ref.idle_timeout && !c->dryrun) {
		/* Shared by all CPUs: refresh at most every 100 ms (well under
		 * the 1 s smallest idle_timeout), so steady traffic reads the
		 * cache line but rarely writes it. */
		__u64 *used = bpf_map_lookup_elem(&flow_used, &ref.flow_id);
		__u64 now = dp_now();

		if (used && now - *used > 100000000ULL)
			*used = now;
	}
	f = &c->frames[c->depth & (MAX_DEPTH - 1)];
	f->acts = ref.acts;
	f->idx = 0;
	f->table = table;
	f->in_port = restore_in_port;
	c->depth++;
}

/* What step() asks of the program running it. */
enum { STEP_NEXT = 0, STEP_DONE, STEP_ACT };

/*
 * One step of the walk. Returns STEP_DONE when the packet is done, STEP_ACT
 * when the program must run c->act (exec_ct, exec_meta, or its own
 * exec_action*), else STEP_NEXT. Global, and free of the program's context
 * type, so TC and XDP share it and the verifier checks it once.
 */
__noinline int step(struct pkt_ctx *c)
{
	const struct action_list *acts;
	const struct action *a;
	struct frame *f;
	__u32 table, acts_idx;

	if (!c || c->halt)
		return STEP_DONE;

	if (c->depth == 0) {
		/* Between passes: the first, then the copies ct(table=N)s forked,
		 * in the order they forked (recirc_fork). */
		if (c->next_table == NO_TABLE && !c->recirc_n)
			return STEP_DONE;
		if (c->passes >= MAX_PASSES) {
			count(CNT_PASS_LIMIT);
			c->emc.ok = 0;
			return STEP_DONE;
		}
		if (c->next_table != NO_TABLE) {
			table = c->next_table;
			c->next_table = NO_TABLE;
		} else {
			table = recirc_resume(c);
		}
		c->passes++;
		lookup_push(c, table, c->key.in_port);
		return STEP_NEXT;
	}

	f = &c->frames[(c->depth - 1) & (MAX_DEPTH - 1)];
	/* Map keys from the stack: up to Linux 6.1 a helper refuses a pointer
	 * into a global function's argument (the verifier's "mem") as a key. */
	acts_idx = f->acts;
	acts = bpf_map_lookup_elem(&flow_actions, &acts_idx);
	if (!acts || f->idx >= acts->n || f->idx >= MAX_ACTIONS) {
		/* The frame is done: back to its caller, with its in_port. */
		c->key.in_port = f->in_port;
		c->depth--;
		return STEP_NEXT;
	}
	a = &acts->a[f->idx & (MAX_ACTIONS - 1)];
	f->idx++;

	if (a->type == ACT_RESUBMIT) {
		__be32 saved = c->key.in_port;

		if (c->depth >= MAX_DEPTH) {
			count(CNT_DEPTH_LIMIT);
			c->emc.ok = 0;
			return STEP_NEXT;
		}
		table = a->arg == NO_TABLE ? f->table : a->arg;
		if (a->aux)
			c->key.in_port = bpf_htonl(a->aux);
		lookup_push(c, table, saved);
		return STEP_NEXT;
	}
	c->act = *a;
	return STEP_ACT;
}

/* A packet's start: the context as the first pass in table 0 needs it. */
static __always_inline void ctx_init(struct pkt_ctx *c, const struct bridge_config *cfg,
				     __u32 in_port, int tracing, int dryrun)
{
	/* The fields a packet brings; the pipeline's own (metadata,
	 * registers, ct_label) wait for ctx_walk(): a cache hit never reads them. */
	__builtin_memset(&c->key, 0, __builtin_offsetof(struct flow_key, metadata));
	__builtin_memset(&c->key.ipv6_src, 0, __builtin_offsetof(struct flow_key, ct_label) -
					      __builtin_offsetof(struct flow_key, ipv6_src));
	__builtin_memset(&c->key.arp_sha, 0, __builtin_offsetof(struct flow_key, ct_ipv6_src) -
					     __builtin_offsetof(struct flow_key, arp_sha));
	__builtin_memset(&c->pi, 0, __builtin_offsetof(struct pkt_info, written));
	c->key.tun_id = 0; /* for a cache hit; ctx_walk clears them again */
	c->key.tun_src = 0;
	c->key.tun_dst = 0;
	c->ct.done = 0;
	c->ct.ct_state = 0; /* scratch is per CPU: nothing may leak from the last packet */
	c->out.in_port = in_port;
	c->out.pending = 0;
	c->out.pending_vlan = 0;
	c->out.patch = 0;
	c->out.hops = 0;
	c->out.tunnel_out = 0;
	c->out.tun_id = 0;
	c->out.tun_src = 0;
	c->out.tun_dst = 0;
	c->out.nout = 0;
	c->out.noport = 0;
	c->out.notx = 0;
	c->emc.ok = 0;
	c->gen = cfg->gen;
	c->tracing = tracing;
	c->liberal = cfg->flags & CFG_TCP_LIBERAL;
	c->dryrun = dryrun;
	c->out.dryrun = dryrun;
}

/* The rest of the context a walk needs (a cache hit needs none of it):
 * the pipeline's state, and its key fields, which start at zero. Not
 * c->ct: a cache hit that falls back to the walk leaves its result there. */
static __always_inline void ctx_walk(struct pkt_ctx *c, const struct bridge_config *cfg)
{
	c->out.flood = 0;
	c->depth = 0;
	c->passes = 0;
	c->steps = 0;
	c->next_table = 0; /* the first pass, in table 0 */
	c->recirc_head = 0;
	c->recirc_n = 0;
	c->ct.nat_range.flags = 0;
	c->epoch = (cfg->epoch & 0x7fffffff) |
		   ((cfg->flags & CFG_NO_CACHE) ? 0x80000000 : 0);
	c->halt = 0;
	c->key.metadata = 0;
	__builtin_memset(c->key.regs, 0, sizeof(c->key.regs));
	__builtin_memset(c->key.ct_label, 0, sizeof(c->key.ct_label));
	/* The original tuple, which only a ct() sets (ct_orig_tuple), and
	 * the tunnel metadata (a tunnel port's entry sets it after this). */
	__builtin_memset(c->key.ct_ipv6_src, 0, sizeof(c->key) -
					       __builtin_offsetof(struct flow_key, ct_ipv6_src));
}

/* What a run of the walk stage ends with. */
enum { WALK_DONE = 0, WALK_AGAIN };

/*
 * The walk stage's loop: classify and act, step by step, until the packet
 * is done (WALK_DONE) or this run took WALK_STEPS steps (WALK_AGAIN: the
 * caller tail-calls the walk stage, which goes on where this run left).
 * The verifier walks the loop's every iteration, so its bound is the
 * stage's cost: WALK_STEPS, not the packet's MAX_STEPS. A recirculation
 * (a pass that ct(table=N) asked for) is a step like the others: it takes
 * no tail call of its own while the run has steps left (a tail call costs
 * ~11 ns here: docs/performance.md). TC passes its skb; XDP passes NULL
 * and xdp set (always inlined, so each program keeps only its own
 * branch). What the walk does is recorded for the exact-match cache as it
 * goes (XDP never stores it: emc_key() was not called there, so c->emc.ok
 * stays 0).
 */
static __always_inline int walk(struct pkt_ctx *c, struct __sk_buff *skb, const int xdp)
{
	__u32 i, table;
	int r;

	for (i = 0; i < WALK_STEPS; i++) {
		if (c->steps >= MAX_STEPS) {
			count(CNT_STEP_LIMIT);
			c->emc.ok = 0;
			return WALK_DONE;
		}
		c->steps++;
		r = step(c);
		if (r == STEP_DONE)
			return WALK_DONE;
		if (r != STEP_ACT)
			continue;
		emc_note_action(c);
		if (c->act.type == ACT_CT) {
			table = exec_ct(c);
			if (c->emc.ok)
				emc_note_ct(c);
		} else if (act_is_meta(c->act.type)) {
			table = exec_meta(c);
		} else {
			table = xdp ? exec_action_xdp(c) : exec_action(skb, c);
		}
		if (table != NO_TABLE)
			c->next_table = table;
	}
	return WALK_AGAIN;
}

/* The in_port's counters (NULL in a dry run). */
static __always_inline struct port_counts *rx_counts(struct pkt_ctx *c)
{
	return c->dryrun ? NULL : bpf_map_lookup_elem(&port_stats, &c->out.in_port);
}

/* Count the packet on its in_port. */
static __always_inline void count_rx(struct pkt_ctx *c)
{
	struct port_counts *ps;

	c->key.in_port = bpf_htonl(c->out.in_port);
	ps = rx_counts(c);
	if (ps) {
		ps->rx_packets++;
		ps->rx_bytes += c->pi.len;
	}
}

/* The walk sent the packet nowhere: count it dropped on its in_port. */
static __always_inline void count_rx_dropped(struct pkt_ctx *c)
{
	struct port_counts *ps;

	if (c->out.nout)
		return;
	ps = rx_counts(c);
	if (ps)
		ps->rx_dropped++;
}

/*
 * TC: replay the walk the exact-match cache stored for the packet's key
 * (emc.h). Returns the verdict, or -1 when the walk's ct() now gives
 * another result: the packet then takes the full walk, which finds that
 * result in c->ct and does not track the packet twice.
 */
static __always_inline int emc_replay(struct __sk_buff *skb, struct pkt_ctx *c,
				      struct emc_entry *e)
{
	__u32 i, flags;

	if (e->has_ct) {
		/* The entry's last connection, straight to its slot; else
		 * conntrack proper, and the entry remembers what it found (the
		 * cache is per CPU: plain writes). */
		flags = e->ct_flags | (c->liberal ? CT_LIBERAL : 0);
		if (!emc_hint_match(&e->hint, c) ||
		    !ct_execute_ref(&c->key, &c->pi, &c->ct, &e->hint, flags)) {
			ct_execute(&c->key, &c->pi, &c->ct, e->zone, flags);
			emc_hint_note(&e->hint, c);
		}
		if (!emc_ct_same(c, e))
			return -1;
		if (e->nat_op)
			set_nat(skb, c, 0); /* before the outputs, as the walk did */
	}
	/* What the walk counted -- its flows, table misses, rx (or
	 * rx_dropped), tx, emc_hits, packets -- the entry counts, and emc_fold() adds
	 * later: one add instead of a lookup each (the cache is per CPU:
	 * plain adds). */
	e->hit_packets++;
	e->hit_bytes += c->pi.len;
	c->out.in_port = e->in_port;
	c->key.in_port = bpf_htonl(e->in_port);
	c->out.notx = 1;
	for (i = 0; i < EMC_OUTS && i < e->nout; i++)
		/* in_port too: the walk allowed it; never a patch or tunnel
		 * port (emc_store), so without their code (output_x). */
		output_x(skb, &c->out, e->out[i], 1, 0);
	return finish_x(skb, &c->out, 0);
}

/*
 * The TC entry stage: parse, replay a cached walk, or count the packet on
 * its port and go on to the walk stage.
 */
static __always_inline int pipeline(struct __sk_buff *skb, const int tracing)
{
	__u32 ifindex = skb->ifindex, zero = 0, *port;
	struct bridge_config *cfg;
	struct trace *tr;
	struct emc_entry *e;
	struct pkt_ctx *c;
	int verdict;

	c = bpf_map_lookup_elem(&scratch, &zero);
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!c || !cfg) {
		count(CNT_PACKETS);
		return TC_ACT_SHOT;
	}

	/* Only tc_trace, run by BPF_PROG_TEST_RUN, reads cb: the caller sets it. */
	ctx_init(c, cfg, 0, tracing, tracing && (skb->cb[0] & 1));
	/* pkt_mark: metadata, like in_port; its whole word (parse.h). */
	key_set_label_mark(&c->key, 0, bpf_htonl(skb->mark));
	if (tracing) {
		tr = bpf_map_lookup_elem(&trace_buf, &zero);
		if (tr)
			__builtin_memset(tr, 0, sizeof(*tr));
	}

	/* Parse. */
	if (parse(skb, &c->key, &c->pi)) {
		count(CNT_TRUNCATED);
	} else if (!tracing) {
		/* The exact-match cache: a hit needs no port lookup either
		 * (the entry is for this ifindex, and knows its port). */
		emc_key(c, cfg, ifindex);
		e = emc_find(c);
		if (e) {
			verdict = emc_replay(skb, c, e);
			if (verdict >= 0)
				return verdict; /* counted in packets by the entry */
		}
	}
	count(CNT_PACKETS);

	port = bpf_map_lookup_elem(&port_by_ifindex, &ifindex);
	if (!port) {
		count(CNT_NOT_OURS);
		return TC_ACT_OK;
	}
	c->out.in_port = *port;
	count_rx(c);
	ctx_walk(c, cfg);

	/* Classify and act. */
	stage_tc(skb, STAGE_WALK);
	return TC_ACT_SHOT;
}

/* The TC walk stage's end: the packet goes where the walk sent it. */
static __always_inline int walk_end(struct __sk_buff *skb, struct pkt_ctx *c)
{
	__u32 zero = 0, i;
	struct trace *tr;
	int verdict;

	verdict = finish(skb, &c->out);
	count_rx_dropped(c);
	emc_store(c);
	if (c->tracing) {
		tr = bpf_map_lookup_elem(&trace_buf, &zero);
		if (tr) {
			tr->nout = c->out.nout;
			for (i = 0; i < TRACE_MAX_OUT; i++)
				tr->out_port[i] = c->out.port[i];
			tr->verdict = verdict;
			tr->ct_state = c->ct.ct_state;
		}
	}
	return verdict;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return pipeline(skb, 0);
}

SEC("tc")
int tc_trace(struct __sk_buff *skb)
{
	return pipeline(skb, 1);
}

/*
 * The TC entry of a packet output to a patch port of another bridge:
 * tail-called by that bridge's walk (actions.h, patch_out) with this
 * bridge's port number in cb[0] and the patch ports crossed in cb[1]; it
 * goes on as if received on that port. No exact-match cache: its key
 * names the device the packet came in on, which is another bridge's.
 */
SEC("tc")
int tc_patch(struct __sk_buff *skb)
{
	__u32 zero = 0, in_port = skb->cb[0], hops = skb->cb[1];
	struct bridge_config *cfg;
	struct port *p;
	struct pkt_ctx *c;

	c = bpf_map_lookup_elem(&scratch, &zero);
	cfg = bpf_map_lookup_elem(&config, &zero);
	p = bpf_map_lookup_elem(&ports, &in_port);
	count(CNT_PACKETS);
	if (!c || !cfg || !p || p->type != PORT_PATCH)
		return TC_ACT_SHOT;
	ctx_init(c, cfg, 0, 0, 0);
	c->out.hops = hops;
	key_set_label_mark(&c->key, 0, bpf_htonl(skb->mark));
	if (parse(skb, &c->key, &c->pi))
		count(CNT_TRUNCATED);
	c->out.in_port = in_port;
	count_rx(c);
	ctx_walk(c, cfg);
	stage_tc(skb, STAGE_WALK);
	return TC_ACT_SHOT;
}

/*
 * The TC entry of a flow-based tunnel device the bridge owns (a vxlan
 * device in external mode, shared by the bridge's tunnel ports of one UDP
 * port): the tunnel key the device decapsulated says which tunnel port the
 * packet came in on (tunnel_ports: the device and the remote end, or a
 * remote_ip=flow port) and fills tun_id, tun_src and tun_dst, as OVS's
 * tunnel receive does. No exact-match cache (the device's ifindex does not
 * say the port). A packet no port takes is dropped, counted.
 */
SEC("tc")
int tc_tunnel(struct __sk_buff *skb)
{
	struct tunnel_port_key tk = { .ifindex = skb->ifindex };
	struct bpf_tunnel_key *t;
	struct bridge_config *cfg;
	__u32 zero = 0, *port;
	struct pkt_ctx *c;
	struct port *p;

	c = bpf_map_lookup_elem(&scratch, &zero);
	cfg = bpf_map_lookup_elem(&config, &zero);
	count(CNT_PACKETS);
	if (!c || !cfg)
		return TC_ACT_SHOT;
	ctx_init(c, cfg, 0, 0, 0);
	t = &c->out.pending_tk; /* a buffer in the map value: not the stack */
	if (bpf_skb_get_tunnel_key(skb, t, sizeof(*t), 0))
		goto noport;
	tk.remote = bpf_htonl(t->remote_ipv4);
	port = bpf_map_lookup_elem(&tunnel_ports, &tk);
	if (!port) {
		tk.remote = 0;
		port = bpf_map_lookup_elem(&tunnel_ports, &tk);
	}
	if (!port)
		goto noport;
	c->out.in_port = *port;
	p = bpf_map_lookup_elem(&ports, &c->out.in_port);
	if (!p || !(p->flags & PORT_F_TUNNEL) ||
	    (!(p->tun_flags & TUN_KEY_FLOW) && t->tunnel_id != (__u32)p->tun_key))
		goto noport;
	key_set_label_mark(&c->key, 0, bpf_htonl(skb->mark));
	if (parse(skb, &c->key, &c->pi))
		count(CNT_TRUNCATED);
	count_rx(c);
	ctx_walk(c, cfg);
	c->key.tun_id = bpf_cpu_to_be64(t->tunnel_id);
	c->key.tun_src = bpf_htonl(t->remote_ipv4);
	c->key.tun_dst = bpf_htonl(t->local_ipv4);
	c->out.tun_id = c->key.tun_id;
	c->out.tun_src = c->key.tun_src;
	c->out.tun_dst = c->key.tun_dst;
	stage_tc(skb, STAGE_WALK);
	return TC_ACT_SHOT;
noport:
	count(CNT_TUNNEL_NO_PORT);
	return TC_ACT_SHOT;
}

/*
 * The TC walk stage (STAGE_WALK): WALK_STEPS steps of the walk, then the
 * rest by a tail call to itself, or the packet's end.
 * Entered only from the TC entry stage and from itself, with the packet
 * context in scratch.
 */
SEC("tc")
int tc_walk(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct pkt_ctx *c = bpf_map_lookup_elem(&scratch, &zero);

	if (!c)
		return TC_ACT_SHOT;
	if (walk(c, skb, 0) == WALK_AGAIN) {
		stage_tc(skb, STAGE_WALK);
		c->emc.ok = 0; /* failed: the packet ends here, counted */
	}
	return walk_end(skb, c);
}

/*
 * ct_gc removes the connections expired at the time in cb[0] (low word)
 * and cb[1] (high), in the kernel: the loader runs it through
 * BPF_PROG_TEST_RUN before it reads the table (dump-conntrack,
 * ct-stats-show), with the CLOCK_MONOTONIC time it then judges what it
 * reads by, so nothing it leaves out of a dump is still in the table.
 * (The datapath's coarse clock may lag that by a tick.) Checking expiry
 * in userspace and deleting by key would let a connection committed anew
 * under the same key in between (the read of a big table takes a while)
 * be deleted instead; here the check and the delete are as close as the
 * datapath's own. Returns how many it removed.
 */
SEC("tc")
int ct_gc(struct __sk_buff *skb)
{
	__u64 before = counter_value(CNT_CT_EXPIRED);

	ct_sweep_all(((__u64)skb->cb[1] << 32) | skb->cb[0]);
	return counter_value(CNT_CT_EXPIRED) - before;
}

/*
 * ct_flush removes every connection, or those of one zone (cb[0] bit 0
 * set, the zone in cb[1]), in the kernel: `flush-conntrack [zone=N]`
 * runs it through BPF_PROG_TEST_RUN rather than reading a million
 * entries out to delete them by key. Returns how many it removed.
 */
SEC("tc")
int ct_flush(struct __sk_buff *skb)
{
	struct ct_flush_arg a = { .one_zone = skb->cb[0] & 1, .zone = skb->cb[1] };
	__u64 before = counter_value(CNT_CT_FLUSHED);

	bpf_for_each_map_elem(&conntrack, ct_flush_one, &a, 0);
	return counter_value(CNT_CT_FLUSHED) - before;
}

/*
 * The connection whose key (struct ct_key) is the index'th of the frame
 * ct_delete_keys runs on: 1 if this removed it, 0 if it was not there,
 * -1 past the frame's end. Global: Linux 6.1's verifier gave up at
 * 1,000,000 instructions on the loop below with this inlined.
 */
__noinline int ct_delete_nth(struct __sk_buff *skb, __u32 index)
{
	struct ct_key k;

	if (!skb || index >= CT_DELETE_MAX)
		return -1;
	if (bpf_skb_load_bytes(skb, index * sizeof(k), &k, sizeof(k)))
		return -1;
	return ct_delete(&k) == 0;
}

/*
 * ct_delete removes the connections whose keys (struct ct_key, back to
 * back) make up the frame it is run on, CT_DELETE_MAX at most: the
 * flushes that choose in userspace (by tuple, mark or label) and the
 * limits' and old bridges' expiry. Only the datapath may remove a
 * connection (ct_delete_ref). Returns how many it removed.
 */
SEC("tc")
int ct_delete_keys(struct __sk_buff *skb)
{
	__u32 i, n = 0;
	int r;

	for (i = 0; i < CT_DELETE_MAX; i++) {
		r = ct_delete_nth(skb, i);
		if (r < 0)
			break;
		n += r;
	}
	return n;
}

/*
 * XDP mode (xdp.h): a cached walk replayed (xdp_fast), or the same walk,
 * run before an skb exists, for flow tables whose actions XDP can carry
 * out; otherwise the packet goes on to tc_ingress, untouched and
 * uncounted here. The entry stage.
 */
SEC("xdp.frags")
int xdp_ingress(struct xdp_md *ctx)
{
	__u32 ifindex = ctx->ingress_ifindex, zero = 0, *port;
	struct bridge_config *cfg;
	struct pkt_ctx *c;

	struct emc_entry *e;
	int truncated, verdict;

	port = bpf_map_lookup_elem(&port_by_ifindex, &ifindex);
	cfg = bpf_map_lookup_elem(&config, &zero);
	c = bpf_map_lookup_elem(&scratch, &zero);
	if (!port || !cfg || !c)
		return XDP_PASS;
	if (xdp_oversized(ctx)) {
		count(CNT_XDP_TO_TC);
		return XDP_PASS;
	}
	ctx_init(c, cfg, *port, 0, 0);
	truncated = parse_xdp(ctx, &c->key, &c->pi);
	if (!truncated) {
		emc_key(c, cfg, ifindex);
		e = emc_find(c);
		if (e) {
			verdict = xdp_fast(c, e);
			if (verdict >= 0)
				return verdict; /* counted in packets by the entry */
		}
	}
	ctx_walk(c, cfg);
	/* VLAN ports: NORMAL's per-port tags are TC's (actions.h, normal);
	 * patch ports: a tail call into the peer bridge's TC program. */
	if (!(cfg->flags & (c->gen ? CFG_XDP_GEN1 : CFG_XDP_GEN0)) ||
	    (cfg->flags & (CFG_VLAN_PORTS | CFG_PATCH_PORTS | CFG_TUNNEL_PORTS))) {
		count(CNT_XDP_TO_TC);
		return XDP_PASS;
	}
	count(CNT_PACKETS);
	count(CNT_XDP_PACKETS);

	if (truncated)
		count(CNT_TRUNCATED);
	count_rx(c);
	stage_xdp(ctx, STAGE_WALK);
	return XDP_DROP;
}

/* The XDP walk stage (STAGE_WALK), as tc_walk. */
SEC("xdp.frags")
int xdp_walk(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct pkt_ctx *c = bpf_map_lookup_elem(&scratch, &zero);

	if (!c)
		return XDP_DROP;
	if (walk(c, NULL, 1) == WALK_AGAIN)
		stage_xdp(ctx, STAGE_WALK); /* returns only if it failed: the packet ends here */
	count_rx_dropped(c);
	/* Stored for the next packet of its key, as TC stores: xdp_fast or
	 * TC's emc_replay carries it out. */
	emc_store(c);
	return finish_xdp(&c->out, c->pi.len);
}
