// Package oidc holds the token-signing side of keyward's Entra ID stand-in:
// RSA signing keys with self-signed certificates (kid = x5t = base64url of
// the certificate's SHA-1), key rotation with an overlap window, the JWKS and
// OpenID discovery documents in Entra's v1 and v2 shapes, and the claim set of
// Entra access tokens (managed identity and client credentials). It does no
// I/O and imports no net/http; internal/cloud serves what it builds.
package oidc

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as the SHA-1 thumbprint of the certificate.
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"
)

// Sentinel errors returned by Verify and the key codecs.
var (
	// ErrMalformed means the token is not a compact JWS with a JSON header and payload.
	ErrMalformed = errors.New("oidc: malformed token")
	// ErrUnknownKey means the token's kid names no published key.
	ErrUnknownKey = errors.New("oidc: signing key not found")
	// ErrBadSignature means the RS256 signature does not verify.
	ErrBadSignature = errors.New("oidc: signature verification failed")
	// ErrUnsupportedAlg means the header alg is not RS256.
	ErrUnsupportedAlg = errors.New("oidc: unsupported signing algorithm")
)

// keyBits is the RSA modulus size of signing keys (Entra uses 2048).
const keyBits = 2048

// Key is one RS256 signing key with its self-signed certificate. A Key is
// immutable after creation except RetireAt, which the owning KeySet sets
// under its lock.
type Key struct {
	// ID is the kid and x5t: base64url(SHA-1(CertDER)).
	ID string
	// Private is the RSA private key. Never log it.
	Private *rsa.PrivateKey
	// CertDER is the DER self-signed certificate over Private's public key.
	CertDER []byte
	// Created is when the key was generated.
	Created time.Time
	// RetireAt is when the key stops being published; zero means the key is
	// published without end (the active key, or one not yet rotated out).
	RetireAt time.Time
}

// String prints only the kid, so a Key never leaks through fmt.
func (k *Key) String() string { return "oidc.Key{" + k.ID + "}" }

// LogValue prints only the kid, so a Key never leaks through slog.
func (k *Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// NewKey generates an RSA-2048 key and a self-signed certificate valid for
// two years from now.
func NewKey(now time.Time) (*Key, error) {
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("oidc: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, fmt.Errorf("oidc: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, fmt.Errorf("oidc: self-sign: %w", err)
	}
	return &Key{ID: Thumbprint(der), Private: priv, CertDER: der, Created: now}, nil
}

// Thumbprint returns base64url(SHA-1(der)) without padding, the x5t of a
// certificate.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // x5t definition.
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// storedKey is the serialized form of a Key (PKCS#8 private key + cert).
type storedKey struct {
	PKCS8    []byte    `json:"pkcs8"`
	Cert     []byte    `json:"cert"`
	Created  time.Time `json:"created"`
	RetireAt time.Time `json:"retire_at,omitzero"`
}

// MarshalKey serializes k (including its private key) to JSON bytes. The
// caller must protect the result like the key itself.
func MarshalKey(k *Key) ([]byte, error) {
	p8, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("oidc: marshal key: %w", err)
	}
	return json.Marshal(storedKey{PKCS8: p8, Cert: k.CertDER, Created: k.Created, RetireAt: k.RetireAt})
}

// UnmarshalKey is the inverse of MarshalKey.
func UnmarshalKey(b []byte) (*Key, error) {
	var s storedKey
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("oidc: unmarshal key: %w", err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(s.PKCS8)
	if err != nil {
		return nil, fmt.Errorf("oidc: parse key: %w", err)
	}
	rk, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("oidc: key is %T, want RSA: %w", pk, ErrMalformed)
	}
	return &Key{ID: Thumbprint(s.Cert), Private: rk, CertDER: s.Cert, Created: s.Created, RetireAt: s.RetireAt}, nil
}

// KeySet is the ordered set of signing keys of one issuer: the newest key
// signs; older keys stay published until their RetireAt. Safe for
// concurrent use.
type KeySet struct {
	mu   sync.RWMutex
	keys []*Key // guarded by mu; keys[0] is the active (signing) key
}

