package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/internal/logical"
)

// armCacheTTL is how long a successful ARM lookup is reused.
const armCacheTTL = 30 * time.Second

// defaultResourceAPIVersion is used for resource_id lookups when the
// provider lists no stable api-version (Vault's default).
const defaultResourceAPIVersion = "2022-03-01"

// vmClient reads virtual machines of one subscription.
// *armcompute.VirtualMachinesClient implements it.
type vmClient interface {
	Get(ctx context.Context, resourceGroupName, vmName string, options *armcompute.VirtualMachinesClientGetOptions) (armcompute.VirtualMachinesClientGetResponse, error)
}

// vmssClient reads virtual machine scale sets of one subscription.
// *armcompute.VirtualMachineScaleSetsClient implements it.
type vmssClient interface {
	Get(ctx context.Context, resourceGroupName, vmScaleSetName string, options *armcompute.VirtualMachineScaleSetsClientGetOptions) (armcompute.VirtualMachineScaleSetsClientGetResponse, error)
}

// msiClient reads user-assigned identities of one subscription.
// *armmsi.UserAssignedIdentitiesClient implements it.
type msiClient interface {
	Get(ctx context.Context, resourceGroupName, resourceName string, options *armmsi.UserAssignedIdentitiesClientGetOptions) (armmsi.UserAssignedIdentitiesClientGetResponse, error)
}

// resourceClient reads any ARM resource's identity by resource ID.
type resourceClient interface {
	identityOf(ctx context.Context, resourceID string) (*genericIdentity, error)
}

// armClients hands out the per-subscription clients.
type armClients interface {
	virtualMachines(subscriptionID string) (vmClient, error)
	scaleSets(subscriptionID string) (vmssClient, error)
	identities(subscriptionID string) (msiClient, error)
}

var (
	_ vmClient       = (*armcompute.VirtualMachinesClient)(nil)
	_ vmssClient     = (*armcompute.VirtualMachineScaleSetsClient)(nil)
	_ msiClient      = (*armmsi.UserAssignedIdentitiesClient)(nil)
	_ armClients     = (*sdkClients)(nil)
	_ resourceClient = (*sdkClients)(nil)
)

// sdkClients is the real implementation over the Azure SDK. Safe for
// concurrent use; clients are built once per subscription.
type sdkClients struct {
	cred azcore.TokenCredential
	opts *arm.ClientOptions

	mu sync.Mutex
	// compute and msi are keyed by subscription ID; guarded by mu.
	compute map[string]*armcompute.ClientFactory
	msi     map[string]*armmsi.ClientFactory
	// generic is the pipeline for resource_id lookups; guarded by mu.
	generic *arm.Client
	// apiVersions caches resource type → api-version; guarded by mu.
	apiVersions map[string]string
}

// newSDKClients builds ARM clients for s using transport for every call.
func newSDKClients(s *settings, cred azcore.TokenCredential, transport policy.Transporter) *sdkClients {
	retries := int32(s.maxRetries)
	if retries == 0 {
		retries = -1 // azcore: 0 means its default of 3; -1 means none
	}
	opts := &arm.ClientOptions{
		ClientOptions: policy.ClientOptions{
			Cloud:     armCloud(s),
			Transport: transport,
			Retry: policy.RetryOptions{
				MaxRetries:    retries,
				RetryDelay:    s.retryDelay,
				MaxRetryDelay: s.maxRetryDelay,
			},
			Telemetry: policy.TelemetryOptions{ApplicationID: userAgent},
		},
		DisableRPRegistration: true,
	}
	return &sdkClients{
		cred:        cred,
		opts:        opts,
		compute:     map[string]*armcompute.ClientFactory{},
		msi:         map[string]*armmsi.ClientFactory{},
		apiVersions: map[string]string{},
	}
}

// armCloud is the azcore cloud configuration of s.
func armCloud(s *settings) cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: s.env.authorityHost,
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: s.env.resourceManager, Audience: s.env.resourceManagerAudience},
		},
	}
}

