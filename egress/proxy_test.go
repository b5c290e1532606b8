package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentexec/agentexec/egress/internal/egresstest"
)

// webFixture is a test host serving HTTPS on 443 and HTTP on 80 with a
// certificate for every name the tests use, and a resolver mapping those
// names to it.
type webFixture struct {
	host *egresstest.Host
	cert *egresstest.Cert
	dns  mapResolver
}

const helloBody = "hello from the test host"

func newWeb(t *testing.T) *webFixture {
	t.Helper()
	h := newTestHost(t)
	names := []string{"api.test", "other.test", "example.com", "sub.example.com", "a.b.example.com", "evilexample.com"}
	cert := newTestCert(t, names...)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
			io.Copy(c, brw)
			return
		}
		if r.URL.Path == "/big" {
			w.Write(make([]byte, 1<<20))
			return
		}
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %s", helloBody, r.Method, r.Host)
	})
	serve(t, h.Listen(t, 443), &tls.Config{Certificates: []tls.Certificate{cert.TLS}}, handler)
	serve(t, h.Listen(t, 80), nil, handler)
	dns := mapResolver{
		"loopback.test":  {"127.0.0.1"},
		"metadata.test":  {"169.254.169.254"},
		"private.test":   {"10.1.2.3"},
		"rebinding.test": {h.Addr.String(), "127.0.0.1"},
		"v6meta.test":    {"fd00:ec2::254"},
	}
	for _, n := range names {
		dns[n] = []string{h.Addr.String()}
	}
	return &webFixture{host: h, cert: cert, dns: dns}
}

func (w *webFixture) curl(t *testing.T, p *Proxy, args ...string) (string, string, error) {
	t.Helper()
	argv := append([]string{"curl", "-fsS", "--max-time", "20", "--cacert", w.cert.CAFile}, args...)
	return runInside(t, p, nil, argv...)
}

