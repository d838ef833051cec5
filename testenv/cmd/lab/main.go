// Command ebpfovs-lab builds and removes the conntrack lab of testenv (the
// tests' and benchmarks' lab) for scripts such as scripts/demo.sh:
//
//	ebpfovs-lab up --tag TAG [--vms N]
//	ebpfovs-lab down --tag TAG
//
// up builds a veth lab that outlives the command (testenv.LabOptions.Detached)
// and prints, as shell assignments for eval, its host namespace and each
// VM's namespace, address and port:
//
//	HOST=TAG-hv
//	VM1=TAG-vm1
//	VM1_IP=10.0.10.1
//	VM1_PORT=vnet1
//	...
//
// down deletes the namespaces of the lab tagged TAG (and with them its
// links); it is fine to run it when up failed or ran only partly. Both need
// root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/ebpfovs/ebpfovs/testenv"
)

const usage = `usage: ebpfovs-lab up --tag TAG [--vms N]    build the lab, print its names as shell assignments
       ebpfovs-lab down --tag TAG               delete the lab's namespaces
`

// tagRE keeps tags to characters that need no shell quoting and make one
// file name in /run/netns.
var tagRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "ebpfovs-lab: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "down") {
		fmt.Fprint(stderr, usage)
		return errors.New("want up or down")
	}
	cmd := args[0]
	fs := flag.NewFlagSet("ebpfovs-lab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	tag := fs.String("tag", "", "the lab's tag: its namespaces are TAG-hv, TAG-vm1, ...")
	vms := 2
	if cmd == "up" {
		fs.IntVar(&vms, "vms", 2, "the number of VMs")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", cmd, fs.Args())
	}
	if !tagRE.MatchString(*tag) {
		return fmt.Errorf("%s: --tag %q: want letters, digits, '.', '_' or '-'", cmd, *tag)
	}
	if cmd == "down" {
		return testenv.DeleteLab(*tag)
	}
	lab, _, err := testenv.BuildLab(testenv.LabOptions{VMs: vms, Tag: *tag, Detached: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "HOST=%s\n", lab.Host.Name)
	for _, vm := range lab.VMs {
		fmt.Fprintf(stdout, "VM%[1]d=%[2]s\nVM%[1]d_IP=%[3]s\nVM%[1]d_PORT=%[4]s\n", vm.N, vm.NS.Name, vm.IP, vm.Port)
	}
	return nil
}
