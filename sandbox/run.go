package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/agentexec/agentexec/internal/osthread"
	"github.com/agentexec/agentexec/internal/ttyio"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	// Device rules for the fs cgroup manager.
	_ "github.com/opencontainers/cgroups/devices"
)

// Paths inside every container.
const (
	// initPath is where agentexec's own binary is bind-mounted read-only to
	// serve as the container's PID 1 (see reaper.go).
	initPath = "/run/agentexec/init"
)

// KillGrace is how long a command has to exit after SIGTERM when its
// context is cancelled or its timeout expires, before everything in the
// container is killed.
const KillGrace = 2 * time.Second

// outputDrain bounds how long Run keeps copying output after the container
// is gone (the pipes close when the last process in it dies, so this only
// matters for a reader or writer that blocks).
const outputDrain = 2 * time.Second

// Run runs s.Argv in a fresh container and tears the container down before
// it returns, whatever happens: normal exit, ctx cancellation or s.Timeout
// (SIGTERM to the command's process group, KillGrace, then SIGKILL to every
// process in the container), or a panic while Run is on the stack. With
// s.DeferTeardown, a command that ran to its end leaves the tear-down to
// Result.Teardown.
//
// A *SetupError means nothing ran; errors.Is(err, ErrUnsupported) means the
// host cannot provide a required isolation. Once the command has started
// its outcome is in Result and err is nil.
func Run(ctx context.Context, s Spec) (Result, error) {
	cgroupHandleOnce.Do(openCgroupHandle)
	type outcome struct {
		res      Result
		err      error
		panicked any
	}
	finished := make(chan outcome, 1)
	early := make(chan Result, 1)
	release := make(chan struct{})
	handoff := func(res Result) {
		early <- res
		<-release
	}
	// The container's init gets ParentDeathSignal when the thread that
	// forked it exits, not the process (go.dev/issue/27505), so the
	// forking thread must be one no other goroutine can run on or end;
	// and for a root caller the thread has the container's view mounted
	// in a mount namespace of its own (rootfs.go).
	go osthread.Run(func() {
		var o outcome
		defer func() {
			o.panicked = recover()
			finished <- o
		}()
		o.res, o.err = run(ctx, s, handoff)
	})
	select {
	case res := <-early:
		res.Teardown = func() error {
			close(release)
			o := <-finished
			if o.panicked != nil {
				panic(o.panicked)
			}
			return o.err
		}
		return res, nil
	case o := <-finished:
		if o.panicked != nil {
			panic(o.panicked)
		}
		return o.res, o.err
	}
}

var cgroupHandleOnce sync.Once

// openCgroupHandle has the cgroup library open the descriptor of
// /sys/fs/cgroup it keeps for the life of the process, here, in the host's
// mount namespace. Opened first from one of Run's threads, it would belong
// to that thread's private namespace (rootfs.go), and once the thread ended
// the library would take it for a remounted cgroupfs and fail every later
// lookup of a missing file, which it otherwise tolerates.
func openCgroupHandle() {
	if f, err := cgroups.OpenFile(cgroupFS, "cgroup.procs", os.O_RDONLY); err == nil {
		f.Close()
	}
}

