package cloud

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/oidc"
)

// caller is the authenticated principal of an ARM request.
type caller struct {
	ObjectID string
	AppID    string
	TenantID string
}

// armAudiences are the audiences ARM accepts (public cloud spellings).
var armAudiences = []string{
	"https://management.core.windows.net/", "https://management.core.windows.net",
	"https://management.azure.com/", "https://management.azure.com",
}

// authenticate validates the bearer token of r: our signature, issuer of a
// known tenant, audience, and time window. Errors are 401 *ARMError.
func (s *Server) authenticate(r *http.Request) (caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, armErr(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return caller{}, armErr(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is provided in an invalid format.")
	}
	now := s.now()
	payload, err := s.keys.Verify(tok, now)
	if err != nil {
		if errors.Is(err, oidc.ErrMalformed) {
			return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
		}
		return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token could not be validated; the signing key was not found or the signature is invalid.")
	}
	var c oidc.AccessToken
	if err := json.Unmarshal(payload, &c); err != nil {
		return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	}
	s.st.mu.RLock()
	_, knownTenant := s.st.tenants[key(c.Tid)]
	s.st.mu.RUnlock()
	if !knownTenant || (c.Iss != oidc.V1Issuer(c.Tid) && c.Iss != oidc.V2Issuer(s.loginURL, c.Tid)) {
		return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer '%s'. It must match the tenant associated with this subscription. Please use the authority (URL) '%s' to get the token.", c.Iss, s.loginURL+c.Tid)
	}
	audOK := false
	for _, a := range append(armAudiences, s.armURL, strings.TrimSuffix(s.armURL, "/")) {
		if c.Aud == a {
			audOK = true
		}
	}
	if !audOK {
		return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences '%s'.", c.Aud, strings.Join(armAudiences, "','"))
	}
	if now.Unix() >= c.Exp {
		return caller{}, armErr(http.StatusUnauthorized, "ExpiredAuthenticationToken", "The access token expiry UTC time '%s' is earlier than current UTC time '%s'.", time.Unix(c.Exp, 0).UTC().Format("1/2/2006 3:04:05 PM"), now.UTC().Format("1/2/2006 3:04:05 PM"))
	}
	if now.Add(5*time.Minute).Unix() < c.Nbf {
		return caller{}, armErr(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is not yet valid.")
	}
	return caller{ObjectID: c.OID, AppID: c.AppID, TenantID: c.Tid}, nil
}

// authorize returns 403 AuthorizationFailed unless the caller may perform
// action at scope.
func (s *Server) authorize(c caller, action, scope string) error {
	if s.Authorized(c.ObjectID, action, scope) {
		return nil
	}
	return armErr(http.StatusForbidden, "AuthorizationFailed", "The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.", c.AppID, c.ObjectID, action, scope)
}

func (s *Server) linkedAuthFailed(c caller, action string, e *linkedAuthError) *ARMError {
	return armErr(http.StatusForbidden, "LinkedAuthorizationFailed", "The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, it does not have permission to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) '%s' or the linked scope(s) are invalid.", c.AppID, c.ObjectID, action, e.scope, strings.Join(e.ids, ","))
}
