package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ebpfovs/ebpfovs/bench/lab"
	"github.com/ebpfovs/ebpfovs/bench/report"
)

// scaleRow is one scale measurement: a rate of ebpfovs (E) and of Open
// vSwitch (D), medians of alternating runs.
type scaleRow struct {
	What       string
	Unit       string
	E, D       report.Stat
	EN, DN     int // entries the runs handled (dumps: what each switch held)
	Goal, Note string
}

// scaleZone is the conntrack zone the fill traffic is committed in.
const scaleZone = 9

// measureScale measures, on paths D and E after the rounds: flows
// installed per second (`ebpfovs add-flows` vs `ovs-ofctl add-flows`, a
// file of nFlows flows in an unused table) and conntrack entries dumped per
// second with each table holding every count in ctCounts (`ebpfovs
// dump-conntrack` vs `ovs-appctl dpctl/dump-conntrack`), reps alternating
// runs each.
func measureScale(ctx context.Context, env *lab.Env, self string, d, e *lab.Path, nFlows int, ctCounts []int, reps int, stderr io.Writer) ([]scaleRow, error) {
	var rows []scaleRow
	file := filepath.Join(env.Dir, "scale-flows.txt")
	var b strings.Builder
	for i := 0; i < nFlows; i++ {
		fmt.Fprintf(&b, "table=200, priority=100, ip, nw_src=10.%d.%d.%d, actions=drop\n", 100+i>>16, (i>>8)&255, i&255)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	logf(stderr, "scale: installing %d flows, %d times each into E and D", nFlows, reps)
	row := scaleRow{What: fmt.Sprintf("flows installed (add-flows, %d flows)", nFlows), Unit: "flows/s", EN: nFlows, DN: nFlows}
	var ev, dv []float64
	for r := 0; r < reps; r++ {
		for _, p := range []*lab.Path{e, d} {
			start := time.Now()
			if _, err := p.Flows(ctx, "add-flows", file); err != nil {
				return rows, fmt.Errorf("path %s: add-flows: %w", p.ID, err)
			}
			rate := float64(nFlows) / time.Since(start).Seconds()
			if _, err := p.Flows(ctx, "del-flows", "table=200"); err != nil {
				return rows, fmt.Errorf("path %s: del-flows: %w", p.ID, err)
			}
			if p == e {
				ev = append(ev, rate)
			} else {
				dv = append(dv, rate)
			}
		}
	}
	row.E, row.D = report.Summarize(ev), report.Summarize(dv)
	rows = append(rows, row)

	// Conntrack: commit VM1's UDP in a zone of its own, then fill.
	flow := fmt.Sprintf("table=0, priority=70, udp, in_port=vnet1, actions=ct(commit,zone=%d),output:vnet2", scaleZone)
	for _, p := range []*lab.Path{e, d} {
		// UDP's 30 s would expire the first connections while the rest
		// are sent and dumped.
		if err := p.SetUDPTimeout(ctx, scaleZone, 3600); err != nil {
			return rows, fmt.Errorf("path %s: %w", p.ID, err)
		}
		if _, err := p.Flows(ctx, "add-flow", flow); err != nil {
			return rows, fmt.Errorf("path %s: %w", p.ID, err)
		}
	}
	defer func() {
		for _, p := range []*lab.Path{e, d} {
			p.Flows(context.Background(), "del-flows", "--strict", "table=0, priority=70, udp, in_port=vnet1")
			p.FlushConntrack(context.Background(), scaleZone)
		}
	}()
	filled := 0
	for _, n := range ctCounts {
		for _, p := range []*lab.Path{e, d} {
			logf(stderr, "scale: path %s: %d UDP connections from VM1", p.ID, n-filled)
			if err := fillUDP(ctx, self, p, filled, n-filled); err != nil {
				return rows, fmt.Errorf("path %s: %w", p.ID, err)
			}
		}
		filled = n
		time.Sleep(500 * time.Millisecond) // let OVS's handler threads catch up
		row := scaleRow{What: fmt.Sprintf("conntrack entries dumped (%d connections)", n), Unit: "entries/s"}
		var ev, dv []float64
		for r := 0; r < reps; r++ {
			for _, p := range []*lab.Path{e, d} {
				start := time.Now()
				out, err := p.DumpConntrack(ctx, scaleZone)
				if err != nil {
					return rows, fmt.Errorf("path %s: dump-conntrack: %w", p.ID, err)
				}
				lines := strings.Count(out, "\n")
				rate := float64(lines) / time.Since(start).Seconds()
				if p == e {
					ev, row.EN = append(ev, rate), lines
				} else {
					dv, row.DN = append(dv, rate), lines
				}
			}
		}
		row.E, row.D = report.Summarize(ev), report.Summarize(dv)
		if min(row.EN, row.DN) < n*9/10 {
			row.Note = fmt.Sprintf("fewer connections than sent: E holds %d, D %d", row.EN, row.DN)
		}
		rows = append(rows, row)
	}
	if filled == 0 {
		return rows, nil
	}
	// Flush what was filled, once each (a flush cannot be repeated).
	row = scaleRow{What: fmt.Sprintf("conntrack entries flushed (zone=%d, %d connections)", scaleZone, filled), Unit: "entries/s"}
	for _, p := range []*lab.Path{e, d} {
		start := time.Now()
		_, err := p.FlushConntrack(ctx, scaleZone)
		if err != nil {
			return rows, fmt.Errorf("path %s: flush-conntrack: %w", p.ID, err)
		}
		rate := report.Summarize([]float64{float64(filled) / time.Since(start).Seconds()})
		if p == e {
			row.E, row.EN = rate, filled
		} else {
			row.D, row.DN = rate, filled
		}
	}
	return append(rows, row), nil
}

// fillUDP sends n datagrams from VM1 to VM2 on path p, each a new
// connection, numbered from `from` on so successive fills add new ones.
func fillUDP(ctx context.Context, self string, p *lab.Path, from, n int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	out, err := lab.RunLong(ctx, lab.InNetns(p.VM1, self, "probe", "fill-udp", "-n", fmt.Sprint(n), "-first", fmt.Sprint(from),
		"-iface", "eth0", "-src", lab.VM1IP, "-dst", lab.VM2IP, "-src-mac", lab.VMMAC(1), "-dst-mac", lab.VMMAC(2))...)
	if err != nil {
		return err
	}
	var res struct{ Sent int }
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Sent != n {
		return fmt.Errorf("fill-udp sent %d of %d (%v): %s", res.Sent, n, err, out)
	}
	return nil
}

// attachGoal is the most `ebpfovs attach` of two ports on a new bridge
// may take (issue: fast attach; docs/verifier.md: the verifier's time is
// most of it).
const attachGoal = time.Second

// measureAttach times `ebpfovs attach` of two new veth ports on a new
// bridge of path e (the datapath's programs loaded and verified, pinned,
// attached), reps times, each followed by a detach of the bridge.
func measureAttach(ctx context.Context, e *lab.Path, reps int, stderr io.Writer) (scaleRow, error) {
	row := scaleRow{What: "attach: a new bridge and 2 ports (`ebpfovs attach`)", Unit: "s", EN: reps,
		Goal: fmt.Sprintf("< %.0f s", attachGoal.Seconds())}
	ifs := []string{"atb1", "atb2"}
	for _, n := range ifs {
		if _, err := lab.Run(ctx, "ip", "-n", e.Host, "link", "add", n, "type", "veth", "peer", "name", n+"x"); err != nil {
			return row, err
		}
		defer lab.Run(context.Background(), "ip", "-n", e.Host, "link", "del", n)
		if _, err := lab.Run(ctx, "ip", "-n", e.Host, "link", "set", n, "up"); err != nil {
			return row, err
		}
	}
	logf(stderr, "scale: attach of 2 ports on a new bridge, %d times", reps)
	var secs []float64
	for r := 0; r < reps; r++ {
		start := time.Now()
		if _, err := e.Ebpfovs(ctx, "atb", append([]string{"attach"}, ifs...)...); err != nil {
			return row, fmt.Errorf("attach: %w", err)
		}
		secs = append(secs, time.Since(start).Seconds())
		if _, err := e.Ebpfovs(ctx, "atb", "detach"); err != nil {
			return row, fmt.Errorf("detach: %w", err)
		}
	}
	row.E = report.Summarize(secs)
	if row.E.Median >= attachGoal.Seconds() {
		row.Note = fmt.Sprintf("median %.2f s: the goal of %s is missed", row.E.Median, row.Goal)
	}
	return row, nil
}

func writeScale(w io.Writer, rows []scaleRow) {
	fmt.Fprintln(w, "### Scale (after the rounds; median of alternating runs, min–max)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measurement | E: ebpfovs | D: Open vSwitch | E/D |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, r := range rows {
		ratio := "–"
		if r.D.Median > 0 {
			ratio = fmt.Sprintf("%.2fx", r.E.Median/r.D.Median)
		}
		d := rate(r.D) + " " + r.Unit
		if r.D.Median == 0 {
			d = "–"
		}
		e := rate(r.E) + " " + r.Unit
		if r.Unit == "s" {
			e = fmt.Sprintf("**%.2f** (%.2f–%.2f) s", r.E.Median, r.E.Min, r.E.Max)
		}
		if r.Goal != "" {
			e += ", goal " + r.Goal
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.What, e, d, ratio)
	}
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(w, "\n- %s: %s\n", r.What, r.Note)
		}
	}
}

func rate(s report.Stat) string {
	return fmt.Sprintf("**%.0f** (%.0f–%.0f)", s.Median, s.Min, s.Max)
}

// pathByID returns the path id if it is measured, else nil.
func pathByID(paths []*lab.Path, id string) *lab.Path {
	i := slices.IndexFunc(paths, func(p *lab.Path) bool { return p.ID == id && p.Unavailable == "" })
	if i < 0 {
		return nil
	}
	return paths[i]
}

// scalePaths returns paths D and E when both are measured.
func scalePaths(paths []*lab.Path) (d, e *lab.Path) {
	i := slices.IndexFunc(paths, func(p *lab.Path) bool { return p.ID == "D" && p.Unavailable == "" })
	j := slices.IndexFunc(paths, func(p *lab.Path) bool { return p.ID == "E" && p.Unavailable == "" })
	if i < 0 || j < 0 {
		return nil, nil
	}
	return paths[i], paths[j]
}
