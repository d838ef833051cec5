// Package vm runs ebpfovs's privileged test suite inside virtual machines
// booted on other Linux kernels than the host's: Debian's 6.1 and 6.12
// kernel packages, under QEMU with TCG (no KVM needed).
//
// A run, for each kernel:
//
//  1. [FetchKernel] downloads the kernel package with `apt-get download`
//     (Debian's mirror is the only network access), unpacks it with
//     `dpkg-deb -x` into a cache outside the repository ([DefaultCacheDir])
//     and generates its modules.dep with `depmod -b`.
//  2. [BuildTests] compiles each Go package's tests once for all kernels
//     (`go test -c`, CGO_ENABLED=0: static binaries).
//  3. [BuildInitramfs] writes a gzip'd cpio (newc) initramfs: busybox and
//     its applet links, the modules the tests need with their dependencies,
//     the host tools the tests call (ip, nsenter, ethtool, ping, ...) with
//     the shared libraries ldd lists, the test binaries, a copy of each
//     package directory to run them in, and an /init script ([InitScript]).
//  4. [Boot] starts qemu-system-x86_64 -accel tcg with the serial console
//     on a pipe, streams the guest's lines as they arrive, and kills QEMU
//     when the time limit is reached. /init mounts proc, sys, devtmpfs,
//     bpffs, tmpfs /run and /tmp, loads the modules, runs every test binary
//     with -test.v (each output line prefixed with "[PKG] ") under
//     EBPFOVS_REQUIRE_PRIVILEGED=1 and EBPFOVS_IN_VM=1, prints one
//     machine-readable line per package and powers off.
//  5. A [Parser] turns the stream into a [KernelResult]: per package the
//     exit status, the passed/failed/skipped counts, the skipped tests with
//     their reasons and the failed tests with their output.
//
// The command testenv/vm/cmd/vmtest drives all of it (`make vmtest`);
// docs/vmtest.md explains how to use it and how to add a kernel.
package vm
