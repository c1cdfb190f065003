package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Compat modes (config field compat_mode).
const (
	// CompatLegacy mimics the plugin of the tutorial's era (Vault 1.4–1.19).
	CompatLegacy = "legacy"
	// CompatStrict mimics Vault ≥ 1.20 (plugin ≥ v0.21.0).
	CompatStrict = "strict"
)

// Retry defaults of the ARM clients (Vault's).
const (
	defaultMaxRetries    = 3
	defaultRetryDelay    = 4 * time.Second
	defaultMaxRetryDelay = 60 * time.Second
)

const configKey = "config"

// azureConfig is the stored config (barrier-encrypted). ClientSecret is
// never returned by a read.
type azureConfig struct {
	TenantID                string        `json:"tenant_id"`
	Resource                string        `json:"resource"`
	Environment             string        `json:"environment"`
	ClientID                string        `json:"client_id"`
	ClientSecret            string        `json:"client_secret"`
	MaxRetries              int           `json:"max_retries"`
	RetryDelay              time.Duration `json:"retry_delay"`
	MaxRetryDelay           time.Duration `json:"max_retry_delay"`
	AuthorityHost           string        `json:"authority_host"`
	ResourceManagerEndpoint string        `json:"resource_manager_endpoint"`
	ResourceManagerAudience string        `json:"resource_manager_audience"`
	CompatMode              string        `json:"compat_mode"`
}

// settings are the effective values derived from a config.
type settings struct {
	tenantID      string
	resource      string
	env           environment
	clientID      string
	clientSecret  string
	maxRetries    int
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	// customAuthority is true when authority_host overrides the cloud's.
	customAuthority bool
	strict          bool
}

// configError is a 500 settings error, as Vault's getAzureSettings returns.
func configError(format string, args ...any) error {
	return &logical.CodedError{Status: http.StatusInternalServerError, Msg: fmt.Sprintf(format, args...), Err: ErrNotConfigured}
}

// resolve validates c and fills in the cloud's endpoints.
func (c *azureConfig) resolve() (*settings, error) {
	if c.TenantID == "" {
		return nil, configError("tenant_id is required")
	}
	if c.Resource == "" {
		return nil, configError("resource is required")
	}
	env, err := lookupEnvironment(c.Environment)
	if err != nil {
		return nil, configError("err: %v", err)
	}
	s := &settings{
		tenantID:      c.TenantID,
		resource:      c.Resource,
		env:           env,
		clientID:      c.ClientID,
		clientSecret:  c.ClientSecret,
		maxRetries:    c.MaxRetries,
		retryDelay:    c.RetryDelay,
		maxRetryDelay: c.MaxRetryDelay,
	}
	if c.AuthorityHost != "" {
		h, err := normalizeEndpoint("authority_host", c.AuthorityHost, true)
		if err != nil {
			return nil, logical.BadRequest("%v", err)
		}
		s.env.authorityHost = h
		s.customAuthority = true
	}
	if c.ResourceManagerEndpoint != "" {
		e, err := normalizeEndpoint("resource_manager_endpoint", c.ResourceManagerEndpoint, false)
		if err != nil {
			return nil, logical.BadRequest("%v", err)
		}
		s.env.resourceManager = e
	}
	if c.ResourceManagerAudience != "" {
		s.env.resourceManagerAudience = c.ResourceManagerAudience
	}
	switch strings.ToLower(c.CompatMode) {
	case "", CompatLegacy:
	case CompatStrict:
		s.strict = true
	default:
		return nil, logical.BadRequest("compat_mode must be %q or %q, got %q", CompatLegacy, CompatStrict, c.CompatMode)
	}
	if strings.ContainsAny(c.TenantID, "/?#") {
		return nil, logical.BadRequest("invalid tenant_id %q", c.TenantID)
	}
	return s, nil
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: "config",
		Fields: map[string]*framework.FieldSchema{
			"tenant_id":   {Type: framework.TypeString, Description: "The Entra ID (Azure AD) tenant of the tokens."},
			"resource":    {Type: framework.TypeString, Description: "The expected audience (aud) of the tokens, compared byte-exactly."},
			"environment": {Type: framework.TypeString, Description: "Azure cloud: AzurePublicCloud (default), AzureChinaCloud, AzureUSGovernmentCloud or AzureGermanCloud."},
			"client_id":   {Type: framework.TypeString, Description: "Client ID of the credential used to query ARM; with no client_secret, picks the user-assigned managed identity."},
			"client_secret": {Type: framework.TypeString, Description: "Client secret used to query ARM; never returned. " +
				"Empty means the server's own managed identity (IMDS)."},
			"max_retries":     {Type: framework.TypeInt, Default: defaultMaxRetries, Description: "Retries of a failed ARM request (default 3)."},
			"retry_delay":     {Type: framework.TypeDurationSecond, Default: int(defaultRetryDelay / time.Second), Description: "Initial delay between ARM retries (default 4s)."},
			"max_retry_delay": {Type: framework.TypeDurationSecond, Default: int(defaultMaxRetryDelay / time.Second), Description: "Maximum delay between ARM retries (default 60s)."},
			"authority_host": {Type: framework.TypeString, Description: "Keyward: overrides the environment's Entra ID host " +
				"(e.g. https://127.0.0.1:8443/ for keyward cloud). Discovery is {authority_host}{tenant_id}/.well-known/openid-configuration."},
			"resource_manager_endpoint": {Type: framework.TypeString, Description: "Keyward: overrides the environment's ARM endpoint."},
			"resource_manager_audience": {Type: framework.TypeString, Description: "Keyward: overrides the audience of the server's ARM tokens."},
			"compat_mode": {Type: framework.TypeLowerCaseString, Description: `Keyward: "legacy" (default; Vault 1.4–1.19 rules, ` +
				`the tutorial's role logs in) or "strict" (Vault ≥ 1.20: bound_service_principal_ids or bound_group_ids required, xms_* claims checked).`},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.configRead,
			logical.UpdateOperation: b.configWrite,
			logical.DeleteOperation: b.configDelete,
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
			_, found, err := loadConfig(ctx, req.Storage)
			return found, err
		},
		HelpSynopsis: "Configures the Entra ID tenant, token audience and ARM credentials.",
	}
}

