package azure_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
	"github.com/keyward/keyward/internal/logical"
)

// tutorialEnv is the tutorial's Azure side in keyward cloud: node resource
// group MC_rg_aks_eastus, the AKS node pool scale set with the pod's
// user-assigned identity (as MIC assigns it), and the server's own
// identity with Reader on the node resource group.
type tutorialEnv struct {
	cloud *cloudtest.Cloud
	h     *harness
	rg    string
	vmss  cloudtest.ScaleSet
	pod   cloudtest.Identity
	vault cloudtest.Identity
	imds  string
}

// credMode selects the server's ARM credential.
type credMode int

const (
	viaIMDS   credMode = iota // its own managed identity, as in the tutorial
	viaSecret                 // client_id + client_secret
)

func newTutorialEnv(t testing.TB, mode credMode, extraConfig map[string]any) *tutorialEnv {
	t.Helper()
	e := newTutorialCloud(t)
	c := e.cloud
	clock := newFakeClock()
	clock.Set(c.Now())
	e.h = newHarness(t, azure.Dependencies{HTTPClient: c.HTTPClient(), IMDSEndpoint: e.imds, Clock: clock})
	e.h.mustDo(logical.UpdateOperation, "config", e.config(mode, extraConfig))
	// The tutorial's role, verbatim.
	e.h.mustDo(logical.UpdateOperation, "role/aks-role", e.role())
	return e
}

