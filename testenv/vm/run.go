package vm

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Config configures a kernel-matrix run.
type Config struct {
	// ModuleRoot is the Go module whose tests run (the repository root).
	ModuleRoot string
	// Kernels are the kernel specs, run one after the other: "6.1",
	// "6.12", "newest" (NewestSpec), or linux-image-* package names.
	Kernels []string
	// Packages are `go list` patterns relative to ModuleRoot; nil means
	// "./..." minus ExcludedPackages.
	Packages []string
	// Run is passed to the test binaries as -test.run when not empty.
	Run string
	// CacheDir holds the downloaded kernels and the runner's apt lists;
	// "" means DefaultCacheDir().
	CacheDir string
	// Timeout bounds each kernel's VM (boot, tests, power-off).
	Timeout time.Duration
	// TestTimeout is each test binary's -test.timeout.
	TestTimeout time.Duration
	// Parallel is how many test binaries the guest runs at once.
	Parallel int
	// MemoryMB and CPUs size the VM (0: 2048 MiB, 2 CPUs).
	MemoryMB, CPUs int
	// Accel is QEMU's accelerator ("": DefaultAccel, TCG).
	Accel string
	// Gzip compresses the initramfs (see ImageSpec.Gzip).
	Gzip bool
	// Keep leaves the work directory (test binaries, initramfs) in place
	// and prints where it is.
	Keep bool
	// Quiet does not stream the guest's console; the summaries and details
	// are printed anyway.
	Quiet bool
	// Out receives the guest console (each line prefixed with "[SPEC] ")
	// and the summaries; Log receives progress messages.
	Out, Log io.Writer
}

// Run builds the tests once, then boots each kernel in turn and runs them.
// It returns one result per kernel, in order; an error is returned only
// when nothing could be run (the tests do not build). Kernel-level
// failures (download, boot, timeout) are in the results' Err.
func Run(ctx context.Context, cfg Config) ([]*KernelResult, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir()
	}
	work, err := os.MkdirTemp("", "ebpfovs-vmtest-")
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		fmt.Fprintf(cfg.Log, "vmtest: keeping the work directory %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	pkgs, err := BuildTests(ctx, cfg.ModuleRoot, cfg.Packages, work, cfg.Log)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	var results []*KernelResult
	for _, spec := range cfg.Kernels {
		if ctx.Err() != nil {
			break
		}
		r := runKernel(ctx, cfg, spec, pkgs, work)
		r.Expected = names
		if left := r.unfinished(pkgs); r.KernelPanicked() && len(left) > 0 && ctx.Err() == nil {
			// A guest kernel that panics (an oops in the kernel's own
			// code under TCG, in a test of a Linux bridge, has been seen)
			// gets one more boot for the packages it did not finish. A
			// datapath that crashes the kernel crashes it again.
			fmt.Fprintf(cfg.Log, "vmtest: %s: the guest kernel panicked; booting it again for %s\n", r.name(), packageNames(left))
			r.Retry(runKernel(ctx, cfg, spec, left, work))
		}
		results = append(results, r)
		fmt.Fprintln(cfg.Out, r.Summary())
		r.WriteVerifierTable(cfg.Out)
	}
	return results, nil
}

// bootWait bounds the time from starting QEMU to /init's first line
// (5-10 s under TCG).
const bootWait = 3 * time.Minute

// runKernel fetches one kernel, builds its image and boots it.
func runKernel(ctx context.Context, cfg Config, spec string, pkgs []TestPackage, work string) *KernelResult {
	start := time.Now()
	r := &KernelResult{Spec: spec}
	defer func() { r.Total = time.Since(start) }()
	k, err := FetchKernel(ctx, cfg.CacheDir, spec, cfg.Log)
	if err != nil {
		r.Err = err
		return r
	}
	r.Release = k.Release
	var args []string
	if cfg.Run != "" {
		args = append(args, "-test.run="+cfg.Run)
	}
	initrd := filepath.Join(work, "initramfs-"+k.Release+".cpio")
	if cfg.Gzip {
		initrd += ".gz"
	}
	img, err := BuildInitramfs(ctx, initrd, ImageSpec{
		Kernel:      k,
		Tests:       pkgs,
		TestArgs:    args,
		TestTimeout: cfg.TestTimeout,
		Parallel:    cfg.Parallel,
		Gzip:        cfg.Gzip,
	})
	if err != nil {
		r.Err = fmt.Errorf("initramfs for %s: %w", k.Release, err)
		return r
	}
	if !cfg.Keep {
		defer os.Remove(initrd)
	}
	var mods []string
	for _, m := range img.Modules {
		mods = append(mods, m.Name)
	}
	fmt.Fprintf(cfg.Log, "vmtest: booting %s (%s %s) with a %d MiB initramfs (%d files, modules %v), time limit %s\n",
		k.Release, k.Package, k.Version, img.Size>>20, img.Files, mods, cfg.Timeout)

	// A kernel that never reaches /init would otherwise only end at the
	// time limit: give up after bootWait without the boot line.
	bootCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var booted, noBoot atomic.Bool
	watchdog := time.AfterFunc(bootWait, func() {
		if !booted.Load() {
			noBoot.Store(true)
			cancel()
		}
	})
	defer watchdog.Stop()

	bootStart := time.Now()
	parser := NewParser(r, bootStart)
	prefix := "[" + spec + "] "
	err = Boot(bootCtx, BootOptions{
		Kernel:   k.Vmlinuz(),
		Initrd:   initrd,
		MemoryMB: cfg.MemoryMB,
		CPUs:     cfg.CPUs,
		Accel:    cfg.Accel,
		Timeout:  cfg.Timeout,
	}, func(line string) {
		if !cfg.Quiet {
			fmt.Fprintln(cfg.Out, prefix+line)
		}
		parser.Line(line)
		if r.Booted {
			booted.Store(true)
		}
	})
	if noBoot.Load() {
		err = fmt.Errorf("no line from /init within %s: the kernel did not boot (run with the console shown, without -quiet)", bootWait)
	}
	parser.Finish()
	if err != nil {
		r.Err = fmt.Errorf("%s: %w", k.Release, err)
	}
	if r.Release == "" {
		r.Release = k.Release
	}
	return r
}

// Report writes every kernel's summary line, then for each kernel its
// verifier table (if the tests reported one), skipped tests, failures and
// notes.
func Report(w io.Writer, results []*KernelResult) {
	fmt.Fprintln(w, "== vmtest summary ==")
	for _, r := range results {
		fmt.Fprintln(w, r.Summary())
	}
	for _, r := range results {
		fmt.Fprintf(w, "-- kernel %s --\n", r.name())
		r.WriteVerifierTable(w)
		r.WriteDetails(w)
	}
}

func packageNames(pkgs []TestPackage) string {
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}
