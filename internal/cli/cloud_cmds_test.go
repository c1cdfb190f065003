package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud"
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

func TestCloudServeCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	boot := dir + "/boot.yaml"
	if err := os.WriteFile(boot, []byte("resourceGroups:\n- name: MC_rg\n  location: eastus\n  identities: [{name: pod-id}]\n  scaleSets: [{name: vmss, instances: 1, identities: [pod-id]}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, errb := &syncBuffer{}, &syncBuffer{}
	env := &Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, env, []string{"cloud", "serve", "--data-dir", dir, "--login-addr", "127.0.0.1:0", "--arm-addr", "127.0.0.1:0", "--bootstrap", boot,
			"--imds", "127.0.0.1:0=/subscriptions/x/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss/virtualMachines/0"})
	}()
	// The IMDS instance ID uses a made-up subscription, so serve must fail.
	if code := <-done; code != 1 || !strings.Contains(errb.String(), "imds") {
		t.Fatalf("bad --imds: exit %d, stderr %q", code, errb.String())
	}
	prof, err := cloud.ReadProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	inst := "/subscriptions/" + prof.SubscriptionID + "/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss/virtualMachines/0"
	out, errb = &syncBuffer{}, &syncBuffer{} // fresh buffers for the second run
	env = &Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: errb, Getenv: func(string) string { return "" }}
	go func() {
		done <- Main(ctx, env, []string{"cloud", "--data-dir", dir, "--login-addr", "127.0.0.1:0", "--arm-addr", "127.0.0.1:0", "--bootstrap", boot, "--imds", "127.0.0.1:0=" + inst})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "profile") {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, got, errOut := runCloud(t, dir, "cloud", "identity", "show", "-g", "MC_rg", "-n", "pod-id", "--query", "principalId", "-o", "tsv")
	if code != 0 || len(strings.TrimSpace(got)) != 36 {
		t.Errorf("identity show: %d %q %q", code, got, errOut)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d: %s", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
