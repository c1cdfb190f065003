package azure_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/core/coretest"
)

// TestTutorialOverHTTP runs the tutorial's Vault steps against a real
// server with the real vault/api client, the pod's login as the tutorial's
// curl sends it, and keyward cloud as Azure.
func TestTutorialOverHTTP(t *testing.T) {
	t.Parallel()
	e := newTutorialCloud(t)
	c := e.cloud
	ts := coretest.NewTestServer(t, coretest.WithDependencies(builtin.Dependencies{
		AzureHTTPClient: c.HTTPClient(),
		IMDSEndpoint:    e.imds,
	}))
	root := ts.Client

	if err := root.Sys().EnableAuthWithOptions("azure", &api.EnableAuthOptions{Type: "azure"}); err != nil {
		t.Fatalf("auth enable azure: %v", err)
	}
	cfg := map[string]any{}
	for k, v := range e.config(viaIMDS, nil) {
		cfg[k] = v
	}
	if _, err := root.Logical().Write("auth/azure/config", cfg); err != nil {
		t.Fatalf("write config: %v", err)
	}
	if _, err := root.Logical().Write("auth/azure/role/aks-role", e.role()); err != nil {
		t.Fatalf("write role: %v", err)
	}
	if err := root.Sys().Mount("aks", &api.MountInput{Type: "kv"}); err != nil {
		t.Fatalf("secrets enable kv: %v", err)
	}
	if _, err := root.Logical().Write("aks/mysecret", map[string]any{"foo": "bar"}); err != nil {
		t.Fatalf("kv put: %v", err)
	}
	if err := root.Sys().PutPolicy("aks", "path \"aks/*\" {\n  capabilities = [\"read\",\"list\"]\n}\n"); err != nil {
		t.Fatalf("policy write: %v", err)
	}
	// Secrets never come back.
	got, err := root.Logical().Read("auth/azure/config")
	if err != nil || got == nil {
		t.Fatalf("read config: %v", err)
	}
	if _, ok := got.Data["client_secret"]; ok {
		t.Error("client_secret read back")
	}

	// The pod: curl -X POST $VAULT_ADDR/v1/auth/azure/login -d '{...}'.
	body, err := json.Marshal(e.body(e.podToken(t)))
	if err != nil {
		t.Fatal(err)
	}
	status, out := postJSON(t, ts.Addr+"/v1/auth/azure/login", body)
	if status != http.StatusOK {
		t.Fatalf("login: %d %s", status, out)
	}
	var login struct {
		Auth struct {
			ClientToken   string            `json:"client_token"`
			Accessor      string            `json:"accessor"`
			Orphan        bool              `json:"orphan"`
			TokenType     string            `json:"token_type"`
			Policies      []string          `json:"policies"`
			TokenPolicies []string          `json:"token_policies"`
			Metadata      map[string]string `json:"metadata"`
			LeaseDuration int               `json:"lease_duration"`
			Renewable     bool              `json:"renewable"`
		} `json:"auth"`
	}
	if jerr := json.Unmarshal(out, &login); jerr != nil {
		t.Fatalf("login response %s: %v", out, jerr)
	}
	a := login.Auth
	if a.ClientToken == "" {
		t.Fatalf("no client_token in %s", out)
	}
	if diff := cmp.Diff([]string{"aks", "default"}, a.Policies); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"aks", "default"}, a.TokenPolicies); diff != "" {
		t.Errorf("token_policies (-want +got):\n%s", diff)
	}
	if a.Accessor == "" || !a.Orphan || a.TokenType != "service" {
		t.Errorf("accessor %q orphan %v token_type %q, want non-empty, true, service", a.Accessor, a.Orphan, a.TokenType)
	}
	wantMeta := map[string]string{
		"role": "aks-role", "subscription_id": c.SubscriptionID, "resource_group_name": e.rg,
		"vm_name": e.vmss.Instances[0].Name, "vmss_name": e.vmss.Name,
	}
	if diff := cmp.Diff(wantMeta, a.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if a.LeaseDuration != 2764800 || !a.Renewable {
		t.Errorf("lease_duration %d renewable %v, want 2764800 true", a.LeaseDuration, a.Renewable)
	}

	// The pod reads what policy aks allows, and nothing more.
	pod := ts.NewClient(t, a.ClientToken)
	secret, err := pod.Logical().Read("aks/mysecret")
	if err != nil || secret == nil {
		t.Fatalf("read aks/mysecret: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"foo": "bar"}, secret.Data); diff != "" {
		t.Errorf("secret (-want +got):\n%s", diff)
	}
	_, err = pod.Logical().Write("aks/other", map[string]any{"x": "y"})
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Errorf("write with the pod token: %v, want 403", err)
	}
	if _, rerr := pod.Auth().Token().RenewSelf(0); rerr != nil {
		t.Errorf("renew-self: %v", rerr)
	}

	// A forged token over HTTP: 500 with Vault's message, no auth.
	forged := e.body(flipSignatureByte(t, e.podToken(t)))
	body, err = json.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	status, out = postJSON(t, ts.Addr+"/v1/auth/azure/login", body)
	var errResp struct {
		Errors []string        `json:"errors"`
		Auth   json.RawMessage `json:"auth"`
	}
	if err := json.Unmarshal(out, &errResp); err != nil {
		t.Fatalf("error body %s: %v", out, err)
	}
	if status != http.StatusInternalServerError || len(errResp.Errors) != 1 || errResp.Auth != nil {
		t.Errorf("forged login: %d %s", status, out)
	}
}

func postJSON(t testing.TB, url string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, buf.Bytes()
}
