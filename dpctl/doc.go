// Package dpctl is the conntrack language of `ovs-appctl dpctl/...`, as
// ebpfovs speaks it: connection tuples and flush-conntrack's filters, the
// zone=, mark= and labels= arguments, zone limit lists, and the output of
// dump-conntrack, ct-stats-show and ct-get-limits, byte for byte as
// Open vSwitch prints them for its kernel datapath (lib/ct-dpif.c).
//
// It is pure Go and knows no kernel: text goes in, typed values come out
// (and the reverse for output). The loader turns the datapath's entries
// into Conns and applies Filters; ctl turns arguments into these values.
package dpctl
