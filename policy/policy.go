package policy

import (
	"time"
)

// Policy is a loaded, validated policy: the base file or built-in profile
// plus any workspace files that narrowed it. It is immutable and safe for
// concurrent use.
type Policy struct {
	source  string // where the policy came from, e.g. "builtin:workspace"
	digest  string // "sha256:<hex>" over every file's name and bytes
	def     Verdict
	unknown Verdict
	// roWorkspace: `workspace: read-only`; the workspace is not writable.
	roWorkspace bool
	rules       []*Rule
	creds       []Credential
	credIdx     map[string]int
	tests       []inlineTest
	files       []sourceFile

	// byName indexes rules by the literal basenames they name; scan holds
	// the rules with a glob or a path pattern, which every command checks.
	// Both hold positions in rules, in order.
	byName map[string][]int
	scan   []int
}

// reindex rebuilds byName and scan after rules change.
func (p *Policy) reindex() {
	p.byName = make(map[string][]int, 4*len(p.rules))
	p.scan = p.scan[:0]
	for i, r := range p.rules {
		needScan := false
		for _, pp := range r.progs {
			if pp.literal && !pp.abs {
				if l := p.byName[pp.raw]; len(l) == 0 || l[len(l)-1] != i {
					p.byName[pp.raw] = append(l, i)
				}
			} else {
				needScan = true
			}
		}
		if needScan {
			p.scan = append(p.scan, i)
		}
	}
}

type sourceFile struct {
	name string
	data []byte
}

// Rule is one rule of a policy. Matching is documented in docs/policy.md.
type Rule struct {
	ID      string
	Verdict Verdict
	Reason  string
	Hints   []string

	// Programs match the program by basename (a pattern without "/") or by
	// absolute path (a pattern with "/"; ~, $HOME, $WORKSPACE and $TMPDIR
	// are expanded at decision time). Globs: * ? [..]; ** crosses "/".
	Programs []string
	// Args is a prefix: the i-th argument must match one of Args[i]. More
	// arguments may follow. Empty means any arguments.
	Args [][]string
	// WithFlags: the rule matches only when one of these flags is present.
	WithFlags []string
	// WithoutFlags: the rule matches only when none of these flags is present.
	WithoutFlags []string
	// Paths: "" (any), "inside" (every operand is inside the writable set)
	// or "outside" (some operand is outside it).
	Paths string

	Grants Grants

	File string // the file that defined the rule
	Line int

	specificity int
	progs       []progPattern
}

// Grants are what an allowing rule adds to the sandbox of the line.
type Grants struct {
	Write       []string      `json:"write,omitempty"`
	Network     []NetGrant    `json:"network,omitempty"`
	Credentials []string      `json:"credentials,omitempty"`
	Limits      Limits        `json:"limits,omitzero"`
	Timeout     time.Duration `json:"timeout,omitempty"`
}

// Limits are resource ceilings; zero means the sandbox's default.
type Limits struct {
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	Pids        int64   `json:"pids,omitempty"`
	CPUs        float64 `json:"cpus,omitempty"`
}

// NetGrant is one network destination a rule grants.
type NetGrant struct {
	Host     string   `json:"host,omitempty"`     // exact host, "*.example.com", or an IP/CIDR literal
	Ports    []int    `json:"ports,omitempty"`    // empty = 80 and 443
	Methods  []string `json:"methods,omitempty"`  // empty = any HTTP method
	Any      bool     `json:"any,omitempty"`      // the explicit, named "any destination" grant
	Name     string   `json:"name,omitempty"`     // required with Any
	Registry string   `json:"registry,omitempty"` // "go", "npm", "pip", "cargo"
	Rule     string   `json:"rule,omitempty"`     // the rule id that granted it
}

// Credential is one entry of the credentials: section.
type Credential struct {
	Name, Provider       string
	Command              []string
	Host, Protocol, Path string
	Helper               string
	Var                  string
	File                 string
	Timeout              time.Duration
	Env                  []string
	FileEnv              string
	TTL                  time.Duration
	Scope                map[string]any
	ShortLived           bool
	Line                 int
}

type inlineTest struct {
	file    string
	line    int
	col     int
	command string
	expect  Verdict
	rule    string
}

// Source names where the policy came from: a file path, or
// "builtin:NAME", followed by " + FILE" for each workspace file applied.
func (p *Policy) Source() string { return p.source }

// Digest is "sha256:<hex>" over every file that made up the policy.
func (p *Policy) Digest() string { return p.digest }

// Default is the verdict for a command no rule matches.
func (p *Policy) Default() Verdict { return p.def }

// Unknown is the verdict for a command whose program is not statically known.
func (p *Policy) Unknown() Verdict { return p.unknown }

// WorkspaceReadOnly reports `workspace: read-only`: the sandbox must mount
// the workspace read-only.
func (p *Policy) WorkspaceReadOnly() bool { return p.roWorkspace }

// Rules returns the rules in file order (base first, then workspace rules).
func (p *Policy) Rules() []Rule {
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = *r
	}
	return out
}

// Credentials returns the validated credentials: section.
func (p *Policy) Credentials() []Credential {
	out := make([]Credential, len(p.creds))
	copy(out, p.creds)
	return out
}

// Files returns the name and bytes of every file the policy was built from,
// base first.
func (p *Policy) Files() (names []string, data [][]byte) {
	for _, f := range p.files {
		names = append(names, f.name)
		data = append(data, f.data)
	}
	return names, data
}
