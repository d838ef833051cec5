#!/usr/bin/env bash
# Installs the Debian packages ebpfovs needs to build, test and run its demo,
# if they are missing. Idempotent; quiet when everything is there.
set -euo pipefail

pkgs=(
  clang-19 llvm-19        # compile the datapath (bpf2go calls clang-19, llvm-strip-19)
  libbpf-dev linux-libc-dev  # bpf_helpers.h and the kernel's uapi headers
  iproute2 util-linux     # ip, tc, nsenter
  netcat-openbsd iputils-ping ethtool  # the lab's traffic
  nftables conntrack      # the kernel side of the conntrack differential test; the Neutron router's SNAT
  dnsmasq-base            # the Neutron DHCP servers (tests, demo-neutron)
  busybox-static          # udhcpc: the Neutron VMs' DHCP client
  openvswitch-switch      # the reference: tests compare the flow printer with real ovs-ofctl,
                          # and dump-conntrack, ct-stats-show, ct-get-limits, trace with ovs-appctl
)

source "$(dirname "$0")/apt-lib.sh"
install_missing install-deps "${pkgs[@]}"

if ! command -v go >/dev/null && [[ ! -x /usr/local/go/bin/go ]]; then
  echo "install-deps: Go is not installed (expected at /usr/local/go); see https://go.dev/doc/install" >&2
  exit 1
fi