// TestCurlThroughProxy is the acceptance table: what a program inside the
// proxy's namespace can and cannot reach, what it is told, and what the
// proxy records.
func TestCurlThroughProxy(t *testing.T) {
	web := newWeb(t)
	tests := []struct {
		name   string
		grants []Grant
		args   []string
		ok     bool
		host   string // recorded destination
		stderr string // regexp the refusal line must match
	}{
		{
			name:   "granted https",
			grants: []Grant{{Host: "api.test", Rule: "api"}},
			args:   []string{"https://api.test/"},
			ok:     true, host: "api.test",
		},
		{
			name:   "ungranted https",
			grants: []Grant{{Host: "api.test", Rule: "api"}},
			args:   []string{"https://other.test/"},
			host:   "other.test",
			stderr: `agentexec: network: refused CONNECT other\.test:443 \(no grant; a rule would need network: \[other\.test:443\]\)`,
		},
		{
			name:   "granted plain http",
			grants: []Grant{{Host: "api.test"}},
			args:   []string{"http://api.test/"},
			ok:     true, host: "api.test",
		},
		{
			name:   "wildcard allows a subdomain",
			grants: []Grant{{Host: "*.example.com", Rule: "ex"}},
			args:   []string{"https://sub.example.com/"},
			ok:     true, host: "sub.example.com",
		},
		{
			name:   "wildcard allows a deeper subdomain",
			grants: []Grant{{Host: "*.example.com", Rule: "ex"}},
			args:   []string{"https://a.b.example.com/"},
			ok:     true, host: "a.b.example.com",
		},
		{
			name:   "wildcard refuses the look-alike",
			grants: []Grant{{Host: "*.example.com", Rule: "ex"}},
			args:   []string{"https://evilexample.com/"},
			host:   "evilexample.com",
			stderr: `refused CONNECT evilexample\.com:443 \(no grant`,
		},
		{
			name:   "wildcard refuses the bare domain",
			grants: []Grant{{Host: "*.example.com", Rule: "ex"}},
			args:   []string{"https://example.com/"},
			host:   "example.com",
			stderr: `refused CONNECT example\.com:443 \(no grant`,
		},
		{
			name:   "granted name resolving to loopback",
			grants: []Grant{{Host: "loopback.test", Rule: "lb"}},
			args:   []string{"https://loopback.test/"},
			host:   "loopback.test",
			stderr: `refused CONNECT loopback\.test:443 \(loopback\.test resolves to 127\.0\.0\.1, a loopback address; a rule would need network: \[127\.0\.0\.1:443\]\)`,
		},
		{
			name:   "granted name resolving to cloud metadata",
			grants: []Grant{{Host: "metadata.test"}},
			args:   []string{"http://metadata.test/latest/meta-data/"},
			host:   "metadata.test",
			stderr: `refused GET metadata\.test:80 \(metadata\.test resolves to 169\.254\.169\.254, a cloud metadata address`,
		},
		{
			name:   "granted name resolving to IPv6 metadata",
			grants: []Grant{{Host: "v6meta.test"}},
			args:   []string{"https://v6meta.test/"},
			host:   "v6meta.test",
			stderr: `resolves to fd00:ec2::254, a cloud metadata address`,
		},
		{
			name:   "granted name resolving to a private address",
			grants: []Grant{{Host: "private.test"}},
			args:   []string{"https://private.test/"},
			host:   "private.test",
			stderr: `resolves to 10\.1\.2\.3, a private address`,
		},
		{
			name:   "one internal address among public ones",
			grants: []Grant{{Host: "rebinding.test"}},
			args:   []string{"https://rebinding.test/"},
			host:   "rebinding.test",
			stderr: `resolves to 127\.0\.0\.1, a loopback address`,
		},
		{
			name:   "metadata address literal",
			grants: []Grant{{Any: true, Name: "everything"}},
			args:   []string{"http://169.254.169.254/latest/meta-data/"},
			host:   "169.254.169.254",
			stderr: `refused GET 169\.254\.169\.254:80 \(169\.254\.169\.254 is a cloud metadata address; a rule would need network: \[169\.254\.169\.254:80\]\)`,
		},
		{
			name:   "port not granted",
			grants: []Grant{{Host: "api.test", Ports: []int{443}, Rule: "api"}},
			args:   []string{"http://api.test/"},
			host:   "api.test",
			stderr: `refused GET api\.test:80 \(rule "api" \(api\.test\) allows ports 443 only; a rule would need network: \[api\.test:80\]\)`,
		},
		{
			name:   "method limited grant allows GET",
			grants: []Grant{{Host: "api.test", Methods: []string{"get"}}},
			args:   []string{"http://api.test/"},
			ok:     true, host: "api.test",
		},
		{
			name:   "method limited grant refuses POST",
			grants: []Grant{{Host: "api.test", Methods: []string{"GET"}, Rule: "ro"}},
			args:   []string{"-d", "secret=1", "http://api.test/"},
			host:   "api.test",
			stderr: `refused POST api\.test:80 \(rule "ro" \(api\.test\) allows only GET; a rule would need network: \[api\.test:80\] with methods: \[POST\]\)`,
		},
		{
			name:   "method limited grant refuses a tunnel",
			grants: []Grant{{Host: "api.test", Methods: []string{"GET"}, Rule: "ro"}},
			args:   []string{"https://api.test/"},
			host:   "api.test",
			stderr: `refused CONNECT api\.test:443 \(rule "ro" \(api\.test\) allows only GET; an HTTPS tunnel hides the method`,
		},
		{
			name:   "method limited grant listing CONNECT allows a tunnel",
			grants: []Grant{{Host: "api.test", Methods: []string{"GET", "CONNECT"}}},
			args:   []string{"https://api.test/"},
			ok:     true, host: "api.test",
		},
		{
			name:   "any grant reaches a public name",
			grants: []Grant{{Any: true, Name: "open"}},
			args:   []string{"https://other.test/"},
			ok:     true, host: "other.test",
		},
		{
			name:   "unknown name",
			grants: []Grant{{Host: "nowhere.test"}},
			args:   []string{"https://nowhere.test/"},
			host:   "nowhere.test",
			stderr: `agentexec: network: CONNECT nowhere\.test:443 failed \(cannot resolve nowhere\.test`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, refused := startProxy(t, Config{Grants: tc.grants, Resolver: web.dns})
			out, errOut, err := web.curl(t, p, tc.args...)
			stats := p.Close()
			if tc.ok {
				if err != nil {
					t.Fatalf("curl %v: %v\nstderr: %s\nproxy: %s", tc.args, err, errOut, refused)
				}
				if !strings.HasPrefix(out, helloBody) {
					t.Errorf("got body %q, want it to start with %q", out, helloBody)
				}
			} else {
				if err == nil {
					t.Fatalf("curl %v succeeded with %q, want failure", tc.args, out)
				}
				if strings.Contains(out, helloBody) {
					t.Errorf("got body %q from a refused destination", out)
				}
				if !regexp.MustCompile(tc.stderr).MatchString(refused.String()) {
					t.Errorf("got refusal output %q, want a match for %q", refused.String(), tc.stderr)
				}
				if n := strings.Count(refused.String(), "\n"); n != 1 {
					t.Errorf("got %d refusal lines, want 1: %q", n, refused.String())
				}
			}
			rec, found := findRecord(stats, tc.host)
			if !found {
				t.Fatalf("no record for %s in %+v", tc.host, stats.Connections)
			}
			if rec.Allowed != tc.ok && rec.Error == "" {
				t.Errorf("got record allowed=%v, want %v: %+v", rec.Allowed, tc.ok, rec)
			}
			if tc.ok && (rec.BytesUp == 0 || rec.BytesDown == 0 || rec.Addr == "") {
				t.Errorf("got record %+v, want bytes both ways and the dialled address", rec)
			}
			if !tc.ok && rec.BytesDown != 0 {
				t.Errorf("got %d bytes down for a refused destination", rec.BytesDown)
			}
		})
	}
}

