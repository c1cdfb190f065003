package cloud

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// state is the in-memory copy of everything in the store. Maps are keyed by
// key(ID) (lower case). Writers hold mu and write through to the store.
type state struct {
	mu          sync.RWMutex
	tenants     map[string]*Tenant              // guarded by mu
	subs        map[string]*Subscription        // guarded by mu
	groups      map[string]*ResourceGroup       // guarded by mu
	identities  map[string]*Identity            // guarded by mu
	fics        map[string]*FederatedCredential // guarded by mu
	computes    map[string]*Compute             // guarded by mu
	principals  map[string]*Principal           // guarded by mu; key lower object ID
	byApp       map[string]*Principal           // guarded by mu; key lower app ID
	assignments map[string]*RoleAssignment      // guarded by mu
}

func newState() *state {
	return &state{
		tenants: map[string]*Tenant{}, subs: map[string]*Subscription{}, groups: map[string]*ResourceGroup{},
		identities: map[string]*Identity{}, fics: map[string]*FederatedCredential{}, computes: map[string]*Compute{},
		principals: map[string]*Principal{}, byApp: map[string]*Principal{}, assignments: map[string]*RoleAssignment{},
	}
}

// load fills st from the store.
func (st *state) load(s *store) error {
	steps := []error{
		loadAll(s, bucketTenants, func(t *Tenant) { st.tenants[key(t.ID)] = t }),
		loadAll(s, bucketSubs, func(t *Subscription) { st.subs[key(t.ID)] = t }),
		loadAll(s, bucketGroups, func(t *ResourceGroup) { st.groups[key(t.ID)] = t }),
		loadAll(s, bucketIdentities, func(t *Identity) { st.identities[key(t.ID)] = t }),
		loadAll(s, bucketFICs, func(t *FederatedCredential) { st.fics[key(t.ID)] = t }),
		loadAll(s, bucketComputes, func(t *Compute) { st.computes[key(t.ID)] = t }),
		loadAll(s, bucketPrincipals, func(t *Principal) { st.principals[key(t.ObjectID)] = t; st.byApp[key(t.AppID)] = t }),
		loadAll(s, bucketAssignments, func(t *RoleAssignment) { st.assignments[key(t.ID)] = t }),
	}
	for _, err := range steps {
		if err != nil {
			return err
		}
	}
	return nil
}

// hashSecret returns the stored form of a client secret.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// newSecret returns a random client secret in Entra's style (40 chars).
func newSecret() string {
	b := make([]byte, 30)
	_, _ = rand.Read(b)
	return strings.NewReplacer("-", "~", "_", ".").Replace(base64.RawURLEncoding.EncodeToString(b))
}

// checkSecret reports whether secret matches one of p's secrets, in
// constant time per candidate.
func (p *Principal) checkSecret(secret string) bool {
	h := hashSecret(secret)
	ok := 0
	for _, s := range p.SecretHashes {
		ok |= subtle.ConstantTimeCompare(s, h)
	}
	return ok == 1
}

// ---- lookups (callers hold at least a read lock) ----

