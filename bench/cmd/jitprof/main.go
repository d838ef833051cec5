// Command jitprof shows where a loaded BPF program spends its time, down to
// the instruction: it samples every CPU with perf (cpu-clock: this VM has
// no hardware counters), keeps the samples that fall in the program's
// JIT-compiled functions, and prints each function's share, the kernel
// functions the samples also hit (map helpers such as htab_map_hash), the
// hottest source lines (BTF line info), and the hottest instructions with
// the x86 code around them (objdump).
//
// A sample lands on the instruction after the one that held the CPU
// (skid): a hot "mov" right after a "lock cmpxchg" is the atomic's cost, a
// hot instruction after an 8-byte load that several smaller stores just
// wrote is a store-forwarding stall.
//
// Usage (as root, while something runs the program; bench/jitprof.sh
// starts a datapath micro-benchmark for it):
//
//	go run ./bench/cmd/jitprof [-name tc_ingress] [-seconds 8] [-top 15]
//
// It picks the most recently loaded program of that name. Needs perf and
// objdump (linux-perf, binutils).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

func main() {
	name := flag.String("name", "tc_ingress", "the program's name (the newest one loaded is profiled)")
	seconds := flag.Int("seconds", 8, "how long perf samples")
	top := flag.Int("top", 15, "how many hot instructions to show")
	after := flag.Float64("after", 0, "wait (up to a minute) for a program loaded after this many seconds since boot (/proc/uptime)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: jitprof [-name PROG] [-seconds N] [-top N]\n\n"+
			"Profiles the newest loaded BPF program called PROG with perf and prints its hottest\n"+
			"JIT instructions. Run it as root while the program runs (bench/jitprof.sh).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(os.Stdout, *name, *seconds, *top, time.Duration(*after*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "jitprof:", err)
		os.Exit(1)
	}
}

// jited is a program's JIT image, split into its functions, and where
// its source lines start in it.
type jited struct {
	id    ebpf.ProgramID
	funcs []jitFunc
	lines []srcLine // by address
}

// srcLine is where the code of one source line (BTF line info) starts.
type srcLine struct {
	addr uint64
	text string // "file.h:123 the line"
}

type jitFunc struct {
	name string
	addr uint64 // kernel address of the first byte
	code []byte
}

func run(w io.Writer, name string, seconds, top int, after time.Duration) error {
	for _, tool := range []string{"perf", "objdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (apt-get install linux-perf binutils)", tool)
		}
	}
	prog, err := findProgram(name, after)
	for deadline := time.Now().Add(time.Minute); err != nil && after > 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		prog, err = findProgram(name, after)
	}
	if err != nil {
		return err
	}
	if after > 0 {
		time.Sleep(2 * time.Second) // the rest of the set-up: flows, a connection
	}
	dir, err := os.MkdirTemp("", "jitprof")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	data := filepath.Join(dir, "perf.data")
	fmt.Fprintf(os.Stderr, "jitprof: %s (id %d, %d functions): perf samples for %d s\n", name, prog.id, len(prog.funcs), seconds)
	rec := exec.Command("perf", "record", "-q", "-a", "-F", "20000", "-e", "cpu-clock", "-o", data, "--", "sleep", strconv.Itoa(seconds))
	rec.Stderr = os.Stderr
	if err := rec.Run(); err != nil {
		return fmt.Errorf("perf record: %w", err)
	}
	out, err := exec.Command("perf", "script", "-i", data, "-F", "ip,sym").Output()
	if err != nil {
		return fmt.Errorf("perf script: %w", err)
	}
	p := aggregate(bytes.NewReader(out), prog.funcs, prog.lines)
	if p.inProg == 0 {
		return fmt.Errorf("no samples in %s (id %d): is something running it?", name, prog.id)
	}
	return report(w, p, prog.funcs, top, dir)
}

