package policy

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// LoadOptions say where to look for the policy. The zero value loads the
// built-in "workspace" profile and applies no workspace file.
type LoadOptions struct {
	File       string // --policy / AGENTEXEC_POLICY; "" = search
	Profile    string // built-in profile name when no file is found; "" = "workspace"
	ConfigHome string // $XDG_CONFIG_HOME (or ~/.config); "" = do not search it
	Workspace  string // absolute; policy files inside it may only narrow
	SystemDir  string // "" = /etc/agentexec (tests point it elsewhere)
	// SkipTests does not run the files' inline tests while loading, so
	// `agentexec policy test` can run them all and report every failure.
	// The zero value runs them: a policy whose tests fail does not load.
	SkipTests bool
}

// WorkspaceFile is the workspace's own policy, always applied (narrowing
// only) when it exists.
const WorkspaceFile = ".agentexec/policy.yaml"

// Load finds the policy in the order of docs/policy.md: File, else
// ConfigHome/agentexec/policy.yaml, else SystemDir/policy.yaml, else the
// built-in Profile; then narrows it with every policy file that lives in
// the workspace (File itself when it is there, and WorkspaceFile). Any
// problem is a *LoadError: nothing is allowed by a policy that did not load.
func Load(opts LoadOptions) (*Policy, error) {
	ws := ""
	if opts.Workspace != "" {
		if !filepath.IsAbs(opts.Workspace) {
			return nil, &LoadError{File: opts.Workspace, Msg: "workspace must be an absolute path"}
		}
		ws = realPath(opts.Workspace)
	}
	inside := func(p string) bool {
		return ws != "" && under(realPath(p), ws)
	}
	var overlays []string
	base := ""
	if opts.File != "" {
		if inside(opts.File) {
			overlays = append(overlays, opts.File)
		} else {
			base = opts.File
		}
	}
	if base == "" {
		var cands []string
		if opts.ConfigHome != "" {
			cands = append(cands, filepath.Join(opts.ConfigHome, "agentexec", "policy.yaml"))
		}
		sys := opts.SystemDir
		if sys == "" {
			sys = "/etc/agentexec"
		}
		cands = append(cands, filepath.Join(sys, "policy.yaml"))
		for _, c := range cands {
			ok, err := exists(c)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if inside(c) {
				// The agent can write there: it may narrow, never be the base.
				overlays = append(overlays, c)
				continue
			}
			base = c
			break
		}
	}
	if ws != "" {
		wf := filepath.Join(opts.Workspace, WorkspaceFile)
		ok, err := exists(wf)
		if err != nil {
			return nil, err
		}
		if ok && !slices.ContainsFunc(overlays, func(o string) bool { return realPath(o) == realPath(wf) }) {
			overlays = append(overlays, wf)
		}
	}

	var p *Policy
	if base == "" {
		var err error
		if p, err = Builtin(opts.Profile); err != nil {
			return nil, err
		}
		if len(overlays) == 0 {
			return p, nil
		}
	} else {
		data, err := readPolicy(base)
		if err != nil {
			return nil, err
		}
		f, err := decodeFile(base, data)
		if err != nil {
			return nil, err
		}
		if p, err = build(base, []*file{f}, nil); err != nil {
			return nil, err
		}
		if !opts.SkipTests {
			if err := p.runTests(p.tests); err != nil {
				return nil, err
			}
		}
	}
	var files []*file
	for _, o := range overlays {
		data, err := readPolicy(o)
		if err != nil {
			return nil, err
		}
		f, err := decodeFile(o, data)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return p.withOverlays(files, !opts.SkipTests)
}

// withOverlays returns a copy of p narrowed by files, after running their
// inline tests against the result.
func (p *Policy) withOverlays(files []*file, runTests bool) (*Policy, error) {
	q := &Policy{
		source: p.source, def: p.def, unknown: p.unknown, roWorkspace: p.roWorkspace,
		rules: slices.Clone(p.rules), creds: p.creds, credIdx: p.credIdx,
		files: slices.Clone(p.files),
	}
	var tests []inlineTest
	for _, f := range files {
		if err := q.narrow(f); err != nil {
			return nil, err
		}
		q.source += " + " + f.name
		q.files = append(q.files, sourceFile{f.name, f.data})
		tests = append(tests, f.tests...)
	}
	q.digest = digestOf(q.files)
	q.reindex()
	q.tests = append(slices.Clone(p.tests), tests...)
	if runTests {
		if err := q.runTests(tests); err != nil {
			return nil, err
		}
	}
	return q, nil
}

func realPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r
	}
	// A file that does not exist yet: resolve its directory.
	if r, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(r, filepath.Base(abs))
	}
	return abs
}

