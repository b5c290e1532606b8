package egress

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkStartClose is the fixed cost a command with network grants pays
// over one without: a namespace, its listener, and the teardown.
func BenchmarkStartClose(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create network namespaces")
	}
	ctx := context.Background()
	grants := []Grant{{Host: "proxy.golang.org"}, {Host: "*.example.com", Methods: []string{"GET"}}}
	for b.Loop() {
		p, err := Start(ctx, Config{Grants: grants})
		if err != nil {
			b.Fatal(err)
		}
		p.Close()
	}
}

// nsDialer dials from inside the namespace at path, as a sandboxed client
// would, on one long-lived thread that joined the namespace, so that the
// benchmark does not charge the proxy for creating threads. The thread is
// discarded when the benchmark ends.
func nsDialer(b *testing.B, path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	type req struct {
		ctx           context.Context
		network, addr string
		reply         chan res
	}
	reqs := make(chan req)
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		ns, err := os.Open(path)
		if err == nil {
			err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET)
			ns.Close()
		}
		ready <- err
		if err != nil {
			return
		}
		for r := range reqs {
			var d net.Dialer
			c, err := d.DialContext(r.ctx, r.network, r.addr)
			r.reply <- res{c, err}
		}
	}()
	if err := <-ready; err != nil {
		b.Fatalf("joining the proxy's namespace: %v", err)
	}
	b.Cleanup(func() { close(reqs) })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		r := req{ctx, network, addr, make(chan res, 1)}
		reqs <- r
		out := <-r.reply
		return out.c, out.err
	}
}

// benchFixture is an HTTPS server on the host's loopback, a proxy that
// grants it by name and address, and two clients: one direct from the host
// namespace, one inside the proxy's namespace through the proxy.
type benchFixture struct {
	direct, proxied *http.Client
	url             string
	proxy           *Proxy
}

func newBenchFixture(b *testing.B, handler http.Handler) *benchFixture {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root to create network namespaces")
	}
	cert := newTestCert(b, "bench.test")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: handler, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert.TLS}}}
	go srv.ServeTLS(ln, "", "")
	b.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	p, err := Start(context.Background(), Config{
		Grants:   []Grant{{Host: "bench.test", Ports: []int{port}}, {Host: "127.0.0.1", Ports: []int{port}}},
		Resolver: mapResolver{"bench.test": {"127.0.0.1"}},
		Dialer:   guardDialer,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	tlsCfg := &tls.Config{RootCAs: cert.Pool}
	direct := &http.Client{Transport: &http.Transport{
		TLSClientConfig: tlsCfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, ln.Addr().String())
		},
		DisableKeepAlives: true,
	}}
	proxyURL, _ := url.Parse("http://" + p.Addr())
	proxied := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   tlsCfg,
		Proxy:             http.ProxyURL(proxyURL),
		DialContext:       nsDialer(b, p.NetNSPath()),
		DisableKeepAlives: true,
	}}
	return &benchFixture{direct: direct, proxied: proxied, url: fmt.Sprintf("https://bench.test:%d/", port), proxy: p}
}

func get(b *testing.B, c *http.Client, url string) int64 {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET: %d bytes, status %d, %v", n, resp.StatusCode, err)
	}
	return n
}

// BenchmarkRequest is the latency one new HTTPS connection and request
// pays through the proxy (CONNECT, checks, ClientHello peek) against the
// same request made directly, reported as ratio = proxied/direct.
func BenchmarkRequest(b *testing.B) {
	f := newBenchFixture(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	var direct, proxied time.Duration
	for b.Loop() {
		t0 := time.Now()
		get(b, f.direct, f.url)
		t1 := time.Now()
		get(b, f.proxied, f.url)
		direct += t1.Sub(t0)
		proxied += time.Since(t1)
	}
	b.ReportMetric(float64(direct.Microseconds())/float64(b.N), "direct-µs/op")
	b.ReportMetric(float64(proxied.Microseconds())/float64(b.N), "proxied-µs/op")
	b.ReportMetric(float64(proxied)/float64(direct), "ratio")
}

// BenchmarkDownload100MiB is the throughput of a 100 MiB HTTPS download
// through the proxy against the same download made directly, reported as
// ratio = proxied MB/s / direct MB/s.
func BenchmarkDownload100MiB(b *testing.B) {
	const size = 100 << 20
	chunk := make([]byte, 1<<20)
	f := newBenchFixture(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		for i := 0; i < size/len(chunk); i++ {
			w.Write(chunk)
		}
	}))
	var direct, proxied time.Duration
	for b.Loop() {
		t0 := time.Now()
		if n := get(b, f.direct, f.url); n != size {
			b.Fatalf("direct: got %d bytes, want %d", n, size)
		}
		t1 := time.Now()
		if n := get(b, f.proxied, f.url); n != size {
			b.Fatalf("proxied: got %d bytes, want %d", n, size)
		}
		direct += t1.Sub(t0)
		proxied += time.Since(t1)
	}
	mb := float64(size) / 1e6 * float64(b.N)
	b.ReportMetric(mb/direct.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/proxied.Seconds(), "proxied-MB/s")
	b.ReportMetric(direct.Seconds()/proxied.Seconds(), "ratio")
}
