package egress

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// baseEnv is the test's environment without the settings a case controls.
func baseEnv(t *testing.T, drop ...string) []string {
	t.Helper()
	var env []string
	for _, kv := range cleanEnv() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if strings.HasPrefix(k, d) {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

func hostsOf(gs []Grant) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.Host+":"+portsString(g.Ports))
	}
	return out
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed on this host", name)
	}
}

func TestRegistryGrants(t *testing.T) {
	home := t.TempDir()
	cargoHome := filepath.Join(home, "cargo")
	os.MkdirAll(cargoHome, 0o755)
	os.WriteFile(filepath.Join(cargoHome, "config.toml"), []byte(`
[source.crates-io]
replace-with = "corp"
[source.corp]
registry = "sparse+https://cargo.corp.example/index/"
[registries.extra]
index = "https://git.corp.example:8443/extra-index"
`), 0o600)
	npmrc := filepath.Join(home, "npmrc")
	os.WriteFile(npmrc, []byte("registry=https://npm.corp.example/\n@myco:registry=http://npm.myco.example:8080/\n"), 0o600)
	emptyFile := filepath.Join(home, "empty.conf")
	os.WriteFile(emptyFile, nil, 0o600)
	os.WriteFile(emptyFile+"2", nil, 0o600)
	pipConf := filepath.Join(home, "pip.conf")
	os.WriteFile(pipConf, []byte("[global]\nindex-url = https://pypi.corp.example/simple\nextra-index-url =\n    https://extra.corp.example/simple\n"), 0o600)

	tests := []struct {
		name string
		tool string
		env  []string
		drop []string
		want []string
	}{
		{
			name: "go defaults come from go env",
			tool: "go", drop: []string{"GOPROXY", "GOSUMDB", "GOENV"}, env: []string{"GOENV=off"},
			want: []string{"proxy.golang.org:443", "sum.golang.org:443"},
		},
		{
			name: "go mirror chain and sumdb URL",
			tool: "go", drop: []string{"GOPROXY", "GOSUMDB", "GOENV"},
			env:  []string{"GOENV=off", "GOPROXY=https://goproxy.corp.example/mod|http://fallback.corp.example:3000,direct", "GOSUMDB=sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8 https://sumproxy.corp.example/"},
			want: []string{"goproxy.corp.example:443", "fallback.corp.example:3000", "sumproxy.corp.example:443"},
		},
		{
			name: "go off and sumdb off",
			tool: "go", drop: []string{"GOPROXY", "GOSUMDB", "GOENV"},
			env:  []string{"GOENV=off", "GOPROXY=off", "GOSUMDB=off"},
			want: nil,
		},
		{
			name: "npm default registry",
			tool: "npm", drop: []string{"NPM_CONFIG", "npm_config"},
			env:  []string{"NPM_CONFIG_USERCONFIG=" + emptyFile, "NPM_CONFIG_GLOBALCONFIG=" + emptyFile + "2"},
			want: []string{"registry.npmjs.org:443"},
		},
		{
			name: "npm configured and scoped registries",
			tool: "npm", drop: []string{"NPM_CONFIG", "npm_config"},
			env:  []string{"NPM_CONFIG_USERCONFIG=" + npmrc, "NPM_CONFIG_GLOBALCONFIG=" + emptyFile + "2"},
			want: []string{"npm.myco.example:8080", "npm.corp.example:443"},
		},
		{
			name: "pip configured index replaces PyPI",
			tool: "pip", drop: []string{"PIP_"},
			env:  []string{"PIP_CONFIG_FILE=" + pipConf},
			want: []string{"pypi.corp.example:443", "extra.corp.example:443"},
		},
		{
			name: "pip index from the environment",
			tool: "pip", drop: []string{"PIP_"},
			env:  []string{"PIP_CONFIG_FILE=/dev/null", "PIP_INDEX_URL=https://env.corp.example/simple"},
			want: []string{"env.corp.example:443"},
		},
		{
			name: "pip defaults",
			tool: "pip", drop: []string{"PIP_"},
			env:  []string{"PIP_CONFIG_FILE=/dev/null"},
			want: []string{"pypi.org:443", "files.pythonhosted.org:443"},
		},
		{
			name: "cargo replaced crates.io and extra registry",
			tool: "cargo", drop: []string{"CARGO_"},
			env:  []string{"CARGO_HOME=" + cargoHome},
			want: []string{"git.corp.example:8443", "cargo.corp.example:443"},
		},
		{
			name: "cargo defaults",
			tool: "cargo", drop: []string{"CARGO_"},
			env:  []string{"CARGO_HOME=" + filepath.Join(home, "empty")},
			want: []string{"index.crates.io:443", "static.crates.io:443"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tool != "cargo" {
				requireTool(t, tc.tool)
			}
			env := append(baseEnv(t, tc.drop...), tc.env...)
			if tc.tool == "pip" {
				env = append(env, "PIP_DISABLE_PIP_VERSION_CHECK=1")
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			got, err := RegistryGrants(ctx, tc.tool, env)
			if err != nil {
				t.Fatalf("RegistryGrants: %v", err)
			}
			if !reflect.DeepEqual(hostsOf(got), tc.want) {
				t.Errorf("got %v, want %v", hostsOf(got), tc.want)
			}
			for _, g := range got {
				if g.Rule != "registry:"+tc.tool || len(g.Methods) != 0 {
					t.Errorf("got grant %+v, want rule registry:%s and no method limit", g, tc.tool)
				}
			}
		})
	}
}

func TestRegistryGrantsErrors(t *testing.T) {
	_, err := RegistryGrants(context.Background(), "gem", nil)
	if !errors.Is(err, ErrUnknownTool) {
		t.Errorf("got %v, want ErrUnknownTool", err)
	}
	_, err = RegistryGrants(context.Background(), "go", []string{"PATH=" + t.TempDir()})
	var re *RegistryError
	if !errors.As(err, &re) || re.Tool != "go" || !errors.Is(err, ErrRegistry) || !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("got %v, want a *RegistryError for go wrapping ErrRegistry and exec.ErrNotFound", err)
	}
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[registries\n"), 0o600)
	_, err = RegistryGrants(context.Background(), "cargo", []string{"CARGO_HOME=" + home})
	if !errors.Is(err, ErrRegistry) {
		t.Errorf("got %v for a broken cargo config, want ErrRegistry", err)
	}
}

// TestGoModDownload fetches a small real module through the proxy from the
// module proxy this machine is configured with, with grants read from the
// go command, and checks that the same command fails cleanly without them.
func TestGoModDownload(t *testing.T) {
	requireNetAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := baseEnv(t, "GOFLAGS", "GOPATH", "GOMODCACHE", "GOTOOLCHAIN")
	grants, err := RegistryGrants(ctx, "go", env)
	if err != nil {
		t.Fatalf("RegistryGrants: %v", err)
	}
	if len(grants) == 0 {
		t.Skip("the go command is configured with GOPROXY=direct or off; nothing to fetch through a proxy")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "golang.org/x/text@v0.3.0"
	fetch := func(t *testing.T, grants []Grant) (string, string, Stats, error) {
		p, refused := startProxy(t, Config{Grants: grants, Dialer: realDialer})
		tmp := t.TempDir()
		out, errOut, err := runInside(t, p, []string{
			"GOPATH=" + tmp, "GOMODCACHE=" + filepath.Join(tmp, "mod"), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local",
		}, goBin, "mod", "download", "-json", module)
		s := p.Close()
		return out, errOut + refused.String(), s, err
	}

	t.Run("granted", func(t *testing.T) {
		out, errOut, stats, err := fetch(t, grants)
		if err != nil {
			t.Fatalf("go mod download: %v\n%s\n%s", err, out, errOut)
		}
		var res struct{ Zip, Error string }
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Error != "" {
			t.Fatalf("go mod download -json: %v %q", err, out)
		}
		if fi, err := os.Stat(res.Zip); err != nil || fi.Size() == 0 {
			t.Errorf("module zip %q: %v", res.Zip, err)
		}
		var down int64
		for _, c := range stats.Connections {
			if c.Allowed && c.Rule == "registry:go" {
				down += c.BytesDown
			}
		}
		if down == 0 {
			t.Errorf("got no bytes recorded from the registry in %+v", stats.Connections)
		}
	})
	t.Run("not granted", func(t *testing.T) {
		out, errOut, stats, err := fetch(t, nil)
		if err == nil {
			t.Fatalf("go mod download succeeded without a grant: %s", out)
		}
		if !strings.Contains(errOut, "agentexec: network: refused CONNECT "+grants[0].Host+":443 (no grant") {
			t.Errorf("got stderr %q, want the refusal line for %s", errOut, grants[0].Host)
		}
		for _, c := range stats.Connections {
			if c.Allowed {
				t.Errorf("got an allowed connection %+v without grants", c)
			}
		}
	})
}
