package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// armRequest is one parsed ARM call.
type armRequest struct {
	w       http.ResponseWriter
	r       *http.Request
	c       caller
	version string
}

func (s *Server) serveARM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", newRequestID())
	c, err := s.authenticate(r)
	if err != nil {
		writeARMError(w, err)
		return
	}
	q := r.URL.Query()
	req := &armRequest{w: w, r: r, c: c, version: q.Get("api-version")}
	if err := s.routeARM(r.Context(), req); err != nil {
		var la *linkedAuthError
		if errors.As(err, &la) {
			err = s.linkedAuthFailed(c, typeAction(r.URL.Path, "write"), la)
		}
		writeARMError(w, err)
	}
}

func typeAction(path, verb string) string {
	if rid, err := parseResourceID(path, true); err == nil {
		return rid.typeName() + "/" + verb
	}
	return verb
}

// verbFor maps an HTTP method to an RBAC verb.
func verbFor(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead:
		return "read"
	case http.MethodDelete:
		return "delete"
	case http.MethodPost:
		return "action"
	}
	return "write"
}

func methodNotAllowed(r *http.Request) *ARMError {
	return armErr(http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The requested resource does not support http method '%s'.", r.Method)
}

func (s *Server) routeARM(ctx context.Context, q *armRequest) error {
	path := strings.TrimRight(q.r.URL.Path, "/")
	lower := strings.ToLower(path)
	if i := strings.LastIndex(lower, "/providers/microsoft.authorization/"); i >= 0 {
		return s.serveAuthorization(ctx, q, path[:i], path[i+len("/providers/microsoft.authorization/"):])
	}
	if lower == "/subscriptions" {
		if err := checkVersion(q.version, subscriptionVersions, "", "", true); err != nil {
			return err
		}
		return s.listSubscriptions(q)
	}
	if !strings.HasPrefix(lower, "/subscriptions/") {
		return armErr(http.StatusBadRequest, "MissingSubscription", "The request did not have a subscription or a valid tenant level resource provider.")
	}
	rid, err := parseResourceID(path, true)
	if err != nil {
		return armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is malformed.", path)
	}
	s.st.mu.RLock()
	_, serr := s.subscriptionLocked(rid.Sub)
	s.st.mu.RUnlock()
	if serr != nil {
		return serr
	}
	switch {
	case rid.Namespace == "" && rid.Group == "" && len(rid.Types) == 0:
		if err := checkVersion(q.version, subscriptionVersions, "", "", true); err != nil {
			return err
		}
		return s.serveSubscription(q, rid)
	case rid.Namespace == "" && rid.Group == "" && len(rid.Types) == 1: // resourceGroups collection
		if err := checkVersion(q.version, resourcesVersions, "", "", true); err != nil {
			return err
		}
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		return s.listGroups(q, rid)
	case rid.Namespace == "":
		if err := checkVersion(q.version, resourcesVersions, "", "", true); err != nil {
			return err
		}
		return s.serveGroup(ctx, q, rid)
	case len(rid.Types) == 0 || (len(rid.Types) == 1 && strings.EqualFold(rid.Types[0], "register")):
		if rid.Group != "" {
			break
		}
		if err := checkVersion(q.version, resourcesVersions, "", "", true); err != nil {
			return err
		}
		return s.serveProvider(q, rid)
	case strings.EqualFold(rid.Namespace, "Microsoft.ManagedIdentity"):
		return s.serveMSI(ctx, q, rid)
	case strings.EqualFold(rid.Namespace, "Microsoft.Compute"):
		return s.serveCompute(ctx, q, rid)
	}
	if _, known := canonicalSegment[strings.ToLower(rid.Namespace)]; !known {
		return armErr(http.StatusBadRequest, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.", rid.Namespace)
	}
	return armErr(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s' for api version '%s'.", strings.Join(rid.Types, "/"), rid.Namespace, q.version)
}

// readBody decodes a JSON request body into v (empty body = zero v).
func readBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return armErr(http.StatusBadRequest, "InvalidRequestContent", "The request content could not be read.")
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return armErr(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: '%s'.", err.Error())
	}
	return nil
}

// ---- subscriptions ----

func subscriptionJSON(sb *Subscription) map[string]any {
	return map[string]any{
		"id": "/subscriptions/" + sb.ID, "authorizationSource": "RoleBased", "managedByTenants": []any{},
		"subscriptionId": sb.ID, "tenantId": sb.TenantID, "displayName": sb.DisplayName, "state": "Enabled",
		"subscriptionPolicies": map[string]string{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
	}
}

func (s *Server) listSubscriptions(q *armRequest) error {
	if q.r.Method != http.MethodGet {
		return methodNotAllowed(q.r)
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	out := []any{}
	for _, sb := range s.st.subs {
		if s.hasAnyAssignmentUnder(q.c.ObjectID, "/subscriptions/"+sb.ID) {
			out = append(out, subscriptionJSON(sb))
		}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out, "count": map[string]any{"type": "Total", "value": len(out)}})
	return nil
}

func (s *Server) serveSubscription(q *armRequest, rid resourceID) error {
	if q.r.Method != http.MethodGet {
		return methodNotAllowed(q.r)
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	sb, err := s.subscriptionLocked(rid.Sub)
	if err != nil {
		return err
	}
	if !s.hasAnyAssignmentUnder(q.c.ObjectID, "/subscriptions/"+sb.ID) {
		return armErr(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", rid.Sub)
	}
	writeJSON(q.w, http.StatusOK, subscriptionJSON(sb))
	return nil
}

// ---- providers ----

func (s *Server) serveProvider(q *armRequest, rid resourceID) error {
	if q.r.Method != http.MethodGet && q.r.Method != http.MethodPost {
		return methodNotAllowed(q.r)
	}
	s.st.mu.RLock()
	allowed := s.hasAnyAssignmentUnder(q.c.ObjectID, "/subscriptions/"+rid.Sub)
	s.st.mu.RUnlock()
	if !allowed {
		return s.authorize(q.c, "Microsoft.Resources/subscriptions/providers/read", "/subscriptions/"+rid.Sub)
	}
	types := map[string][][2]any{
		"Microsoft.Compute":         {{"virtualMachines", computeVersions}, {"virtualMachineScaleSets", computeVersions}, {"virtualMachineScaleSets/virtualMachines", computeVersions}},
		"Microsoft.ManagedIdentity": {{"userAssignedIdentities", msiVersions}, {"userAssignedIdentities/federatedIdentityCredentials", ficVersions}},
		"Microsoft.Authorization":   {{"roleAssignments", authzVersions}, {"roleDefinitions", authzVersions}},
	}
	list, ok := types[rid.Namespace]
	if !ok {
		return armErr(http.StatusNotFound, "InvalidResourceNamespace", "The resource namespace '%s' is invalid.", rid.Namespace)
	}
	var rts []any
	for _, t := range list {
		vs := append([]string(nil), t[1].([]string)...)
		for i, j := 0, len(vs)-1; i < j; i, j = i+1, j-1 {
			vs[i], vs[j] = vs[j], vs[i]
		}
		rts = append(rts, map[string]any{"resourceType": t[0], "locations": locations, "apiVersions": vs, "capabilities": "SupportsTags, SupportsLocation"})
	}
	writeJSON(q.w, http.StatusOK, map[string]any{
		"id": "/subscriptions/" + rid.Sub + "/providers/" + rid.Namespace, "namespace": rid.Namespace,
		"registrationState": "Registered", "registrationPolicy": "RegistrationRequired", "resourceTypes": rts,
	})
	return nil
}

// ---- resource groups ----

func groupJSON(g *ResourceGroup) map[string]any {
	m := map[string]any{"id": g.ID, "name": g.Name, "type": "Microsoft.Resources/resourceGroups", "location": g.Location,
		"properties": map[string]string{"provisioningState": "Succeeded"}}
	if len(g.Tags) > 0 {
		m["tags"] = g.Tags
	}
	return m
}

func (s *Server) listGroups(q *armRequest, rid resourceID) error {
	scope := "/subscriptions/" + rid.Sub
	if err := s.authorize(q.c, "Microsoft.Resources/subscriptions/resourceGroups/read", scope); err != nil {
		return err
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	out := []any{}
	for _, g := range s.st.groups {
		if strings.EqualFold(g.SubscriptionID, rid.Sub) {
			out = append(out, groupJSON(g))
		}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) serveGroup(ctx context.Context, q *armRequest, rid resourceID) error {
	scope := groupID(rid.Sub, rid.Group)
	action := "Microsoft.Resources/subscriptions/resourceGroups/" + verbFor(q.r.Method)
	if err := s.authorize(q.c, action, scope); err != nil {
		return err
	}
	switch q.r.Method {
	case http.MethodGet:
		g, err := s.ResourceGroup(ctx, rid.Sub, rid.Group)
		if err != nil {
			return err
		}
		writeJSON(q.w, http.StatusOK, groupJSON(g))
	case http.MethodHead:
		if _, err := s.ResourceGroup(ctx, rid.Sub, rid.Group); err != nil {
			q.w.WriteHeader(http.StatusNotFound)
			return nil
		}
		q.w.WriteHeader(http.StatusNoContent)
	case http.MethodPut, http.MethodPatch:
		var body struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
		}
		if err := readBody(q.r, &body); err != nil {
			return err
		}
		if q.r.Method == http.MethodPatch {
			g, err := s.ResourceGroup(ctx, rid.Sub, rid.Group)
			if err != nil {
				return err
			}
			body.Location = g.Location
		}
		g, created, err := s.CreateResourceGroup(ctx, rid.Sub, rid.Group, body.Location, body.Tags)
		if err != nil {
			return err
		}
		writeJSON(q.w, createdStatus(created), groupJSON(g))
	case http.MethodDelete:
		if err := s.DeleteResourceGroup(ctx, rid.Sub, rid.Group); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusOK)
	default:
		return methodNotAllowed(q.r)
	}
	return nil
}

func createdStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// ---- Microsoft.ManagedIdentity ----

func identityJSON(i *Identity) map[string]any {
	tags := i.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{"id": i.ID, "name": i.Name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "location": i.Location, "tags": tags,
		"properties": map[string]string{"isolationScope": "None", "tenantId": i.TenantID, "principalId": i.PrincipalID, "clientId": i.ClientID}}
}

func ficJSON(f *FederatedCredential) map[string]any {
	return map[string]any{"id": f.ID, "name": f.Name, "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
		"properties": map[string]any{"issuer": f.Issuer, "subject": f.Subject, "audiences": f.Audiences}}
}

func (s *Server) groupLocation(sub, group string) string {
	if group == "" {
		return ""
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if g, ok := s.st.groups[key(groupID(sub, group))]; ok {
		return g.Location
	}
	return ""
}

func (s *Server) serveMSI(ctx context.Context, q *armRequest, rid resourceID) error {
	loc := s.groupLocation(rid.Sub, rid.Group)
	switch {
	case rid.is("Microsoft.ManagedIdentity", "userAssignedIdentities"):
		if err := checkVersion(q.version, msiVersions, "userAssignedIdentities", loc, false); err != nil {
			return err
		}
	case rid.is("Microsoft.ManagedIdentity", "userAssignedIdentities", "federatedIdentityCredentials"):
		if err := checkVersion(q.version, ficVersions, "userAssignedIdentities/federatedIdentityCredentials", loc, false); err != nil {
			return err
		}
	default:
		return armErr(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s' for api version '%s'.", strings.Join(rid.Types, "/"), rid.Namespace, q.version)
	}
	if rid.Group == "" && (len(rid.Types) != 1 || !rid.isCollection()) {
		return armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is malformed.", q.r.URL.Path)
	}
	scope := strings.TrimRight(q.r.URL.Path, "/")
	if rid.isCollection() {
		scope = scope[:strings.LastIndex(scope, "/")]
		if len(rid.Types) == 1 {
			scope = groupID(rid.Sub, rid.Group)
			if rid.Group == "" {
				scope = "/subscriptions/" + rid.Sub
			}
		}
	}
	if err := s.authorize(q.c, rid.typeName()+"/"+verbFor(q.r.Method), scope); err != nil {
		return err
	}
	if len(rid.Types) == 1 {
		if rid.isCollection() {
			if q.r.Method != http.MethodGet {
				return methodNotAllowed(q.r)
			}
			list, err := s.ListIdentities(ctx, rid.Sub, rid.Group)
			if err != nil {
				return err
			}
			out := []any{}
			for _, i := range list {
				out = append(out, identityJSON(i))
			}
			writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
			return nil
		}
		id := resourcePath(rid.Sub, rid.Group, "Microsoft.ManagedIdentity", "userAssignedIdentities", rid.Names[0])
		switch q.r.Method {
		case http.MethodGet:
			i, err := s.Identity(ctx, id)
			if err != nil {
				return err
			}
			writeJSON(q.w, http.StatusOK, identityJSON(i))
		case http.MethodPut, http.MethodPatch:
			var body struct {
				Location string            `json:"location"`
				Tags     map[string]string `json:"tags"`
			}
			if err := readBody(q.r, &body); err != nil {
				return err
			}
			if q.r.Method == http.MethodPatch {
				if _, err := s.Identity(ctx, id); err != nil {
					return err
				}
			} else if body.Location == "" {
				return armErr(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
			}
			i, created, err := s.PutIdentity(ctx, rid.Sub, rid.Group, rid.Names[0], body.Location, body.Tags)
			if err != nil {
				return err
			}
			writeJSON(q.w, createdStatus(created), identityJSON(i))
		case http.MethodDelete:
			if _, err := s.ResourceGroup(ctx, rid.Sub, rid.Group); err != nil {
				return err
			}
			found, err := s.DeleteIdentity(ctx, id)
			if err != nil {
				return err
			}
			if !found {
				q.w.WriteHeader(http.StatusNoContent)
				return nil
			}
			q.w.WriteHeader(http.StatusOK)
		default:
			return methodNotAllowed(q.r)
		}
		return nil
	}
	// federated identity credentials
	identityID := resourcePath(rid.Sub, rid.Group, "Microsoft.ManagedIdentity", "userAssignedIdentities", rid.Names[0])
	ident, err := s.Identity(ctx, identityID)
	if err != nil {
		return err
	}
	if rid.isCollection() {
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		s.st.mu.RLock()
		out := []any{}
		for _, f := range s.st.fics {
			if key(f.IdentityID) == key(ident.ID) {
				out = append(out, ficJSON(f))
			}
		}
		s.st.mu.RUnlock()
		writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
		return nil
	}
	fid := ident.ID + "/federatedIdentityCredentials/" + rid.Names[1]
	switch q.r.Method {
	case http.MethodGet:
		s.st.mu.RLock()
		f, ok := s.st.fics[key(fid)]
		s.st.mu.RUnlock()
		if !ok {
			return notFound("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials", ident.Name+"/"+rid.Names[1], rid.Group)
		}
		writeJSON(q.w, http.StatusOK, ficJSON(f))
	case http.MethodPut:
		var body struct {
			Properties struct {
				Issuer    string   `json:"issuer"`
				Subject   string   `json:"subject"`
				Audiences []string `json:"audiences"`
			} `json:"properties"`
		}
		if err := readBody(q.r, &body); err != nil {
			return err
		}
		f, created, err := s.PutFederatedCredential(ctx, ident.ID, rid.Names[1], body.Properties.Issuer, body.Properties.Subject, body.Properties.Audiences)
		if err != nil {
			return err
		}
		writeJSON(q.w, createdStatus(created), ficJSON(f))
	case http.MethodDelete:
		s.st.mu.Lock()
		_, ok := s.st.fics[key(fid)]
		if ok {
			if err := s.store.del(bucketFICs, key(fid)); err != nil {
				s.st.mu.Unlock()
				return err
			}
			delete(s.st.fics, key(fid))
		}
		s.st.mu.Unlock()
		if !ok {
			q.w.WriteHeader(http.StatusNoContent)
			return nil
		}
		q.w.WriteHeader(http.StatusOK)
	default:
		return methodNotAllowed(q.r)
	}
	return nil
}

// ---- Microsoft.Compute ----

func (s *Server) identityBlock(c *Compute) map[string]any {
	t := identityTypeString(c)
	if t == "" {
		return nil
	}
	m := map[string]any{"type": t}
	if c.SystemPrincipalID != "" {
		s.st.mu.RLock()
		sb := s.st.subs[key(c.SubscriptionID)]
		s.st.mu.RUnlock()
		m["principalId"] = c.SystemPrincipalID
		m["tenantId"] = sb.TenantID
	}
	if len(c.UserAssigned) > 0 {
		ua := map[string]any{}
		s.st.mu.RLock()
		for _, id := range c.UserAssigned {
			if i, ok := s.st.identities[key(id)]; ok {
				ua[id] = map[string]string{"principalId": i.PrincipalID, "clientId": i.ClientID}
			} else {
				ua[id] = map[string]any{}
			}
		}
		s.st.mu.RUnlock()
		m["userAssignedIdentities"] = ua
	}
	return m
}

func (s *Server) computeJSON(c *Compute, expandInstanceView bool) map[string]any {
	m := map[string]any{"id": c.ID, "name": c.Name, "location": c.Location, "tags": orEmpty(c.Tags)}
	if ib := s.identityBlock(c); ib != nil {
		m["identity"] = ib
	}
	if c.Kind == KindVM {
		m["type"] = "Microsoft.Compute/virtualMachines"
		props := map[string]any{
			"vmId": c.UniqueID, "hardwareProfile": map[string]string{"vmSize": c.VMSize}, "provisioningState": "Succeeded",
			"storageProfile": map[string]any{"imageReference": map[string]string{"publisher": "Canonical", "offer": "UbuntuServer", "sku": "18.04-LTS", "version": "latest"}, "osDisk": map[string]any{"osType": "Linux", "createOption": "FromImage"}},
			"osProfile":      map[string]any{"computerName": c.Name, "adminUsername": "azureuser", "linuxConfiguration": map[string]any{"disablePasswordAuthentication": true}},
		}
		if expandInstanceView {
			props["instanceView"] = map[string]any{"computerName": c.Name, "osName": "ubuntu", "statuses": []any{
				map[string]string{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
				map[string]string{"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
			}}
		}
		m["properties"] = props
		return m
	}
	m["type"] = "Microsoft.Compute/virtualMachineScaleSets"
	m["sku"] = map[string]any{"name": c.VMSize, "tier": "Standard", "capacity": len(c.Instances)}
	m["properties"] = map[string]any{
		"singlePlacementGroup": true, "orchestrationMode": "Uniform", "upgradePolicy": map[string]string{"mode": "Manual"},
		"provisioningState": "Succeeded", "overprovision": false, "uniqueId": c.UniqueID,
		"virtualMachineProfile": map[string]any{"osProfile": map[string]any{"computerNamePrefix": c.Name, "adminUsername": "azureuser"}},
	}
	return m
}

func (s *Server) instanceJSON(c *Compute, in Instance) map[string]any {
	return map[string]any{
		"id": in.ID, "name": in.Name, "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines", "location": c.Location,
		"instanceId": in.InstanceID, "sku": map[string]string{"name": c.VMSize, "tier": "Standard"},
		"properties": map[string]any{"latestModelApplied": true, "vmId": in.VMID, "provisioningState": "Succeeded",
			"hardwareProfile": map[string]string{"vmSize": c.VMSize}, "osProfile": map[string]any{"computerName": computerName(c.Name, in.InstanceID), "adminUsername": "azureuser"}},
	}
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// identityBody is the identity block of a compute PUT/PATCH body; a nil
// map value means "remove" (null).
type identityBody struct {
	Type                   string                     `json:"type"`
	UserAssignedIdentities map[string]json.RawMessage `json:"userAssignedIdentities"`
}

func (b *identityBody) update(delta bool) IdentityUpdate {
	u := IdentityUpdate{Type: b.Type, Delta: delta, UserAssigned: map[string]bool{}}
	for k, v := range b.UserAssignedIdentities {
		u.UserAssigned[k] = strings.TrimSpace(string(v)) != "null"
	}
	return u
}

func (s *Server) serveCompute(ctx context.Context, q *armRequest, rid resourceID) error {
	loc := s.groupLocation(rid.Sub, rid.Group)
	known := rid.is("Microsoft.Compute", KindVM) || rid.is("Microsoft.Compute", KindVMSS) || rid.is("Microsoft.Compute", KindVMSS, KindVM)
	if !known {
		return armErr(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s' for api version '%s'.", strings.Join(rid.Types, "/"), rid.Namespace, q.version)
	}
	if err := checkVersion(q.version, computeVersions, strings.Join(rid.Types, "/"), loc, false); err != nil {
		return err
	}
	if rid.Group == "" && (len(rid.Types) != 1 || !rid.isCollection()) {
		return armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is malformed.", q.r.URL.Path)
	}
	path := strings.TrimRight(q.r.URL.Path, "/")
	scope := path
	if rid.isCollection() {
		scope = path[:strings.LastIndex(path, "/")]
		if len(rid.Types) == 1 {
			scope = groupID(rid.Sub, rid.Group)
			if rid.Group == "" {
				scope = "/subscriptions/" + rid.Sub
			}
		}
	}
	action := rid.typeName() + "/" + verbFor(q.r.Method)
	if err := s.authorize(q.c, action, scope); err != nil {
		return err
	}
	kind := rid.Types[0]
	if len(rid.Types) == 1 && rid.isCollection() {
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		if rid.Group != "" {
			if _, err := s.ResourceGroup(ctx, rid.Sub, rid.Group); err != nil {
				return err
			}
		}
		s.st.mu.RLock()
		var list []*Compute
		for _, c := range s.st.computes {
			if c.Kind == kind && strings.EqualFold(c.SubscriptionID, rid.Sub) && (rid.Group == "" || strings.EqualFold(c.ResourceGroup, rid.Group)) {
				list = append(list, c)
			}
		}
		s.st.mu.RUnlock()
		out := []any{}
		for _, c := range list {
			out = append(out, s.computeJSON(c, false))
		}
		writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
		return nil
	}
	id := resourcePath(rid.Sub, rid.Group, "Microsoft.Compute", kind, rid.Names[0])
	if len(rid.Types) == 2 { // scale-set instances
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		c, err := s.Compute(ctx, id)
		if err != nil {
			return err
		}
		if rid.isCollection() {
			out := []any{}
			for _, in := range c.Instances {
				out = append(out, s.instanceJSON(c, in))
			}
			writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
			return nil
		}
		for _, in := range c.Instances {
			if in.InstanceID == rid.Names[1] {
				writeJSON(q.w, http.StatusOK, s.instanceJSON(c, in))
				return nil
			}
		}
		return notFound("Microsoft.Compute/virtualMachineScaleSets/virtualMachines", rid.Names[0]+"/"+rid.Names[1], rid.Group)
	}
	expand := strings.EqualFold(q.r.URL.Query().Get("$expand"), "instanceView")
	check := func(identityID string) error { // called with s.st.mu held
		if s.authorizedLocked(q.c.ObjectID, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", identityID) {
			return nil
		}
		return errLinked
	}
	switch q.r.Method {
	case http.MethodGet:
		c, err := s.Compute(ctx, id)
		if err != nil {
			return err
		}
		writeJSON(q.w, http.StatusOK, s.computeJSON(c, expand))
	case http.MethodPatch:
		var body struct {
			Identity *identityBody     `json:"identity"`
			Tags     map[string]string `json:"tags"`
		}
		if err := readBody(q.r, &body); err != nil {
			return err
		}
		c, err := s.Compute(ctx, id)
		if err != nil {
			return err
		}
		if body.Identity != nil {
			if c, err = s.UpdateComputeIdentity(ctx, id, body.Identity.update(true), check); err != nil {
				return err
			}
		}
		if body.Tags != nil {
			if c, err = s.setComputeTags(id, body.Tags); err != nil {
				return err
			}
		}
		writeJSON(q.w, http.StatusOK, s.computeJSON(c, false))
	case http.MethodPut:
		var body struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
			Identity *identityBody     `json:"identity"`
			Sku      struct {
				Capacity int `json:"capacity"`
			} `json:"sku"`
		}
		if err := readBody(q.r, &body); err != nil {
			return err
		}
		if body.Location == "" {
			return armErr(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
		}
		c, created, err := s.CreateCompute(ctx, kind, rid.Sub, rid.Group, rid.Names[0], body.Location, body.Sku.Capacity)
		if err != nil {
			return err
		}
		if body.Identity != nil {
			if c, err = s.UpdateComputeIdentity(ctx, id, body.Identity.update(false), check); err != nil {
				return err
			}
		}
		if body.Tags != nil {
			if c, err = s.setComputeTags(id, body.Tags); err != nil {
				return err
			}
		}
		writeJSON(q.w, createdStatus(created), s.computeJSON(c, false))
	case http.MethodDelete:
		found, err := s.deleteCompute(id)
		if err != nil {
			return err
		}
		if !found {
			q.w.WriteHeader(http.StatusNoContent)
			return nil
		}
		q.w.WriteHeader(http.StatusOK)
	default:
		return methodNotAllowed(q.r)
	}
	return nil
}

func (s *Server) setComputeTags(id string, tags map[string]string) (*Compute, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	cur, ok := s.st.computes[key(id)]
	if !ok {
		return nil, armErr(http.StatusNotFound, "ResourceNotFound", "The Resource '%s' was not found.", id)
	}
	c := *cur
	c.Tags = tags
	if err := s.store.put(bucketComputes, key(id), &c); err != nil {
		return nil, err
	}
	s.st.computes[key(id)] = &c
	return &c, nil
}

func (s *Server) deleteCompute(id string) (bool, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	c, ok := s.st.computes[key(id)]
	if !ok {
		return false, nil
	}
	if c.SystemPrincipalID != "" {
		if p, ok := s.st.principals[key(c.SystemPrincipalID)]; ok {
			_ = s.store.del(bucketPrincipals, key(p.ObjectID))
			delete(s.st.principals, key(p.ObjectID))
			delete(s.st.byApp, key(p.AppID))
		}
	}
	if err := s.store.del(bucketComputes, key(id)); err != nil {
		return false, err
	}
	delete(s.st.computes, key(id))
	return true, nil
}

// computerName is a scale-set instance's host name: the prefix and the
// instance ID in base 36, zero-padded to 6 (as AKS nodes are named).
func computerName(prefix, instanceID string) string {
	n, err := strconv.ParseInt(instanceID, 10, 64)
	if err != nil {
		return prefix + instanceID
	}
	return fmt.Sprintf("%s%06s", prefix, strconv.FormatInt(n, 36))
}

// newRequestID returns an x-ms-request-id value.
func newRequestID() string { return uuid.NewString() }
