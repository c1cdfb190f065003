package cloud_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/keyward/keyward/internal/cloud"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

func TestRestartPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := clocktesting.NewFakeClock(time.Now())
	c1 := cloudtest.StartWith(t, cloudtest.Options{DataDir: dir, Clock: clk})
	c1.CreateResourceGroup(t, "rg", "eastus")
	id := c1.CreateIdentity(t, "rg", "app")
	ss := c1.CreateScaleSet(t, "rg", "vmss", 2)
	c1.AssignIdentity(t, ss.ID, id.ID)
	ra := c1.AssignRole(t, id.PrincipalID, "Reader", "/subscriptions/"+c1.SubscriptionID+"/resourceGroups/rg")
	tok := c1.IssueToken(t, id, "https://management.azure.com/")
	c1.Stop()

	c2 := cloudtest.StartWith(t, cloudtest.Options{DataDir: dir, Clock: clk})
	for name, pair := range map[string][2]string{
		"tenant": {c1.TenantID, c2.TenantID}, "subscription": {c1.SubscriptionID, c2.SubscriptionID},
		"admin": {c1.AdminClientID, c2.AdminClientID}, "admin secret": {c1.AdminClientSecret, c2.AdminClientSecret},
		"ca": {string(c1.CACertPEM), string(c2.CACertPEM)},
	} {
		if diff := cmp.Diff(pair[0], pair[1]); diff != "" {
			t.Errorf("%s changed across restart (-before +after):\n%s", name, diff)
		}
	}
	ctx := context.Background()
	got, err := c2.Server.Identity(ctx, id.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{id.ClientID, id.PrincipalID}, []string{got.ClientID, got.PrincipalID}); diff != "" {
		t.Error(diff)
	}
	comp, err := c2.Server.Compute(ctx, ss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{id.ID}, comp.UserAssigned); diff != "" {
		t.Error(diff)
	}
	if _, err = c2.Server.RoleAssignment(ctx, ra); err != nil {
		t.Errorf("role assignment lost: %v", err)
	}
	// the signing key persisted: a token minted before the restart verifies
	hc := c2.HTTPClient()
	octx := gooidc.ClientContext(ctx, hc)
	v := gooidc.NewVerifier("https://sts.windows.net/"+c2.TenantID+"/", gooidc.NewRemoteKeySet(octx, c2.AuthorityHost+"common/discovery/keys"),
		&gooidc.Config{ClientID: "https://management.azure.com/", Now: c2.Now})
	if _, err = v.Verify(octx, tok); err != nil {
		t.Errorf("pre-restart token: %v", err)
	}
	// the admin can still call ARM
	st, body := do(t, hc, http.MethodGet, strings.TrimSuffix(c2.ARMEndpoint, "/")+ss.ID+"?api-version=2024-11-01",
		map[string]string{"Authorization": "Bearer " + armToken(t, c2, c2.AdminClientID, c2.AdminClientSecret)}, "")
	if st != 200 {
		t.Errorf("ARM after restart: %d %v", st, body)
	}
	// secrets at rest: files are 0600 and the key material is not in the DB in clear
	for _, f := range []string{"cloud.db", "signing.kek", "ca-key.pem", "profile.json"} {
		fi, serr := os.Stat(filepath.Join(dir, f))
		if serr != nil {
			t.Fatal(serr)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	db, err := os.ReadFile(filepath.Join(dir, "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(db), "pkcs8") || strings.Contains(string(db), c2.AdminClientSecret) {
		t.Error("signing key or client secret stored in clear in cloud.db")
	}
}

func TestBootstrapFile(t *testing.T) {
	t.Parallel()
	b, err := cloud.ParseBootstrap([]byte(`
tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
subscriptionId: 0b1f6471-1bf0-4dda-aec3-cb9272f09590
resourceGroups:
- name: MC_myResourceGroup_myAKSCluster_eastus
  location: eastus
  identities: [{name: vault-identity}]
  scaleSets: [{name: aks-nodepool1-12345678-vmss, instances: 3, identities: [vault-identity]}]
roleAssignments:
- identity: /subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/MC_myResourceGroup_myAKSCluster_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vault-identity
  role: Reader
  scope: /subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/MC_myResourceGroup_myAKSCluster_eastus
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := cloudtest.StartWith(t, cloudtest.Options{DataDir: dir, Bootstrap: b})
	if c.TenantID != "72f988bf-86f1-41af-91ab-2d7cd011db47" || c.SubscriptionID != "0b1f6471-1bf0-4dda-aec3-cb9272f09590" {
		t.Fatalf("tenant/sub = %s/%s", c.TenantID, c.SubscriptionID)
	}
	ssID := "/subscriptions/0b1f6471-1bf0-4dda-aec3-cb9272f09590/resourceGroups/MC_myResourceGroup_myAKSCluster_eastus/providers/Microsoft.Compute/virtualMachineScaleSets/aks-nodepool1-12345678-vmss"
	comp, err := c.Server.Compute(context.Background(), ssID)
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Instances) != 3 || len(comp.UserAssigned) != 1 {
		t.Errorf("scale set = %+v", comp)
	}
	c.Stop()
	// applying again (restart with the same file) is idempotent
	c2 := cloudtest.StartWith(t, cloudtest.Options{DataDir: dir, Bootstrap: b})
	if n := len(c2.Server.ListRoleAssignments(context.Background(), "/", "", false)); n != 2 { // admin Owner + Reader
		t.Errorf("role assignments after re-bootstrap = %d, want 2", n)
	}
	if _, err := cloud.ParseBootstrap([]byte("unknownField: 1")); err == nil {
		t.Error("unknown field accepted")
	}
}
