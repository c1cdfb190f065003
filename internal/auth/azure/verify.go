package azure

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/logical"
)

const (
	// clockSkew is the leeway on exp and nbf.
	clockSkew = time.Minute
	// minKeyRefresh is the shortest interval between two JWKS fetches
	// triggered by unknown kids, so forged kids cannot make us hammer the
	// issuer.
	minKeyRefresh = 15 * time.Second
	// maxKeyAge makes a key set older than this be refetched before use.
	maxKeyAge = 24 * time.Hour
	// maxDocBytes bounds discovery and JWKS documents.
	maxDocBytes = 1 << 20
	userAgent   = "keyward-auth-azure"
)

// tokenClaims are the claims of an Entra ID access token the method uses.
type tokenClaims struct {
	jwt.Claims
	ObjectID string   `json:"oid"`
	TenantID string   `json:"tid"`
	AppID    string   `json:"appid"`
	Groups   []string `json:"groups"`
	XMSAzRID string   `json:"xms_az_rid"`
	XMSMIRID string   `json:"xms_mirid"`
}

// discover fetches {authority}{tenant}/.well-known/openid-configuration and
// returns the issuer and jwks_uri. The error texts are Vault's.
func discover(ctx context.Context, c *http.Client, authorityHost, tenant string) (issuer, jwksURI string, err error) {
	u := authorityHost + url.PathEscape(tenant) + "/.well-known/openid-configuration"
	body, err := fetch(ctx, c, u)
	if err != nil {
		return "", "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", "", fail(ErrDiscovery, err, "unable to unmarshal discovery url: %v", err)
	}
	if doc.Issuer == "" || doc.JWKSURI == "" {
		return "", "", fail(ErrDiscovery, nil, "discovery document at %s lacks issuer or jwks_uri", u)
	}
	return doc.Issuer, doc.JWKSURI, nil
}

