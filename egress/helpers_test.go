package egress

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/agentexec/agentexec/egress/internal/egresstest"
)

// Short names for the shared fixtures.
var (
	requireNetAdmin = egresstest.RequireNetAdmin
	inNamespace     = egresstest.InNamespace
	newTestHost     = egresstest.NewHost
	serve           = egresstest.Serve
	guardDialer     = egresstest.GuardDialer
	cleanEnv        = egresstest.CleanEnv
)

type (
	mapResolver = egresstest.Resolver
	syncBuffer  = egresstest.SyncBuffer
)

func newTestCert(t testing.TB, names ...string) *egresstest.Cert {
	t.Helper()
	return egresstest.NewCert(t, "", names...)
}

// startProxy starts a proxy whose upstream dials cannot leave the machine
// (unless cfg says otherwise) and closes it when the test ends.
func startProxy(t *testing.T, cfg Config) (*Proxy, *syncBuffer) {
	t.Helper()
	requireNetAdmin(t)
	refused := &syncBuffer{}
	if cfg.Dialer == nil {
		cfg.Dialer = guardDialer
	}
	if cfg.Refused == nil {
		cfg.Refused = refused
	}
	p, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p, refused
}

// runInside runs argv inside the proxy's namespace with the proxy's
// environment (plus extra), as a sandboxed command would run.
func runInside(t *testing.T, p *Proxy, extra []string, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + p.NetNSPath(), "--"}, argv...)...)
	cmd.Env = append(append(cleanEnv(), p.Env()...), extra...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// dialInside opens a TCP connection from inside the proxy's namespace.
func dialInside(t *testing.T, p *Proxy, addr string) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := inNamespace(t, p.NetNSPath(), func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	return c, err
}

// findRecord finds the latest record for host.
func findRecord(s Stats, host string) (Connection, bool) {
	for i := len(s.Connections) - 1; i >= 0; i-- {
		if s.Connections[i].Host == host {
			return s.Connections[i], true
		}
	}
	return Connection{}, false
}

// realDialer is for the one test that reaches the machine's configured Go
// module proxy.
func realDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
