package egress

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// hopHeaders are connection-specific headers a proxy must not pass on
// (RFC 9110 section 7.6.1), plus the proxy's own credentials.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization",
	"Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forward serves one plain-HTTP request in absolute form
// ("GET http://host/path"). It reports whether the client connection may
// carry another request.
func (p *Proxy) forward(c net.Conn, br *bufio.Reader, req *http.Request) bool {
	start := time.Now()
	if req.URL == nil || req.URL.Host == "" || !strings.EqualFold(req.URL.Scheme, "http") {
		writeStatus(c, http.StatusBadRequest,
			fmt.Sprintf("agentexec: network: %s %s: a proxy request must name an http:// URL; use CONNECT for https", req.Method, req.RequestURI))
		return false
	}
	// The URL is authoritative; http.ReadRequest already ignored the Host
	// header, and req.Write sends the URL's host, so a Host header naming
	// another site cannot steer the destination.
	host, port, err := target(req.URL.Host, 80)
	if err != nil {
		writeStatus(c, http.StatusBadRequest, fmt.Sprintf("agentexec: network: bad request target %q: %v", req.URL.Host, err))
		return false
	}
	method := strings.ToUpper(req.Method)
	rec := p.record(Connection{Start: start, Method: method, Host: host, Port: port})
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()

	d := p.authorize(ctx, host, port, method)
	if d.refuse != "" || d.fail != "" {
		p.deny(c, rec, method, host, port, d, start)
		return false
	}
	up, ap, err := p.dialChecked(ctx, d.addrs, port)
	if err != nil {
		p.failed(c, rec, method, host, port, d, fmt.Sprintf("cannot connect: %v", err), start)
		return false
	}
	if !p.track(up) {
		up.Close()
		return false
	}
	defer p.untrack(up)
	p.update(rec, func(r *Connection) { r.Allowed, r.Rule, r.Addr = true, d.rule.ruleID(), ap.String() })

	var upBytes, downBytes atomic.Int64
	defer func() {
		p.update(rec, func(r *Connection) {
			r.BytesUp, r.BytesDown, r.Duration = upBytes.Load(), downBytes.Load(), time.Since(start)
		})
	}()
	upgrade := req.Header.Get("Upgrade")
	keep := !req.Close
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	if upgrade != "" {
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", upgrade)
	} else {
		// One upstream connection per request keeps every request
		// checked on its own; asking the origin to close delimits
		// responses of unknown length.
		req.Close = true
	}
	upw := &countWriter{w: up, n: &upBytes}
	if err := req.Write(upw); err != nil {
		writeStatus(c, http.StatusBadGateway, fmt.Sprintf("agentexec: network: %s %s failed (sending request: %v)", method, ap, err))
		return false
	}
	upr := bufio.NewReader(&countReader{r: up, n: &downBytes})
	resp, err := http.ReadResponse(upr, req)
	// Interim responses (100 Continue, 103 Early Hints) go to the client
	// as they come; the final response follows them.
	for err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
		if err = resp.Write(c); err != nil {
			return false
		}
		resp, err = http.ReadResponse(upr, req)
	}
	if err != nil {
		writeStatus(c, http.StatusBadGateway, fmt.Sprintf("agentexec: network: %s %s failed (reading response: %v)", method, ap, err))
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols && upgrade != "" {
		if err := resp.Write(c); err != nil {
			return false
		}
		var extra atomic.Int64
		pipe(c, br, &bufConn{Conn: up, r: upr}, &upBytes, &extra)
		return false
	}
	// The response to the client is delimited on its own terms (length or
	// chunking); without either, only closing the connection ends it.
	if resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 && resp.Body != http.NoBody {
		keep = false
	}
	resp.Close = !keep
	if err := resp.Write(c); err != nil {
		return false
	}
	return keep
}

// countReader counts bytes read.
type countReader struct {
	r interface{ Read([]byte) (int, error) }
	n *atomic.Int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// bufConn reads through a buffered reader that may already hold bytes.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