func run(ctx context.Context, s Spec, handoff func(Result)) (res Result, err error) {
	t0 := time.Now()
	ph := phaseClock{last: t0}
	defer func() { res.Phases = ph.list; res.Duration = time.Since(t0) }()

	Prewarm()
	quietLibcontainer()
	ident := currentIdentity()
	spec, err := validate(&s, ident)
	if err != nil {
		return res, &SetupError{Phase: "validate", Err: err}
	}
	ph.mark("validate")

	dirs, err := stateDirs(ident)
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: err}
	}
	defer dirs.release()
	// What killed runs left is swept while this one is set up; ids are
	// unique, and a live owner's container is never touched.
	swept := make(chan struct{})
	go func() { defer close(swept); sweepOnce(dirs) }()
	defer func() { <-swept }()
	// The id, the container's cgroups (made ahead by makeCgroups) and two
	// namespaces come from Prewarm (ahead.go), which Run called first
	// thing if its caller had not.
	ahead := takeAhead(ident)
	defer ahead.close()
	id := ahead.id
	rootfs, err := makeRootfs(dirs.rootfs, id, ident)
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: err}
	}
	defer removeRootfs(rootfs, ident)

	lim := effectiveLimits(spec.Limits)
	cgPath, err := cgroupPath(ident, id, spec.Limits)
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: err}
	}
	if ahead.cgPath != "" {
		cgPath = ahead.cgPath // a pool slot (cgpool.go)
	}
	cg := cgroupConfig(id, cgPath, ident.rootless, lim)
	self, err := os.Executable()
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: fmt.Errorf("locating own binary: %w", err)}
	}
	var caches []string
	if spec.CacheDir != "" {
		if err := prepareCache(spec.CacheDir); err != nil {
			return res, &SetupError{Phase: "prepare", Err: err}
		}
		caches = append(caches, spec.CacheDir)
	}
	var idmapNS string
	if !ident.rootless {
		if ahead.idmapErr != nil {
			return res, &SetupError{Phase: "prepare", Err: ahead.idmapErr}
		}
		idmapNS = fdPath(ahead.idmap)
	}
	v, err := planView(viewInput{spec: spec, id: ident, initPath: self, cacheDirs: caches, tmpSize: lim.MemoryBytes, idmapNS: idmapNS})
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: err}
	}
	if ident.rootless {
		for name, target := range v.symlinks {
			if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
				return res, &SetupError{Phase: "prepare", Err: err}
			}
		}
	} else {
		if err := privateMountNS(); err != nil {
			return res, &SetupError{Phase: "prepare", Err: err}
		}
		if v.mounts, err = buildRoot(rootfs, v, int(ident.uidMap[0].HostID), ahead.idmap); err != nil {
			return res, &SetupError{Phase: "prepare", Err: err}
		}
	}
	if spec.NetNS == "" && ahead.netns.f != nil {
		// Loopback only, like the one the init would make.
		spec.NetNS = fdPath(ahead.netns.f)
	}
	filter, err := seccompFilter()
	if err != nil {
		return res, &SetupError{Phase: "prepare", Err: fmt.Errorf("seccomp filter: %w", err)}
	}
	cfg := buildConfig(id, rootfs, spec, ident, v, lim, cg)
	ph.mark("prepare")

	c, err := libcontainer.Create(dirs.state, id, cfg)
	if err != nil {
		// The groups made ahead are libcontainer's own paths, which its
		// Destroy removes once it has taken them over; here it has not.
		for _, p := range ahead.cgroups {
			_ = unix.Rmdir(p)
		}
		return res, &SetupError{Phase: "create", Err: err}
	}
	var r *running
	defer func() {
		// Destroy removes the state dir and cgroups, but refuses while the
		// init lives: a run that did not reap it kills it first. (When it
		// was reaped, its pid namespace, and every process in it, is gone;
		// the signal would only cost libcontainer a status check.)
		reaped := r != nil && r.state != nil
		if !reaped {
			_ = c.Signal(unix.SIGKILL)
		}
		var derr error
		if reaped && ahead.cgPath != "" {
			// A pool slot's groups stay for the next container: of what
			// Destroy does for a stopped container with its own pid
			// namespace, only the state remains to remove.
			derr = os.RemoveAll(filepath.Join(dirs.state, id))
		} else {
			// Its groups too, a pool slot's included (made again when
			// next leased): an init not reaped may still be in them.
			derr = c.Destroy()
		}
		if derr != nil && err == nil && res.ExitCode == 0 {
			err = &SetupError{Phase: "destroy", Err: derr}
		}
		ph.mark("destroy")
		res.Removed = removePlanted(v.missingFiles)
	}()
	ph.mark("create")

	if err := ctx.Err(); err != nil {
		// Cancelled before anything ran: nothing to tear down but the
		// container's state.
		return res, &SetupError{Phase: "start", Err: err}
	}
	r, err = start(ctx, c, spec, ident)
	if err != nil {
		return res, &SetupError{Phase: "start", Err: err}
	}
	defer r.closeAll()
	ph.mark("start")

	if spec.Gate != nil {
		// The init waits for its config, so nothing of the command has
		// run yet.
		var gerr error
		select {
		case gerr = <-spec.Gate:
		case <-ctx.Done():
			gerr = ctx.Err()
		}
		ph.mark("gate")
		if gerr != nil {
			_ = c.Signal(unix.SIGKILL)
			_, _ = r.proc.Wait()
			return res, &SetupError{Phase: "gate", Err: gerr}
		}
	}
	go func() {
		_, _ = r.cfgW.Write(initConfig{Seccomp: filter, Argv: spec.Argv, TTY: spec.TTY, Files: spec.Files}.encode())
		r.cfgW.Close()
	}()

	r.wait(ctx, spec)
	ph.mark("wait")
	r.fill(&res)
	if spec.DeferTeardown {
		// The caller gets the result now and the deferred tear-down below
		// runs when it calls Result.Teardown.
		out := res
		out.Phases = append([]Phase(nil), ph.list...)
		out.Duration = time.Since(t0)
		handoff(out)
	}
	return res, nil
}

