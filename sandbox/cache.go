package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// cacheTools are the build caches that persist across sandboxed commands:
// the subdirectory of the cache dir, and the variables that point the tool
// at it.
var cacheTools = []struct {
	dir  string
	vars []string
}{
	{"go-build", []string{"GOCACHE"}},
	{"go-mod", []string{"GOMODCACHE"}},
	{"npm", []string{"npm_config_cache"}},
	{"pip", []string{"PIP_CACHE_DIR"}},
	{"cargo", []string{"CARGO_HOME"}},
}

// DefaultCacheDir is where sandboxed build caches live:
// $XDG_CACHE_HOME/agentexec/sandbox, else ~/.cache/agentexec/sandbox. They
// are agentexec's own, never the user's host caches: a command may poison
// them, so only later sandboxed commands (which are no more trusted) read
// them (docs/sandbox.md, "Build caches").
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "agentexec", "sandbox"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the cache dir: %w", err)
	}
	return filepath.Join(home, ".cache", "agentexec", "sandbox"), nil
}

// CacheEnv is the environment that points Go, npm, pip and cargo at the
// caches under dir. Run mounts Spec.CacheDir but never edits Spec.Env, so
// the caller adds these (after any user setting it wants to win over them).
func CacheEnv(dir string) []string {
	var env []string
	for _, t := range cacheTools {
		for _, v := range t.vars {
			env = append(env, v+"="+filepath.Join(dir, t.dir))
		}
	}
	return env
}

// prepareCache creates dir and its tool subdirectories, private to the
// caller.
func prepareCache(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("cache dir %s is not an absolute path", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the cache dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return errors.New("the cache dir is not a directory")
	}
	for _, t := range cacheTools {
		if err := os.Mkdir(filepath.Join(dir, t.dir), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating the cache dir: %w", err)
		}
	}
	return nil
}
