package cred

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxFileSize bounds what the file provider reads.
const maxFileSize = 1 << 20

// envProvider takes the value from agentexec's own environment. It exists
// for migration: the value is long-lived and cannot be revoked, but it
// still reaches only the child and is still redacted.
type envProvider struct{}

func (envProvider) issue(_ context.Context, spec Spec, _ Purpose) (*Credential, error) {
	v, ok := os.LookupEnv(spec.Var)
	if !ok || v == "" {
		return nil, fmt.Errorf("%w: $%s is empty or unset in agentexec's environment", ErrNotSet, spec.Var)
	}
	c := &Credential{ID: "env:" + spec.Var}
	deliver(c, spec, NewSecret([]byte(v)), spec.Var)
	return c, nil
}

// fileProvider reads the value from a file that only root can change.
//
// The rule: File is absolute and clean; no component of it is a symbolic
// link; the file is a regular file owned by uid 0 with no group or other
// write bit; every directory above it is owned by uid 0 and has no group
// or other write bit, unless it is sticky (like /tmp), where others cannot
// replace an entry they do not own. One trailing newline is removed.
type fileProvider struct{}

func (fileProvider) issue(_ context.Context, spec Spec, _ Purpose) (*Credential, error) {
	b, err := readRootFile(spec.File)
	if err != nil {
		return nil, err
	}
	c := &Credential{ID: "file:" + spec.File}
	deliver(c, spec, Secret{b: b}, "")
	return c, nil
}

func readRootFile(path string) ([]byte, error) {
	if filepath.Clean(path) != path || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: %s is not a clean absolute path", ErrUnsafeFile, path)
	}
	// Directories from / down; checked before the open so that no one
	// but root could have swapped a component in between.
	dirs := []string{}
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == "/" {
			break
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		var st syscall.Stat_t
		if err := syscall.Lstat(dirs[i], &st); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnsafeFile, dirs[i], err)
		}
		switch {
		case st.Mode&syscall.S_IFMT == syscall.S_IFLNK:
			return nil, fmt.Errorf("%w: %s is a symbolic link; name the real path", ErrUnsafeFile, dirs[i])
		case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
			return nil, fmt.Errorf("%w: %s is not a directory", ErrUnsafeFile, dirs[i])
		case st.Uid != 0:
			return nil, fmt.Errorf("%w: directory %s is owned by uid %d, not root", ErrUnsafeFile, dirs[i], st.Uid)
		case st.Mode&0o022 != 0 && st.Mode&syscall.S_ISVTX == 0:
			return nil, fmt.Errorf("%w: directory %s is writable by group or others", ErrUnsafeFile, dirs[i])
		}
	}
	// O_NOFOLLOW refuses a final symlink; O_NONBLOCK keeps a FIFO from
	// blocking the open (it is refused as not regular just after).
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symbolic link; name the real path", ErrUnsafeFile, path)
		}
		return nil, fmt.Errorf("%w: opening %s: %w", ErrUnsafeFile, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUnsafeFile, path, err)
	}
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrUnsafeFile, path)
	case st.Uid != 0:
		return nil, fmt.Errorf("%w: %s is owned by uid %d, not root", ErrUnsafeFile, path, st.Uid)
	case st.Mode&0o022 != 0:
		return nil, fmt.Errorf("%w: %s is writable by group or others", ErrUnsafeFile, path)
	case st.Size > maxFileSize:
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUnsafeFile, path, maxFileSize)
	}
	b := make([]byte, 0, st.Size+1)
	buf := bytes.NewBuffer(b)
	if _, err := io.Copy(buf, io.LimitReader(f, maxFileSize+1)); err != nil {
		clear(buf.Bytes())
		return nil, fmt.Errorf("%w: reading %s: %w", ErrUnsafeFile, path, err)
	}
	b = buf.Bytes()
	if len(b) > maxFileSize {
		clear(b)
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUnsafeFile, path, maxFileSize)
	}
	if strings.HasSuffix(string(b[max(len(b)-2, 0):]), "\r\n") {
		b = b[:len(b)-2]
	} else if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	return b, nil
}
