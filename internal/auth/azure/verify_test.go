package azure_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/logical"
)

const (
	testOID   = "3901c4f2-9a5e-4b7c-8f00-1d2e3f4a5b6c"
	otherOID  = "11111111-2222-4333-8444-555555555555"
	armAud    = "https://management.azure.com/"
	unusedURL = "http://127.0.0.1:1" // nothing listens: IMDS/ARM calls fail fast
)

// newIssuerHarness is a mount configured against a local test issuer with
// role "sp-role" bound to testOID only (no ARM lookups).
func newIssuerHarness(t *testing.T, extraConfig map[string]any) (*harness, *testIssuer) {
	t.Helper()
	iss := newTestIssuer(t)
	h := newHarness(t, azure.Dependencies{HTTPClient: iss.client, IMDSEndpoint: unusedURL})
	cfg := map[string]any{"tenant_id": iss.tenant, "resource": armAud, "authority_host": iss.authorityHost()}
	for k, v := range extraConfig {
		cfg[k] = v
	}
	h.mustDo(logical.UpdateOperation, "config", cfg)
	h.mustDo(logical.UpdateOperation, "role/sp-role", map[string]any{
		"policies": "aks", "bound_service_principal_ids": testOID,
	})
	return h, iss
}

func login(h *harness, role, jwt string, extra map[string]any) (*logical.Response, error) {
	data := map[string]any{"role": role, "jwt": jwt}
	for k, v := range extra {
		data[k] = v
	}
	return h.do(logical.UpdateOperation, "login", data)
}

// TestLoginAttackCorpus sends tokens that each differ from a valid one in
// one respect and checks every one is refused for that reason with a 500
// (Vault's status for verification failures) and no Auth.
func TestLoginAttackCorpus(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	now := h.clock.Now()
	valid := func() map[string]any { return iss.claims(testOID, now) }
	with := func(k string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&iss.keys[iss.kid].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name    string
		jwt     string
		wantErr error // nil = accepted
	}{
		{"valid", iss.sign(t, valid()), nil},
		{"exp within leeway", iss.sign(t, with("exp", now.Add(-30*time.Second).Unix())), nil},
		{"aud array containing resource", iss.sign(t, with("aud", []string{"other", armAud})), nil},
		{"alg none", unsignedToken(t, valid()), azure.ErrUnsupportedAlgorithm},
		{"HS256 keyed with the public key PEM", hs256Token(t, pubPEM, iss.kid, valid()), azure.ErrUnsupportedAlgorithm},
		{"HS256 keyed with the public key DER", hs256Token(t, pubDER, iss.kid, valid()), azure.ErrUnsupportedAlgorithm},
		{"expired", iss.sign(t, with("exp", now.Add(-2*time.Minute).Unix())), azure.ErrExpired},
		{"no exp", iss.sign(t, with("exp", nil)), azure.ErrExpired},
		{"not yet valid", iss.sign(t, with("nbf", now.Add(10*time.Minute).Unix())), azure.ErrNotYetValid},
		{"aud without trailing slash", iss.sign(t, with("aud", "https://management.azure.com")), azure.ErrAudience},
		{"aud of another resource", iss.sign(t, with("aud", "https://vault.azure.net")), azure.ErrAudience},
		{"iss of another tenant", iss.sign(t, with("iss", "https://sts.windows.net/"+otherOID+"/")), azure.ErrIssuer},
		{"v2 issuer", iss.sign(t, with("iss", "https://login.microsoftonline.com/"+iss.tenant+"/v2.0")), azure.ErrIssuer},
		{"tid of another tenant", iss.sign(t, with("tid", otherOID)), azure.ErrTenant},
		{"no tid", iss.sign(t, with("tid", nil)), azure.ErrTenant},
		{"unknown kid", withUnknownKid(t, valid()), azure.ErrUnknownKey},
		{"flipped signature byte", flipSignatureByte(t, iss.sign(t, valid())), azure.ErrBadSignature},
		{"flipped payload", flipPayload(t, iss.sign(t, valid())), azure.ErrBadSignature},
		{"not a jwt", "null", azure.ErrMalformedToken},
		{"garbage header", "!!!.e30.AA", azure.ErrMalformedToken},
		{"exp not a number", iss.sign(t, with("exp", "tomorrow")), azure.ErrMalformedToken},
		{"no oid", iss.sign(t, with("oid", nil)), azure.ErrMissingClaim},
		{"oid not bound to the role", iss.sign(t, with("oid", otherOID)), azure.ErrNotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := login(h, "sp-role", tc.jwt, nil)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("login refused: %v", err)
				}
				if resp == nil || resp.Auth == nil {
					t.Fatalf("no auth in %+v", resp)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got := statusOf(err); got != http.StatusInternalServerError {
				t.Errorf("status = %d, want 500", got)
			}
			if resp != nil {
				t.Errorf("response returned with error: %+v", resp)
			}
			if err.Error() == "" {
				t.Error("empty public error message")
			}
		})
	}
}

