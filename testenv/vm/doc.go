// Package vm runs ebpfovs's privileged test suite inside virtual machines
// booted on other Linux kernels than the host's: Debian's 6.1 and 6.12
// kernel packages and the newest one Debian serves, under QEMU with TCG
// (no KVM needed).
//
// A run, for each kernel:
//
//  1. [FetchKernel] resolves the kernel spec ([ResolveKernel]) with an apt
//     of its own under the cache ([DefaultCacheDir]/apt: its sources,
//     lists and an empty dpkg status per Debian suite, refreshed when a
//     day old; the machine's apt is left alone, only its sources are read
//     for the Debian mirrors), downloads the package with `apt-get
//     download` (those mirrors are the only network access) and, when it
//     is only a dependency package (Debian's 7.x linux-image), the
//     linux-binary, linux-modules and linux-base packages it pins; unpacks
//     them with `dpkg-deb -x` into the cache and generates modules.dep with
//     `depmod -b`.
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
//     their reasons and the failed tests with their output, and the
//     verifier statistics the bpf tests print ([VerifierMarker] lines).
//
// The command testenv/vm/cmd/vmtest drives all of it (`make vmtest`);
// docs/vmtest.md explains how to use it and how to add a kernel.
package vm
