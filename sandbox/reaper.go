package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The container's PID 1 is agentexec's own binary, bind-mounted read-only at
// initPath. A bare command as PID 1 would ignore SIGINT and SIGTERM (the
// kernel drops signals PID 1 has no handler for), would not reap orphans,
// and would let a daemon it forked outlive it. The reaper starts the
// command in its own session (or, with a TTY, its own foreground process
// group), forwards the signals a shell user sends, reaps every process,
// reports the command's status on fd 3, and on the command's exit kills
// whatever is left.

// initConfig is what Run sends the reaper on fd 4.
type initConfig struct {
	Argv  []string          `json:"argv"`
	TTY   bool              `json:"tty"`
	Files map[string][]byte `json:"files,omitempty"`
}

// initReport is what the reaper sends back on fd 3.
type initReport struct {
	Valid      bool  `json:"valid"`
	Exit       int   `json:"exit"`
	Signal     int   `json:"signal,omitempty"`
	MaxRSSKiB  int64 `json:"maxrss_kib,omitempty"`
	UserMicros int64 `json:"utime_us,omitempty"`
	SysMicros  int64 `json:"stime_us,omitempty"`
}

// forwarded are passed on to the command's process group.
var forwarded = []os.Signal{
	unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1,
	unix.SIGUSR2, unix.SIGWINCH, unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP,
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// reaperMain never returns.
func reaperMain() {
	status := os.NewFile(3, "status")
	cfgFile := os.NewFile(4, "config")
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	report := func(r initReport) {
		r.Valid = true
		_ = json.NewEncoder(status).Encode(r)
		status.Close()
	}
	fail := func(code int, format string, a ...any) {
		fmt.Fprintf(os.Stderr, "agentexec: "+format+"\n", a...)
		report(initReport{Exit: code})
		os.Exit(code)
	}

	var cfg initConfig
	if err := json.NewDecoder(cfgFile).Decode(&cfg); err != nil {
		fail(125, "sandbox init: reading the config: %v", err)
	}
	cfgFile.Close()
	for p, data := range cfg.Files {
		if err := writePrivate(p, data); err != nil {
			fail(125, "sandbox init: %v", err)
		}
	}
	if len(cfg.Argv) == 0 {
		fail(125, "sandbox init: nothing to run")
	}

	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)
	// In the background group of its own terminal, the reaper must not be
	// stopped for touching it.
	signal.Ignore(unix.SIGTTOU, unix.SIGTTIN)

	path, code, err := lookPath(cfg.Argv[0], os.Getenv("PATH"))
	if err != nil {
		fail(code, "%s: %v", cfg.Argv[0], err)
	}
	sys := &syscall.SysProcAttr{Setsid: true}
	if cfg.TTY {
		sys = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
	}
	pid, err := syscall.ForkExec(path, cfg.Argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil {
		code := 126
		if errors.Is(err, unix.ENOENT) {
			code = 127
		}
		fail(code, "%s: %v", cfg.Argv[0], err)
	}

	var main unix.WaitStatus
	exited := false
	reap := func() {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if wpid <= 0 || err != nil {
				return
			}
			if wpid == pid {
				main, exited = ws, true
			}
		}
	}
	reap()
	for !exited {
		sig := <-sigs
		if sig == unix.SIGCHLD {
			reap()
			continue
		}
		s := sig.(syscall.Signal)
		if err := unix.Kill(-pid, s); err != nil {
			_ = unix.Kill(pid, s)
		}
	}
	// The command is done: nothing it started may outlive it.
	_ = unix.Kill(-1, unix.SIGKILL)
	for {
		if _, err := unix.Wait4(-1, nil, 0, nil); err != nil {
			break
		}
	}
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
	r := initReport{
		MaxRSSKiB:  ru.Maxrss,
		UserMicros: ru.Utime.Sec*1e6 + ru.Utime.Usec,
		SysMicros:  ru.Stime.Sec*1e6 + ru.Stime.Usec,
	}
	exit := main.ExitStatus()
	if main.Signaled() {
		r.Signal = int(main.Signal())
		exit = 128 + r.Signal
	}
	r.Exit = exit
	report(r)
	os.Exit(exit)
}

// lookPath finds name the way a shell does, returning the status a shell
// would exit with when it cannot (127 not found, 126 not executable).
func lookPath(name, pathEnv string) (string, int, error) {
	if strings.Contains(name, "/") {
		return name, 126, executable(name)
	}
	if pathEnv == "" {
		pathEnv = defaultPath
	}
	found := false
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		err := executable(p)
		if err == nil {
			return p, 0, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			found = true
		}
	}
	if found {
		return "", 126, errors.New("permission denied")
	}
	return "", 127, errors.New("command not found")
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	return unix.Access(p, unix.X_OK)
}

// writePrivate writes one Spec.Files entry into the container's tmpfs,
// readable by the command's user only.
func writePrivate(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("creating the directory of %s: %w", p, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return f.Close()
}