// findProgram returns the JIT image of the newest loaded program called
// name, if it was loaded after the given time since boot.
func findProgram(name string, after time.Duration) (*jited, error) {
	var best *ebpf.Program
	var bestID ebpf.ProgramID
	var bestLoad time.Duration // since boot; IDs are reused cyclically, so not they
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list programs: %w", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // gone meanwhile
		}
		info, err := p.Info()
		if err != nil || info.Name != name {
			p.Close()
			continue
		}
		load, _ := info.LoadTime()
		if best != nil && load < bestLoad {
			p.Close()
			continue
		}
		if best != nil {
			best.Close()
		}
		best, bestID, bestLoad = p, id, load
	}
	if best == nil || bestLoad < after {
		if best != nil {
			best.Close()
		}
		return nil, fmt.Errorf("no program called %q loaded (since %v after boot)", name, after)
	}
	defer best.Close()
	info, err := best.Info()
	if err != nil {
		return nil, err
	}
	code, ok1 := info.JitedInsns()
	addrs, ok2 := info.JitedKsymAddrs()
	lens, ok3 := info.JitedFuncLens()
	if !ok1 || !ok2 || !ok3 || len(addrs) != len(lens) {
		return nil, fmt.Errorf("program %d: the kernel gives no JIT image (JIT off, or kernel.kptr_restrict?)", bestID)
	}
	names := make([]string, len(lens))
	if fis, err := info.FuncInfos(); err == nil {
		i := 0
		for _, fi := range fis {
			if i < len(names) {
				names[i] = fi.Func.Name
			}
			i++
		}
	}
	prog := &jited{id: bestID}
	if addrs, ok := info.JitedLineInfos(); ok {
		if lis, err := info.LineInfos(); err == nil && len(lis) == len(addrs) {
			for i, li := range lis {
				prog.lines = append(prog.lines, srcLine{addr: addrs[i],
					text: fmt.Sprintf("%s:%d %s", filepath.Base(li.Line.FileName()), li.Line.LineNumber(), strings.TrimSpace(li.Line.Line()))})
			}
			sort.SliceStable(prog.lines, func(i, j int) bool { return prog.lines[i].addr < prog.lines[j].addr })
		}
	}
	off := 0
	for i, n := range lens {
		if off+int(n) > len(code) {
			return nil, fmt.Errorf("program %d: JIT image shorter than its functions", bestID)
		}
		fn := names[i]
		if fn == "" {
			fn = fmt.Sprintf("func%d", i)
		}
		prog.funcs = append(prog.funcs, jitFunc{name: fn, addr: uint64(addrs[i]), code: code[off : off+int(n)]})
		off += int(n)
	}
	return prog, nil
}

// profile is perf's samples sorted out.
type profile struct {
	total  int            // all samples but the idle loop's
	inProg int            // samples in the program's functions
	bySym  map[string]int // samples per symbol, the program's functions by their names
	byInsn map[insn]int   // samples per offset in the program's functions
	byLine map[string]int // samples per source line (where BTF line info maps them)
}

type insn struct {
	fn  int // index into the functions
	off uint64
}

// aggregate reads `perf script -F ip,sym` lines ("ffffffffc0012345 sym").
func aggregate(r io.Reader, funcs []jitFunc, lines []srcLine) *profile {
	p := &profile{bySym: map[string]int{}, byInsn: map[insn]int{}, byLine: map[string]int{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		ip, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			continue
		}
		sym := "[unknown]"
		if len(f) > 1 {
			sym = f[1]
		}
		if strings.Contains(sym, "safe_halt") || strings.HasPrefix(sym, "default_idle") {
			continue // an idle CPU
		}
		p.total++
		if i := funcOf(funcs, ip); i >= 0 {
			p.inProg++
			p.bySym[funcs[i].name+" (program)"]++
			p.byInsn[insn{i, ip - funcs[i].addr}]++
			if l := lineOf(lines, ip, funcs[i].addr); l != "" {
				p.byLine[l]++
			}
			continue
		}
		p.bySym[sym]++
	}
	return p
}

