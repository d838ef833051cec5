package report

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine describes where and when a run happened.
type Machine struct {
	CPU       string    `json:"cpu"`
	VCPUs     int       `json:"vcpus"`
	MemoryGiB float64   `json:"memory_gib"`
	Kernel    string    `json:"kernel"`
	Date      time.Time `json:"date"`
	Go        string    `json:"go"`
	Commit    string    `json:"commit"`
	// Ebpfovs identifies the ebpfovs binary measured (path, build time,
	// checksum).
	Ebpfovs string `json:"ebpfovs"`
	// Tools are the versions of the programs the run used.
	Tools []string `json:"tools"`
	// LoadBefore and LoadAfter are /proc/loadavg at start and end: other
	// work on the machine shows here.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

// ReadMachine gathers the machine's description (LoadAfter is filled in by
// Finish).
func ReadMachine(ctx context.Context) Machine {
	m := Machine{VCPUs: runtime.NumCPU(), Date: time.Now().UTC(), Go: runtime.Version()}
	m.CPU = firstMatch("/proc/cpuinfo", "model name")
	if mem := firstMatch("/proc/meminfo", "MemTotal"); mem != "" {
		var kb float64
		fmt.Sscan(mem, &kb)
		m.MemoryGiB = kb / (1 << 20)
	}
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	version, _ := os.ReadFile("/proc/sys/kernel/version")
	m.Kernel = strings.TrimSpace(string(release)) + " " + strings.TrimSpace(string(version))
	m.Commit = output(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12")
	for _, argv := range [][]string{
		{"iperf3", "--version"},
		{"ovs-vswitchd", "--version"},
		{"nft", "--version"},
	} {
		if v := output(ctx, argv...); v != "" {
			m.Tools = append(m.Tools, strings.SplitN(v, "\n", 2)[0])
		}
	}
	m.LoadBefore = loadavg()
	return m
}

// DescribeBinary identifies a binary by path, modification time and the
// start of its SHA-256.
func DescribeBinary(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return path + " (unreadable)"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return path + " (unreadable)"
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return path + " (unreadable)"
	}
	return fmt.Sprintf("%s, built %s, sha256 %x", path, st.ModTime().UTC().Format(time.RFC3339), h.Sum(nil)[:6])
}

// Finish records the end-of-run load.
func (m *Machine) Finish() { m.LoadAfter = loadavg() }

// Write prints the machine section of the report.
func (m Machine) Write(w io.Writer) {
	fmt.Fprintf(w, "- machine: %s, %d vCPUs, %.1f GiB RAM\n", m.CPU, m.VCPUs, m.MemoryGiB)
	fmt.Fprintf(w, "- kernel: %s\n", m.Kernel)
	fmt.Fprintf(w, "- date: %s\n", m.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "- work tree: %s; %s\n", m.Commit, m.Go)
	if m.Ebpfovs != "" {
		fmt.Fprintf(w, "- ebpfovs binary: %s\n", m.Ebpfovs)
	}
	fmt.Fprintf(w, "- tools: %s\n", strings.Join(m.Tools, "; "))
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s, after: %s\n", m.LoadBefore, m.LoadAfter)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// firstMatch returns the value of the first "key: value" line of file
// starting with key.
func firstMatch(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// output runs a command and returns its trimmed output, or "" on failure.
func output(ctx context.Context, argv ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
