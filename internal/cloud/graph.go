package cloud

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/keyward/keyward/internal/oidc"
)

// graphAudiences are the audiences Microsoft Graph accepts.
var graphAudiences = []string{"https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000"}

var graphAppFilterRE = regexp.MustCompile(`(?i)^\s*appId\s+eq\s+'([^']+)'\s*$`)

// serveGraph answers the small Microsoft Graph subset the CLI needs to
// resolve an assignee (as az does): GET /v1.0/servicePrincipals?$filter=
// appId eq '{id}' and GET /v1.0/servicePrincipals/{objectId}. It is served
// on the login listener; the bearer token must be for Graph.
func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request) {
	gerr := func(status int, code, msg string) {
		writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg, "innerError": map[string]string{"request-id": newRequestID()}}})
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		gerr(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	payload, err := s.keys.Verify(tok, s.now())
	var c oidc.AccessToken
	if err != nil || json.Unmarshal(payload, &c) != nil || s.now().Unix() >= c.Exp {
		gerr(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return
	}
	audOK := false
	for _, a := range graphAudiences {
		audOK = audOK || c.Aud == a
	}
	if !audOK {
		gerr(http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return
	}
	if r.Method != http.MethodGet {
		gerr(http.StatusMethodNotAllowed, "Request_BadRequest", "Unsupported method.")
		return
	}
	spJSON := func(p *Principal) map[string]any {
		t := "Application"
		if p.Type == "ManagedIdentity" {
			t = "ManagedIdentity"
		}
		return map[string]any{"id": p.ObjectID, "appId": p.AppID, "displayName": p.DisplayName, "servicePrincipalType": t, "appOwnerOrganizationId": p.TenantID}
	}
	rest := strings.TrimPrefix(strings.TrimRight(r.URL.Path, "/"), "/v1.0/servicePrincipals")
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if rest == "" {
		out := []any{}
		if m := graphAppFilterRE.FindStringSubmatch(r.URL.Query().Get("$filter")); m != nil {
			if p, ok := s.st.byApp[key(m[1])]; ok && strings.EqualFold(p.TenantID, c.Tid) {
				out = append(out, spJSON(p))
			}
		} else {
			gerr(http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported query.")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals", "value": out})
		return
	}
	id := strings.TrimPrefix(rest, "/")
	if p, ok := s.st.principals[key(id)]; ok && strings.EqualFold(p.TenantID, c.Tid) {
		writeJSON(w, http.StatusOK, spJSON(p))
		return
	}
	gerr(http.StatusNotFound, "Request_ResourceNotFound", "Resource '"+id+"' does not exist or one of its queried reference-property objects are not present.")
}
