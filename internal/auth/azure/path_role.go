package azure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

const rolePrefix = "role/"

// role is a stored role (key role/<lower-case name>).
type role struct {
	BoundServicePrincipalIDs []string `json:"bound_service_principal_ids"`
	BoundGroupIDs            []string `json:"bound_group_ids"`
	BoundLocations           []string `json:"bound_locations"`
	BoundSubscriptionIDs     []string `json:"bound_subscription_ids"`
	BoundResourceGroups      []string `json:"bound_resource_groups"`
	BoundScaleSets           []string `json:"bound_scale_sets"`

	TokenPolicies        []string      `json:"token_policies"`
	TokenTTL             time.Duration `json:"token_ttl"`
	TokenMaxTTL          time.Duration `json:"token_max_ttl"`
	TokenExplicitMaxTTL  time.Duration `json:"token_explicit_max_ttl"`
	TokenPeriod          time.Duration `json:"token_period"`
	TokenBoundCIDRs      []string      `json:"token_bound_cidrs"`
	TokenNoDefaultPolicy bool          `json:"token_no_default_policy"`
	TokenNumUses         int           `json:"token_num_uses"`
	TokenType            string        `json:"token_type"`

	// Legacy fields, kept for reads as Vault does.
	Policies []string      `json:"policies,omitempty"`
	TTL      time.Duration `json:"ttl,omitempty"`
	MaxTTL   time.Duration `json:"max_ttl,omitempty"`
	Period   time.Duration `json:"period,omitempty"`
	NumUses  int           `json:"num_uses,omitempty"`
}

// hasResourceBounds reports whether a login must be checked against ARM.
func (r *role) hasResourceBounds() bool {
	return len(r.BoundSubscriptionIDs) > 0 || len(r.BoundResourceGroups) > 0 ||
		len(r.BoundLocations) > 0 || len(r.BoundScaleSets) > 0
}

func legacyDesc(name string) string {
	return fmt.Sprintf(`Use "token_%s" instead. If this and "token_%s" are both specified, only "token_%s" will be used.`, name, name, name)
}

func roleFields() map[string]*framework.FieldSchema {
	list := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: desc}
	}
	dur := func(desc string) *framework.FieldSchema {
		return &framework.FieldSchema{Type: framework.TypeDurationSecond, Description: desc}
	}
	return map[string]*framework.FieldSchema{
		"name":                        {Type: framework.TypeString, Description: "Name of the role."},
		"bound_service_principal_ids": list(`Token oid must be one of these ("*" skips the check).`),
		"bound_group_ids":             list(`A token group must be one of these ("*" skips the check).`),
		"bound_locations":             list("The ARM resource's location must be one of these."),
		"bound_subscription_ids":      list("The login's subscription_id must be one of these."),
		"bound_resource_groups":       list("The login's resource_group_name must be one of these."),
		"bound_scale_sets":            list("The login's vmss_name must be one of these."),
		"token_policies":              list("Policies of the issued tokens."),
		"token_ttl":                   dur("Initial TTL of the issued tokens."),
		"token_max_ttl":               dur("Maximum TTL of the issued tokens."),
		"token_explicit_max_ttl":      dur("Hard maximum lifetime of the issued tokens."),
		"token_period":                dur("Makes the issued tokens periodic with this period."),
		"token_bound_cidrs":           list("CIDRs the login and the token must come from."),
		"token_no_default_policy":     {Type: framework.TypeBool, Description: "Do not attach the default policy."},
		"token_num_uses":              {Type: framework.TypeInt, Description: "Maximum uses of the issued tokens (0 = unlimited)."},
		"token_type":                  {Type: framework.TypeString, Default: "default", Description: "service, batch, default, default-service or default-batch."},
		"policies":                    list(legacyDesc("policies")),
		"ttl":                         dur(legacyDesc("ttl")),
		"max_ttl":                     dur(legacyDesc("max_ttl")),
		"period":                      dur(legacyDesc("period")),
		"num_uses":                    {Type: framework.TypeInt, Description: legacyDesc("num_uses")},
	}
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: "role/?",
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ListOperation: b.roleList,
		},
		HelpSynopsis: "Lists the roles.",
	}
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: "role/" + framework.GenericNameRegex("name"),
		Fields:  roleFields(),
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.roleRead,
			logical.CreateOperation: b.roleWrite,
			logical.UpdateOperation: b.roleWrite,
			logical.DeleteOperation: b.roleDelete,
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			_, found, err := loadRole(ctx, req.Storage, d.String("name"))
			return found, err
		},
		HelpSynopsis: "Creates, reads or deletes a role binding Azure identities to policies.",
	}
}

