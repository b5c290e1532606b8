package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// check is one named validation step. It may normalise the spec (resolve
// paths) and returns one plain sentence when the spec cannot run.
type check struct {
	name string
	fn   func(s *Spec, ident identity) *CheckError
}

// checks run in order before any namespace or process exists.
var checks = []check{
	{"seccomp", checkSeccomp},
	{"argv", checkArgv},
	{"workspace", checkWorkspace},
	{"cwd", checkCwd},
	{"paths", checkPaths},
	{"files", checkFiles},
	{"limits", checkLimits},
	{"netns", checkNetNS},
}

func invalid(name, format string, a ...any) *CheckError {
	return &CheckError{Check: name, Reason: fmt.Sprintf(format, a...), Err: ErrInvalidSpec}
}

// validate runs the checks on a copy of s and returns the copy.
func validate(in *Spec, ident identity) (*Spec, error) {
	s := *in
	s.Writable = append([]string(nil), in.Writable...)
	s.Hidden = append([]string(nil), in.Hidden...)
	for _, c := range checks {
		if err := c.fn(&s, ident); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

func checkSeccomp(*Spec, identity) *CheckError {
	if !seccompBuilt {
		return &CheckError{Check: "seccomp", Reason: "this binary was built without seccomp support (build with -tags seccomp)", Err: ErrUnsupported}
	}
	return nil
}

func checkArgv(s *Spec, _ identity) *CheckError {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return invalid("argv", "no program to run")
	}
	return nil
}

// realDir resolves p (which the caller, not the sandboxed command, chose)
// to an absolute path without symlinks and checks it is a directory.
func realDir(name, p string) (string, *CheckError) {
	if !filepath.IsAbs(p) {
		return "", invalid(name, "%s is not an absolute path", p)
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", invalid(name, "%s does not exist", p)
	}
	fi, err := os.Stat(r)
	if err != nil || !fi.IsDir() {
		return "", invalid(name, "%s is not a directory", p)
	}
	return r, nil
}

func checkWorkspace(s *Spec, _ identity) *CheckError {
	if s.Workspace == "" {
		return invalid("workspace", "no workspace given")
	}
	r, err := realDir("workspace", s.Workspace)
	if err != nil {
		return err
	}
	if r == "/" {
		return invalid("workspace", "the root directory cannot be the workspace")
	}
	for _, sys := range append(systemDirs, "/proc", "/sys", "/dev", "/run", "/tmp", "/boot") {
		if r == sys || under(sys, []string{r}) {
			return invalid("workspace", "%s would expose or shadow %s", s.Workspace, sys)
		}
	}
	s.Workspace = r
	if s.Home != "" {
		h, err := realDir("home", s.Home)
		if err != nil {
			return err
		}
		s.Home = h
	}
	return nil
}

func checkCwd(s *Spec, _ identity) *CheckError {
	if s.Cwd == "" {
		s.Cwd = s.Workspace
		return nil
	}
	if !filepath.IsAbs(s.Cwd) {
		return invalid("cwd", "%s is not an absolute path", s.Cwd)
	}
	// Resolve it as the caller sees it; inside, the same path exists
	// only when it lies in something mounted.
	if r, err := filepath.EvalSymlinks(s.Cwd); err == nil {
		s.Cwd = r
	}
	// /tmp itself exists inside, but it is a private tmpfs: a host path
	// below it does not.
	roots := append(append([]string{s.Workspace, "/usr", "/etc", "/opt"}, s.Writable...), mountDests(s)...)
	if s.Home != "" && !sealedRootHome(s.Home) {
		roots = append(roots, s.Home)
	}
	// The root itself is the read-only skeleton: a shell that did `cd /` runs.
	if s.Cwd != "/tmp" && s.Cwd != "/" && !under(s.Cwd, roots) {
		return invalid("cwd", "%s is outside everything the sandbox mounts", s.Cwd)
	}
	return nil
}

func checkPaths(s *Spec, _ identity) *CheckError {
	for i, w := range s.Writable {
		r, err := realDir("writable", w)
		if err != nil {
			// A single file may be granted too.
			if !filepath.IsAbs(w) {
				return err
			}
			rr, e2 := filepath.EvalSymlinks(w)
			if e2 != nil {
				return err
			}
			r = rr
		}
		for _, sys := range append(systemDirs, "/proc", "/sys", "/dev", "/boot") {
			if r == "/" || r == sys || under(sys, []string{r}) || under(r, []string{sys}) {
				return invalid("writable", "%s lies in or contains the read-only system path %s", w, sys)
			}
		}
		s.Writable[i] = r
	}
	for _, h := range s.Hidden {
		if !filepath.IsAbs(h) {
			return invalid("hidden", "%s is not an absolute path", h)
		}
	}
	// A grant must not reopen what is hidden.
	hidden := append([]string(nil), s.Hidden...)
	if s.Home != "" {
		for _, h := range DefaultHidden {
			hidden = append(hidden, filepath.Join(s.Home, h))
		}
	}
	if s.CacheDir != "" {
		if !filepath.IsAbs(s.CacheDir) {
			return invalid("cache", "%s is not an absolute path", s.CacheDir)
		}
		s.CacheDir = filepath.Clean(s.CacheDir)
	}
	for _, w := range append(append([]string{s.Workspace, s.CacheDir}, s.Writable...), mountDests(s)...) {
		if w == "" {
			continue
		}
		for _, h := range hidden {
			if under(w, []string{h}) || under(w, []string{evalOrSelf(h)}) {
				return invalid("paths", "%s lies inside the hidden path %s", w, h)
			}
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Dest) {
			return invalid("mounts", "mount %s -> %s needs absolute paths", m.Source, m.Dest)
		}
	}
	return nil
}

func mountDests(s *Spec) []string {
	var d []string
	for _, m := range s.Mounts {
		d = append(d, m.Dest)
	}
	return d
}

func checkFiles(s *Spec, _ identity) *CheckError {
	for p := range s.Files {
		c := filepath.Clean(p)
		if c != p || !(strings.HasPrefix(c, "/tmp/") || strings.HasPrefix(c, "/run/")) || strings.HasPrefix(c, "/run/agentexec/") {
			return invalid("files", "%s is not a clean path under /tmp or /run", p)
		}
	}
	return nil
}

func checkLimits(s *Spec, _ identity) *CheckError {
	l := s.Limits
	if l.MemoryBytes < 0 || l.Pids < 0 || l.CPUs < 0 || s.Timeout < 0 {
		return invalid("limits", "limits and timeout must not be negative")
	}
	if l.MemoryBytes > 0 && l.MemoryBytes < 8<<20 {
		return invalid("limits", "a memory limit below 8 MiB cannot start a process")
	}
	return nil
}

func checkNetNS(s *Spec, _ identity) *CheckError {
	if s.NetNS == "" {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(s.NetNS, &fs); err != nil {
		return invalid("netns", "network namespace %s does not exist", s.NetNS)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return invalid("netns", "%s is not a namespace file", s.NetNS)
	}
	return nil
}
