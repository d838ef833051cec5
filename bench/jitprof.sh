#!/usr/bin/env bash
# bench/jitprof.sh [-s SECONDS] [-n RUNS] [BENCH-REGEX]
#
# Where the datapath's nanoseconds go, per JIT instruction: runs one
# datapath micro-benchmark (go test -bench ./bpf; default: an established
# TCP packet) and, while it runs, bench/cmd/jitprof samples tc_ingress with
# perf and prints its functions' shares and its hottest instructions. The
# benchmark runs to its end (RUNS packets, default 50000000x) so it
# removes what it created; SECONDS (default 5) of it are sampled, from 2 s
# after the datapath is loaded, so keep RUNS × ns/packet above that. The
# regex's levels split at '/', as with go test (the default's sub-levels,
# such as established/nocache, run after the sampling). Needs root; perf
# and objdump are installed if missing.
set -euo pipefail

secs=5 runs=50000000x
while getopts "s:n:h" o; do
	case $o in
	s) secs=$OPTARG ;;
	n) runs=$OPTARG ;;
	*) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
bench=${1:-'Conntrack$/^established$'}

for tool in perf:linux-perf objdump:binutils; do
	if ! command -v "${tool%%:*}" >/dev/null; then
		echo "jitprof: installing ${tool#*:}" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${tool#*:}" >/dev/null
	fi
done

top=$(git rev-parse --show-toplevel)
cd "$top"
export PATH=$PATH:/usr/local/go/bin
tmp=$(mktemp -d /tmp/ebpfovs-jitprof.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/jitprof" ./bench/cmd/jitprof
go test -c -o "$tmp/bpf.test" ./bpf
start=$(cut -d' ' -f1 /proc/uptime)
(cd bpf && exec "$tmp/bpf.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$runs" > "$tmp/bench.out" 2>&1) &
pid=$!
"$tmp/jitprof" -after "$start" -seconds "$secs" || true
echo "jitprof: waiting for the benchmark to finish and clean up" >&2
wait "$pid" || { cat "$tmp/bench.out"; exit 1; }
grep '^Benchmark' "$tmp/bench.out" || true
