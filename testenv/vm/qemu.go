package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// BootOptions configures one QEMU run.
type BootOptions struct {
	// QEMU is the emulator binary; "" means qemu-system-x86_64.
	QEMU string
	// Accel is QEMU's -accel; "" means DefaultAccel. Where KVM runs these
	// kernels, "kvm" is much faster.
	Accel string
	// Kernel and Initrd are the files to boot.
	Kernel, Initrd string
	// Append is added to the kernel command line.
	Append string
	// MemoryMB is the guest's RAM; the initramfs (test binaries included)
	// lives in it. 0 means 2048.
	MemoryMB int
	// CPUs is the number of virtual CPUs; 0 means 2.
	CPUs int
	// Timeout bounds the whole run (boot, tests, power-off); QEMU is
	// killed when it is reached. 0 means no limit other than ctx.
	Timeout time.Duration
}

// ErrTimeout is returned (wrapped) by Boot when the time limit killed QEMU.
var ErrTimeout = errors.New("time limit reached, QEMU killed")

// DefaultAccel is multi-threaded TCG: pure emulation, one host thread per
// virtual CPU. The KVM device of a nested host may not run Debian's kernels.
const DefaultAccel = "tcg,thread=multi"

// BaseCmdline is the kernel command line: serial console, no reboot loop
// on panic (-no-reboot makes QEMU exit instead), quiet boot.
const BaseCmdline = "console=ttyS0 panic=-1 quiet"

// Args returns QEMU's command line for o. The VM has no disk, display or
// network card, and its serial console is QEMU's stdout.
func (o BootOptions) Args() []string {
	mem, cpus := o.MemoryMB, o.CPUs
	if mem == 0 {
		mem = 2048
	}
	if cpus == 0 {
		cpus = 2
	}
	accel := o.Accel
	if accel == "" {
		accel = DefaultAccel
	}
	cmdline := BaseCmdline
	if o.Append != "" {
		cmdline += " " + o.Append
	}
	return []string{
		"-accel", accel,
		"-cpu", "max",
		"-smp", strconv.Itoa(cpus),
		"-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-serial", "stdio",
		"-no-reboot",
		"-kernel", o.Kernel,
		"-initrd", o.Initrd,
		"-append", cmdline,
	}
}

// Boot runs the VM until it powers off (or dies), calling onLine with each
// line of its serial console, without the line ending, as it arrives.
// It returns an error if QEMU could not run or exited with a failure, or
// one wrapping ErrTimeout when opt.Timeout (or ctx) ended the run first.
// A guest that powers off on its own is a nil error: whether its tests
// passed is for the caller to judge from the lines.
func Boot(ctx context.Context, opt BootOptions, onLine func(string)) error {
	qemu := opt.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	if opt.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opt.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, qemu, opt.Args()...)
	cmd.Stdin = nil // /dev/null: QEMU must not put our terminal in raw mode
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second // bounded even if a pipe stays open
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", qemu, err)
	}
	// The reader ends when QEMU exits or is killed (its end of the pipe
	// closes), so this loop is bounded by the timeout above.
	readLines(stdout, onLine)
	err = cmd.Wait()
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) && opt.Timeout > 0 {
			return fmt.Errorf("after %s: %w", opt.Timeout, ErrTimeout)
		}
		return fmt.Errorf("QEMU stopped: %w", ctxErr)
	}
	if err != nil {
		return fmt.Errorf("%s: %v: %s", qemu, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// readLines calls onLine for every line of r, with "\r\n" or "\n" removed;
// a line longer than 64 KiB is delivered in pieces.
func readLines(r io.Reader, onLine func(string)) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			onLine(strings.TrimRight(string(b), "\r\n"))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
