package sandbox

/*
#include "reaper.h"
static const char *agentexec_init_path(void) { return AGENTEXEC_INIT_PATH; }
*/
import "C"

import (
	"bytes"
	"strconv"
)

// The container's PID 1 is agentexec's own binary, bind-mounted read-only at
// initPath. A bare command as PID 1 would ignore SIGINT and SIGTERM (the
// kernel drops signals PID 1 has no handler for), would not reap orphans,
// and would let a daemon it forked outlive it. The reaper (reaper.c) starts
// the command in its own session (or, with a TTY, its own foreground
// process group), forwards the signals a shell user sends, reaps every
// process, reports the command's status on fd 3, and on the command's exit
// kills whatever is left. It is C run from an ELF constructor, before the
// Go runtime starts, so a command pays for one Go start-up (libcontainer's
// init), not two.

// cInitPath is initPath as reaper.c knows it; a test keeps the two equal.
func cInitPath() string { return C.GoString(C.agentexec_init_path()) }

// initConfig is what Run sends the reaper on fd 4.
type initConfig struct {
	// Seccomp is the filter as classic BPF (struct sock_filter[]), which
	// the reaper installs before anything else; it refuses to go on
	// without one.
	Seccomp []byte
	Argv    []string
	TTY     bool
	Files   map[string][]byte
}

// encode writes the config in reaper.c's format: NUL-terminated fields
// "AXI2", the size of the seccomp program and its bytes, the tty flag,
// argc, argv..., the number of files, then for each file its path, its
// size and its bytes.
func (c initConfig) encode() []byte {
	var b bytes.Buffer
	f := func(s string) { b.WriteString(s); b.WriteByte(0) }
	f("AXI2")
	f(strconv.Itoa(len(c.Seccomp)))
	b.Write(c.Seccomp)
	if c.TTY {
		f("1")
	} else {
		f("0")
	}
	f(strconv.Itoa(len(c.Argv)))
	for _, a := range c.Argv {
		f(a)
	}
	f(strconv.Itoa(len(c.Files)))
	for p, data := range c.Files {
		f(p)
		f(strconv.Itoa(len(data)))
		b.Write(data)
	}
	return b.Bytes()
}

// initReport is what the reaper sends back on fd 3, one JSON line.
type initReport struct {
	Valid      bool  `json:"valid"`
	Exit       int   `json:"exit"`
	Signal     int   `json:"signal,omitempty"`
	MaxRSSKiB  int64 `json:"maxrss_kib,omitempty"`
	UserMicros int64 `json:"utime_us,omitempty"`
	SysMicros  int64 `json:"stime_us,omitempty"`
}
