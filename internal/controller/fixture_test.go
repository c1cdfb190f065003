package controller_test

import (
	"context"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
	"github.com/keyward/keyward/internal/controller"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	k8stest.Main(m)
}

// fixture is a real apiserver namespace plus a real cloud stand-in.
type fixture struct {
	env   *k8stest.Env
	cloud *cloudtest.Cloud
	ns    string
	rg    string
	cred  azcore.TokenCredential
	arm   *controller.ComputeARM
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	env := k8stest.Start(t)
	env.InstallCRDs()
	c := cloudtest.Start(t)
	rg := "rg-" + strings.ToLower(k8stest.UniqueName("t"))
	c.CreateResourceGroup(t, rg, "eastus")
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.AdminClientID, c.AdminClientSecret,
		&azidentity.ClientSecretCredentialOptions{
			ClientOptions:            azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()},
			DisableInstanceDiscovery: true,
		})
	if err != nil {
		t.Fatal(err)
	}
	a, err := controller.NewComputeARM(controller.ComputeConfig{Credential: cred, Cloud: c.CloudConfig(), Transport: c.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env: env, cloud: c, ns: env.NewNamespace("ctl"), rg: rg, cred: cred, arm: a}
}

// start runs a controller limited to the fixture's namespace until the
// test ends. mod may change the config.
func (f *fixture) start(t testing.TB, mod func(*controller.Config)) (*controller.Controller, context.CancelFunc) {
	t.Helper()
	cfg := controller.Config{
		RESTConfig:                f.env.RESTConfig,
		ARM:                       f.arm,
		Namespaces:                []string{f.ns},
		AssignedIdentityNamespace: f.ns,
		LeaderElection:            false,
		ResyncInterval:            time.Hour,
	}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ctl, err := controller.New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("controller Run: %v", err)
		}
	}
	var stopped bool
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return ctl, func() { stopped = true; stop() }
}

// applyTutorial applies testdata/tutorial-identity.yaml with its
// placeholders filled, unchanged otherwise.
func (f *fixture) applyTutorial(t *testing.T, name string, id cloudtest.Identity) {
	t.Helper()
	b, err := os.ReadFile("testdata/tutorial-identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := strings.NewReplacer("${IDENTITY_NAME}", name, "${IDENTITY_RESOURCE_ID}", id.ID, "${IDENTITY_CLIENT_ID}", id.ClientID).Replace(string(b))
	if _, err := f.env.Apply(f.env.Context(), f.ns, []byte(m)); err != nil {
		t.Fatalf("tutorial manifest: %v", err)
	}
}

// scaleSetNodes creates a scale set and one node per instance.
func (f *fixture) scaleSetNodes(t *testing.T, name string, n int) (cloudtest.ScaleSet, []string) {
	t.Helper()
	ss := f.cloud.CreateScaleSet(t, f.rg, name, n)
	var nodes []string
	for _, in := range ss.Instances {
		node := k8stest.UniqueName(name)
		f.env.CreateNode(node, "azure://"+in.ID)
		nodes = append(nodes, node)
	}
	return ss, nodes
}

// vmssIdentities reads a scale set's user-assigned identities from ARM
// with the SDK, lower-cased and sorted.
func (f *fixture) vmssIdentities(t *testing.T, name string) []string {
	t.Helper()
	c, err := armcompute.NewVirtualMachineScaleSetsClient(f.cloud.SubscriptionID, f.cred,
		&arm.ClientOptions{ClientOptions: azcore.ClientOptions{Cloud: f.cloud.CloudConfig(), Transport: f.cloud.HTTPClient()}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(f.env.Context(), f.rg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return idKeys(resp.Identity)
}

func idKeys(id *armcompute.VirtualMachineScaleSetIdentity) []string {
	out := []string{}
	if id != nil {
		for k := range id.UserAssignedIdentities {
			out = append(out, strings.ToLower(k))
		}
	}
	sort.Strings(out)
	return out
}

// vmIdentities reads a VM's user-assigned identities.
func (f *fixture) vmIdentities(t *testing.T, name string) []string {
	t.Helper()
	c, err := armcompute.NewVirtualMachinesClient(f.cloud.SubscriptionID, f.cred,
		&arm.ClientOptions{ClientOptions: azcore.ClientOptions{Cloud: f.cloud.CloudConfig(), Transport: f.cloud.HTTPClient()}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(f.env.Context(), f.rg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	if resp.Identity != nil {
		for k := range resp.Identity.UserAssignedIdentities {
			out = append(out, strings.ToLower(k))
		}
	}
	sort.Strings(out)
	return out
}

// assigned lists the namespace's assignments as name → status.
func (f *fixture) assigned(t *testing.T) map[string]string {
	t.Helper()
	var l aadv1.AzureAssignedIdentityList
	if err := f.env.Client.List(f.env.Context(), &l, client.InNamespace(f.ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, a := range l.Items {
		out[a.Name] = a.Status.Status
	}
	return out
}

// eventually polls cond every 100 ms for up to 60 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func lower(ids ...string) []string {
	out := []string{}
	for _, id := range ids {
		out = append(out, strings.ToLower(id))
	}
	sort.Strings(out)
	return out
}