func (c *sdkClients) computeFactory(sub string) (*armcompute.ClientFactory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.compute[sub]; ok {
		return f, nil
	}
	f, err := armcompute.NewClientFactory(sub, c.cred, c.opts)
	if err != nil {
		return nil, err
	}
	c.compute[sub] = f
	return f, nil
}

func (c *sdkClients) virtualMachines(sub string) (vmClient, error) {
	f, err := c.computeFactory(sub)
	if err != nil {
		return nil, err
	}
	return f.NewVirtualMachinesClient(), nil
}

func (c *sdkClients) scaleSets(sub string) (vmssClient, error) {
	f, err := c.computeFactory(sub)
	if err != nil {
		return nil, err
	}
	return f.NewVirtualMachineScaleSetsClient(), nil
}

func (c *sdkClients) identities(sub string) (msiClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.msi[sub]
	if !ok {
		var err error
		if f, err = armmsi.NewClientFactory(sub, c.cred, c.opts); err != nil {
			return nil, err
		}
		c.msi[sub] = f
	}
	return f.NewUserAssignedIdentitiesClient(), nil
}

// genericIdentity is the identity block of any ARM resource.
type genericIdentity struct {
	Location string `json:"location"`
	Identity *struct {
		PrincipalID            *string                  `json:"principalId"`
		UserAssignedIdentities map[string]*userIdentity `json:"userAssignedIdentities"`
	} `json:"identity"`
}

// userIdentity is one user-assigned identity of a resource.
type userIdentity struct {
	PrincipalID *string `json:"principalId"`
	ClientID    *string `json:"clientId"`
}

func (c *sdkClients) pipeline() (*arm.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.generic == nil {
		cl, err := arm.NewClient("keyward/internal/auth/azure", "v1.0.0", c.cred, c.opts)
		if err != nil {
			return nil, err
		}
		c.generic = cl
	}
	return c.generic, nil
}

// identityOf GETs resourceID with an api-version discovered from its
// provider, as Vault does for resource_id logins.
func (c *sdkClients) identityOf(ctx context.Context, resourceID string) (*genericIdentity, error) {
	id, err := arm.ParseResourceID(resourceID)
	if err != nil {
		return nil, fail(ErrResourceLookup, err, "unable to parse the resource ID: %q", resourceID)
	}
	cl, err := c.pipeline()
	if err != nil {
		return nil, fail(ErrResourceLookup, err, "unable to create ARM client: %v", err)
	}
	version, err := c.apiVersion(ctx, cl, id)
	if err != nil {
		return nil, fail(ErrResourceLookup, err, "unable to get the provider for resource %q: %v", resourceID, armErrText(err))
	}
	var out genericIdentity
	if err := c.get(ctx, cl, resourceID, version, &out); err != nil {
		return nil, fail(ErrResourceLookup, err, "unable to retrieve user assigned identity metadata: %v", armErrText(err))
	}
	return &out, nil
}

func (c *sdkClients) apiVersion(ctx context.Context, cl *arm.Client, id *arm.ResourceID) (string, error) {
	typ := id.ResourceType.String()
	c.mu.Lock()
	v, ok := c.apiVersions[strings.ToLower(typ)]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	var prov struct {
		ResourceTypes []struct {
			ResourceType string   `json:"resourceType"`
			APIVersions  []string `json:"apiVersions"`
		} `json:"resourceTypes"`
	}
	path := "/subscriptions/" + id.SubscriptionID + "/providers/" + id.ResourceType.Namespace
	if err := c.get(ctx, cl, path, "2021-04-01", &prov); err != nil {
		return "", err
	}
	v = defaultResourceAPIVersion
	want := strings.Join(id.ResourceType.Types, "/")
	for _, rt := range prov.ResourceTypes {
		if !strings.EqualFold(rt.ResourceType, want) {
			continue
		}
		for _, av := range rt.APIVersions {
			if !strings.Contains(av, "preview") {
				v = av
				break
			}
		}
		break
	}
	c.mu.Lock()
	c.apiVersions[strings.ToLower(typ)] = v
	c.mu.Unlock()
	return v, nil
}

