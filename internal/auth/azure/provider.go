package azure

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/keyward/keyward/internal/logical"
)

// provider is everything a login needs that is derived from the config:
// the token verifier (discovered issuer and its keys) and the ARM lookups.
// Immutable once built, except for the caches inside, which are safe for
// concurrent use.
type provider struct {
	settings *settings
	verifier *verifier
	lookup   *resourceLookup
}

// provider returns the cached provider, building it from the stored config
// (with OIDC discovery) when there is none. Failures are not cached.
func (b *backend) provider(ctx context.Context, s logical.Storage) (*provider, error) {
	b.mu.Lock()
	p := b.prov
	b.mu.Unlock()
	if p != nil {
		return p, nil
	}
	b.buildMu.Lock()
	defer b.buildMu.Unlock()
	b.mu.Lock()
	p, gen := b.prov, b.gen
	b.mu.Unlock()
	if p != nil {
		return p, nil
	}

	cfg, _, err := loadConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	set, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	issuer, jwksURI, err := discover(ctx, b.httpClient, set.env.authorityHost, set.tenantID)
	if err != nil {
		return nil, err
	}
	cred, err := b.credential(set)
	if err != nil {
		return nil, fail(ErrNotConfigured, err, "unable to create the ARM credential: %v", err)
	}
	clients := newSDKClients(set, cred, b.httpClient)
	p = &provider{
		settings: set,
		verifier: &verifier{
			issuer:   issuer,
			audience: set.resource,
			tenantID: set.tenantID,
			keys:     newKeySet(jwksURI, b.httpClient, b.clock, b.logger),
			clock:    b.clock,
		},
		lookup: newResourceLookup(clients, clients, b.clock),
	}
	b.mu.Lock()
	if b.gen == gen { // the config did not change while we were building
		b.prov = p
	}
	b.mu.Unlock()
	return p, nil
}

// credential is the server's own credential for ARM: the configured client
// secret, else its managed identity through IMDS.
func (b *backend) credential(set *settings) (azcore.TokenCredential, error) {
	if set.clientSecret == "" {
		return newIMDSCredential(b.imds, set.clientID, b.httpClient, b.clock), nil
	}
	return azidentity.NewClientSecretCredential(set.tenantID, set.clientID, set.clientSecret,
		&azidentity.ClientSecretCredentialOptions{
			ClientOptions: policy.ClientOptions{
				Cloud:     armCloud(set),
				Transport: b.httpClient,
			},
			// Instance discovery asks login.microsoft.com about the
			// authority, which a private authority_host is unknown to.
			DisableInstanceDiscovery: set.customAuthority,
		})
}
