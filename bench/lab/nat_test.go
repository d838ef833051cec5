package lab

import (
	"slices"
	"strings"
	"testing"
)

func TestCountSNAT(t *testing.T) {
	ebpfovs := strings.Join([]string{
		"tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=40000,dport=7001),reply=(src=10.0.10.2,dst=10.0.0.100,sport=7001,dport=40000),protoinfo=(state=TIME_WAIT)",
		"tcp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=40001,dport=7001),reply=(src=10.0.10.2,dst=10.0.10.1,sport=7001,dport=40001),protoinfo=(state=ESTABLISHED)",
		"udp,orig=(src=10.0.10.1,dst=10.0.10.2,sport=1,dport=2),reply=(src=10.0.10.2,dst=10.0.0.100,sport=2,dport=1)",
		"",
	}, "\n")
	if n, natted := CountSNAT(ebpfovs, func(l string) bool { return strings.HasPrefix(l, "tcp,") }); n != 2 || natted != 1 {
		t.Errorf("ebpfovs dump: %d connections, %d NATed; want 2, 1", n, natted)
	}
	if err := checkSNAT(2, 1); err == nil {
		t.Error("checkSNAT(2, 1) passed")
	}
	kernel := strings.Join([]string{
		"ipv4     2 tcp      6 117 TIME_WAIT src=10.0.10.1 dst=10.0.10.2 sport=52000 dport=7001 src=10.0.10.2 dst=10.0.0.100 sport=7001 dport=52000 [ASSURED] mark=0 zone=0 use=2",
		"tcp      6 431999 ESTABLISHED src=10.0.10.1 dst=10.0.10.2 sport=61000 dport=5201 packets=3 bytes=180 src=10.0.10.2 dst=10.0.0.100 sport=5201 dport=10000 packets=2 bytes=112 [ASSURED] mark=0 use=1",
		"ipv4     2 udp      17 20 src=10.0.10.1 dst=10.0.10.2 sport=1 dport=2 src=10.0.10.2 dst=10.0.10.1 sport=2 dport=1 mark=0 zone=0 use=2",
	}, "\n")
	if n, natted := CountSNAT(kernel, func(l string) bool { return slices.Contains(strings.Fields(l), "tcp") }); n != 2 || natted != 2 {
		t.Errorf("kernel dump: %d connections, %d NATed; want 2, 2", n, natted)
	}
	if err := checkSNAT(2, 2); err != nil {
		t.Error(err)
	}
	if err := checkSNAT(0, 0); err == nil {
		t.Error("checkSNAT(0, 0) passed")
	}
}

func TestDatapathCounters(t *testing.T) {
	show := "bridge lab: 2 ports, 6 flows, 3 connections, pinned at /x/lab\n 1(vnet1): addr:02:00:00:00:0a:01\n     rx packets:5 bytes:300 dropped:0\n datapath: packets:120 not_ours:0 table_miss:1 emc_hits:100 ct_nat_failed:0\n"
	c := DatapathCounters(show)
	if c["packets"] != 120 || c["emc_hits"] != 100 || c["table_miss"] != 1 || len(c) != 5 {
		t.Errorf("DatapathCounters = %v", c)
	}
	if c := DatapathCounters("no counters"); c != nil {
		t.Errorf("DatapathCounters without a datapath line = %v, want nil", c)
	}
}
