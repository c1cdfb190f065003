package cloud_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// TestRecreatedIdentityNotInherited checks that a VM's dangling reference to
// a deleted user-assigned identity does not bind a new identity created
// later under the same name: IMDS on the VM must not issue its tokens and
// ARM must not list it on the VM, as nobody with assign/action on the new
// identity assigned it.
func TestRecreatedIdentityNotInherited(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "eastus")
	old := c.CreateIdentity(t, "rg", "app-id")
	vm := c.CreateVM(t, "rg", "vm1")
	c.AssignIdentity(t, vm.ID, old.ID)
	imds := c.StartIMDS(t, vm.ID)
	hc := &http.Client{Timeout: 10 * time.Second}
	md := map[string]string{"Metadata": "true"}
	tok := imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F&client_id="

	if st, body := do(t, hc, http.MethodGet, tok+old.ClientID, md, ""); st != http.StatusOK {
		t.Fatalf("token for the assigned identity: %d %v", st, body)
	}
	if _, err := c.Server.DeleteIdentity(context.Background(), old.ID); err != nil {
		t.Fatal(err)
	}
	fresh := c.CreateIdentity(t, "rg", "app-id")
	if fresh.PrincipalID == old.PrincipalID {
		t.Fatal("recreated identity kept its principal")
	}

	tests := []struct {
		name  string
		query string
	}{
		{"by client_id", tok + fresh.ClientID},
		{"by msi_res_id", imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F&msi_res_id=" + fresh.ID},
		{"default identity", imds + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if st, body := do(t, hc, http.MethodGet, tc.query, md, ""); st == http.StatusOK {
				t.Fatalf("IMDS issued a token of the recreated identity (client_id %v)", body["client_id"])
			}
		})
	}
	t.Run("ARM identity block", func(t *testing.T) {
		admin := map[string]string{"Authorization": "Bearer " + armToken(t, c, c.AdminClientID, c.AdminClientSecret)}
		st, body := do(t, c.HTTPClient(), http.MethodGet, c.ARMEndpoint+vm.ID[1:]+"?api-version=2024-11-01", admin, "")
		if st != http.StatusOK {
			t.Fatalf("GET vm: %d %v", st, body)
		}
		ident, _ := body["identity"].(map[string]any)
		ua, _ := ident["userAssignedIdentities"].(map[string]any)
		for id, v := range ua {
			if m, _ := v.(map[string]any); m["principalId"] == fresh.PrincipalID {
				t.Fatalf("vm lists the recreated identity %s: %v", id, v)
			}
		}
	})
}
