// Package measure runs the benchmark's traffic on a lab.Path: iperf3 TCP
// throughput with the CPU it cost, and the probe tool's connection rate and
// request/response latency. Clients run in VM1, servers in VM2, each pinned
// to a vCPU with taskset; every run is bounded in time.
package measure

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ebpfovs/ebpfovs/bench/lab"
	"github.com/ebpfovs/ebpfovs/bench/probe"
)

// Ports the servers listen on in VM2.
const (
	IPerfPort    = 5201
	ConnRatePort = 7001
	EchoPort     = 7002
)

// slack is added to a client's own duration to bound the whole command.
const slack = 15 * time.Second

// CPUTimes are the aggregate jiffies of /proc/stat's "cpu" line.
type CPUTimes struct {
	// Busy is user+nice+system+irq+softirq (guest time is inside user).
	Busy uint64
	// Idle is idle+iowait.
	Idle uint64
	// Steal is time the hypervisor gave to someone else.
	Steal uint64
}

// ReadCPU reads the aggregate CPU times of the machine.
func ReadCPU() (CPUTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPUTimes{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 9 || fields[0] != "cpu" {
			continue
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(fields[i+1], 10, 64); err != nil {
				return CPUTimes{}, fmt.Errorf("parse /proc/stat cpu line: %w", err)
			}
		}
		// user nice system idle iowait irq softirq steal
		return CPUTimes{Busy: v[0] + v[1] + v[2] + v[5] + v[6], Idle: v[3] + v[4], Steal: v[7]}, nil
	}
	return CPUTimes{}, errors.New("/proc/stat has no cpu line")
}

// Sub returns the times spent between earlier and t.
func (t CPUTimes) Sub(earlier CPUTimes) CPUTimes {
	return CPUTimes{Busy: t.Busy - earlier.Busy, Idle: t.Idle - earlier.Idle, Steal: t.Steal - earlier.Steal}
}

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every Linux
// architecture that matters here).
const userHZ = 100

// Throughput is one iperf3 run.
type Throughput struct {
	// Gbps is the receiver's rate.
	Gbps float64
	// Retransmits is the sender's TCP retransmission count.
	Retransmits int
	// CPUSecPerGbit is the machine's busy CPU time during the run (all
	// CPUs, from /proc/stat) per Gbit received.
	CPUSecPerGbit float64
	// StealPct is the share of CPU time stolen by the hypervisor during
	// the run, a noise indicator on shared vCPUs.
	StealPct float64
}

// IPerf runs one single-stream iperf3 test from VM1 to VM2 for d (whole
// seconds) with CUBIC, the client pinned to clientCPU and the server to
// serverCPU. Logs go to logDir.
func IPerf(ctx context.Context, p *lab.Path, clientCPU, serverCPU int, d time.Duration, logDir string) (Throughput, error) {
	var res Throughput
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+slack)
	defer cancel()
	port := strconv.Itoa(IPerfPort)
	// -1: one test, then exit; --forceflush: the "Server listening" line
	// reaches our pipe at once.
	srv, err := lab.Start(ctx, nil, filepath.Join(logDir, "iperf3-server-"+p.ID+".log"), "Server listening",
		lab.InNetns(p.VM2, "taskset", "-c", strconv.Itoa(serverCPU),
			"iperf3", "-s", "-1", "--forceflush", "-p", port)...)
	if err != nil {
		return res, err
	}
	defer srv.Stop()
	before, err := ReadCPU()
	if err != nil {
		return res, err
	}
	out, runErr := lab.Command(ctx, nil, lab.InNetns(p.VM1, "taskset", "-c", strconv.Itoa(clientCPU),
		"iperf3", "-c", lab.VM2IP, "-p", port, "-C", "cubic", "-t", strconv.Itoa(secs),
		"-J", "--connect-timeout", "3000")...).Output()
	after, err := ReadCPU()
	if err != nil {
		return res, err
	}
	var rep struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		return res, fmt.Errorf("iperf3 on path %s: %v; output: %.200q", p.ID, errors.Join(runErr, err), out)
	}
	if rep.Error != "" || runErr != nil {
		return res, fmt.Errorf("iperf3 on path %s: %v %s", p.ID, runErr, rep.Error)
	}
	if rep.End.SumReceived.Bytes == 0 {
		return res, fmt.Errorf("iperf3 on path %s: nothing received", p.ID)
	}
	if err := srv.Wait(5 * time.Second); err != nil {
		return res, fmt.Errorf("iperf3 server on path %s: %w", p.ID, err)
	}
	cpu := after.Sub(before)
	res.Gbps = rep.End.SumReceived.BitsPerSecond / 1e9
	res.Retransmits = rep.End.SumSent.Retransmits
	res.CPUSecPerGbit = float64(cpu.Busy) / userHZ / (rep.End.SumReceived.Bytes * 8 / 1e9)
	if all := cpu.Busy + cpu.Idle + cpu.Steal; all > 0 {
		res.StealPct = 100 * float64(cpu.Steal) / float64(all)
	}
	return res, nil
}