func flipPayload(t *testing.T, tok string) string {
	t.Helper()
	// Change one character of the payload: the claims still decode as
	// base64 but no longer match the signature.
	b := []byte(tok)
	for i := len(b) / 2; i < len(b); i++ {
		if b[i] >= 'a' && b[i] < 'z' {
			b[i]++
			return string(b)
		}
	}
	t.Fatal("no letter to flip")
	return ""
}

func TestLoginRequestErrors(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	jwt := iss.sign(t, iss.claims(testOID, h.clock.Now()))
	tests := []struct {
		name   string
		data   map[string]any
		status int
	}{
		{"no jwt", map[string]any{"role": "sp-role"}, 400},
		{"no role", map[string]any{"jwt": jwt}, 400},
		{"unknown role", map[string]any{"role": "nope", "jwt": jwt}, 400},
		{"bad subscription id", map[string]any{"role": "sp-role", "jwt": jwt, "subscription_id": "not-a-guid"}, 400},
		{"bad resource group", map[string]any{"role": "sp-role", "jwt": jwt, "resource_group_name": "rg/../x"}, 400},
		{"bad vmss name", map[string]any{"role": "sp-role", "jwt": jwt, "vmss_name": "vmss/../x"}, 400},
		{"bad vm name", map[string]any{"role": "sp-role", "jwt": jwt, "vm_name": "1vm"}, 400},
		{"resource id with dot segments", map[string]any{"role": "sp-role", "jwt": jwt,
			"resource_id": "/subscriptions/s/resourceGroups/rg/../../subscriptions/o/resourceGroups/x/providers/Microsoft.Compute/virtualMachines/v"}, 400},
		{"resource id with escapes", map[string]any{"role": "sp-role", "jwt": jwt, "resource_id": "/subscriptions/s/resourceGroups/rg%2F..%2Fx"}, 400},
		{"resource id not under a subscription", map[string]any{"role": "sp-role", "jwt": jwt, "resource_id": "/providers/x"}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.do(logical.UpdateOperation, "login", tc.data)
			if err == nil || resp != nil {
				t.Fatalf("login = %+v, %v; want error", resp, err)
			}
			if got := statusOf(err); got != tc.status {
				t.Errorf("status = %d (%v), want %d", got, err, tc.status)
			}
			if !errors.Is(err, logical.ErrInvalidRequest) {
				t.Errorf("err = %v, want ErrInvalidRequest", err)
			}
		})
	}
}

