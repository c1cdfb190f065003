package cloud

import (
	"context"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Bootstrap is the declarative start state (`keyward cloud serve
// --bootstrap FILE`, YAML or JSON). Applying it is idempotent: existing
// objects are kept.
//
//	tenantId: 00000000-...            # default tenant (first start only)
//	subscriptionId: 11111111-...      # default subscription (first start only)
//	resourceGroups:
//	- name: MC_rg_cluster_eastus
//	  location: eastus
//	  identities: [{name: app-id}]
//	  scaleSets: [{name: aks-nodepool1-12345678-vmss, instances: 2, identities: [app-id]}]
//	  virtualMachines: [{name: vm1}]
//	roleAssignments:
//	- {identity: /subscriptions/.../userAssignedIdentities/app-id, role: Reader, scope: /subscriptions/...}
//	subscriptions:                    # more subscriptions, same shape
//	- {id: 2222..., tenantId: 3333..., name: other, resourceGroups: [...]}
type Bootstrap struct {
	TenantID         string                  `json:"tenantId,omitempty"`
	SubscriptionID   string                  `json:"subscriptionId,omitempty"`
	SubscriptionName string                  `json:"subscriptionName,omitempty"`
	ResourceGroups   []BootstrapGroup        `json:"resourceGroups,omitempty"`
	RoleAssignments  []BootstrapRole         `json:"roleAssignments,omitempty"`
	Subscriptions    []BootstrapSubscription `json:"subscriptions,omitempty"`
}

// BootstrapSubscription is an additional subscription (and tenant).
type BootstrapSubscription struct {
	ID             string           `json:"id"`
	TenantID       string           `json:"tenantId"`
	Name           string           `json:"name,omitempty"`
	ResourceGroups []BootstrapGroup `json:"resourceGroups,omitempty"`
}

// BootstrapGroup is a resource group and what it contains.
type BootstrapGroup struct {
	Name            string             `json:"name"`
	Location        string             `json:"location"`
	Identities      []BootstrapNamed   `json:"identities,omitempty"`
	ScaleSets       []BootstrapCompute `json:"scaleSets,omitempty"`
	VirtualMachines []BootstrapCompute `json:"virtualMachines,omitempty"`
}

// BootstrapNamed is an object with just a name.
type BootstrapNamed struct {
	Name string `json:"name"`
}

// BootstrapCompute is a VM or scale set. Identities are names of
// identities in the same group or full identity IDs.
type BootstrapCompute struct {
	Name           string   `json:"name"`
	Instances      int      `json:"instances,omitempty"`
	SystemAssigned bool     `json:"systemAssigned,omitempty"`
	Identities     []string `json:"identities,omitempty"`
}

// BootstrapRole is a role assignment to an identity (by ID) or a principal
// object ID.
type BootstrapRole struct {
	Identity    string `json:"identity,omitempty"`
	PrincipalID string `json:"principalId,omitempty"`
	Role        string `json:"role"`
	Scope       string `json:"scope"`
}

// ParseBootstrap parses a bootstrap document (YAML or JSON).
func ParseBootstrap(data []byte) (*Bootstrap, error) {
	var b Bootstrap
	if err := yaml.UnmarshalStrict(data, &b); err != nil {
		return nil, fmt.Errorf("cloud: bootstrap: %w", err)
	}
	return &b, nil
}

// ApplyBootstrap creates what b describes and is missing.
func (s *Server) ApplyBootstrap(ctx context.Context, b *Bootstrap) error {
	if err := s.applyGroups(ctx, s.sub, b.ResourceGroups); err != nil {
		return err
	}
	for _, sb := range b.Subscriptions {
		if !isGUID(sb.ID) || !isGUID(sb.TenantID) {
			return fmt.Errorf("cloud: bootstrap subscription %q: id and tenantId must be GUIDs", sb.ID)
		}
		name := sb.Name
		if name == "" {
			name = sb.ID
		}
		if err := s.ensureTenantSubscription(sb.TenantID, sb.ID, name); err != nil {
			return err
		}
		if err := s.applyGroups(ctx, sb.ID, sb.ResourceGroups); err != nil {
			return err
		}
	}
	for _, r := range b.RoleAssignments {
		pid := r.PrincipalID
		if r.Identity != "" {
			ident, err := s.Identity(ctx, r.Identity)
			if err != nil {
				return fmt.Errorf("cloud: bootstrap role assignment: %w", err)
			}
			pid = ident.PrincipalID
		}
		if _, _, err := s.CreateRoleAssignment(ctx, r.Scope, "", r.Role, pid, "ServicePrincipal", s.adminObject); err != nil && !isCode(err, "RoleAssignmentExists") {
			return fmt.Errorf("cloud: bootstrap role assignment: %w", err)
		}
	}
	return nil
}

func (s *Server) applyGroups(ctx context.Context, sub string, groups []BootstrapGroup) error {
	for _, g := range groups {
		if _, err := s.ResourceGroup(ctx, sub, g.Name); err != nil {
			if _, _, err := s.CreateResourceGroup(ctx, sub, g.Name, g.Location, nil); err != nil {
				return fmt.Errorf("cloud: bootstrap group %s: %w", g.Name, err)
			}
		}
		for _, i := range g.Identities {
			if _, err := s.Identity(ctx, resourcePath(sub, g.Name, "Microsoft.ManagedIdentity", "userAssignedIdentities", i.Name)); err == nil {
				continue
			}
			if _, _, err := s.PutIdentity(ctx, sub, g.Name, i.Name, g.Location, nil); err != nil {
				return fmt.Errorf("cloud: bootstrap identity %s: %w", i.Name, err)
			}
		}
		for kind, list := range map[string][]BootstrapCompute{KindVMSS: g.ScaleSets, KindVM: g.VirtualMachines} {
			for _, c := range list {
				comp, _, err := s.CreateCompute(ctx, kind, sub, g.Name, c.Name, g.Location, c.Instances)
				if err != nil {
					return fmt.Errorf("cloud: bootstrap %s %s: %w", kind, c.Name, err)
				}
				if len(c.Identities) == 0 && !c.SystemAssigned {
					continue
				}
				u := IdentityUpdate{Delta: true, UserAssigned: map[string]bool{}}
				for _, id := range c.Identities {
					if id != "" && id[0] != '/' {
						id = resourcePath(sub, g.Name, "Microsoft.ManagedIdentity", "userAssignedIdentities", id)
					}
					u.UserAssigned[id] = true
				}
				if c.SystemAssigned || comp.SystemPrincipalID != "" {
					u.Type = "SystemAssigned"
					if len(u.UserAssigned) > 0 || len(comp.UserAssigned) > 0 {
						u.Type = "SystemAssigned, UserAssigned"
					}
				}
				if _, err := s.UpdateComputeIdentity(ctx, comp.ID, u, nil); err != nil {
					return fmt.Errorf("cloud: bootstrap %s identities: %w", c.Name, err)
				}
			}
		}
	}
	return nil
}
