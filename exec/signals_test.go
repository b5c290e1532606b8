package exec

import (
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSignalsGateWaitsForTheCapture: the gate handed to the runner opens
// only once the signals are caught, and passes on what the gate it wraps
// yielded; a signal sent then reaches the forwarding channel.
func TestSignalsGateWaitsForTheCapture(t *testing.T) {
	s := captureSignals(nil)
	defer s.stop()
	next := make(chan error, 1)
	g := s.gate(next)
	want := errors.New("the start record failed")
	next <- want
	if err := <-g; err != want {
		t.Fatalf("gate yielded %v, want %v", err, want)
	}
	select {
	case <-s.ready:
	default:
		t.Fatal("the gate opened before the signals were caught")
	}
	// SIGWINCH's default is to be ignored, so sending it to the test
	// process is harmless if the capture were missing.
	if err := unix.Kill(os.Getpid(), unix.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	select {
	case sig := <-s.forward:
		if sig != unix.SIGWINCH {
			t.Errorf("forwarded %v, want SIGWINCH", sig)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SIGWINCH was not caught")
	}
	// Without a gate to wrap, it opens with nil.
	if err := <-s.gate(nil); err != nil {
		t.Errorf("gate(nil) yielded %v", err)
	}
}