func (s *Server) subscriptionLocked(sub string) (*Subscription, error) {
	if !isGUID(sub) {
		return nil, armErr(http.StatusBadRequest, "InvalidSubscriptionId", "The provided subscription identifier '%s' is malformed or invalid.", sub)
	}
	sb, ok := s.st.subs[key(sub)]
	if !ok {
		return nil, armErr(http.StatusNotFound, "SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
	}
	return sb, nil
}

func (s *Server) groupLocked(sub, group string) (*ResourceGroup, error) {
	if _, err := s.subscriptionLocked(sub); err != nil {
		return nil, err
	}
	g, ok := s.st.groups[key(groupID(sub, group))]
	if !ok {
		return nil, armErr(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", group)
	}
	return g, nil
}

func notFound(typ, name, group string) *ARMError {
	return armErr(http.StatusNotFound, "ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", typ, name, group)
}

// ---- tenants, subscriptions, principals ----

// ensureTenantSubscription creates tenant and subscription if missing.
func (s *Server) ensureTenantSubscription(tenant, sub, name string) error {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if _, ok := s.st.tenants[key(tenant)]; !ok {
		t := &Tenant{ID: tenant}
		if err := s.store.put(bucketTenants, key(tenant), t); err != nil {
			return err
		}
		s.st.tenants[key(tenant)] = t
	}
	if _, ok := s.st.subs[key(sub)]; !ok {
		sb := &Subscription{ID: sub, TenantID: tenant, DisplayName: name}
		if err := s.store.put(bucketSubs, key(sub), sb); err != nil {
			return err
		}
		s.st.subs[key(sub)] = sb
	}
	return nil
}

func (s *Server) putPrincipalLocked(p *Principal) error {
	if err := s.store.put(bucketPrincipals, key(p.ObjectID), p); err != nil {
		return err
	}
	s.st.principals[key(p.ObjectID)] = p
	s.st.byApp[key(p.AppID)] = p
	return nil
}

// CreateServicePrincipal registers an application service principal named
// name in tenant with a fresh client secret, which is returned once and
// stored only hashed.
func (s *Server) CreateServicePrincipal(_ context.Context, tenant, name string) (clientID, secret, objectID string, err error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if _, ok := s.st.tenants[key(tenant)]; !ok {
		return "", "", "", armErr(http.StatusNotFound, "TenantNotFound", "Tenant '%s' not found.", tenant)
	}
	secret = newSecret()
	p := &Principal{ObjectID: uuid.NewString(), AppID: uuid.NewString(), TenantID: tenant, DisplayName: name, Type: "Application", SecretHashes: [][]byte{hashSecret(secret)}}
	if err := s.putPrincipalLocked(p); err != nil {
		return "", "", "", err
	}
	return p.AppID, secret, p.ObjectID, nil
}

// AddClientSecret adds a new secret to the principal with app ID clientID.
func (s *Server) AddClientSecret(_ context.Context, clientID string) (string, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	p, ok := s.st.byApp[key(clientID)]
	if !ok || p.Type != "Application" {
		return "", armErr(http.StatusNotFound, "ResourceNotFound", "Application '%s' was not found.", clientID)
	}
	secret := newSecret()
	c := *p
	c.SecretHashes = append(slices.Clone(p.SecretHashes), hashSecret(secret))
	if err := s.putPrincipalLocked(&c); err != nil {
		return "", err
	}
	return secret, nil
}

// ---- resource groups ----

// CreateResourceGroup creates or updates a resource group; created reports
// whether it is new.
func (s *Server) CreateResourceGroup(_ context.Context, sub, name, location string, tags map[string]string) (*ResourceGroup, bool, error) {
	if err := validGroupName(name); err != nil {
		return nil, false, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if _, err := s.subscriptionLocked(sub); err != nil {
		return nil, false, err
	}
	k := key(groupID(sub, name))
	old, exists := s.st.groups[k]
	if location == "" {
		if !exists {
			return nil, false, armErr(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
		}
		location = old.Location
	}
	g := &ResourceGroup{ID: groupID(sub, name), Name: name, SubscriptionID: sub, Location: normLocation(location), Tags: tags}
	if exists {
		g.ID, g.Name = old.ID, old.Name
		if !strings.EqualFold(old.Location, g.Location) {
			return nil, false, armErr(http.StatusConflict, "InvalidResourceGroupLocation", "Invalid resource group location '%s'. The Resource group already exists in location '%s'.", g.Location, old.Location)
		}
	}
	if err := s.store.put(bucketGroups, k, g); err != nil {
		return nil, false, err
	}
	s.st.groups[k] = g
	return g, !exists, nil
}

func validGroupName(name string) error {
	if name == "" || len(name) > 90 || strings.HasSuffix(name, ".") {
		return armErr(http.StatusBadRequest, "InvalidResourceGroup", "The provided resource group name '%s' has these invalid characters: '.'. The name can be only be letters, digits, underscores, parentheses, hyphens and periods, and cannot end with a period.", name)
	}
	for _, r := range name {
		if !groupNameRune(r) {
			return armErr(http.StatusBadRequest, "InvalidResourceGroup", "The provided resource group name '%s' has these invalid characters: '%c'. The name can be only be letters, digits, underscores, parentheses, hyphens and periods, and cannot end with a period.", name, r)
		}
	}
	return nil
}

func alnum(r rune) bool { return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }

// groupNameRune reports whether r may appear in a resource group name.
func groupNameRune(r rune) bool {
	return alnum(r) || r > 127 || strings.ContainsRune("-_().", r)
}

// identityNameRune reports whether r may appear in an identity name.
func identityNameRune(r rune) bool { return alnum(r) || r == '-' || r == '_' }

func normLocation(l string) string { return strings.ToLower(strings.ReplaceAll(l, " ", "")) }

// ResourceGroup returns a resource group.
func (s *Server) ResourceGroup(_ context.Context, sub, name string) (*ResourceGroup, error) {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	return s.groupLocked(sub, name)
}

// DeleteResourceGroup deletes a resource group and every resource and role
// assignment in it.
func (s *Server) DeleteResourceGroup(_ context.Context, sub, name string) error {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	g, err := s.groupLocked(sub, name)
	if err != nil {
		return err
	}
	for k, v := range s.st.identities {
		if scopeContains(g.ID, v.ID) {
			if p, ok := s.st.principals[key(v.PrincipalID)]; ok {
				_ = s.store.del(bucketPrincipals, key(p.ObjectID))
				delete(s.st.principals, key(p.ObjectID))
				delete(s.st.byApp, key(p.AppID))
			}
			if err := s.store.del(bucketIdentities, k); err != nil {
				return err
			}
			delete(s.st.identities, k)
		}
	}
	for k, v := range s.st.fics {
		if scopeContains(g.ID, v.ID) {
			_ = s.store.del(bucketFICs, k)
			delete(s.st.fics, k)
		}
	}
	for k, v := range s.st.computes {
		if scopeContains(g.ID, v.ID) {
			_ = s.store.del(bucketComputes, k)
			delete(s.st.computes, k)
		}
	}
	for k, v := range s.st.assignments {
		if scopeContains(g.ID, v.Scope) {
			_ = s.store.del(bucketAssignments, k)
			delete(s.st.assignments, k)
		}
	}
	if err := s.store.del(bucketGroups, key(g.ID)); err != nil {
		return err
	}
	delete(s.st.groups, key(g.ID))
	return nil
}

// ---- user-assigned identities ----

// PutIdentity creates (or updates the tags of) a user-assigned identity and
// its service principal; created reports whether it is new.
func (s *Server) PutIdentity(_ context.Context, sub, group, name, location string, tags map[string]string) (*Identity, bool, error) {
	if err := validIdentityName(name); err != nil {
		return nil, false, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	g, err := s.groupLocked(sub, group)
	if err != nil {
		return nil, false, err
	}
	sb := s.st.subs[key(sub)]
	id := resourcePath(sub, g.Name, "Microsoft.ManagedIdentity", "userAssignedIdentities", name)
	if old, ok := s.st.identities[key(id)]; ok {
		c := *old
		c.Tags = tags
		if err := s.store.put(bucketIdentities, key(id), &c); err != nil {
			return nil, false, err
		}
		s.st.identities[key(id)] = &c
		return &c, false, nil
	}
	if location == "" {
		location = g.Location
	}
	// VMs and scale sets may still reference a deleted identity of this
	// name. The new identity was not assigned to them (nobody was checked
	// for assign/action on it), so drop those dangling references.
	for k, c := range s.st.computes {
		kept := slices.DeleteFunc(slices.Clone(c.UserAssigned), func(a string) bool { return key(a) == key(id) })
		if len(kept) == len(c.UserAssigned) {
			continue
		}
		cc := *c
		cc.UserAssigned = kept
		if err := s.store.put(bucketComputes, k, &cc); err != nil {
			return nil, false, err
		}
		s.st.computes[k] = &cc
	}
	ident := &Identity{ID: id, Name: name, SubscriptionID: sub, ResourceGroup: g.Name, Location: normLocation(location), Tags: tags,
		TenantID: sb.TenantID, ClientID: uuid.NewString(), PrincipalID: uuid.NewString(), Created: s.now()}
	p := &Principal{ObjectID: ident.PrincipalID, AppID: ident.ClientID, TenantID: sb.TenantID, DisplayName: name, Type: "ManagedIdentity", ResourceID: id}
	if err := s.putPrincipalLocked(p); err != nil {
		return nil, false, err
	}
	if err := s.store.put(bucketIdentities, key(id), ident); err != nil {
		return nil, false, err
	}
	s.st.identities[key(id)] = ident
	return ident, true, nil
}

func validIdentityName(name string) error {
	ok := len(name) >= 3 && len(name) <= 128
	for i, r := range name {
		if !identityNameRune(r) || (i == 0 && (r == '-' || r == '_')) {
			ok = false
		}
	}
	if !ok {
		return armErr(http.StatusBadRequest, "InvalidResourceName", "Resource name %s is invalid. The name can be between 3 and 128 characters long. It must start with a letter or number and can contain letters, numbers, hyphens and underscores.", name)
	}
	return nil
}

// Identity returns the user-assigned identity with ARM ID id.
func (s *Server) Identity(_ context.Context, id string) (*Identity, error) {
	r, err := parseResourceID(id, false)
	if err != nil || !r.is("Microsoft.ManagedIdentity", "userAssignedIdentities") || r.Group == "" {
		return nil, armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is not a valid user-assigned identity ID.", id)
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if _, err := s.groupLocked(r.Sub, r.Group); err != nil {
		return nil, err
	}
	ident, ok := s.st.identities[key(id)]
	if !ok {
		return nil, notFound("Microsoft.ManagedIdentity/userAssignedIdentities", r.Names[0], r.Group)
	}
	return ident, nil
}

// ListIdentities lists the identities of a subscription (group == "") or
// resource group, ordered by ID.
func (s *Server) ListIdentities(_ context.Context, sub, group string) ([]*Identity, error) {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	scope := "/subscriptions/" + sub
	if group != "" {
		g, err := s.groupLocked(sub, group)
		if err != nil {
			return nil, err
		}
		scope = g.ID
	} else if _, err := s.subscriptionLocked(sub); err != nil {
		return nil, err
	}
	var out []*Identity
	for _, v := range s.st.identities {
		if scopeContains(scope, v.ID) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *Identity) int { return strings.Compare(key(a.ID), key(b.ID)) })
	return out, nil
}

// DeleteIdentity deletes a user-assigned identity, its principal and its
// federated credentials. Assignments to VMs keep dangling references, as in
// Azure.
func (s *Server) DeleteIdentity(_ context.Context, id string) (bool, error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	ident, ok := s.st.identities[key(id)]
	if !ok {
		return false, nil
	}
	if p, ok := s.st.principals[key(ident.PrincipalID)]; ok {
		if err := s.store.del(bucketPrincipals, key(p.ObjectID)); err != nil {
			return false, err
		}
		delete(s.st.principals, key(p.ObjectID))
		delete(s.st.byApp, key(p.AppID))
	}
	for k, f := range s.st.fics {
		if key(f.IdentityID) == key(id) {
			_ = s.store.del(bucketFICs, k)
			delete(s.st.fics, k)
		}
	}
	if err := s.store.del(bucketIdentities, key(id)); err != nil {
		return false, err
	}
	delete(s.st.identities, key(id))
	return true, nil
}

// PutFederatedCredential creates or replaces a federated identity credential
// on the identity identityID.
func (s *Server) PutFederatedCredential(_ context.Context, identityID, name, issuer, subject string, audiences []string) (*FederatedCredential, bool, error) {
	if issuer == "" || !strings.HasPrefix(issuer, "https://") {
		return nil, false, armErr(http.StatusBadRequest, "BadRequest", "Issuer URL must use https scheme.")
	}
	if subject == "" {
		return nil, false, armErr(http.StatusBadRequest, "BadRequest", "Subject cannot be empty.")
	}
	if len(audiences) != 1 {
		return nil, false, armErr(http.StatusBadRequest, "BadRequest", "Audiences must contain exactly one value.")
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	ident, ok := s.st.identities[key(identityID)]
	if !ok {
		r, _ := parseResourceID(identityID, false)
		idName := ""
		if len(r.Names) > 0 {
			idName = r.Names[0]
		}
		return nil, false, notFound("Microsoft.ManagedIdentity/userAssignedIdentities", idName, r.Group)
	}
	id := ident.ID + "/federatedIdentityCredentials/" + name
	_, exists := s.st.fics[key(id)]
	if !exists {
		n := 0
		for _, f := range s.st.fics {
			if key(f.IdentityID) == key(ident.ID) {
				n++
			}
		}
		if n >= 20 {
			return nil, false, armErr(http.StatusBadRequest, "BadRequest", "Too many Federated Identity Credentials are associated with the identity. Max allowed: 20.")
		}
	}
	f := &FederatedCredential{ID: id, Name: name, IdentityID: ident.ID, Issuer: issuer, Subject: subject, Audiences: audiences}
	if err := s.store.put(bucketFICs, key(id), f); err != nil {
		return nil, false, err
	}
	s.st.fics[key(id)] = f
	return f, !exists, nil
}

// ---- compute ----

// CreateCompute creates a VM (kind KindVM) or a uniform scale set with
// instances VMs (kind KindVMSS). An existing resource is returned unchanged
// with created false.
func (s *Server) CreateCompute(_ context.Context, kind, sub, group, name, location string, instances int) (*Compute, bool, error) {
	if kind != KindVM && kind != KindVMSS {
		return nil, false, fmt.Errorf("cloud: unknown compute kind %q", kind)
	}
	if name == "" || len(name) > 64 || strings.ContainsAny(name, "/\\_ ") && kind == KindVMSS {
		return nil, false, armErr(http.StatusBadRequest, "InvalidParameter", "The value of parameter name is invalid.")
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	g, err := s.groupLocked(sub, group)
	if err != nil {
		return nil, false, err
	}
	id := resourcePath(sub, g.Name, "Microsoft.Compute", kind, name)
	if c, ok := s.st.computes[key(id)]; ok {
		return c, false, nil
	}
	if location == "" {
		location = g.Location
	}
	c := &Compute{ID: id, Kind: kind, Name: name, SubscriptionID: sub, ResourceGroup: g.Name, Location: normLocation(location),
		VMSize: "Standard_DS2_v2", UniqueID: uuid.NewString()}
	if kind == KindVMSS {
		for i := range instances {
			iid := strconv.Itoa(i)
			c.Instances = append(c.Instances, Instance{InstanceID: iid, Name: name + "_" + iid, ID: id + "/virtualMachines/" + iid, VMID: uuid.NewString()})
		}
	}
	if err := s.store.put(bucketComputes, key(id), c); err != nil {
		return nil, false, err
	}
	s.st.computes[key(id)] = c
	return c, true, nil
}

// Compute returns the VM or scale set with ARM ID id.
func (s *Server) Compute(_ context.Context, id string) (*Compute, error) {
	r, err := parseResourceID(id, false)
	if isCompute := r.is("Microsoft.Compute", KindVM) || r.is("Microsoft.Compute", KindVMSS); err != nil || r.Group == "" || !isCompute {
		return nil, armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is not a valid virtual machine or scale set ID.", id)
	}
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	if _, err := s.groupLocked(r.Sub, r.Group); err != nil {
		return nil, err
	}
	c, ok := s.st.computes[key(id)]
	if !ok {
		return nil, notFound("Microsoft.Compute/"+r.Types[0], r.Names[0], r.Group)
	}
	return c, nil
}

// IdentityUpdate is a change to the identity block of a VM or scale set.
// With Delta set (PATCH) UserAssigned holds only changes: a true value adds
// the identity, false removes it. Without Delta (PUT) UserAssigned is the
// complete new set (all values true).
type IdentityUpdate struct {
	// Type is the identity type ("None", "SystemAssigned", "UserAssigned",
	// "SystemAssigned, UserAssigned"); empty keeps the type implied by the
	// resulting identities.
	Type         string
	UserAssigned map[string]bool
	Delta        bool
}

// LinkedCheck authorizes the use of a user-assigned identity (by canonical
// ID) in an identity update; nil allows everything. It is called with the
// server's state lock held, so it must not call Server methods that lock
// (Authorized does; use authorizedLocked inside the package).
type LinkedCheck func(identityID string) error

// UpdateComputeIdentity applies u to the VM or scale set id. check is
// called for every identity being added (ARM's linked
// "userAssignedIdentities/assign/action" authorization).
func (s *Server) UpdateComputeIdentity(ctx context.Context, id string, u IdentityUpdate, check LinkedCheck) (*Compute, error) {
	if _, err := s.Compute(ctx, id); err != nil {
		return nil, err
	}
	sys, user, typeGiven, err := parseIdentityType(u.Type)
	if err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	cur, ok := s.st.computes[key(id)]
	if !ok {
		r, _ := parseResourceID(id, false)
		return nil, notFound("Microsoft.Compute/"+r.Types[0], r.Names[0], r.Group)
	}
	c := *cur
	c.UserAssigned = slices.Clone(cur.UserAssigned)
	set := map[string]string{} // key → canonical ID
	if u.Delta {
		for _, a := range c.UserAssigned {
			set[key(a)] = a
		}
	}
	var linkedFailures []string
	// deterministic order
	ids := make([]string, 0, len(u.UserAssigned))
	for k := range u.UserAssigned {
		ids = append(ids, k)
	}
	slices.Sort(ids)
	for _, raw := range ids {
		add := u.UserAssigned[raw]
		r, perr := parseResourceID(raw, false)
		if perr != nil || !r.is("Microsoft.ManagedIdentity", "userAssignedIdentities") || r.Group == "" {
			return nil, armErr(http.StatusBadRequest, "LinkedInvalidPropertyId", "Property id '%s' at path 'identity.userAssignedIdentities.%s' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.", raw, raw)
		}
		if !add {
			delete(set, key(raw))
			continue
		}
		ident, ok := s.st.identities[key(raw)]
		if !ok {
			inner := fmt.Sprintf(`{"error":{"code":"BadRequest","message":"Resource '%s' was not found."}}`, raw)
			return nil, armErr(http.StatusBadRequest, "FailedIdentityOperation", "Identity operation for resource '%s' failed with error 'Failed to perform resource identity operation. Status: 'BadRequest'. Response: '%s'.'.", c.ID, inner)
		}
		if _, already := set[key(raw)]; !already && check != nil {
			if err := check(ident.ID); err != nil {
				linkedFailures = append(linkedFailures, raw)
			}
		}
		set[key(raw)] = ident.ID
	}
	if len(linkedFailures) > 0 {
		return nil, &linkedAuthError{scope: c.ID, ids: linkedFailures}
	}
	if !typeGiven {
		sys = c.SystemPrincipalID != ""
		user = len(set) > 0
	}
	if !user {
		set = map[string]string{}
	} else if len(set) == 0 {
		return nil, armErr(http.StatusBadRequest, "MissingIdentityIds", "The identity ids must not be null or empty for 'UserAssigned' identity type.")
	}
	c.UserAssigned = c.UserAssigned[:0]
	for _, v := range set {
		c.UserAssigned = append(c.UserAssigned, v)
	}
	slices.SortFunc(c.UserAssigned, func(a, b string) int { return strings.Compare(key(a), key(b)) })
	switch {
	case sys && c.SystemPrincipalID == "":
		sb := s.st.subs[key(c.SubscriptionID)]
		p := &Principal{ObjectID: uuid.NewString(), AppID: uuid.NewString(), TenantID: sb.TenantID, DisplayName: c.Name, Type: "ManagedIdentity", ResourceID: c.ID}
		if err := s.putPrincipalLocked(p); err != nil {
			return nil, err
		}
		c.SystemPrincipalID, c.SystemClientID = p.ObjectID, p.AppID
	case !sys && c.SystemPrincipalID != "":
		if p, ok := s.st.principals[key(c.SystemPrincipalID)]; ok {
			_ = s.store.del(bucketPrincipals, key(p.ObjectID))
			delete(s.st.principals, key(p.ObjectID))
			delete(s.st.byApp, key(p.AppID))
		}
		c.SystemPrincipalID, c.SystemClientID = "", ""
	}
	if err := s.store.put(bucketComputes, key(c.ID), &c); err != nil {
		return nil, err
	}
	s.st.computes[key(c.ID)] = &c
	return &c, nil
}

// errLinked is what a LinkedCheck returns to deny.
var errLinked = errors.New("linked authorization failed")

// linkedAuthError is ARM's 403 LinkedAuthorizationFailed, built once the
// caller is known (see arm.go).
type linkedAuthError struct {
	scope string
	ids   []string
}

// Error implements error.
func (e *linkedAuthError) Error() string { return "linked authorization failed" }

// parseIdentityType parses an ARM identity type string.
func parseIdentityType(t string) (sys, user, given bool, err error) {
	if strings.TrimSpace(t) == "" {
		return false, false, false, nil
	}
	for _, part := range strings.Split(t, ",") {
		switch strings.ToLower(strings.TrimSpace(part)) {
		case "systemassigned":
			sys = true
		case "userassigned":
			user = true
		case "none":
		default:
			return false, false, false, armErr(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'identity.type' is invalid. Allowed values are 'None', 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned'.", t)
		}
	}
	return sys, user, true, nil
}

// identityTypeString renders the type of c's identity block ("" when none).
func identityTypeString(c *Compute) string {
	switch {
	case c.SystemPrincipalID != "" && len(c.UserAssigned) > 0:
		return "SystemAssigned, UserAssigned"
	case c.SystemPrincipalID != "":
		return "SystemAssigned"
	case len(c.UserAssigned) > 0:
		return "UserAssigned"
	}
	return ""
}
