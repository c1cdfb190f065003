package azure_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage/inmem"
)

// fakeClock is a settable logical.Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// sysView is a fixed logical.SystemView.
type sysView struct{ def, max time.Duration }

func (s sysView) DefaultLeaseTTL() time.Duration { return s.def }
func (s sysView) MaxLeaseTTL() time.Duration     { return s.max }

// harness is one azure auth mount on in-memory storage.
type harness struct {
	t       testing.TB
	backend logical.Backend
	store   logical.Storage
	clock   *fakeClock
}

func newHarness(t testing.TB, deps azure.Dependencies) *harness {
	t.Helper()
	clock := newFakeClock()
	if deps.Clock == nil {
		deps.Clock = clock
	} else if fc, ok := deps.Clock.(*fakeClock); ok {
		clock = fc
	}
	b, err := azure.Factory(deps)(context.Background(), logical.BackendConfig{
		System:  sysView{def: 768 * time.Hour, max: 768 * time.Hour},
		Options: map[string]string{},
		Clock:   clock,
	})
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	st := inmem.New()
	if in, ok := b.(logical.Initializer); ok {
		if err := in.Initialize(context.Background(), st); err != nil {
			t.Fatalf("initialize: %v", err)
		}
	}
	return &harness{t: t, backend: b, store: st, clock: clock}
}

// do sends one request. Update turns into Create when the existence check
// says the object is missing, as core does.
func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	return h.doFrom("127.0.0.1", op, path, data)
}

func (h *harness) doFrom(addr string, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{
		ID:         "req",
		Operation:  op,
		Path:       path,
		MountPoint: "auth/azure/",
		MountType:  "azure",
		Data:       data,
		Connection: &logical.Connection{RemoteAddr: addr},
		Storage:    h.store,
	}
	if op == logical.UpdateOperation {
		if ec, ok := h.backend.(logical.ExistenceChecker); ok {
			found, exists, err := ec.ExistenceCheck(context.Background(), req)
			if err != nil {
				return nil, err
			}
			if found && !exists {
				req.Operation = logical.CreateOperation
			}
		}
	}
	return h.backend.HandleRequest(context.Background(), req)
}

// mustDo fails the test on error.
func (h *harness) mustDo(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// statusOf returns the HTTP status the transport would give err.
func statusOf(err error) int {
	var ce *logical.CodedError
	switch {
	case errors.As(err, &ce):
		return ce.Status
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403
	case errors.Is(err, logical.ErrNotFound):
		return 404
	case err == nil:
		return 200
	default:
		return 500
	}
}

// testIssuer is a local Entra-like issuer (discovery + JWKS over TLS) whose
// key the test holds, to forge tokens that differ from a valid one in one
// claim only.
type testIssuer struct {
	srv    *httptest.Server
	tenant string
	client *http.Client

	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey // by kid
	kid  string                     // signing kid

	jwksHits      atomic.Int32
	discoveryHits atomic.Int32
}

const testTenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

func newTestIssuer(t testing.TB) *testIssuer {
	t.Helper()
	iss := &testIssuer{tenant: testTenant, keys: map[string]*rsa.PrivateKey{}}
	iss.rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveryHits.Add(1)
		if r.PathValue("tenant") != iss.tenant {
			http.Error(w, `{"error":"invalid_tenant"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":   iss.issuer(),
			"jwks_uri": iss.srv.URL + "/common/discovery/keys",
		})
	})
	mux.HandleFunc("GET /common/discovery/keys", func(w http.ResponseWriter, r *http.Request) {
		iss.jwksHits.Add(1)
		iss.mu.Lock()
		var set jose.JSONWebKeySet
		for kid, k := range iss.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig", Algorithm: "RS256"})
		}
		iss.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	iss.srv = httptest.NewTLSServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.client = &http.Client{Transport: iss.srv.Client().Transport, Timeout: 10 * time.Second}
	return iss
}

func (i *testIssuer) issuer() string { return "https://sts.windows.net/" + i.tenant + "/" }

// authorityHost is the value of the config's authority_host.
func (i *testIssuer) authorityHost() string { return i.srv.URL + "/" }

// rotate adds a new signing key (the old one stays published) and returns its kid.
func (i *testIssuer) rotate(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	kid := base64.RawURLEncoding.EncodeToString(k.N.Bytes()[:8])
	i.mu.Lock()
	i.keys[kid] = k
	i.kid = kid
	i.mu.Unlock()
	return kid
}

// claims returns a valid claim set for oid at now.
func (i *testIssuer) claims(oid string, now time.Time) map[string]any {
	return map[string]any{
		"aud":   "https://management.azure.com/",
		"iss":   i.issuer(),
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(24 * time.Hour).Unix(),
		"appid": "0fb1c7a5-0000-4000-8000-000000000001",
		"oid":   oid,
		"sub":   oid,
		"tid":   i.tenant,
		"ver":   "1.0",
	}
}

// sign signs claims with the current key (RS256, kid header).
func (i *testIssuer) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	i.mu.Lock()
	k, kid := i.keys[i.kid], i.kid
	i.mu.Unlock()
	return signRS256(t, k, kid, claims)
}

func signRS256(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	return compact(t, s, claims)
}

func compact(t testing.TB, s jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unsignedToken is an alg "none" JWT with claims.
func unsignedToken(t testing.TB, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

// hs256Token signs claims with HS256 using key as the HMAC secret (the
// classic key-confusion attack when key is the issuer's public key).
func hs256Token(t testing.TB, key []byte, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	return compact(t, s, claims)
}

// flipSignatureByte returns tok with one bit of its signature flipped.
func flipSignatureByte(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)/2] ^= 0x01
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

// withKid re-signs tok's claims under an unknown key with kid.
func withUnknownKid(t testing.TB, claims map[string]any) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signRS256(t, k, "unknown-kid-0000", claims)
}