// config is the tutorial's config plus the two endpoint overrides keyward
// cloud needs.
func (e *tutorialEnv) config(mode credMode, extra map[string]any) map[string]any {
	c := e.cloud
	cfg := map[string]any{
		"tenant_id":                 c.TenantID,
		"resource":                  "https://management.azure.com/",
		"authority_host":            c.AuthorityHost,
		"resource_manager_endpoint": c.ARMEndpoint,
	}
	if mode == viaSecret {
		cfg["client_id"], cfg["client_secret"] = c.AdminClientID, c.AdminClientSecret
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

// role is the tutorial's role.
func (e *tutorialEnv) role() map[string]any {
	return map[string]any{"policies": "aks", "bound_subscription_ids": e.cloud.SubscriptionID, "bound_resource_groups": e.rg}
}

// newTutorialCloud starts keyward cloud with the tutorial's resources.
func newTutorialCloud(t testing.TB) *tutorialEnv {
	t.Helper()
	c := cloudtest.Start(t)
	e := &tutorialEnv{cloud: c, rg: "MC_rg_aks_eastus"}
	c.CreateResourceGroup(t, e.rg, "eastus")
	e.vmss = c.CreateScaleSet(t, e.rg, "aks-nodepool1-1234-vmss", 2)
	e.pod = c.CreateIdentity(t, e.rg, "aks-pod-identity")
	c.AssignIdentity(t, e.vmss.ID, e.pod.ID)

	// The server runs on its own VM whose only identity is "vault".
	e.vault = c.CreateIdentity(t, e.rg, "vault")
	vm := c.CreateVM(t, e.rg, "vault-vm")
	c.AssignIdentity(t, vm.ID, e.vault.ID)
	c.AssignRole(t, e.vault.PrincipalID, "Reader", "/subscriptions/"+c.SubscriptionID+"/resourceGroups/"+e.rg)
	e.imds = c.StartIMDS(t, vm.ID)
	return e
}

// body is the tutorial's login body for jwt.
func (e *tutorialEnv) body(jwt string) map[string]any {
	return map[string]any{
		"role":                "aks-role",
		"jwt":                 jwt,
		"subscription_id":     e.cloud.SubscriptionID,
		"resource_group_name": e.rg,
		"vm_name":             e.vmss.Instances[0].Name,
		"vmss_name":           e.vmss.Name,
	}
}

func (e *tutorialEnv) podToken(t testing.TB) string {
	t.Helper()
	return e.cloud.IssueToken(t, e.pod, "https://management.azure.com/")
}

func TestTutorialLogin(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]credMode{"imds": viaIMDS, "client secret": viaSecret} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTutorialEnv(t, mode, nil)
			resp, err := e.h.do(logical.UpdateOperation, "login", e.body(e.podToken(t)))
			if err != nil {
				t.Fatalf("login: %v", err)
			}
			meta := map[string]string{
				"role": "aks-role", "subscription_id": e.cloud.SubscriptionID, "resource_group_name": e.rg,
				"vm_name": e.vmss.Instances[0].Name, "vmss_name": e.vmss.Name,
			}
			aliasMeta := map[string]string{}
			for k, v := range meta {
				if k != "role" {
					aliasMeta[k] = v
				}
			}
			want := &logical.Auth{
				LeaseOptions: logical.LeaseOptions{Renewable: true},
				DisplayName:  e.pod.PrincipalID,
				Policies:     []string{"aks"},
				Metadata:     meta,
				InternalData: map[string]any{"role": "aks-role"},
				Alias:        &logical.Alias{Name: e.pod.PrincipalID, Metadata: aliasMeta},
			}
			if diff := cmp.Diff(want, resp.Auth); diff != "" {
				t.Errorf("auth (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCloudAttackCorpus is issue 5's corpus against keyward cloud's tokens
// and ARM. Claim forgeries that need the issuer's private key (wrong iss,
// wrong tid, nbf) are in TestLoginAttackCorpus.
func TestCloudAttackCorpus(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaIMDS, nil)
	c := e.cloud
	valid := e.podToken(t)
	claims := payloadOf(t, valid)
	pubPEM, kid := cloudPublicKey(t, c, valid)
	rogue := c.CreateIdentity(t, e.rg, "rogue")
	otherRG := "other-rg"
	c.CreateResourceGroup(t, otherRG, "eastus")
	otherVMSS := c.CreateScaleSet(t, otherRG, "other-vmss", 1)
	c.AssignIdentity(t, otherVMSS.ID, rogue.ID)
	with := func(k, v string) func(map[string]any) {
		return func(m map[string]any) { m[k] = v }
	}

	tests := []struct {
		name    string
		jwt     string
		edit    func(map[string]any)
		wantErr error
		status  int
	}{
		{"valid", valid, nil, nil, 200},
		{"alg none", unsignedToken(t, claims), nil, azure.ErrUnsupportedAlgorithm, 500},
		{"HS256 signed with the public key", hs256Token(t, pubPEM, kid, claims), nil, azure.ErrUnsupportedAlgorithm, 500},
		{"wrong aud", c.IssueToken(t, e.pod, "https://vault.azure.net"), nil, azure.ErrAudience, 500},
		{"aud without trailing slash", c.IssueToken(t, e.pod, "https://management.azure.com"), nil, azure.ErrAudience, 500},
		{"unknown kid", withUnknownKid(t, claims), nil, azure.ErrUnknownKey, 500},
		{"flipped signature byte", flipSignatureByte(t, valid), nil, azure.ErrBadSignature, 500},
		{"identity not assigned to the named VMSS", c.IssueToken(t, rogue, "https://management.azure.com/"), nil, azure.ErrNotAuthorized, 500},
		{"subscription outside the bounds", valid, with("subscription_id", "00000000-0000-4000-8000-000000000000"), azure.ErrNotAuthorized, 500},
		{"resource group outside the bounds", valid, with("resource_group_name", otherRG), azure.ErrNotAuthorized, 500},
		{"VMSS that does not exist", valid, with("vmss_name", "no-such-vmss"), azure.ErrResourceLookup, 500},
		{"unknown role", valid, with("role", "no-such-role"), logical.ErrInvalidRequest, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := e.body(tc.jwt)
			if tc.edit != nil {
				tc.edit(body)
			}
			resp, err := e.h.do(logical.UpdateOperation, "login", body)
			if tc.wantErr == nil {
				if err != nil || resp == nil || resp.Auth == nil {
					t.Fatalf("login = %+v, %v", resp, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if resp != nil {
				t.Errorf("response with error: %+v", resp)
			}
			if got := statusOf(err); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
		})
	}

	// Expired and not-yet-valid tokens of the cloud, by moving the server's clock.
	t.Run("expired", func(t *testing.T) {
		e.h.clock.Set(c.Now().Add(25 * time.Hour))
		defer e.h.clock.Set(c.Now())
		if _, err := e.h.do(logical.UpdateOperation, "login", e.body(valid)); !errors.Is(err, azure.ErrExpired) {
			t.Fatalf("err = %v, want ErrExpired", err)
		}
	})
	t.Run("not yet valid", func(t *testing.T) {
		e.h.clock.Set(c.Now().Add(-10 * time.Minute))
		defer e.h.clock.Set(c.Now())
		if _, err := e.h.do(logical.UpdateOperation, "login", e.body(valid)); !errors.Is(err, azure.ErrNotYetValid) {
			t.Fatalf("err = %v, want ErrNotYetValid", err)
		}
	})
}

// TestCloudARMCache checks ARM answers are reused for 30s: an identity
// removed from the scale set still logs in until the cache expires.
func TestCloudARMCache(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaIMDS, nil)
	jwt := e.podToken(t)
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(jwt)); err != nil {
		t.Fatalf("first login: %v", err)
	}
	e.cloud.UnassignIdentity(t, e.vmss.ID, e.pod.ID)
	e.h.clock.Advance(20 * time.Second)
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(jwt)); err != nil {
		t.Fatalf("login within the cache TTL: %v", err)
	}
	e.h.clock.Advance(11 * time.Second)
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(jwt)); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("login after the cache TTL: err = %v, want ErrNotAuthorized", err)
	}
}

