package ofctl

import (
	"fmt"
	"reflect"
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

// SameRule tells whether f and g are the same flow table entry: same table,
// priority and match (the stored fields' values and masks, compared as
// bytes).  add-flow replaces such a flow; diff-flows and replace-flows pair
// them.
func (f *Flow) SameRule(g *Flow) bool {
	return f.Table == g.Table && f.Priority == g.Priority && f.Match.equal(&g.Match)
}

// ruleKey is a map key for SameRule: equal keys exactly when SameRule.
func (f *Flow) ruleKey() string {
	return string(f.Match.AppendKey([]byte{f.Table, byte(f.Priority >> 8), byte(f.Priority)}))
}

// SameVersion tells whether f and g, two versions of the same rule, are
// equal for "ovs-ofctl diff-flows" and "replace-flows" (OVS's
// fte_version_equals()): cookie, idle and hard timeouts, importance and the
// actions, compared as values in order (OVS compares the encoded action
// lists).  Flags are ignored, as OVS does: a switch does not report them.
//
// Flows from ParseFlow and UnmarshalFlow hold nil, never empty, slices;
// reflect.DeepEqual tells nil from empty, so hand-built flows should too.
func (f *Flow) SameVersion(g *Flow) bool {
	return f.Cookie == g.Cookie && f.IdleTimeout == g.IdleTimeout &&
		f.HardTimeout == g.HardTimeout && f.Importance == g.Importance &&
		len(f.Actions) == len(g.Actions) &&
		(len(f.Actions) == 0 || reflect.DeepEqual(f.Actions, g.Actions))
}

// Diff compares two flow tables as "ovs-ofctl diff-flows" does: flows are
// the same flow when SameRule; for each that is missing on one side or
// differs (not SameVersion) it returns "-" + a's version and/or "+" + b's.
// Lines come by table, then priority (highest first), then match text.
func Diff(a, b []*Flow, ports PortMap) []string {
	type pair struct {
		sortKey string
		a, b    *Flow
	}
	byRule := map[string]*pair{}
	var order []*pair
	add := func(f *Flow, side int) {
		k := f.ruleKey()
		p := byRule[k]
		if p == nil {
			p = &pair{sortKey: fmt.Sprintf("%03d/%05d/%s", f.Table, 65535-int(f.Priority), f.MatchString(nil))}
			byRule[k] = p
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
	sort.SliceStable(order, func(i, j int) bool { return order[i].sortKey < order[j].sortKey })
	var out []string
	for _, p := range order {
		if p.a != nil && p.b != nil && p.a.SameVersion(p.b) {
			continue
		}
		if p.a != nil {
			out = append(out, "-"+diffLine(p.a, ports))
		}
		if p.b != nil {
			out = append(out, "+"+diffLine(p.b, ports))
		}
	}
	return out
}
