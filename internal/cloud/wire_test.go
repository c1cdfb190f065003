package cloud_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// do sends a request and returns status and decoded JSON body.
func do(t *testing.T, hc *http.Client, method, u string, hdr map[string]string, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if body != "" && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			m = map[string]any{"_raw": string(b)}
		}
	}
	return resp.StatusCode, m
}

// armToken gets an ARM token for a client with the v1 endpoint.
func armToken(t *testing.T, c *cloudtest.Cloud, clientID, secret string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "resource": {"https://management.azure.com/"}}
	st, m := do(t, c.HTTPClient(), http.MethodPost, c.AuthorityHost+c.TenantID+"/oauth2/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	if st != http.StatusOK {
		t.Fatalf("token: %d %v", st, m)
	}
	return m["access_token"].(string)
}

func armError(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	return code
}

func TestIMDSBadInput(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "eastus")
	a := c.CreateIdentity(t, "rg", "id-a")
	b := c.CreateIdentity(t, "rg", "id-b")
	ss := c.CreateScaleSet(t, "rg", "vmss", 1)
	vm := c.CreateVM(t, "rg", "plainvm")
	imds := c.StartIMDS(t, ss.Instances[0].ID)
	bare := c.StartIMDS(t, vm.ID)
	hc := &http.Client{Timeout: 10 * time.Second}
	md := map[string]string{"Metadata": "true"}
	tok := "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"

	// no identities on the VM yet
	st, body := do(t, hc, http.MethodGet, bare+tok, md, "")
	if diff := cmp.Diff(map[string]any{"error": "invalid_request", "error_description": "Identity not found"}, body); st != 400 || diff != "" {
		t.Errorf("no identity: %d %s", st, diff)
	}
	c.AssignIdentity(t, ss.ID, a.ID)
	c.AssignIdentity(t, ss.ID, b.ID)

	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		status int
		want   map[string]any
	}{
		{"missing Metadata header", tok, nil, 400, map[string]any{"error": "invalid_request", "error_description": "Required metadata header not specified"}},
		{"instance without header", "/metadata/instance?api-version=2017-08-01", nil, 400, map[string]any{"error": "Bad request. Required metadata header not specified"}},
		{"X-Forwarded-For", tok, map[string]string{"Metadata": "true", "X-Forwarded-For": "1.2.3.4"}, 400, map[string]any{"error": "invalid_request", "error_description": "Request contains X-Forwarded-For header"}},
		{"instance missing api-version", "/metadata/instance", md, 400, map[string]any{"error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": []any{"2020-10-01", "2020-09-01", "2020-07-15"}}},
		{"instance unknown api-version", "/metadata/instance?api-version=2099-01-01", md, 400, map[string]any{"error": "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": []any{"2020-10-01", "2020-09-01", "2020-07-15"}}},
		{"token unknown api-version", "/metadata/identity/oauth2/token?api-version=2099-01-01&resource=x", md, 400, map[string]any{"error": "invalid_request", "error_description": "Invalid 'api-version' requested"}},
		{"missing resource", "/metadata/identity/oauth2/token?api-version=2018-02-01", md, 400, map[string]any{"error": "invalid_request", "error_description": "Required audience parameter not specified"}},
		{"several identities, none selected", tok, md, 400, map[string]any{"error": "invalid_request", "error_description": "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"}},
		{"unknown client_id", tok + "&client_id=00000000-0000-0000-0000-000000000000", md, 400, map[string]any{"error": "invalid_request", "error_description": "Identity not found"}},
		{"malformed msi_res_id", tok + "&msi_res_id=not-a-resource-id", md, 400, map[string]any{"error": "invalid_request", "error_description": "Identity not found"}},
		{"duplicate query parameter", tok + "&resource=y", md, 400, map[string]any{"error": "Bad request. Query parameter resource is specified more than once."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, hc, http.MethodGet, imds+tc.path, tc.hdr, "")
			if status != tc.status {
				t.Errorf("status = %d, want %d (%v)", status, tc.status, body)
			}
			if diff := cmp.Diff(tc.want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
	st, _ = do(t, hc, http.MethodPut, imds+tok, md, "")
	if st != http.StatusMethodNotAllowed {
		t.Errorf("PUT status = %d", st)
	}

	// Selection by each selector works and the response has IMDS's 8 string fields.
	for _, sel := range []string{"client_id=" + a.ClientID, "object_id=" + a.PrincipalID, "msi_res_id=" + url.QueryEscape(a.ID), "mi_res_id=" + url.QueryEscape(strings.ToLower(a.ID))} {
		st, body := do(t, hc, http.MethodGet, imds+tok+"&"+sel, md, "")
		if st != 200 {
			t.Fatalf("%s: %d %v", sel, st, body)
		}
		var keys []string
		for k, v := range body {
			if _, ok := v.(string); !ok {
				t.Errorf("%s is %T, want string", k, v)
			}
			keys = append(keys, k)
		}
		if diff := cmp.Diff(8, len(keys)); diff != "" {
			t.Errorf("fields %v", keys)
		}
		if body["client_id"] != a.ClientID || body["resource"] != "https://management.azure.com/" || body["token_type"] != "Bearer" {
			t.Errorf("%s: %v", sel, body)
		}
	}
}

func TestIMDSInstanceMetadata(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "MC_rg_cl_eastus", "eastus")
	ss := c.CreateScaleSet(t, "MC_rg_cl_eastus", "aks-nodepool1-12345678-vmss", 2)
	imds := c.StartIMDS(t, ss.Instances[1].ID)
	hc := &http.Client{Timeout: 10 * time.Second}
	st, body := do(t, hc, http.MethodGet, imds+"/metadata/instance?api-version=2017-08-01", map[string]string{"Metadata": "true"}, "")
	if st != 200 {
		t.Fatalf("%d %v", st, body)
	}
	comp := body["compute"].(map[string]any)
	want := map[string]any{
		"subscriptionId": c.SubscriptionID, "resourceGroupName": "MC_rg_cl_eastus", "name": "aks-nodepool1-12345678-vmss_1",
		"vmScaleSetName": "aks-nodepool1-12345678-vmss", "location": "eastus", "vmId": ss.Instances[1].VMID,
	}
	for k, v := range want {
		if diff := cmp.Diff(v, comp[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if _, ok := comp["resourceId"]; ok {
		t.Errorf("resourceId present in 2017-08-01")
	}
	// leaf in text format
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, imds+"/metadata/instance/compute/vmScaleSetName?api-version=2017-12-01&format=text", nil)
	req.Header.Set("Metadata", "true")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if diff := cmp.Diff("aks-nodepool1-12345678-vmss", string(b)); diff != "" {
		t.Error(diff)
	}
	st, body = do(t, hc, http.MethodGet, imds+"/metadata/instance/compute/vmScaleSetName?api-version=2017-12-01", map[string]string{"Metadata": "true"}, "")
	if st != 400 {
		t.Errorf("leaf as json: %d %v", st, body)
	}
	st, body = do(t, hc, http.MethodGet, imds+"/metadata/versions", map[string]string{"Metadata": "true"}, "")
	if st != 200 || len(body["apiVersions"].([]any)) == 0 {
		t.Errorf("versions: %d %v", st, body)
	}
}

func TestIMDSRateLimit(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t) // Azure's limit: 20 identity requests/s per VM; the clock is frozen.
	c.CreateResourceGroup(t, "rg", "eastus")
	id := c.CreateIdentity(t, "rg", "app")
	vm := c.CreateVM(t, "rg", "vm1")
	c.AssignIdentity(t, vm.ID, id.ID)
	imds := c.StartIMDS(t, vm.ID)
	hc := &http.Client{Timeout: 10 * time.Second}
	u := imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
	for i := range 20 {
		if st, body := do(t, hc, http.MethodGet, u, map[string]string{"Metadata": "true"}, ""); st != 200 {
			t.Fatalf("request %d: %d %v", i, st, body)
		}
	}
	st, body := do(t, hc, http.MethodGet, u, map[string]string{"Metadata": "true"}, "")
	if st != http.StatusTooManyRequests || body["error"] != "too_many_requests" {
		t.Fatalf("21st request: %d %v", st, body)
	}
	c.Advance(time.Second)
	if st, body := do(t, hc, http.MethodGet, u, map[string]string{"Metadata": "true"}, ""); st != 200 {
		t.Fatalf("after 1s: %d %v", st, body)
	}
}

func TestARMBadInput(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "eastus")
	ss := c.CreateScaleSet(t, "rg", "vmss", 1)
	hc := c.HTTPClient()
	admin := map[string]string{"Authorization": "Bearer " + armToken(t, c, c.AdminClientID, c.AdminClientSecret)}
	cid, secret, _ := c.ServicePrincipal(t, "nobody")
	nobody := map[string]string{"Authorization": "Bearer " + armToken(t, c, cid, secret)}
	base := strings.TrimSuffix(c.ARMEndpoint, "/")
	sub := "/subscriptions/" + c.SubscriptionID
	vmss := base + ss.ID

	tests := []struct {
		name   string
		method string
		url    string
		hdr    map[string]string
		body   string
		status int
		code   string
	}{
		{"no token", "GET", vmss + "?api-version=2024-11-01", nil, "", 401, "AuthenticationFailed"},
		{"bad token", "GET", vmss + "?api-version=2024-11-01", map[string]string{"Authorization": "Bearer x.y.z"}, "", 401, "InvalidAuthenticationToken"},
		{"missing api-version", "GET", vmss, admin, "", 400, "MissingApiVersionParameter"},
		{"unknown api-version compute", "GET", vmss + "?api-version=2099-01-01", admin, "", 400, "NoRegisteredProviderFound"},
		{"unknown api-version groups", "GET", base + sub + "/resourcegroups/rg?api-version=2099-01-01", admin, "", 400, "InvalidApiVersionParameter"},
		{"malformed subscription", "GET", base + "/subscriptions/not-a-guid/resourceGroups/rg?api-version=2021-04-01", admin, "", 400, "InvalidSubscriptionId"},
		{"no subscription", "GET", base + "/resourceGroups/rg?api-version=2021-04-01", admin, "", 400, "MissingSubscription"},
		{"unknown namespace", "GET", base + sub + "/resourceGroups/rg/providers/Microsoft.Nope/things/x?api-version=2021-04-01", admin, "", 400, "InvalidResourceNamespace"},
		{"unknown group", "GET", base + sub + "/resourceGroups/nope?api-version=2021-04-01", admin, "", 404, "ResourceGroupNotFound"},
		{"unknown identity", "GET", base + sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope?api-version=2023-01-31", admin, "", 404, "ResourceNotFound"},
		{"caller without a role", "GET", vmss + "?api-version=2024-11-01", nobody, "", 403, "AuthorizationFailed"},
		{"caller without a role, missing resource", "GET", base + sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/nope?api-version=2024-11-01", nobody, "", 403, "AuthorizationFailed"},
		{"malformed identity ID in PATCH", "PATCH", vmss + "?api-version=2019-12-01", admin, `{"identity":{"type":"UserAssigned","userAssignedIdentities":{"not/an/id":{}}}}`, 400, "LinkedInvalidPropertyId"},
		{"nonexistent identity in PATCH", "PATCH", vmss + "?api-version=2019-12-01", admin, `{"identity":{"type":"UserAssigned","userAssignedIdentities":{"` + sub + `/resourcegroups/rg/providers/microsoft.managedidentity/userassignedidentities/gone":{}}}}`, 400, "FailedIdentityOperation"},
		{"UserAssigned with no ids", "PATCH", vmss + "?api-version=2019-12-01", admin, `{"identity":{"type":"UserAssigned"}}`, 400, "MissingIdentityIds"},
		{"bad identity type", "PATCH", vmss + "?api-version=2019-12-01", admin, `{"identity":{"type":"Bogus"}}`, 400, "InvalidParameter"},
		{"bad JSON", "PATCH", vmss + "?api-version=2019-12-01", admin, `{`, 400, "InvalidRequestContent"},
		{"unknown role", "PUT", base + sub + "/providers/Microsoft.Authorization/roleAssignments/6b7f9f4c-1b1e-4bde-9a7c-2f4f7f9d1a11?api-version=2022-04-01", admin, `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-0000-0000-000000000000","principalId":"` + c.AdminObjectID + `"}}`, 400, "RoleDefinitionDoesNotExist"},
		{"unknown principal", "PUT", base + sub + "/providers/Microsoft.Authorization/roleAssignments/6b7f9f4c-1b1e-4bde-9a7c-2f4f7f9d1a11?api-version=2022-04-01", admin, `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7","principalId":"00000000-0000-0000-0000-000000000001"}}`, 400, "PrincipalNotFound"},
		{"role assignment name not a GUID", "PUT", base + sub + "/providers/Microsoft.Authorization/roleAssignments/abc?api-version=2022-04-01", admin, `{"properties":{"roleDefinitionId":"/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7","principalId":"` + c.AdminObjectID + `"}}`, 400, "InvalidRoleAssignmentId"},
		{"identity name too short", "PUT", base + sub + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ab?api-version=2023-01-31", admin, `{"location":"eastus"}`, 400, "InvalidResourceName"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(t, hc, tc.method, tc.url, tc.hdr, tc.body)
			if st != tc.status || armError(body) != tc.code {
				t.Errorf("got %d %v, want %d %s", st, body, tc.status, tc.code)
			}
			if e, _ := body["error"].(map[string]any); e == nil || e["message"] == "" {
				t.Errorf("error body lacks message: %v", body)
			}
		})
	}
}

func TestDiscoveryAndKeyRotation(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "eastus")
	id := c.CreateIdentity(t, "rg", "app")
	hc := c.HTTPClient()

	// Vault's manual two-step discovery: v1 document → issuer + jwks_uri.
	st, doc := do(t, hc, http.MethodGet, c.AuthorityHost+c.TenantID+"/.well-known/openid-configuration", nil, "")
	if st != 200 {
		t.Fatalf("discovery: %d", st)
	}
	if diff := cmp.Diff("https://sts.windows.net/"+c.TenantID+"/", doc["issuer"]); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff(c.AuthorityHost+"common/discovery/keys", doc["jwks_uri"]); diff != "" {
		t.Error(diff)
	}
	st, v2 := do(t, hc, http.MethodGet, c.AuthorityHost+c.TenantID+"/v2.0/.well-known/openid-configuration", nil, "")
	if st != 200 || v2["issuer"] != c.AuthorityHost+c.TenantID+"/v2.0" {
		t.Errorf("v2 discovery: %d %v", st, v2["issuer"])
	}
	st, bad := do(t, hc, http.MethodGet, c.AuthorityHost+"00000000-0000-0000-0000-000000000000/.well-known/openid-configuration", nil, "")
	if st != 400 || bad["error"] != "invalid_tenant" || !strings.HasPrefix(bad["error_description"].(string), "AADSTS90002:") {
		t.Errorf("unknown tenant: %d %v", st, bad)
	}
	st, jwks := do(t, hc, http.MethodGet, c.AuthorityHost+c.TenantID+"/discovery/keys", nil, "")
	keys := jwks["keys"].([]any)
	k0 := keys[0].(map[string]any)
	if st != 200 || len(keys) != 1 || k0["kid"] != k0["x5t"] || k0["kty"] != "RSA" || len(k0["x5c"].([]any)) != 1 {
		t.Errorf("jwks: %d %v", st, jwks)
	}

	ctx := gooidc.ClientContext(context.Background(), hc)
	verifier := func() *gooidc.IDTokenVerifier { // a fresh verifier per check, so no key cache hides rotation
		return gooidc.NewVerifier(doc["issuer"].(string), gooidc.NewRemoteKeySet(ctx, doc["jwks_uri"].(string)),
			&gooidc.Config{ClientID: "https://management.azure.com/", SupportedSigningAlgs: []string{"RS256"}, Now: c.Now})
	}
	old := c.IssueToken(t, id, "https://management.azure.com/")
	if _, err := verifier().Verify(ctx, old); err != nil {
		t.Fatalf("verify: %v", err)
	}
	c.RotateKeys(t)
	fresh := c.IssueToken(t, id, "https://management.azure.com/")
	_, jwks = do(t, hc, http.MethodGet, c.AuthorityHost+"common/discovery/keys", nil, "")
	if n := len(jwks["keys"].([]any)); n != 2 {
		t.Errorf("keys during overlap = %d, want 2", n)
	}
	for name, tok := range map[string]string{"old": old, "fresh": fresh} {
		if _, err := verifier().Verify(ctx, tok); err != nil {
			t.Errorf("%s token during overlap: %v", name, err)
		}
	}
	// After the overlap (25h) the old key is gone; a token it signed no
	// longer verifies even with an expiry check that would pass.
	c.Advance(25*time.Hour + time.Minute)
	old2 := c.IssueToken(t, id, "https://management.azure.com/") // signed by the new key
	v := gooidc.NewVerifier(doc["issuer"].(string), gooidc.NewRemoteKeySet(ctx, doc["jwks_uri"].(string)),
		&gooidc.Config{ClientID: "https://management.azure.com/", SupportedSigningAlgs: []string{"RS256"}, Now: c.Now, SkipExpiryCheck: true})
	if _, err := v.Verify(ctx, old); err == nil {
		t.Error("token signed by rotated-out key still verifies")
	}
	if _, err := v.Verify(ctx, old2); err != nil {
		t.Errorf("new key: %v", err)
	}
	_, jwks = do(t, hc, http.MethodGet, c.AuthorityHost+"common/discovery/keys", nil, "")
	if n := len(jwks["keys"].([]any)); n != 1 {
		t.Errorf("keys after overlap = %d, want 1", n)
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	hc := c.HTTPClient()
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	ct := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	v1 := c.AuthorityHost + c.TenantID + "/oauth2/token"
	v2 := c.AuthorityHost + c.TenantID + "/oauth2/v2.0/token"
	tests := []struct {
		name   string
		url    string
		body   string
		status int
		err    string
		code   float64
	}{
		{"missing grant_type", v1, form("client_id", c.AdminClientID), 400, "invalid_request", 900144},
		{"wrong secret", v1, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "client_secret", "nope", "resource", "https://management.azure.com/"), 401, "invalid_client", 7000215},
		{"unknown client", v1, form("grant_type", "client_credentials", "client_id", "00000000-0000-0000-0000-000000000000", "client_secret", "x", "resource", "r"), 400, "unauthorized_client", 700016},
		{"no credential", v2, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "scope", "https://management.azure.com/.default"), 401, "invalid_client", 7000218},
		{"scope without .default", v2, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "client_secret", c.AdminClientSecret, "scope", "https://management.azure.com/user_impersonation"), 400, "invalid_scope", 1002012},
		{"v1 without resource", v1, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "client_secret", c.AdminClientSecret), 400, "invalid_request", 900144},
		{"unknown tenant", c.AuthorityHost + "11111111-1111-1111-1111-111111111111/oauth2/token", form("grant_type", "client_credentials"), 400, "invalid_tenant", 90002},
		{"unsupported grant", v1, form("grant_type", "password", "client_id", c.AdminClientID), 400, "unsupported_grant_type", 70003},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := do(t, hc, http.MethodPost, tc.url, ct, tc.body)
			codes, _ := body["error_codes"].([]any)
			if st != tc.status || body["error"] != tc.err || len(codes) != 1 || codes[0] != tc.code {
				t.Errorf("got %d %v", st, body)
			}
			if d, _ := body["error_description"].(string); !strings.HasPrefix(d, "AADSTS") {
				t.Errorf("description %q", d)
			}
		})
	}
	// v1 success shape: all strings
	st, body := do(t, hc, http.MethodPost, v1, ct, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "client_secret", c.AdminClientSecret, "resource", "https://vault.azure.net"))
	if st != 200 || body["resource"] != "https://vault.azure.net" || body["token_type"] != "Bearer" || body["expires_in"] != "3599" {
		t.Errorf("v1 success: %d %v", st, body)
	}
	st, body = do(t, hc, http.MethodPost, v2, ct, form("grant_type", "client_credentials", "client_id", c.AdminClientID, "client_secret", c.AdminClientSecret, "scope", "https://vault.azure.net/.default"))
	if st != 200 || body["expires_in"] != float64(3599) {
		t.Errorf("v2 success: %d %v", st, body)
	}
}