// TestLoginAuth checks the Auth of a successful login (no resource bounds:
// no ARM call, subscription/vm fields only copied to metadata).
func TestLoginAuth(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	h.mustDo(logical.UpdateOperation, "role/full", map[string]any{
		"bound_service_principal_ids": []any{"*"},
		"bound_group_ids":             "g1,g2",
		"token_policies":              []any{"B", "a", "a"},
		"token_ttl":                   "1h",
		"token_max_ttl":               7200,
		"token_explicit_max_ttl":      "3h",
		"token_num_uses":              5,
		"token_bound_cidrs":           "127.0.0.0/8",
		"token_type":                  "service",
	})
	c := iss.claims(testOID, h.clock.Now())
	c["groups"] = []string{"g0", "g2"}
	resp, err := login(h, "Full", iss.sign(t, c), map[string]any{
		"subscription_id": "9b1b1a5e-8f3c-4d2a-9e77-0c6f2b8d4e11", "resource_group_name": "MC_rg_aks_eastus",
		"vm_name": "aks-nodepool1-1234-vmss_0", "vmss_name": "aks-nodepool1-1234-vmss",
	})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	want := &logical.Auth{
		LeaseOptions:   logical.LeaseOptions{TTL: time.Hour, MaxTTL: 2 * time.Hour, Renewable: true},
		DisplayName:    testOID,
		Policies:       []string{"a", "b"},
		ExplicitMaxTTL: 3 * time.Hour,
		NumUses:        5,
		BoundCIDRs:     []string{"127.0.0.0/8"},
		TokenType:      "service",
		Metadata: map[string]string{
			"role": "Full", "subscription_id": "9b1b1a5e-8f3c-4d2a-9e77-0c6f2b8d4e11", "resource_group_name": "MC_rg_aks_eastus",
			"vm_name": "aks-nodepool1-1234-vmss_0", "vmss_name": "aks-nodepool1-1234-vmss",
		},
		InternalData: map[string]any{"role": "Full"},
		Alias: &logical.Alias{Name: testOID, Metadata: map[string]string{
			"subscription_id": "9b1b1a5e-8f3c-4d2a-9e77-0c6f2b8d4e11", "resource_group_name": "MC_rg_aks_eastus",
			"vm_name": "aks-nodepool1-1234-vmss_0", "vmss_name": "aks-nodepool1-1234-vmss",
		}},
	}
	if diff := cmp.Diff(want, resp.Auth); diff != "" {
		t.Errorf("auth (-want +got):\n%s", diff)
	}

	// Groups binding: a token without a bound group is refused.
	c["groups"] = []string{"g0"}
	if _, err := login(h, "full", iss.sign(t, c), nil); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Errorf("login with unbound groups: err = %v, want ErrNotAuthorized", err)
	}
}

func TestLoginBoundCIDRs(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	h.mustDo(logical.UpdateOperation, "role/cidr", map[string]any{
		"bound_service_principal_ids": testOID, "token_bound_cidrs": "10.0.0.0/8,192.0.2.7",
	})
	jwt := iss.sign(t, iss.claims(testOID, h.clock.Now()))
	tests := []struct {
		addr string
		ok   bool
	}{
		{"10.1.2.3", true},
		{"192.0.2.7", true},
		{"::ffff:10.0.0.1", true},
		{"127.0.0.1", false},
		{"192.0.2.8", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			resp, err := h.doFrom(tc.addr, logical.UpdateOperation, "login", map[string]any{"role": "cidr", "jwt": jwt})
			if tc.ok {
				if err != nil || resp == nil || resp.Auth == nil {
					t.Fatalf("login = %+v, %v", resp, err)
				}
				return
			}
			if !errors.Is(err, logical.ErrPermissionDenied) || resp != nil {
				t.Fatalf("login = %+v, %v; want permission denied", resp, err)
			}
		})
	}
}

