package cloud

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// RoleDefinition is a built-in Azure role.
type RoleDefinition struct {
	// ID is the role's well-known GUID.
	ID          string
	Name        string
	Description string
	Actions     []string
	NotActions  []string
}

// Well-known IDs of the built-in roles this stand-in knows.
const (
	RoleOwner                      = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	RoleContributor                = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	RoleReader                     = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	RoleManagedIdentityOperator    = "f1a07417-d97a-45cb-824c-7a7467783830"
	RoleManagedIdentityContributor = "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59"
	RoleVirtualMachineContributor  = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
	roleAssignmentsProvider        = "/providers/Microsoft.Authorization/roleAssignments/"
	roleDefinitionsProvider        = "/providers/Microsoft.Authorization/roleDefinitions/"
)

// builtinRoles lists the built-in roles (permissions as Azure publishes
// them, trimmed to the namespaces that matter here).
var builtinRoles = []RoleDefinition{
	{ID: RoleOwner, Name: "Owner", Description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.", Actions: []string{"*"}},
	{ID: RoleContributor, Name: "Contributor", Description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		Actions: []string{"*"}, NotActions: []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete", "Microsoft.Resources/deploymentStacks/manageDenySetting/action", "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action"}},
	{ID: RoleReader, Name: "Reader", Description: "View all resources, but does not allow you to make any changes.", Actions: []string{"*/read"}},
	{ID: RoleManagedIdentityOperator, Name: "Managed Identity Operator", Description: "Read and Assign User Assigned Identity",
		Actions: []string{"Microsoft.ManagedIdentity/userAssignedIdentities/*/read", "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/deployments/*", "Microsoft.Support/*"}},
	{ID: RoleManagedIdentityContributor, Name: "Managed Identity Contributor", Description: "Create, Read, Update, and Delete User Assigned Identity",
		Actions: []string{"Microsoft.ManagedIdentity/userAssignedIdentities/read", "Microsoft.ManagedIdentity/userAssignedIdentities/write", "Microsoft.ManagedIdentity/userAssignedIdentities/delete", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write", "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete", "Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.Resources/deployments/*", "Microsoft.Support/*"}},
	{ID: RoleVirtualMachineContributor, Name: "Virtual Machine Contributor", Description: "Create and manage virtual machines, manage disks, install and run software, reset password of the root user of the virtual machine using VM extensions, and manage local user accounts using VM extensions. This role does not grant you management access to the virtual network or storage account the virtual machines are connected to nor access to the virtual machines directly. This role does not allow you to assign roles in Azure RBAC.",
		Actions: []string{"Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*", "Microsoft.Compute/locations/*", "Microsoft.Compute/virtualMachines/*", "Microsoft.Compute/virtualMachineScaleSets/*", "Microsoft.Compute/cloudServices/*", "Microsoft.Compute/disks/write", "Microsoft.Compute/disks/read", "Microsoft.Compute/disks/delete", "Microsoft.DevTestLab/schedules/*", "Microsoft.Insights/alertRules/*", "Microsoft.Network/applicationGateways/backendAddressPools/join/action", "Microsoft.Network/loadBalancers/backendAddressPools/join/action", "Microsoft.Network/loadBalancers/inboundNatPools/join/action", "Microsoft.Network/loadBalancers/inboundNatRules/join/action", "Microsoft.Network/loadBalancers/probes/join/action", "Microsoft.Network/loadBalancers/read", "Microsoft.Network/locations/*", "Microsoft.Network/networkInterfaces/*", "Microsoft.Network/networkSecurityGroups/join/action", "Microsoft.Network/networkSecurityGroups/read", "Microsoft.Network/publicIPAddresses/join/action", "Microsoft.Network/publicIPAddresses/read", "Microsoft.Network/virtualNetworks/read", "Microsoft.Network/virtualNetworks/subnets/join/action", "Microsoft.RecoveryServices/locations/*", "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.SerialConsole/serialPorts/connect/action", "Microsoft.SqlVirtualMachine/*", "Microsoft.Storage/storageAccounts/listKeys/action", "Microsoft.Storage/storageAccounts/read", "Microsoft.Support/*"}},
}

// RoleByName returns the built-in role named name (case-insensitive) or
// with GUID name.
func RoleByName(name string) (RoleDefinition, bool) {
	for _, r := range builtinRoles {
		if strings.EqualFold(r.Name, name) || strings.EqualFold(r.ID, name) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// roleDefinitionID is the ARM ID of role r at subscription sub.
func roleDefinitionID(sub, guid string) string {
	if sub == "" {
		return roleDefinitionsProvider[:len(roleDefinitionsProvider)-1] + "/" + guid
	}
	return "/subscriptions/" + sub + roleDefinitionsProvider + guid
}

// actionMatches reports whether action matches pattern: '*' matches any run
// of characters, and "/*/" also matches a single "/", case-insensitively.
func actionMatches(pattern, action string) bool {
	p, a := strings.ToLower(pattern), strings.ToLower(action)
	if glob(p, a) {
		return true
	}
	return strings.Contains(p, "/*/") && glob(strings.ReplaceAll(p, "/*/", "/"), a)
}

func glob(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

func (r RoleDefinition) allows(action string) bool {
	ok := false
	for _, a := range r.Actions {
		if actionMatches(a, action) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, n := range r.NotActions {
		if actionMatches(n, action) {
			return false
		}
	}
	return true
}

// Authorized reports whether principal holds a role assignment at scope or
// an ancestor of it whose role allows action.
func (s *Server) Authorized(principalID, action, scope string) bool {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	return s.authorizedLocked(principalID, action, scope)
}

func (s *Server) authorizedLocked(principalID, action, scope string) bool {
	for _, a := range s.st.assignments {
		if !strings.EqualFold(a.PrincipalID, principalID) || !scopeContains(a.Scope, scope) {
			continue
		}
		r, ok := RoleByName(lastSegment(a.RoleDefinitionID))
		if ok && r.allows(action) {
			return true
		}
	}
	return false
}

// hasAnyAssignmentUnder reports whether principal has any assignment whose
// scope is within or above scope (used to filter subscription lists).
func (s *Server) hasAnyAssignmentUnder(principalID, scope string) bool {
	for _, a := range s.st.assignments {
		if strings.EqualFold(a.PrincipalID, principalID) && (scopeContains(a.Scope, scope) || scopeContains(scope, a.Scope)) {
			return true
		}
	}
	return false
}

func lastSegment(id string) string {
	id = strings.TrimRight(id, "/")
	return id[strings.LastIndex(id, "/")+1:]
}

// CreateRoleAssignment creates the role assignment {scope}/providers/
// Microsoft.Authorization/roleAssignments/{name} (name "" = new GUID) of
// role (GUID, role definition ID, or role name) to principalID.
func (s *Server) CreateRoleAssignment(_ context.Context, scope, name, role, principalID, principalType, createdBy string) (*RoleAssignment, bool, error) {
	if name == "" {
		name = uuid.NewString()
	}
	if !isGUID(name) {
		return nil, false, armErr(http.StatusBadRequest, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)
	}
	if err := s.validScope(scope); err != nil {
		return nil, false, err
	}
	rd, ok := RoleByName(lastSegment(role))
	if !ok {
		return nil, false, armErr(http.StatusBadRequest, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", lastSegment(role))
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	p, ok := s.st.principals[key(principalID)]
	if !ok {
		tenant := ""
		if r, err := parseResourceID(scope, true); err == nil {
			if sb, ok := s.st.subs[key(r.Sub)]; ok {
				tenant = sb.TenantID
			}
		}
		return nil, false, armErr(http.StatusBadRequest, "PrincipalNotFound", "Principal %s does not exist in the directory %s. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype", strings.ReplaceAll(principalID, "-", ""), tenant)
	}
	scope = s.canonicalScopeLocked(scope)
	id := strings.TrimRight(scope, "/") + roleAssignmentsProvider + name
	if old, ok := s.st.assignments[key(id)]; ok {
		if strings.EqualFold(old.PrincipalID, p.ObjectID) && strings.EqualFold(lastSegment(old.RoleDefinitionID), rd.ID) {
			return old, false, nil
		}
		return nil, false, armErr(http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	for _, a := range s.st.assignments {
		if key(a.Scope) == key(scope) && strings.EqualFold(a.PrincipalID, p.ObjectID) && strings.EqualFold(lastSegment(a.RoleDefinitionID), rd.ID) {
			return nil, false, armErr(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists.")
		}
	}
	if principalType == "" {
		principalType = "ServicePrincipal"
	}
	sub := ""
	if r, err := parseResourceID(scope, true); err == nil {
		sub = r.Sub
	}
	a := &RoleAssignment{ID: id, Name: name, Scope: scope, RoleDefinitionID: roleDefinitionID(sub, rd.ID), PrincipalID: p.ObjectID, PrincipalType: principalType, CreatedBy: createdBy, Created: s.now()}
	if err := s.store.put(bucketAssignments, key(id), a); err != nil {
		return nil, false, err
	}
	s.st.assignments[key(id)] = a
	return a, true, nil
}

// validScope checks that scope is "/" or a subscription, group or resource ID.
func (s *Server) validScope(scope string) error {
	if scope == "/" || scope == "" {
		return nil
	}
	if _, err := parseResourceID(scope, false); err != nil {
		return armErr(http.StatusBadRequest, "InvalidRoleAssignmentScope", "The scope '%s' is not valid. The scope must be a subscription, resource group, or resource ID.", scope)
	}
	return nil
}

// canonicalScopeLocked returns the stored casing of scope when it names a
// known subscription, group or resource.
func (s *Server) canonicalScopeLocked(scope string) string {
	k := key(scope)
	if g, ok := s.st.groups[k]; ok {
		return g.ID
	}
	if i, ok := s.st.identities[k]; ok {
		return i.ID
	}
	if c, ok := s.st.computes[k]; ok {
		return c.ID
	}
	if sb, ok := s.st.subs[strings.TrimPrefix(k, "/subscriptions/")]; ok && strings.Count(k, "/") == 2 {
		return "/subscriptions/" + sb.ID
	}
	return strings.TrimRight(scope, "/")
}

// RoleAssignment returns the assignment with full ID id.
func (s *Server) RoleAssignment(_ context.Context, id string) (*RoleAssignment, error) {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	a, ok := s.st.assignments[key(id)]
	if !ok {
		return nil, armErr(http.StatusNotFound, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", lastSegment(id))
	}
	return a, nil
}

// DeleteRoleAssignment deletes the assignment with full ID id; found
// reports whether it existed (a is nil when not).
func (s *Server) DeleteRoleAssignment(_ context.Context, id string) (a *RoleAssignment, found bool, err error) {
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	a, ok := s.st.assignments[key(id)]
	if !ok {
		return nil, false, nil
	}
	if err := s.store.del(bucketAssignments, key(id)); err != nil {
		return nil, false, err
	}
	delete(s.st.assignments, key(id))
	return a, true, nil
}

// ListRoleAssignments returns assignments that apply at scope (at it or
// above it) and, unless atScopeOnly, those below it; principal filters when
// non-empty.
func (s *Server) ListRoleAssignments(_ context.Context, scope, principal string, atScopeOnly bool) []*RoleAssignment {
	s.st.mu.RLock()
	defer s.st.mu.RUnlock()
	var out []*RoleAssignment
	for _, a := range s.st.assignments {
		if principal != "" && !strings.EqualFold(principal, a.PrincipalID) {
			continue
		}
		above := scopeContains(a.Scope, scope)
		below := scopeContains(scope, a.Scope)
		if above || (!atScopeOnly && below) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(x, y *RoleAssignment) int { return strings.Compare(key(x.ID), key(y.ID)) })
	return out
}