func exists(p string) (bool, error) {
	_, err := os.Stat(p)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, &LoadError{File: p, Msg: "cannot read policy: " + err.Error(), Err: err}
}

func readPolicy(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, &LoadError{File: name, Msg: "cannot read policy: " + strings.TrimPrefix(err.Error(), "open "+name+": "), Err: err}
	}
	defer f.Close()
	// Anyone on the machine could rewrite a world-writable policy to allow
	// anything: refuse it rather than trust it.
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o002 != 0 {
		return nil, &LoadError{File: name, Msg: fmt.Sprintf("policy file is world-writable (mode %04o); run chmod o-w on it", fi.Mode().Perm())}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, &LoadError{File: name, Msg: "cannot read policy: " + err.Error(), Err: err}
	}
	return data, nil
}

//go:embed profiles/*.yaml
var profileFS embed.FS

// Profiles are the names of the built-in profiles.
var Profiles = []string{"workspace", "readonly", "ci"}

var builtinCache sync.Map // name -> *Policy

// Builtin returns a built-in profile. Their inline tests are verified by
// the package's own tests, not at run time, to keep start-up fast.
func Builtin(name string) (*Policy, error) {
	if name == "" {
		name = "workspace"
	}
	if p, ok := builtinCache.Load(name); ok {
		return p.(*Policy), nil
	}
	p, err := loadBuiltin(name)
	if err != nil {
		return nil, err
	}
	builtinCache.Store(name, p)
	return p, nil
}

func loadBuiltin(name string) (*Policy, error) {
	src := name
	if name == "ci" {
		src = "workspace"
	}
	if !slices.Contains(Profiles, name) {
		return nil, &LoadError{File: "builtin:" + name, Msg: fmt.Sprintf("unknown built-in profile %q (want %s)", name, strings.Join(Profiles, ", ")), Err: ErrUnknownProfile}
	}
	data, err := profileFS.ReadFile("profiles/" + src + ".yaml")
	if err != nil {
		return nil, &LoadError{File: "builtin:" + name, Msg: "missing embedded profile", Err: err}
	}
	// The embedded YAML was decoded and checked when the package was
	// built (profiles_gen.go, kept in sync by TestGeneratedProfiles):
	// parsing 30 KB of YAML on every start would cost milliseconds.
	gen, ok := generatedProfiles[src]
	if !ok {
		return nil, &LoadError{File: "builtin:" + name, Msg: "missing generated profile"}
	}
	f := gen()
	f.data = data
	f.ruleNodes = make([]*yaml.Node, len(f.rules))
	f.ruleKeys = make([]map[string]bool, len(f.rules))
	for i, r := range f.rules {
		finishRule(r)
		f.ruleKeys[i] = map[string]bool{"verdict": true}
	}
	p, err := build("builtin:"+name, []*file{f}, nil)
	if err != nil {
		return nil, err
	}
	if name == "ci" {
		p.toCI()
	}
	return p, nil
}

// toCI turns the workspace profile into the ci profile: nobody is there to
// approve, so every ask becomes deny.
func (p *Policy) toCI() {
	p.def, p.unknown = Deny, Deny
	for i, r := range p.rules {
		if r.Verdict == Ask {
			c := *r
			c.Verdict = Deny
			c.Reason += " (no one can approve it in CI)"
			p.rules[i] = &c
		}
	}
	for i := range p.tests {
		if p.tests[i].expect == Ask {
			p.tests[i].expect = Deny
		}
	}
	p.reindex()
	p.files[0].name = "builtin:ci"
	p.digest = digestOf(p.files)
}
