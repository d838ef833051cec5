// Command bench measures ebpfovs against what users would pick instead, on
// the lab topology (VM1 and VM2 are namespaces joined through a
// "hypervisor" namespace):
//
//	A  direct veth pair VM1<->VM2 (the physical limit)
//	B  Linux bridge
//	C  Linux bridge + nftables stateful rules equivalent to the lab's flows
//	D  Open vSwitch, userspace (netdev) datapath, the lab's flows
//	E  ebpfovs, TC mode, the lab's flows
//	F  ebpfovs, XDP mode (VMs with GRO on and tx checksum offload off)
//	G  ebpfovs, TC mode, the lab's flows with source NAT (VM1 -> 10.0.0.100)
//	H  Linux router + nftables: the lab's policy and a masquerade, as G
//	I, J, K  tap ports: Linux bridge + nftables, ebpfovs TC, ebpfovs XDP
//	L  two nodes, VXLAN between them: a Linux bridge and a VXLAN device each
//	M  the same with ebpfovs: a bridge with a VXLAN port each (NORMAL)
//
// Every round measures every path once, in a rotating order: iperf3 TCP
// throughput (one CUBIC stream, client and server on the same vCPU, then on
// different vCPUs) with the CPU it cost, the connection rate and the
// request/response latency of the probe tool. It prints a markdown report
// (medians with min–max, ratios against the baselines of the same run, the
// targets met or missed, the machine) and writes it with a PNG plot and
// the raw samples to -out. Everything it creates is removed at the end,
// also on failure or Ctrl-C.
//
// Usage (as root; `make bench` and `make bench-full` run it):
//
//	go run ./bench/cmd/bench [-mode quick|full] [flags]
//
// `bench probe ...` is the probe tool itself, which bench starts inside the
// VM namespaces (see package probe).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ebpfovs/ebpfovs/bench/lab"
	"github.com/ebpfovs/ebpfovs/bench/measure"
	"github.com/ebpfovs/ebpfovs/bench/probe"
	"github.com/ebpfovs/ebpfovs/bench/report"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probeMain(os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:]))
}

// config is the run's parameters.
type config struct {
	mode        string
	rounds      int
	iperfTime   time.Duration
	connTime    time.Duration
	latencyTime time.Duration
	floodTime   time.Duration // each packet-generator run
	workers     int
	ebpfovs     string
	out         string
	paths       []string
	profile     bool
	profileTime time.Duration
	microRuns   int   // BPF_PROG_TEST_RUN runs per micro-benchmark; 0: none
	scaleFlows  int   // flows per add-flows in the scale rows; 0: no scale rows
	scaleConns  []int // connection counts the conntrack dump is measured at
	ovsTxOff    bool
	replot      string
	serverCPU   int
	sameCPU     int
	diffCPU     int // -1: only one vCPU
}