// Prober runs the probe tool, which is this program itself started with
// the "probe" subcommand (see cmd/bench) inside a VM namespace.
type Prober struct {
	// Self is the benchmark binary.
	Self string
	// LogDir receives the servers' output.
	LogDir string
}

// StartServer starts the probe server in VM2 pinned to cpu and registers
// its stop on env.
func (pr Prober) StartServer(ctx context.Context, env *lab.Env, p *lab.Path, cpu int) error {
	srv, err := lab.Start(ctx, nil, filepath.Join(pr.LogDir, "probe-server-"+p.ID+".log"), "ready",
		lab.InNetns(p.VM2, "taskset", "-c", strconv.Itoa(cpu), pr.Self, "probe", "serve",
			"-conn", fmt.Sprintf("%s:%d", lab.VM2IP, ConnRatePort),
			"-echo", fmt.Sprintf("%s:%d", lab.VM2IP, EchoPort))...)
	if err != nil {
		return fmt.Errorf("probe server on path %s: %w", p.ID, err)
	}
	env.Cleanup.Push("stop probe server "+p.ID, func() error { srv.Stop(); return nil })
	return nil
}

// client runs a probe client in VM1 pinned to cpu and decodes its JSON
// result into v.
func (pr Prober) client(ctx context.Context, p *lab.Path, cpu int, d time.Duration, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, d+slack)
	defer cancel()
	ns := p.VM1
	if p.Taps {
		ns = p.Host // the generator holds the taps, as QEMU does
	}
	argv := lab.InNetns(ns, "taskset", "-c", strconv.Itoa(cpu), pr.Self, "probe")
	cmd := lab.Command(ctx, nil, append(argv, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("probe %s on path %s: %w: %s", args[0], p.ID, err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("probe %s on path %s: %w", args[0], p.ID, err)
	}
	return nil
}

// ConnRate measures short connections per second from VM1 to VM2 for d
// with the given number of concurrent workers.
func (pr Prober) ConnRate(ctx context.Context, p *lab.Path, cpu int, d time.Duration, workers int) (probe.ConnRateResult, error) {
	var res probe.ConnRateResult
	err := pr.client(ctx, p, cpu, d, &res, "connrate",
		"-addr", fmt.Sprintf("%s:%d", lab.VM2IP, ConnRatePort),
		"-duration", d.String(), "-workers", strconv.Itoa(workers))
	return res, err
}

// Latency measures one-byte request/response round trips over one
// connection from VM1 to VM2 for d.
func (pr Prober) Latency(ctx context.Context, p *lab.Path, cpu int, d time.Duration) (probe.LatencyResult, error) {
	var res probe.LatencyResult
	err := pr.client(ctx, p, cpu, d, &res, "latency",
		"-addr", fmt.Sprintf("%s:%d", lab.VM2IP, EchoPort), "-duration", d.String())
	return res, err
}

// PacketRate is one packet-generator run (probe.Flood) on a path.
type PacketRate struct {
	// Mpps is the rate the path took the frames at, in millions per
	// second: for UDP what VM2's eth0 received (tap paths: what the switch
	// sent out of vnet2); for SYNs what the switch's policy counted as
	// dropped (lab.PolicyDrops), or where it has no counter what the
	// generator sent less what was dropped before the switch saw it.
	Mpps float64
	// CPUSecPerMpkt is the machine's busy CPU time per million frames.
	CPUSecPerMpkt float64
	// Delivered is what reached VM2, in millions per second.
	Delivered float64
}

// linkCounters are a device's packet counters, read with `ip -s -j`.
type linkCounters struct{ rx, rxDropped, tx, txDropped uint64 }

func readLink(ctx context.Context, ns, dev string) (linkCounters, error) {
	out, err := lab.Run(ctx, "ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev)
	if err != nil {
		return linkCounters{}, err
	}
	var l []struct {
		Stats64 struct {
			RX struct {
				Packets uint64 `json:"packets"`
				Dropped uint64 `json:"dropped"`
			} `json:"rx"`
			TX struct {
				Packets uint64 `json:"packets"`
				Dropped uint64 `json:"dropped"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l) != 1 {
		return linkCounters{}, fmt.Errorf("ip -s -j link show %s in %s: %v", dev, ns, err)
	}
	s := l[0].Stats64
	return linkCounters{rx: s.RX.Packets, rxDropped: s.RX.Dropped, tx: s.TX.Packets, txDropped: s.TX.Dropped}, nil
}

// Flood runs the packet generator of kind (probe.FloodUDP, probe.FloodSYN)
// in VM1, pinned to cpu, for d, and reads what the path made of it.
func (pr Prober) Flood(ctx context.Context, p *lab.Path, cpu int, d time.Duration, kind string) (PacketRate, error) {
	if p.Taps {
		return pr.tapFlood(ctx, p, cpu, d, kind)
	}
	var res PacketRate
	read := func() (vm1, vm2, port linkCounters, err error) {
		if vm1, err = readLink(ctx, p.VM1, "eth0"); err != nil {
			return
		}
		if vm2, err = readLink(ctx, p.VM2, "eth0"); err != nil {
			return
		}
		if p.Port != "" {
			port, err = readLink(ctx, p.Host, p.Port)
		}
		return
	}
	vm1a, vm2a, porta, err := read()
	if err != nil {
		return res, err
	}
	dropsa, policy, err := lab.PolicyDrops(ctx, p)
	if err != nil {
		return res, err
	}
	cpua, err := ReadCPU()
	if err != nil {
		return res, err
	}
	var fr probe.FloodResult
	if err := pr.client(ctx, p, cpu, d, &fr, "flood", "-kind", kind, "-duration", d.String(), "-iface", "eth0",
		"-src", lab.VM1IP, "-dst", lab.VM2IP, "-src-mac", lab.VMMAC(1), "-dst-mac", lab.VMMAC(2)); err != nil {
		return res, err
	}
	cpub, err := ReadCPU()
	if err != nil {
		return res, err
	}
	vm1b, vm2b, portb, err := read()
	if err != nil {
		return res, err
	}
	if fr.Sent == 0 || fr.Seconds <= 0 {
		return res, fmt.Errorf("flood %s on path %s: nothing sent", kind, p.ID)
	}
	delivered := float64(vm2b.rx - vm2a.rx)
	took := delivered
	if kind == probe.FloodSYN {
		// The switch's own count of what its policy dropped: Open
		// vSwitch's userspace datapath reads its ports on a thread of its
		// own, so what was sent is not what it took.
		if policy {
			dropsb, _, err := lab.PolicyDrops(ctx, p)
			if err != nil {
				return res, err
			}
			took = float64(dropsb - dropsa)
		} else {
			took = float64(fr.Sent) - float64(vm1b.txDropped-vm1a.txDropped) - float64(portb.rxDropped-porta.rxDropped)
		}
	}
	if took <= 0 {
		return res, fmt.Errorf("flood %s on path %s: sent %d, none taken (VM2 received %.0f)", kind, p.ID, fr.Sent, delivered)
	}
	res.Mpps = took / fr.Seconds / 1e6
	res.Delivered = delivered / fr.Seconds / 1e6
	res.CPUSecPerMpkt = float64(cpub.Sub(cpua).Busy) / userHZ / (took / 1e6)
	return res, nil
}

// tapFlood is Flood on a tap path: the generator writes into vnet1 and
// reads vnet2. UDP's rate is what the switch sent out of vnet2 (its
// transmitted and dropped frames: the reader may fall behind, the switch
// did the work); the SYNs' is what was written, all dropped by policy.
func (pr Prober) tapFlood(ctx context.Context, p *lab.Path, cpu int, d time.Duration, kind string) (PacketRate, error) {
	var res PacketRate
	outa, err := readLink(ctx, p.Host, "vnet2")
	if err != nil {
		return res, err
	}
	cpua, err := ReadCPU()
	if err != nil {
		return res, err
	}
	dropsa, policy, err := lab.PolicyDrops(ctx, p)
	if err != nil {
		return res, err
	}
	var fr probe.TapFloodResult
	if err := pr.client(ctx, p, cpu, d, &fr, "tapflood", "-kind", kind, "-duration", d.String(), "-in", "vnet1", "-out", "vnet2",
		"-src", lab.VM1IP, "-dst", lab.VM2IP, "-src-mac", lab.VMMAC(1), "-dst-mac", lab.VMMAC(2)); err != nil {
		return res, err
	}
	cpub, err := ReadCPU()
	if err != nil {
		return res, err
	}
	outb, err := readLink(ctx, p.Host, "vnet2")
	if err != nil {
		return res, err
	}
	if fr.Sent == 0 || fr.Seconds <= 0 {
		return res, fmt.Errorf("tap flood %s on path %s: nothing written", kind, p.ID)
	}
	forwarded := float64(outb.tx-outa.tx) + float64(outb.txDropped-outa.txDropped)
	took := forwarded
	if kind == probe.FloodSYN {
		took = float64(fr.Sent)
		if policy {
			dropsb, _, err := lab.PolicyDrops(ctx, p)
			if err != nil {
				return res, err
			}
			took = float64(dropsb - dropsa)
		}
	}
	if took <= 0 {
		return res, fmt.Errorf("tap flood %s on path %s: wrote %d, none forwarded", kind, p.ID, fr.Sent)
	}
	res.Mpps = took / fr.Seconds / 1e6
	res.Delivered = float64(fr.Read) / fr.Seconds / 1e6
	res.CPUSecPerMpkt = float64(cpub.Sub(cpua).Busy) / userHZ / (took / 1e6)
	return res, nil
}
