package measure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/bench/lab"
)

// BPFRun is what the kernel's BPF run-time statistics say about a program
// over an interval.
type BPFRun struct {
	// Runs is the number of times the program ran.
	Runs uint64
	// Runtime is the total time spent in it.
	Runtime time.Duration
	// Wall is the length of the interval.
	Wall time.Duration
}

// PerRun is the mean time of one run.
func (b BPFRun) PerRun() time.Duration {
	if b.Runs == 0 {
		return 0
	}
	return b.Runtime / time.Duration(b.Runs)
}

// CPUShare is Runtime as a share of one CPU over the interval, in percent.
func (b BPFRun) CPUShare() float64 {
	if b.Wall == 0 {
		return 0
	}
	return 100 * b.Runtime.Seconds() / b.Wall.Seconds()
}

// BPFStats runs fn with the kernel's BPF run-time statistics enabled (the
// BPF_ENABLE_STATS file descriptor, which, unlike the global
// kernel.bpf_stats_enabled sysctl, turns itself off when closed, also if we
// die) and returns the pinned program's run count and run time during fn
// (its bpf_prog_info run_cnt and run_time_ns).
func BPFStats(pin string, fn func() error) (BPFRun, error) {
	var res BPFRun
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return res, fmt.Errorf("enable BPF stats: %w", err)
	}
	defer stats.Close()
	prog, err := ebpf.LoadPinnedProgram(pin, nil)
	if err != nil {
		return res, fmt.Errorf("open pinned program %s: %w", pin, err)
	}
	defer prog.Close()
	before, err := prog.Stats()
	if err != nil {
		return res, fmt.Errorf("program stats: %w", err)
	}
	start := time.Now()
	if err := fn(); err != nil {
		return res, err
	}
	res.Wall = time.Since(start)
	after, err := prog.Stats()
	if err != nil {
		return res, fmt.Errorf("program stats: %w", err)
	}
	res.Runs = after.RunCount - before.RunCount
	res.Runtime = after.Runtime - before.Runtime
	return res, nil
}

// Profile runs fn while `perf record -e cpu-clock -a` samples every CPU
// (a software event: it works without hardware counters, as in most VMs),
// keeps the data in dataFile and returns where the samples fell: by command
// (other people's work on a shared machine is marked "not ours"), then the
// hottest symbols of our commands above minPercent, with their binary.
func Profile(ctx context.Context, dataFile string, minPercent float64, fn func() error) (string, error) {
	perf, err := lab.Start(ctx, nil, dataFile+".log", "",
		"perf", "record", "-e", "cpu-clock", "-a", "-F", "1999", "-o", dataFile)
	if err != nil {
		return "", err
	}
	defer perf.Stop()
	time.Sleep(300 * time.Millisecond) // perf opens its events
	fnErr := fn()
	if err := perf.Signal(syscall.SIGINT); err != nil {
		return "", fmt.Errorf("stop perf record: %w", err)
	}
	if err := perf.Wait(20 * time.Second); err != nil {
		var ee interface{ ExitCode() int }
		// perf record exits with 130 or -1 after SIGINT; the data is written.
		if !errors.As(err, &ee) {
			return "", fmt.Errorf("perf record: %w", err)
		}
	}
	if fnErr != nil {
		return "", fnErr
	}
	if _, err := os.Stat(dataFile); err != nil {
		return "", fmt.Errorf("perf record wrote no data: %w", err)
	}
	byComm, err := lab.Run(ctx, "perf", "report", "-i", dataFile, "--stdio", "-q", "--no-children",
		"-F", "overhead,comm", "--percent-limit", "1")
	if err != nil {
		return "", err
	}
	var comms []string
	for _, l := range strings.Split(byComm, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if !ours(f[1]) {
			f[1] += " (not ours)"
		} else if f[1] == "swapper" {
			f[1] += " (idle)"
		}
		comms = append(comms, f[1]+" "+f[0])
	}
	bySym, err := lab.Run(ctx, "perf", "report", "-i", dataFile, "--stdio", "-q", "--no-children",
		"-F", "overhead,comm,dso,sym", "--percent-limit", fmt.Sprint(minPercent))
	if err != nil {
		return "", err
	}
	lines := []string{"by command: " + strings.Join(comms, ", ")}
	for _, l := range strings.Split(bySym, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !ours(f[1]) {
			continue
		}
		lines = append(lines, strings.Join(f, " "))
	}
	// JIT-compiled BPF programs are their own "binary", bpf_prog_TAG_NAME:
	// list them all, however small, with their total.
	byProg, err := lab.Run(ctx, "perf", "report", "-i", dataFile, "--stdio", "-q", "--no-children",
		"-F", "overhead,dso", "--percent-limit", "0.01")
	if err != nil {
		return "", err
	}
	var progs []string
	var total float64
	for _, l := range strings.Split(byProg, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 || !strings.HasPrefix(f[1], "bpf_prog_") {
			continue
		}
		var pct float64
		if _, err := fmt.Sscanf(f[0], "%f%%", &pct); err == nil {
			total += pct
		}
		// bpf_prog_<tag>_<name>: the tag changes with every build.
		name := f[1]
		if parts := strings.SplitN(name, "_", 4); len(parts) == 4 {
			name = parts[3]
		}
		progs = append(progs, name+" "+f[0])
	}
	if len(progs) > 0 {
		lines = append(lines, fmt.Sprintf("BPF programs (JIT code only): %.2f%% in all: %s", total, strings.Join(progs, ", ")))
		// The kernel functions BPF programs call (map lookups and updates,
		// LRU allocation, redirect): their share next to the JIT code.
		helpers, err := lab.Run(ctx, "perf", "report", "-i", dataFile, "--stdio", "-q", "--no-children",
			"-F", "overhead,comm,sym", "--percent-limit", "0.01")
		if err != nil {
			return "", err
		}
		var sum float64
		var top []string
		for _, l := range strings.Split(helpers, "\n") {
			f := strings.Fields(l)
			if len(f) != 4 || !ours(f[1]) || !bpfHelper.MatchString(f[3]) {
				continue
			}
			var pct float64
			if _, err := fmt.Sscanf(f[0], "%f%%", &pct); err == nil {
				sum += pct
			}
			if len(top) < 6 {
				top = append(top, f[3]+" "+f[0])
			}
		}
		lines = append(lines, fmt.Sprintf("kernel functions called by BPF (maps, LRU, redirect): %.2f%% in all: %s", sum, strings.Join(top, ", ")))
	}
	return strings.Join(lines, "\n"), nil
}

// bpfHelper matches the kernel functions behind the BPF helpers the
// datapath calls: hash and LRU maps, arrays, redirect.
var bpfHelper = regexp.MustCompile(`^(__?htab_|htab_|lookup_nulls_elem_raw|lookup_elem_raw|bpf_lru_|__bpf_lru_|bpf_percpu_lru|jhash|array_map_|percpu_array_|bpf_map_|bpf_skb_|bpf_redirect|skb_do_redirect|bpf_ktime_|bpf_get_smp_processor_id|bpf_csum_|bpf_l[34]_csum)`)

// ours tells whether a perf command name belongs to the benchmark's traffic
// (the load generators, OVS's threads, the kernel's softirq and idle
// threads) rather than to other work on a shared machine.
func ours(comm string) bool {
	for _, prefix := range []string{"iperf3", "bench", "ovs-vswitchd", "handler", "revalidator", "urcu", "pmd", "ksoftirqd", "swapper"} {
		if strings.HasPrefix(comm, prefix) {
			return true
		}
	}
	return false
}
