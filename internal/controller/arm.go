package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"k8s.io/utils/clock"
)

// IdentitySet is the identity block of a VM or scale set.
type IdentitySet struct {
	// SystemAssigned is true when the resource has a system-assigned
	// identity.
	SystemAssigned bool
	// UserAssigned holds the lower-cased ARM IDs of the user-assigned
	// identities; never nil when returned by ARM.Identities.
	UserAssigned map[string]bool
}

// ARM is what the controller needs from Azure Resource Manager.
// Implementations must be safe for concurrent use.
type ARM interface {
	// Identities reads the target's identities.
	Identities(ctx context.Context, t Target) (IdentitySet, error)
	// PatchIdentities sends one PATCH whose identity block adds add and
	// removes remove (ARM IDs), given the target's current identities
	// (needed to choose the identity type). At most MaxIdentitiesPerPatch
	// IDs in total.
	PatchIdentities(ctx context.Context, t Target, current IdentitySet, add, remove []string) error
}

// MaxIdentitiesPerPatch is ARM's limit of user-assigned identities changed
// in one request.
const MaxIdentitiesPerPatch = 150

// ErrTargetNotFound reports that the VM or scale set does not exist.
var ErrTargetNotFound = errors.New("virtual machine or scale set not found")

// ThrottledError reports that ARM asked the caller to wait (HTTP 429 or a
// Retry-After header): no request for the subscription is sent before
// Until.
type ThrottledError struct {
	Until time.Time
}

func (e *ThrottledError) Error() string {
	return "ARM throttled the client; retry after " + e.Until.UTC().Format(time.RFC3339)
}

