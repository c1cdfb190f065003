package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// runCloud runs a keyward command line in-process against the stand-in in dir.
func runCloud(t *testing.T, dir string, line ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "KEYWARD_CLOUD_DIR" {
			return dir
		}
		return ""
	}}
	code = Main(context.Background(), env, line)
	return code, out.String(), errb.String()
}

// TestCloudTutorialSteps runs the tutorial's az steps as keyward cloud
// commands and checks the captured values are the real ones.
func TestCloudTutorialSteps(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "MC_aks-demo-rg_demo-cluster_canadacentral", "canadacentral")
	ss := c.CreateScaleSet(t, "MC_aks-demo-rg_demo-cluster_canadacentral", "aks-nodepool1-12345678-vmss", 1)
	dir := c.DataDir
	capture := func(line ...string) string {
		t.Helper()
		code, out, errOut := runCloud(t, dir, line...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", line, code, errOut)
		}
		return strings.TrimSuffix(out, "\n")
	}
	if diff := cmp.Diff(c.TenantID, capture("cloud", "account", "show", "--query", "tenantId", "-o", "tsv")); diff != "" {
		t.Errorf("tenant: %s", diff)
	}
	capture("cloud", "group", "create", "--location", "canadacentral", "--name", "aks-demo-rg")
	capture("cloud", "identity", "create", "-g", "aks-demo-rg", "-n", "vault-identity")
	clientID := capture("cloud", "identity", "show", "-g", "aks-demo-rg", "-n", "vault-identity", "--query", "clientId", "-otsv")
	resourceID := capture("cloud", "identity", "show", "-g", "aks-demo-rg", "-n", "vault-identity", "--query", "id", "-otsv")
	scope := "/subscriptions/" + c.SubscriptionID + "/resourceGroups/aks-demo-rg"
	assignmentID := capture("cloud", "role", "assignment", "create", "--role", "Reader", "--assignee", clientID, "--scope", scope, "--query", "id", "-otsv")

	ctx := context.Background()
	ident, err := c.Server.Identity(ctx, scope+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/vault-identity")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{ident.ClientID, ident.ID}, []string{clientID, resourceID}); diff != "" {
		t.Errorf("captured identity values (-want +got):\n%s", diff)
	}
	ra, err := c.Server.RoleAssignment(ctx, assignmentID)
	if err != nil {
		t.Fatalf("assignment %q: %v", assignmentID, err)
	}
	if diff := cmp.Diff([]string{ident.PrincipalID, "/subscriptions/" + c.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", scope},
		[]string{ra.PrincipalID, ra.RoleDefinitionID, ra.Scope}); diff != "" {
		t.Errorf("role assignment (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(assignmentID, scope+"/providers/Microsoft.Authorization/roleAssignments/") {
		t.Errorf("assignment id %q", assignmentID)
	}

	capture("cloud", "vmss", "identity", "assign", "-g", "MC_aks-demo-rg_demo-cluster_canadacentral", "-n", ss.Name, "--identities", resourceID)
	comp, err := c.Server.Compute(ctx, ss.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{resourceID}, comp.UserAssigned); diff != "" {
		t.Errorf("vmss identities: %s", diff)
	}
	pid := capture("cloud", "vmss", "identity", "show", "-g", "MC_aks-demo-rg_demo-cluster_canadacentral", "-n", ss.Name, "--query", "type", "-o", "tsv")
	if diff := cmp.Diff("UserAssigned", pid); diff != "" {
		t.Error(diff)
	}
}

func TestCloudCLIErrors(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	c.CreateResourceGroup(t, "rg", "eastus")
	tests := []struct {
		name string
		line []string
		code int
		want string
	}{
		{"unknown identity", []string{"cloud", "identity", "show", "-g", "rg", "-n", "missing"}, 1, "(ResourceNotFound)"},
		{"unknown group", []string{"cloud", "identity", "create", "-g", "nope", "-n", "abc"}, 1, "(ResourceGroupNotFound)"},
		{"unknown flag", []string{"cloud", "identity", "show", "--bogus", "x"}, 2, "unrecognized arguments: --bogus"},
		{"missing flag", []string{"cloud", "identity", "create", "-g", "rg"}, 2, "the following arguments are required: --name"},
		{"unknown assignee", []string{"cloud", "role", "assignment", "create", "--role", "Reader", "--assignee", "00000000-0000-0000-0000-000000000000"}, 1, "Cannot find user or service principal"},
		{"unknown role", []string{"cloud", "role", "assignment", "create", "--role", "Wizard", "--assignee-object-id", c.AdminObjectID}, 1, "Role 'Wizard' doesn't exist."},
		{"bad output", []string{"cloud", "account", "show", "-o", "yaml"}, 1, "invalid choice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCloud(t, c.DataDir, tc.line...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, errOut, tc.code, tc.want)
			}
		})
	}
	if code, _, errOut := runCloud(t, t.TempDir(), "cloud", "account", "show"); code != 1 || !strings.Contains(errOut, "profile") {
		t.Errorf("no profile: %d %q", code, errOut)
	}
}

func TestCloudQueryAndTSV(t *testing.T) {
	t.Parallel()
	doc := map[string]any{"a": map[string]any{"b": []any{"x", "y"}}, "n": 3, "t": true, "s": "str"}
	tests := []struct {
		query, output, want string
	}{
		{"s", "tsv", "str\n"},
		{"a.b[1]", "tsv", "y\n"},
		{"a.b", "tsv", "x\ny\n"},
		{"missing", "tsv", ""},
		{"t", "tsv", "True\n"},
		{"n", "json", "3\n"},
		{"", "tsv", "3\tstr\tTrue\n"},
	}
	for _, tc := range tests {
		var b bytes.Buffer
		if err := cloudPrint(&b, doc, tc.query, tc.output); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, b.String()); diff != "" {
			t.Errorf("%q -o %s: %s", tc.query, tc.output, diff)
		}
	}
}