// TestCloudKeyRotation checks a token signed with a rotated key is accepted
// once the key set may be refetched.
func TestCloudKeyRotation(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaIMDS, nil)
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(e.podToken(t))); err != nil {
		t.Fatalf("login: %v", err)
	}
	e.cloud.RotateKeys(t)
	e.h.clock.Advance(16 * time.Second)
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(e.podToken(t))); err != nil {
		t.Fatalf("login with the rotated key: %v", err)
	}
}

// TestCloudStrictMode: Vault ≥ 1.20 behaviour against real tokens.
func TestCloudStrictMode(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaSecret, map[string]any{"compat_mode": "strict"})
	jwt := e.podToken(t)
	var ce *logical.CodedError
	_, err := e.h.do(logical.UpdateOperation, "login", e.body(jwt))
	if !errors.As(err, &ce) || ce.Status != 500 || !errors.Is(err, azure.ErrNotAuthorized) ||
		ce.Msg != "expected specific bound_group_ids or bound_service_principal_ids; both cannot be empty or '*'" {
		t.Fatalf("tutorial role in strict mode: err = %v", err)
	}
	e.h.mustDo(logical.UpdateOperation, "role/aks-role", map[string]any{"bound_service_principal_ids": e.pod.PrincipalID})
	if _, err := e.h.do(logical.UpdateOperation, "login", e.body(jwt)); err != nil {
		t.Fatalf("strict login with a service principal binding: %v", err)
	}
	// The token's xms_az_rid names the scale set; another name is refused
	// before ARM is asked.
	body := e.body(jwt)
	body["vmss_name"] = "aks-nodepool2-1234-vmss"
	if _, err := e.h.do(logical.UpdateOperation, "login", body); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("strict login naming another vmss: err = %v", err)
	}
}

// TestCloudVMLogin logs in naming a VM.
func TestCloudVMLogin(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaSecret, nil)
	c := e.cloud
	id := c.CreateIdentity(t, e.rg, "vm-app")
	vm := c.CreateVM(t, e.rg, "app-vm")
	c.AssignIdentity(t, vm.ID, id.ID)
	tok := c.IssueToken(t, id, "https://management.azure.com/")
	base := map[string]any{"role": "aks-role", "jwt": tok, "subscription_id": c.SubscriptionID, "resource_group_name": e.rg}

	vmBody := map[string]any{"vm_name": vm.Name}
	for k, v := range base {
		vmBody[k] = v
	}
	if _, err := e.h.do(logical.UpdateOperation, "login", vmBody); err != nil {
		t.Fatalf("vm login: %v", err)
	}
	// The pod identity is not on app-vm.
	vmBody["jwt"] = e.podToken(t)
	if _, err := e.h.do(logical.UpdateOperation, "login", vmBody); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("vm login with another identity: err = %v", err)
	}
}

