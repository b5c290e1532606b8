package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// registryTimeout bounds one query of a package manager's configuration.
const registryTimeout = 20 * time.Second

// RegistryGrants returns the grants that let a package manager fetch from
// the registry its user configured: the go command's GOPROXY and GOSUMDB,
// npm's registry and scoped registries, pip's index and extra indexes,
// cargo's registries and source replacements. The configuration is read at
// run time from the tool itself where the tool can say (go env, npm config,
// pip config), so mirrors and corporate proxies work. env is the
// environment the tool runs with (nil means agentexec's own); the tool is
// looked up in its PATH.
//
// What cannot be granted by name is left out and said so in
// docs/network.md: GOPROXY's "direct" (modules fetched straight from their
// version-control hosts need their own grants) and "off", file:// URLs and
// local registries.
//
// tool is "go", "npm", "pip" or "cargo"; any other name wraps
// ErrUnknownTool. Failing to read the configuration wraps ErrRegistry: the
// caller grants nothing rather than guessing.
func RegistryGrants(ctx context.Context, tool string, env []string) ([]Grant, error) {
	if env == nil {
		env = os.Environ()
	}
	var (
		urls []string
		err  error
	)
	switch tool {
	case "go":
		urls, err = goRegistries(ctx, env)
	case "npm":
		urls, err = npmRegistries(ctx, env)
	case "pip":
		urls, err = pipRegistries(ctx, env)
	case "cargo":
		urls, err = cargoRegistries(env)
	default:
		return nil, fmt.Errorf("registry grants for %q: %w", tool, ErrUnknownTool)
	}
	if err != nil {
		return nil, &RegistryError{Tool: tool, Err: err}
	}
	return urlGrants(tool, urls)
}

// urlGrants turns registry URLs into one grant per host and port.
func urlGrants(tool string, urls []string) ([]Grant, error) {
	seen := map[string]bool{}
	var out []Grant
	for _, raw := range urls {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		// cargo's "sparse+https://..." and "registry+https://...".
		if i := strings.Index(raw, "+"); i > 0 && !strings.Contains(raw[:i], ":") {
			raw = raw[i+1:]
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, &RegistryError{Tool: tool, Err: fmt.Errorf("registry URL %q: %w", raw, err)}
		}
		var port int
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = 443
		case "http":
			port = 80
		default:
			continue // file://, git@ and other non-HTTP sources cannot go through the proxy
		}
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil {
				return nil, &RegistryError{Tool: tool, Err: fmt.Errorf("registry URL %q: bad port", raw)}
			}
		}
		host := strings.ToLower(u.Hostname())
		if host == "" {
			continue
		}
		key := net.JoinHostPort(host, strconv.Itoa(port))
		if seen[key] {
			continue
		}
		seen[key] = true
		g := Grant{Host: host, Ports: []int{port}, Rule: "registry:" + tool}
		if _, err := compileGrant(g); err != nil {
			return nil, &RegistryError{Tool: tool, Err: err}
		}
		out = append(out, g)
	}
	return out, nil
}

// output runs a tool with env and returns its stdout.
func output(ctx context.Context, env []string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	path, err := lookPath(argv[0], env)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Env = env
	cmd.Dir = os.TempDir() // no project-local configuration is read by accident
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return "", fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return stdout.String(), nil
}

// lookPath finds a program in env's PATH rather than agentexec's.
func lookPath(name string, env []string) (string, error) {
	for _, dir := range filepath.SplitList(getenv(env, "PATH")) {
		if dir == "" || !filepath.IsAbs(dir) {
			continue // a relative PATH entry would depend on the current directory
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func getenv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val // the last one wins, as in exec
		}
	}
	return v
}

// goRegistries asks the go command, which prints its defaults when nothing
// is configured.
func goRegistries(ctx context.Context, env []string) ([]string, error) {
	out, err := output(ctx, env, "go", "env", "GOPROXY", "GOSUMDB")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 {
		return nil, fmt.Errorf("go env printed %d lines, want 2", len(lines))
	}
	var urls []string
	for _, entry := range strings.FieldsFunc(lines[0], func(r rune) bool { return r == ',' || r == '|' }) {
		if entry = strings.TrimSpace(entry); entry != "direct" && entry != "off" {
			urls = append(urls, entry)
		}
	}
	if u := sumdbURL(lines[1]); u != "" {
		urls = append(urls, u)
	}
	return urls, nil
}

