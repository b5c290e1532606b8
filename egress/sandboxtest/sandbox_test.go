package sandboxtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentexec/agentexec/egress"
	"github.com/agentexec/agentexec/egress/internal/egresstest"
	"github.com/agentexec/agentexec/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.MaybeInit()
	os.Exit(m.Run())
}

const helloBody = "hello from the test host"

// dnsProbe sends one DNS query to each resolver in /etc/resolv.conf (the
// host's, as the sandbox sees it) and succeeds if any answers.
const dnsProbe = `python3 - <<'EOF'
import socket, sys
q = bytes.fromhex("123401000001000000000000076578616d706c6503636f6d0000010001")
servers = [l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")] or ["127.0.0.1"]
for ns in servers:
    s = socket.socket(socket.AF_INET6 if ":" in ns else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        s.sendto(q, (ns, 53))
        s.recv(512)
        print("answered by", ns)
        sys.exit(0)
    except OSError as e:
        print(ns, e.strerror or e)
sys.exit(1)
EOF`

// runSandboxed runs a shell line in a fresh sandbox joined to the proxy's
// namespace with the proxy's environment, as exec does for a command with
// network grants.
func runSandboxed(t *testing.T, p *egress.Proxy, ws string, extra []string, script string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := append([]string{"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin", "LANG=C", "HOME=" + ws}, p.Env()...)
	res, err := sandbox.Run(context.Background(), sandbox.Spec{
		Argv:      []string{"/bin/sh", "-c", script},
		Env:       append(env, extra...),
		Workspace: ws,
		NetNS:     p.NetNSPath(),
		Stdout:    &out,
		Stderr:    &errb,
		Timeout:   2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("sandbox.Run(%q): %v", script, err)
	}
	return out.String(), errb.String(), res.ExitCode
}

func start(t *testing.T, cfg egress.Config) (*egress.Proxy, *egresstest.SyncBuffer) {
	t.Helper()
	egresstest.RequireNetAdmin(t)
	refused := &egresstest.SyncBuffer{}
	cfg.Refused = refused
	p, err := egress.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, refused
}

// TestCurlInSandbox: a sandboxed curl reaches the granted host through the
// proxy, is refused elsewhere, and has no route when it ignores the proxy.
func TestCurlInSandbox(t *testing.T) {
	host := egresstest.NewHost(t)
	ws := t.TempDir()
	os.Chmod(ws, 0o755)
	cert := egresstest.NewCert(t, ws, "api.test", "other.test")
	egresstest.Serve(t, host.Listen(t, 443), &tls.Config{Certificates: []tls.Certificate{cert.TLS}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, helloBody) }))
	dns := egresstest.Resolver{"api.test": {host.Addr.String()}, "other.test": {host.Addr.String()}}
	p, refused := start(t, egress.Config{
		Grants:   []egress.Grant{{Host: "api.test", Rule: "api"}},
		Resolver: dns,
		Dialer:   egresstest.GuardDialer,
	})
	curl := "curl -fsS --max-time 20 --cacert " + cert.CAFile + " "
	tests := []struct {
		name, script string
		ok           bool
	}{
		{"granted", curl + "https://api.test/", true},
		{"not granted", curl + "https://other.test/", false},
		{"proxy ignored", curl + "--noproxy '*' https://api.test/", false},
		{"proxy ignored with a known address", curl + "--noproxy '*' --resolve api.test:443:" + host.Addr.String() + " https://api.test/", false},
		{"dns lookup", "getent hosts api.test || getent hosts example.com", false},
		{"dns query to the host's resolver", dnsProbe, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runSandboxed(t, p, ws, nil, tc.script)
			if got := code == 0; got != tc.ok {
				t.Fatalf("got exit %d (stdout %q, stderr %q), want success=%v", code, out, errOut, tc.ok)
			}
			if tc.ok && out != helloBody {
				t.Errorf("got %q, want %q", out, helloBody)
			}
			if tc.script == dnsProbe && !strings.Contains(out+errOut, "unreachable") && !strings.Contains(out+errOut, "refused") {
				t.Errorf("got %q %q from the DNS probe, want no route (or nothing listening on loopback)", out, errOut)
			}
			if !tc.ok && strings.Contains(out, helloBody) {
				t.Errorf("got the test host's answer %q from a refused command", out)
			}
		})
	}
	stats := p.Close()
	var hosts []string
	for _, c := range stats.Connections {
		hosts = append(hosts, fmt.Sprintf("%s:%d allowed=%v", c.Host, c.Port, c.Allowed))
	}
	want := []string{"api.test:443 allowed=true", "other.test:443 allowed=false"}
	if strings.Join(hosts, ",") != strings.Join(want, ",") {
		t.Errorf("got records %v, want %v", hosts, want)
	}
	if !strings.Contains(refused.String(), "agentexec: network: refused CONNECT other.test:443 (no grant; a rule would need network: [other.test:443])") {
		t.Errorf("got refusal output %q", refused.String())
	}
}

