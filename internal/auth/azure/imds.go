package azure

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/keyward/keyward/internal/logical"
)

// imdsRefreshMargin makes a cached IMDS token be renewed this long before
// it expires.
const imdsRefreshMargin = 5 * time.Minute

// imdsCredential is an azcore.TokenCredential for the server's own managed
// identity, fetched from the instance metadata service at a configurable
// endpoint (azidentity's ManagedIdentityCredential only honours
// 169.254.169.254 or environment variables). Safe for concurrent use.
type imdsCredential struct {
	endpoint string
	clientID string
	client   *http.Client
	clock    logical.Clock

	mu sync.Mutex
	// tokens caches tokens by resource; guarded by mu.
	tokens map[string]azcore.AccessToken
}

var _ azcore.TokenCredential = (*imdsCredential)(nil)

func newIMDSCredential(endpoint, clientID string, c *http.Client, clock logical.Clock) *imdsCredential {
	return &imdsCredential{
		endpoint: strings.TrimRight(endpoint, "/"),
		clientID: clientID,
		client:   c,
		clock:    clock,
		tokens:   map[string]azcore.AccessToken{},
	}
}

// GetToken returns a token for the single scope of opts ("<resource>/.default").
func (m *imdsCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) != 1 {
		return azcore.AccessToken{}, fmt.Errorf("imds: exactly one scope is supported, got %d", len(opts.Scopes))
	}
	resource := strings.TrimSuffix(opts.Scopes[0], "/.default")
	m.mu.Lock()
	tok, ok := m.tokens[resource]
	m.mu.Unlock()
	if ok && m.clock.Now().Add(imdsRefreshMargin).Before(tok.ExpiresOn) {
		return tok, nil
	}
	tok, err := m.fetch(ctx, resource)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	m.mu.Lock()
	m.tokens[resource] = tok
	m.mu.Unlock()
	return tok, nil
}

func (m *imdsCredential) fetch(ctx context.Context, resource string) (azcore.AccessToken, error) {
	q := url.Values{"api-version": {"2018-02-01"}, "resource": {resource}}
	if m.clientID != "" {
		q.Set("client_id", m.clientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.endpoint+"/metadata/identity/oauth2/token?"+q.Encode(), nil)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("imds: %w", err)
	}
	req.Header.Set("Metadata", "true")
	resp, err := m.client.Do(req)
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("imds: token request failed: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes))
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("imds: reading token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return azcore.AccessToken{}, fmt.Errorf("imds: token request returned %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var r struct {
		AccessToken string          `json:"access_token"`
		ExpiresOn   json.RawMessage `json:"expires_on"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.AccessToken == "" {
		return azcore.AccessToken{}, fmt.Errorf("imds: malformed token response")
	}
	tok := azcore.AccessToken{Token: r.AccessToken}
	if on, ok := jsonInt(r.ExpiresOn); ok {
		tok.ExpiresOn = time.Unix(on, 0)
	} else if in, ok := jsonInt(r.ExpiresIn); ok {
		tok.ExpiresOn = m.clock.Now().Add(time.Duration(in) * time.Second)
	} else {
		return azcore.AccessToken{}, fmt.Errorf("imds: token response lacks expires_on")
	}
	return tok, nil
}

// jsonInt reads an integer sent as a JSON number or string (IMDS sends
// strings).
func jsonInt(raw json.RawMessage) (int64, bool) {
	s := strings.Trim(string(raw), `"`)
	if s == "" {
		return 0, false
	}
	i, err := strconv.ParseInt(s, 10, 64)
	return i, err == nil
}