// TestCloudResourceIDLogin logs in naming the scale set by resource_id,
// which makes the method discover the api-version from the provider
// (GET /subscriptions/{sub}/providers/Microsoft.Compute) as Vault does.
func TestCloudResourceIDLogin(t *testing.T) {
	t.Parallel()
	e := newTutorialEnv(t, viaSecret, nil)
	c := e.cloud
	body := map[string]any{"role": "aks-role", "jwt": e.podToken(t), "subscription_id": c.SubscriptionID,
		"resource_group_name": e.rg, "resource_id": e.vmss.ID}
	if _, err := e.h.do(logical.UpdateOperation, "login", body); err != nil {
		t.Fatalf("resource_id login: %v", err)
	}
	body["resource_group_name"] = "other"
	if _, err := e.h.do(logical.UpdateOperation, "login", body); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("resource_id outside the login's resource group: err = %v", err)
	}
	body["resource_group_name"] = e.rg
	body["subscription_id"] = "00000000-0000-4000-8000-000000000000"
	e.h.mustDo(logical.UpdateOperation, "role/aks-role", map[string]any{"bound_subscription_ids": body["subscription_id"]})
	if _, err := e.h.do(logical.UpdateOperation, "login", body); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("resource_id outside the login's subscription: err = %v", err)
	}
	// The pod identity is not on the VM.
	vm := c.CreateVM(t, e.rg, "plain-vm")
	body["subscription_id"] = c.SubscriptionID
	body["resource_id"] = vm.ID
	e.h.mustDo(logical.UpdateOperation, "role/aks-role", e.role())
	if _, err := e.h.do(logical.UpdateOperation, "login", body); !errors.Is(err, azure.ErrNotAuthorized) {
		t.Fatalf("resource_id of a resource without the identity: err = %v", err)
	}
}

// payloadOf decodes a JWT's claims without verifying it.
func payloadOf(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// cloudPublicKey fetches the cloud's JWKS and returns the PEM of the key
// that signed tok, and its kid.
func cloudPublicKey(t testing.TB, c *cloudtest.Cloud, tok string) ([]byte, string) {
	t.Helper()
	hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if jerr := json.Unmarshal(hdr, &h); jerr != nil {
		t.Fatal(jerr)
	}
	resp, err := c.HTTPClient().Get(c.AuthorityHost + "common/discovery/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if derr := json.NewDecoder(resp.Body).Decode(&set); derr != nil {
		t.Fatal(derr)
	}
	keys := set.Key(h.Kid)
	if len(keys) == 0 {
		t.Fatalf("kid %q not in the cloud's JWKS", h.Kid)
	}
	der, err := x509.MarshalPKIXPublicKey(keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), h.Kid
}

// TestCloudARMCredentialFailures: when the server's own credential cannot
// read the scale set, the login fails with a 500 naming the ARM error and
// no token; nothing is cached, so fixing the credential fixes logins.
func TestCloudARMCredentialFailures(t *testing.T) {
	t.Parallel()
	e := newTutorialCloud(t)
	c := e.cloud
	// An identity without any role assignment, on its own VM.
	noRole := c.CreateIdentity(t, e.rg, "no-role")
	vm := c.CreateVM(t, e.rg, "no-role-vm")
	c.AssignIdentity(t, vm.ID, noRole.ID)
	imds := c.StartIMDS(t, vm.ID)

	tests := []struct {
		name string
		imds string
		cfg  map[string]any
	}{
		{"managed identity without Reader", imds, e.config(viaIMDS, nil)},
		{"wrong client secret", e.imds, e.config(viaSecret, map[string]any{"client_secret": "wrong"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			clock.Set(c.Now())
			h := newHarness(t, azure.Dependencies{HTTPClient: c.HTTPClient(), IMDSEndpoint: tc.imds, Clock: clock})
			tc.cfg["max_retries"] = 0
			h.mustDo(logical.UpdateOperation, "config", tc.cfg)
			h.mustDo(logical.UpdateOperation, "role/aks-role", e.role())
			resp, err := h.do(logical.UpdateOperation, "login", e.body(e.podToken(t)))
			t.Logf("refused: %v", err)
			if !errors.Is(err, azure.ErrResourceLookup) || resp != nil || statusOf(err) != 500 {
				t.Fatalf("login = %+v, %v; want ErrResourceLookup/500", resp, err)
			}
			// Fix the credential: the next login succeeds.
			h.mustDo(logical.UpdateOperation, "config", e.config(viaSecret, nil))
			if _, err := h.do(logical.UpdateOperation, "login", e.body(e.podToken(t))); err != nil {
				t.Fatalf("login after fixing the credential: %v", err)
			}
		})
	}
}
