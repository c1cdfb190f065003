package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

func TestTargetFromProviderID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Target
		wantErr bool
	}{
		{in: "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/node-1",
			want: Target{SubscriptionID: "s", ResourceGroup: "rg", Name: "node-1"}},
		{in: "azure:///subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np-vmss/virtualMachines/3",
			want: Target{SubscriptionID: "s", ResourceGroup: "MC_rg", Name: "aks-np-vmss", ScaleSet: true}},
		{in: "azure:///subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/ss/virtualmachines/0",
			want: Target{SubscriptionID: "s", ResourceGroup: "rg", Name: "ss", ScaleSet: true}},
		{in: "", wantErr: true},
		{in: "aws:///us-east-1a/i-0123", wantErr: true},
		{in: "kind://docker/kind/kind-control-plane", wantErr: true},
		{in: "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/n", wantErr: true},
		{in: "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/", wantErr: true},
		{in: "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a/extra", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := TargetFromProviderID(tc.in)
			if tc.wantErr {
				if !errors.Is(err, ErrProviderID) {
					t.Fatalf("err = %v, want ErrProviderID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// countingTransport counts PATCH requests and can answer some of them
// itself (ARM throttling that the stand-in does not simulate).
type countingTransport struct {
	next    *http.Client
	mu      sync.Mutex
	patches int                        // guarded by mu
	inject  func(n int) *http.Response // guarded by mu; n = PATCH number (1-based); nil response = pass on
}

func (c *countingTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPatch {
		c.mu.Lock()
		c.patches++
		n, inject := c.patches, c.inject
		c.mu.Unlock()
		if inject != nil {
			if resp := inject(n); resp != nil {
				resp.Request = req
				return resp, nil
			}
		}
	}
	return c.next.Do(req)
}

func (c *countingTransport) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.patches
}

type armFixture struct {
	cloud *cloudtest.Cloud
	tr    *countingTransport
	arm   *ComputeARM
	clock *clocktesting.FakeClock
	rg    string
}

func newARMFixture(t *testing.T) *armFixture {
	t.Helper()
	c := cloudtest.Start(t)
	tr := &countingTransport{next: c.HTTPClient()}
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, c.AdminClientID, c.AdminClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()}, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(time.Now())
	a, err := NewComputeARM(ComputeConfig{Credential: cred, Cloud: c.CloudConfig(), Transport: tr, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	c.CreateResourceGroup(t, "rg-arm", "eastus")
	return &armFixture{cloud: c, tr: tr, arm: a, clock: clk, rg: "rg-arm"}
}

func (f *armFixture) identities(t *testing.T, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, normalize(f.cloud.CreateIdentity(t, f.rg, fmt.Sprintf("id-%03d", i)).ID))
	}
	sort.Strings(ids)
	return ids
}

func TestApplyBatchesOf150AndIsolatesBadIdentities(t *testing.T) {
	t.Parallel()
	f := newARMFixture(t)
	ids := f.identities(t, 151)
	ss := f.cloud.CreateScaleSet(t, f.rg, "vmss-batch", 1)
	target, err := TargetFromProviderID("azure://" + ss.Instances[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	r := &targets{arm: f.arm, metrics: newMetrics(), clock: f.clock}
	ctx := t.Context()

	cur, err := f.arm.Identities(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	failed, fatal := r.apply(ctx, target, cur, ids, nil)
	if fatal != nil || len(failed) != 0 {
		t.Fatalf("apply: failed %v, fatal %v", failed, fatal)
	}
	if got := f.tr.count(); got != 2 {
		t.Errorf("PATCH requests for 151 identities = %d, want 2", got)
	}
	got, err := f.arm.Identities(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids, sortedKeys(got.UserAssigned)); diff != "" {
		t.Fatalf("identities on the scale set (-want +got):\n%s", diff)
	}

	// Remove 10, add one that does not exist: the bad one is isolated by
	// splitting and everything else is done.
	bad := strings.ToLower("/subscriptions/" + f.cloud.SubscriptionID + "/resourceGroups/" + f.rg +
		"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/never-created")
	before := f.tr.count()
	failed, fatal = r.apply(ctx, target, got, []string{bad}, ids[:10])
	if fatal != nil {
		t.Fatal(fatal)
	}
	if _, ok := failed[bad]; !ok || len(failed) != 1 {
		t.Fatalf("failed = %v, want only %s", failed, bad)
	}
	var re *RequestError
	if !errors.As(failed[bad], &re) || re.StatusCode != http.StatusBadRequest {
		t.Fatalf("failure = %v, want a 400 RequestError", failed[bad])
	}
	if n := f.tr.count() - before; n > 2+2*4 { // 1 + ~2·log2(11) requests
		t.Errorf("%d PATCHes to isolate one bad identity among 11 changes", n)
	}
	final, err := f.arm.Identities(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids[10:], sortedKeys(final.UserAssigned)); diff != "" {
		t.Fatalf("identities after removal (-want +got):\n%s", diff)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	f := newARMFixture(t)
	ids := f.identities(t, 1)
	vm := f.cloud.CreateVM(t, f.rg, "vm-throttle")
	target, err := TargetFromProviderID("azure://" + vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	f.tr.mu.Lock()
	f.tr.inject = func(n int) *http.Response {
		if n != 1 {
			return nil
		}
		return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests",
			Header: http.Header{"Retry-After": {"30"}, "Content-Type": {"application/json"}},
			Body:   io.NopCloser(strings.NewReader(`{"error":{"code":"TooManyRequests","message":"throttled"}}`))}
	}
	f.tr.mu.Unlock()
	ctx := t.Context()
	cur := IdentitySet{UserAssigned: map[string]bool{}}

	start := f.clock.Now()
	err = f.arm.PatchIdentities(ctx, target, cur, ids, nil)
	var te *ThrottledError
	if !errors.As(err, &te) || !te.Until.Equal(start.Add(30*time.Second)) {
		t.Fatalf("first PATCH: %v, want ThrottledError until +30s", err)
	}
	// Within the window nothing is sent, reads included.
	f.clock.Step(29 * time.Second)
	if err2 := f.arm.PatchIdentities(ctx, target, cur, ids, nil); !errors.As(err2, &te) {
		t.Fatalf("PATCH inside the window: %v, want ThrottledError", err2)
	}
	if _, err2 := f.arm.Identities(ctx, target); !errors.As(err2, &te) {
		t.Fatalf("GET inside the window: %v, want ThrottledError", err2)
	}
	if got := f.tr.count(); got != 1 {
		t.Fatalf("PATCH requests sent = %d, want 1", got)
	}
	f.clock.Step(2 * time.Second)
	if err2 := f.arm.PatchIdentities(ctx, target, cur, ids, nil); err2 != nil {
		t.Fatalf("PATCH after the window: %v", err2)
	}
	got, err := f.arm.Identities(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ids, sortedKeys(got.UserAssigned)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func TestPatchRefusesMoreThan150(t *testing.T) {
	t.Parallel()
	a, err := NewComputeARM(ComputeConfig{Credential: noCredential{}})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, MaxIdentitiesPerPatch+1)
	if err := a.PatchIdentities(t.Context(), Target{SubscriptionID: "s", ResourceGroup: "g", Name: "n"}, IdentitySet{}, ids, nil); err == nil {
		t.Fatal("PatchIdentities accepted 151 changes")
	}
}

func TestNewComputeARMNeedsCredential(t *testing.T) {
	t.Parallel()
	if _, err := NewComputeARM(ComputeConfig{}); err == nil {
		t.Fatal("NewComputeARM without a credential succeeded")
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{"0", 0, true},
		{"Thu, 01 Jan 2026 00:01:00 GMT", time.Minute, true},
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
	}
	for _, tc := range tests {
		d, ok := retryAfter(tc.in, now)
		if d != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, d, ok, tc.want, tc.ok)
		}
	}
}

type noCredential struct{}

func (noCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("no credential")
}

func sortedKeys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
