package exec

import (
	"fmt"
	"os"

	"github.com/agentexec/agentexec/sandbox"
	"golang.org/x/sys/unix"
)

// The PTY rule (docs/terminals.md). A command gets a pseudo-terminal of
// its own when both of these hold:
//
//   - agentexec's stdin and stdout are both terminals (a human, or an
//     agent that gave agentexec a terminal, is on the other end);
//   - agentexec is the terminal's foreground job itself: its process group
//     is the terminal's foreground group and agentexec leads it. A job
//     control shell or an agent started it as a job of its own. When
//     agentexec runs inside someone else's job (a recipe of make, a line
//     of a script) the job's leader owns the terminal: raw mode would take
//     Ctrl-C away from it, and make -j would have several agentexecs
//     switching one terminal's mode at once. A background job
//     (agentexec ... &) is not the foreground group either.
//
// Otherwise the command's stdio are the caller's files as they are, and it
// runs in a new session without a controlling terminal: it can still read
// and write a terminal it is given, but job-control stops (SIGTTIN,
// SIGTTOU) cannot reach it and it cannot open /dev/tty.

// terminal is agentexec's own terminal while a command has a PTY.
type terminal struct {
	in    *os.File
	saved *unix.Termios
}

// acquireTerminal applies the PTY rule; nil means no PTY.
func acquireTerminal(stdin, stdout *os.File) *terminal {
	if stdin == nil || stdout == nil || !isTerminal(stdin) || !isTerminal(stdout) {
		return nil
	}
	fg, err := unix.IoctlGetInt(int(stdin.Fd()), unix.TIOCGPGRP)
	if err != nil || fg != unix.Getpgrp() || fg != unix.Getpid() {
		return nil
	}
	return &terminal{in: stdin}
}

// inBackground reports whether f is a terminal whose foreground process
// group is not agentexec's: agentexec is a background job there. Its
// command then reads /dev/null instead, as a shell without job control
// gives an asynchronous command (POSIX), so that it never takes keys
// meant for the foreground job (a password typed at the shell prompt).
// Job control cannot protect it: the command has no controlling terminal.
// A terminal that is not agentexec's controlling terminal (a nested
// agentexec under a pass-through command) has no foreground job to
// protect, and is passed on.
func inBackground(f *os.File) bool {
	if f == nil || !isTerminal(f) {
		return false
	}
	fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && fg != unix.Getpgrp()
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// IsTerminal reports whether f is a terminal. The front door uses it to
// tell an interactive session from a script on stdin.
func IsTerminal(f *os.File) bool { return f != nil && isTerminal(f) }

// makeRaw puts the terminal in raw mode (cfmakeraw): every key, Ctrl-C
// included, goes to the command's PTY, whose own line discipline turns it
// into a signal for the command's foreground group.
func (t *terminal) makeRaw() error {
	fd := int(t.in.Fd())
	st, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("reading terminal mode: %w", err)
	}
	saved := *st
	raw := *st
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return fmt.Errorf("setting raw mode: %w", err)
	}
	t.saved = &saved
	return nil
}

// size is the terminal's current window size.
func (t *terminal) size() sandbox.WinSize {
	ws, err := unix.IoctlGetWinsize(int(t.in.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return sandbox.WinSize{}
	}
	return sandbox.WinSize{Rows: ws.Row, Cols: ws.Col}
}

// release restores the terminal mode, after the output already written
// has drained.
func (t *terminal) release() {
	if t.saved != nil {
		_ = unix.IoctlSetTermios(int(t.in.Fd()), unix.TCSETSW, t.saved)
	}
}
