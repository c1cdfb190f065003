package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Token is an access token in IMDS's wire shape (every field a string).
type Token struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    string `json:"expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	TokenType    string `json:"token_type"`
}

// UpstreamError is a non-200 answer of the upstream IMDS or token service.
// Its body is the upstream's own error document.
type UpstreamError struct {
	Status int
	Body   []byte
}

func (e *UpstreamError) Error() string {
	return fmt.Sprintf("upstream answered %d: %s", e.Status, strings.TrimSpace(string(e.Body)))
}

// identityNotFound reports whether the body is IMDS's "Identity not found"
// error document: the identity is not (yet) assigned to the node.
func (e *UpstreamError) identityNotFound() bool {
	var doc struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(e.Body, &doc) != nil {
		return false
	}
	return doc.Error == "invalid_request" && strings.EqualFold(doc.Description, "Identity not found")
}

// tokenFetcher gets tokens from the upstream IMDS (managed identities) or
// a token service (service principals) and caches them until shortly
// before they expire.
type tokenFetcher struct {
	upstream string       // IMDS base URL, no trailing slash
	client   *http.Client // has a timeout
	clock    func() time.Time
	margin   time.Duration // refresh this long before expiry
	// maxEntries bounds the cache: the resource is chosen by the caller, so
	// an unbounded cache would let any pod grow the agent's memory.
	maxEntries int

	group singleflight.Group
	mu    sync.Mutex
	cache map[string]cachedToken // guarded by mu
}

// Cache bounds: at most maxCachedTokens entries, and keys (which hold the
// caller's resource) longer than maxCachedKeyLen are never cached.
const (
	maxCachedTokens = 4096
	maxCachedKeyLen = 2048
)

type cachedToken struct {
	tok   *Token
	until time.Time
}

func newTokenFetcher(upstream string, client *http.Client, clock func() time.Time) *tokenFetcher {
	return &tokenFetcher{
		upstream: strings.TrimSuffix(upstream, "/"),
		client:   client,
		clock:    clock,
		margin:   5 * time.Minute,
		cache:    map[string]cachedToken{},

		maxEntries: maxCachedTokens,
	}
}

// cached returns a token for key from the cache or from fetch, sharing
// concurrent fetches of the same key.
func (f *tokenFetcher) cached(ctx context.Context, key string, fetch func(ctx context.Context) (*Token, error)) (*Token, error) {
	now := f.clock()
	f.mu.Lock()
	c, ok := f.cache[key]
	f.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.tok, nil
	}
	v, err, _ := f.group.Do(key, func() (any, error) {
		// Callers share this fetch: one caller hanging up must not fail
		// the others (the HTTP client's timeout still bounds it).
		tok, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		if until, ok := f.cacheUntil(tok, now); ok && len(key) <= maxCachedKeyLen {
			f.mu.Lock()
			f.store(key, cachedToken{tok: tok, until: until}, now)
			f.mu.Unlock()
		}
		return tok, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Token), nil
}

// store adds an entry; when the cache is full it first drops expired
// entries, then an arbitrary one. The caller holds f.mu.
func (f *tokenFetcher) store(key string, c cachedToken, now time.Time) {
	if _, ok := f.cache[key]; !ok && len(f.cache) >= f.maxEntries {
		for k, e := range f.cache {
			if !now.Before(e.until) {
				delete(f.cache, k)
			}
		}
		for k := range f.cache {
			if len(f.cache) < f.maxEntries {
				break
			}
			delete(f.cache, k)
		}
	}
	f.cache[key] = c
}

func (f *tokenFetcher) cacheUntil(tok *Token, now time.Time) (time.Time, bool) {
	exp, err := strconv.ParseInt(tok.ExpiresOn, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	until := time.Unix(exp, 0).Add(-f.margin)
	return until, until.After(now)
}

// Len returns the number of cached tokens (for metrics and tests).
func (f *tokenFetcher) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cache)
}

// managedIdentity asks the upstream IMDS for a token of the user-assigned
// identity with clientID (or resourceID when clientID is empty; both empty
// means the node's own identity).
func (f *tokenFetcher) managedIdentity(ctx context.Context, clientID, resourceID, resource string) (*Token, error) {
	// Length-prefixed, so that no field can run into the next.
	lc, lr := strings.ToLower(clientID), strings.ToLower(resourceID)
	key := fmt.Sprintf("mi|%d|%s|%d|%s|%s", len(lc), lc, len(lr), lr, resource)
	return f.cached(ctx, key, func(ctx context.Context) (*Token, error) {
		q := url.Values{"api-version": {"2018-02-01"}, "resource": {resource}}
		switch {
		case clientID != "":
			q.Set("client_id", clientID)
		case resourceID != "":
			q.Set("msi_res_id", resourceID)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.upstream+"/metadata/identity/oauth2/token?"+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Metadata", "true")
		return f.do(req)
	})
}

// servicePrincipal gets a token with the client-credentials grant of the
// v1 token endpoint.
func (f *tokenFetcher) servicePrincipal(ctx context.Context, authority, tenant, clientID, secret, resource string) (*Token, error) {
	if authority == "" {
		authority = "https://login.microsoftonline.com/"
	}
	if !strings.HasSuffix(authority, "/") {
		authority += "/"
	}
	// The key holds a digest of the credentials, secret included: an
	// identity that names another's client ID without knowing its secret
	// must not be served the other's cached token.
	cred := sha256.Sum256(fmt.Appendf(nil, "%d|%s|%d|%s|%d|%s|%s", len(authority), authority, len(tenant), tenant, len(clientID), clientID, secret))
	key := "sp|" + hex.EncodeToString(cred[:]) + "|" + resource
	return f.cached(ctx, key, func(ctx context.Context) (*Token, error) {
		form := url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {clientID},
			"client_secret": {secret},
			"resource":      {resource},
		}
		// The authority is the identity's adEndpoint, checked to be https
		// by the caller; the secret never travels in clear text.
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, authority+url.PathEscape(tenant)+"/oauth2/token", strings.NewReader(form.Encode())) //nolint:gosec // see above

		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return f.do(req)
	})
}

// do sends req and decodes a token, normalising numbers to strings.
func (f *tokenFetcher) do(req *http.Request) (*Token, error) {
	resp, err := f.client.Do(req) //nolint:gosec // upstream IMDS (configured) or a checked https authority
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &UpstreamError{Status: resp.StatusCode, Body: body}
	}
	var raw map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding token response: %w", err)
	}
	str := func(k string) string {
		switch v := raw[k].(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		default:
			return ""
		}
	}
	tok := &Token{
		AccessToken:  str("access_token"),
		RefreshToken: str("refresh_token"),
		ExpiresIn:    str("expires_in"),
		ExpiresOn:    str("expires_on"),
		NotBefore:    str("not_before"),
		Resource:     str("resource"),
		TokenType:    str("token_type"),
	}
	if tok.AccessToken == "" {
		return nil, errors.New("token response has no access_token")
	}
	if tok.ExpiresOn == "" && tok.ExpiresIn != "" {
		if in, err := strconv.ParseInt(tok.ExpiresIn, 10, 64); err == nil {
			tok.ExpiresOn = strconv.FormatInt(f.clock().Unix()+in, 10)
		}
	}
	return tok, nil
}
