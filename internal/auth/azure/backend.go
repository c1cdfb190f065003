// Package azure is the "azure" auth method: a workload presents an Entra ID
// (Azure AD) access token of its managed identity and is given a Keyward
// token, with Vault's wire behaviour (vault-plugin-auth-azure).
//
// Paths, relative to the mount (normally auth/azure/):
//
//	config        tenant_id, resource, environment, client_id, client_secret,
//	              max_retries, retry_delay, max_retry_delay; Keyward additions:
//	              authority_host, resource_manager_endpoint,
//	              resource_manager_audience (endpoint overrides so the method
//	              works against `keyward cloud` or a private cloud) and
//	              compat_mode ("legacy", the default, or "strict").
//	role/<name>   bound_* constraints and token_* settings; LIST role/.
//	login         role, jwt, subscription_id, resource_group_name, vm_name,
//	              vmss_name, resource_id (unauthenticated).
//
// A login is verified in this order: the token's signature (RS256 only)
// against the JWKS found by OIDC discovery at
// {authority_host}{tenant_id}/.well-known/openid-configuration (keys cached
// and refetched, at most once per 15s, when a kid is unknown), then iss ==
// the discovered issuer, aud ∋ resource (byte-exact), exp and nbf with one
// minute of leeway, tid == tenant_id; then the role's bound service
// principal and group IDs; then, when any of bound_subscription_ids,
// bound_resource_groups, bound_locations or bound_scale_sets is set, the
// subscription/resource group bounds and a lookup of the named VMSS, VM or
// resource_id in Azure Resource Manager with the server's own credential
// (client secret, else the managed identity of the server through IMDS);
// the token's oid must be one of that resource's identity principal IDs.
// ARM answers are cached for 30s.
//
// Differences from Vault, on purpose: the subscription and resource group
// bounds are checked before ARM is asked (Vault asks first; only which
// error wins changes); a resource_id must lie in the login's
// subscription_id and resource_group_name in both modes; the login field
// formats of plugin ≥ v0.19.2 are enforced in both modes (the tutorial's
// values, including "…-vmss_0" VM names, pass); the appid-based workload
// identity fallback of plugin ≥ v0.16 is not implemented (it would accept
// any identity of the bound resource groups, not only those assigned to
// the named VM/VMSS); environment variables (AZURE_TENANT_ID, …) are not
// read. Failures are HTTP 500 with Vault's message where Vault returns a
// plain error, 400 for bad input, 403 for token_bound_cidrs.
//
// compat_mode selects the version of Vault's plugin to mimic where they
// differ (spec §10.9). "legacy" (default) behaves as the plugin of the
// tutorial's era (Vault 1.4 to 1.19): a role bound only by subscription
// and resource group logs in. "strict" behaves as Vault ≥ 1.20: a role must
// set bound_service_principal_ids or bound_group_ids (neither empty nor
// "*"), and the token's xms_az_rid/xms_mirid claims must name the
// vm/vmss/resource group of the request.
package azure

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// defaultHTTPTimeout bounds outbound calls when Dependencies.HTTPClient is nil.
const defaultHTTPTimeout = 30 * time.Second

// Dependencies are what the azure auth method needs from its host. The
// zero value works in production on Azure.
type Dependencies struct {
	// HTTPClient is used for OIDC discovery, JWKS, the token service, IMDS
	// and ARM. It must have a timeout. nil means a client with a 30s
	// timeout and the system roots.
	HTTPClient *http.Client
	// IMDSEndpoint is the base URL of the instance metadata service the
	// server uses for its own managed identity when the config has no
	// client_secret. "" means http://169.254.169.254.
	IMDSEndpoint string
	// Clock tells the time for token validity and caches. nil means the
	// mount's clock (real time in production).
	Clock logical.Clock
}

// Factory returns a logical.Factory building one azure auth mount per call.
// Mounts share nothing.
func Factory(deps Dependencies) logical.Factory {
	return func(ctx context.Context, conf logical.BackendConfig) (logical.Backend, error) {
		b := newBackend(deps, conf)
		if err := b.fw.Compile(); err != nil {
			return nil, err
		}
		return b.fw, nil
	}
}

// backend is one mount's state. Safe for concurrent use.
type backend struct {
	fw         *framework.Backend
	logger     *slog.Logger
	clock      logical.Clock
	system     logical.SystemView
	httpClient *http.Client
	imds       string

	// buildMu serialises provider construction (discovery does I/O).
	// Lock order: buildMu before mu.
	buildMu sync.Mutex
	// mu guards prov and gen.
	mu sync.Mutex
	// prov is the verifier and ARM clients built from the stored config;
	// nil until the first login after a config change.
	prov *provider
	// gen counts config changes so a provider built from an old config is
	// not installed.
	gen uint64
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func newBackend(deps Dependencies, conf logical.BackendConfig) *backend {
	b := &backend{
		logger:     conf.Logger,
		clock:      deps.Clock,
		system:     conf.System,
		httpClient: deps.HTTPClient,
		imds:       deps.IMDSEndpoint,
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	if b.clock == nil {
		b.clock = conf.Clock
	}
	if b.clock == nil {
		b.clock = realClock{}
	}
	if b.httpClient == nil {
		b.httpClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if b.imds == "" {
		b.imds = "http://169.254.169.254"
	}
	b.fw = &framework.Backend{
		Paths: []*framework.Path{
			b.pathLogin(),
			b.pathConfig(),
			b.pathRoleList(),
			b.pathRole(),
		},
		Special: &logical.Paths{Unauthenticated: []string{"login"}},
		Init: func(context.Context, logical.Storage) error {
			b.reset()
			return nil
		},
		Clean: func(context.Context) { b.reset() },
	}
	return b
}

// reset drops the cached provider; the next login rebuilds it from storage.
func (b *backend) reset() {
	b.mu.Lock()
	b.prov = nil
	b.gen++
	b.mu.Unlock()
}

// maxLeaseTTL is the mount's maximum lease TTL, or 0 when unknown.
func (b *backend) maxLeaseTTL() time.Duration {
	if b.system == nil {
		return 0
	}
	return b.system.MaxLeaseTTL()
}
