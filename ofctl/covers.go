package ofctl

// Covers tells whether flow f is selected by filter (a flow from ParseMatch,
// or any Flow used as a filter), with OVS's semantics for del-flows and
// dump-flows:
//
//   - loose (strict == false): f's match is at least as specific as the
//     filter's: every bit the filter matches, f matches too, with the same
//     value (OVS's cls_rule_is_loose_match());
//   - strict: f's match is identical to the filter's and the priorities are
//     equal;
//
// and in both cases the table (unless the filter's is TableAll), the cookie
// under the filter's CookieMask and, if the filter has an OutPort, an output
// to that port among f's actions must agree.
func (filter *Flow) Covers(f *Flow, strict bool) bool {
	if filter.Table != TableAll && filter.Table != f.Table {
		return false
	}
	if (f.Cookie^filter.Cookie)&filter.CookieMask != 0 {
		return false
	}
	if filter.OutPort != 0 && !outputsTo(f.Actions, filter.OutPort) {
		return false
	}
	if strict {
		return filter.Priority == f.Priority && filter.Match.equal(&f.Match)
	}
	for i := range filter.Match.f {
		fe := filter.Match.f[i]
		if fe == nil {
			continue
		}
		e := f.Match.f[i]
		if e == nil {
			return false
		}
		for j := range fe.Mask {
			if e.Mask[j]&fe.Mask[j] != fe.Mask[j] {
				return false
			}
			if (e.Value[j]^fe.Value[j])&fe.Mask[j] != 0 {
				return false
			}
		}
	}
	return true
}

// outputsTo emulates ofpacts_output_to_port(): an output (or enqueue) to
// port among the actions, including those nested in ct(exec(...)).
func outputsTo(acts []Action, port uint32) bool {
	for _, a := range acts {
		switch a := a.(type) {
		case Output:
			if a.Port == port {
				return true
			}
		case Controller:
			if port == PortController {
				return true
			}
		case CT:
			if outputsTo(a.Exec, port) {
				return true
			}
		}
	}
	return false
}
