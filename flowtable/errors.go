package flowtable

import "fmt"

// InputError is an error in what the caller asked for (here: a flow the
// datapath cannot hold as written), not in the system: the command line
// exits 2 for it, as for any usage error.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// inputErrorf formats an InputError.
func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}
