package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resolver turns a host name into addresses. The proxy asks it exactly once
// per connection attempt and dials only addresses it returned and checked.
type Resolver interface {
	LookupIP(ctx context.Context, host string) ([]net.IP, error)
}

// Config says what the proxy allows and where it reports. The zero value is
// a proxy that refuses everything.
type Config struct {
	// Grants are the destinations allowed. Every grant is validated by
	// Start; one invalid grant fails Start.
	Grants []Grant
	// Resolver resolves requested names; nil means the host's resolver
	// (net.DefaultResolver), queried from agentexec's own namespace.
	Resolver Resolver
	// Dialer opens upstream connections to the checked address ("ip:port");
	// nil means a net.Dialer with a 30 s timeout.
	Dialer func(ctx context.Context, network, addr string) (net.Conn, error)
	// Refused receives one "agentexec: network: ..." line per refused or
	// failed destination (repeats of the same line are not written again);
	// nil discards them. exec passes the command's stderr.
	Refused io.Writer
}

// Timeouts for a client that connects and then stalls. They bound how long
// a handler goroutine can be held by a misbehaving program.
const (
	headerTimeout    = 30 * time.Second
	helloTimeout     = 15 * time.Second
	dialTimeout      = 30 * time.Second
	maxRecorded      = 10000 // connection records kept; further ones are counted in Stats.Dropped
	maxClients       = 256   // client connections served at once; more get 503
	maxRefusalReport = 200   // distinct refusal lines written; then one summary line
)

// Stats is what the proxy saw, for the command's end record.
type Stats struct {
	// Connections lists every attempt, allowed or refused, in the order
	// they started.
	Connections []Connection `json:"connections"`
	// Dropped counts attempts beyond the recording limit (10,000).
	Dropped int `json:"dropped,omitempty"`
}

