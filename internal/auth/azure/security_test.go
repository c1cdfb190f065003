package azure_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/logical"
)

// cancelOnJWKS is a transport that, when armed, cancels a context as soon
// as a JWKS request is sent, as a client hanging up mid-login does.
type cancelOnJWKS struct {
	next http.RoundTripper

	mu     sync.Mutex
	cancel context.CancelFunc
}

func (c *cancelOnJWKS) arm(cancel context.CancelFunc) {
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
}

func (c *cancelOnJWKS) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/discovery/keys") {
		c.mu.Lock()
		cancel := c.cancel
		c.cancel = nil
		c.mu.Unlock()
		if cancel != nil {
			cancel()
			if err := r.Context().Err(); err != nil {
				return nil, err
			}
		}
	}
	return c.next.RoundTrip(r)
}

// TestJWKSRefreshSurvivesCallerHangUp checks that a login whose client
// hangs up while the key set is being refetched does not use up the
// refetch allowance: otherwise an unauthenticated caller who sends a token
// with an unknown kid and disconnects every 15s keeps the server from ever
// learning the issuer's new signing key.
func TestJWKSRefreshSurvivesCallerHangUp(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t)
	tr := &cancelOnJWKS{next: iss.client.Transport}
	h := newHarness(t, azure.Dependencies{HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}, IMDSEndpoint: unusedURL})
	h.mustDo(logical.UpdateOperation, "config", map[string]any{"tenant_id": iss.tenant, "resource": armAud, "authority_host": iss.authorityHost()})
	h.mustDo(logical.UpdateOperation, "role/sp-role", map[string]any{"policies": "aks", "bound_service_principal_ids": testOID})
	if _, err := login(h, "sp-role", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil); err != nil {
		t.Fatalf("first login: %v", err)
	}

	h.clock.Advance(16 * time.Second)
	iss.rotate(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr.arm(cancel)
	req := &logical.Request{
		ID: "attacker", Operation: logical.UpdateOperation, Path: "login", MountPoint: "auth/azure/", MountType: "azure",
		Data:       map[string]any{"role": "sp-role", "jwt": withUnknownKid(t, iss.claims(otherOID, h.clock.Now()))},
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"}, Storage: h.store,
	}
	if resp, err := h.backend.HandleRequest(ctx, req); err == nil {
		t.Fatalf("attacker's login accepted: %+v", resp)
	}

	resp, err := login(h, "sp-role", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil)
	if errors.Is(err, azure.ErrUnknownKey) {
		t.Fatalf("token signed with the issuer's new key refused after a hung-up login: %v", err)
	}
	if err != nil || resp == nil || resp.Auth == nil {
		t.Fatalf("login = %+v, %v", resp, err)
	}
}