// presets are the defaults of each mode; flags given explicitly win.
var presets = map[string]config{
	// Five to seven minutes on 2 vCPUs (G and H add about two).
	"quick": {rounds: 5, iperfTime: 2 * time.Second, connTime: time.Second, latencyTime: time.Second, floodTime: time.Second,
		profile: true, profileTime: 2 * time.Second, microRuns: 100000,
		scaleFlows: 20000, scaleConns: []int{100000}},
	// About twenty minutes on 2 vCPUs.
	"full": {rounds: 9, iperfTime: 8 * time.Second, connTime: 4 * time.Second, latencyTime: 4 * time.Second, floodTime: 3 * time.Second,
		profile: true, profileTime: 4 * time.Second, microRuns: 1000000,
		scaleFlows: 100000, scaleConns: []int{100000, 1000000}},
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var paths string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.mode, "mode", "quick", "preset: quick (a few minutes) or full (more rounds, longer runs)")
	fs.IntVar(&c.rounds, "rounds", 0, "rounds; every round measures every path once (default: from -mode, at least 5)")
	fs.DurationVar(&c.iperfTime, "iperf-time", 0, "length of each iperf3 run, whole seconds (default: from -mode)")
	fs.DurationVar(&c.connTime, "connrate-time", 0, "length of each connection-rate run (default: from -mode)")
	fs.DurationVar(&c.latencyTime, "latency-time", 0, "length of each latency run (default: from -mode)")
	fs.DurationVar(&c.floodTime, "flood-time", 0, "length of each packet-rate run: 64-byte UDP, SYN flood (default: from -mode)")
	fs.IntVar(&c.workers, "workers", 4, "concurrent connections of the connection-rate client")
	fs.StringVar(&c.ebpfovs, "ebpfovs", "./ebpfovs", "the ebpfovs binary (make build)")
	fs.StringVar(&c.out, "out", "bench/out", "directory for results.md, results.json, performance.png, profiles/ and logs/")
	fs.StringVar(&paths, "paths", strings.Join(lab.PathIDs, ","), "paths to run (comma-separated letters)")
	fs.BoolVar(&c.profile, "profile", false, "after the rounds, record perf profiles of B, C, D and E (default: from -mode)")
	fs.BoolVar(&c.ovsTxOff, "ovs-tx-off", false, "path D: turn the VMs' tx offload off instead of enabling OVS userspace TSO")
	noScaleFlag := fs.Bool("no-scale", false, "skip the scale rows (flow installation and conntrack dump rates, E vs D)")
	scaleConns := fs.String("scale-conns", "", "connection counts for the conntrack dump rows, comma-separated, at most 1000000 (default: from -mode: 100000; full: 100000,1000000)")
	fs.IntVar(&c.microRuns, "micro-runs", -1, "runs per datapath micro-benchmark (go test -bench ./bpf); 0 skips them (default: from -mode)")
	fs.StringVar(&c.replot, "replot", "", "measure nothing: redo the tables and the plot (in -out) from a results.json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench [flags]   (as root; see `make bench`)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	preset, ok := presets[c.mode]
	if !ok {
		return c, fmt.Errorf("-mode %q: want quick or full", c.mode)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.rounds == 0 {
		c.rounds = preset.rounds
	}
	if c.microRuns < 0 {
		c.microRuns = preset.microRuns
	}
	if !*noScaleFlag {
		c.scaleFlows, c.scaleConns = preset.scaleFlows, preset.scaleConns
		if *scaleConns != "" {
			c.scaleConns = nil
			for _, f := range strings.Split(*scaleConns, ",") {
				n, err := strconv.Atoi(f)
				if err != nil || n < 1 || n > 1_000_000 || (len(c.scaleConns) > 0 && n <= c.scaleConns[len(c.scaleConns)-1]) {
					return c, fmt.Errorf("-scale-conns: %q: want increasing counts from 1 to 1000000", *scaleConns)
				}
				c.scaleConns = append(c.scaleConns, n)
			}
		}
	}
	if c.iperfTime == 0 {
		c.iperfTime = preset.iperfTime
	}
	if c.connTime == 0 {
		c.connTime = preset.connTime
	}
	if c.floodTime == 0 {
		c.floodTime = preset.floodTime
	}
	if c.latencyTime == 0 {
		c.latencyTime = preset.latencyTime
	}
	if !set["profile"] {
		c.profile = preset.profile
	}
	c.profileTime = preset.profileTime
	if c.rounds < 5 {
		return c, fmt.Errorf("-rounds %d: at least 5 are needed for a meaningful median", c.rounds)
	}
	if c.iperfTime < time.Second || c.iperfTime%time.Second != 0 {
		return c, fmt.Errorf("-iperf-time %v: want whole seconds, at least 1s", c.iperfTime)
	}
	for _, d := range []time.Duration{c.connTime, c.latencyTime} {
		if d < 100*time.Millisecond || d > time.Minute {
			return c, fmt.Errorf("run length %v: want 100ms to 1m", d)
		}
	}
	if c.workers < 1 || c.workers > 64 {
		return c, fmt.Errorf("-workers %d: want 1 to 64", c.workers)
	}
	for _, p := range strings.Split(paths, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if !slices.Contains(lab.PathIDs, p) {
			return c, fmt.Errorf("-paths: %q is not one of %s", p, strings.Join(lab.PathIDs, ", "))
		}
		c.paths = append(c.paths, p)
	}
	// Servers on the last vCPU; "same" clients beside them, "different"
	// clients on vCPU 0.
	n := runtime.NumCPU()
	c.serverCPU, c.sameCPU, c.diffCPU = n-1, n-1, 0
	if n == 1 {
		c.diffCPU = -1
	}
	return c, nil
}

func benchMain(args []string) int {
	cfg, err := parseFlags(args, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if cfg.replot != "" {
		if err := replot(cfg, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
		return 0
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: run as root (sudo make bench): it creates namespaces, bridges and BPF programs")
		return 1
	}
	// The first SIGINT/SIGTERM cancels ctx: every step is bound to it and
	// returns, and the deferred cleanup removes everything. Later signals
	// are swallowed until the cleanup is done.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// logf prints progress to stderr.
func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "bench: "+format+"\n", args...)
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (err error) {
	start := time.Now()
	reqs := lab.Requirements
	if cfg.profile {
		reqs = slices.Concat(reqs, []lab.Requirement{{Command: "perf", Package: "linux-perf"}})
	}
	installed, err := lab.EnsurePackages(ctx, reqs)
	if err != nil {
		return err
	}
	if len(installed) > 0 {
		logf(stderr, "installed %s", strings.Join(installed, " "))
	}
	if removed, err := lab.SweepStale(ctx); err != nil {
		logf(stderr, "warning: removing leftovers of killed runs: %v", err)
	} else if len(removed) > 0 {
		logf(stderr, "removed leftovers of killed runs: %s", strings.Join(removed, ", "))
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	if cfg.ebpfovs, err = filepath.Abs(cfg.ebpfovs); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	machine := report.ReadMachine(ctx)

	env, err := lab.NewEnv()
	if err != nil {
		return err
	}
	defer func() {
		logf(stderr, "cleaning up")
		if cerr := env.Cleanup.Run(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	if slices.ContainsFunc(cfg.paths, func(id string) bool { return strings.Contains("EFGJK", id) }) {
		// Work on a private copy: a rebuild of ./ebpfovs during the run
		// must not mix CLI and datapath versions.
		orig := cfg.ebpfovs
		if cfg.ebpfovs, err = copyExecutable(orig, filepath.Join(env.Dir, "ebpfovs")); err != nil {
			return err
		}
		machine.Ebpfovs = report.DescribeBinary(orig) + " (run from a private copy)"
	}
	// Server and daemon logs outlive the run, for when it fails.
	logDir := filepath.Join(cfg.out, "logs")
	if err := os.RemoveAll(logDir); err != nil {
		return fmt.Errorf("clear %s: %w", logDir, err)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", logDir, err)
	}
	prober := measure.Prober{Self: self, LogDir: logDir}

	// Set up every path; all of them exist side by side.
	var paths []*lab.Path
	for _, id := range cfg.paths {
		logf(stderr, "setting up path %s", id)
		p, err := lab.Setup(ctx, env, id, lab.Options{Ebpfovs: cfg.ebpfovs, OVSTxOff: cfg.ovsTxOff})
		if err != nil {
			return err
		}
		paths = append(paths, p)
		if p.Unavailable != "" || p.Taps {
			continue
		}
		if err := prober.StartServer(ctx, env, p, cfg.serverCPU); err != nil {
			return err
		}
	}
	var checks []string
	for _, p := range paths {
		if p.Unavailable != "" {
			continue
		}
		if err := warmUp(ctx, cfg, prober, p, logDir); err != nil {
			return fmt.Errorf("path %s does not work: %w", p.ID, err)
		}
		if p.Check != nil {
			s, err := p.Check(ctx)
			if err != nil {
				return fmt.Errorf("path %s: %w", p.ID, err)
			}
			checks = append(checks, p.ID+": "+s)
		}
	}

	res := report.NewResults(reportPaths(paths), cfg.rounds)
	var warnings []string
	for r := range cfg.rounds {
		for i := range paths {
			// Rotate the order so no path always runs first or last.
			p := paths[(i+r)%len(paths)]
			if p.Unavailable != "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			w := measurePath(ctx, cfg, prober, p, r, res, logDir, stderr)
			warnings = append(warnings, w...)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	// The paths must still be what they claim after all the traffic (a
	// little fresh traffic first: idle connections expire).
	for _, p := range paths {
		if p.Unavailable == "" && p.Check != nil {
			var err error
			if !p.Taps {
				_, err = prober.Latency(ctx, p, clientCPU(cfg), 100*time.Millisecond)
			}
			if err == nil {
				_, err = p.Check(ctx)
			}
			if err != nil {
				warnings = append(warnings, fmt.Sprintf("path %s after the rounds: %v", p.ID, err))
			}
		}
	}

	evidence := collectEvidence(ctx, cfg, paths, stderr)
	var scale []scaleRow
	if d, e := scalePaths(paths); d != nil && cfg.scaleFlows > 0 {
		if scale, err = measureScale(ctx, env, self, d, e, cfg.scaleFlows, cfg.scaleConns, 3, stderr); err != nil {
			warnings = append(warnings, "scale: "+err.Error())
		}
	}
	if e := pathByID(paths, "E"); e != nil {
		row, err := measureAttach(ctx, e, 5, stderr)
		if err != nil {
			warnings = append(warnings, "attach: "+err.Error())
		} else {
			scale = append(scale, row)
			if row.Note != "" {
				warnings = append(warnings, "attach: "+row.Note)
			}
		}
	}
	var micro []microRow
	if cfg.microRuns > 0 {
		if micro, err = microBenchmarks(ctx, cfg.microRuns, stderr); err != nil {
			warnings = append(warnings, "datapath micro-benchmarks: "+err.Error())
		}
	}
	machine.Finish()

	var md strings.Builder
	writeReport(&md, cfg, res, machine, paths, checks, warnings, evidence, scale, micro, time.Since(start))
	fmt.Fprint(stdout, md.String())
	if err := os.WriteFile(filepath.Join(cfg.out, "results.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	png := filepath.Join(cfg.out, "performance.png")
	title := fmt.Sprintf("ebpfovs vs alternatives: median of %d rounds, whiskers min–max (%s, %d vCPUs, kernel %s, %s)",
		cfg.rounds, cfg.mode, machine.VCPUs, strings.Fields(machine.Kernel)[0], machine.Date.Format("2006-01-02"))
	if err := res.SaveJSON(filepath.Join(cfg.out, "results.json"), title, machine); err != nil {
		return err
	}
	if err := res.WritePlot(png, title); err != nil {
		return err
	}
	logf(stderr, "wrote %s, results.json and %s (%s)", filepath.Join(cfg.out, "results.md"), png, time.Since(start).Round(time.Second))
	return nil
}

// reportPaths is the report's view of the paths.
func reportPaths(paths []*lab.Path) []report.Path {
	var out []report.Path
	for _, p := range paths {
		out = append(out, report.Path{ID: p.ID, Name: p.Name, Unavailable: p.Unavailable, Notes: p.Notes})
	}
	return out
}

// warmUp sends some of each kind of traffic through p (ARP, conntrack,
// caches) and fails if any of it fails.
func warmUp(ctx context.Context, cfg config, prober measure.Prober, p *lab.Path, logDir string) error {
	if p.Taps {
		for _, kind := range p.Floods {
			if _, err := prober.Flood(ctx, p, clientCPU(cfg), 200*time.Millisecond, kind); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := prober.Latency(ctx, p, clientCPU(cfg), 300*time.Millisecond); err != nil {
		return err
	}
	if _, err := prober.ConnRate(ctx, p, clientCPU(cfg), 300*time.Millisecond, cfg.workers); err != nil {
		return err
	}
	_, err := measure.IPerf(ctx, p, cfg.sameCPU, cfg.serverCPU, time.Second, logDir)
	return err
}

// clientCPU is where the probe clients run: on another vCPU than the
// server when there is one.
func clientCPU(cfg config) int {
	if cfg.diffCPU >= 0 {
		return cfg.diffCPU
	}
	return cfg.sameCPU
}

// measurePath takes round r's samples of path p. A failed measurement is
// retried once, then left out (NaN) with a warning, so one hiccup on a
// busy machine does not throw the whole run away.
func measurePath(ctx context.Context, cfg config, prober measure.Prober, p *lab.Path, r int, res *report.Results, logDir string, stderr io.Writer) []string {
	var warnings []string
	try := func(what string, fn func() error) {
		err := fn()
		if err != nil && ctx.Err() == nil {
			err = fn()
		}
		if err != nil && ctx.Err() == nil {
			warnings = append(warnings, fmt.Sprintf("round %d, path %s, %s: %v", r+1, p.ID, what, err))
			logf(stderr, "warning: %s", warnings[len(warnings)-1])
		}
	}
	var line []string
	if !p.Taps { // tap paths have no VMs: the packet rates only
		pinnings := []struct {
			client     int
			tput, cost report.Metric
		}{{cfg.sameCPU, report.TputSame, report.CPUSame}, {cfg.diffCPU, report.TputDiff, report.CPUDiff}}
		for _, pin := range pinnings {
			if pin.client < 0 {
				continue
			}
			try("iperf3 "+pin.tput.Title, func() error {
				t, err := measure.IPerf(ctx, p, pin.client, cfg.serverCPU, cfg.iperfTime, logDir)
				if err != nil {
					return err
				}
				res.Set(p.ID, pin.tput, r, t.Gbps)
				res.Set(p.ID, pin.cost, r, t.CPUSecPerGbit)
				line = append(line, fmt.Sprintf("%.1f Gbit/s (cpu %d/%d, steal %.0f%%)", t.Gbps, pin.client, cfg.serverCPU, t.StealPct))
				return nil
			})
		}
		try("connection rate", func() error {
			c, err := prober.ConnRate(ctx, p, clientCPU(cfg), cfg.connTime, cfg.workers)
			if err != nil {
				return err
			}
			res.Set(p.ID, report.ConnRate, r, c.PerSecond)
			line = append(line, fmt.Sprintf("%.0f conn/s", c.PerSecond))
			return nil
		})
		try("latency", func() error {
			l, err := prober.Latency(ctx, p, clientCPU(cfg), cfg.latencyTime)
			if err != nil {
				return err
			}
			res.Set(p.ID, report.LatP50, r, l.P50us)
			res.Set(p.ID, report.LatP99, r, l.P99us)
			line = append(line, fmt.Sprintf("p50 %.1f µs p99 %.1f µs", l.P50us, l.P99us))
			return nil
		})
	}
	for _, kind := range p.Floods {
		rate, cost := report.UDPRate, report.UDPCPU
		if kind == probe.FloodSYN {
			rate, cost = report.SYNRate, report.SYNCPU
		}
		try(rate.Title, func() error {
			f, err := prober.Flood(ctx, p, clientCPU(cfg), cfg.floodTime, kind)
			if err != nil {
				return err
			}
			res.Set(p.ID, rate, r, f.Mpps)
			res.Set(p.ID, cost, r, f.CPUSecPerMpkt)
			line = append(line, fmt.Sprintf("%s %.3f Mpps", kind, f.Mpps))
			return nil
		})
	}
	logf(stderr, "round %d/%d path %s: %s", r+1, cfg.rounds, p.ID, strings.Join(line, ", "))
	return warnings
}

// evidence is what the run found out about where the time goes.
type evidence struct {
	// BPF lines report ebpfovs's datapath program run time.
	BPF []string
	// OVS lines report Open vSwitch's datapath counters.
	OVS []string
	// Profiles are perf's hottest symbols, per path, with -profile.
	Profiles []profile
	// Errors are the evidence steps that failed (the report says so).
	Errors []string
}

// workload is traffic a perf profile is recorded under.
type workload struct {
	name string
	run  func() error
}

type profile struct {
	Path, Workload, Top string
}

// collectEvidence measures ebpfovs's BPF program run time (E, F, G) during
// a throughput, a latency and a connection-rate run, with the share of
// packets its exact-match cache served in the first and the last, reads
// OVS's datapath statistics, and with -profile records perf profiles of
// every path but A during a same-vCPU iperf3 run (and of C, E, G and H
// during a connection-rate run). It runs after the rounds, so its overhead (BPF statistics
// cost some ns per run) never touches the measurements.
func collectEvidence(ctx context.Context, cfg config, paths []*lab.Path, stderr io.Writer) evidence {
	var ev evidence
	fail := func(err error) {
		ev.Errors = append(ev.Errors, err.Error())
		logf(stderr, "warning: evidence: %v", err)
	}
	logDir := filepath.Join(cfg.out, "profiles")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fail(err)
		return ev
	}
	prober := measure.Prober{Self: "", LogDir: logDir}
	if self, err := os.Executable(); err == nil {
		prober.Self = self
	}
	for _, p := range paths {
		if p.Unavailable != "" || ctx.Err() != nil {
			continue
		}
		if p.Taps {
			ev.tapEvidence(ctx, cfg, prober, p, logDir, stderr, fail)
			continue
		}
		if p.BPFProgPin != "" {
			logf(stderr, "evidence: BPF run time of path %s", p.ID)
			bpf := func(format string, args ...any) {
				ev.BPF = append(ev.BPF, p.ID+", BPF statistics: "+fmt.Sprintf(format, args...))
			}
			// The cache counters are read around BPFStats: reading them
			// runs no BPF, but would add to the interval's wall time.
			var t measure.Throughput
			var b measure.BPFRun
			cache, err := emcShare(ctx, p, func() (err error) {
				b, err = measure.BPFStats(p.BPFProgPin, func() (err error) {
					t, err = measure.IPerf(ctx, p, cfg.sameCPU, cfg.serverCPU, cfg.iperfTime, logDir)
					return err
				})
				return err
			})
			if err != nil {
				fail(err)
			} else {
				bpf("iperf3, same vCPU, %.1f Gbit/s: tc_ingress ran %d times (%.0f per Gbit) for %v each on average, %.1f%% of one CPU%s",
					t.Gbps, b.Runs, float64(b.Runs)/(t.Gbps*b.Wall.Seconds()), b.PerRun(), b.CPUShare(), cache)
			}
			var l probe.LatencyResult
			b, err = measure.BPFStats(p.BPFProgPin, func() error {
				var err error
				l, err = prober.Latency(ctx, p, clientCPU(cfg), cfg.latencyTime)
				return err
			})
			if err != nil {
				fail(err)
			} else {
				trips := float64(l.Samples + probe.LatencyWarmup)
				bpf("request/response, p50 %.1f µs: tc_ingress ran %.2f times per round trip for %v each on average, i.e. %.2f µs of a round trip",
					l.P50us, float64(b.Runs)/trips, b.PerRun(), float64(b.Runs)/trips*b.PerRun().Seconds()*1e6)
			}
			var c probe.ConnRateResult
			cache, err = emcShare(ctx, p, func() (err error) {
				b, err = measure.BPFStats(p.BPFProgPin, func() (err error) {
					c, err = prober.ConnRate(ctx, p, clientCPU(cfg), cfg.connTime, cfg.workers)
					return err
				})
				return err
			})
			if err != nil {
				fail(err)
			} else if c.Conns > 0 {
				perConn := float64(b.Runs) / float64(c.Conns)
				bpf("connection rate, %.0f conn/s: tc_ingress ran %.1f times per connection for %v each on average, i.e. %.1f µs of CPU per connection%s",
					c.PerSecond, perConn, b.PerRun(), perConn*b.PerRun().Seconds()*1e6, cache)
			}
		}
		if p.OVSAppctl != nil {
			if out, err := p.OVSAppctl(ctx, "dpif-netdev/pmd-stats-show"); err != nil {
				fail(err)
			} else {
				ev.OVS = append(ev.OVS, out)
			}
			if out, err := p.OVSAppctl(ctx, "coverage/show"); err != nil {
				fail(err)
			} else {
				ev.OVS = append(ev.OVS, fmt.Sprintf("conntrack_l4csum_err total: %d", lab.CoverageTotal(out, "conntrack_l4csum_err")))
			}
		}
		if !cfg.profile || p.ID == "A" {
			continue
		}
		workloads := []workload{{fmt.Sprintf("iperf3, same vCPU, %v", cfg.profileTime), func() error {
			_, err := measure.IPerf(ctx, p, cfg.sameCPU, cfg.serverCPU, cfg.profileTime, logDir)
			return err
		}}}
		if p.ID == "C" || p.ID == "E" || p.ID == "G" || p.ID == "H" {
			workloads = append(workloads, workload{fmt.Sprintf("connection rate, %v", cfg.profileTime), func() error {
				_, err := prober.ConnRate(ctx, p, clientCPU(cfg), cfg.profileTime, cfg.workers)
				return err
			}})
		}
		if p.ID == "E" || p.ID == "F" {
			// Where a small packet's time goes, TC against XDP on a veth.
			workloads = append(workloads, workload{fmt.Sprintf("SYN flood, %v", cfg.profileTime), func() error {
				_, err := prober.Flood(ctx, p, clientCPU(cfg), cfg.profileTime, probe.FloodSYN)
				return err
			}})
		}
		for i, wl := range workloads {
			logf(stderr, "evidence: perf profile of path %s, %s", p.ID, wl.name)
			top, err := measure.Profile(ctx, filepath.Join(logDir, fmt.Sprintf("perf-%s-%d.data", p.ID, i)), 1.5, wl.run)
			if err != nil {
				fail(err)
				continue
			}
			ev.Profiles = append(ev.Profiles, profile{Path: p.ID + ": " + p.Name, Workload: wl.name, Top: top})
		}
	}
	return ev
}

// writeReport writes the markdown report.
func writeReport(w io.Writer, cfg config, res *report.Results, m report.Machine, paths []*lab.Path, checks, warnings []string, ev evidence, scale []scaleRow, micro []microRow, took time.Duration) {
	fmt.Fprintf(w, "## Results (%s: %d rounds; iperf3 %v, connection rate %v with %d workers, latency %v per run; took %v)\n\n",
		cfg.mode, cfg.rounds, cfg.iperfTime, cfg.connTime, cfg.workers, cfg.latencyTime, took.Round(time.Second))
	fmt.Fprintln(w, "Median of the rounds in bold, (min–max) over the rounds; [n/N] marks metrics with failed samples.")
	if cfg.diffCPU >= 0 {
		fmt.Fprintf(w, "Servers run on vCPU %d; \"same vCPU\" clients also on vCPU %d, \"2 vCPUs\" and the probe clients on vCPU %d.\n\n", cfg.serverCPU, cfg.sameCPU, cfg.diffCPU)
	}
	res.WriteTable(w)
	fmt.Fprintln(w)
	var load float64
	if _, err := fmt.Sscan(m.LoadBefore, &load); err == nil && load > 0.5 {
		fmt.Fprintf(w, "The machine was not idle: load average %s at the start, %s at the end (other work shares the vCPUs); the min–max spread shows how much that moved the samples.\n\n", m.LoadBefore, m.LoadAfter)
	}
	fmt.Fprintln(w, "### Ratios against the baselines of the same run")
	fmt.Fprintln(w)
	res.WriteRatios(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Paths")
	fmt.Fprintln(w)
	for _, p := range paths {
		fmt.Fprintf(w, "- %s: %s", p.ID, p.Name)
		if p.Unavailable != "" {
			fmt.Fprintf(w, ": %s", p.Unavailable)
		}
		for _, n := range p.Notes {
			fmt.Fprintf(w, "; %s", n)
		}
		fmt.Fprintln(w)
	}
	for _, c := range checks {
		fmt.Fprintf(w, "- check %s\n", c)
	}
	if len(warnings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Warnings")
		fmt.Fprintln(w)
		for _, s := range warnings {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
	if len(ev.BPF)+len(ev.OVS)+len(ev.Profiles)+len(ev.Errors) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Where the time goes (measured after the rounds)")
		fmt.Fprintln(w)
		for _, s := range ev.BPF {
			fmt.Fprintf(w, "- %s\n", s)
		}
		for _, s := range ev.OVS {
			fmt.Fprintf(w, "- D, ovs-appctl:\n\n```\n%s\n```\n\n", strings.TrimSpace(s))
		}
		for _, p := range ev.Profiles {
			fmt.Fprintf(w, "\nperf profile of %s (%s), `perf record -e cpu-clock -a`, symbols above 1.5%%:\n\n```\n%s\n```\n", p.Path, p.Workload, p.Top)
		}
		for _, s := range ev.Errors {
			fmt.Fprintf(w, "- evidence step failed: %s\n", s)
		}
	}
	if len(scale) > 0 {
		fmt.Fprintln(w)
		writeScale(w, scale)
	}
	if len(micro) > 0 {
		fmt.Fprintln(w)
		writeMicro(w, micro, cfg.microRuns)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Machine")
	fmt.Fprintln(w)
	m.Write(w)
}

// replot redoes the results and ratios tables and the plot from a saved
// results.json.
func replot(cfg config, stdout io.Writer) error {
	res, title, m, err := report.LoadJSON(cfg.replot)
	if err != nil {
		return err
	}
	res.WriteTable(stdout)
	fmt.Fprintln(stdout)
	res.WriteRatios(stdout)
	fmt.Fprintln(stdout)
	m.Write(stdout)
	if err := os.MkdirAll(cfg.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	return res.WritePlot(filepath.Join(cfg.out, "performance.png"), title)
}

// emcShare runs fn and returns, for an ebpfovs path, what share of the
// datapath's packets meanwhile were exact-match cache hits (the `show`
// counters packets and emc_hits), as a clause for the BPF statistics line;
// "" for other paths or when the counters cannot be read.
func emcShare(ctx context.Context, p *lab.Path, fn func() error) (string, error) {
	if p.Flows == nil {
		return "", fn()
	}
	read := func() map[string]uint64 {
		out, err := p.Flows(ctx, "show")
		if err != nil {
			return nil
		}
		return lab.DatapathCounters(out)
	}
	before := read()
	if err := fn(); err != nil {
		return "", err
	}
	after := read()
	pkts := after["packets"] - before["packets"]
	if before == nil || after == nil || pkts == 0 {
		return "", nil
	}
	return fmt.Sprintf("; exact-match cache hits: %.1f%% of the datapath's %d packets",
		100*float64(after["emc_hits"]-before["emc_hits"])/float64(pkts), pkts), nil
}

// copyExecutable copies the executable src to dst and returns dst.
func copyExecutable(src, dst string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("ebpfovs binary (make build): %w", err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		return "", fmt.Errorf("copy ebpfovs binary: %w", err)
	}
	return dst, nil
}

// tapEvidence is collectEvidence for a tap path: the datapath program's
// run time during a SYN flood, and with -profile perf profiles of both
// floods.
func (ev *evidence) tapEvidence(ctx context.Context, cfg config, prober measure.Prober, p *lab.Path, logDir string, stderr io.Writer, fail func(error)) {
	if p.BPFProgPin != "" {
		logf(stderr, "evidence: BPF run time of path %s", p.ID)
		var f measure.PacketRate
		b, err := measure.BPFStats(p.BPFProgPin, func() (err error) {
			f, err = prober.Flood(ctx, p, clientCPU(cfg), cfg.floodTime, probe.FloodSYN)
			return err
		})
		if err != nil {
			fail(err)
		} else {
			ev.BPF = append(ev.BPF, fmt.Sprintf("%s, BPF statistics: SYN flood, %.3f Mpps: %s ran %d times for %v each on average, %.1f%% of one CPU",
				p.ID, f.Mpps, filepath.Base(p.BPFProgPin), b.Runs, b.PerRun(), b.CPUShare()))
		}
	}
	if !cfg.profile {
		return
	}
	for i, kind := range p.Floods {
		name := fmt.Sprintf("%s flood, %v", kind, cfg.profileTime)
		logf(stderr, "evidence: perf profile of path %s, %s", p.ID, name)
		top, err := measure.Profile(ctx, filepath.Join(logDir, fmt.Sprintf("perf-%s-%d.data", p.ID, i)), 1.5, func() error {
			_, err := prober.Flood(ctx, p, clientCPU(cfg), cfg.profileTime, kind)
			return err
		})
		if err != nil {
			fail(err)
			continue
		}
		ev.Profiles = append(ev.Profiles, profile{Path: p.ID + ": " + p.Name, Workload: name, Top: top})
	}
}