// loadRole returns the named role (names are case-insensitive); found is
// false when it does not exist. Empty token_* settings inherit the legacy
// ones, as Vault's tokenutil does.
func loadRole(ctx context.Context, s logical.Storage, name string) (r *role, found bool, err error) {
	e, err := s.Get(ctx, rolePrefix+strings.ToLower(name))
	if errors.Is(err, logical.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading role: %w", err)
	}
	r = new(role)
	if err := json.Unmarshal(e.Value, r); err != nil {
		return nil, false, fmt.Errorf("decoding role: %w", err)
	}
	if len(r.TokenPolicies) == 0 && len(r.Policies) > 0 {
		r.TokenPolicies = r.Policies
	}
	if r.TokenTTL == 0 && r.TTL > 0 {
		r.TokenTTL = r.TTL
	}
	if r.TokenMaxTTL == 0 && r.MaxTTL > 0 {
		r.TokenMaxTTL = r.MaxTTL
	}
	if r.TokenPeriod == 0 && r.Period > 0 {
		r.TokenPeriod = r.Period
	}
	if r.TokenNumUses == 0 && r.NumUses > 0 {
		r.TokenNumUses = r.NumUses
	}
	return r, true, nil
}

func (b *backend) roleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return framework.ListResponse(keys), nil
}

func (b *backend) roleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, found, err := loadRole(ctx, req.Storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, logical.ErrNotFound
	}
	secs := func(t time.Duration) int64 { return int64(t / time.Second) }
	data := map[string]any{
		"bound_service_principal_ids": nonNil(r.BoundServicePrincipalIDs),
		"bound_group_ids":             nonNil(r.BoundGroupIDs),
		"bound_locations":             nonNil(r.BoundLocations),
		"bound_subscription_ids":      nonNil(r.BoundSubscriptionIDs),
		"bound_resource_groups":       nonNil(r.BoundResourceGroups),
		"bound_scale_sets":            nonNil(r.BoundScaleSets),
		"token_policies":              nonNil(r.TokenPolicies),
		"token_ttl":                   secs(r.TokenTTL),
		"token_max_ttl":               secs(r.TokenMaxTTL),
		"token_explicit_max_ttl":      secs(r.TokenExplicitMaxTTL),
		"token_period":                secs(r.TokenPeriod),
		"token_bound_cidrs":           nonNil(r.TokenBoundCIDRs),
		"token_no_default_policy":     r.TokenNoDefaultPolicy,
		"token_num_uses":              r.TokenNumUses,
		"token_type":                  tokenTypeName(r.TokenType),
	}
	if len(r.Policies) > 0 {
		data["policies"] = r.Policies
	}
	if r.TTL > 0 {
		data["ttl"] = secs(r.TTL)
	}
	if r.MaxTTL > 0 {
		data["max_ttl"] = secs(r.MaxTTL)
	}
	if r.Period > 0 {
		data["period"] = secs(r.Period)
	}
	if r.NumUses > 0 {
		data["num_uses"] = r.NumUses
	}
	return &logical.Response{Data: data}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func tokenTypeName(t string) string {
	if t == "" {
		return "default"
	}
	return t
}

func (b *backend) roleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if name == "" {
		return nil, logical.BadRequest("role name required")
	}
	if err := req.Storage.Delete(ctx, rolePrefix+strings.ToLower(name)); err != nil {
		return nil, fmt.Errorf("deleting role: %w", err)
	}
	return nil, nil //nolint:nilnil // nil response renders as 204
}

func (b *backend) roleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	if name == "" {
		return nil, logical.BadRequest("missing role name")
	}
	r, found, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if !found {
		r = new(role)
	}
	warnings, err := applyRoleFields(r, d, b.maxLeaseTTL())
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding role: %w", err)
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: rolePrefix + strings.ToLower(name), Value: raw}); err != nil {
		return nil, fmt.Errorf("storing role: %w", err)
	}
	if len(warnings) > 0 {
		return &logical.Response{Warnings: warnings}, nil
	}
	return nil, nil //nolint:nilnil // nil response renders as 204
}