func (c *sdkClients) get(ctx context.Context, cl *arm.Client, path, apiVersion string, out any) error {
	req, err := runtime.NewRequest(ctx, http.MethodGet, runtime.JoinPaths(cl.Endpoint(), path))
	if err != nil {
		return err
	}
	q := req.Raw().URL.Query()
	q.Set("api-version", apiVersion)
	req.Raw().URL.RawQuery = q.Encode()
	req.Raw().Header.Set("Accept", "application/json")
	resp, err := cl.Pipeline().Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if !runtime.HasStatusCode(resp, http.StatusOK) {
		return runtime.NewResponseError(resp)
	}
	return runtime.UnmarshalAsJSON(resp, out)
}

// armErrText shortens an azcore.ResponseError to "CODE (status)"; other
// errors keep their text.
func armErrText(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = http.StatusText(re.StatusCode)
		}
		return fmt.Sprintf("%s (HTTP %d)", code, re.StatusCode)
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) && af.RawResponse != nil {
		return fmt.Sprintf("%s (HTTP %d)", firstLine(af.Error()), af.RawResponse.StatusCode)
	}
	return firstLine(err.Error())
}

// firstLine cuts SDK error texts, which append request dumps, to one line.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// resourceInfo is what a login needs from an ARM resource.
type resourceInfo struct {
	// location is "" when ARM gave none (resource_id lookups).
	location string
	// principalIDs are the system- and user-assigned identities' object IDs.
	principalIDs []string
}

// resourceLookup resolves VMs, scale sets and resource IDs to their
// identities, caching successful answers for armCacheTTL. Safe for
// concurrent use.
type resourceLookup struct {
	clients   armClients
	resources resourceClient
	clock     logical.Clock

	group singleflight.Group
	mu    sync.Mutex
	// cache maps a lookup key to its answer; guarded by mu.
	cache map[string]cachedInfo
}

type cachedInfo struct {
	info    *resourceInfo
	expires time.Time
}

func newResourceLookup(c armClients, r resourceClient, clock logical.Clock) *resourceLookup {
	return &resourceLookup{clients: c, resources: r, clock: clock, cache: map[string]cachedInfo{}}
}

