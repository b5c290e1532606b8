package egress

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"

	"fmt"
	"io"
	"log"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// requireNetAdmin skips, with the reason, only where this host truly
// cannot give a test its own network namespaces. On our machines and in
// CI the tests run as root and must not skip.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	netAdminOnce.Do(func() {
		if os.Geteuid() != 0 {
			netAdminReason = "needs root to create network namespaces"
			return
		}
		for _, tool := range []string{"ip", "nsenter", "curl"} {
			if _, err := exec.LookPath(tool); err != nil {
				netAdminReason = fmt.Sprintf("needs %s (iproute2, util-linux, curl)", tool)
				return
			}
		}
	})
	if netAdminReason != "" {
		t.Skip(netAdminReason)
	}
}

var (
	netAdminOnce   sync.Once
	netAdminReason string
)

// inNamespace runs f on a fresh locked thread that joined the network
// namespace at path; sockets f creates belong to that namespace. The
// thread is never unlocked, so the runtime discards it afterwards.
func inNamespace(t *testing.T, path string, f func() error) error {
	t.Helper()
	ns, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening namespace %s: %v", path, err)
	}
	defer ns.Close()
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// testHost is a network namespace the test creates, joined to the host's
// namespace by a veth pair, with an address from the documentation prefix
// 198.51.100.0/24 that is routed only over that pair.
type testHost struct {
	name string
	path string
	addr netip.Addr
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newTestHost(t *testing.T) *testHost {
	t.Helper()
	requireNetAdmin(t)
	id := mrand.IntN(1 << 20)
	name := fmt.Sprintf("aeegress%d", id)
	hostIf, peerIf := fmt.Sprintf("aeh%d", id), fmt.Sprintf("aep%d", id)
	block := 4 * mrand.IntN(64)
	local := netip.AddrFrom4([4]byte{198, 51, 100, byte(block + 1)})
	remote := netip.AddrFrom4([4]byte{198, 51, 100, byte(block + 2)})

	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", name)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostIf).Run() })
	run(t, "ip", "addr", "add", local.String()+"/30", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "-n", name, "addr", "add", remote.String()+"/30", "dev", peerIf)
	run(t, "ip", "-n", name, "link", "set", peerIf, "up")
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	// Never send a packet to the test address unless the kernel routes it
	// over the pair: anything else would leave this machine.
	if route := run(t, "ip", "route", "get", remote.String()); !strings.Contains(route, "dev "+hostIf) {
		t.Fatalf("route to test host %s is not over %s:\n%s", remote, hostIf, route)
	}
	return &testHost{name: name, path: "/run/netns/" + name, addr: remote}
}

// listen opens a TCP listener on the test host.
func (h *testHost) listen(t *testing.T, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNamespace(t, h.path, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(h.addr.String(), fmt.Sprint(port)))
		return err
	})
	if err != nil {
		t.Fatalf("listening on test host: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serve runs handler on ln until the test ends.
func serve(t *testing.T, ln net.Listener, cfg *tls.Config, handler http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: handler, TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() {
		if cfg != nil {
			srv.ServeTLS(ln, "", "")
		} else {
			srv.Serve(ln)
		}
	}()
	t.Cleanup(func() { srv.Close() })
}

// testCert is a self-signed certificate that is its own root, for the
// names the tests use.
type testCert struct {
	tls    tls.Certificate
	pool   *x509.CertPool
	pemCA  string // path of the PEM file, for curl --cacert
	leafDN []string
}

func newTestCert(t testing.TB, names ...string) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "egress test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		DNSNames:              names,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCert{
		tls:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pool:   pool,
		pemCA:  path,
		leafDN: names,
	}
}

// mapResolver is the test's DNS: a fixed name-to-address map.
type mapResolver map[string][]string

func (m mapResolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	addrs, ok := m[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var ips []net.IP
	for _, a := range addrs {
		ips = append(ips, net.ParseIP(a))
	}
	return ips, nil
}

// syncBuffer collects the proxy's refusal lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startProxy starts a proxy and closes it when the test ends.
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

// cleanEnv is the test process's environment without any proxy settings,
// so that only what the test adds points anywhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		lk := strings.ToLower(k)
		if strings.HasSuffix(lk, "_proxy") || strings.HasPrefix(lk, "npm_config_") || strings.HasPrefix(k, "GIT_CONFIG") || k == "PIP_PROXY" {
			continue
		}
		env = append(env, kv)
	}
	return env
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

// lastRecord finds the latest record for host.
func findRecord(s Stats, host string) (Connection, bool) {
	for i := len(s.Connections) - 1; i >= 0; i-- {
		if s.Connections[i].Host == host {
			return s.Connections[i], true
		}
	}
	return Connection{}, false
}

// guardDialer is the upstream dialer of every test proxy that has no
// reason to leave this machine: it dials only loopback and the test hosts'
// documentation prefix (routed over the tests' veth pairs), so even a
// broken proxy under test cannot send a packet anywhere else.
func guardDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("test guard: %q is not a checked address: %w", addr, err)
	}
	a := ap.Addr().Unmap()
	if !netip.MustParsePrefix("127.0.0.0/8").Contains(a) && !netip.MustParsePrefix("198.51.100.0/24").Contains(a) {
		return nil, fmt.Errorf("test guard: refusing to dial %s from a test", addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// realDialer is for the one test that reaches the machine's configured Go
// module proxy.
func realDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
