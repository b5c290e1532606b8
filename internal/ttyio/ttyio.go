// Package ttyio copies a caller's terminal input to a command's
// pseudo-terminal in a way that can be stopped. It has its own home because
// both runners need it: the sandbox's and the host runner that a nested
// agentexec uses inside a sandbox.
package ttyio

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// CopyInput copies in to the PTY master until in ends or stop is called.
// A terminal read cannot be interrupted, and a reader left blocked would
// steal the next keystrokes from whoever reads the terminal after this
// command (the interactive session's next line), so for a file it waits
// with poll(2) on the file and a wake-up pipe and reads only when data is
// there. At the end of input it sends the PTY's end-of-file character.
func CopyInput(master *os.File, in io.Reader) (stop func()) {
	f, isFile := in.(*os.File)
	wr, ww, err := os.Pipe()
	if !isFile || err != nil {
		go func() {
			_, _ = io.Copy(master, in)
		}()
		return func() {}
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer wr.Close()
		buf := make([]byte, 32*1024)
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLIN}, {Fd: int32(wr.Fd()), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			if fds[1].Revents != 0 {
				return
			}
			if fds[0].Revents == 0 {
				continue
			}
			n, err := unix.Read(int(f.Fd()), buf)
			if n > 0 {
				if _, werr := master.Write(buf[:n]); werr != nil {
					return
				}
			}
			if n == 0 || (err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN)) {
				_, _ = master.Write([]byte{4}) // VEOF in the PTY's canonical mode
				return
			}
		}
	}()
	var once bool
	return func() {
		if once {
			return
		}
		once = true
		ww.Close()
		<-finished
	}
}
