// Package cloudtest starts the real internal/cloud stand-in in-process for
// tests: Entra-style token service and Resource Manager over HTTPS (own CA),
// IMDS listeners over plain HTTP, state in t.TempDir(), an injected fake
// clock (Advance), and helpers that create resources through the same
// domain code the ARM handlers use. Import it only from tests.
package cloudtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/keyward/keyward/internal/cloud"
)

// Cloud is a running stand-in. Fields are read-only.
type Cloud struct {
	// AuthorityHost is the token service base URL ("https://127.0.0.1:PORT/").
	AuthorityHost string
	// ARMEndpoint is the Resource Manager base URL ("https://127.0.0.1:PORT/").
	ARMEndpoint string
	// TenantID and SubscriptionID are the defaults.
	TenantID, SubscriptionID string
	// AdminClientID/AdminClientSecret: a service principal with Owner on
	// the subscription.
	AdminClientID, AdminClientSecret string
	// AdminObjectID is the admin principal's object ID.
	AdminObjectID string
	// CACertPEM is the CA both HTTPS endpoints chain to.
	CACertPEM []byte
	// DataDir is the stand-in's data directory.
	DataDir string

	// Server is the underlying server, for tests that need more.
	Server *cloud.Server
	clock  *clocktesting.FakeClock
	stop   func()
}

// Stop shuts the stand-in down now (it also stops at test cleanup); use it
// before starting another one on the same DataDir.
func (c *Cloud) Stop() { c.stop() }

// Options tune Start; the zero value is the default.
type Options struct {
	// DataDir reuses a data directory (restart tests); "" = t.TempDir().
	DataDir string
	// Bootstrap is applied at start.
	Bootstrap *cloud.Bootstrap
	// IMDSRateLimit / IMDSMaxConcurrent as in cloud.Config (0 = Azure's).
	IMDSRateLimit     float64
	IMDSMaxConcurrent int
	// Clock replaces the fake clock (its start time is time.Now()).
	Clock *clocktesting.FakeClock
	// FederationClient fetches external OIDC issuers' keys (federated
	// credentials); nil = default client.
	FederationClient *http.Client
}

// Start runs a stand-in for the duration of the test.
func Start(t testing.TB) *Cloud { return StartWith(t, Options{}) }

// StartWith runs a stand-in with options.
func StartWith(t testing.TB, o Options) *Cloud {
	t.Helper()
	dir := o.DataDir
	if dir == "" {
		dir = t.TempDir()
	}
	clk := o.Clock
	if clk == nil {
		clk = clocktesting.NewFakeClock(time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := cloud.New(ctx, cloud.Config{
		DataDir: dir, Clock: clk, Bootstrap: o.Bootstrap,
		IMDSRateLimit: o.IMDSRateLimit, IMDSMaxConcurrent: o.IMDSMaxConcurrent,
		FederationClient: o.FederationClient,
	})
	if err != nil {
		cancel()
		t.Fatalf("cloudtest: start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("cloudtest: run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	cid, secret, oid := srv.AdminCredentials()
	return &Cloud{stop: stop,
		AuthorityHost: srv.AuthorityHost(), ARMEndpoint: srv.ARMEndpoint(),
		TenantID: srv.TenantID(), SubscriptionID: srv.SubscriptionID(),
		AdminClientID: cid, AdminClientSecret: secret, AdminObjectID: oid,
		CACertPEM: srv.CACertPEM(), DataDir: dir, Server: srv, clock: clk,
	}
}

// CertPool returns a pool holding CACertPEM.
func (c *Cloud) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(c.CACertPEM)
	return p
}

// HTTPClient returns a client that trusts the stand-in's CA (30 s timeout).
func (c *Cloud) HTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.CertPool(), MinVersion: tls.VersionTLS12},
		Proxy:           nil,
	}}
}

