package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// PayloadType is the DSSE payloadType of every record envelope.
const PayloadType = "application/vnd.agentexec.audit.v1+json"

// Envelope is a DSSE envelope. Field order is alphabetical so that the
// standard encoder already produces the canonical form.
type Envelope struct {
	Payload     []byte      `json:"payload"` // base64 in JSON
	PayloadType string      `json:"payloadType"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is the SSH SHA256 fingerprint of
// the signing key and is only a hint.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// pae is the DSSE pre-authentication encoding; the signature covers it, so
// the payload type cannot be swapped.
func pae(payloadType string, body []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + len(payloadType) + 32)
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	b.Write(body)
	return b.Bytes()
}

// signEnvelope wraps payload in a DSSE envelope signed by each key.
func signEnvelope(payload []byte, keys ...*logKey) ([]byte, error) {
	env := Envelope{Payload: payload, PayloadType: PayloadType}
	msg := pae(PayloadType, payload)
	for _, k := range keys {
		env.Signatures = append(env.Signatures, Signature{KeyID: k.fingerprint, Sig: sign(k.priv, msg)})
	}
	return json.Marshal(env)
}

// ParseEnvelope parses the stored bytes of one entry. It is strict: the
// bytes must be exactly the canonical encoding this package writes, so that
// a verifier never has to trust a re-serialisation.
func ParseEnvelope(b []byte) (*Envelope, error) {
	if env, ok := parseEnvelopeFast(b); ok {
		return env, nil
	}
	return parseEnvelopeSlow(b)
}

// parseEnvelopeFast accepts exactly the bytes json.Marshal produces for an
// Envelope whose strings need no escaping, which is every envelope this
// package writes, without the cost of a reflective decode and re-encode.
// Anything else goes to parseEnvelopeSlow, which is authoritative; the
// fuzz test checks the two agree.
func parseEnvelopeFast(b []byte) (*Envelope, bool) {
	str := func(prefix string) (string, bool) {
		rest, ok := bytes.CutPrefix(b, []byte(prefix))
		if !ok {
			return "", false
		}
		i := bytes.IndexByte(rest, '"')
		if i < 0 {
			return "", false
		}
		for _, c := range rest[:i] {
			if c < 0x20 || c > 0x7e || c == '\\' || c == '<' || c == '>' || c == '&' {
				return "", false
			}
		}
		b = rest[i+1:]
		return string(rest[:i]), true
	}
	b64 := func(s string) ([]byte, bool) {
		d, err := base64.StdEncoding.Strict().DecodeString(s)
		return d, err == nil
	}
	payload, ok := str(`{"payload":"`)
	if !ok {
		return nil, false
	}
	env := &Envelope{}
	if env.Payload, ok = b64(payload); !ok {
		return nil, false
	}
	if env.PayloadType, ok = str(`,"payloadType":"`); !ok {
		return nil, false
	}
	prefix := `,"signatures":[{"keyid":"`
	for {
		keyid, ok := str(prefix)
		if !ok {
			return nil, false
		}
		sig, ok := str(`,"sig":"`)
		if !ok {
			return nil, false
		}
		s := Signature{KeyID: keyid}
		if s.Sig, ok = b64(sig); !ok {
			return nil, false
		}
		env.Signatures = append(env.Signatures, s)
		if rest, ok := bytes.CutPrefix(b, []byte(`}]}`)); ok {
			return env, len(rest) == 0
		}
		prefix = `},{"keyid":"`
	}
}

func parseEnvelopeSlow(b []byte) (*Envelope, error) {
	var raw struct {
		Payload     *string `json:"payload"`
		PayloadType *string `json:"payloadType"`
		Signatures  []struct {
			KeyID string  `json:"keyid"`
			Sig   *string `json:"sig"`
		} `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, &ParseError{What: "envelope", Offset: int(dec.InputOffset()), Reason: err.Error()}
	}
	if dec.More() {
		return nil, &ParseError{What: "envelope", Offset: int(dec.InputOffset()), Reason: "trailing data"}
	}
	if raw.Payload == nil || raw.PayloadType == nil || len(raw.Signatures) == 0 {
		return nil, &ParseError{What: "envelope", Offset: -1, Reason: "missing payload, payloadType or signatures"}
	}
	env := &Envelope{PayloadType: *raw.PayloadType}
	var err error
	if env.Payload, err = base64.StdEncoding.Strict().DecodeString(*raw.Payload); err != nil {
		return nil, &ParseError{What: "envelope", Offset: -1, Reason: "payload is not base64"}
	}
	for _, s := range raw.Signatures {
		if s.Sig == nil {
			return nil, &ParseError{What: "envelope", Offset: -1, Reason: "signature without sig"}
		}
		sig, err := base64.StdEncoding.Strict().DecodeString(*s.Sig)
		if err != nil {
			return nil, &ParseError{What: "envelope", Offset: -1, Reason: "sig is not base64"}
		}
		env.Signatures = append(env.Signatures, Signature{KeyID: s.KeyID, Sig: sig})
	}
	again, err := json.Marshal(env)
	if err != nil || !bytes.Equal(again, b) {
		return nil, &ParseError{What: "envelope", Offset: -1, Reason: "not in canonical form"}
	}
	return env, nil
}

// verifyEnvelope reports whether key signed env under DSSE.
func verifyEnvelope(env *Envelope, pub ed25519.PublicKey, fingerprint string) bool {
	msg := pae(env.PayloadType, env.Payload)
	for _, s := range env.Signatures {
		if s.KeyID == fingerprint && len(s.Sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, s.Sig) {
			return true
		}
	}
	return false
}
