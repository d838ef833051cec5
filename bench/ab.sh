#!/usr/bin/env bash
# bench/ab.sh: compare the datapath micro-benchmarks (go test -bench ./bpf)
# of a revision with the working tree, on a noisy machine.
#
#   bench/ab.sh [-r ROUNDS] [-n RUNS] [REV [BENCH-REGEX...]]
#
# REV (default HEAD) is built in a temporary git worktree, the working tree
# as it is (after `go generate ./bpf`). The two test binaries then run the
# benchmarks alternately, ROUNDS times each (default 6), RUNS packets a
# benchmark (default 1000000x), so both see the same phases of the
# hypervisor's noise. For every benchmark it prints each round's
# ns-over-empty and the fastest: compare the fastest, and distrust a
# difference smaller than the spread of the rounds. Each BENCH-REGEX is
# one -test.bench pattern (its levels split at '/', so alternatives of
# different benchmarks need patterns of their own); the default: a cache
# hit, an established connection (with and without the cache) and a new
# one. Needs root (the benchmarks attach the datapath in a namespace).
set -euo pipefail

rounds=6 runs=1000000x
while getopts "r:n:h" o; do
	case $o in
	r) rounds=$OPTARG ;;
	n) runs=$OPTARG ;;
	*) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
rev=${1:-HEAD}
shift $(($# > 0 ? 1 : 0))
benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
	benches=('Classifier$/flows=10$/masks=8$/hit-first$/^cache$' 'Conntrack$/^(established|new-uncommitted)$')
fi

top=$(git rev-parse --show-toplevel)
cd "$top"
export PATH=$PATH:/usr/local/go/bin
tmp=$(mktemp -d /tmp/ebpfovs-ab.XXXXXX)
cleanup() {
	git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

base=$(git rev-parse --short "$rev")
echo "ab: building $base (A) and the working tree (B)" >&2
git worktree add --detach --quiet "$tmp/base" "$rev"
(cd "$tmp/base" && go test -c -o "$tmp/A.test" ./bpf)
go generate ./bpf
go test -c -o "$tmp/B.test" ./bpf

cd bpf
for ((i = 1; i <= rounds; i++)); do
	echo "ab: round $i of $rounds" >&2
	for t in A B; do
		for bench in "${benches[@]}"; do
			"$tmp/$t.test" -test.run '^$' -test.bench "$bench" -test.benchtime "$runs" |
				awk -v t="$t" '/^Benchmark/ { for (f = 2; f < NF; f++) if ($(f+1) == "ns-over-empty") print t, $1, $f }'
		done
	done
done | awk -v base="$base" '
	{ k = $2; sub(/-[0-9]+$/, "", k); sub(/^Benchmark/, "", k)
	  v[$1, k] = v[$1, k] " " $3
	  if (!(($1, k) in lo) || $3 + 0 < lo[$1, k]) lo[$1, k] = $3 + 0
	  if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
	END {
	  printf "ns over the empty program, each round; A = %s, B = working tree\n", base
	  for (i = 0; i < n; i++) {
	    k = order[i]
	    printf "%s\n  A:%s  fastest %g\n  B:%s  fastest %g  (B-A %+g)\n", k, v["A", k], lo["A", k], v["B", k], lo["B", k], lo["B", k] - lo["A", k]
	  }
	}'