// cached runs fn once per key among concurrent callers and caches its
// successful answer.
func (l *resourceLookup) cached(ctx context.Context, key string, fn func(context.Context) (*resourceInfo, error)) (*resourceInfo, error) {
	key = strings.ToLower(key)
	now := l.clock.Now()
	l.mu.Lock()
	if c, ok := l.cache[key]; ok && now.Before(c.expires) {
		l.mu.Unlock()
		return c.info, nil
	}
	l.mu.Unlock()
	v, err, _ := l.group.Do(key, func() (any, error) {
		info, err := fn(ctx)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		for k, c := range l.cache { // keep the map small
			if !now.Before(c.expires) {
				delete(l.cache, k)
			}
		}
		l.cache[key] = cachedInfo{info: info, expires: now.Add(armCacheTTL)}
		l.mu.Unlock()
		return info, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*resourceInfo), nil
}

// scaleSet looks up a VMSS; user-assigned identities without a principal
// ID (VMSS Flex) are resolved through the managed identity API.
func (l *resourceLookup) scaleSet(ctx context.Context, sub, rg, name string) (*resourceInfo, error) {
	return l.cached(ctx, "vmss/"+sub+"/"+rg+"/"+name, func(ctx context.Context) (*resourceInfo, error) {
		c, err := l.clients.scaleSets(sub)
		if err != nil {
			return nil, fail(ErrResourceLookup, err, "unable to create vmss client: %v", err)
		}
		resp, err := c.Get(ctx, rg, name, nil)
		if err != nil {
			return nil, fail(ErrResourceLookup, err, "unable to retrieve virtual machine scale set metadata: %v", armErrText(err))
		}
		if resp.Identity == nil {
			return nil, fail(ErrNotAuthorized, nil, "vmss client did not return identity information")
		}
		ids, err := principalIDs(ctx, l, resp.Identity.PrincipalID, resp.Identity.UserAssignedIdentities,
			func(v *armcompute.UserAssignedIdentitiesValue) *string { return v.PrincipalID })
		if err != nil {
			return nil, err
		}
		return &resourceInfo{location: deref(resp.Location), principalIDs: ids}, nil
	})
}

// virtualMachine looks up a VM.
func (l *resourceLookup) virtualMachine(ctx context.Context, sub, rg, name string) (*resourceInfo, error) {
	return l.cached(ctx, "vm/"+sub+"/"+rg+"/"+name, func(ctx context.Context) (*resourceInfo, error) {
		c, err := l.clients.virtualMachines(sub)
		if err != nil {
			return nil, fail(ErrResourceLookup, err, "unable to create vm client: %v", err)
		}
		expand := armcompute.InstanceViewTypesInstanceView
		resp, err := c.Get(ctx, rg, name, &armcompute.VirtualMachinesClientGetOptions{Expand: &expand})
		if err != nil {
			return nil, fail(ErrResourceLookup, err, "unable to retrieve virtual machine metadata: %v", armErrText(err))
		}
		if resp.Identity == nil {
			return nil, fail(ErrNotAuthorized, nil, "vm client did not return identity information")
		}
		info := &resourceInfo{location: deref(resp.Location)}
		if p := deref(resp.Identity.PrincipalID); p != "" {
			info.principalIDs = append(info.principalIDs, p)
		}
		for _, v := range resp.Identity.UserAssignedIdentities {
			if v != nil && deref(v.PrincipalID) != "" {
				info.principalIDs = append(info.principalIDs, deref(v.PrincipalID))
			}
		}
		return info, nil
	})
}

// resource looks up any resource by ID.
func (l *resourceLookup) resource(ctx context.Context, resourceID string) (*resourceInfo, error) {
	return l.cached(ctx, "id"+resourceID, func(ctx context.Context) (*resourceInfo, error) {
		g, err := l.resources.identityOf(ctx, resourceID)
		if err != nil {
			return nil, err
		}
		if g.Identity == nil {
			return nil, fail(ErrNotAuthorized, nil, "client did not return identity information")
		}
		ids, err := principalIDs(ctx, l, g.Identity.PrincipalID, g.Identity.UserAssignedIdentities,
			func(v *userIdentity) *string { return v.PrincipalID })
		if err != nil {
			return nil, err
		}
		// Vault reports no location for resource_id logins.
		return &resourceInfo{principalIDs: ids}, nil
	})
}

// principalIDs lists the system-assigned principal (when set) and the
// principals of the user-assigned identities; a user-assigned identity
// reported without a principal ID (VMSS Flex) is read from the managed
// identity API.
func principalIDs[V any](ctx context.Context, l *resourceLookup, system *string, users map[string]*V, principal func(*V) *string) ([]string, error) {
	var out []string
	if p := deref(system); p != "" {
		out = append(out, p)
	}
	for id, v := range users {
		p := ""
		if v != nil {
			p = deref(principal(v))
		}
		if p == "" {
			var err error
			if p, err = l.identityPrincipal(ctx, id); err != nil {
				return nil, err
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// identityPrincipal reads a user-assigned identity's principal ID.
func (l *resourceLookup) identityPrincipal(ctx context.Context, resourceID string) (string, error) {
	id, err := arm.ParseResourceID(resourceID)
	if err != nil {
		return "", fail(ErrResourceLookup, err, "unable to parse the user-assigned identity resource ID %q: %v", resourceID, err)
	}
	c, err := l.clients.identities(id.SubscriptionID)
	if err != nil {
		return "", fail(ErrResourceLookup, err, "failed to create client to retrieve user-assigned identity: %v", err)
	}
	resp, err := c.Get(ctx, id.ResourceGroupName, id.Name, nil)
	if err != nil {
		return "", fail(ErrResourceLookup, err, "unable to retrieve user assigned identity metadata: %v", armErrText(err))
	}
	if resp.Properties == nil {
		return "", nil
	}
	return deref(resp.Properties.PrincipalID), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
