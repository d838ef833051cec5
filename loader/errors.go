package loader

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ebpfovs/ebpfovs/flowtable"
)

var errNoSpace = unix.E2BIG

// InputError is an error in what the caller asked for (a name, a
// number, a flow's actions), not in the system: the command line exits 2
// for it, as for any usage error. Flows' errors come from flowtable.
type InputError = flowtable.InputError

// inputErrorf formats an InputError.
func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}
