package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/agentexec/agentexec/exec"
	"golang.org/x/sys/unix"
)

// runSession is the interactive front door: a line-by-line shell session
// on a terminal where every line goes through exec.Run, so every line is
// judged, run and recorded like any other command. Each line runs in a
// fresh shell; only the working directory (cd) is kept by the session, and
// `exit [N]` ends it. The status is the last line's, as in bash.
func runSession(ctx context.Context, engine *exec.Engine, base exec.Request, stdin *os.File, stderr io.Writer) int {
	// At the prompt Ctrl-C abandons the line (the terminal discards what
	// was typed) instead of ending the session.
	ints := make(chan os.Signal, 1)
	signal.Notify(ints, unix.SIGINT)
	defer signal.Stop(ints)
	lines := make(chan lineRead)
	in := bufio.NewReader(stdin)
	status := 0
	dir := base.Dir
	if dir == "" {
		dir, _ = os.Getwd()
	}
	// The session's workspace is where it started: a later `cd` moves the
	// working directory, never what the commands may write.
	if base.Workspace == "" {
		base.Workspace = dir
	}
	for {
		prompt := fmt.Sprintf("agentexec:%s$ ", filepath.Base(dir))
		fmt.Fprint(stderr, prompt)
		line, err := readLogicalLine(ints, lines, in, stderr, prompt)
		if err != nil {
			fmt.Fprintln(stderr)
			if errors.Is(err, io.EOF) {
				return status
			}
			return report(stderr, fmt.Errorf("reading the terminal: %w", err))
		}
		words := strings.Fields(line)
		switch {
		case len(words) == 0:
			continue
		case words[0] == "exit" && len(words) <= 2:
			if len(words) == 2 {
				n, err := strconv.Atoi(words[1])
				if err != nil {
					fmt.Fprintf(stderr, "agentexec: exit: %s: numeric argument required\n", words[1])
					return 2
				}
				return n & 0xff
			}
			return status
		case words[0] == "cd" && len(words) <= 2:
			d, err := changeDir(dir, words[1:], base.Env)
			if err != nil {
				fmt.Fprintf(stderr, "agentexec: cd: %v\n", err)
				status = 1
				continue
			}
			dir, status = d, 0
			continue
		}
		req := base
		req.Command, req.Dir = line, dir
		res, err := engine.Run(ctx, req)
		status = finish(stderr, res, err)
		drain(ints)
	}
}

type lineRead struct {
	s   string
	err error
}

// readLogicalLine reads one line, joining lines that end in a backslash.
// A Ctrl-C abandons what was typed and shows the prompt again.
func readLogicalLine(ints <-chan os.Signal, lines chan lineRead, in *bufio.Reader, stderr io.Writer, prompt string) (string, error) {
	var b strings.Builder
	for {
		go func() {
			s, err := in.ReadString('\n')
			lines <- lineRead{s, err}
		}()
		var r lineRead
		select {
		case r = <-lines:
		case <-ints:
			fmt.Fprint(stderr, "\n"+prompt)
			b.Reset()
			r = <-lines
		}
		if r.err != nil && (r.s == "" || !errors.Is(r.err, io.EOF)) {
			return "", r.err
		}
		s := strings.TrimSuffix(r.s, "\n")
		if strings.HasSuffix(s, "\\") && r.err == nil {
			b.WriteString(strings.TrimSuffix(s, "\\"))
			fmt.Fprint(stderr, "> ")
			continue
		}
		b.WriteString(s)
		return b.String(), nil
	}
}

// changeDir resolves a `cd` the session keeps for the lines after it.
func changeDir(cur string, args []string, env []string) (string, error) {
	target := lookupEnv(env, "HOME")
	if len(args) == 1 {
		target = args[0]
	}
	if target == "" {
		return "", errors.New("HOME not set")
	}
	if strings.HasPrefix(target, "~/") || target == "~" {
		target = lookupEnv(env, "HOME") + strings.TrimPrefix(target, "~")
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(cur, target)
	}
	fi, err := os.Stat(target)
	if err != nil {
		return "", fmt.Errorf("%s: no such directory", target)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s: not a directory", target)
	}
	return filepath.Clean(target), nil
}

func drain(c <-chan os.Signal) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}
