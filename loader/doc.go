// Package loader turns the ebpfovs datapath (package bpf) into a running
// switch: it loads and pins the programs and maps of a bridge under
// <bpffs>/<bridge>/, attaches the program to ports (TCX, or clsact+cls_bpf
// where TCX is missing), keeps the OpenFlow port table, compiles parsed
// flows (package ofctl) into classifier map entries, and reads conntrack.
//
// Every call opens the bridge's pinned state, so no daemon is needed: the
// kernel keeps the datapath running between `ebpfovs` invocations.
package loader
