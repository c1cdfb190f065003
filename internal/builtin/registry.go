// Package builtin is the static table of everything that can be mounted:
// secrets engines and auth methods by type name. There is no init-time
// registration; adding a type means adding a line here.
package builtin

import (
	"net/http"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/core"
	"github.com/keyward/keyward/internal/engine/kv"
	"github.com/keyward/keyward/internal/logical"
)

// Dependencies are the outbound dependencies of the built-in types.
type Dependencies struct {
	// AzureHTTPClient is used by the azure auth method for discovery, JWKS,
	// token service and ARM calls. nil means a client with a timeout and the
	// system roots.
	AzureHTTPClient *http.Client
	// IMDSEndpoint is the base URL of the instance metadata service the
	// server uses for its own managed identity ("" = 169.254.169.254).
	IMDSEndpoint string
	// Clock is passed to auth methods; nil means real time.
	Clock logical.Clock
}

// Registry returns the mountable types.
func Registry(deps Dependencies) *core.Registry {
	return &core.Registry{
		Engines: map[string]logical.Factory{
			"kv":      kv.Factory,
			"generic": kv.Factory,
		},
		Auth: map[string]logical.Factory{
			"azure": azure.Factory(azure.Dependencies{
				HTTPClient:   deps.AzureHTTPClient,
				IMDSEndpoint: deps.IMDSEndpoint,
				Clock:        deps.Clock,
			}),
		},
	}
}
