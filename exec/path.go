package exec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// defaultPath is the search path when the environment has none, as
// glibc's execvp uses (confstr _CS_PATH).
const defaultPath = "/bin:/usr/bin"

// envPath returns the PATH in env, or defaultPath when env has none.
func envPath(env []string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "PATH="); ok {
			return v
		}
	}
	return defaultPath
}

// lookPath finds name the way execvp does, but with the PATH of the
// child's environment rather than agentexec's own: a name with a slash is
// taken as it is (relative to dir); otherwise the first executable regular
// file on the path wins, and an existing but non-executable one is
// reported only when no executable one exists. An empty PATH entry means
// dir.
func lookPath(name string, env []string, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", &ProgramError{Program: name, Err: err}
		}
		return p, nil
	}
	found := ErrNotFound
	for _, d := range filepath.SplitList(envPath(env)) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		p := filepath.Join(d, name)
		switch err := executable(p); {
		case err == nil:
			return p, nil
		case errors.Is(err, ErrNotExecutable):
			found = ErrNotExecutable
		}
	}
	return "", &ProgramError{Program: name, Err: found}
}

// executable returns nil for an executable regular file, ErrNotExecutable
// for any other existing file, and ErrNotFound otherwise.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return ErrNotFound
		}
		return ErrNotExecutable
	}
	if !fi.Mode().IsRegular() || unix.Access(p, unix.X_OK) != nil {
		return ErrNotExecutable
	}
	return nil
}

// findShell returns the bash that runs shell lines: the first on the
// child's PATH that is not agentexec itself. A "bash" shim that points back
// at agentexec would otherwise make every command start agentexec again,
// without end.
func findShell(env []string, dir string) (string, error) {
	self, _ := os.Stat("/proc/self/exe")
	for _, d := range filepath.SplitList(envPath(env) + ":" + defaultPath) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		p := filepath.Join(d, "bash")
		if executable(p) != nil {
			continue
		}
		if fi, err := os.Stat(p); err == nil && self != nil && os.SameFile(fi, self) {
			continue
		}
		return p, nil
	}
	return "", ErrNoShell
}

// sameFile reports whether a and b are open on the same file, so that the
// child's writes to both can share one stream.
func sameFile(a, b *os.File) bool {
	if a == nil || b == nil {
		return false
	}
	if a == b || a.Fd() == b.Fd() {
		return true
	}
	var sa, sb unix.Stat_t
	if unix.Fstat(int(a.Fd()), &sa) != nil || unix.Fstat(int(b.Fd()), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// digest counts and hashes bytes.
type digest struct {
	n int64
	h hash.Hash
}

func newSHA256() digest { return digest{h: sha256.New()} }

func (d *digest) write(p []byte) {
	d.n += int64(len(p))
	d.h.Write(p)
}

func (d *digest) output() Output {
	return Output{Bytes: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil))}
}
