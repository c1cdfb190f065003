package cloud

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/oidc"
)

// imdsVersions are the api-versions IMDS accepts, oldest first.
var imdsVersions = []string{
	"2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01", "2018-02-01", "2018-04-02",
	"2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01",
	"2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
	"2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-10-01", "2021-11-01", "2021-11-15",
	"2021-12-13", "2023-07-01", "2023-11-15", "2024-03-15",
}

// newestIMDSVersions is what IMDS lists in "newest-versions" of errors.
var newestIMDSVersions = []string{"2020-10-01", "2020-09-01", "2020-07-15"}

// imdsTarget is the compute instance an IMDS endpoint answers for.
type imdsTarget struct {
	// computeID is the VM or scale set holding the identities.
	computeID string
	// instanceID is the VM's or scale-set instance's ARM ID.
	instanceID string
	// instance is set for scale-set instances.
	instance *Instance
}

// resolveInstance parses a VM ID or a scale-set instance ID.
func (s *Server) resolveInstance(ctx context.Context, id string) (imdsTarget, error) {
	r, err := parseResourceID(id, false)
	if err != nil || r.Group == "" {
		return imdsTarget{}, fmt.Errorf("cloud: %q is not a VM or scale-set instance ID: %w", id, errMalformedID)
	}
	switch {
	case r.is("Microsoft.Compute", KindVM):
		c, err := s.Compute(ctx, id)
		if err != nil {
			return imdsTarget{}, err
		}
		return imdsTarget{computeID: c.ID, instanceID: c.ID}, nil
	case r.is("Microsoft.Compute", KindVMSS, KindVM):
		c, err := s.Compute(ctx, resourcePath(r.Sub, r.Group, "Microsoft.Compute", KindVMSS, r.Names[0]))
		if err != nil {
			return imdsTarget{}, err
		}
		for i := range c.Instances {
			if c.Instances[i].InstanceID == r.Names[1] {
				inst := c.Instances[i]
				return imdsTarget{computeID: c.ID, instanceID: inst.ID, instance: &inst}, nil
			}
		}
		return imdsTarget{}, notFound("Microsoft.Compute/virtualMachineScaleSets/virtualMachines", r.Names[0]+"/"+r.Names[1], r.Group)
	}
	return imdsTarget{}, fmt.Errorf("cloud: %q is not a VM or scale-set instance ID: %w", id, errMalformedID)
}

// IMDSHandler returns the IMDS handler for one VM (…/virtualMachines/{vm})
// or scale-set instance (…/virtualMachineScaleSets/{vmss}/virtualMachines/{n}).
// It serves /metadata/versions, /metadata/instance[/…] and
// /metadata/identity/oauth2/token with IMDS's checks and error bodies. Mount
// it on a plain-HTTP listener (one per instance) or call it in-process.
func (s *Server) IMDSHandler(ctx context.Context, instanceID string) (http.Handler, error) {
	t, err := s.resolveInstance(ctx, instanceID)
	if err != nil {
		return nil, err
	}
	return &imdsHandler{s: s, t: t, cache: map[string]*cachedToken{}}, nil
}

type imdsHandler struct {
	s     *Server
	t     imdsTarget
	mu    sync.Mutex
	cache map[string]*cachedToken // guarded by mu; key principal|resource
}

type cachedToken struct {
	token  string
	issued time.Time
	exp    time.Time
}

func imdsJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Server", "IMDS/150.870.65.1544")
	writeJSON(w, status, v)
}

func imdsTokenError(w http.ResponseWriter, e *IMDSError) {
	imdsJSON(w, e.Status, map[string]string{"error": e.Err, "error_description": e.Description})
}

// ServeHTTP applies IMDS's request checks, then routes.
func (h *imdsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.ToLower(strings.TrimRight(r.URL.Path, "/"))
	isToken := path == "/metadata/identity/oauth2/token"
	if r.Method != http.MethodGet && (!isToken || r.Method != http.MethodPost) {
		imdsJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "Bad request. Only GET is supported."})
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		if isToken {
			imdsTokenError(w, &IMDSError{http.StatusBadRequest, "invalid_request", "Request contains X-Forwarded-For header"})
		} else {
			imdsJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad request. The request contains an X-Forwarded-For header."})
		}
		return
	}
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		if isToken {
			imdsTokenError(w, &IMDSError{http.StatusBadRequest, "invalid_request", "Required metadata header not specified"})
		} else {
			imdsJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad request. Required metadata header not specified"})
		}
		return
	}
	q := r.URL.Query()
	for k, v := range q {
		if len(v) > 1 {
			imdsJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad request. Query parameter " + k + " is specified more than once."})
			return
		}
	}
	if path == "/metadata/versions" {
		imdsJSON(w, http.StatusOK, map[string][]string{"apiVersions": imdsVersions})
		return
	}
	ver := q.Get("api-version")
	if ver == "" {
		if isToken {
			imdsTokenError(w, &IMDSError{http.StatusBadRequest, "invalid_request", "Required api-version parameter not specified"})
			return
		}
		imdsJSON(w, http.StatusBadRequest, map[string]any{"error": "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": newestIMDSVersions})
		return
	}
	if !slices.Contains(imdsVersions, ver) || (isToken && ver < "2018-02-01") {
		if isToken {
			imdsTokenError(w, &IMDSError{http.StatusBadRequest, "invalid_request", "Invalid 'api-version' requested"})
			return
		}
		imdsJSON(w, http.StatusBadRequest, map[string]any{"error": "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds", "newest-versions": newestIMDSVersions})
		return
	}
	switch {
	case isToken:
		h.serveToken(w, r)
	case path == "/metadata/instance" || strings.HasPrefix(path, "/metadata/instance/"):
		h.serveInstance(w, r, ver, strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/metadata/instance"), "/"))
	default:
		imdsJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
	}
}