// TestGoModDownloadInSandbox fetches a small real module inside the
// sandbox through the grant read from the go command's configuration,
// against the module proxy this machine is configured with, and checks
// that it fails cleanly without the grant.
func TestGoModDownloadInSandbox(t *testing.T) {
	egresstest.RequireNetAdmin(t)
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	grants, err := egress.RegistryGrants(ctx, "go", egresstest.CleanEnv())
	if err != nil {
		t.Fatalf("RegistryGrants: %v", err)
	}
	if len(grants) == 0 {
		t.Skip("the go command is configured with GOPROXY=direct or off; nothing to fetch through a proxy")
	}
	var goproxy string
	if out, err := exec.Command(goBin, "env", "GOPROXY", "GOSUMDB").Output(); err == nil {
		f := strings.Split(strings.TrimSpace(string(out)), "\n")
		goproxy = "GOPROXY=" + f[0]
		if len(f) > 1 {
			goproxy += "\nGOSUMDB=" + f[1]
		}
	}
	for _, tc := range []struct {
		name   string
		grants []egress.Grant
		ok     bool
	}{
		{"granted", grants, true},
		{"not granted", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, refused := start(t, egress.Config{Grants: tc.grants})
			ws := t.TempDir()
			os.Chmod(ws, 0o755)
			extra := append(strings.Split(goproxy, "\n"),
				"GOPATH="+filepath.Join(ws, "gopath"), "GOMODCACHE="+filepath.Join(ws, "mod"),
				"GOCACHE="+filepath.Join(ws, "cache"), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
			out, errOut, code := runSandboxed(t, p, ws, extra, filepath.Dir(goBin)+"/go mod download -json golang.org/x/text@v0.3.0")
			stats := p.Close()
			if !tc.ok {
				if code == 0 {
					t.Fatalf("go mod download succeeded without a grant: %s", out)
				}
				if !strings.Contains(refused.String(), "agentexec: network: refused CONNECT "+grants[0].Host+":443 (no grant") {
					t.Errorf("got refusals %q, want one for %s", refused.String(), grants[0].Host)
				}
				return
			}
			if code != 0 {
				t.Fatalf("go mod download: exit %d\n%s\n%s\nproxy: %s", code, out, errOut, refused)
			}
			var res struct{ Zip, Error string }
			if err := json.Unmarshal([]byte(out), &res); err != nil || res.Error != "" {
				t.Fatalf("go mod download -json: %v %q", err, out)
			}
			if fi, err := os.Stat(res.Zip); err != nil || fi.Size() == 0 {
				t.Errorf("module zip %q: %v", res.Zip, err)
			}
			contacted := false
			for _, c := range stats.Connections {
				contacted = contacted || c.Allowed && c.BytesDown > 0
			}
			if !contacted {
				t.Errorf("got no allowed destination with bytes in %+v", stats.Connections)
			}
		})
	}
}
