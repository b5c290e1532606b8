// Package egresstest builds the network fixtures the egress tests share:
// test hosts in network namespaces the test creates itself, a certificate
// for their names, a fixed name map in place of DNS, and a dialer that
// refuses to leave this machine. Traffic from these fixtures goes only to
// loopback or to a test host behind a veth pair.
package egresstest

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

// RequireNetAdmin skips, with the reason, only where this host truly
// cannot give a test its own network namespaces. On our machines and in
// CI the tests run as root and must not skip.
func RequireNetAdmin(t testing.TB) {
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

// InNamespace runs f on a fresh locked thread that joined the network
// namespace at path; sockets f creates belong to that namespace. The
// thread is never unlocked, so the runtime discards it afterwards.
func InNamespace(t testing.TB, path string, f func() error) error {
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

// Host is a network namespace the test created, joined to the host's
// namespace by a veth pair, with an address from the documentation prefix
// 198.51.100.0/24 that is routed only over that pair.
type Host struct {
	Name string
	Path string
	Addr netip.Addr
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewHost creates a test host; it is removed when the test ends.
func NewHost(t testing.TB) *Host {
	t.Helper()
	RequireNetAdmin(t)
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
	return &Host{Name: name, Path: "/run/netns/" + name, Addr: remote}
}

// Listen opens a TCP listener on the test host.
func (h *Host) Listen(t testing.TB, port int) net.Listener {
	t.Helper()
	var ln net.Listener
	err := InNamespace(t, h.Path, func() error {
		var err error
		ln, err = net.Listen("tcp4", net.JoinHostPort(h.Addr.String(), fmt.Sprint(port)))
		return err
	})
	if err != nil {
		t.Fatalf("listening on test host: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Serve runs handler on ln (with TLS when cfg is set) until the test ends.
func Serve(t testing.TB, ln net.Listener, cfg *tls.Config, handler http.Handler) {
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

// Cert is a self-signed certificate that is its own root.
type Cert struct {
	TLS    tls.Certificate
	Pool   *x509.CertPool
	CAFile string // PEM, for curl --cacert
}

// NewCert makes a certificate for names; CAFile lies in dir (a temporary
// directory when dir is "").
func NewCert(t testing.TB, dir string, names ...string) *Cert {
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
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Cert{TLS: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, Pool: pool, CAFile: path}
}

// Resolver is the tests' DNS: a fixed name-to-address map.
type Resolver map[string][]string

// LookupIP answers from the map.
func (m Resolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
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

// GuardDialer is the upstream dialer of every test proxy that has no
// reason to leave this machine: it dials only loopback and the test hosts'
// prefix (routed over the tests' veth pairs), so even a broken proxy under
// test cannot send a packet anywhere else.
func GuardDialer(ctx context.Context, network, addr string) (net.Conn, error) {
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

// SyncBuffer collects output written from several goroutines.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// CleanEnv is the test process's environment without any proxy settings,
// so that only what a test adds points anywhere.
func CleanEnv() []string {
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
