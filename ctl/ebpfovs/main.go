// Command ebpfovs is an Open vSwitch-style switch whose datapath is eBPF.
// See `ebpfovs --help`.
package main

import (
	"os"

	"github.com/ebpfovs/ebpfovs/ctl"
)

func main() {
	os.Exit(ctl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
