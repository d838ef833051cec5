package loader

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/ebpfovs/ebpfovs/bpf"
)

// timeoutNames are OVS's zone timeout policy attributes, and where each
// lives in struct ct_timeouts. udp_first and udp_single are both the
// kernel's unreplied UDP timeout, icmp_first and icmp_reply its ICMP one.
var timeoutNames = map[string]func(*bpf.DatapathCtTimeouts) *uint32{
	"tcp_syn_sent":    func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[1] },
	"tcp_syn_recv":    func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[2] },
	"tcp_established": func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[3] },
	"tcp_fin_wait":    func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[4] },
	"tcp_close_wait":  func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[5] },
	"tcp_last_ack":    func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[6] },
	"tcp_time_wait":   func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[7] },
	"tcp_close":       func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[8] },
	"tcp_syn_sent2":   func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Tcp[9] },
	"tcp_retransmit":  func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.TcpRetrans },
	"tcp_unack":       func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.TcpUnack },
	"udp_first":       func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.UdpUnreplied },
	"udp_single":      func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.UdpUnreplied },
	"udp_multiple":    func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.UdpReplied },
	"icmp_first":      func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Icmp },
	"icmp_reply":      func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Icmp },
	"other":           func(t *bpf.DatapathCtTimeouts) *uint32 { return &t.Generic },
}

// aliases name the same kernel timeout as another name, and print as it.
var aliases = map[string]bool{"udp_single": true, "icmp_reply": true}

// TimeoutNames lists the attributes ct-set-timeouts knows, sorted.
func TimeoutNames() []string {
	names := make([]string, 0, len(timeoutNames))
	for n := range timeoutNames {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ParseTimeouts parses "name=seconds" settings; 0 restores the default.
func ParseTimeouts(args []string) (map[string]uint32, error) {
	out := map[string]uint32{}
	for _, a := range args {
		name, v, ok := strings.Cut(a, "=")
		if _, known := timeoutNames[name]; !ok || !known {
			return nil, fmt.Errorf("%s: unknown timeout (known: %s)", a, strings.Join(TimeoutNames(), ", "))
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%s: the timeout is a number of seconds", a)
		}
		out[name] = uint32(n)
	}
	return out, nil
}

// SetCTTimeouts changes zone's timeout policy; a zone whose every timeout
// is back to 0 (the defaults) loses its policy. Connections take the new
// timeouts at their next packet, as in the kernel.
func (b *Bridge) SetCTTimeouts(zone uint16, set map[string]uint32) error {
	var tp bpf.DatapathCtTimeouts
	key := uint32(zone)
	if err := b.maps.CtTimeoutPolicy.Lookup(key, &tp); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("read zone %d timeouts: %w", zone, err)
	}
	for name, v := range set {
		*timeoutNames[name](&tp) = v
	}
	if tp == (bpf.DatapathCtTimeouts{}) {
		if err := b.maps.CtTimeoutPolicy.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("reset zone %d timeouts: %w", zone, err)
		}
		var k uint32
		if err := b.maps.CtTimeoutPolicy.NextKey(nil, &k); errors.Is(err, ebpf.ErrKeyNotExist) {
			return b.setConfigFlag(cfgCTPolicies, false) // the last policy is gone
		}
		return nil
	}
	if err := b.maps.CtTimeoutPolicy.Put(key, &tp); err != nil {
		return fmt.Errorf("write zone %d timeouts: %w", zone, err)
	}
	// After the write: the datapath looks policies up only under this flag.
	return b.setConfigFlag(cfgCTPolicies, true)
}

// CTTimeouts returns zone's policy: the timeouts it sets, by name.
func (b *Bridge) CTTimeouts(zone uint16) (map[string]uint32, error) {
	var tp bpf.DatapathCtTimeouts
	if err := b.maps.CtTimeoutPolicy.Lookup(uint32(zone), &tp); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, fmt.Errorf("read zone %d timeouts: %w", zone, err)
	}
	out := map[string]uint32{}
	for name, f := range timeoutNames {
		if v := *f(&tp); v != 0 && !aliases[name] {
			out[name] = v
		}
	}
	return out, nil
}
