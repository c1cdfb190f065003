package cloud

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyward/keyward/internal/oidc"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" //nolint:gosec // a URN, not a credential

// LoginHandler returns the token service's handler (the Entra ID shape):
//
//	GET  /{tenant}/.well-known/openid-configuration        v1 discovery
//	GET  /{tenant}/v2.0/.well-known/openid-configuration   v2 discovery
//	GET  /common/discovery/keys, /{tenant}/discovery/keys  JWKS
//	GET  /{tenant}/discovery/v2.0/keys                     JWKS with issuer
//	GET  /common/discovery/instance                        MSAL instance discovery
//	POST /{tenant}/oauth2/token                            v1 client credentials (resource=)
//	POST /{tenant}/oauth2/v2.0/token                       v2 client credentials (scope=.../.default)
//	GET  /v1.0/servicePrincipals…                          Graph subset (assignee lookup)
func (s *Server) LoginHandler() http.Handler {
	return http.HandlerFunc(s.serveLogin)
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1.0/servicePrincipals") {
		s.serveGraph(w, r)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) < 2 {
		http.NotFound(w, r)
		return
	}
	tenant, rest := segs[0], strings.Join(segs[1:], "/")
	switch {
	case r.Method == http.MethodGet && rest == ".well-known/openid-configuration":
		if err := s.checkTenant(tenant); err != nil {
			writeAADError(w, err, s.now())
			return
		}
		doc := oidc.DiscoveryV1(s.loginURL, tenantOrTemplate(tenant))
		writeJSON(w, http.StatusOK, doc)
	case r.Method == http.MethodGet && rest == "v2.0/.well-known/openid-configuration":
		if err := s.checkTenant(tenant); err != nil {
			writeAADError(w, err, s.now())
			return
		}
		writeJSON(w, http.StatusOK, oidc.DiscoveryV2(s.loginURL, tenantOrTemplate(tenant)))
	case r.Method == http.MethodGet && rest == "discovery/keys":
		writeJSON(w, http.StatusOK, s.keys.JWKS(s.now(), ""))
	case r.Method == http.MethodGet && rest == "discovery/v2.0/keys":
		writeJSON(w, http.StatusOK, s.keys.JWKS(s.now(), oidc.V2Issuer(s.loginURL, tenantOrTemplate(tenant))))
	case r.Method == http.MethodGet && tenant == "common" && rest == "discovery/instance":
		s.serveInstanceDiscovery(w, r)
	case rest == "oauth2/token" || rest == "oauth2/v2.0/token":
		if r.Method != http.MethodPost {
			writeAADError(w, aadErr(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a %s request.", r.Method), s.now())
			return
		}
		s.serveToken(w, r, tenant, rest == "oauth2/v2.0/token")
	default:
		http.NotFound(w, r)
	}
}

func tenantOrTemplate(t string) string {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return "{tenantid}"
	}
	return t
}

// checkTenant accepts known tenant GUIDs and the multi-tenant aliases.
func (s *Server) checkTenant(t string) error {
	switch strings.ToLower(t) {
	case "common", "organizations", "consumers":
		return nil
	}
	s.st.mu.RLock()
	_, ok := s.st.tenants[key(t)]
	s.st.mu.RUnlock()
	if !ok {
		return aadErr(http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", t)
	}
	return nil
}

func (s *Server) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	u, _ := url.Parse(s.loginURL)
	tenant := "common"
	if ae, err := url.Parse(r.URL.Query().Get("authorization_endpoint")); err == nil {
		if parts := strings.Split(strings.Trim(ae.Path, "/"), "/"); len(parts) > 0 && parts[0] != "" {
			tenant = parts[0]
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.loginURL + tenant + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata":                  []map[string]any{{"preferred_network": u.Host, "preferred_cache": u.Host, "aliases": []string{u.Host}}},
	})
}

