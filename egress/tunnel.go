package egress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tunnel serves a CONNECT request: check the destination, dial the checked
// address, then require the TLS ClientHello's server name to be the
// requested host before any byte of it reaches the destination.
func (p *Proxy) tunnel(c net.Conn, br *bufio.Reader, req *http.Request) {
	start := time.Now()
	host, port, err := target(req.RequestURI, 0)
	if err != nil {
		writeStatus(c, http.StatusBadRequest, fmt.Sprintf("agentexec: network: bad CONNECT target %q: %v", req.RequestURI, err))
		return
	}
	rec := p.record(Connection{Start: start, Method: http.MethodConnect, Host: host, Port: port})
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()

	d := p.authorize(ctx, host, port, http.MethodConnect)
	if d.refuse != "" || d.fail != "" {
		p.deny(c, rec, http.MethodConnect, host, port, d, start)
		return
	}
	up, ap, err := p.dialChecked(ctx, d.addrs, port)
	if err != nil {
		p.failed(c, rec, http.MethodConnect, host, port, d, fmt.Sprintf("cannot connect: %v", err), start)
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.untrack(up)
	p.update(rec, func(r *Connection) { r.Allowed, r.Rule, r.Addr = true, d.rule.ruleID(), ap.String() })
	if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}

	c.SetReadDeadline(time.Now().Add(helloTimeout))
	sni, hello, err := peekClientHello(br)
	c.SetReadDeadline(time.Time{})
	if reason := sniProblem(host, sni, err); reason != "" {
		p.update(rec, func(r *Connection) {
			r.Allowed, r.Reason, r.Duration = false, reason, time.Since(start)
		})
		p.report(fmt.Sprintf("agentexec: network: refused CONNECT %s (%s)", net.JoinHostPort(host, fmt.Sprint(port)), reason))
		return
	}

	var upBytes, downBytes atomic.Int64
	n, err := up.Write(hello)
	upBytes.Add(int64(n))
	if err == nil {
		pipe(c, br, up, &upBytes, &downBytes)
	}
	p.update(rec, func(r *Connection) {
		r.BytesUp, r.BytesDown, r.Duration = upBytes.Load(), downBytes.Load(), time.Since(start)
	})
}

// sniProblem says why a tunnel's TLS server name is unacceptable, or "".
func sniProblem(host, sni string, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("the tunnel did not start with a TLS ClientHello (%v); only TLS may pass through CONNECT", err)
	case isAddr(host):
		// A tunnel to a granted address may name any server there: the
		// grant is for the machine, not a name.
		return ""
	case sni == "":
		return "the TLS ClientHello names no server; the proxy requires the server name to equal the requested host"
	}
	name, nerr := normalizeName(sni)
	if nerr != nil || name != host {
		return fmt.Sprintf("TLS server name %q does not match the requested host %s (domain fronting)", sni, host)
	}
	return ""
}

func isAddr(host string) bool { return strings.Contains(host, ":") || net.ParseIP(host) != nil }

// deny answers a refused or failed check with 403 or 502 and one stderr
// line.
func (p *Proxy) deny(c net.Conn, rec *Connection, method, host string, port int, d decision, start time.Time) {
	if d.fail != "" {
		p.failed(c, rec, method, host, port, d, d.fail, start)
		return
	}
	line := refusal(method, host, port, d)
	p.update(rec, func(r *Connection) {
		r.Reason, r.Duration = d.refuse, time.Since(start)
		if d.bad.IsValid() {
			r.Addr = d.bad.String()
		}
	})
	p.report(line)
	writeStatus(c, http.StatusForbidden, line)
}

// failed answers an allowed attempt that could not be completed with 502.
func (p *Proxy) failed(c net.Conn, rec *Connection, method, host string, port int, d decision, msg string, start time.Time) {
	p.update(rec, func(r *Connection) {
		r.Allowed, r.Rule, r.Error, r.Duration = true, d.rule.ruleID(), msg, time.Since(start)
	})
	line := fmt.Sprintf("agentexec: network: %s %s failed (%s)", method, net.JoinHostPort(host, fmt.Sprint(port)), msg)
	p.report(line)
	writeStatus(c, http.StatusBadGateway, line)
}

// errHelloRead stops the TLS server once the ClientHello has been parsed.
var errHelloRead = errors.New("client hello read")

// peekClientHello reads the TLS ClientHello from r without answering it
// and returns its server name and every byte read, to be replayed to the
// destination. crypto/tls does the parsing (records, fragmentation,
// extensions), so the proxy accepts exactly what a real TLS stack would.
func peekClientHello(r io.Reader) (string, []byte, error) {
	var raw bytes.Buffer
	rc := &recordingConn{r: io.TeeReader(r, &raw)}
	var sni string
	seen := false
	srv := tls.Server(rc, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni, seen = h.ServerName, true
			return nil, errHelloRead
		},
	})
	err := srv.Handshake()
	if !seen {
		if err == nil {
			err = errors.New("no ClientHello")
		}
		return "", nil, err
	}
	return sni, raw.Bytes(), nil
}

// recordingConn is the read side of a client connection handed to
// crypto/tls; whatever the TLS server writes (an alert) is dropped.
type recordingConn struct {
	r io.Reader
}

func (c *recordingConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *recordingConn) Write(b []byte) (int, error)        { return len(b), nil }
func (c *recordingConn) Close() error                       { return nil }
func (c *recordingConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *recordingConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *recordingConn) SetDeadline(t time.Time) error      { return nil }
func (c *recordingConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *recordingConn) SetWriteDeadline(t time.Time) error { return nil }

// pipe copies both ways until both directions end, and adds the bytes
// moved to the counters. When one side finishes sending, the other side's
// write half is closed so half-closed protocols still work. Bytes already
// buffered from the client go first; after that the copies run between
// the connections themselves, so that TCP-to-TCP tunnels use splice(2) and
// never pass through user space.
func pipe(client net.Conn, clientR *bufio.Reader, up net.Conn, upBytes, downBytes *atomic.Int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer closeWrite(up)
		if k := clientR.Buffered(); k > 0 {
			b, _ := clientR.Peek(k)
			n, err := up.Write(b)
			upBytes.Add(int64(n))
			clientR.Discard(n)
			if err != nil {
				return
			}
		}
		n, _ := io.Copy(up, client)
		upBytes.Add(n)
	}()
	go func() {
		defer wg.Done()
		defer closeWrite(client)
		n, _ := io.Copy(client, up)
		downBytes.Add(n)
	}()
	wg.Wait()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

type countWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
