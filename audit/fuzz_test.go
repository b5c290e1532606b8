package audit

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseBundle: the entry bundle reader never panics, and every failure
// is a *ParseError; what it accepts re-encodes to the same bytes.
func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 2, '{', '}'})
	f.Add([]byte{0, 5, 'a'})
	f.Add(appendEntry(appendEntry(nil, []byte("one")), []byte("two")))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseBundle(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %T %v, want *ParseError", err, err)
			}
			return
		}
		var again []byte
		for _, e := range entries {
			again = appendEntry(again, e)
		}
		if string(again) != string(data) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// FuzzParseEnvelope: the envelope parser never panics, fails only with a
// *ParseError, and accepts only the canonical encoding.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"payload":"e30=","payloadType":"application/vnd.agentexec.audit.v1+json","signatures":[{"keyid":"SHA256:x","sig":"AA=="}]}`))
	f.Add([]byte(`{"payload":"","payloadType":"","signatures":[{"keyid":"","sig":""}]}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if fast, ok := parseEnvelopeFast(data); ok {
			slow, err := parseEnvelopeSlow(data)
			if err != nil || !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path accepted what the strict parser does not: %+v vs %+v, %v", fast, slow, err)
			}
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %T %v, want *ParseError", err, err)
			}
			return
		}
		if env == nil || len(env.Signatures) == 0 {
			t.Fatalf("accepted an envelope without signatures")
		}
	})
}
