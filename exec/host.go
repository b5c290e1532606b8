package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	osexec "os/exec"
	"runtime"
	"syscall"
	"time"

	"github.com/agentexec/agentexec/internal/ttyio"
	"github.com/agentexec/agentexec/sandbox"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// Timeline of the host runner's teardown: when ctx is cancelled or the
// Spec's Timeout expires, the command's process group gets SIGTERM, and
// SIGKILL killGrace later if it is still there. After the command exits,
// output still buffered is copied for up to drainGrace; a background
// process that keeps the output open past that loses the rest, as it
// would when its sandbox is torn down.
const (
	killGrace  = 2 * time.Second
	drainGrace = time.Second
)

// runHost runs spec on the host, with no isolation at all. It honours the
// sandbox.Spec contract for everything a host process can: Argv resolved
// with Env's PATH, Env exactly, Cwd, stdio (*os.File handed over as is),
// TTY with WinSize and Resize, Signals forwarded to the command's process
// group, Timeout. The isolation fields (Writable, Hidden, Home, Mounts,
// Files, NetNS, Limits) cannot be honoured and are ignored: the caller
// says "not sandboxed".
//
// The command leads a new session (so it has its own process group to
// forward signals to, and a PTY when asked for can be its controlling
// terminal); it sees only fds 0-2; it is killed when the thread that
// started it dies (Pdeathsig), which ties its life to agentexec's.
func runHost(ctx context.Context, spec sandbox.Spec) (sandbox.Result, error) {
	if len(spec.Argv) == 0 {
		return sandbox.Result{}, fmt.Errorf("%w: no program", ErrInvalidRequest)
	}
	dir := spec.Cwd
	if dir == "" {
		dir = spec.Workspace
	}
	path, err := lookPath(spec.Argv[0], spec.Env, dir)
	if err != nil {
		return sandbox.Result{ExitCode: ExitCode(err)}, err
	}
	env := spec.Env
	if env == nil {
		env = []string{} // nil would mean "agentexec's own environment"
	}
	cmd := &osexec.Cmd{
		Path: path, Args: spec.Argv, Env: env, Dir: dir,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL},
		WaitDelay:   drainGrace,
	}

	var tty *ptyCopier
	if spec.TTY {
		if tty, err = openPTY(spec); err != nil {
			return sandbox.Result{ExitCode: ExitCannotRun}, &StepError{Step: "sandbox", Err: err}
		}
		defer tty.close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty.slave, tty.slave, tty.slave
		cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, 0
	} else {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	}

	// Descriptors agentexec inherited from its own parent are not the
	// command's to have (a sandbox must not receive a host directory fd);
	// marking them close-on-exec leaves it exactly 0, 1 and 2.
	_ = unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)

	// Pdeathsig fires when the thread that forked the child exits, not the
	// process; keep this goroutine on one thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sandbox.Result{ExitCode: ExitCode(startError(spec.Argv[0], err))}, startError(spec.Argv[0], err)
	}
	pid := cmd.Process.Pid
	if tty != nil {
		tty.start(spec)
	}

	done := make(chan struct{})
	stopped := make(chan struct{})
	var timedOut bool
	go func() {
		defer close(stopped)
		var timeout <-chan time.Time
		if spec.Timeout > 0 {
			t := time.NewTimer(spec.Timeout)
			defer t.Stop()
			timeout = t.C
		}
		var kill <-chan time.Time
		cancelled := ctx.Done()
		for {
			select {
			case <-done:
				return
			case s := <-spec.Signals:
				if n, ok := s.(syscall.Signal); ok {
					_ = unix.Kill(-pid, n)
				}
			case <-cancelled:
				cancelled = nil // once
				_ = unix.Kill(-pid, unix.SIGTERM)
				kill = time.After(killGrace)
			case <-timeout:
				timedOut, timeout = true, nil
				_ = unix.Kill(-pid, unix.SIGTERM)
				kill = time.After(killGrace)
			case <-kill:
				_ = unix.Kill(-pid, unix.SIGKILL)
				kill = nil
			}
		}
	}()

	waitErr := cmd.Wait()
	dur := time.Since(start)
	close(done)
	<-stopped
	if tty != nil {
		tty.drain()
	}

	res := sandbox.Result{Duration: dur, TimedOut: timedOut}
	st := cmd.ProcessState
	if st == nil {
		return res, &StepError{Step: "sandbox", Err: waitErr}
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal
	} else {
		res.ExitCode = st.ExitCode()
	}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		res.MaxRSSBytes = ru.Maxrss * 1024
		res.UserTime = time.Duration(ru.Utime.Nano())
		res.SystemTime = time.Duration(ru.Stime.Nano())
	}
	// A copy error (the caller closed its end of a pipe, or WaitDelay cut
	// off a background writer) does not change the command's status; the
	// command saw the broken pipe itself.
	return res, nil
}

// startError turns an exec failure into the package's errors.
func startError(name string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return &ProgramError{Program: name, Err: ErrNotFound}
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR):
		return &ProgramError{Program: name, Err: ErrNotExecutable}
	}
	return &StepError{Step: "sandbox", Err: fmt.Errorf("starting %s: %w", name, err)}
}

// ptyCopier is the command's PTY and the copying between it and the
// caller's stdio.
type ptyCopier struct {
	master, slave *os.File
	out           chan struct{}
	stopIn        func()
}

func openPTY(spec sandbox.Spec) (*ptyCopier, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("opening a pty: %w", err)
	}
	if spec.WinSize != (sandbox.WinSize{}) {
		if err := pty.Setsize(master, &pty.Winsize{Rows: spec.WinSize.Rows, Cols: spec.WinSize.Cols}); err != nil {
			master.Close()
			slave.Close()
			return nil, fmt.Errorf("setting the window size: %w", err)
		}
	}
	return &ptyCopier{master: master, slave: slave, out: make(chan struct{}), stopIn: func() {}}, nil
}

// start copies the caller's stdin to the master and the master to the
// caller's stdout, and applies window-size changes.
func (p *ptyCopier) start(spec sandbox.Spec) {
	// Only the child keeps the slave open now, so the master reads EIO
	// once every process of the command has let go of it.
	p.slave.Close()
	var w io.Writer = io.Discard
	if spec.Stdout != nil {
		w = spec.Stdout
	}
	go func() {
		defer close(p.out)
		_, _ = io.Copy(w, p.master)
	}()
	if spec.Stdin != nil {
		p.stopIn = ttyio.CopyInput(p.master, spec.Stdin)
	}
	if spec.Resize != nil {
		go func() {
			for {
				select {
				case <-p.out:
					return
				case ws := <-spec.Resize:
					_ = pty.Setsize(p.master, &pty.Winsize{Rows: ws.Rows, Cols: ws.Cols})
				}
			}
		}()
	}
}

// drain waits, for a bounded time, for the output still in the PTY.
func (p *ptyCopier) drain() {
	_ = p.master.SetReadDeadline(time.Now().Add(drainGrace))
	<-p.out
	p.stopIn()
}

func (p *ptyCopier) close() {
	p.stopIn()
	p.master.Close()
	p.slave.Close()
}
