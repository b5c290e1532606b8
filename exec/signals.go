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
	// ready is closed once the signals are caught.
	ready chan struct{}
}

var pipeOnce sync.Once

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
// The runtime enables each signal the first time it is caught with a round
// trip to a thread of its own, about 1.3 ms for the six caught here, so the
// capture is set up in the background while the container is built; the
// command waits for it (gate). Until it is in place, a signal has its
// default effect on agentexec, as before any capture.
func captureSignals(term *terminal) *signals {
	s := &signals{forward: make(chan os.Signal, 16), done: make(chan struct{}), ready: make(chan struct{})}
	caught := []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGQUIT}
	if !signal.Ignored(unix.SIGHUP) {
		caught = append(caught, unix.SIGHUP)
	}
	if term != nil {
		s.resize = make(chan sandbox.WinSize, 1)
		s.winch = make(chan os.Signal, 1)
	}
	go func() {
		defer close(s.ready)
		// A broken stdout must be an error to the copier, not agentexec's
		// death; the copier then closes the pipe so the command gets
		// SIGPIPE itself. Catching (not ignoring) SIGPIPE keeps the
		// command's default.
		pipeOnce.Do(func() { signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE) })
		if term == nil {
			signal.Notify(s.forward, append(caught, unix.SIGWINCH)...)
			return
		}
		signal.Notify(s.forward, caught...)
		signal.Notify(s.winch, unix.SIGWINCH)
	}()
	if term == nil {
		return s
	}
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

// gate returns a gate that opens once the signals are caught and, when
// next is set, next has yielded; it yields what next yielded.
func (s *signals) gate(next <-chan error) <-chan error {
	out := make(chan error, 1)
	go func() {
		var err error
		if next != nil {
			err = <-next
		}
		<-s.ready
		out <- err
	}()
	return out
}

// stop ends the capture. Signals that arrive later get agentexec's own
// default handling again.
func (s *signals) stop() {
	<-s.ready
	signal.Stop(s.forward)
	if s.winch != nil {
		signal.Stop(s.winch)
		close(s.done)
	}
}
