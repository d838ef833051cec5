#!/usr/bin/env bash
# Installs the Debian packages the VM kernel-matrix runner (make vmtest,
# testenv/vm) needs on the host, if they are missing. Idempotent; quiet when
# everything is there. The kernels themselves are not installed: vmtest
# downloads them into its cache with an apt configuration of its own
# (its own sources list and lists; docs/vmtest.md).
set -euo pipefail

pkgs=(
  qemu-system-x86         # boots the kernels (TCG: no KVM needed)
  busybox-static          # the guest's shell, mount, modprobe, poweroff, ...
  kmod                    # depmod: the kernel packages ship no modules.dep
  xz-utils                # 6.12's modules are .ko.xz
  iproute2 util-linux     # ip, tc, nsenter: copied into the guest with their libraries
  netcat-openbsd iputils-ping ethtool coreutils nftables
)

source "$(dirname "$0")/apt-lib.sh"
install_missing install-vm-deps "${pkgs[@]}"
