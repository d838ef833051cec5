// Package testenv builds real, disposable network topologies for ebpfovs
// tests: named network namespaces, an Open vSwitch conntrack-lab style
// "host + VMs" topology made of veth pairs or tap devices, helpers that run
// sockets and commands inside a VM's namespace, and gopacket based frame
// crafting (including malformed frames) for BPF_PROG_TEST_RUN and tap tests.
//
// # The lab
//
// The lab ([Lab]) is built in one place, [BuildLab], which needs no test: it
// returns the lab and a function that removes it. Tests call [NewLab], a
// wrapper that fails the test on error and removes the lab in a t.Cleanup;
// the benchmarks (bench/lab) call BuildLab for each path; the demo
// (scripts/demo.sh) gets its namespaces from the ebpfovs-lab command
// (testenv/cmd/lab: `up --tag T` builds a [LabOptions.Detached] lab and
// prints its names, `down --tag T` is [DeleteLab]). Its namespaces are named
// after a tag ([LabHostNS], [LabVMNS]); its addresses and MACs are [VMIP]
// and [VMMAC].
//
// # Isolation and cleanup
//
// Tests of many packages run in parallel on one kernel, so every namespace
// gets a unique name (see [UniqueName]; a lab's tag is one unless the caller
// gives its own) and everything a helper creates is removed by a t.Cleanup
// registered on the testing.TB passed in, also when the test fails.
// Interfaces are only ever created inside namespaces the test owns, never in
// the caller's (root) namespace, so plain names such as "vnet1" and "eth0"
// are safe.
//
// # Mount namespace
//
// `ip netns exec` gives its command a private mount namespace with a freshly
// mounted /sys, which hides bpffs at /sys/fs/bpf. Nothing in this package does
// that: the test process stays in its own mount namespace and enters a network
// namespace only on a locked OS thread ([NS.Do]); external commands are run
// with `nsenter --net=/run/netns/NAME` ([NS.Command]), which switches the
// network namespace only.
//
// # Kernel behaviour worth knowing
//
//   - /proc/sys/net/... is resolved against the network namespace of the
//     thread that opens the file, and an open descriptor keeps referring to
//     that namespace whichever thread later reads or writes it. [NS.Sysctl]
//     and [NS.SetSysctl] therefore open the file inside [NS.Do].
//   - /proc/net (a link to /proc/self/net) shows the namespace of the
//     thread-group leader (the main thread), not of the calling thread; use
//     /proc/thread-self/net inside [NS.Do].
//   - Sockets and tap file descriptors keep the namespace they were created
//     in after the creating thread switches back, and they keep that
//     namespace alive: an unclosed socket delays the namespace's destruction
//     even after its /run/netns name is gone.
//
// Privileged helpers skip the test unless the process can create namespaces
// (see [RequirePrivileged]).
package testenv
