package e2etest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agentexec/agentexec/audit"
)

// hostServer is an HTTP server on the host's loopback that counts the
// requests it got.
type hostServer struct {
	*httptest.Server
	hits atomic.Int32
	port string
}

func newHostServer(t *testing.T, body string) *hostServer {
	t.Helper()
	s := &hostServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = strings.Cut(strings.TrimPrefix(s.URL, "http://"), ":")
	return s
}

// lastEnd returns the end record of the last command.
func lastEnd(t *testing.T, e *env) audit.Record {
	t.Helper()
	ends := kind(e.records(), "command.end")
	if len(ends) == 0 {
		t.Fatal("got no end record")
	}
	return ends[len(ends)-1]
}

// TestNetworkGrant: a command granted one destination reaches it through
// the egress proxy, and the end record says so with the bytes moved;
// anything else is refused with one line on stderr.
func TestNetworkGrant(t *testing.T) {
	e := newEnv(t)
	granted := newHostServer(t, "hello from the host\n")
	other := newHostServer(t, "you should not see this\n")
	pol := e.policy(fmt.Sprintf(`version: 1
rules:
  - id: curl-api
    verdict: allow
    program: curl
    reason: the test API on this host
    grants: {network: ["127.0.0.1:%s"]}
`, granted.port))

	t.Run("granted", func(t *testing.T) {
		// --noproxy '': NO_PROXY lists 127.0.0.1 for the sandbox's own
		// loopback; this request is for the host's, through the proxy.
		r := e.run("--policy", pol, "-c", "curl --noproxy '' -sS "+granted.URL+"/")
		if r.code != 0 || r.stdout != "hello from the host\n" {
			t.Fatalf("got %s, want exit 0 and the server's greeting", r)
		}
		if r.stderr != "" {
			t.Errorf("got stderr %q, want none", r.stderr)
		}
		end := lastEnd(t, e)
		if len(end.Network) != 1 {
			t.Fatalf("end record: got network %+v, want one connection", end.Network)
		}
		c := end.Network[0]
		if c.Host != "127.0.0.1" || fmt.Sprint(c.Port) != granted.port || c.Verdict != "allowed" || c.Rule != "curl-api" {
			t.Errorf("end record: got connection %+v, want 127.0.0.1:%s allowed by curl-api", c, granted.port)
		}
		if c.BytesOut == 0 || c.BytesIn < int64(len("hello from the host\n")) {
			t.Errorf("end record: got %d bytes out, %d in, want a request out and at least the body in", c.BytesOut, c.BytesIn)
		}
	})

	t.Run("plain curl", func(t *testing.T) {
		r := e.run("--policy", pol, "-c", "curl -sS "+granted.URL+"/")
		if r.code != 0 || r.stdout != "hello from the host\n" {
			t.Fatalf("got %s, want exit 0 and the server's greeting", r)
		}
	})

	t.Run("ungranted destination", func(t *testing.T) {
		r := e.run("--policy", pol, "-c", "curl --noproxy '' -sS -o /dev/null -w '%{http_code}' "+other.URL+"/")
		if r.stdout != "403" {
			t.Errorf("got status %q, want 403 from the proxy\n%s", r.stdout, r)
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		want := "agentexec: network: refused GET 127.0.0.1:" + other.port + " "
		if len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
			t.Errorf("got stderr %q, want one line starting %q", r.stderr, want)
		}
		end := lastEnd(t, e)
		if len(end.Network) != 1 || end.Network[0].Verdict != "refused" || fmt.Sprint(end.Network[0].Port) != other.port {
			t.Errorf("end record: got network %+v, want one refused connection to port %s", end.Network, other.port)
		}
	})

	t.Run("around the proxy", func(t *testing.T) {
		// -f: the proxy listens on a port of its own choosing in the
		// sandbox's namespace, which can be the number of a host server's
		// port; a direct request that lands on it gets an error status,
		// and must count as a failure too (the hit counts below say that
		// no server was reached).
		for _, line := range []string{
			"curl --noproxy '*' -fsS --max-time 10 " + granted.URL + "/",
			"curl --noproxy '*' -fsS --max-time 10 " + other.URL + "/",
		} {
			r := e.run("--policy", pol, "-c", line)
			if r.code == 0 {
				t.Errorf("%s: got exit 0, want a failure to connect\n%s", line, r)
			}
		}
	})

	if n := other.hits.Load(); n != 0 {
		t.Errorf("the ungranted server got %d requests, want 0", n)
	}
	if n := granted.hits.Load(); n < 1 {
		t.Errorf("the granted server got %d requests, want at least 1", n)
	}
}

// TestNetworkNone: a command whose rules grant no destination has no
// proxy variables and cannot connect anywhere, not even to the host's
// loopback.
func TestNetworkNone(t *testing.T) {
	e := newEnv(t)
	srv := newHostServer(t, "hello\n")
	pol := e.policy(`version: 1
rules:
  - {id: curl, verdict: allow, program: curl, reason: fetches}
  - {id: env, verdict: allow, program: env, reason: shows the environment}
`)
	r := e.run("--policy", pol, "-c", "env")
	if r.code != 0 {
		t.Fatalf("env: %s", r)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		name, _, _ := strings.Cut(line, "=")
		if strings.Contains(strings.ToLower(name), "proxy") {
			t.Errorf("env: got %q, want no proxy variable without a network grant", line)
		}
	}
	r = e.run("--policy", pol, "-c", "curl -sS --max-time 10 "+srv.URL+"/")
	if r.code == 0 || r.stdout != "" {
		t.Errorf("curl without a grant: got %s, want a failure to connect", r)
	}
	if n := srv.hits.Load(); n != 0 {
		t.Errorf("the server got %d requests, want 0", n)
	}
	end := lastEnd(t, e)
	if len(end.Network) != 0 || end.Sandbox == nil || end.Sandbox.Network == "proxy" {
		t.Errorf("end record: got network %+v, sandbox %+v, want no connections and no proxy", end.Network, end.Sandbox)
	}
}
