package loader

import "golang.org/x/sys/unix"

var errNoSpace = unix.E2BIG
