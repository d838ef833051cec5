// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * The ebpfovs datapath: a packet's walk reads straight down this file.
 *
 *   parse (parse.h) -> classify (classifier.h) -> act (actions.h), where the
 *   ct() action runs conntrack (conntrack.h) and may send the packet back to
 *   classify in another table (recirculation), at most MAX_PASSES times.
 *
 * Two programs share the code: tc_ingress is attached to every port;
 * tc_trace is the same pipeline compiled with tracing on, run only through
 * BPF_PROG_TEST_RUN by `ebpfovs trace` and the tests, so the attached program
 * pays nothing for tracing.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "common.h"
#include "maps.h"
#include "parse.h"
#include "classifier.h"
#include "conntrack.h"
#include "actions.h"

char __license[] SEC("license") = "Dual BSD/GPL";

/* BTF only describes what the object uses; these anchor the enums bpf2go
 * turns into Go constants for the loader. */
const enum action_type *unused_action_type __attribute__((unused));
const enum attach_mode *unused_attach_mode __attribute__((unused));
const enum counter *unused_counter __attribute__((unused));
const enum tcp_ct_state *unused_tcp_ct_state __attribute__((unused));

static __always_inline int pipeline(struct __sk_buff *skb, const int tracing)
{
	struct pkt_ctx c = {};
	struct trace *tr = NULL;
	struct port_counts *ps;
	__u32 ifindex = skb->ifindex, zero = 0, table = 0, i, *port;
	int verdict;

	count(CNT_PACKETS);
	port = bpf_map_lookup_elem(&port_by_ifindex, &ifindex);
	if (!port) {
		count(CNT_NOT_OURS);
		return TC_ACT_OK;
	}
	c.out.in_port = *port;
	if (tracing) {
		tr = bpf_map_lookup_elem(&trace_buf, &zero);
		if (tr)
			__builtin_memset(tr, 0, sizeof(*tr));
	}

	/* Parse. */
	if (parse(skb, &c.key, &c.pi))
		count(CNT_TRUNCATED);
	c.key.in_port = bpf_htonl(c.out.in_port);
	ps = bpf_map_lookup_elem(&port_stats, &c.out.in_port);
	if (ps) {
		ps->rx_packets++;
		ps->rx_bytes += c.pi.len;
	}

	/* Classify and act, once per pass. */
	for (i = 0; i < MAX_PASSES; i++) {
		struct action_list *acts;
		struct flow_counts *fs;
		struct flow_ref ref;
		int found;

		found = classify(&c.key, table, &ref);
		if (tracing && tr) {
			tr->npasses = i + 1;
			tr->pass[i & (MAX_PASSES - 1)].table = table;
			tr->pass[i & (MAX_PASSES - 1)].ct_state = bpf_ntohl(c.key.ct_state);
			tr->pass[i & (MAX_PASSES - 1)].flow_id = found ? ref.flow_id : NO_TABLE;
			tr->pass[i & (MAX_PASSES - 1)].priority = found ? ref.priority : 0;
		}
		if (!found) {
			count(CNT_MISS); /* OpenFlow table miss: drop */
			break;
		}
		fs = bpf_map_lookup_elem(&flow_stats, &ref.flow_id);
		if (fs) {
			fs->packets++;
			fs->bytes += c.pi.len;
		}
		acts = bpf_map_lookup_elem(&flow_actions, &ref.flow_id);
		if (!acts)
			break;
		table = exec_actions(skb, &c, acts);
		if (table == NO_TABLE)
			break;
		if (i == MAX_PASSES - 1)
			count(CNT_PASS_LIMIT);
	}

	verdict = finish(skb, &c.out);
	if (!c.out.pending && ps)
		ps->rx_dropped++;
	if (tracing && tr) {
		tr->nout = c.out.nout;
		for (i = 0; i < TRACE_MAX_OUT; i++)
			tr->out_port[i] = c.out.port[i];
		tr->verdict = verdict;
		tr->ct_state = c.ct.ct_state;
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
