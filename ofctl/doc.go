// Package ofctl parses, validates and prints OpenFlow flows in the syntax of
// Open vSwitch's ovs-ofctl, with OVS's rules, error messages and
// normalization.  It is pure Go (standard library only) and was written
// from the behaviour of OVS (lib/ofp-flow.c, lib/match.c, lib/meta-flow.c,
// lib/ofp-actions.c, lib/nx-match.c, lib/ofp-port.c, lib/learn.c) and
// checked against ovs-ofctl 3.1 (see ovs_compare_test.go).
//
// # Entry points
//
//   - ParseFlow parses "ovs-ofctl add-flow" text ("actions=" required).
//   - ParseMatch parses "del-flows"/"dump-flows" filters (cookie=V/M,
//     table, out_port, optional priority for --strict).
//   - Flow.MatchString, Flow.ActionsString and Flow.DumpLine print a flow
//     exactly as "ovs-ofctl dump-flows" (or --no-stats) does.
//   - Flow.String prints a canonical text (numbers, no names) that parses
//     back into an equal flow.
//   - Flow.Covers implements del-flows/dump-flows loose and strict
//     selection.
//   - Learn.Learned builds the flow a learn(...) action adds for a packet,
//     as OVS's learn_execute() does, so that dump-flows can print learned
//     flows as OVS prints them.
//
// # Syntax
//
// Tokens are split like OVS's ofputil_parse_key_value(): commas and/or
// white space separate pairs, a key ends at '=', ':' or '(', parentheses
// nest, and the first "action...=" starts the actions, which take the rest
// of the string.  "duration", "n_packets", "n_bytes", "idle_age" and
// "hard_age" are accepted and ignored so that dump-flows output can be fed
// back.
//
// # Normalization
//
// The printed form is what "ovs-ofctl dump-flows" prints by default, i.e.
// after the flow went through OVS's OpenFlow 1.0 + Nicira extension
// encoding.  The parser produces that form directly, so that a parsed flow
// has a single representation and String/ParseFlow round-trips exactly:
//
//   - matches follow match_format(): priority first (omitted when 32768),
//     ct_* fields, the protocol shorthand (ip, tcp6, arp, ...), registers,
//     tun_id, metadata, in_port, VLAN (dl_vlan/dl_vlan_pcp when possible,
//     otherwise vlan_tci), Ethernet, L3, L4; ct_state flags print in bit
//     order (ct_state=+trk+new prints +new+trk); values are masked
//     (nw_src=10.1.2.3/24 prints 10.1.2.0/24, nw_tos=41 prints 40);
//   - dl_vlan, vlan_vid, dl_vlan_pcp/vlan_pcp are bits of vlan_tci,
//     ip_dscp is nw_tos>>2 and in_port_oxm (OXM_OF_IN_PORT, 32 bits,
//     OpenFlow 1.1+ port numbers) is in_port (views; see FieldID);
//   - fields OVS stores together print under the protocol's name:
//     "arp,nw_src=X,nw_proto=1" is arp_spa=X,arp_op=1 and
//     "icmp,tp_src=3" is icmp_type=3;
//   - set_field becomes mod_dl_src/dst, mod_nw_src/dst, mod_nw_tos,
//     mod_tp_src/dst, mod_vlan_vid/pcp, strip_vlan or "load" actions, and
//     mod_nw_ttl, mod_nw_ecn become "load"s, as OVS encodes them for
//     OpenFlow 1.0; loads wider than 64 bits (ct_label) are split;
//     subfields print with their NXM/OXM names (NXM_NX_REG0[0..15]);
//   - "controller" (without options) and "output:CONTROLLER" are
//     Output{PortController, 65535} ("CONTROLLER:65535"); pop_vlan is
//     strip_vlan; set_vlan_vid/pcp are mod_vlan_vid/pcp; note data is
//     zero-padded like OVS's NXAST_NOTE ("note:01" is note:01.00.00.00.00.00);
//     "drop" is an empty action list;
//   - learn(...) prints as lib/learn.c's learn_format(): table always, then
//     idle_timeout, hard_timeout, fin_idle_timeout, fin_hard_timeout,
//     priority, delete_learned and cookie when not the defaults, then the
//     specs with NXM names ("NXM_OF_VLAN_TCI[0..11]", a source equal to the
//     destination left out), a whole-field immediate with the field's
//     meta-flow name in its syntax ("eth_type=0x800", "in_port=vnet1",
//     "tcp_dst=80"), a partial one and a load's in hex; its numbers are
//     read with atoi()/strtoull() as OVS reads them (no error: garbage is 0,
//     priority=70000 is 4464).  The flows it learns (Learn.Learned) carry
//     fin_timeout(...) first when fin timeouts are set, their loads as
//     "load" actions and their outputs as output:N.
//
// # Deliberate differences from OVS
//
//   - Match prerequisites are errors ("tp_dst=80: prerequisites not met for
//     setting tp_dst ..."); OVS silently drops such fields
//     (ofputil_normalize_match()) and only logs it.  The rules are OVS's
//     normalization rules (e.g. nw_src is allowed with ip, arp or rarp).
//   - So are ct_tp_src/ct_tp_dst without ct_nw_proto, and ct_nw_proto=0:
//     OVS's NXM encoding (nx_put_raw()) carries ct_nw_proto, ct_tp_src and
//     ct_tp_dst only when ct_nw_proto is not 0 and leaves them out without
//     a word.  The original-tuple matches OVS refuses are refused with its
//     code in the message: without a valid connection state in the match
//     (OFPBMC_BAD_PREREQ), ct_nw_src/dst without ip or ct_ipv6_src/dst
//     without ipv6 (OFPBAC_MATCH_INCONSISTENT).
//   - Impossible ct_state matches are errors, with the wording of OVS's
//     validate_ct_state() ("-trk+new", "+new+est", "+inv+new", "+new+rpl").
//   - table=255 is rejected by ParseFlow (OVS treats it as "no table").
//   - goto_table prints as goto_table:N and push_vlan as push_vlan:0x8100
//     (an OpenFlow 1.0 session cannot carry them; OVS turns goto_table
//     into resubmit(,N) and refuses push_vlan); importance and flow flags
//     (send_flow_rem, ...) print as OpenFlow 1.3+ dumps show them.
//   - vlan_tci matches without the 0x1000 "present" bit (which never match)
//     are kept; OVS's OpenFlow 1.0 encoding turns them into vlan_tci=0x0000.
//   - set_field with a mask always becomes loads (OVS's OpenFlow 1.0
//     encoding ignores the mask for fields with a legacy action);
//     set_field to dl_vlan becomes mod_vlan_vid.
//   - nat flags (persistent, hash, random) without an address range are
//     dropped at parse time, as OVS does not print them either.
//   - A nat port of 0 (":0", ":0-N") is an invalid nat range: OVS prints
//     ":0" as no port and refuses ":0-N" only when the flow is decoded
//     (OFPBAC_BAD_ARGUMENT); ports beyond 65535 are refused as they are
//     in OVS's parser.
//   - Errors that OVS reports without naming the offending text get it
//     appended (`Both "hash" and "random" are not allowed. (in "ct(...)")`)
//     or, for action checks, added after OVS's message
//     ("actions are invalid with specified match
//     (OFPBAC_MATCH_INCONSISTENT): ct(commit): ct requires ip or ipv6 in
//     the match").
//   - learn: limit (other than 0), result_dst and send_flow_rem are
//     refused ("learn option limit=5 is not supported"); so is a load of
//     ct_mark or ct_label, which OVS accepts but whose learned flows its own
//     dump-flows then fails to read ("cannot set CT fields outside of ct
//     action"); a ct_state immediate prints as flags ("ct_state=new|trk"),
//     where OVS prints a mask of 32 bits ("+new-est-...-[Unknown]-...")
//     that nothing parses; a source or a load of dl_vlan or dl_vlan_pcp
//     (no NXM header), which only the switch refuses when it decodes the
//     action (OFPBAC_BAD_SET_TYPE), is refused by the parser; OVS's
//     messages for failed checks ("actions are invalid with specified
//     match (OFPBAC_MATCH_INCONSISTENT)") are followed by the spec and the
//     field.  As in OVS, a learn's match on part of a field that cannot be
//     masked (NXM_OF_IN_PORT[0..7], nw_ecn, ip_dscp) is accepted and adds
//     nothing to the learned flow.
//   - Only the fields and actions of fields.go, actions.go and learn.go are
//     supported; other OVS actions (group, bundle, fin_timeout, ...) are
//     reported as "action X is not supported" (FinTimeout only appears in
//     learned flows); table names are not supported.
package ofctl