// TestJWKSCacheAndRefresh checks keys are fetched once, refetched on an
// unknown kid at most once per 15s, and that rotation is picked up.
func TestJWKSCacheAndRefresh(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	ok := func(step string) {
		t.Helper()
		resp, err := login(h, "sp-role", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil)
		if err != nil || resp.Auth == nil {
			t.Fatalf("%s: login = %+v, %v", step, resp, err)
		}
	}
	refused := func(step string, jwt string, want error) {
		t.Helper()
		if _, err := login(h, "sp-role", jwt, nil); !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", step, err, want)
		}
	}
	hits := func(step string, want int32) {
		t.Helper()
		if got := iss.jwksHits.Load(); got != want {
			t.Fatalf("%s: JWKS fetched %d times, want %d", step, got, want)
		}
	}
	for range 5 {
		ok("warm")
	}
	hits("after 5 logins", 1)
	if got := iss.discoveryHits.Load(); got != 1 {
		t.Fatalf("discovery fetched %d times, want 1", got)
	}

	// Unknown kids: refetch is rate limited.
	unknown := withUnknownKid(t, iss.claims(testOID, h.clock.Now()))
	refused("unknown kid right after a fetch", unknown, azure.ErrUnknownKey)
	refused("unknown kid again", unknown, azure.ErrUnknownKey)
	hits("unknown kids within 15s", 1)
	h.clock.Advance(16 * time.Second)
	refused("unknown kid after 16s", unknown, azure.ErrUnknownKey)
	hits("unknown kid after 16s", 2)

	// Rotation right after a fetch is seen once the rate limit allows.
	iss.rotate(t)
	refused("new key within 15s", iss.sign(t, iss.claims(testOID, h.clock.Now())), azure.ErrUnknownKey)
	h.clock.Advance(16 * time.Second)
	ok("new key after 16s")
	hits("after rotation", 3)
	ok("new key cached")
	hits("after rotation, cached", 3)

	// A day later the set is refetched before use.
	h.clock.Advance(25 * time.Hour)
	ok("a day later")
	hits("a day later", 4)

	// A config write drops the cache: discovery runs again.
	h.mustDo(logical.UpdateOperation, "config", map[string]any{"resource": armAud})
	ok("after config write")
	if got := iss.discoveryHits.Load(); got != 2 {
		t.Fatalf("discovery fetched %d times after config write, want 2", got)
	}
}

