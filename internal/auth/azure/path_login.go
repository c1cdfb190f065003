package azure

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Login field formats (plugin ≥ v0.19.2). They are enforced in both compat
// modes: the tutorial's values pass, and they keep odd input out of ARM
// request paths.
var (
	guidRe          = regexp.MustCompile(`^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$`)
	resourceGroupRe = regexp.MustCompile(`^[\-_.()\pL\pN]*[\-_()\pL\pN]$`)
	vmNameRe        = regexp.MustCompile(`^[a-zA-Z]$|^[a-zA-Z][a-zA-Z0-9.\-_]*[a-zA-Z0-9_]$`)
)

func (b *backend) pathLogin() *framework.Path {
	return &framework.Path{
		Pattern: "login",
		Fields: map[string]*framework.FieldSchema{
			"role":                {Type: framework.TypeString, Description: "Name of the role to log in with."},
			"jwt":                 {Type: framework.TypeString, Description: "Access token of the managed identity, from IMDS."},
			"subscription_id":     {Type: framework.TypeString, Description: "Subscription of the VM/VMSS."},
			"resource_group_name": {Type: framework.TypeString, Description: "Resource group of the VM/VMSS."},
			"vm_name":             {Type: framework.TypeString, Description: "VM name; ignored if vmss_name is specified."},
			"vmss_name":           {Type: framework.TypeString, Description: "Virtual machine scale set name."},
			"resource_id":         {Type: framework.TypeString, Description: "ARM resource ID; ignored if vm_name or vmss_name is specified."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: b.login,
			logical.RenewOperation:  b.renew,
		},
		HelpSynopsis: "Authenticates an Azure managed identity.",
	}
}

// loginInput are the login's resource fields.
type loginInput struct {
	subscriptionID string
	resourceGroup  string
	vmName         string
	vmssName       string
	resourceID     string
}

func (b *backend) login(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	raw := d.String("jwt")
	if raw == "" {
		return nil, logical.BadRequest("jwt is required")
	}
	roleName := d.String("role")
	if roleName == "" {
		return nil, logical.BadRequest("role is required")
	}
	r, found, err := loadRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, logical.BadRequest("invalid role name %q", roleName)
	}
	if len(r.TokenBoundCIDRs) > 0 {
		if req.Connection == nil || !cidrsAllow(r.TokenBoundCIDRs, req.Connection.RemoteAddr) {
			return nil, logical.ErrPermissionDenied
		}
	}
	in := loginInput{
		subscriptionID: d.String("subscription_id"),
		resourceGroup:  d.String("resource_group_name"),
		vmName:         d.String("vm_name"),
		vmssName:       d.String("vmss_name"),
		resourceID:     d.String("resource_id"),
	}
	if verr := in.validate(); verr != nil {
		return nil, verr
	}

	p, err := b.provider(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	claims, err := p.verifier.verify(ctx, raw)
	if err != nil {
		b.logger.Info("azure login refused", "role", roleName, "error", err)
		return nil, err
	}
	if err := verifyRole(p.settings.strict, claims, r); err != nil {
		b.logger.Info("azure login refused", "role", roleName, "oid", claims.ObjectID, "error", err)
		return nil, err
	}
	if r.hasResourceBounds() {
		if err := verifyResource(ctx, p, claims, r, &in); err != nil {
			b.logger.Info("azure login refused", "role", roleName, "oid", claims.ObjectID, "error", err)
			return nil, err
		}
	}
	return &logical.Response{Auth: newAuth(roleName, r, claims, &in)}, nil
}

func (in *loginInput) validate() error {
	if in.subscriptionID != "" && !guidRe.MatchString(in.subscriptionID) {
		return logical.BadRequest("invalid subscription id %q", in.subscriptionID)
	}
	if in.resourceGroup != "" && !resourceGroupRe.MatchString(in.resourceGroup) {
		return logical.BadRequest("invalid resource group name %q", in.resourceGroup)
	}
	if in.vmssName != "" && !vmNameRe.MatchString(in.vmssName) {
		return logical.BadRequest("invalid vmss_name %q", in.vmssName)
	}
	if in.vmName != "" && !vmNameRe.MatchString(in.vmName) {
		return logical.BadRequest("invalid vm name %q", in.vmName)
	}
	if in.resourceID != "" && !validResourceID(in.resourceID) {
		return logical.BadRequest("invalid resource id %q", in.resourceID)
	}
	return nil
}

// validResourceID rejects resource IDs that could name another resource
// once a server normalises the path: dot segments, empty segments, escapes.
func validResourceID(id string) bool {
	if !strings.HasPrefix(id, "/subscriptions/") || strings.ContainsAny(id, "?#%\\") {
		return false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(id[1:], "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// newAuth builds the login result from the role's token settings.
func newAuth(roleName string, r *role, c *tokenClaims, in *loginInput) *logical.Auth {
	alias := map[string]string{
		"resource_group_name": in.resourceGroup,
		"subscription_id":     in.subscriptionID,
	}
	for k, v := range map[string]string{"vm_name": in.vmName, "vmss_name": in.vmssName, "resource_id": in.resourceID} {
		if v != "" {
			alias[k] = v
		}
	}
	meta := make(map[string]string, len(alias)+1)
	for k, v := range alias {
		meta[k] = v
	}
	meta["role"] = roleName
	return &logical.Auth{
		LeaseOptions: logical.LeaseOptions{
			TTL:       r.TokenTTL,
			MaxTTL:    r.TokenMaxTTL,
			Renewable: true,
		},
		DisplayName:     c.ObjectID,
		Policies:        slices.Clone(r.TokenPolicies),
		NoDefaultPolicy: r.TokenNoDefaultPolicy,
		Metadata:        meta,
		InternalData:    map[string]any{"role": roleName},
		ExplicitMaxTTL:  r.TokenExplicitMaxTTL,
		Period:          r.TokenPeriod,
		NumUses:         r.TokenNumUses,
		BoundCIDRs:      slices.Clone(r.TokenBoundCIDRs),
		TokenType:       authTokenType(r.TokenType),
		Alias:           &logical.Alias{Name: c.ObjectID, Metadata: alias},
	}
}

// authTokenType maps a role's token_type to logical.Auth.TokenType ("" =
// the server's default, service).
func authTokenType(t string) string {
	switch t {
	case "service", "default-service":
		return "service"
	case "batch", "default-batch":
		return "batch"
	default:
		return ""
	}
}

// wildcard reports whether a bound list is exactly ["*"].
func wildcard(l []string) bool { return len(l) == 1 && l[0] == "*" }

// unspecific reports whether a bound list binds nothing (empty or "*").
func unspecific(l []string) bool { return len(l) == 0 || wildcard(l) }

// verifyRole checks the service principal and group bindings.
func verifyRole(strict bool, c *tokenClaims, r *role) error {
	if strict && unspecific(r.BoundServicePrincipalIDs) && unspecific(r.BoundGroupIDs) {
		return fail(ErrNotAuthorized, nil, "expected specific bound_group_ids or bound_service_principal_ids; both cannot be empty or '*'")
	}
	if !unspecific(r.BoundServicePrincipalIDs) {
		if !containsFold(r.BoundServicePrincipalIDs, c.ObjectID) {
			return fail(ErrNotAuthorized, nil, "service principal not authorized: %s", c.ObjectID)
		}
	}
	if !unspecific(r.BoundGroupIDs) {
		ok := false
		for _, g := range c.Groups {
			if containsFold(r.BoundGroupIDs, g) {
				ok = true
				break
			}
		}
		if !ok {
			return fail(ErrNotAuthorized, nil, "groups not authorized: %v", c.Groups)
		}
	}
	return nil
}

// verifyResource checks the subscription, resource group, scale set and
// location bindings and that the token's oid is an identity of the named
// ARM resource. The cheap bindings are checked before any ARM call.
func verifyResource(ctx context.Context, p *provider, c *tokenClaims, r *role, in *loginInput) error {
	strict := p.settings.strict
	if in.subscriptionID == "" || in.resourceGroup == "" {
		return fail(ErrNotAuthorized, nil, "subscription_id and resource_group_name are required")
	}
	if len(r.BoundSubscriptionIDs) > 0 && !containsFold(r.BoundSubscriptionIDs, in.subscriptionID) {
		return fail(ErrNotAuthorized, nil, "subscription not authorized")
	}
	if len(r.BoundResourceGroups) > 0 && !containsFold(r.BoundResourceGroups, in.resourceGroup) {
		return fail(ErrNotAuthorized, nil, "resource group not authorized")
	}

	var info *resourceInfo
	var err error
	switch {
	case in.vmssName != "":
		if strict {
			if cerr := verifyComputeClaim(c, "vmss_name", in.vmssName,
				"/virtualmachines/"+in.vmssName+"_", "/virtualmachinescalesets/"+in.vmssName); cerr != nil {
				return cerr
			}
		}
		if len(r.BoundScaleSets) > 0 && !slices.Contains(r.BoundScaleSets, in.vmssName) {
			return fail(ErrNotAuthorized, nil, "scale set not authorized")
		}
		info, err = p.lookup.scaleSet(ctx, in.subscriptionID, in.resourceGroup, in.vmssName)
	case in.vmName != "":
		if strict {
			if cerr := verifyComputeClaim(c, "vm_name", in.vmName, "/virtualmachines/"+in.vmName); cerr != nil {
				return cerr
			}
		}
		if len(r.BoundScaleSets) > 0 {
			return fail(ErrNotAuthorized, nil, "bound scale set defined but this vm isn't in a scale set")
		}
		info, err = p.lookup.virtualMachine(ctx, in.subscriptionID, in.resourceGroup, in.vmName)
	case in.resourceID != "":
		if len(r.BoundScaleSets) > 0 {
			return fail(ErrNotAuthorized, nil, "scale set requires the vmss_name field to be set")
		}
		id, perr := arm.ParseResourceID(in.resourceID)
		if perr != nil {
			return fail(ErrResourceLookup, perr, "unable to parse the resource ID: %q", in.resourceID)
		}
		if !strings.EqualFold(id.SubscriptionID, in.subscriptionID) {
			return fail(ErrNotAuthorized, nil, "provided resource_id does not match subscription_id")
		}
		if !strings.EqualFold(id.ResourceGroupName, in.resourceGroup) {
			return fail(ErrNotAuthorized, nil, "provided resource_id does not match resource_group_name")
		}
		info, err = p.lookup.resource(ctx, in.resourceID)
	default:
		if !strict {
			return fail(ErrNotAuthorized, nil, "either vm_name or vmss_name is required")
		}
		if c.AppID == "" {
			return fail(ErrNotAuthorized, nil, "one of vm_name, vmss_name, resource_id, or an appid JWT claim must be provided")
		}
		return fail(ErrNotAuthorized, nil, "neither token object id nor token app id match expected identities")
	}
	if err != nil {
		return err
	}
	if strict && (in.vmssName != "" || in.vmName != "") {
		if err := verifyComputeClaim(c, "resource_group_name", in.resourceGroup, "/resourcegroups/"+in.resourceGroup+"/"); err != nil {
			return err
		}
	}
	if !containsFold(info.principalIDs, c.ObjectID) {
		if strict {
			if c.AppID == "" {
				return fail(ErrNotAuthorized, nil, "token object id does not match expected identities, and no app id was found")
			}
			return fail(ErrNotAuthorized, nil, "neither token object id nor token app id match expected identities")
		}
		return fail(ErrNotAuthorized, nil, "token object id does not match virtual machine identities")
	}
	if len(r.BoundLocations) > 0 {
		if info.location == "" {
			return fail(ErrNotAuthorized, nil, "location is empty")
		}
		if !containsFold(r.BoundLocations, info.location) {
			return fail(ErrNotAuthorized, nil, "location not authorized")
		}
	}
	return nil
}

// verifyComputeClaim (strict mode) requires xms_az_rid or xms_mirid to
// name the resource: one of patterns must occur in it (case-insensitive),
// at the end of the claim or followed by "/" unless the pattern ends in a
// separator itself.
func verifyComputeClaim(c *tokenClaims, field, value string, patterns ...string) error {
	if c.XMSAzRID == "" && c.XMSMIRID == "" {
		return fail(ErrNotAuthorized, nil, "xms_az_rid and xms_mirid claims are missing from token")
	}
	for _, claim := range []string{c.XMSAzRID, c.XMSMIRID} {
		lc := strings.ToLower(claim)
		for _, p := range patterns {
			p = strings.ToLower(p)
			i := strings.Index(lc, p)
			if i < 0 {
				continue
			}
			rest := lc[i+len(p):]
			if strings.HasSuffix(p, "/") || strings.HasSuffix(p, "_") || rest == "" || rest[0] == '/' {
				return nil
			}
		}
	}
	return fail(ErrNotAuthorized, nil, "xms_az_rid token claim does not match %s %s\nxms_mirid token claim does not match %s %s",
		field, value, field, value)
}

func containsFold(list []string, v string) bool {
	if v == "" {
		return false
	}
	for _, e := range list {
		if strings.EqualFold(e, v) {
			return true
		}
	}
	return false
}

// renew re-checks a login token's role on renewal: the role must still
// exist and grant the same policies. The TTLs then follow the role.
func (b *backend) renew(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if req.Auth == nil {
		return nil, logical.BadRequest("no auth to renew")
	}
	roleName, _ := req.Auth.InternalData["role"].(string)
	if roleName == "" {
		return nil, fail(ErrRenewal, nil, "failed to fetch role_name during renewal")
	}
	r, found, err := loadRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fail(ErrRenewal, nil, "role %s does not exist during renewal", roleName)
	}
	if !equivalentPolicies(r.TokenPolicies, req.Auth.Policies) {
		return nil, fail(ErrRenewal, nil, "policies have changed, not renewing")
	}
	auth := *req.Auth
	auth.TTL = r.TokenTTL
	auth.MaxTTL = r.TokenMaxTTL
	auth.Period = r.TokenPeriod
	auth.Renewable = true
	return &logical.Response{Auth: &auth}, nil
}

// equivalentPolicies compares two policy sets ignoring order, duplicates,
// case and "default" (Vault's policyutil.EquivalentPolicies).
func equivalentPolicies(a, b []string) bool {
	norm := func(in []string) []string {
		out := make([]string, 0, len(in))
		for _, p := range parsePolicies(in) {
			if p != "default" {
				out = append(out, p)
			}
		}
		return out
	}
	return slices.Equal(norm(a), norm(b))
}
