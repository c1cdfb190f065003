package cloud_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// clearMSIEnv makes azidentity pick the IMDS source.
func clearMSIEnv(t *testing.T) {
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "AZURE_CLIENT_ID"} {
		t.Setenv(k, "")
	}
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManagedIdentityCredentialAgainstIMDS(t *testing.T) {
	clearMSIEnv(t)
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "MC_rg_cluster_eastus", "eastus")
	id := c.CreateIdentity(t, "MC_rg_cluster_eastus", "app-identity")
	other := c.CreateIdentity(t, "MC_rg_cluster_eastus", "other-identity")
	ss := c.CreateScaleSet(t, "MC_rg_cluster_eastus", "aks-nodepool1-12345678-vmss", 2)
	c.AssignIdentity(t, ss.ID, id.ID)
	c.AssignIdentity(t, ss.ID, other.ID)
	imds := c.StartIMDS(t, ss.Instances[1].ID)

	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID:            azidentity.ClientID(id.ClientID),
		ClientOptions: azcore.ClientOptions{Transport: c.IMDSTransport(t, imds)},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeClaims(t, tok.Token)
	want := map[string]any{
		"aud": "https://management.azure.com", "iss": "https://sts.windows.net/" + c.TenantID + "/",
		"oid": id.PrincipalID, "sub": id.PrincipalID, "appid": id.ClientID, "tid": c.TenantID,
		"idtyp": "app", "ver": "1.0", "appidacr": "2",
		"xms_mirid":  strings.Replace(id.ID, "/resourceGroups/", "/resourcegroups/", 1),
		"xms_az_rid": strings.Replace(ss.ID, "/resourceGroups/", "/resourcegroups/", 1),
	}
	for k, v := range want {
		if diff := cmp.Diff(v, got[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}
	if exp, iat := got["exp"].(float64), got["iat"].(float64); exp-iat != 86700 {
		t.Errorf("lifetime = %v, want 86700", exp-iat)
	}

	// go-oidc verifies the token against the stand-in's discovery, as Vault does.
	ctx := gooidc.ClientContext(context.Background(), c.HTTPClient())
	v := gooidc.NewVerifier("https://sts.windows.net/"+c.TenantID+"/", gooidc.NewRemoteKeySet(ctx, c.AuthorityHost+"common/discovery/keys"),
		&gooidc.Config{ClientID: "https://management.azure.com", SupportedSigningAlgs: []string{"RS256"}, Now: c.Now})
	if _, err := v.Verify(ctx, tok.Token); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestClientSecretCredential(t *testing.T) {
	c := cloudtest.Start(t)
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.AdminClientID, c.AdminClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeClaims(t, tok.Token)
	if diff := cmp.Diff("https://management.core.windows.net/", got["aud"]); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff(c.AdminObjectID, got["oid"]); diff != "" {
		t.Error(diff)
	}
}

func TestManagedIdentityCredentialSystemAssigned(t *testing.T) {
	clearMSIEnv(t)
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "westeurope")
	vm := c.CreateVM(t, "rg", "vm1")
	imds := c.StartIMDS(t, vm.ID)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: c.IMDSTransport(t, imds)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// No identity on the VM: IMDS answers 400 "Identity not found"; azidentity
	// reports the credential as unavailable, quoting the body.
	_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err == nil || !strings.Contains(err.Error(), `"error_description":"Identity not found"`) {
		t.Fatalf("no identity: %v", err)
	}
	comp, err := c.Server.UpdateComputeIdentity(context.Background(), vm.ID, cloud.IdentityUpdate{Type: "SystemAssigned"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	got := decodeClaims(t, tok.Token)
	want := map[string]any{"oid": comp.SystemPrincipalID, "appid": comp.SystemClientID, "xms_mirid": strings.Replace(vm.ID, "/resourceGroups/", "/resourcegroups/", 1), "aud": "https://vault.azure.net"}
	for k, v := range want {
		if diff := cmp.Diff(v, got[k]); diff != "" {
			t.Errorf("%s: %s", k, diff)
		}
	}
	if _, ok := got["xms_az_rid"]; ok {
		t.Error("system-assigned token carries xms_az_rid")
	}
}