// TestCompatMode checks the tutorial's role (bound only by subscription
// and resource group) passes the role checks in legacy mode (it then
// reaches ARM, which is unreachable here) and is refused with Vault 1.20's
// message in strict mode.
func TestCompatMode(t *testing.T) {
	t.Parallel()
	const sub = "9b1b1a5e-8f3c-4d2a-9e77-0c6f2b8d4e11"
	body := map[string]any{
		"subscription_id": sub, "resource_group_name": "MC_rg_aks_eastus",
		"vm_name": "aks-nodepool1-1234-vmss_0", "vmss_name": "aks-nodepool1-1234-vmss",
	}
	tests := []struct {
		mode    string
		role    map[string]any
		wantErr error
		wantMsg string
	}{
		{"legacy", map[string]any{"policies": "aks", "bound_subscription_ids": sub, "bound_resource_groups": "MC_rg_aks_eastus"},
			azure.ErrResourceLookup, ""},
		{"", map[string]any{"policies": "aks", "bound_subscription_ids": sub, "bound_resource_groups": "MC_rg_aks_eastus"},
			azure.ErrResourceLookup, ""},
		{"strict", map[string]any{"policies": "aks", "bound_subscription_ids": sub, "bound_resource_groups": "MC_rg_aks_eastus"},
			azure.ErrNotAuthorized, "expected specific bound_group_ids or bound_service_principal_ids; both cannot be empty or '*'"},
		{"strict", map[string]any{"policies": "aks", "bound_service_principal_ids": "*", "bound_group_ids": "*", "bound_subscription_ids": sub},
			azure.ErrNotAuthorized, "expected specific bound_group_ids or bound_service_principal_ids; both cannot be empty or '*'"},
		// Strict mode with a service principal binding gets past the role
		// checks; the token has no xms_* claims, which strict mode requires.
		{"strict", map[string]any{"policies": "aks", "bound_service_principal_ids": testOID, "bound_subscription_ids": sub},
			azure.ErrNotAuthorized, "xms_az_rid and xms_mirid claims are missing from token"},
		{"legacy", map[string]any{"policies": "aks", "bound_subscription_ids": "00000000-0000-4000-8000-000000000000"},
			azure.ErrNotAuthorized, "subscription not authorized"},
		{"legacy", map[string]any{"policies": "aks", "bound_resource_groups": "other-rg"},
			azure.ErrNotAuthorized, "resource group not authorized"},
	}
	for _, tc := range tests {
		t.Run(tc.mode+"/"+tc.wantMsg, func(t *testing.T) {
			t.Parallel()
			h, iss := newIssuerHarness(t, map[string]any{"compat_mode": tc.mode, "max_retries": 0})
			h.mustDo(logical.UpdateOperation, "role/aks-role", tc.role)
			resp, err := login(h, "aks-role", iss.sign(t, iss.claims(testOID, h.clock.Now())), body)
			if !errors.Is(err, tc.wantErr) || resp != nil {
				t.Fatalf("login = %+v, %v; want %v", resp, err, tc.wantErr)
			}
			if got := statusOf(err); got != 500 {
				t.Errorf("status %d, want 500", got)
			}
			if tc.wantMsg != "" {
				// The public message is Vault's wire text, part of the API.
				var ce *logical.CodedError
				if !errors.As(err, &ce) || ce.Msg != tc.wantMsg {
					t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
				}
			}
		})
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	h, iss := newIssuerHarness(t, nil)
	h.mustDo(logical.UpdateOperation, "role/r", map[string]any{
		"bound_service_principal_ids": testOID, "token_policies": "aks", "token_ttl": "1h", "token_max_ttl": "2h",
	})
	resp, err := login(h, "r", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil)
	if err != nil {
		t.Fatal(err)
	}
	issued := resp.Auth
	issued.Policies = append(issued.Policies, "default") // as core stores it
	renew := func() (*logical.Response, error) {
		return h.backend.HandleRequest(t.Context(), &logical.Request{
			Operation: logical.RenewOperation, Path: "login", Storage: h.store, Auth: issued,
			Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
		})
	}

	h.mustDo(logical.UpdateOperation, "role/r", map[string]any{"token_ttl": "30m"})
	got, err := renew()
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if diff := cmp.Diff(logical.LeaseOptions{TTL: 30 * time.Minute, MaxTTL: 2 * time.Hour, Renewable: true}, got.Auth.LeaseOptions,
		cmpopts.IgnoreFields(logical.LeaseOptions{}, "IssueTime")); diff != "" {
		t.Errorf("renewed lease (-want +got):\n%s", diff)
	}

	h.mustDo(logical.UpdateOperation, "role/r", map[string]any{"token_policies": "aks,admin"})
	if _, err := renew(); !errors.Is(err, azure.ErrRenewal) {
		t.Errorf("renew after policy change: err = %v, want ErrRenewal", err)
	}
	h.mustDo(logical.DeleteOperation, "role/r", nil)
	if _, err := renew(); !errors.Is(err, azure.ErrRenewal) {
		t.Errorf("renew after role deletion: err = %v, want ErrRenewal", err)
	}
	issued.InternalData = nil
	if _, err := renew(); !errors.Is(err, azure.ErrRenewal) {
		t.Errorf("renew without role: err = %v, want ErrRenewal", err)
	}
}

func TestLoginNotConfigured(t *testing.T) {
	t.Parallel()
	iss := newTestIssuer(t)
	h := newHarness(t, azure.Dependencies{HTTPClient: iss.client})
	h.mustDo(logical.UpdateOperation, "role/r", map[string]any{"bound_service_principal_ids": testOID})
	_, err := login(h, "r", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil)
	if !errors.Is(err, azure.ErrNotConfigured) || statusOf(err) != 500 {
		t.Fatalf("err = %v, want ErrNotConfigured/500", err)
	}

	// Discovery against the wrong tenant fails with the issuer's answer;
	// the failure is not cached.
	h.mustDo(logical.UpdateOperation, "config", map[string]any{
		"tenant_id": otherOID, "resource": armAud, "authority_host": iss.authorityHost(),
	})
	for range 2 {
		if _, err := login(h, "r", iss.sign(t, iss.claims(testOID, h.clock.Now())), nil); !errors.Is(err, azure.ErrDiscovery) {
			t.Fatalf("err = %v, want ErrDiscovery", err)
		}
	}
	if got := iss.discoveryHits.Load(); got != 2 {
		t.Errorf("discovery hits %d, want 2 (failures not cached)", got)
	}
}
