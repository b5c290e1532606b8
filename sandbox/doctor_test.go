package sandbox

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDoctorThisHost(t *testing.T) {
	needContainers(t)
	r := Doctor(DoctorOptions{})
	if !r.Ready() {
		var b bytes.Buffer
		r.WriteText(&b)
		t.Fatalf("got a host that cannot run the sandbox, but the container tests run here:\n%s", b.String())
	}
	for _, name := range []string{"namespaces", "user namespaces", "seccomp", "libseccomp", "cgroups", "landlock", "idmapped mounts"} {
		found := false
		for _, f := range r.Findings {
			found = found || f.Name == name
		}
		if !found {
			t.Errorf("got no %q finding, want one", name)
		}
	}
}

// fakeProc copies the parts of /proc Doctor reads, minus what a case
// removes, so a missing capability can be forced.
func fakeProc(t *testing.T, drop []string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for _, ns := range []string{"mnt", "pid", "ipc", "uts", "net", "user"} {
		if err := os.MkdirAll(filepath.Join(dir, "self/ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if !contains(drop, "ns/"+ns) {
			os.WriteFile(filepath.Join(dir, "self/ns", ns), nil, 0o644)
		}
	}
	base := map[string]string{
		"self/status":                      "Name:\tx\nSeccomp:\t0\n",
		"sys/kernel/seccomp/actions_avail": "kill_process kill_thread trap errno user_notif trace log allow",
		"sys/user/max_user_namespaces":     "1000",
		"sys/kernel/osrelease":             "6.1.0",
	}
	for k, v := range files {
		base[k] = v
	}
	for k, v := range base {
		p := filepath.Join(dir, k)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDoctorForcedFailures(t *testing.T) {
	tests := []struct {
		name     string
		drop     []string
		files    map[string]string
		finding  string
		wantFix  string
		required bool
	}{
		{"no user namespaces", []string{"ns/user"}, nil, "namespaces", "CONFIG_USER_NS", true},
		{"user namespaces switched off", nil, map[string]string{"sys/user/max_user_namespaces": "0"}, "user namespaces", "max_user_namespaces", true},
		{"no seccomp", nil, map[string]string{"self/status": "Name:\tx\n", "sys/kernel/seccomp/actions_avail": ""}, "seccomp", "CONFIG_SECCOMP_FILTER", true},
	}
	if os.Geteuid() == 0 {
		tests = append(tests, struct {
			name     string
			drop     []string
			files    map[string]string
			finding  string
			wantFix  string
			required bool
		}{"old kernel", nil, map[string]string{"sys/kernel/osrelease": "5.4.0"}, "idmapped mounts", "5.12", true})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Doctor(DoctorOptions{ProcRoot: fakeProc(t, tt.drop, tt.files)})
			var got *Finding
			for i := range r.Findings {
				if r.Findings[i].Name == tt.finding {
					got = &r.Findings[i]
				}
			}
			if got == nil || got.OK || got.Required != tt.required {
				t.Fatalf("got finding %+v, want %q failing with required=%v", got, tt.finding, tt.required)
			}
			if !strings.Contains(got.Fix, tt.wantFix) {
				t.Errorf("got fix %q, want it to mention %q", got.Fix, tt.wantFix)
			}
			if r.Ready() {
				t.Errorf("got Ready() true with %q missing", tt.finding)
			}
			var b bytes.Buffer
			if err := r.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if !strings.Contains(out, "MISSING   "+tt.finding+":") || !strings.Contains(out, "fix: ") || !strings.Contains(out, "cannot run on this host") {
				t.Errorf("got report\n%s\nwant a MISSING line for %q, its fix and the verdict", out, tt.finding)
			}
		})
	}
}

func TestDoctorCgroupsMissing(t *testing.T) {
	cg := t.TempDir() // a plain directory: no controllers at all
	r := Doctor(DoctorOptions{CgroupRoot: cg})
	for _, f := range r.Findings {
		if f.Name == "cgroups" {
			if f.OK || !strings.Contains(f.Detail, "missing: memory, pids, cpu") || f.Required {
				t.Errorf("got %+v, want a not-required failure naming memory, pids and cpu", f)
			}
			return
		}
	}
	t.Fatal("no cgroups finding")
}