// loadConfig returns the stored config; found is false when there is none.
func loadConfig(ctx context.Context, s logical.Storage) (c *azureConfig, found bool, err error) {
	e, err := s.Get(ctx, configKey)
	if errors.Is(err, logical.ErrNotFound) {
		return new(azureConfig), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading azure config: %w", err)
	}
	c = new(azureConfig)
	if err := json.Unmarshal(e.Value, c); err != nil {
		return nil, false, fmt.Errorf("decoding azure config: %w", err)
	}
	return c, true, nil
}

func (b *backend) configRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	c, found, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{
		"tenant_id":   c.TenantID,
		"resource":    c.Resource,
		"environment": c.Environment,
		"client_id":   c.ClientID,
		"max_retries": c.MaxRetries,
		// Vault returns the retry delays as Go durations (nanoseconds).
		"retry_delay":               int64(c.RetryDelay),
		"max_retry_delay":           int64(c.MaxRetryDelay),
		"authority_host":            c.AuthorityHost,
		"resource_manager_endpoint": c.ResourceManagerEndpoint,
		"resource_manager_audience": c.ResourceManagerAudience,
		"compat_mode":               compatName(c.CompatMode),
	}}, nil
}

func compatName(m string) string {
	if m == "" {
		return CompatLegacy
	}
	return m
}

func (b *backend) configWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, _, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	for field, dst := range map[string]*string{
		"tenant_id":                 &c.TenantID,
		"resource":                  &c.Resource,
		"environment":               &c.Environment,
		"client_id":                 &c.ClientID,
		"client_secret":             &c.ClientSecret,
		"authority_host":            &c.AuthorityHost,
		"resource_manager_endpoint": &c.ResourceManagerEndpoint,
		"resource_manager_audience": &c.ResourceManagerAudience,
		"compat_mode":               &c.CompatMode,
	} {
		if v, ok := d.GetOk(field); ok {
			*dst = v.(string)
		}
	}
	// As Vault: the retry settings revert to their defaults when absent.
	c.MaxRetries = d.Int("max_retries")
	c.RetryDelay = d.Duration("retry_delay")
	c.MaxRetryDelay = d.Duration("max_retry_delay")
	if c.MaxRetries < 0 {
		return nil, logical.BadRequest("max_retries cannot be negative")
	}
	if _, rerr := c.resolve(); rerr != nil {
		return nil, rerr
	}
	// The client secret is stored through the barrier (encrypted), as Vault does.
	raw, err := json.Marshal(c) //nolint:gosec // G117: see above
	if err != nil {
		return nil, fmt.Errorf("encoding azure config: %w", err)
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: configKey, Value: raw}); err != nil {
		return nil, fmt.Errorf("storing azure config: %w", err)
	}
	b.reset()
	return nil, nil //nolint:nilnil // nil response renders as 204, as Vault
}

func (b *backend) configDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if err := req.Storage.Delete(ctx, configKey); err != nil && !errors.Is(err, logical.ErrNotFound) {
		return nil, fmt.Errorf("deleting azure config: %w", err)
	}
	b.reset()
	return nil, nil //nolint:nilnil // nil response renders as 204
}
