package exec

import (
	"os"
	"os/signal"
	"sync"

	"github.com/agentexec/agentexec/sandbox"
	"golang.org/x/sys/unix"
)

// signals captures the signals agentexec passes on to the command while it
// runs, and the window-size changes of its terminal.
type signals struct {
	forward chan os.Signal
	resize  chan sandbox.WinSize
	winch   chan os.Signal
	done    chan struct{}
	// early is a terminating signal that arrived before the capture
	// (PrepareSignals); the run stops without starting the command.
	early os.Signal
}

var pipeOnce sync.Once

// caughtSignals are the signals forwarded to the command.
func caughtSignals() []os.Signal {
	caught := []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGQUIT}
	if !signal.Ignored(unix.SIGHUP) {
		caught = append(caught, unix.SIGHUP)
	}
	return caught
}

// catchPipe makes a broken stdout an error to the copier, not agentexec's
// death; the copier then closes the pipe so the command gets SIGPIPE
// itself. Catching (not ignoring) SIGPIPE keeps the command's default.
func catchPipe() {
	pipeOnce.Do(func() { signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE) })
}

// early holds the signals PrepareSignals enabled until the first
// captureSignals takes them over.
var early struct {
	prepare, take sync.Once
	ready         chan struct{}
	ch            chan os.Signal
}

// PrepareSignals enables, in the background, the signals a command's run
// catches, so that the run does not wait for it. The runtime enables each
// signal the first time it is caught with a round trip to a thread of its
// own, about 1 ms for the six caught here, which would otherwise be spent
// between the policy's decision and the container's start.
//
// From this call on those signals are caught. One of SIGINT, SIGTERM,
// SIGQUIT or SIGHUP that arrives before the command is started stops the
// run before anything is started (ErrInterrupted), as the signal's default
// action would have. Call it once, early, in a process that runs one
// command; not in an interactive session, which handles SIGINT itself.
func PrepareSignals() {
	early.prepare.Do(func() {
		early.ready = make(chan struct{})
		early.ch = make(chan os.Signal, 16)
		go func() {
			defer close(early.ready)
			catchPipe()
			signal.Notify(early.ch, append(caughtSignals(), unix.SIGWINCH)...)
		}()
	})
}

// takeEarly ends PrepareSignals' catching, once the caller has registered
// its own channels for the same signals (so they stay enabled), and
// returns the first terminating signal caught meanwhile. Only the first
// call can return one.
func takeEarly() (got os.Signal) {
	early.prepare.Do(func() {}) // a later PrepareSignals does nothing
	early.take.Do(func() {
		if early.ch == nil {
			return
		}
		<-early.ready
		signal.Stop(early.ch)
		for {
			select {
			case s := <-early.ch:
				if got == nil && s != unix.SIGWINCH {
					got = s
				}
			default:
				return
			}
		}
	})
	return got
}

// captureSignals starts capturing. SIGINT, SIGTERM and SIGQUIT are always
// captured and forwarded. Capturing them also means the command starts
// with their default action even when agentexec itself was started with
// them ignored (a background job of a non-interactive shell starts with
// SIGINT ignored; a caught signal is reset by execve, an ignored one is
// not), so forwarding them works. SIGHUP is captured only when agentexec's
// parent did not ignore it: under nohup the command keeps ignoring it too.
//
// Without a PTY, SIGWINCH is forwarded as it is; with one, it becomes a
// new window size for the PTY, and the kernel signals the command.
//
// A terminating signal caught since PrepareSignals, before this call, is
// returned in early.
func captureSignals(term *terminal) *signals {
	s := &signals{forward: make(chan os.Signal, 16), done: make(chan struct{})}
	caught := caughtSignals()
	catchPipe()
	defer func() { s.early = takeEarly() }()
	if term == nil {
		signal.Notify(s.forward, append(caught, unix.SIGWINCH)...)
		return s
	}
	signal.Notify(s.forward, caught...)
	s.resize = make(chan sandbox.WinSize, 1)
	s.winch = make(chan os.Signal, 1)
	signal.Notify(s.winch, unix.SIGWINCH)
	go func() {
		for {
			select {
			case <-s.done:
				return
			case <-s.winch:
				ws := term.size()
				select { // keep only the latest size
				case <-s.resize:
				default:
				}
				s.resize <- ws
			}
		}
	}()
	return s
}

// stop ends the capture. Signals that arrive later get agentexec's own
// default handling again.
func (s *signals) stop() {
	signal.Stop(s.forward)
	if s.winch != nil {
		signal.Stop(s.winch)
		close(s.done)
	}
}