// TestNoRouteAroundProxy checks what a program that ignores the proxy
// variables gets: nothing. The test host is reachable from the host's
// namespace (the control), and not from the proxy's.
func TestNoRouteAroundProxy(t *testing.T) {
	web := newWeb(t)
	p, _ := startProxy(t, Config{Grants: []Grant{{Host: "api.test"}}, Resolver: web.dns})
	target := net.JoinHostPort(web.host.Addr.String(), "443")

	control, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		t.Fatalf("control: test host unreachable from the host namespace: %v", err)
	}
	control.Close()

	t.Run("curl --noproxy", func(t *testing.T) {
		for _, args := range [][]string{
			{"--noproxy", "*", "https://api.test/"},
			{"--noproxy", "*", "--resolve", "api.test:443:" + web.host.Addr.String(), "https://api.test/"},
		} {
			if out, errOut, err := web.curl(t, p, args...); err == nil {
				t.Errorf("curl %v: got success %q, want failure", args, out)
			} else if strings.Contains(out, helloBody) {
				t.Errorf("curl %v: got body %q (stderr %q)", args, out, errOut)
			}
		}
	})
	t.Run("raw tcp", func(t *testing.T) {
		c, err := dialInside(t, p, target)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("got %v connecting to %s from inside, want ENETUNREACH", err, target)
		}
	})
	t.Run("udp", func(t *testing.T) {
		err := inNamespace(t, p.NetNSPath(), func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(web.host.Addr.String(), "53"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("exfiltrate"))
			return err
		})
		if !errors.Is(err, syscall.ENETUNREACH) {
			t.Fatalf("got %v sending a UDP datagram to the test host from inside, want ENETUNREACH", err)
		}
	})
	t.Run("dns to the host's resolver", func(t *testing.T) {
		servers := nameservers(t)
		// Guard before sending: inside, only loopback may exist.
		ifaces := interfacesInside(t, p)
		if len(ifaces) != 1 || ifaces[0] != "lo" {
			t.Fatalf("got interfaces %v inside the proxy namespace, want only lo", ifaces)
		}
		for _, s := range servers {
			err := inNamespace(t, p.NetNSPath(), func() error {
				c, err := net.Dial("udp", net.JoinHostPort(s, "53"))
				if err != nil {
					return err
				}
				defer c.Close()
				// A standard query for example.com A.
				q := []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1}
				if _, err := c.Write(q); err != nil {
					return err
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				_, err = c.Read(make([]byte, 512))
				return err
			})
			// A remote resolver has no route; a loopback one (a local
			// stub) is the namespace's own loopback, where nothing listens.
			if !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("got %v querying %s inside the proxy namespace, want no route or nothing listening", err, s)
			}
		}
	})
}

// nameservers lists the host's configured resolvers (the system default
// when resolv.conf names none).
func nameservers(t *testing.T) []string {
	t.Helper()
	var out []string
	b, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1", "::1"}
	}
	return out
}

func interfacesInside(t *testing.T, p *Proxy) []string {
	t.Helper()
	var names []string
	err := inNamespace(t, p.NetNSPath(), func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		return err
	})
	if err != nil {
		t.Fatalf("listing interfaces inside: %v", err)
	}
	return names
}

