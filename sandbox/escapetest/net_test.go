package escapetest

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// testNet is two network namespaces the test creates and removes: a
// "client" one and a "server" one (the test host), joined by a veth pair
// with addresses in 10.199.0.0/16. No address is added to the host's own
// namespace, and no test traffic goes anywhere else.
type testNet struct {
	client, server string
	clientNS       string // path of the client namespace file
	serverIP       string
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("the network cases need iproute2: %v", err)
	}
	suffix := os.Getpid() % 250
	n := &testNet{
		client:   fmt.Sprintf("aex-c%d", os.Getpid()),
		server:   fmt.Sprintf("aex-s%d", os.Getpid()),
		serverIP: fmt.Sprintf("10.199.%d.2", suffix),
	}
	n.clientNS = "/run/netns/" + n.client
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("netns", "add", n.client)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.client).Run() })
	ip("netns", "add", n.server)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.server).Run() })
	vc, vs := fmt.Sprintf("aexc%d", suffix), fmt.Sprintf("aexs%d", suffix)
	ip("link", "add", vc, "netns", n.client, "type", "veth", "peer", "name", vs, "netns", n.server)
	ip("-n", n.client, "addr", "add", fmt.Sprintf("10.199.%d.1/24", suffix), "dev", vc)
	ip("-n", n.server, "addr", "add", n.serverIP+"/24", "dev", vs)
	for _, ns := range []string{n.client, n.server} {
		ip("-n", ns, "link", "set", "lo", "up")
	}
	ip("-n", n.client, "link", "set", vc, "up")
	ip("-n", n.server, "link", "set", vs, "up")
	return n
}

// listen runs a TCP listener on the test host until the test ends.
func (n *testNet) listen(t *testing.T, port int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", n.server, "python3", "-c", fmt.Sprintf(
		`import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("%s", %d)); s.listen(8); print("up", flush=True)
while True:
    c, _ = s.accept(); c.close()`, n.serverIP, port))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 3)
	done := make(chan error, 1)
	go func() { _, err := out.Read(buf); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("test host listener: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("test host listener did not start")
	}
}