// CloudConfig returns the azcore cloud configuration for SDK clients:
// ActiveDirectoryAuthorityHost and the ResourceManager endpoint/audience.
// Use it with HTTPClient() as ClientOptions.Transport. azidentity
// credentials also need DisableInstanceDiscovery: true (as for any
// disconnected cloud).
func (c *Cloud) CloudConfig() azcloud.Configuration {
	return azcloud.Configuration{
		ActiveDirectoryAuthorityHost: c.AuthorityHost,
		Services: map[azcloud.ServiceName]azcloud.ServiceConfiguration{
			azcloud.ResourceManager: {Endpoint: strings.TrimSuffix(c.ARMEndpoint, "/"), Audience: "https://management.core.windows.net/"},
		},
	}
}

// Advance moves the stand-in's clock forward by d.
func (c *Cloud) Advance(d time.Duration) { c.clock.Step(d) }

// Now is the stand-in's current time.
func (c *Cloud) Now() time.Time { return c.clock.Now() }

func fatal(t testing.TB, what string, err error) {
	t.Helper()
	t.Fatalf("cloudtest: %s: %v", what, err)
}

// CreateResourceGroup creates a resource group in the default subscription.
func (c *Cloud) CreateResourceGroup(t testing.TB, name, location string) {
	t.Helper()
	if _, _, err := c.Server.CreateResourceGroup(context.Background(), c.SubscriptionID, name, location, nil); err != nil {
		fatal(t, "create resource group", err)
	}
}

// Identity is a user-assigned managed identity.
type Identity struct {
	ID, Name, ClientID, PrincipalID, TenantID string
}

// CreateIdentity creates a user-assigned identity in resourceGroup (which
// must exist).
func (c *Cloud) CreateIdentity(t testing.TB, resourceGroup, name string) Identity {
	t.Helper()
	i, _, err := c.Server.PutIdentity(context.Background(), c.SubscriptionID, resourceGroup, name, "", nil)
	if err != nil {
		fatal(t, "create identity", err)
	}
	return Identity{ID: i.ID, Name: i.Name, ClientID: i.ClientID, PrincipalID: i.PrincipalID, TenantID: i.TenantID}
}

// Instance is one VM of a scale set.
type Instance struct {
	// InstanceID is "0", "1", ...
	InstanceID string
	// Name is "{vmss}_{instanceId}".
	Name string
	// ID is .../virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}.
	ID   string
	VMID string
}

// ScaleSet is a uniform virtual machine scale set.
type ScaleSet struct {
	ID, Name  string
	Instances []Instance
}

// VM is a virtual machine.
type VM struct {
	ID, Name, VMID string
}

// CreateScaleSet creates a scale set with instances VMs.
func (c *Cloud) CreateScaleSet(t testing.TB, resourceGroup, name string, instances int) ScaleSet {
	t.Helper()
	cp, _, err := c.Server.CreateCompute(context.Background(), cloud.KindVMSS, c.SubscriptionID, resourceGroup, name, "", instances)
	if err != nil {
		fatal(t, "create scale set", err)
	}
	ss := ScaleSet{ID: cp.ID, Name: cp.Name}
	for _, i := range cp.Instances {
		ss.Instances = append(ss.Instances, Instance{InstanceID: i.InstanceID, Name: i.Name, ID: i.ID, VMID: i.VMID})
	}
	return ss
}

// CreateVM creates a virtual machine.
func (c *Cloud) CreateVM(t testing.TB, resourceGroup, name string) VM {
	t.Helper()
	cp, _, err := c.Server.CreateCompute(context.Background(), cloud.KindVM, c.SubscriptionID, resourceGroup, name, "", 0)
	if err != nil {
		fatal(t, "create vm", err)
	}
	return VM{ID: cp.ID, Name: cp.Name, VMID: cp.UniqueID}
}

// AssignIdentity assigns a user-assigned identity to a VM or scale set
// (the PATCH {"identity":{"userAssignedIdentities":{id:{}}}} delta).
func (c *Cloud) AssignIdentity(t testing.TB, vmOrVMSSResourceID, identityResourceID string) {
	t.Helper()
	cp, err := c.Server.Compute(context.Background(), vmOrVMSSResourceID)
	if err != nil {
		fatal(t, "assign identity", err)
	}
	typ := "UserAssigned"
	if cp.SystemPrincipalID != "" {
		typ = "SystemAssigned, UserAssigned"
	}
	if _, err := c.Server.UpdateComputeIdentity(context.Background(), vmOrVMSSResourceID,
		cloud.IdentityUpdate{Type: typ, Delta: true, UserAssigned: map[string]bool{identityResourceID: true}}, nil); err != nil {
		fatal(t, "assign identity", err)
	}
}

