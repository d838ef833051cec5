package ofctl

import (
	"fmt"
	"sort"
	"strings"
)

// diffLine formats one side of a difference as "ovs-ofctl diff-flows" does
// (fte_version_format): [table=N ]MATCH[ cookie=0x..][ idle_timeout=N]
// [ hard_timeout=N][ importance=N] actions=ACTIONS.
func diffLine(f *Flow, ports PortMap) string {
	var sb strings.Builder
	if f.Table != 0 {
		fmt.Fprintf(&sb, "table=%d ", f.Table)
	}
	sb.WriteString(f.MatchString(ports))
	if f.Cookie != 0 {
		fmt.Fprintf(&sb, " cookie=%#x", f.Cookie)
	}
	if f.IdleTimeout != 0 {
		fmt.Fprintf(&sb, " idle_timeout=%d", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(&sb, " hard_timeout=%d", f.HardTimeout)
	}
	if f.Importance != 0 {
		fmt.Fprintf(&sb, " importance=%d", f.Importance)
	}
	sb.WriteString(" actions=")
	sb.WriteString(f.ActionsString(ports))
	return sb.String()
}

// Diff compares two flow tables as "ovs-ofctl diff-flows" does: flows are
// the same flow when table, priority and match are equal; for each that is
// missing on one side or differs (cookie, timeouts, importance, actions) it
// returns "-" + a's version and/or "+" + b's. Lines come by table, then
// priority (highest first), then match text.
func Diff(a, b []*Flow, ports PortMap) []string {
	type pair struct {
		key  string
		a, b *Flow
	}
	byKey := map[string]*pair{}
	var order []*pair
	add := func(f *Flow, side int) {
		k := fmt.Sprintf("%03d/%05d/%s", f.Table, 65535-int(f.Priority), f.MatchString(nil))
		p := byKey[k]
		if p == nil {
			p = &pair{key: k}
			byKey[k] = p
			order = append(order, p)
		}
		if side == 0 {
			p.a = f
		} else {
			p.b = f
		}
	}
	for _, f := range a {
		add(f, 0)
	}
	for _, f := range b {
		add(f, 1)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].key < order[j].key })
	var out []string
	for _, p := range order {
		var la, lb string
		if p.a != nil {
			la = diffLine(p.a, ports)
		}
		if p.b != nil {
			lb = diffLine(p.b, ports)
		}
		if la == lb {
			continue
		}
		if la != "" {
			out = append(out, "-"+la)
		}
		if lb != "" {
			out = append(out, "+"+lb)
		}
	}
	return out
}