// RequestError is an ARM error response other than throttling and 404.
type RequestError struct {
	StatusCode int
	// Code is ARM's error code, e.g. FailedIdentityOperation.
	Code string
	Err  error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("ARM request failed: %d %s: %v", e.StatusCode, e.Code, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// rejected reports whether err is ARM refusing the request's content (for
// example an identity that does not exist or that the caller may not
// assign), so that a smaller request may succeed.
func rejected(err error) bool {
	var re *RequestError
	return errors.As(err, &re) && (re.StatusCode == 400 || re.StatusCode == 403)
}

// ComputeConfig configures ComputeARM.
type ComputeConfig struct {
	// Credential authenticates to ARM (client secret or managed identity).
	Credential azcore.TokenCredential
	// Cloud is the cloud configuration (ARM endpoint and authority); the
	// zero value means Azure public cloud.
	Cloud cloud.Configuration
	// Transport sends the requests (for example an http.Client that trusts
	// a private CA); nil means azcore's default.
	Transport policy.Transporter
	// Clock times throttling windows; nil means the real clock.
	Clock clock.PassiveClock
	// PollFrequency is how often a long-running PATCH is polled; 0 means
	// 2 seconds.
	PollFrequency time.Duration
}

// ComputeARM is the ARM implementation on armcompute. It honours
// Retry-After per subscription: once ARM has asked to wait, calls for that
// subscription fail with *ThrottledError, without a request, until the
// time has passed.
type ComputeARM struct {
	cfg   ComputeConfig
	clock clock.PassiveClock

	mu      sync.Mutex
	vmss    map[string]*armcompute.VirtualMachineScaleSetsClient // guarded by mu; by subscription
	vms     map[string]*armcompute.VirtualMachinesClient         // guarded by mu; by subscription
	blocked map[string]time.Time                                 // guarded by mu; subscription → until
}

var _ ARM = (*ComputeARM)(nil)

// NewComputeARM returns an ARM client. It makes no request.
func NewComputeARM(cfg ComputeConfig) (*ComputeARM, error) {
	if cfg.Credential == nil {
		return nil, errors.New("controller: ComputeConfig.Credential is required")
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if cfg.PollFrequency == 0 {
		cfg.PollFrequency = 2 * time.Second
	}
	return &ComputeARM{cfg: cfg, clock: clk,
		vmss: map[string]*armcompute.VirtualMachineScaleSetsClient{}, vms: map[string]*armcompute.VirtualMachinesClient{},
		blocked: map[string]time.Time{}}, nil
}

func (a *ComputeARM) options() *arm.ClientOptions {
	o := &arm.ClientOptions{}
	o.Cloud = a.cfg.Cloud
	if o.Cloud.ActiveDirectoryAuthorityHost == "" {
		o.Cloud = cloud.AzurePublic
	}
	if a.cfg.Transport != nil {
		o.Transport = a.cfg.Transport
	}
	// 429 is not retried by the SDK: the caller honours Retry-After
	// itself, so one throttled target does not stall a worker.
	o.Retry = policy.RetryOptions{MaxRetries: 2, StatusCodes: []int{408, 500, 502, 503, 504}}
	return o
}

func (a *ComputeARM) clients(sub string) (*armcompute.VirtualMachineScaleSetsClient, *armcompute.VirtualMachinesClient, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := strings.ToLower(sub)
	if until, ok := a.blocked[k]; ok {
		if a.clock.Now().Before(until) {
			return nil, nil, &ThrottledError{Until: until}
		}
		delete(a.blocked, k)
	}
	if c, ok := a.vmss[k]; ok {
		return c, a.vms[k], nil
	}
	ss, err := armcompute.NewVirtualMachineScaleSetsClient(sub, a.cfg.Credential, a.options())
	if err != nil {
		return nil, nil, err
	}
	vm, err := armcompute.NewVirtualMachinesClient(sub, a.cfg.Credential, a.options())
	if err != nil {
		return nil, nil, err
	}
	a.vmss[k], a.vms[k] = ss, vm
	return ss, vm, nil
}

// Identities implements ARM.
func (a *ComputeARM) Identities(ctx context.Context, t Target) (IdentitySet, error) {
	ss, vm, err := a.clients(t.SubscriptionID)
	if err != nil {
		return IdentitySet{}, err
	}
	var (
		typ *armcompute.ResourceIdentityType
		ua  map[string]*armcompute.UserAssignedIdentitiesValue
	)
	if t.ScaleSet {
		resp, err := ss.Get(ctx, t.ResourceGroup, t.Name, nil)
		if err != nil {
			return IdentitySet{}, a.convert(t, err)
		}
		if id := resp.Identity; id != nil {
			typ, ua = id.Type, id.UserAssignedIdentities
		}
	} else {
		resp, err := vm.Get(ctx, t.ResourceGroup, t.Name, nil)
		if err != nil {
			return IdentitySet{}, a.convert(t, err)
		}
		if id := resp.Identity; id != nil {
			typ, ua = id.Type, id.UserAssignedIdentities
		}
	}
	set := IdentitySet{UserAssigned: map[string]bool{}}
	if typ != nil {
		set.SystemAssigned = strings.Contains(strings.ToLower(string(*typ)), "systemassigned")
	}
	for id := range ua {
		set.UserAssigned[strings.ToLower(id)] = true
	}
	return set, nil
}

// PatchIdentities implements ARM. The body is the delta MIC sends:
// lower-cased IDs, {} to add and null to remove; when nothing user-assigned
// would remain, the type becomes None (or SystemAssigned) instead.
func (a *ComputeARM) PatchIdentities(ctx context.Context, t Target, current IdentitySet, add, remove []string) error {
	if len(add)+len(remove) > MaxIdentitiesPerPatch {
		return fmt.Errorf("controller: %d identity changes in one PATCH (limit %d)", len(add)+len(remove), MaxIdentitiesPerPatch)
	}
	ss, vm, err := a.clients(t.SubscriptionID)
	if err != nil {
		return err
	}
	final := map[string]bool{}
	for id := range current.UserAssigned {
		final[strings.ToLower(id)] = true
	}
	delta := map[string]*armcompute.UserAssignedIdentitiesValue{}
	for _, id := range remove {
		id = strings.ToLower(id)
		delta[id] = nil
		delete(final, id)
	}
	for _, id := range add {
		id = strings.ToLower(id)
		delta[id] = &armcompute.UserAssignedIdentitiesValue{}
		final[id] = true
	}
	typ := armcompute.ResourceIdentityTypeUserAssigned
	switch {
	case len(final) == 0 && current.SystemAssigned:
		typ, delta = armcompute.ResourceIdentityTypeSystemAssigned, nil
	case len(final) == 0:
		typ, delta = armcompute.ResourceIdentityTypeNone, nil
	case current.SystemAssigned:
		typ = armcompute.ResourceIdentityTypeSystemAssignedUserAssigned
	}
	poll := &runtime.PollUntilDoneOptions{Frequency: a.cfg.PollFrequency}
	if t.ScaleSet {
		p, perr := ss.BeginUpdate(ctx, t.ResourceGroup, t.Name, armcompute.VirtualMachineScaleSetUpdate{
			Identity: &armcompute.VirtualMachineScaleSetIdentity{Type: &typ, UserAssignedIdentities: delta},
		}, nil)
		if perr == nil {
			_, perr = p.PollUntilDone(ctx, poll)
		}
		return a.convert(t, perr)
	}
	p, err := vm.BeginUpdate(ctx, t.ResourceGroup, t.Name, armcompute.VirtualMachineUpdate{
		Identity: &armcompute.VirtualMachineIdentity{Type: &typ, UserAssignedIdentities: delta},
	}, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, poll)
	}
	return a.convert(t, err)
}

// convert maps SDK errors to the package's typed errors and records
// Retry-After.
func (a *ComputeARM) convert(t Target, err error) error {
	if err == nil {
		return nil
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	if re.RawResponse != nil {
		if d, ok := retryAfter(re.RawResponse.Header.Get("Retry-After"), a.clock.Now()); ok || re.StatusCode == 429 {
			if !ok {
				d = 10 * time.Second
			}
			until := a.clock.Now().Add(d)
			a.mu.Lock()
			k := strings.ToLower(t.SubscriptionID)
			if until.After(a.blocked[k]) {
				a.blocked[k] = until
			}
			a.mu.Unlock()
			if re.StatusCode == 429 {
				return &ThrottledError{Until: until}
			}
		}
	}
	if re.StatusCode == 404 {
		return fmt.Errorf("%w: %s", ErrTargetNotFound, t.ID())
	}
	return &RequestError{StatusCode: re.StatusCode, Code: re.ErrorCode, Err: err}
}

// retryAfter parses a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if at, err := time.Parse(time.RFC1123, v); err == nil {
		if d := at.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}