// UnassignIdentity removes a user-assigned identity from a VM or scale set.
func (c *Cloud) UnassignIdentity(t testing.TB, vmOrVMSSResourceID, identityResourceID string) {
	t.Helper()
	if _, err := c.Server.UpdateComputeIdentity(context.Background(), vmOrVMSSResourceID,
		cloud.IdentityUpdate{Delta: true, UserAssigned: map[string]bool{identityResourceID: false}}, nil); err != nil {
		fatal(t, "unassign identity", err)
	}
}

// AssignRole assigns the built-in role roleName ("Reader", "Contributor",
// "Owner", "Managed Identity Operator", "Virtual Machine Contributor") to
// principalID at scope and returns the assignment's full ID.
func (c *Cloud) AssignRole(t testing.TB, principalID, roleName, scope string) string {
	t.Helper()
	a, _, err := c.Server.CreateRoleAssignment(context.Background(), scope, "", roleName, principalID, "ServicePrincipal", c.AdminObjectID)
	if err != nil {
		fatal(t, "assign role", err)
	}
	return a.ID
}

// StartIMDS serves IMDS for a VM or scale-set instance on a new
// 127.0.0.1 listener (plain HTTP) for the test's duration and returns its
// base URL "http://127.0.0.1:PORT".
func (c *Cloud) StartIMDS(t testing.TB, instanceResourceID string) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fatal(t, "imds listen", err)
	}
	if _, err := c.Server.IMDSHandler(context.Background(), instanceResourceID); err != nil {
		_ = ln.Close()
		fatal(t, "imds", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Server.ServeIMDS(ctx, ln, instanceResourceID) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("cloudtest: imds: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// IssueToken returns a managed-identity access token for identity and
// resource, as IMDS on a VM holding the identity would (xms_az_rid empty
// unless the identity is assigned to some VM or scale set, then that one).
func (c *Cloud) IssueToken(t testing.TB, identity Identity, resource string) string {
	t.Helper()
	tok, err := c.Server.IssueManagedIdentityToken(context.Background(), identity.ID, "", resource)
	if err != nil {
		fatal(t, "issue token", err)
	}
	return tok
}

// ServicePrincipal registers an application service principal (no role)
// and returns its client ID, secret and object ID.
func (c *Cloud) ServicePrincipal(t testing.TB, name string) (clientID, secret, objectID string) {
	t.Helper()
	cid, sec, oid, err := c.Server.CreateServicePrincipal(context.Background(), c.TenantID, name)
	if err != nil {
		fatal(t, "service principal", err)
	}
	return cid, sec, oid
}

// RotateKeys rotates the token-signing key: the new key signs; the old one
// stays published until the overlap (cloud.DefaultKeyOverlap) has passed on
// the stand-in's clock.
func (c *Cloud) RotateKeys(t testing.TB) {
	t.Helper()
	if _, err := c.Server.RotateKeys(context.Background()); err != nil {
		fatal(t, "rotate keys", err)
	}
}

// IMDSTransport returns an azcore transport that sends requests for the
// real IMDS address (169.254.169.254) to imdsURL (from StartIMDS) and
// everything else through HTTPClient(). Use it as
// ManagedIdentityCredentialOptions.ClientOptions.Transport: azidentity's
// IMDS endpoint is a constant, so this is the only thing a test changes.
func (c *Cloud) IMDSTransport(t testing.TB, imdsURL string) policy.Transporter {
	t.Helper()
	u, err := url.Parse(imdsURL)
	if err != nil || u.Host == "" {
		t.Fatalf("cloudtest: bad IMDS URL %q", imdsURL)
	}
	return &redirect{host: u.Host, next: c.HTTPClient()}
}

type redirect struct {
	host string
	next *http.Client
}

// Do implements policy.Transporter.
func (r *redirect) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "169.254.169.254" || req.URL.Host == "169.254.169.254:80" {
		req = req.Clone(req.Context())
		req.URL.Host = r.host
		req.Host = r.host
	}
	return r.next.Do(req)
}
