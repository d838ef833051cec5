package ctl

// SetTestSteps makes every later command call f at each step of a change
// to the kernel's state (loader.Options.Steps): crash_test.go's child
// process kills or pauses itself there.
func SetTestSteps(f func(step string)) { testSteps = f }