// sumdbURL reads GOSUMDB: "off", "name", "name+key" or "name+key url".
func sumdbURL(v string) string {
	f := strings.Fields(v)
	if len(f) == 0 || f[0] == "off" {
		return ""
	}
	if len(f) > 1 {
		return f[1]
	}
	name, _, _ := strings.Cut(f[0], "+")
	return "https://" + name
}

// npmRegistries reads npm's effective configuration (defaults included):
// the registry and every scoped "@scope:registry".
func npmRegistries(ctx context.Context, env []string) ([]string, error) {
	out, err := output(ctx, env, "npm", "config", "list", "--json")
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		return nil, fmt.Errorf("npm config list: %w", err)
	}
	var keys []string
	for k := range cfg {
		if k == "registry" || strings.HasPrefix(k, "@") && strings.HasSuffix(k, ":registry") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var urls []string
	for _, k := range keys {
		if s, ok := cfg[k].(string); ok {
			urls = append(urls, s)
		}
	}
	if len(urls) == 0 {
		return nil, errors.New("npm reports no registry")
	}
	return urls, nil
}

// PyPI's addresses: pip's defaults when no index is configured. pip has no
// command that prints its default index, so these two are written here;
// they are PyPI's documented simple index and file hosts.
var pipDefaults = []string{"https://pypi.org/simple", "https://files.pythonhosted.org"}

// pipRegistries reads `pip config list`, which includes PIP_* variables as
// ":env:" entries. index-url replaces the default; extra-index-url and
// find-links add to it.
func pipRegistries(ctx context.Context, env []string) ([]string, error) {
	out, err := output(ctx, env, "pip", "config", "list")
	if err != nil {
		return nil, err
	}
	values := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		name := k[strings.LastIndex(k, ".")+1:]
		v = strings.Trim(strings.TrimSpace(v), "'\"")
		v = strings.ReplaceAll(v, `\n`, " ")
		values[name] = append(values[name], strings.Fields(v)...)
	}
	var urls []string
	if idx := values["index-url"]; len(idx) > 0 {
		urls = append(urls, idx...)
	} else if getenv(env, "PIP_NO_INDEX") == "" {
		urls = append(urls, pipDefaults...)
	}
	urls = append(urls, values["extra-index-url"]...)
	urls = append(urls, values["find-links"]...)
	return urls, nil
}

// crates.io's addresses: cargo's default registry. cargo has no stable
// command that prints its configuration (`cargo config get` needs
// -Zunstable-options), so the default sparse index and its download host
// are written here; they are what crates.io's index config.json names.
var cargoDefaults = []string{"sparse+https://index.crates.io/", "https://static.crates.io"}

// cargoConfig is the part of .cargo/config.toml that names registries.
type cargoConfig struct {
	Registries map[string]struct {
		Index string `toml:"index"`
	} `toml:"registries"`
	Source map[string]struct {
		ReplaceWith string `toml:"replace-with"`
		Registry    string `toml:"registry"`
	} `toml:"source"`
}

// cargoRegistries reads $CARGO_HOME/config.toml (or the legacy "config")
// and CARGO_REGISTRIES_<NAME>_INDEX variables.
func cargoRegistries(env []string) ([]string, error) {
	home := getenv(env, "CARGO_HOME")
	if home == "" {
		h := getenv(env, "HOME")
		if h == "" {
			return nil, errors.New("neither CARGO_HOME nor HOME is set")
		}
		home = filepath.Join(h, ".cargo")
	}
	var cfg cargoConfig
	for _, name := range []string{"config.toml", "config"} {
		b, err := os.ReadFile(filepath.Join(home, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := toml.Decode(string(b), &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(home, name), err)
		}
		break
	}
	var urls []string
	names := make([]string, 0, len(cfg.Registries))
	for n := range cfg.Registries {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		urls = append(urls, cfg.Registries[n].Index)
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "CARGO_REGISTRIES_") && strings.HasSuffix(k, "_INDEX") {
			urls = append(urls, v)
		}
	}
	// crates.io replaced by a mirror: follow replace-with to its registry.
	replaced := false
	seen := map[string]bool{}
	for src := "crates-io"; ; {
		next := cfg.Source[src].ReplaceWith
		if next == "" || seen[next] {
			break
		}
		seen[next] = true
		replaced = true
		if r := cfg.Source[next].Registry; r != "" {
			urls = append(urls, r)
		}
		if r, ok := cfg.Registries[next]; ok {
			urls = append(urls, r.Index)
		}
		src = next
	}
	if !replaced {
		urls = append(urls, cargoDefaults...)
	}
	return urls, nil
}