// TokenResponse is a successful token-endpoint answer.
type TokenResponse struct {
	AccessToken string
	Resource    string
	ExpiresOn   time.Time
	NotBefore   time.Time
	Lifetime    time.Duration
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string, v2 bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		writeAADError(w, aadErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."), s.now())
		return
	}
	f := r.PostForm
	clientID, secret := f.Get("client_id"), f.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	req := ClientCredentialsRequest{
		Tenant: tenant, ClientID: clientID, ClientSecret: secret,
		AssertionType: f.Get("client_assertion_type"), Assertion: f.Get("client_assertion"),
		GrantType: f.Get("grant_type"),
	}
	if v2 {
		req.Scope = f.Get("scope")
	} else {
		req.Resource = f.Get("resource")
	}
	tok, err := s.ClientCredentials(r.Context(), req, v2)
	if err != nil {
		var ae *AADError
		if errors.As(err, &ae) {
			s.log.Info("token request rejected", "tenant", tenant, "client_id", clientID, "code", ae.Code)
		}
		writeAADError(w, err, s.now())
		return
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	if v2 {
		writeJSON(w, http.StatusOK, map[string]any{
			"token_type": "Bearer", "expires_in": int(tok.Lifetime.Seconds()), "ext_expires_in": int(tok.Lifetime.Seconds()),
			"access_token": tok.AccessToken,
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"token_type": "Bearer", "expires_in": strconv.Itoa(int(tok.Lifetime.Seconds())), "ext_expires_in": strconv.Itoa(int(tok.Lifetime.Seconds())),
		"expires_on": strconv.FormatInt(tok.ExpiresOn.Unix(), 10), "not_before": strconv.FormatInt(tok.NotBefore.Unix(), 10),
		"resource": tok.Resource, "access_token": tok.AccessToken,
	})
}

// ClientCredentialsRequest is a client-credentials token request.
type ClientCredentialsRequest struct {
	Tenant, GrantType, ClientID, ClientSecret string
	AssertionType, Assertion                  string
	// Resource (v1) or Scope (v2) names the audience.
	Resource, Scope string
}

// ClientCredentials validates req like Entra's token endpoint and mints an
// access token. Errors are *AADError.
func (s *Server) ClientCredentials(ctx context.Context, req ClientCredentialsRequest, v2 bool) (*TokenResponse, error) {
	if err := s.checkTenant(req.Tenant); err != nil {
		return nil, err
	}
	if req.GrantType == "" {
		return nil, missingParam("grant_type")
	}
	if req.GrantType != "client_credentials" {
		return nil, aadErr(http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", req.GrantType)
	}
	if req.ClientID == "" {
		return nil, missingParam("client_id")
	}
	resource := req.Resource
	if v2 {
		if req.Scope == "" {
			return nil, missingParam("scope")
		}
		var scopes []string
		for _, sc := range strings.Fields(req.Scope) {
			switch sc {
			case "openid", "profile", "offline_access":
				continue
			}
			scopes = append(scopes, sc)
		}
		if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
			return nil, aadErr(http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", req.Scope)
		}
		resource = strings.TrimSuffix(scopes[0], "/.default")
	} else if resource == "" {
		return nil, missingParam("resource")
	}
	s.st.mu.RLock()
	p, ok := s.st.byApp[key(req.ClientID)]
	var pc Principal
	if ok {
		pc = *p
	}
	s.st.mu.RUnlock()
	tenant := req.Tenant
	if tenantOrTemplate(tenant) == "{tenantid}" && ok {
		tenant = pc.TenantID
	}
	if !ok || !strings.EqualFold(pc.TenantID, tenant) {
		return nil, aadErr(http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", req.ClientID, req.Tenant)
	}
	acr := "1"
	switch {
	case req.Assertion != "" || req.AssertionType != "":
		if req.AssertionType != jwtBearer {
			return nil, aadErr(http.StatusBadRequest, "invalid_request", 50027, "Invalid client_assertion_type '%s'.", req.AssertionType)
		}
		if err := s.checkFederatedAssertion(ctx, &pc, req.Assertion); err != nil {
			return nil, err
		}
		acr = "2"
	case req.ClientSecret != "":
		if !pc.checkSecret(req.ClientSecret) {
			return nil, aadErr(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", req.ClientID)
		}
	default:
		return nil, aadErr(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
	now := s.now()
	claims := oidc.NewAppToken(oidc.App{TenantID: pc.TenantID, ClientID: pc.AppID, PrincipalID: pc.ObjectID, ACR: acr, ResourceID: pc.ResourceID}, resource, now)
	tok, err := s.keys.Sign(claims)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{AccessToken: tok, Resource: resource, NotBefore: now, ExpiresOn: claims.Expiry(), Lifetime: oidc.ClientCredentialsLifetime}, nil
}

func missingParam(name string) *AADError {
	return aadErr(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: '%s'.", name)
}

// assertionClaims are the claims of a federated client assertion.
type assertionClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp int64           `json:"exp"`
	Nbf int64           `json:"nbf"`
}

func (c assertionClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

// checkFederatedAssertion matches the assertion against p's federated
// credentials (issuer, subject, audience) and verifies its signature with
// the issuer's published keys.
func (s *Server) checkFederatedAssertion(ctx context.Context, p *Principal, assertion string) error {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return aadErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c assertionClaims
	if err != nil || json.Unmarshal(pb, &c) != nil {
		return aadErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
	}
	auds := c.audiences()
	s.st.mu.RLock()
	var match *FederatedCredential
	for _, f := range s.st.fics {
		if p.ResourceID == "" || key(f.IdentityID) != key(p.ResourceID) {
			continue
		}
		if f.Issuer == c.Iss && f.Subject == c.Sub && slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(f.Audiences, a) }) {
			match = f
			break
		}
	}
	s.st.mu.RUnlock()
	if match == nil {
		return aadErr(http.StatusBadRequest, "invalid_client", 70021, "No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://docs.microsoft.com/azure/active-directory/develop/workload-identity-federation", c.Iss, c.Sub, strings.Join(auds, ","))
	}
	now := s.now()
	if c.Exp != 0 && now.Unix() >= c.Exp || c.Nbf != 0 && now.Unix()+300 < c.Nbf {
		return aadErr(http.StatusBadRequest, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339), time.Unix(c.Nbf, 0).UTC().Format(time.RFC3339), time.Unix(c.Exp, 0).UTC().Format(time.RFC3339))
	}
	if err := s.fed.verify(ctx, c.Iss, assertion); err != nil {
		s.log.Info("federated assertion rejected", "issuer", c.Iss, "err", err.Error())
		return aadErr(http.StatusUnauthorized, "invalid_client", 50013, "Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '']")
	}
	return nil
}

// federation verifies assertions of external OIDC issuers with go-oidc,
// caching one provider per issuer.
type federation struct {
	client *http.Client
	now    func() time.Time
	mu     sync.Mutex
	byIss  map[string]*gooidc.IDTokenVerifier // guarded by mu
}

func newFederation(c *http.Client, now func() time.Time) *federation {
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	return &federation{client: c, now: now, byIss: map[string]*gooidc.IDTokenVerifier{}}
}

func (f *federation) verify(ctx context.Context, issuer, token string) error {
	f.mu.Lock()
	v, ok := f.byIss[issuer]
	f.mu.Unlock()
	if !ok {
		pctx := gooidc.ClientContext(context.WithoutCancel(ctx), f.client)
		prov, err := gooidc.NewProvider(pctx, issuer)
		if err != nil {
			return fmt.Errorf("discover %s: %w", issuer, err)
		}
		v = prov.Verifier(&gooidc.Config{SkipClientIDCheck: true, Now: f.now, SupportedSigningAlgs: []string{"RS256", "ES256"}})
		f.mu.Lock()
		f.byIss[issuer] = v
		f.mu.Unlock()
	}
	_, err := v.Verify(ctx, token)
	return err
}