// lineOf returns the source line whose code holds ip: the last line that
// starts at or before ip, if it starts within ip's function (at or after
// fnAddr).
func lineOf(lines []srcLine, ip, fnAddr uint64) string {
	i := sort.Search(len(lines), func(i int) bool { return lines[i].addr > ip }) - 1
	if i < 0 || lines[i].addr < fnAddr {
		return ""
	}
	return lines[i].text
}

// funcOf returns the index of the function whose code holds ip, or -1.
func funcOf(funcs []jitFunc, ip uint64) int {
	for i, f := range funcs {
		if ip >= f.addr && ip < f.addr+uint64(len(f.code)) {
			return i
		}
	}
	return -1
}

func report(w io.Writer, p *profile, funcs []jitFunc, top int, dir string) error {
	fmt.Fprintf(w, "%d samples (idle excluded), %d in the program\n\nsymbol share (of all non-idle samples):\n", p.total, p.inProg)
	type kv struct {
		k string
		v int
	}
	var syms []kv
	for k, v := range p.bySym {
		syms = append(syms, kv{k, v})
	}
	sort.Slice(syms, func(i, j int) bool { return syms[i].v > syms[j].v })
	for i, s := range syms {
		if i == 20 || s.v*1000 < p.total {
			break
		}
		fmt.Fprintf(w, "  %6.2f%%  %s\n", 100*float64(s.v)/float64(p.total), s.k)
	}
	if len(p.byLine) > 0 {
		var ls []kv
		for k, v := range p.byLine {
			ls = append(ls, kv{k, v})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].v > ls[j].v })
		fmt.Fprintf(w, "\nhottest source lines (share of the program's samples; inlined code counts where it was written):\n")
		for i, l := range ls {
			if i == 2*top {
				break
			}
			text := l.k
			if len(text) > 110 {
				text = text[:110] + "..."
			}
			fmt.Fprintf(w, "  %5.2f%%  %s\n", 100*float64(l.v)/float64(p.inProg), text)
		}
	}
	var hot []insn
	for k := range p.byInsn {
		hot = append(hot, k)
	}
	sort.Slice(hot, func(i, j int) bool { return p.byInsn[hot[i]] > p.byInsn[hot[j]] })
	if len(hot) > top {
		hot = hot[:top]
	}
	fmt.Fprintf(w, "\nhottest instructions (share of the program's samples; the sample is on the instruction after the one that held the CPU):\n")
	asm := map[int][]string{}
	for _, h := range hot {
		lines, ok := asm[h.fn]
		if !ok {
			var err error
			if lines, err = disassemble(funcs[h.fn].code, dir); err != nil {
				return err
			}
			asm[h.fn] = lines
		}
		fmt.Fprintf(w, "\n%5.2f%%  %s+%#x\n", 100*float64(p.byInsn[h])/float64(p.inProg), funcs[h.fn].name, h.off)
		for _, l := range around(lines, h.off, 6) {
			fmt.Fprintln(w, "        "+l)
		}
	}
	return nil
}

// disassemble returns objdump's lines for one function's code (offsets
// from 0), or nothing where the architecture is not x86-64.
func disassemble(code []byte, dir string) ([]string, error) {
	if runtime.GOARCH != "amd64" {
		return nil, nil
	}
	f := filepath.Join(dir, "func.bin")
	if err := os.WriteFile(f, code, 0o600); err != nil {
		return nil, err
	}
	out, err := exec.Command("objdump", "-D", "-b", "binary", "-mi386:x86-64", f).Output()
	if err != nil {
		return nil, fmt.Errorf("objdump: %w", err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if _, ok := lineOffset(l); ok {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// lineOffset is the offset an objdump line starts with ("  2b3:\t...").
func lineOffset(l string) (uint64, bool) {
	head, _, ok := strings.Cut(strings.TrimSpace(l), ":")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(head, 16, 64)
	return v, err == nil
}

// around returns the n lines before the one at off, and that line.
func around(lines []string, off uint64, n int) []string {
	for i, l := range lines {
		if o, _ := lineOffset(l); o >= off {
			lo := max(i-n, 0)
			return lines[lo:min(i+1, len(lines))]
		}
	}
	return nil
}