// applyRoleFields merges the request's fields onto r and validates the
// result (400 errors). mountMax is the mount's maximum lease TTL (0 =
// unknown). It returns Vault's warnings.
func applyRoleFields(r *role, d *framework.FieldData, mountMax time.Duration) ([]string, error) {
	for field, dst := range map[string]*[]string{
		"bound_service_principal_ids": &r.BoundServicePrincipalIDs,
		"bound_group_ids":             &r.BoundGroupIDs,
		"bound_locations":             &r.BoundLocations,
		"bound_subscription_ids":      &r.BoundSubscriptionIDs,
		"bound_resource_groups":       &r.BoundResourceGroups,
		"bound_scale_sets":            &r.BoundScaleSets,
	} {
		if d.Has(field) {
			*dst = d.Strings(field)
		}
	}

	// token_* fields, then the legacy aliases (tokenutil.UpgradeValue).
	if d.Has("token_bound_cidrs") {
		cidrs, err := parseCIDRs(d.Strings("token_bound_cidrs"))
		if err != nil {
			return nil, err
		}
		r.TokenBoundCIDRs = cidrs
	}
	if d.Has("token_no_default_policy") {
		r.TokenNoDefaultPolicy = d.Bool("token_no_default_policy")
	}
	if d.Has("token_explicit_max_ttl") {
		r.TokenExplicitMaxTTL = d.Duration("token_explicit_max_ttl")
	}
	if d.Has("token_type") || r.TokenType == "" {
		t := strings.ToLower(d.String("token_type"))
		switch t {
		case "default", "service", "batch", "default-service", "default-batch":
		default:
			return nil, logical.BadRequest("invalid 'token_type' value %q", t)
		}
		r.TokenType = t
	}
	upgradeStrings(d, "policies", "token_policies", &r.Policies, &r.TokenPolicies, parsePolicies)
	upgrade(d, "ttl", "token_ttl", &r.TTL, &r.TokenTTL, d.Duration)
	upgrade(d, "max_ttl", "token_max_ttl", &r.MaxTTL, &r.TokenMaxTTL, d.Duration)
	upgrade(d, "period", "token_period", &r.Period, &r.TokenPeriod, d.Duration)
	upgrade(d, "num_uses", "token_num_uses", &r.NumUses, &r.TokenNumUses, d.Int)

	if r.TokenMaxTTL > 0 && r.TokenTTL > r.TokenMaxTTL {
		if d.Has("token_ttl") || d.Has("token_max_ttl") {
			return nil, logical.BadRequest("'token_ttl' cannot be greater than 'token_max_ttl'")
		}
		return nil, logical.BadRequest("ttl should not be greater than max_ttl")
	}
	if r.TokenNumUses < 0 {
		return nil, logical.BadRequest("token num uses cannot be negative")
	}
	if r.TokenType == "batch" || r.TokenType == "default-batch" {
		if r.TokenPeriod > 0 {
			return nil, logical.BadRequest("'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens")
		}
		if r.TokenNumUses > 0 {
			return nil, logical.BadRequest("'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count")
		}
	}
	if mountMax > 0 && r.TokenPeriod > mountMax {
		return nil, logical.BadRequest("token period of %q is greater than the backend's maximum lease TTL of %q",
			r.TokenPeriod.String(), mountMax.String())
	}
	if len(r.BoundServicePrincipalIDs) == 0 && len(r.BoundGroupIDs) == 0 && len(r.BoundLocations) == 0 &&
		len(r.BoundSubscriptionIDs) == 0 && len(r.BoundResourceGroups) == 0 && len(r.BoundScaleSets) == 0 {
		return nil, logical.BadRequest("must have at least one bound constraint when creating/updating a role")
	}
	var warnings []string
	if mountMax > 0 && r.TokenMaxTTL > mountMax {
		warnings = append(warnings, "max_ttl is greater than the system or backend mount's maximum TTL value; issued tokens' max TTL value will be truncated")
	}
	return warnings, nil
}

// upgrade applies tokenutil.UpgradeValue: the new key wins; a legacy key
// alone sets both; the legacy value is cleared when only the new key is
// given.
func upgrade[T any](d *framework.FieldData, oldKey, newKey string, oldVal, newVal *T, get func(string) T) {
	var zero T
	switch {
	case d.Has(newKey) && d.Has(oldKey):
		*newVal = get(newKey)
		*oldVal = *newVal
	case d.Has(newKey):
		*newVal = get(newKey)
		*oldVal = zero
	case d.Has(oldKey):
		*oldVal = get(oldKey)
		*newVal = *oldVal
	}
}

func upgradeStrings(d *framework.FieldData, oldKey, newKey string, oldVal, newVal *[]string, norm func([]string) []string) {
	upgrade(d, oldKey, newKey, oldVal, newVal, func(k string) []string { return norm(d.Strings(k)) })
}

// parsePolicies is Vault's policyutil.ParsePolicies: trimmed, lower-cased,
// deduplicated and sorted; "root" alone wins.
func parsePolicies(in []string) []string {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if p == "root" {
			return []string{"root"}
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseCIDRs validates CIDRs or bare IP addresses and returns them as given.
func parseCIDRs(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, c := range in {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, err2 := netip.ParseAddr(c); err2 != nil {
				return nil, logical.BadRequest("invalid 'token_bound_cidrs': %q is not a CIDR or IP address", c)
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// cidrsAllow reports whether addr is inside one of cidrs (CIDRs or bare
// addresses). An unparsable addr is refused.
func cidrsAllow(cidrs []string, addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			if p.Contains(a) {
				return true
			}
			continue
		}
		if b, err := netip.ParseAddr(c); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}