// IMDSToken is IMDS's success body; every value is a string.
type IMDSToken struct {
	AccessToken  string `json:"access_token"`
	ClientID     string `json:"client_id"`
	ExpiresIn    string `json:"expires_in"`
	ExpiresOn    string `json:"expires_on"`
	ExtExpiresIn string `json:"ext_expires_in"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	TokenType    string `json:"token_type"`
}

func (h *imdsHandler) serveToken(w http.ResponseWriter, r *http.Request) {
	release, ok := h.s.imds.acquire(h.t.instanceID, h.s.now())
	if !ok {
		w.Header().Set("Retry-After", "1")
		imdsTokenError(w, &IMDSError{http.StatusTooManyRequests, "too_many_requests", "Too many requests. Retry after some time."})
		return
	}
	defer release()
	q := r.URL.Query()
	sel := IdentitySelector{ClientID: q.Get("client_id"), ObjectID: q.Get("object_id"), ResourceID: q.Get("msi_res_id")}
	if v := q.Get("mi_res_id"); v != "" {
		sel.ResourceID = v
	}
	tok, err := h.token(r.Context(), sel, q.Get("resource"), strings.EqualFold(q.Get("bypass_cache"), "true"))
	if err != nil {
		ie, ok := err.(*IMDSError) //nolint:errorlint // token returns *IMDSError directly.
		if !ok {
			ie = &IMDSError{http.StatusInternalServerError, "unknown", "Internal error"}
		}
		imdsTokenError(w, ie)
		return
	}
	imdsJSON(w, http.StatusOK, tok)
}

// IdentitySelector picks one identity on a VM or scale set; at most one
// field is set (none = the default identity).
type IdentitySelector struct {
	ClientID, ObjectID, ResourceID string
}

// token returns a (possibly cached) managed-identity token.
func (h *imdsHandler) token(ctx context.Context, sel IdentitySelector, resource string, bypass bool) (*IMDSToken, error) {
	if resource == "" {
		return nil, &IMDSError{http.StatusBadRequest, "invalid_request", "Required audience parameter not specified"}
	}
	mi, err := h.s.selectIdentity(ctx, h.t.computeID, sel)
	if err != nil {
		return nil, err
	}
	now := h.s.now()
	ck := mi.PrincipalID + "|" + resource
	h.mu.Lock()
	c := h.cache[ck]
	h.mu.Unlock()
	if c == nil || bypass || now.Sub(c.issued) >= time.Hour || c.exp.Sub(now) < 5*time.Minute {
		claims := oidc.NewManagedIdentityToken(mi, resource, now)
		t, err := h.s.keys.Sign(claims)
		if err != nil {
			return nil, &IMDSError{http.StatusInternalServerError, "unknown", "Failed to sign token"}
		}
		c = &cachedToken{token: t, issued: now, exp: claims.Expiry()}
		h.mu.Lock()
		h.cache[ck] = c
		h.mu.Unlock()
	}
	return &IMDSToken{
		AccessToken:  c.token,
		ClientID:     mi.ClientID,
		ExpiresIn:    strconv.FormatInt(int64(c.exp.Sub(now)/time.Second), 10),
		ExpiresOn:    strconv.FormatInt(c.exp.Unix(), 10),
		ExtExpiresIn: strconv.FormatInt(int64(oidc.ManagedIdentityExtLifetime/time.Second), 10),
		NotBefore:    strconv.FormatInt(c.issued.Unix(), 10),
		Resource:     resource,
		TokenType:    "Bearer",
	}, nil
}

// selectIdentity resolves sel against the identities assigned to compute
// (a VM or scale set), as IMDS does. Errors are *IMDSError.
func (s *Server) selectIdentity(_ context.Context, computeID string, sel IdentitySelector) (oidc.ManagedIdentity, error) {
	n := 0
	for _, v := range []string{sel.ClientID, sel.ObjectID, sel.ResourceID} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return oidc.ManagedIdentity{}, &IMDSError{http.StatusBadRequest, "invalid_request", "Only one of client_id, object_id or msi_res_id may be specified"}
	}
	notFound := &IMDSError{http.StatusBadRequest, "invalid_request", "Identity not found"}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	c, ok := s.st.computes[key(computeID)]
	if !ok {
		return oidc.ManagedIdentity{}, notFound
	}
	sb := s.st.subs[key(c.SubscriptionID)]
	var users []*Identity
	for _, id := range c.UserAssigned {
		if ident, ok := s.st.identities[key(id)]; ok {
			users = append(users, ident)
		}
	}
	user := func(i *Identity) oidc.ManagedIdentity {
		return oidc.ManagedIdentity{TenantID: i.TenantID, ClientID: i.ClientID, PrincipalID: i.PrincipalID, ResourceID: xmsID(i.ID), ComputeID: xmsID(c.ID)}
	}
	system := func() oidc.ManagedIdentity {
		return oidc.ManagedIdentity{TenantID: sb.TenantID, ClientID: c.SystemClientID, PrincipalID: c.SystemPrincipalID, ResourceID: xmsID(c.ID)}
	}
	switch {
	case n == 0 && c.SystemPrincipalID != "":
		return system(), nil
	case n == 0 && len(users) == 1:
		return user(users[0]), nil
	case n == 0 && len(users) > 1:
		return oidc.ManagedIdentity{}, &IMDSError{http.StatusBadRequest, "invalid_request", "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"}
	case n == 0:
		return oidc.ManagedIdentity{}, notFound
	}
	if c.SystemPrincipalID != "" && (strings.EqualFold(sel.ClientID, c.SystemClientID) || strings.EqualFold(sel.ObjectID, c.SystemPrincipalID)) {
		return system(), nil
	}
	for _, i := range users {
		if strings.EqualFold(sel.ClientID, i.ClientID) || strings.EqualFold(sel.ObjectID, i.PrincipalID) || key(sel.ResourceID) == key(i.ID) {
			return user(i), nil
		}
	}
	return oidc.ManagedIdentity{}, notFound
}

// xmsID renders an ARM ID the way xms_mirid/xms_az_rid carry it
// ("resourcegroups" lower-cased).
func xmsID(id string) string {
	r, err := parseResourceID(id, false)
	if err != nil || r.Group == "" {
		return id
	}
	gid := groupID(r.Sub, r.Group)
	if len(id) < len(gid) || !strings.EqualFold(id[:len(gid)], gid) {
		return id
	}
	return "/subscriptions/" + r.Sub + "/resourcegroups/" + r.Group + id[len(gid):]
}

// serveInstance answers /metadata/instance[/path] with version-gated
// compute fields (vmScaleSetName and zone are always present: the tutorial
// reads vmScaleSetName with 2017-08-01).
func (h *imdsHandler) serveInstance(w http.ResponseWriter, r *http.Request, ver, sub string) {
	doc, err := h.instanceDoc(r.Context(), ver)
	if err != nil {
		imdsJSON(w, http.StatusInternalServerError, map[string]string{"error": "Internal error"})
		return
	}
	var node any = doc
	if sub != "" {
		for _, seg := range strings.Split(sub, "/") {
			switch cur := node.(type) {
			case map[string]any:
				v, ok := cur[seg]
				if !ok {
					imdsJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
					return
				}
				node = v
			case []any:
				i, err := strconv.Atoi(seg)
				if err != nil || i < 0 || i >= len(cur) {
					imdsJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
					return
				}
				node = cur[i]
			default:
				imdsJSON(w, http.StatusNotFound, map[string]string{"error": "Not found"})
				return
			}
		}
	}
	format := r.URL.Query().Get("format")
	if str, leaf := node.(string); leaf {
		if format != "text" {
			imdsJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad request. Leaf nodes only support text format. For more information refer to aka.ms/azureimds"})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Server", "IMDS/150.870.65.1544")
		_, _ = w.Write([]byte(str))
		return
	}
	if format != "" && format != "json" {
		imdsJSON(w, http.StatusBadRequest, map[string]string{"error": "Bad request. Invalid format. For more information refer to aka.ms/azureimds"})
		return
	}
	imdsJSON(w, http.StatusOK, node)
}

// instanceDoc builds the instance metadata document for api-version ver.
func (h *imdsHandler) instanceDoc(ctx context.Context, ver string) (map[string]any, error) {
	c, err := h.s.Compute(ctx, h.t.computeID)
	if err != nil {
		return nil, err
	}
	name, vmID, ssName := c.Name, c.UniqueID, ""
	if h.t.instance != nil {
		name, vmID, ssName = h.t.instance.Name, h.t.instance.VMID, c.Name
	}
	compute := map[string]any{
		"location": c.Location, "name": name, "offer": "UbuntuServer", "osType": "Linux",
		"platformFaultDomain": "0", "platformUpdateDomain": "0", "publisher": "Canonical",
		"sku": "18.04-LTS", "version": "18.04.202106220", "vmId": vmID, "vmSize": c.VMSize,
		"vmScaleSetName": ssName, "zone": "",
	}
	gate := func(since string, kv map[string]any) {
		if ver >= since {
			for k, v := range kv {
				compute[k] = v
			}
		}
	}
	gate("2017-08-01", map[string]any{"placementGroupId": "", "resourceGroupName": c.ResourceGroup, "subscriptionId": c.SubscriptionID, "tags": tagsString(c.Tags)})
	gate("2018-10-01", map[string]any{"azEnvironment": "AzurePublicCloud", "provider": "Microsoft.Compute"})
	gate("2019-03-11", map[string]any{"resourceId": h.t.instanceID})
	if ver >= "2019-06-04" {
		tl := []any{}
		for k, v := range c.Tags {
			tl = append(tl, map[string]any{"name": k, "value": v})
		}
		compute["tagsList"] = tl
	}
	network := map[string]any{"interface": []any{map[string]any{
		"ipv4": map[string]any{
			"ipAddress": []any{map[string]any{"privateIpAddress": "10.240.0.4", "publicIpAddress": ""}},
			"subnet":    []any{map[string]any{"address": "10.240.0.0", "prefix": "16"}},
		},
		"ipv6":       map[string]any{"ipAddress": []any{}},
		"macAddress": "000D3A36DDED",
	}}}
	// round-trip to plain JSON types so path navigation sees []any/map[string]any
	b, err := json.Marshal(map[string]any{"compute": compute, "network": network})
	if err != nil {
		return nil, err
	}
	var out map[string]any
	return out, json.Unmarshal(b, &out)
}

func tagsString(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + tags[k]
	}
	return strings.Join(parts, ";")
}

// imdsLimiter enforces IMDS's identity limits per instance: a token bucket
// (rate per second, burst = rate) and a concurrency cap.
type imdsLimiter struct {
	rate    float64
	maxConc int
	mu      sync.Mutex
	buckets map[string]*bucket // guarded by mu
}

type bucket struct {
	tokens   float64
	last     time.Time
	inFlight int
}

func newIMDSLimiter(rate float64, maxConc int) *imdsLimiter {
	if rate == 0 {
		rate = 20
	}
	if maxConc == 0 {
		maxConc = 5
	}
	return &imdsLimiter{rate: rate, maxConc: maxConc, buckets: map[string]*bucket{}}
}

// acquire takes a token and a concurrency slot for instance; ok is false
// when either limit is exceeded.
func (l *imdsLimiter) acquire(instance string, now time.Time) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[instance]
	if !found {
		b = &bucket{tokens: l.rate, last: now}
		l.buckets[instance] = b
	}
	if l.rate > 0 {
		if el := now.Sub(b.last).Seconds(); el > 0 {
			b.tokens = min(l.rate, b.tokens+el*l.rate)
		}
		b.last = now
		if b.tokens < 1 {
			return nil, false
		}
	}
	if l.maxConc > 0 && b.inFlight >= l.maxConc {
		return nil, false
	}
	if l.rate > 0 {
		b.tokens--
	}
	b.inFlight++
	return func() {
		l.mu.Lock()
		b.inFlight--
		l.mu.Unlock()
	}, true
}

// IssueManagedIdentityToken mints a token for the user-assigned identity
// identityID and resource, as IMDS on computeID would. computeID "" picks
// the first VM or scale set (by ID) the identity is assigned to, if any.
func (s *Server) IssueManagedIdentityToken(ctx context.Context, identityID, computeID, resource string) (string, error) {
	ident, err := s.Identity(ctx, identityID)
	if err != nil {
		return "", err
	}
	if computeID == "" {
		s.st.mu.RLock()
		var ids []string
		for _, c := range s.st.computes {
			for _, a := range c.UserAssigned {
				if key(a) == key(ident.ID) {
					ids = append(ids, c.ID)
				}
			}
		}
		s.st.mu.RUnlock()
		slices.SortFunc(ids, func(a, b string) int { return strings.Compare(key(a), key(b)) })
		if len(ids) > 0 {
			computeID = ids[0]
		}
	}
	mi := oidc.ManagedIdentity{TenantID: ident.TenantID, ClientID: ident.ClientID, PrincipalID: ident.PrincipalID, ResourceID: xmsID(ident.ID)}
	if computeID != "" {
		mi.ComputeID = xmsID(computeID)
	}
	return s.keys.Sign(oidc.NewManagedIdentityToken(mi, resource, s.now()))
}
