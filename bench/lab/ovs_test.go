package lab

import "testing"

func TestCoverageTotal(t *testing.T) {
	out := `Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=3f2c1a0b:
conntrack_full             0.0/sec     0.000/sec        0.0000/sec   total: 3
conntrack_l4csum_err      12.4/sec     3.100/sec        0.0517/sec   total: 186
netdev_sent              100.0/sec    80.000/sec        1.3333/sec   total: 4800
`
	if n := CoverageTotal(out, "conntrack_l4csum_err"); n != 186 {
		t.Errorf("conntrack_l4csum_err = %d, want 186", n)
	}
	if n := CoverageTotal(out, "conntrack"); n != 0 {
		t.Errorf("a prefix matched: %d", n)
	}
	if n := CoverageTotal(out, "upcall_flow_limit_hit"); n != 0 {
		t.Errorf("absent counter = %d, want 0", n)
	}
}