type phaseClock struct {
	last time.Time
	list []Phase
}

func (p *phaseClock) mark(name string) {
	now := time.Now()
	p.list = append(p.list, Phase{Name: name, Duration: now.Sub(p.last)})
	p.last = now
}

// running is a started container process and the plumbing around it.
type running struct {
	c       *libcontainer.Container
	proc    *libcontainer.Process
	status  *os.File // read end of the init's status pipe
	cfgW    *os.File // write end of the init's config pipe
	master  *os.File // pty master, when TTY
	copies  sync.WaitGroup
	closers []io.Closer
	// childEnds are our copies of the pipe ends the init inherits; they
	// are closed once it started, so the copies see EOF when it is gone.
	childEnds []*os.File

	state    *os.ProcessState
	waitErr  error
	timedOut bool
	report   initReport
}

// stopper makes a stop function an io.Closer.
type stopper func()

func (s stopper) Close() error { s(); return nil }

func (r *running) closeAll() {
	for _, c := range r.closers {
		c.Close()
	}
}

// start wires stdio, the status and config pipes, and starts the init.
func start(ctx context.Context, c *libcontainer.Container, s *Spec, ident identity) (_ *running, err error) {
	r := &running{c: c}
	defer func() {
		if err != nil {
			r.closeAll()
		}
	}()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cfgR, cfgW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return nil, err
	}
	r.status = statusR
	r.closers = append(r.closers, statusR, statusW, cfgR, cfgW)

	p := &libcontainer.Process{
		Args:       []string{initPath},
		Env:        s.Env,
		Cwd:        s.Cwd,
		UID:        ident.inUID,
		GID:        ident.inGID,
		ExtraFiles: []*os.File{statusW, cfgR}, // fds 3 and 4 in the init
		Init:       true,
		// Warnings and errors only. Unset, nsexec logs at debug level,
		// about 25 lines per start, each a write the parent wakes to read
		// and decode while the container is being set up.
		LogLevel: strconv.Itoa(int(logrus.WarnLevel)),
	}
	if ident.rootless {
		// Gotcha: fs.Manager.AddPid stops at the first EACCES from its
		// randomly ordered map; the per-controller branch tries them all.
		p.SubCgroupPaths = nil
	}
	var consoleParent *os.File
	if s.TTY {
		parent, child, err := utils.NewSockPair("console")
		if err != nil {
			return nil, err
		}
		r.closers = append(r.closers, parent, child)
		p.ConsoleSocket = child
		p.ConsoleWidth, p.ConsoleHeight = s.WinSize.Cols, s.WinSize.Rows
		consoleParent = parent
	} else {
		if err := r.stdio(s, p); err != nil {
			return nil, err
		}
	}
	if err := c.Run(p); err != nil {
		return nil, err
	}
	r.proc = p
	statusW.Close()
	cfgR.Close()
	for _, f := range r.childEnds {
		f.Close()
	}

	r.cfgW = cfgW
	if consoleParent != nil {
		m, err := recvFile(consoleParent)
		if err != nil {
			_ = c.Signal(unix.SIGKILL)
			_, _ = p.Wait()
			return nil, fmt.Errorf("receiving the console: %w", err)
		}
		r.master = m
		r.closers = append(r.closers, m)
		if s.WinSize.Rows > 0 {
			_ = unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: s.WinSize.Rows, Col: s.WinSize.Cols})
		}
		if s.Stdin != nil {
			// A reader left blocked on the caller's terminal would steal the
			// keys typed after the command ends; this one stops with it.
			r.closers = append(r.closers, stopper(ttyio.CopyInput(m, s.Stdin)))
		}
		out := s.Stdout
		if out == nil {
			out = io.Discard
		}
		r.copies.Add(1)
		go func() { defer r.copies.Done(); _, _ = io.Copy(out, m) }()
	}
	return r, nil
}

