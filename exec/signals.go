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
func captureSignals(term *terminal) *signals {
	s := &signals{forward: make(chan os.Signal, 16), done: make(chan struct{})}
	caught := []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGQUIT}
	if !signal.Ignored(unix.SIGHUP) {
		caught = append(caught, unix.SIGHUP)
	}
	// A broken stdout must be an error to the copier, not agentexec's
	// death; the copier then closes the pipe so the command gets SIGPIPE
	// itself. Catching (not ignoring) SIGPIPE keeps the command's default.
	pipeOnce.Do(func() { signal.Notify(make(chan os.Signal, 1), unix.SIGPIPE) })
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
