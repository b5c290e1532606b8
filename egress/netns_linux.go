package egress

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/agentexec/agentexec/internal/netns"
)

// newNamespace creates a network namespace holding only an up loopback
// interface and a TCP listener on 127.0.0.1 with a kernel-chosen port. It
// returns the namespace file (whose open descriptor keeps the namespace
// alive) and the listener, which keeps working when accepted from any
// thread: a socket stays in the namespace it was created in.
func newNamespace() (*os.File, net.Listener, error) {
	var ln net.Listener
	ns, err := netns.New(func() error {
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("listening inside network namespace: %w", err)
		}
		return nil
	})
	if errors.Is(err, netns.ErrUnshare) {
		err = fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return ns, ln, err
}
