# ebpfovs: `make help` lists the targets.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# Tests of many packages run in parallel on one kernel; they use unique names.
TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help deps generate build test test-host test-unit demo demo-neutron vet fmt-check clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18

deps: ## install missing Debian packages (clang-19, libbpf-dev, iproute2, ...)
	@scripts/install-deps.sh

generate: deps ## regenerate the bpf2go output from bpf/*.c, bpf/*.h
	$(GO) generate ./bpf

build: deps ## build ./ebpfovs
	$(GO) build -o ebpfovs ./ctl/ebpfovs

test: test-host vmtest ## run every test: on this kernel, then in VMs on 6.1, 6.12 and the newest Debian kernel (as root the privileged ones are required, not skipped)

test-host: deps build ## run every test on this machine's kernel only
	@if [ "$$(id -u)" = 0 ]; then export EBPFOVS_REQUIRE_PRIVILEGED=1; fi; \
	$(GO) vet ./... && \
	test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed on:"; gofmt -l .; exit 1; }; \
	$(GO) test $(TEST_FLAGS) ./...

# The VM kernel matrix (docs/vmtest.md): `make vmtest KERNELS=6.1` runs one;
# newest is the newest kernel Debian serves, resolved at run time.
KERNELS ?= 6.1 6.12 newest
.PHONY: vmtest
# -parallel 2: the guest runs two test binaries at once on its 2 CPUs (bpf
# and ctl, which spend their time in the verifier): 8 min a kernel, not 14.
VMTEST_FLAGS ?= -quiet -parallel 2
vmtest: deps build ## run the privileged tests in VMs on Debian's 6.1, 6.12 and newest kernels (KERNELS=...); one summary line per kernel
	@scripts/install-vm-deps.sh
	$(GO) run ./testenv/vm/cmd/vmtest $(foreach k,$(KERNELS),-kernel $(k)) $(VMTEST_FLAGS)

test-unit: ## the tests that need no root (parser, printer, CLI usage)
	$(GO) test $(TEST_FLAGS) ./ofctl ./ctl

# The demo's namespaces come from ./ebpfovs-lab (testenv/cmd/lab), the
# tests' lab as a command.
demo: deps build ## run the Open vSwitch conntrack lab in network namespaces
	$(GO) build -o ebpfovs-lab ./testenv/cmd/lab
	@scripts/demo.sh ./ebpfovs ./ebpfovs-lab

# Two OpenStack compute nodes as Neutron's Open vSwitch agent builds them
# (testenv/neutron.go: br-int, br-tun, VXLAN, learn(), DHCP, SNAT).
demo-neutron: deps build ## run an OpenStack Neutron compute node pair on ebpfovs in network namespaces
	$(GO) build -o ebpfovs-neutron-demo ./testenv/cmd/neutron
	./ebpfovs-neutron-demo --ebpfovs ./ebpfovs

# Benchmarks (docs/performance.md); BENCH_FLAGS adds flags, e.g. -paths A,E.
.PHONY: bench bench-full bench-taps bench-ab bench-profile
bench: build ## quick benchmarks (a few minutes): ebpfovs vs veth, Linux bridge, nftables, OVS; report in bench/out/
	$(GO) run ./bench/cmd/bench -mode quick -ebpfovs ./ebpfovs -out bench/out $(BENCH_FLAGS)

bench-full: build ## longer benchmarks (~20 min: 9 rounds, 8 s iperf3 runs); report in bench/out/
	$(GO) run ./bench/cmd/bench -mode full -ebpfovs ./ebpfovs -out bench/out $(BENCH_FLAGS)

bench-taps: deps ## TC against XDP mode on tap ports: an established segment in lockstep, a VM's 64 KB TSO frames (ctl's BenchmarkTap*)
	$(GO) test -run '^$$' -bench 'Tap(XDP|Bulk)' -benchtime 1x -count 1 ./ctl

# REV: the revision to compare with (default HEAD); BENCH: a -bench regex.
bench-ab: deps ## datapath micro-benchmarks of REV and the working tree, alternated (bench/ab.sh)
	bench/ab.sh $(if $(REV),$(REV),HEAD) $(if $(BENCH),'$(BENCH)')

# BENCH: a -bench regex (default: an established TCP packet).
bench-profile: deps ## where a datapath micro-benchmark's ns go, per JIT instruction (bench/jitprof.sh; perf)
	bench/jitprof.sh $(if $(BENCH),'$(BENCH)')

# Every datapath program's processed instructions, peak states, verification
# time and JITed size on this kernel, against the budget (docs/verifier.md).
.PHONY: verifier-report
verifier-report: deps ## the verifier's work per datapath program on this kernel (budget: 250,000 processed insns)
	$(GO) run ./bench/cmd/verifier $(VERIFIER_FLAGS)

vet: ## go vet
	$(GO) vet ./...

clean: ## remove the built binaries
	rm -f ebpfovs ebpfovs-lab ebpfovs-neutron-demo