// NewKeySet returns a KeySet over keys; the key with the latest Created time
// becomes the active one. keys must not be empty.
func NewKeySet(keys []*Key) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("oidc: empty key set")
	}
	ks := append([]*Key(nil), keys...)
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j].Created.After(ks[j-1].Created); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return &KeySet{keys: ks}, nil
}

// Active returns the signing key.
func (s *KeySet) Active() *Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[0]
}

// Keys returns a copy of all keys (active first), including retired ones not
// yet pruned. Intended for persistence.
func (s *KeySet) Keys() []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Key, len(s.keys))
	for i, k := range s.keys {
		c := *k
		out[i] = &c
	}
	return out
}

// Rotate makes next the signing key. The previous signing key (and any other
// key without a retirement time) stays published until now+overlap; keys
// whose retirement time has passed are dropped.
func (s *KeySet) Rotate(next *Key, now time.Time, overlap time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := []*Key{next}
	for _, k := range s.keys {
		c := *k
		if c.RetireAt.IsZero() {
			c.RetireAt = now.Add(overlap)
		}
		if c.RetireAt.After(now) {
			kept = append(kept, &c)
		}
	}
	s.keys = kept
}

// Published returns the keys a JWKS shows at time now (active first).
func (s *KeySet) Published(now time.Time) []*Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Key
	for _, k := range s.keys {
		if k.RetireAt.IsZero() || k.RetireAt.After(now) {
			out = append(out, k)
		}
	}
	return out
}

// JWK is one key of a JWKS in Entra's shape (no "alg" member; v2.0 key sets
// add "issuer").
type JWK struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer,omitempty"`
}

// JWKS is a JSON Web Key Set document.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the key set published at now. issuer is set on each key when
// non-empty (the v2.0 keys endpoint does that).
func (s *KeySet) JWKS(now time.Time, issuer string) JWKS {
	doc := JWKS{Keys: []JWK{}}
	for _, k := range s.Published(now) {
		pub := k.Private.PublicKey
		doc.Keys = append(doc.Keys, JWK{
			Kty:    "RSA",
			Use:    "sig",
			Kid:    k.ID,
			X5t:    k.ID,
			N:      base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			X5c:    []string{base64.StdEncoding.EncodeToString(k.CertDER)},
			Issuer: issuer,
		})
	}
	return doc
}

// header is the JOSE header Entra puts on access tokens, in its field order.
type header struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	X5t string `json:"x5t"`
	Kid string `json:"kid"`
}

// Sign serializes claims to JSON and signs them with the active key (RS256),
// returning a compact JWS.
func (s *KeySet) Sign(claims any) (string, error) {
	k := s.Active()
	h, err := json.Marshal(header{Typ: "JWT", Alg: "RS256", X5t: k.ID, Kid: k.ID})
	if err != nil {
		return "", fmt.Errorf("oidc: header: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidc: claims: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(h))+enc.EncodedLen(len(p))+1+400)
	buf = enc.AppendEncode(buf, h)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, p)
	sum := sha256.Sum256(buf)
	sig, err := rsa.SignPKCS1v15(nil, k.Private, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("oidc: sign: %w", err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// Verify checks token's RS256 signature against the keys published at now
// and returns the raw JSON payload. It checks no claims.
func (s *KeySet) Verify(token string, now time.Time) ([]byte, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, ErrMalformed
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, ErrMalformed
	}
	var h header
	if err = json.Unmarshal(hb, &h); err != nil {
		return nil, ErrMalformed
	}
	if h.Alg != "RS256" {
		return nil, ErrUnsupportedAlg
	}
	var key *Key
	for _, k := range s.Published(now) {
		if k.ID == h.Kid {
			key = k
			break
		}
	}
	if key == nil {
		return nil, ErrUnknownKey
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil {
		return nil, ErrMalformed
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err = rsa.VerifyPKCS1v15(&key.Private.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, ErrBadSignature
	}
	payload, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, ErrMalformed
	}
	return payload, nil
}
