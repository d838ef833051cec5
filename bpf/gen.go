// Package bpf holds the ebpfovs datapath: the C programs in this folder and
// the Go bindings bpf2go generates from them (datapath_bpfel.go/.o).
//
// Regenerate with `go generate ./bpf` (or `make generate`); the generated
// files are committed, and TestGeneratedUpToDate fails when they drift from
// the C sources.
package bpf

//go:generate go tool bpf2go -cc clang-19 -strip llvm-strip-19 -target bpfel -cflags "-O2 -g -Wall -Werror -I/usr/include/x86_64-linux-gnu" -type flow_key -type flow_lookup -type flow_ref -type table -type subtable -type action -type action_list -type flow_counts -type port -type port_change -type port_op -type port_counts -type bridge_config -type cache_key -type ct_timeouts -type ct_limits -type flow_mask -type flow_record -type mac_key -type mac_entry -type ct_key -type ct_ref -type ct_entry -type trace -type trace_lookup -type counter -type action_type -type attach_mode -type tcp_ct_state -type stage -type limit -type gather -type mask_word -type packet_field -type set_flag -type vlan_op -type ct_flag -type no_table -type cfg_flag -type ct_entry_flag -type port_flag -type ct_count_index -type nat_flag -type ct_nat -type nat_range -type emc_shape -type port_type -type port_vlan_mode -type vlan_bitmap -type hdr_field -type tunnel_flag -type tunnel_port_key -type learn_limit -type learn_op_kind -type learned_state -type learn_op -type learn_template -type learned_slot -type learn_alloc_state -type tunnel_kind Datapath datapath.c