// stdio hands *os.File streams to the init directly and copies everything
// else through pipes Run owns, so that no copy can keep Wait from
// returning.
func (r *running) stdio(s *Spec, p *libcontainer.Process) error {
	switch in := s.Stdin.(type) {
	case nil:
	case *os.File:
		p.Stdin = in
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		r.closers = append(r.closers, pr, pw)
		r.childEnds = append(r.childEnds, pr)
		p.Stdin = pr
		go func() { _, _ = io.Copy(pw, in); pw.Close() }()
	}
	out := func(w io.Writer, set func(*os.File)) error {
		switch w := w.(type) {
		case nil:
		case *os.File:
			set(w)
		default:
			pr, pw, err := os.Pipe()
			if err != nil {
				return err
			}
			r.closers = append(r.closers, pr, pw)
			r.childEnds = append(r.childEnds, pw)
			set(pw)
			r.copies.Add(1)
			go func() { defer r.copies.Done(); _, _ = io.Copy(w, pr) }()
		}
		return nil
	}
	if err := out(s.Stdout, func(f *os.File) { p.Stdout = f }); err != nil {
		return err
	}
	if s.Stderr != nil && interfaceEqual(s.Stderr, s.Stdout) {
		// One writer for both (like CombinedOutput): one pipe, so that
		// it is never written from two goroutines at once, as os/exec
		// promises too.
		p.Stderr = p.Stdout
		return nil
	}
	return out(s.Stderr, func(f *os.File) { p.Stderr = f })
}

// interfaceEqual compares two writers without panicking on uncomparable
// dynamic types.
func interfaceEqual(a, b any) (eq bool) {
	defer func() {
		if recover() != nil {
			eq = false
		}
	}()
	return a == b
}

// wait waits for the init to exit, forwarding signals and window sizes and
// enforcing ctx and the timeout.
func (r *running) wait(ctx context.Context, s *Spec) {
	done := make(chan struct{})
	go func() {
		r.state, r.waitErr = r.proc.Wait()
		close(done)
	}()
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var kill <-chan time.Time
	stop := func() {
		if kill != nil {
			return
		}
		_ = r.proc.Signal(unix.SIGTERM) // the init passes it to the command's group
		kill = time.After(KillGrace)
	}
	ctxDone := ctx.Done()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-ctxDone:
			ctxDone = nil
			stop()
		case <-timer.C:
			r.timedOut = true
			stop()
		case <-kill:
			_ = r.c.Signal(unix.SIGKILL)
			kill = nil
		case sig := <-s.Signals:
			_ = r.proc.Signal(sig)
		case ws := <-s.Resize:
			if r.master != nil {
				_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Rows, Col: ws.Cols})
			}
		}
	}
	// The init is gone; with it the pid namespace and every process that
	// could hold an output pipe. Read its report and drain the output.
	_ = r.status.SetReadDeadline(time.Now().Add(outputDrain))
	_ = json.NewDecoder(r.status).Decode(&r.report)
	drained := make(chan struct{})
	go func() { r.copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(outputDrain):
	}
}

// fill turns the init's report (or, without one, the init's own wait
// status) into the Result.
func (r *running) fill(res *Result) {
	res.TimedOut = r.timedOut
	if r.report.Valid {
		res.ExitCode = r.report.Exit
		res.Signal = r.report.Signal
		if res.Signal != 0 {
			res.ExitCode = 128 + res.Signal
		}
		res.MaxRSSBytes = r.report.MaxRSSKiB * 1024
		res.UserTime = time.Duration(r.report.UserMicros) * time.Microsecond
		res.SystemTime = time.Duration(r.report.SysMicros) * time.Microsecond
		return
	}
	// No report: the init itself was killed (SIGKILL after the grace
	// period, the OOM killer) before the command's status was known.
	if r.state == nil {
		res.ExitCode = 255
		return
	}
	if ws, ok := r.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = int(ws.Signal())
		res.ExitCode = 128 + res.Signal
		return
	}
	res.ExitCode = r.state.ExitCode()
}

var quietOnce sync.Once

// quietLibcontainer silences libcontainer's package-global logrus logger:
// its warnings would land on agentexec's stderr, which belongs to the
// command. Everything that matters comes back as an error from Run.
func quietLibcontainer() {
	quietOnce.Do(func() { logrus.SetOutput(io.Discard) })
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("ae-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
}

// removePlanted deletes persistence files that did not exist before the
// command ran and exist now: the command planted them.
func removePlanted(missing []string) []string {
	var removed []string
	for _, p := range missing {
		if _, err := os.Lstat(p); err == nil {
			if os.RemoveAll(p) == nil {
				removed = append(removed, p)
			}
		}
	}
	return removed
}

// recvFile receives the pty master libcontainer sends over the console
// socket (one SCM_RIGHTS message).
func recvFile(sock *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("expected one control message: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("expected one descriptor: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
