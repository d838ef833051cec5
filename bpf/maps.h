/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map of the datapath. The loader pins each one under
 * <bpffs>/<bridge>/, by its name, so that each `ebpfovs` invocation finds
 * the bridge's state without a daemon. It pins them itself, one step at a
 * time and bridge_complete last (loader/bridge.go, create), not through
 * libbpf's pinning attribute: a command killed between two pins leaves a
 * bridge the next one recognizes as half-built. "W:" says who writes the
 * map.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "context.h"

/* ifindex -> OpenFlow port number. W: loader (attach/detach). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} port_by_ifindex SEC(".maps");

/* OpenFlow port number -> port. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port);
} ports SEC(".maps");

/* Per-port, per-CPU packet counters. W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port_counts);
} port_stats SEC(".maps");

/* The VLANs a port trunks, as configured (OVS's Port trunks), read when
 * the port has PORT_F_TRUNKS. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct vlan_bitmap);
} port_trunks SEC(".maps");

/* Patch port number -> the peer bridge's tc_patch program, which goes on
 * with the packet as received on the peer port (actions.h, patch_out).
 * W: loader, on both bridges when a pair is complete. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} patch_ports SEC(".maps");

/* A packet from a tunnel device: which tunnel port it came in on
 * (tc_tunnel), by the device and the remote end. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, struct tunnel_port_key);
	__type(value, __u32);
} tunnel_ports SEC(".maps");

/* OpenFlow port number -> its device, for XDP_REDIRECT (xdp.h): every
 * port of the bridge, whatever its attach mode. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* The stages of the TC and XDP programs (enum stage, stages.h): a stage
 * tail-calls the next. W: loader, when it creates the bridge. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
} tc_stages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, STAGE_MAX);
	__type(key, __u32);
	__type(value, __u32);
} xdp_stages SEC(".maps");

/* Pinned last, when the loader has created everything else of the
 * bridge (loader/bridge.go), and removed first when it removes the
 * bridge: a bridge directory without it was left half-built by a command
 * that did not finish. Not used by the programs; holds the layout version
 * of the bridge's pins. W: loader, once. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} bridge_complete SEC(".maps");

/* OpenFlow port number -> the port change a command has begun there
 * (loader/intent.go): written before the loader touches the kernel for
 * the port, cleared when the command is done. The next attach or detach
 * undoes an attach, or finishes a detach, that a killed command left.
 * Not used by the programs. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port_change);
} port_changes SEC(".maps");

/* Bridge-wide settings, one entry. W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bridge_config);
} config SEC(".maps");

/* Classifier (classifier.h). W: loader, in the order actions, masks, flows, tables. */

/* gen * MAX_TABLES + table id -> its subtables, sorted by max priority. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * MAX_TABLES);
	__type(key, __u32);
	__type(value, struct table);
} tables SEC(".maps");

/* mask id -> mask: the bits a subtable matches and the key words they cover. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_MASKS);
	__type(key, __u32);
	__type(value, struct flow_mask);
} masks SEC(".maps");

/* (table, gen, mask id, masked key) -> highest-priority flow with that match.
 * W: loader; datapath: learned flows (learn.h), an entry in each generation
 * under a learned subtable's mask id, which the loader's images leave out. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GENERATIONS * (MAX_FLOWS + LEARN_MAX));
	__type(key, struct flow_lookup);
	__type(value, struct flow_ref);
} flows SEC(".maps");

/* Exact-match cache in front of the tuple search: (epoch, table, whole key)
 * -> the flow found, or flow_id NO_TABLE for "no match". A new epoch (any
 * flow-table change) makes every entry stale; LRU recycles them.
 * W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CACHE_ENTRIES);
	__type(key, struct cache_key);
	__type(value, struct flow_ref);
} flow_cache SEC(".maps");

/* flow id + gen * MAX_FLOWS -> its action list in that generation; then
 * learned slot s's at GENERATIONS * MAX_FLOWS + s (W: datapath). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GENERATIONS * MAX_FLOWS + LEARN_MAX);
	__type(key, __u32);
	__type(value, struct action_list);
} flow_actions SEC(".maps");

/* flow id -> the flow's normalized text. W: loader. Allocated on use. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct flow_record);
} flow_meta SEC(".maps");

/* flow id -> when a packet last used it (CLOCK_MONOTONIC ns), for
 * idle_timeout. W: datapath (flows with an idle_timeout, at most every
 * 100 ms; learned flows when learned), loader (at install). Learned slot
 * s is flow MAX_FLOWS + s here and in flow_stats. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_FLOWS + LEARN_MAX);
	__type(key, __u32);
	__type(value, __u64);
} flow_used SEC(".maps");

/* flow id -> per-CPU packet and byte counts. W: datapath; loader zeroes on install. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_FLOWS + LEARN_MAX);
	__type(key, __u32);
	__type(value, struct flow_counts);
} flow_stats SEC(".maps");

/* learned slot -> its state, entry and the packet that learned it.
 * W: datapath, loader (deletes). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEARN_MAX);
	__type(key, __u32);
	__type(value, struct learned_slot);
} learned_slots SEC(".maps");

/* template id -> a learn action, compiled (ACT_LEARN's arg). W: loader,
 * before any flow names it; never rewritten while a generation uses it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEARN_TEMPLATES);
	__type(key, __u32);
	__type(value, struct learn_template);
} learn_templates SEC(".maps");

/* template id -> the learn action as the user gave it (a binary record of
 * a flow holding only it): dump-flows prints learned flows from it, the
 * learning flow gone or not. W: loader. Never read by the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LEARN_TEMPLATES);
	__type(key, __u32);
	__type(value, struct flow_record);
} learn_meta SEC(".maps");

/* [0]: the next learned slot to try, and the learn limit (learn.h).
 * W: datapath (cursor), loader (limit). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct learn_alloc_state);
} learn_state SEC(".maps");

/* A learned flow being built, per CPU: its key (64 words, as the gather
 * reads: classifier.h), entry and actions. W: datapath. */