// TestSNIMustMatch opens a tunnel to a granted host and then names another
// server in TLS: the classic domain-fronting move.
func TestSNIMustMatch(t *testing.T) {
	web := newWeb(t)
	tests := []struct {
		name       string
		serverName string
		plain      bool
		ok         bool
		reason     string
	}{
		{name: "matching name", serverName: "api.test", ok: true},
		{name: "matching name other case", serverName: "API.test", ok: true},
		{name: "fronted name", serverName: "other.test", reason: `TLS server name "other.test" does not match the requested host api.test`},
		{name: "no server name", serverName: "", reason: "names no server"},
		{name: "not tls", plain: true, reason: "did not start with a TLS ClientHello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, refused := startProxy(t, Config{Grants: []Grant{{Host: "api.test"}, {Host: "other.test"}}, Resolver: web.dns})
			c, err := dialInside(t, p, p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			fmt.Fprintf(c, "CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("CONNECT: got %v, %v; want 200", resp, err)
			}
			var got string
			if tc.plain {
				fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
				b, _ := io.ReadAll(br)
				got, err = string(b), nil
				if len(b) == 0 {
					err = io.EOF
				}
			} else {
				cfg := &tls.Config{ServerName: tc.serverName, RootCAs: web.cert.Pool}
				if tc.serverName == "" {
					cfg.InsecureSkipVerify = true
				}
				tc2 := tls.Client(&bufConn{Conn: c, r: br}, cfg)
				err = tc2.Handshake()
				if err == nil {
					fmt.Fprintf(tc2, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", tc.serverName)
					b, _ := io.ReadAll(tc2)
					got = string(b)
				}
			}
			stats := p.Close()
			rec, _ := findRecord(stats, "api.test")
			if tc.ok {
				if err != nil || !strings.Contains(got, helloBody) {
					t.Fatalf("got %q, %v; want the test host's answer", got, err)
				}
				if !rec.Allowed || rec.BytesDown == 0 {
					t.Errorf("got record %+v, want allowed with bytes", rec)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %q through a tunnel that should have been cut", got)
			}
			if rec.Allowed || !strings.Contains(rec.Reason, tc.reason) {
				t.Errorf("got record %+v, want refused with reason containing %q", rec, tc.reason)
			}
			if rec.BytesUp != 0 || rec.BytesDown != 0 {
				t.Errorf("got %d up, %d down; want no byte to or from the destination", rec.BytesUp, rec.BytesDown)
			}
			if !strings.Contains(refused.String(), "agentexec: network: refused CONNECT api.test:443 (") {
				t.Errorf("got refusal output %q, want the refused CONNECT line", refused.String())
			}
		})
	}
}

// TestAddressGrant reaches an internal address because a grant names it,
// and is refused without that grant.
func TestAddressGrant(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, helloBody)
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := mapResolver{"local.test": {"127.0.0.1"}}
	url := fmt.Sprintf("http://local.test:%d/", port)
	tests := []struct {
		name   string
		grants []Grant
		ok     bool
	}{
		{name: "name and address granted", grants: []Grant{{Host: "local.test", Ports: []int{port}}, {Host: "127.0.0.0/8", Ports: []int{port}}}, ok: true},
		{name: "name only", grants: []Grant{{Host: "local.test", Ports: []int{port}}}},
		{name: "address on another port", grants: []Grant{{Host: "local.test", Ports: []int{port}}, {Host: "127.0.0.1", Ports: []int{port + 1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, refused := startProxy(t, Config{Grants: tc.grants, Resolver: dns})
			out, _, err := runInside(t, p, nil, "curl", "-fsS", "--max-time", "10", url)
			if got := err == nil && out == helloBody; got != tc.ok {
				t.Fatalf("got success=%v (%q, %v, proxy %q), want %v", got, out, err, refused, tc.ok)
			}
		})
	}
}

// TestStatsListEveryDestination checks the end-record data over several
// attempts on one proxy.
func TestStatsListEveryDestination(t *testing.T) {
	web := newWeb(t)
	p, _ := startProxy(t, Config{Grants: []Grant{{Host: "api.test", Rule: "api"}}, Resolver: web.dns})
	web.curl(t, p, "https://api.test/big")
	web.curl(t, p, "http://api.test/")
	web.curl(t, p, "https://other.test/")
	s := p.Close()
	type want struct {
		method, host string
		allowed      bool
		minDown      int64
	}
	wants := []want{
		{"CONNECT", "api.test", true, 1 << 20},
		{"GET", "api.test", true, 1},
		{"CONNECT", "other.test", false, 0},
	}
	if len(s.Connections) != len(wants) {
		t.Fatalf("got %d records %+v, want %d", len(s.Connections), s.Connections, len(wants))
	}
	dests := s.Destinations()
	wantDests := []Destination{
		{Host: "api.test", Port: 443, Allowed: true, Rule: "api", Attempts: 1},
		{Host: "api.test", Port: 80, Allowed: true, Rule: "api", Attempts: 1},
		{Host: "other.test", Port: 443, Attempts: 1},
	}
	if len(dests) != len(wantDests) {
		t.Fatalf("got destinations %+v, want %d", dests, len(wantDests))
	}
	for i, w := range wantDests {
		d := dests[i]
		if d.Host != w.Host || d.Port != w.Port || d.Allowed != w.Allowed || d.Rule != w.Rule || d.Attempts != w.Attempts {
			t.Errorf("destination %d: got %+v, want %+v", i, d, w)
		}
		if d.BytesDown != s.Connections[i].BytesDown {
			t.Errorf("destination %d: got %d bytes down, want %d", i, d.BytesDown, s.Connections[i].BytesDown)
		}
	}
	for i, w := range wants {
		c := s.Connections[i]
		if c.Method != w.method || c.Host != w.host || c.Allowed != w.allowed || c.BytesDown < w.minDown {
			t.Errorf("record %d: got %s %s:%d allowed=%v down=%d, want %s %s allowed=%v down>=%d",
				i, c.Method, c.Host, c.Port, c.Allowed, c.BytesDown, w.method, w.host, w.allowed, w.minDown)
		}
		if w.allowed && (c.Rule != "api" || c.Addr != net.JoinHostPort(web.host.Addr.String(), fmt.Sprint(c.Port))) {
			t.Errorf("record %d: got rule %q addr %q, want rule api and the test host's address", i, c.Rule, c.Addr)
		}
	}
}

// TestCloseEndsEverything checks that Close cuts an open tunnel, the
// namespace goes away, and cancelling the start context stops serving.
func TestCloseEndsEverything(t *testing.T) {
	web := newWeb(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := Start(ctx, Config{Grants: []Grant{{Host: "api.test", Ports: []int{443}}}, Resolver: web.dns})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialInside(t, p, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT api.test:443 HTTP/1.1\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect}); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	nsPath := p.NetNSPath()
	before, err := os.Stat(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan Stats)
	go func() { done <- p.Close() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return with a tunnel open")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("got data on the client side after Close, want the tunnel cut")
	}
	// The descriptor number may be reused by then; it must not name the
	// proxy's namespace any more.
	if after, err := os.Stat(nsPath); err == nil && os.SameFile(before, after) {
		t.Errorf("namespace path %s still names the proxy's namespace after Close", nsPath)
	}
	p.Close() // a second Close is harmless
}

// TestKeepAliveChecksEveryRequest sends a granted and then an ungranted
// plain-HTTP request on one client connection: the second must be refused
// on its own, not ride on the first one's check.
func TestKeepAliveChecksEveryRequest(t *testing.T) {
	web := newWeb(t)
	p, refused := startProxy(t, Config{Grants: []Grant{{Host: "api.test"}}, Resolver: web.dns})
	c, err := dialInside(t, p, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	steps := []struct {
		req  string
		code int
		body string
	}{
		{"GET http://api.test/ HTTP/1.1\r\nHost: api.test\r\n\r\n", 200, helloBody + " GET api.test"},
		{"POST http://api.test/ HTTP/1.1\r\nHost: api.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody", 200, helloBody + " POST api.test"},
		{"GET http://api.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n", 200, helloBody + " GET api.test"},
		{"GET http://other.test/ HTTP/1.1\r\nHost: api.test\r\n\r\n", 403, "agentexec: network: refused GET other.test:80"},
	}
	for i, s := range steps {
		io.WriteString(c, s.req)
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, nil)
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != s.code || !strings.HasPrefix(string(b), s.body) {
			t.Errorf("step %d: got %d %q, want %d %q", i, resp.StatusCode, b, s.code, s.body)
		}
	}
	if !strings.Contains(refused.String(), "refused GET other.test:80 (no grant") {
		t.Errorf("got refusals %q", refused.String())
	}
}

// TestConnectionLimit holds the proxy's client slots open and checks that
// one more connection is turned away rather than served.
func TestConnectionLimit(t *testing.T) {
	p, _ := startProxy(t, Config{})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < maxClients; i++ {
		c, err := dialInside(t, p, p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The accept loop is sequential: once it answers a probe on a fresh
	// connection, every earlier connection holds a slot.
	c, err := dialInside(t, p, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %v, %v; want 503 for connection %d", resp, err, maxClients+1)
	}
}

// TestStartRejectsBadGrants fails closed: one bad grant and nothing starts.
func TestStartRejectsBadGrants(t *testing.T) {
	_, err := Start(context.Background(), Config{Grants: []Grant{{Host: "api.test"}, {Host: "*.com"}}})
	var pe *PatternError
	if !errors.As(err, &pe) || pe.Pattern != "*.com" {
		t.Fatalf("got %v, want a *PatternError for *.com", err)
	}
}

// TestRefusalLineOnce: a client that retries gets every attempt recorded
// but one line on stderr, and the line cap holds.
func TestRefusalLineOnce(t *testing.T) {
	p, refused := startProxy(t, Config{})
	connect := func(host string) {
		c, err := dialInside(t, p, p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "CONNECT %s:443 HTTP/1.1\r\n\r\n", host)
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodConnect})
		if err != nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("CONNECT %s: got %v, %v; want 403", host, resp, err)
		}
	}
	for i := 0; i < 3; i++ {
		connect("again.test")
	}
	for i := 0; i < maxRefusalReport+5; i++ {
		connect(fmt.Sprintf("h%d.test", i))
	}
	s := p.Close()
	lines := strings.Split(strings.TrimSpace(refused.String()), "\n")
	if got := strings.Count(refused.String(), "refused CONNECT again.test:443"); got != 1 {
		t.Errorf("got %d lines for again.test, want 1", got)
	}
	if len(lines) != maxRefusalReport+1 || !strings.Contains(lines[len(lines)-1], "further refusals are recorded but not shown") {
		t.Errorf("got %d lines ending %q, want %d ending with the cut-off line", len(lines), lines[len(lines)-1], maxRefusalReport+1)
	}
	if want := 3 + maxRefusalReport + 5; len(s.Connections) != want {
		t.Errorf("got %d records, want %d", len(s.Connections), want)
	}
}

// TestUpgrade switches a plain-HTTP request to another protocol (as
// websockets do) and checks the stream passes both ways and is counted.
func TestUpgrade(t *testing.T) {
	web := newWeb(t)
	p, _ := startProxy(t, Config{Grants: []Grant{{Host: "api.test"}}, Resolver: web.dns})
	c, err := dialInside(t, p, p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(c, "GET http://api.test/ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", resp, err)
	}
	const msg = "ping over the upgraded stream"
	io.WriteString(c, msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
		t.Fatalf("got echo %q, %v; want %q", got, err, msg)
	}
	c.Close()
	s := p.Close()
	rec, _ := findRecord(s, "api.test")
	if !rec.Allowed || rec.BytesUp < int64(len(msg)) || rec.BytesDown < int64(len(msg)) {
		t.Errorf("got record %+v, want allowed with the echoed bytes counted both ways", rec)
	}
}

// TestEnv pins the variables that point programs at the proxy.
func TestEnv(t *testing.T) {
	p, _ := startProxy(t, Config{})
	u := "http://" + p.Addr()
	env := map[string]string{}
	for _, kv := range p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; dup {
			t.Errorf("got %s twice", k)
		}
		env[k] = v
	}
	want := map[string]string{
		"HTTP_PROXY": u, "http_proxy": u, "HTTPS_PROXY": u, "https_proxy": u, "ALL_PROXY": u, "all_proxy": u,
		"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
		"npm_config_proxy": u, "npm_config_https_proxy": u, "PIP_PROXY": u, "CARGO_HTTP_PROXY": u,
		"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.proxy", "GIT_CONFIG_VALUE_0": u,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s: got %q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("got %d variables, want %d", len(env), len(want))
	}
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") {
		t.Errorf("got address %s, want 127.0.0.1:PORT", p.Addr())
	}
}
