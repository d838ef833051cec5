package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ebpfovs/ebpfovs/bench/probe"
)

// probeUsage lists the probe tool's subcommands.
const probeUsage = `usage: bench probe serve -conn IP:PORT -echo IP:PORT
       bench probe connrate -addr IP:PORT [-duration D] [-workers N] [-max N]
       bench probe latency -addr IP:PORT [-duration D] [-max N]
       bench probe fill-udp -n N [-first I] -iface IFACE -src IP -dst IP -src-mac MAC -dst-mac MAC
       bench probe flood -kind udp|syn [-duration D] -iface IFACE -src IP -dst IP -src-mac MAC -dst-mac MAC
       bench probe tapflood -kind udp|syn [-duration D] -in TAP -out TAP -src IP -dst IP -src-mac MAC -dst-mac MAC
The clients print their result as JSON on standard output.`

// probeMain is the probe tool: bench starts it inside the VM namespaces
// with nsenter, as a server in VM2 and as a client in VM1.
func probeMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, probeUsage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("probe "+args[0], flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, probeUsage) }
	var (
		conn     = fs.String("conn", "", "serve: the connection-rate listener")
		echo     = fs.String("echo", "", "serve: the echo (latency) listener")
		addr     = fs.String("addr", "", "client: the server's listener")
		duration = fs.Duration("duration", time.Second, "client: how long to run")
		workers  = fs.Int("workers", 4, "connrate: concurrent connections")
		maxN     = fs.Int("max", 5_000_000, "client: at most this many connections or round trips")
		fillN    = fs.Int("n", 0, "fill-udp: datagrams to send, each its own connection")
		tapIn    = fs.String("in", "", "tapflood: the tap frames are written into")
		tapOut   = fs.String("out", "", "tapflood: the tap the switch sends them out of")
		kind     = fs.String("kind", probe.FloodUDP, "flood: udp (64-byte datagrams of one flow) or syn (SYNs, each a new connection)")
		fillFrom = fs.Int("first", 0, "fill-udp: the number of the first datagram (its ports)")
		iface    = fs.String("iface", "eth0", "fill-udp: the interface")
		srcIP    = fs.String("src", "", "fill-udp: source address")
		dstIP    = fs.String("dst", "", "fill-udp: destination address")
		srcMAC   = fs.String("src-mac", "", "fill-udp: source MAC")
		dstMAC   = fs.String("dst-mac", "", "fill-udp: destination MAC")
	)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *duration <= 0 || *duration > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "probe: -duration must be in (0, 10m]")
		return 2
	}
	var result any
	var err error
	switch args[0] {
	case "serve":
		var s *probe.Server
		if s, err = probe.Listen(*conn, *echo); err == nil {
			fmt.Println("ready")
			err = s.Serve(ctx)
		}
	case "connrate":
		result, err = probe.ConnRate(ctx, *addr, *duration, *workers, int64(*maxN))
	case "latency":
		result, err = probe.Latency(ctx, *addr, *duration, *maxN)
	case "fill-udp":
		smac, err1 := net.ParseMAC(*srcMAC)
		dmac, err2 := net.ParseMAC(*dstMAC)
		if err = errors.Join(err1, err2); err == nil {
			var sent int
			sent, err = probe.FillUDP(*iface, smac, dmac, net.ParseIP(*srcIP).To4(), net.ParseIP(*dstIP).To4(), *fillFrom, *fillN)
			result = map[string]int{"sent": sent}
		}
	case "flood":
		smac, err1 := net.ParseMAC(*srcMAC)
		dmac, err2 := net.ParseMAC(*dstMAC)
		if err = errors.Join(err1, err2); err == nil {
			result, err = probe.Flood(ctx, *iface, smac, dmac, net.ParseIP(*srcIP).To4(), net.ParseIP(*dstIP).To4(), *kind, *duration)
		}
	case "tapflood":
		smac, err1 := net.ParseMAC(*srcMAC)
		dmac, err2 := net.ParseMAC(*dstMAC)
		if err = errors.Join(err1, err2); err == nil {
			result, err = probe.TapFlood(ctx, *tapIn, *tapOut, smac, dmac, net.ParseIP(*srcIP).To4(), net.ParseIP(*dstIP).To4(), *kind, *duration)
		}
	default:
		fmt.Fprintln(os.Stderr, probeUsage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		return 1
	}
	if result != nil {
		if err := json.NewEncoder(os.Stdout).Encode(result); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return 1
		}
	}
	return 0
}