// fetch GETs u and returns its body; non-200 is Vault's "<status>: <body>".
func fetch(ctx context.Context, c *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fail(ErrDiscovery, err, "invalid discovery URL %q", u)
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.Do(req)
	if err != nil {
		return nil, fail(ErrDiscovery, err, "unable to fetch %s: %v", u, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes))
	if err != nil {
		return nil, fail(ErrDiscovery, err, "unable to read %s: %v", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fail(ErrDiscovery, nil, "%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// keySet is the issuer's JWKS, cached and refetched on an unknown kid at
// most once per minKeyRefresh. Safe for concurrent use.
type keySet struct {
	uri    string
	client *http.Client
	clock  logical.Clock
	logger *slog.Logger

	// fetchMu serialises fetches; lock order fetchMu before mu.
	fetchMu sync.Mutex
	mu      sync.RWMutex
	// keys by kid; guarded by mu.
	keys map[string]*rsa.PublicKey
	// fetched is the time of the last successful fetch; guarded by mu.
	fetched time.Time
	// attempted is the time of the last fetch attempt; guarded by mu.
	attempted time.Time
}

func newKeySet(uri string, c *http.Client, clock logical.Clock, logger *slog.Logger) *keySet {
	return &keySet{uri: uri, client: c, clock: clock, logger: logger}
}

// key returns the key with kid ("" = every key), fetching the set when it is
// empty, stale, or lacks kid and the rate limit allows.
func (k *keySet) key(ctx context.Context, kid string) ([]*rsa.PublicKey, error) {
	if keys, fresh := k.lookup(kid); len(keys) > 0 && fresh {
		return keys, nil
	}
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	keys, fresh := k.lookup(kid) // another caller may have fetched meanwhile
	if len(keys) > 0 && fresh {
		return keys, nil
	}
	k.mu.RLock()
	recent := !k.attempted.IsZero() && k.clock.Now().Sub(k.attempted) < minKeyRefresh
	k.mu.RUnlock()
	if !recent {
		// Detached from the caller: a client hanging up mid-fetch must not
		// use up the refetch allowance (the HTTP client's timeout bounds it).
		if err := k.refresh(context.WithoutCancel(ctx)); err != nil {
			if len(keys) > 0 { // stale but known: keep working while the issuer is down
				k.logger.Warn("azure auth: JWKS refresh failed; using cached keys", "jwks_uri", k.uri, "error", err)
				return keys, nil
			}
			return nil, err
		}
		keys, _ = k.lookup(kid)
	}
	if len(keys) == 0 {
		return nil, fail(ErrUnknownKey, nil, "failed to verify signature: no key in the issuer's key set has kid %q", kid)
	}
	return keys, nil
}

// lookup returns the cached keys matching kid and whether the set is fresh.
func (k *keySet) lookup(kid string) ([]*rsa.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	fresh := !k.fetched.IsZero() && k.clock.Now().Sub(k.fetched) < maxKeyAge
	if kid == "" {
		out := make([]*rsa.PublicKey, 0, len(k.keys))
		for _, v := range k.keys {
			out = append(out, v)
		}
		return out, fresh
	}
	if v, ok := k.keys[kid]; ok {
		return []*rsa.PublicKey{v}, fresh
	}
	return nil, fresh
}

// refresh fetches the JWKS. Caller holds fetchMu.
func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	k.attempted = k.clock.Now()
	k.mu.Unlock()
	body, err := fetch(ctx, k.client, k.uri)
	if err != nil {
		return err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return fail(ErrDiscovery, err, "oidc: failed to decode keys: %v", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(set.Keys))
	for _, jwk := range set.Keys {
		pub, ok := jwk.Key.(*rsa.PublicKey)
		if !ok || (jwk.Use != "" && jwk.Use != "sig") {
			continue
		}
		keys[jwk.KeyID] = pub
	}
	k.mu.Lock()
	k.keys = keys
	k.fetched = k.clock.Now()
	k.mu.Unlock()
	return nil
}

// verifier checks Entra ID access tokens for one config.
type verifier struct {
	issuer   string
	audience string
	tenantID string
	keys     *keySet
	clock    logical.Clock
}

// verify checks raw's signature, then iss, aud, exp, nbf and tid, and
// returns its claims. Every error is a 500 *logical.CodedError wrapping a
// sentinel of errors.go.
func (v *verifier) verify(ctx context.Context, raw string) (*tokenClaims, error) {
	alg, kid, err := peekHeader(raw)
	if err != nil {
		return nil, err
	}
	if alg != string(jose.RS256) {
		return nil, fail(ErrUnsupportedAlgorithm, nil, "oidc: id token signed with unsupported algorithm, expected [\"RS256\"] got %q", alg)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fail(ErrMalformedToken, err, "oidc: malformed jwt: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fail(ErrMalformedToken, nil, "oidc: multiple signatures on id token not supported")
	}
	keys, err := v.keys.key(ctx, kid)
	if err != nil {
		return nil, err
	}
	var payload []byte
	for _, k := range keys {
		p, verr := jws.Verify(k)
		if verr == nil {
			payload = p
			break
		}
		if !errors.Is(verr, jose.ErrCryptoFailure) {
			return nil, fail(ErrMalformedToken, verr, "oidc: malformed jwt: %v", verr)
		}
	}
	if payload == nil {
		return nil, fail(ErrBadSignature, nil, "failed to verify signature: failed to verify id token signature")
	}
	var c tokenClaims
	if uerr := json.Unmarshal(payload, &c); uerr != nil {
		return nil, fail(ErrMalformedToken, uerr, "oidc: failed to unmarshal claims: %v", uerr)
	}

	if c.Issuer != v.issuer {
		return nil, fail(ErrIssuer, nil, "oidc: id token issued by a different provider, expected %q got %q", v.issuer, c.Issuer)
	}
	if !slices.Contains([]string(c.Audience), v.audience) {
		return nil, fail(ErrAudience, nil, "oidc: expected audience %q got %q", v.audience, []string(c.Audience))
	}
	now := v.clock.Now()
	if c.Expiry == nil {
		return nil, fail(ErrExpired, nil, "oidc: token has no expiry (exp) claim")
	}
	if exp := c.Expiry.Time(); now.After(exp.Add(clockSkew)) {
		return nil, fail(ErrExpired, nil, "oidc: token is expired (Token Expiry: %v)", exp)
	}
	if c.NotBefore != nil {
		if nbf := c.NotBefore.Time(); now.Add(clockSkew).Before(nbf) {
			return nil, fail(ErrNotYetValid, nil, "token is not yet valid (Token Not Before: %v)", nbf)
		}
	}
	if !tenantMatches(c.TenantID, v.tenantID, v.issuer) {
		return nil, fail(ErrTenant, nil, "token tenant id %q does not match the configured tenant_id %q", c.TenantID, v.tenantID)
	}
	if c.ObjectID == "" {
		return nil, fail(ErrMissingClaim, nil, "token has no oid claim")
	}
	return &c, nil
}

// tenantMatches reports whether the token's tid is the configured tenant:
// equal to tenant_id, or (when tenant_id is a domain name) a path segment
// of the discovered issuer, as in https://sts.windows.net/{tid}/.
func tenantMatches(tid, tenantID, issuer string) bool {
	if tid == "" {
		return false
	}
	if strings.EqualFold(tid, tenantID) {
		return true
	}
	if guidRe.MatchString(tenantID) {
		return false
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg != "" && strings.EqualFold(seg, tid) {
			return true
		}
	}
	return false
}

// peekHeader decodes the protected header of a compact JWS without
// verifying it, to report the algorithm and pick the key.
func peekHeader(raw string) (alg, kid string, err error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", "", fail(ErrMalformedToken, nil, "oidc: malformed jwt: go-jose/go-jose: compact JWS format must have three parts")
	}
	hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return "", "", fail(ErrMalformedToken, err, "oidc: malformed jwt: illegal base64 data in header")
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return "", "", fail(ErrMalformedToken, err, "oidc: malformed jwt: invalid header: %v", err)
	}
	return h.Alg, h.Kid, nil
}
