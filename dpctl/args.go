package dpctl

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseZone parses "zone=N" (0..65535), as dump-conntrack and
// ct-stats-show take it. ok is false when arg is not a zone= argument.
func ParseZone(arg string) (zone uint16, ok bool, err error) {
	v, ok := strings.CutPrefix(arg, "zone=")
	if !ok {
		return 0, false, nil
	}
	z, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return 0, true, fmt.Errorf("%s: failed to parse zone", arg)
	}
	return uint16(z), true, nil
}

// ZoneLimit is one zone's connection limit and its live connections, as
// `ovs-appctl dpctl/ct-get-limits` prints them.
type ZoneLimit struct {
	Zone  uint16
	Limit uint32 // 0: unlimited
	Count uint32
}

// Limits is a bridge's conntrack limits: ct-set-limits' arguments, and
// what ct-get-limits prints.
type Limits struct {
	Default *uint32     // per-zone limit of zones without one (0: unlimited); nil: not given
	Zones   []ZoneLimit // in the order given (ct-get-limits: by zone)
}

// ParseLimits parses ct-set-limits' arguments: [default=LIMIT]
// [zone=ZONE,limit=LIMIT]..., with OVS's errors (lib/ct-dpif.c).
func ParseLimits(args []string) (Limits, error) {
	var l Limits
	if len(args) > 0 {
		if v, ok := strings.CutPrefix(args[0], "default="); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return l, fmt.Errorf("%s: invalid default limit", args[0])
			}
			d := uint32(n)
			l.Default = &d
			args = args[1:]
		}
	}
	for _, a := range args {
		zl, err := parseZoneLimit(a)
		if err != nil {
			return l, err
		}
		l.Zones = append(l.Zones, zl)
	}
	return l, nil
}

// parseZoneLimit parses "zone=Z,limit=L" (either order), with the errors
// of OVS's ct_dpif_parse_zone_limit_tuple.
func parseZoneLimit(s string) (ZoneLimit, error) {
	var zl ZoneLimit
	var haveZone, haveLimit bool
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			return zl, fmt.Errorf("%s: field %s missing value", s, k)
		}
		switch k {
		case "zone":
			z, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return zl, fmt.Errorf("%s: failed to parse field zone", s)
			}
			zl.Zone, haveZone = uint16(z), true
		case "limit":
			l, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return zl, fmt.Errorf("%s: failed to parse field limit", s)
			}
			zl.Limit, haveLimit = uint32(l), true
		default:
			return zl, fmt.Errorf("%s: invalid zone limit field: %s", s, k)
		}
	}
	if !haveZone || !haveLimit {
		return zl, fmt.Errorf("%s: failed to parse zone limit", s)
	}
	return zl, nil
}

// ParseZones parses "zone=Z[,Z...]", as OVS's parse_ct_limit_zones
// (ct-get-limits, ct-del-limits).
func ParseZones(s string) ([]uint16, error) {
	list, ok := strings.CutPrefix(s, "zone=")
	if !ok {
		return nil, fmt.Errorf("%s: invalid argument", s)
	}
	var zones []uint16
	for _, f := range strings.Split(list, ",") {
		if f == "" {
			continue
		}
		z, err := strconv.ParseUint(f, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%s: invalid zone %q", s, f)
		}
		zones = append(zones, uint16(z))
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("%s: invalid zone (none given)", s)
	}
	return zones, nil
}

// Format prints the limits as `ovs-appctl dpctl/ct-get-limits` does.
func (l *Limits) Format() string {
	var sb strings.Builder
	var def uint32
	if l.Default != nil {
		def = *l.Default
	}
	fmt.Fprintf(&sb, "default limit=%d\n", def)
	for _, z := range l.Zones {
		fmt.Fprintf(&sb, "zone=%d,limit=%d,count=%d\n", z.Zone, z.Limit, z.Count)
	}
	return sb.String()
}