struct learn_scratch {
	__u64 key[64];
	struct flow_lookup lk;
	struct action_list acts;
	struct flow_ref ref;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct learn_scratch);
} learn_scratch SEC(".maps");

/* NORMAL's MAC learning table. W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAC_MAX_ENTRIES);
	__type(key, struct mac_key);
	__type(value, struct mac_entry);
} macs SEC(".maps");

/* Connections (ct_table.h): key -> the slot of ct_slots holding it. W:
 * datapath only (commit; removal, also for the loader's flushes through
 * ct_delete_keys); the loader's FillConntrack for benchmarks. A plain
 * hash, not an LRU: a full table refuses a commit instead of silently
 * evicting a live connection. Whoever removes a connection (ct_delete_ref)
 * decrements ct_count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_MAX_ENTRIES);
	__type(key, struct ct_key);
	__type(value, struct ct_ref);
} conntrack SEC(".maps");

/* The connections themselves, by slot (ct_table.h: ct_find, ct_commit,
 * ct_delete). The loader sizes it CT_SLOT_SLACK above conntrack: a slot
 * is taken before its key goes in, and freed after the key is out. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CT_MAX_ENTRIES + CT_SLOT_SLACK);
	__type(key, __u32);
	__type(value, struct ct_entry);
} ct_slots SEC(".maps");

/* Slots freed by ct_delete, for ct_commit to take again (the never-used
 * ones are counted out from ct_count[CT_COUNT_SLOTS]). */
struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, CT_MAX_ENTRIES + CT_SLOT_SLACK);
	__type(value, __u32);
} ct_free SEC(".maps");

/* Live connections per zone, and in all zones at [CT_COUNT_TOTAL]; at
 * [CT_COUNT_SLOTS] the first ct_slots entry never used. W: datapath
 * (atomic adds: commit, delete, ct_slot_take), loader (atomic adds
 * through mmap, hence BPF_F_MMAPABLE: FillConntrack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CT_ZONES + 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} ct_count SEC(".maps");

/* maxconns and the default zone limit. W: loader; datapath (last_sweep_ns). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_limits);
} ct_limit SEC(".maps");

/* zone -> its connection limit (ct-set-limits zone=Z,limit=L). W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_ZONES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u32);
} ct_zone_limit SEC(".maps");

/* The exact-match cache (emc.h), one per CPU: a packet's key -> what its
 * whole walk did. W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EMC_ENTRIES);
	__type(key, __u32);
	__type(value, struct emc_entry);
} emc SEC(".maps");

/*
 * Per-packet working memory (struct pkt_ctx, actions.h), one per CPU. The
 * pipeline's state does not fit the 512-byte BPF stack next to its call
 * chain. TC ingress runs with bottom halves off, so two packets never share
 * a CPU's entry at once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pkt_ctx);
} scratch SEC(".maps");

/* A new connection's entry being built, per CPU: the update helper needs its
 * value from the stack or a map (not from a global function's argument),
 * and 144 bytes do not fit the stack. W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ct_entry);
} ct_new SEC(".maps");

/* zone -> its timeout policy (ct-set-timeouts). W: loader. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ct_timeouts);
} ct_timeout_policy SEC(".maps");

/* Datapath counters, enum counter. W: datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Last packet's trace, written only by tc_trace. W: datapath; R: loader trace. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace);
} trace_buf SEC(".maps");

static __always_inline void count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

/* Add n to this CPU's value of a counter. */
static __always_inline void count_n(__u32 c, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);

	if (v)
		*v += n;
}

/*
 * The datapath's clock: CLOCK_MONOTONIC_COARSE, which lags CLOCK_MONOTONIC
 * (the loader's) by at most a tick. Every time it keeps -- conntrack
 * expiry and start, flow timeouts, MAC ages -- counts in seconds or tenths,
 * and the precise clock costs about 30 ns a read under a hypervisor (here,
 * as much as the rest of an established packet's tracking); the coarse one
 * a few.
 */
static __always_inline __u64 dp_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/* This CPU's value of a counter. */
static __always_inline __u64 counter_value(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &c);

	return v ? *v : 0;
}