// Connection is one attempt to reach a destination. It holds no payload,
// header or path: only where, whether, why and how much.
type Connection struct {
	Start time.Time `json:"start"`
	// Method is "CONNECT" for a tunnel, else the plain-HTTP method.
	Method string `json:"method"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	// Allowed says a grant allowed the destination; Rule names it.
	Allowed bool   `json:"allowed"`
	Rule    string `json:"rule,omitempty"`
	// Reason says why an attempt was refused.
	Reason string `json:"reason,omitempty"`
	// Addr is the address dialled, or the internal address that caused a
	// refusal.
	Addr string `json:"addr,omitempty"`
	// Error is set when an allowed attempt failed (resolution, dial).
	Error string `json:"error,omitempty"`
	// BytesUp and BytesDown count bytes sent to and received from the
	// destination.
	BytesUp   int64         `json:"bytes_up"`
	BytesDown int64         `json:"bytes_down"`
	Duration  time.Duration `json:"duration_ns"`
}

// Destination sums up the attempts on one host and port with one outcome,
// for an end record that lists where a command went.
type Destination struct {
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Allowed   bool   `json:"allowed"`
	Rule      string `json:"rule,omitempty"`
	Attempts  int    `json:"attempts"`
	BytesUp   int64  `json:"bytes_up"`
	BytesDown int64  `json:"bytes_down"`
}

// Destinations groups Connections by host, port and whether they were
// allowed, in the order each destination was first tried.
func (s Stats) Destinations() []Destination {
	type key struct {
		host    string
		port    int
		allowed bool
	}
	index := map[key]int{}
	var out []Destination
	for _, c := range s.Connections {
		k := key{c.Host, c.Port, c.Allowed}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Destination{Host: c.Host, Port: c.Port, Allowed: c.Allowed, Rule: c.Rule})
		}
		out[i].Attempts++
		out[i].BytesUp += c.BytesUp
		out[i].BytesDown += c.BytesDown
	}
	return out
}

// Proxy is a running egress proxy. Close it.
type Proxy struct {
	rules    []compiled
	resolver Resolver
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	refused  io.Writer

	ns     *os.File
	nsPath string
	ln     net.Listener
	port   int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	slots chan struct{} // one token per client connection being served

	writeMu sync.Mutex // serialises refusal lines

	mu        sync.Mutex
	closed    bool
	conns     map[net.Conn]struct{}
	records   []*Connection
	dropped   int
	reported  map[string]bool
	reportCut bool
}

// Start validates the grants, creates the proxy's network namespace with
// its listener, and serves it until Close or until ctx is cancelled. It
// needs the privilege to create a network namespace (root, or
// CAP_SYS_ADMIN); without it the error wraps ErrUnsupported.
func Start(ctx context.Context, cfg Config) (*Proxy, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting egress proxy: %w", err)
	}
	rules := make([]compiled, 0, len(cfg.Grants))
	for _, g := range cfg.Grants {
		c, err := compileGrant(g)
		if err != nil {
			return nil, fmt.Errorf("starting egress proxy: %w", err)
		}
		rules = append(rules, c)
	}
	ns, ln, err := newNamespace()
	if err != nil {
		return nil, fmt.Errorf("starting egress proxy: %w", err)
	}
	p := &Proxy{
		rules:    rules,
		resolver: cfg.Resolver,
		dial:     cfg.Dialer,
		refused:  cfg.Refused,
		ns:       ns,
		nsPath:   fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), ns.Fd()),
		ln:       ln,
		port:     ln.Addr().(*net.TCPAddr).Port,
		conns:    map[net.Conn]struct{}{},
		reported: map[string]bool{},
		slots:    make(chan struct{}, maxClients),
	}
	if p.resolver == nil {
		p.resolver = hostResolver{}
	}
	if p.dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		p.dial = d.DialContext
	}
	if p.refused == nil {
		p.refused = io.Discard
	}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		select {
		case <-ctx.Done():
			p.shutdown()
		case <-p.ctx.Done():
		}
	}()
	go func() {
		defer p.wg.Done()
		p.serve()
	}()
	return p, nil
}

// NetNSPath is the path of the proxy's network namespace, for
// sandbox.Spec.NetNS. It names a descriptor held by this process, so the
// namespace cannot outlive agentexec, and it is valid until Close.
func (p *Proxy) NetNSPath() string { return p.nsPath }

// Addr is the proxy's address inside its namespace.
func (p *Proxy) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Env is the environment that points programs inside the namespace at the
// proxy: the standard proxy variables in both cases, NO_PROXY for loopback,
// and the settings npm, pip, cargo and git read instead of or before them.
// GOPROXY is left as configured: the go command honours HTTPS_PROXY. The
// git entries use GIT_CONFIG_COUNT/KEY_0/VALUE_0 (git's http.proxy beats
// the variables when a user's gitconfig sets it); a caller adding its own
// GIT_CONFIG_* entries must renumber them after these.
func (p *Proxy) Env() []string {
	u := "http://" + p.Addr()
	// Loopback stays the sandbox's own, except where a grant names a
	// host loopback address: then that address must go through the proxy,
	// or the client would reach the sandbox's empty loopback instead.
	var keep []string
	for _, n := range []struct {
		name string
		addr netip.Addr
	}{{"localhost", netip.MustParseAddr("127.0.0.1")}, {"127.0.0.1", netip.MustParseAddr("127.0.0.1")}, {"::1", netip.IPv6Loopback()}} {
		granted := false
		for _, c := range p.rules {
			if c.kind == kindPrefix && c.prefix.Contains(n.addr) {
				granted = true
			}
		}
		if !granted {
			keep = append(keep, n.name)
		}
	}
	noProxy := strings.Join(keep, ",")
	return []string{
		"HTTP_PROXY=" + u, "http_proxy=" + u,
		"HTTPS_PROXY=" + u, "https_proxy=" + u,
		"ALL_PROXY=" + u, "all_proxy=" + u,
		"NO_PROXY=" + noProxy, "no_proxy=" + noProxy,
		"npm_config_proxy=" + u, "npm_config_https_proxy=" + u,
		"PIP_PROXY=" + u,
		"CARGO_HTTP_PROXY=" + u,
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=http.proxy", "GIT_CONFIG_VALUE_0=" + u,
	}
}

// Close stops serving, ends every open tunnel, releases the namespace and
// returns what the proxy saw. It is safe to call more than once; later
// calls return the same Stats.
func (p *Proxy) Close() Stats {
	p.shutdown()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ns != nil {
		p.ns.Close()
		p.ns = nil
	}
	s := Stats{Dropped: p.dropped, Connections: make([]Connection, len(p.records))}
	for i, r := range p.records {
		s.Connections[i] = *r
	}
	return s
}

// shutdown stops accepting and cuts open connections.
func (p *Proxy) shutdown() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.cancel()
	p.ln.Close()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		if !p.track(c) {
			c.Close()
			return
		}
		select {
		case p.slots <- struct{}{}:
		default:
			// Too many open connections: a runaway command must not be
			// able to exhaust agentexec's own descriptors or memory.
			writeStatus(c, http.StatusServiceUnavailable, "agentexec: network: too many connections through the proxy")
			p.untrack(c)
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer func() { <-p.slots }()
			defer p.untrack(c)
			p.handle(c)
		}()
	}
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// record adds a connection record and returns it for later updates (bytes,
// duration), or nil once the recording limit is reached.
func (p *Proxy) record(c Connection) *Connection {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.records) >= maxRecorded {
		p.dropped++
		return nil
	}
	r := &c
	p.records = append(p.records, r)
	return r
}

// update changes a record under the lock.
func (p *Proxy) update(r *Connection, f func(*Connection)) {
	if r == nil {
		return
	}
	p.mu.Lock()
	f(r)
	p.mu.Unlock()
}

// report writes one refusal line, once per distinct line. The write
// happens outside p.mu so that a slow reader of stderr cannot stall the
// proxy's bookkeeping; writeMu keeps lines whole.
func (p *Proxy) report(line string) {
	p.mu.Lock()
	switch {
	case p.reported[line]:
		line = ""
	case len(p.reported) >= maxRefusalReport:
		if p.reportCut {
			line = ""
		} else {
			p.reportCut = true
			line = "agentexec: network: further refusals are recorded but not shown"
		}
	default:
		p.reported[line] = true
	}
	p.mu.Unlock()
	if line == "" {
		return
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	fmt.Fprintln(p.refused, line)
}

// handle serves one client connection: a CONNECT tunnel, or a series of
// plain-HTTP requests.
func (p *Proxy) handle(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(headerTimeout))
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if !(errors.As(err, &ne) && ne.Timeout()) {
					writeStatus(c, http.StatusBadRequest, "agentexec: network: malformed proxy request")
				}
			}
			return
		}
		c.SetReadDeadline(time.Time{})
		if req.Method == http.MethodConnect {
			p.tunnel(c, br, req)
			return
		}
		if !p.forward(c, br, req) {
			return
		}
	}
}

// writeStatus sends a short, self-contained response.
func writeStatus(w io.Writer, code int, body string) {
	body += "\n"
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
}

// decision is the outcome of checking one destination.
type decision struct {
	rule   compiled
	addrs  []netip.Addr // checked addresses to dial, in resolver order
	refuse string       // reason, when refused
	need   string       // the grant that would allow it
	fail   string       // allowed, but could not proceed (resolution)
	bad    netip.Addr   // the internal address that caused a refusal
}

// authorize matches the destination against the grants, resolves it, and
// checks every address.
func (p *Proxy) authorize(ctx context.Context, host string, port int, method string) decision {
	var d decision
	addr, _ := netip.ParseAddr(host)
	addr = addr.Unmap()
	dest := net.JoinHostPort(host, strconv.Itoa(port))
	d.need = fmt.Sprintf("network: [%s]", dest)

	var hostOnly, portOnly *compiled
	found := false
	for i := range p.rules {
		r := &p.rules[i]
		if !r.matchHost(host, addr) {
			continue
		}
		if !r.matchPort(port) {
			if hostOnly == nil {
				hostOnly = r
			}
			continue
		}
		if !r.matchMethod(method) {
			if portOnly == nil {
				portOnly = r
			}
			continue
		}
		d.rule, found = *r, true
		break
	}
	if !found {
		switch {
		case portOnly != nil && method == http.MethodConnect:
			d.refuse = fmt.Sprintf("%s allows only %s; an HTTPS tunnel hides the method, so it needs a grant without a method limit or with CONNECT",
				portOnly.label(), strings.Join(portOnly.methods, ", "))
		case portOnly != nil:
			d.refuse = fmt.Sprintf("%s allows only %s", portOnly.label(), strings.Join(portOnly.methods, ", "))
			d.need += fmt.Sprintf(" with methods: [%s]", method)
		case hostOnly != nil:
			d.refuse = fmt.Sprintf("%s allows ports %s only", hostOnly.label(), portsString(hostOnly.ports))
		default:
			d.refuse = "no grant"
		}
		return d
	}

	if addr.IsValid() {
		d.addrs = []netip.Addr{addr}
	} else {
		ips, err := p.resolver.LookupIP(ctx, host)
		if err != nil {
			d.fail = fmt.Sprintf("cannot resolve %s: %v", host, err)
			return d
		}
		for _, ip := range ips {
			a, ok := netip.AddrFromSlice(ip)
			if ok {
				d.addrs = append(d.addrs, a.Unmap())
			}
		}
		if len(d.addrs) == 0 {
			d.fail = fmt.Sprintf("cannot resolve %s: no addresses", host)
			return d
		}
	}
	// Every address must pass, not just the first: a name that resolves
	// to a public and an internal address is a rebinding attempt.
	for _, a := range d.addrs {
		kind := internalKind(a)
		if kind == "" || p.addrGranted(a, port) {
			continue
		}
		d.bad = a
		if a == addr {
			d.refuse = fmt.Sprintf("%s is a %s address", a, kind)
		} else {
			d.refuse = fmt.Sprintf("%s resolves to %s, a %s address", host, a, kind)
		}
		d.need = fmt.Sprintf("network: [%s]", net.JoinHostPort(a.String(), strconv.Itoa(port)))
		return d
	}
	return d
}

func (p *Proxy) addrGranted(a netip.Addr, port int) bool {
	for _, r := range p.rules {
		if r.coversAddr(a, port) {
			return true
		}
	}
	return false
}

// refusal formats the stderr line for a refused attempt.
func refusal(method, host string, port int, d decision) string {
	return fmt.Sprintf("agentexec: network: refused %s %s (%s; a rule would need %s)",
		method, net.JoinHostPort(host, strconv.Itoa(port)), d.refuse, d.need)
}

// dialChecked connects to the first checked address that answers. It
// never resolves again.
func (p *Proxy) dialChecked(ctx context.Context, addrs []netip.Addr, port int) (net.Conn, netip.AddrPort, error) {
	var errs []error
	// The addresses share the dial budget, so a blackholed address family
	// cannot hold the command for a full timeout per address.
	each := max(dialTimeout/time.Duration(len(addrs)), 3*time.Second)
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(port))
		dctx, cancel := context.WithTimeout(ctx, each)
		c, err := p.dial(dctx, "tcp", ap.String())
		cancel()
		if err == nil {
			return c, ap, nil
		}
		errs = append(errs, err)
	}
	return nil, netip.AddrPort{}, errors.Join(errs...)
}

// target splits and normalises "host:port" from a request.
func target(hostport string, defaultPort int) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		if defaultPort == 0 {
			return "", 0, err
		}
		host, portStr = hostport, strconv.Itoa(defaultPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q", portStr)
	}
	host = strings.Trim(host, "[]")
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", 0, fmt.Errorf("zoned address %q", host)
		}
		return a.Unmap().String(), port, nil
	}
	name, err := normalizeName(host)
	if err != nil {
		return "", 0, err
	}
	return name, port, nil
}

// hostResolver is the host's own resolver, used from agentexec's namespace.
type hostResolver struct{}

func (hostResolver) LookupIP(ctx context.Context, host string) ([]net.IP, error) {
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}
