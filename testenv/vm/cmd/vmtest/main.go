// Command vmtest runs ebpfovs's tests inside QEMU virtual machines booted
// on Debian kernels other than the host's, one kernel after the other, and
// prints one summary line per kernel. See docs/vmtest.md.
//
//	go run ./testenv/vm/cmd/vmtest -kernel 6.1 -kernel 6.12 -kernel newest
//	go run ./testenv/vm/cmd/vmtest -kernel 6.1 -packages ./ctl -run 'TestLab'
//	go run ./testenv/vm/cmd/vmtest -resolve -kernel 6.1,6.12,newest
//
// It exits 0 when every package passed on every kernel, 1 when a test
// failed or a guest died or timed out, and 2 on a usage error.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ebpfovs/ebpfovs/testenv/vm"
)

// listFlag collects a repeatable flag; each value may also be a comma or
// space separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l = append(*l, f)
	}
	return nil
}

func main() {
	var kernels, packages listFlag
	cfg := vm.Config{}
	flag.Var(&kernels, "kernel", "kernel to test: a series (6.1, 6.12), newest (the newest Debian serves) or a linux-image-* package; repeatable (default 6.1, 6.12 and newest)")
	flag.Var(&packages, "packages", "comma separated packages to test, as go list patterns (default: every package with tests but testenv/vm and bench/...)")
	flag.StringVar(&cfg.Run, "run", "", "run only the tests matching this regular expression (-test.run)")
	flag.StringVar(&cfg.CacheDir, "cache", vm.DefaultCacheDir(), "where downloaded kernels and the runner's own apt lists are kept ($EBPFOVS_VM_CACHE)")
	flag.DurationVar(&cfg.Timeout, "timeout", 28*time.Minute, "time limit of each kernel's VM (boot, all packages, power-off); QEMU is killed when it is reached")
	flag.DurationVar(&cfg.TestTimeout, "test-timeout", 22*time.Minute, "-test.timeout of each test binary in the guest")
	flag.IntVar(&cfg.Parallel, "parallel", 1, "test binaries the guest runs at once (packages are dealt to that many workers in turn; their lines interleave)")
	flag.IntVar(&cfg.MemoryMB, "memory", 2048, "guest memory in MiB")
	flag.IntVar(&cfg.CPUs, "cpus", 2, "guest CPUs")
	flag.StringVar(&cfg.Accel, "accel", vm.DefaultAccel, "QEMU accelerator (kvm where KVM can run the guest kernels)")
	flag.BoolVar(&cfg.Gzip, "gzip", true, "gzip the initramfs (-gzip=false: a twice larger image, which boots as fast under TCG)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work directory (test binaries, initramfs) for debugging")
	flag.BoolVar(&cfg.Quiet, "quiet", false, "do not stream the guests' consoles; print only the summary and details")
	root := flag.String("C", "", "the module root (default: the module containing the current directory)")
	verifierOut := flag.String("verifier-out", "", "write each kernel's verifier table (EBPFOVS-VERIFIER lines of the tests) to `DIR`/verifier-RELEASE.md")
	resolve := flag.Bool("resolve", false, "only print what each -kernel resolves to in Debian's lists (updating the runner's apt lists if needed), then exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: vmtest [-kernel 6.1] [-kernel 6.12] [-kernel newest] [-packages ./bpf,./ctl] [-run REGEX] [flags]\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "vmtest: unexpected argument %q\n", flag.Arg(0))
		flag.Usage()
		os.Exit(2)
	}
	if cfg.Parallel < 1 || cfg.CPUs < 1 || cfg.MemoryMB < 256 || cfg.Timeout <= 0 || cfg.TestTimeout <= 0 {
		fmt.Fprintln(os.Stderr, "vmtest: -parallel and -cpus must be at least 1, -memory at least 256, the timeouts positive")
		os.Exit(2)
	}
	if len(kernels) == 0 {
		kernels = listFlag{"6.1", "6.12", vm.NewestSpec}
	}
	for _, k := range kernels {
		if err := vm.ValidSpec(k); err != nil {
			fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
			os.Exit(2)
		}
	}
	cfg.Kernels, cfg.Packages = kernels, packages
	cfg.Out, cfg.Log = os.Stdout, os.Stderr

	var err error
	if cfg.ModuleRoot, err = moduleRoot(*root); err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *resolve {
		os.Exit(resolveOnly(ctx, cfg))
	}
	start := time.Now()
	results, err := vm.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "vmtest: %v\n", err)
		os.Exit(1)
	}
	fmt.Println()
	vm.Report(os.Stdout, results)
	failed := len(results) < len(cfg.Kernels) // interrupted
	if *verifierOut != "" {
		for _, r := range results {
			file, err := vm.WriteVerifierMarkdown(*verifierOut, r)
			switch {
			case err != nil:
				fmt.Fprintf(os.Stderr, "vmtest: verifier table: %v\n", err)
				failed = true
			case file != "":
				fmt.Fprintf(os.Stderr, "vmtest: wrote %s\n", file)
			}
		}
	}
	for _, r := range results {
		if !r.OK() {
			failed = true
		}
	}
	fmt.Printf("vmtest: %d kernel(s) in %s: ", len(results), time.Since(start).Round(time.Second))
	if failed {
		fmt.Println("FAIL")
		os.Exit(1)
	}
	fmt.Println("ok")
}

// resolveOnly prints what each kernel spec resolves to; 1 if one does not.
func resolveOnly(ctx context.Context, cfg vm.Config) int {
	status := 0
	for _, spec := range cfg.Kernels {
		res, err := vm.ResolveKernel(ctx, cfg.CacheDir, spec, cfg.Log)
		if err != nil {
			fmt.Printf("%s: %v\n", spec, err)
			status = 1
			continue
		}
		fmt.Printf("%s: %s %s from %s, release %s (looked in %s)\n", spec, res.Package, res.Version, res.Suite, res.Release, strings.Join(res.Suites, ", "))
	}
	return status
}

// moduleRoot returns dir, or the directory of the go.mod above the current
// directory.
func moduleRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above the current directory; use -C")
		}
		d = parent
	}
}
