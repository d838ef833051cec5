/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stages: the datapath is a chain of programs, each verified on its own,
 * joined by tail calls (Cilium's design; the OVS eBPF datapath's parse ->
 * lookup -> action programs). The verifier's work for a program is the sum
 * over its own code and the functions it calls, so a stage boundary is a
 * budget boundary: docs/verifier.md has each program's figure per kernel,
 * and bpf/verifier_test.go fails when one goes over 250,000 processed
 * instructions.
 *
 *   tc_ingress, tc_trace, xdp_ingress   entry: parse, the exact-match cache
 *        |                              (TC), the port; then
 *        v  STAGE_WALK
 *   tc_walk, xdp_walk                   WALK_STEPS (32) steps of classify and
 *        |                              act (conntrack is a call in it; a
 *        +--> STAGE_WALK                ct(table=N) recirculation is a step);
 *                                       a longer walk goes on in a new run of
 *                                       the same stage
 *
 * A walk that outputs to a patch port ends in a tail call to the peer
 * bridge's tc_patch (another bridge's entry stage: actions.h, patch_out).
 *
 * Everything a stage hands to the next is in the per-CPU packet context
 * (`scratch`, context.h): a tail call keeps the CPU, and TC and XDP run
 * with bottom halves off, so no other packet runs on it in between.
 *
 * Tail calls are made only from a program's main function, never from a
 * function it calls: the kernel then limits each frame of a call chain
 * with a tail call in it to 256 bytes of stack.
 *
 * A packet may take 33 tail calls; MAX_STEPS / WALK_STEPS (4) runs of
 * the walk stay well below. A tail call costs ~11 ns (the next program
 * starts afresh: docs/performance.md), so a walk of the usual few steps
 * takes one, the entry's. A tail call that fails (the loader did not fill the
 * stage, or the limit) is counted (CNT_STAGE_FAIL) and the packet ends
 * where it is, as at the pass limit.
 */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "common.h"
#include "maps.h"

/* TC: go on in stage s. Returns only if the tail call failed (counted). */
static __always_inline void stage_tc(struct __sk_buff *skb, __u32 s)
{
	bpf_tail_call(skb, &tc_stages, s);
	count(CNT_STAGE_FAIL);
}

/* XDP: go on in stage s. Returns only if the tail call failed (counted). */
static __always_inline void stage_xdp(struct xdp_md *ctx, __u32 s)
{
	bpf_tail_call(ctx, &xdp_stages, s);
	count(CNT_STAGE_FAIL);
}
