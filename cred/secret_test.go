package cred

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "hunter2-very-secret"
	s := NewSecret([]byte(value))
	type holder struct {
		Tok  Secret
		Ptr  *Secret
		List []Secret
		Map  map[string]Secret
	}
	h := holder{Tok: s, Ptr: &s, List: []Secret{s}, Map: map[string]Secret{"k": s}}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10.3s", "%T"} {
		outputs = append(outputs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, h), fmt.Sprintf(verb, &h))
	}
	outputs = append(outputs, fmt.Sprint(s), fmt.Sprintln(s, h), s.String(), s.GoString())
	for _, v := range []any{s, h, &h} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		outputs = append(outputs, string(b))
		x, err := xml.Marshal(xmlHolder{S: s})
		if err != nil {
			t.Fatalf("xml.Marshal: %v", err)
		}
		outputs = append(outputs, string(x))
	}
	var zl bytes.Buffer
	zlog := zerolog.New(&zl)
	zlog.Info().Interface("h", h).Stringer("s", s).Any("any", s).Msg("issued")
	outputs = append(outputs, zl.String())
	var sl bytes.Buffer
	slog.New(slog.NewJSONHandler(&sl, nil)).Info("issued", "s", s, "h", h)
	slog.New(slog.NewTextHandler(&sl, nil)).Info("issued", "s", s)
	outputs = append(outputs, sl.String())

	for _, out := range outputs {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "68756e74") || strings.Contains(out, "104 117") {
			t.Errorf("output reveals the secret: %s", out)
		}
	}
	if got, want := fmt.Sprintf("%v|%q|%x", s, s, s), "[REDACTED]|[REDACTED]|[REDACTED]"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := string(s.Reveal()); got != value {
		t.Errorf("Reveal: got %q, want %q", got, value)
	}
	s.Destroy()
	if !bytes.Equal(h.List[0].Reveal(), make([]byte, len(value))) {
		t.Errorf("Destroy did not zero the shared bytes: %q", h.List[0].Reveal())
	}
}

func TestStripInherited(t *testing.T) {
	env := []string{
		"PATH=/usr/bin", "HOME=/home/a", "SSH_AUTH_SOCK=/tmp/ssh", "AWS_PROFILE=prod",
		"AWS_SECRET_ACCESS_KEY=x", "GITHUB_TOKEN=ghp", "VAULT_TOKEN=s.x", "OP_SESSION_my=abc",
		"NPM_TOKEN=n", "MY_API_KEY=k", "DB_PASSWORD=p", "CLIENT_SECRET=c", "stripe_secret=c",
		"TERM=xterm", "LANG=C.UTF-8", "AGENTEXEC_SESSION=s1", "GOFLAGS=-mod=mod", "NOEQUALS",
		"KEEP_TOKEN=kept",
	}
	got := StripInherited(env, []string{"KEEP_TOKEN"})
	want := []string{"PATH=/usr/bin", "HOME=/home/a", "TERM=xterm", "LANG=C.UTF-8",
		"AGENTEXEC_SESSION=s1", "GOFLAGS=-mod=mod", "KEEP_TOKEN=kept"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
}

type xmlHolder struct{ S Secret }
