#!/usr/bin/env bash
# Installs the Debian packages the VM kernel-matrix runner (make vmtest,
# testenv/vm) needs on the host, if they are missing. Idempotent; quiet when
# everything is there. The kernels themselves are not installed: vmtest
# downloads them with `apt-get download` into its cache (docs/vmtest.md).
set -euo pipefail

pkgs=(
  qemu-system-x86         # boots the kernels (TCG: no KVM needed)
  busybox-static          # the guest's shell, mount, modprobe, poweroff, ...
  kmod                    # depmod: the kernel packages ship no modules.dep
  xz-utils                # 6.12's modules are .ko.xz
  iproute2 util-linux     # ip, tc, nsenter: copied into the guest with their libraries
  netcat-openbsd iputils-ping ethtool coreutils nftables
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-vm-deps: missing Debian packages: ${missing[*]}; run as root (sudo make vmtest) to install them" >&2
    exit 1
  fi
  echo "install-vm-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  }
fi
