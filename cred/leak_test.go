package cred

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestErrorsNeverContainSecret drives every failure path that has the
// secret in reach (the helper prints it on stdout and on stderr, echoes it
// when revocation fails, exits, hangs or answers garbage) and greps each
// error text agentexec would show or record for the value and its
// encodings.
func TestErrorsNeverContainSecret(t *testing.T) {
	var texts []string
	for _, mode := range []string{"fail", "sleep", "short", "garbage", "undeclared", "missing", "wide", "version", "noexpiry"} {
		execSetup(t, mode)
		spec := execSpec(t)
		spec.Timeout = 300 * time.Millisecond
		spec.ShortLived = true
		if _, err := Issue(context.Background(), spec, testPurpose); err != nil {
			texts = append(texts, err.Error())
		} else {
			t.Errorf("mode %s: Issue succeeded, want an error", mode)
		}
	}
	execSetup(t, "ok")
	t.Setenv("HELPER_REVOKE_FAIL", "1")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, c.Revoke(context.Background()).Error)
	// A ceiling failure whose revocation also fails.
	spec := execSpec(t)
	spec.TTL = time.Minute
	if _, err := Issue(context.Background(), spec, testPurpose); err != nil {
		texts = append(texts, err.Error())
	}
	if len(texts) < 11 {
		t.Fatalf("collected %d error texts, want 11", len(texts))
	}
	for _, s := range texts {
		if s == "" {
			t.Errorf("empty error text")
		}
		assertNoSecret(t, s, testToken)
	}
}

// TestRedactionBeforeTruncation: helper stderr is cut to 512 characters
// for error messages; the cut must come after redaction, or a value that
// straddles it would leave its prefix in the message.
func TestRedactionBeforeTruncation(t *testing.T) {
	execSetup(t, "ok")
	c, err := Issue(context.Background(), execSpec(t), testPurpose)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HELPER_REVOKE_FAIL", "1")
	for pad := 470; pad < 512; pad += 3 {
		t.Setenv("HELPER_PAD", strings.Repeat("x", pad))
		c.revocation = nil // revoke again with this padding
		msg := c.Revoke(context.Background()).Error
		if strings.Contains(msg, testToken[:8]) {
			t.Fatalf("pad %d: %q contains the start of the token", pad, msg)
		}
	}
}
