package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// MountPath is where core mounts the token store backend.
const MountPath = "auth/token/"

// nonAssignable are policies that no token may be given.
var nonAssignable = []string{"response-wrapping", "control-group"}

var displayNameSanitize = regexp.MustCompile(`[^a-zA-Z0-9-]`)

func (s *Store) newBackend() (*framework.Backend, error) {
	tokenField := map[string]*framework.FieldSchema{
		"token":    {Type: framework.TypeString, Description: "Token to act on."},
		"urltoken": {Type: framework.TypeString, Description: "Token in the URL (deprecated)."},
	}
	accessorField := map[string]*framework.FieldSchema{
		"accessor":    {Type: framework.TypeString, Description: "Accessor of the token."},
		"urlaccessor": {Type: framework.TypeString, Description: "Accessor in the URL (deprecated)."},
	}
	withIncrement := func(m map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
		out := map[string]*framework.FieldSchema{
			"increment": {Type: framework.TypeDurationSecond, Description: "Requested extension."},
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	createFields := map[string]*framework.FieldSchema{
		"id":                {Type: framework.TypeString},
		"role_name":         {Type: framework.TypeString},
		"policies":          {Type: framework.TypeCommaStringSlice},
		"meta":              {Type: framework.TypeKVPairs},
		"no_parent":         {Type: framework.TypeBool},
		"no_default_policy": {Type: framework.TypeBool},
		"renewable":         {Type: framework.TypeBool, Default: true},
		"ttl":               {Type: framework.TypeDurationSecond},
		"lease":             {Type: framework.TypeDurationSecond},
		"explicit_max_ttl":  {Type: framework.TypeDurationSecond},
		"period":            {Type: framework.TypeDurationSecond},
		"num_uses":          {Type: framework.TypeInt},
		"display_name":      {Type: framework.TypeString},
		"type":              {Type: framework.TypeString},
		"entity_alias":      {Type: framework.TypeString},
	}
	up := logical.UpdateOperation
	b := &framework.Backend{
		Paths: []*framework.Path{
			{Pattern: "create-orphan", Fields: createFields, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleCreate(true)}, HelpSynopsis: "Create an orphan token."},
			{Pattern: "create/" + framework.GenericNameRegex("role_name"), Fields: createFields, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleCreateRole}, HelpSynopsis: "Create a token from a role."},
			{Pattern: "create", Fields: createFields, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleCreate(false)}, HelpSynopsis: "Create a token."},
			{Pattern: "lookup", Fields: tokenField, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleLookup, logical.ReadOperation: s.handleLookup}, HelpSynopsis: "Look up a token."},
			{Pattern: "lookup-self", Fields: tokenField, Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.handleLookupSelf}, HelpSynopsis: "Look up the calling token."},
			{Pattern: "lookup-accessor(/(?P<urlaccessor>.+))?", Fields: accessorField, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleLookupAccessor}, HelpSynopsis: "Look up a token by accessor."},
			{Pattern: "renew(/(?P<urltoken>.+))?", Fields: withIncrement(tokenField), Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRenew}, HelpSynopsis: "Renew a token."},
			{Pattern: "renew-self", Fields: withIncrement(nil), Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRenewSelf}, HelpSynopsis: "Renew the calling token."},
			{Pattern: "renew-accessor", Fields: withIncrement(accessorField), Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRenewAccessor}, HelpSynopsis: "Renew a token by accessor."},
			{Pattern: "revoke(/(?P<urltoken>.+))?", Fields: tokenField, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRevoke}, HelpSynopsis: "Revoke a token and its children."},
			{Pattern: "revoke-self", Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRevokeSelf}, HelpSynopsis: "Revoke the calling token and its children."},
			{Pattern: "revoke-accessor(/(?P<urlaccessor>.+))?", Fields: accessorField, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRevokeAccessor}, HelpSynopsis: "Revoke a token by accessor."},
			{Pattern: "revoke-orphan(/(?P<urltoken>.+))?", Fields: tokenField, Operations: map[logical.Operation]framework.OperationFunc{up: s.handleRevokeOrphan}, HelpSynopsis: "Revoke a token, leaving its children as orphans."},
			{Pattern: "accessors/?", Operations: map[logical.Operation]framework.OperationFunc{logical.ListOperation: s.handleAccessors}, HelpSynopsis: "List token accessors."},
			{Pattern: "tidy", Operations: map[logical.Operation]framework.OperationFunc{up: s.handleTidy}, HelpSynopsis: "Revoke expired tokens and clean up indexes."},
		},
		Special: &logical.Paths{Root: []string{"revoke-orphan/*", "accessors*"}},
	}
	if err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

func fullPath(req *logical.Request) string {
	mp := req.MountPoint
	if mp == "" {
		mp = MountPath
	}
	return mp + req.Path
}

// sudo reports whether policies give sudo on path.
func (s *Store) sudo(ctx context.Context, policies []string, path string) bool {
	if slices.Contains(policies, "root") {
		return true
	}
	return s.cfg.HasSudo != nil && s.cfg.HasSudo(ctx, policies, path)
}

// caller returns the entry of the request's token.
func (s *Store) caller(ctx context.Context, req *logical.Request) (*Entry, error) {
	e, _, err := s.lookupCaller(ctx, req.ClientToken)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, logical.ErrPermissionDenied
	}
	return e, err
}

func (s *Store) handleCreateRole(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, logical.BadRequest("unknown role %s", d.String("role_name"))
}

func (s *Store) handleCreate(orphanPath bool) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		parent, _, err := s.lookupCaller(ctx, req.ClientToken)
		if errors.Is(err, logical.ErrNotFound) {
			return nil, logical.BadRequest("parent token lookup failed: no parent found")
		}
		if err != nil {
			return nil, err
		}
		if parent.NumUses != 0 {
			return nil, logical.BadRequest("restricted use token cannot generate child tokens")
		}
		path := fullPath(req)
		isSudo := s.sudo(ctx, parent.Policies, path)

		switch t := d.String("type"); t {
		case "", "service", "default":
		case "batch":
			return nil, logical.BadRequest("batch tokens are not supported")
		default:
			return nil, logical.BadRequest("invalid 'token_type' value %q", t)
		}
		if d.Has("entity_alias") && d.String("entity_alias") != "" {
			return nil, logical.BadRequest("'entity_alias' is only allowed in combination with token role")
		}
		te := &Entry{Path: path, DisplayName: "token", MountType: "token", Type: TypeService}
		if id := d.String("id"); id != "" {
			if !isSudo {
				return nil, logical.BadRequest("root or sudo privileges required to specify token id")
			}
			for _, p := range []string{"s.", "b.", "r.", "hvs.", "hvb.", "hvr."} {
				if strings.HasPrefix(id, p) {
					return nil, logical.BadRequest("custom token ID cannot have the '%s' prefix", p)
				}
			}
			if strings.Contains(id, ".") {
				return nil, logical.BadRequest("custom token ID cannot have a '.' in the value")
			}
			te.ID = id
		}
		if d.Bool("no_parent") && !isSudo {
			return nil, logical.BadRequest("root or sudo privileges required to create orphan token")
		}
		if !orphanPath && !d.Bool("no_parent") {
			te.Parent = parent.Accessor
		}

		requested := parent.Policies
		if d.Has("policies") {
			requested = d.Strings("policies")
		}
		for _, p := range requested {
			if slices.Contains(nonAssignable, strings.ToLower(strings.TrimSpace(p))) {
				return nil, logical.BadRequest("cannot assign policy %q", p)
			}
		}
		pols := SanitizePolicies(slices.Clone(requested), false)
		if !isSudo {
			for _, p := range pols {
				if p != "default" && !slices.Contains(parent.Policies, p) {
					return nil, logical.BadRequest("child policies must be subset of parent")
				}
			}
		}
		if slices.Contains(pols, "root") && !slices.Contains(parent.Policies, "root") {
			// sudo lifts the subset rule but must not mint root tokens.
			return nil, logical.BadRequest("root tokens may not be created without parent token being root")
		}
		if len(pols) != 1 || pols[0] != "root" {
			pols = SanitizePolicies(pols, !d.Bool("no_default_policy"))
			if d.Bool("no_default_policy") {
				pols = slices.DeleteFunc(pols, func(p string) bool { return p == "default" })
			}
		}
		if len(pols) == 0 {
			return nil, logical.BadRequest("token must have at least one policy")
		}
		te.Policies = pols

		if m := d.KVPairs("meta"); d.Has("meta") {
			te.Meta = m
		}
		if n := d.String("display_name"); n != "" {
			full := displayNameSanitize.ReplaceAllString("token-"+n, "-")
			te.DisplayName = strings.TrimSuffix(full, "-")
		}
		te.NumUses = d.Int("num_uses")
		if te.NumUses < 0 {
			return nil, logical.BadRequest("number of uses cannot be negative")
		}
		te.TTL = d.Duration("ttl")
		if !d.Has("ttl") {
			te.TTL = d.Duration("lease")
		}
		te.ExplicitMaxTTL = d.Duration("explicit_max_ttl")
		te.Period = d.Duration("period")
		if te.Period > 0 && !isSudo {
			return nil, logical.BadRequest("root or sudo privileges required to create periodic token")
		}
		te.Renewable = d.Bool("renewable")

		out, warnings, err := s.create(ctx, te)
		if err != nil {
			return nil, err
		}
		return &logical.Response{Auth: s.authFrom(out, out.ID), Warnings: warnings}, nil
	}
}

// authFrom builds the "auth" block of create and renew responses.
func (s *Store) authFrom(e *Entry, clientToken string) *logical.Auth {
	return &logical.Auth{
		LeaseOptions: logical.LeaseOptions{
			TTL:       RemainingTTL(e, s.now()),
			MaxTTL:    e.MaxTTL,
			Renewable: e.Renewable && !e.ExpireTime.IsZero(),
			IssueTime: e.CreationTime,
		},
		DisplayName:    e.DisplayName,
		Policies:       slices.Clone(e.Policies),
		TokenPolicies:  slices.Clone(e.Policies),
		Metadata:       cloneMeta(e.Meta),
		ExplicitMaxTTL: e.ExplicitMaxTTL,
		Period:         e.Period,
		NumUses:        max(e.NumUses, 0),
		BoundCIDRs:     slices.Clone(e.BoundCIDRs),
		TokenType:      e.Type,
		EntityID:       e.EntityID,
		ClientToken:    clientToken,
		Accessor:       e.Accessor,
		Orphan:         e.Orphan,
		MountType:      e.MountType,
		InternalData:   e.InternalData,
	}
}

// LookupData renders e as Vault's token lookup data; id is shown as "id"
// ("" for accessor lookups).
func (s *Store) LookupData(e *Entry, id string) map[string]any {
	now := s.now()
	d := map[string]any{
		"id":               id,
		"accessor":         e.Accessor,
		"policies":         slices.Clone(e.Policies),
		"path":             e.Path,
		"meta":             cloneMeta(e.Meta),
		"display_name":     e.DisplayName,
		"num_uses":         max(e.NumUses, 0),
		"orphan":           e.Orphan,
		"creation_time":    e.CreationTime.Unix(),
		"creation_ttl":     int64(e.TTL / time.Second),
		"expire_time":      nil,
		"ttl":              int64(0),
		"explicit_max_ttl": int64(e.ExplicitMaxTTL / time.Second),
		"entity_id":        e.EntityID,
		"type":             e.Type,
	}
	if e.Period != 0 {
		d["period"] = int64(e.Period / time.Second)
	}
	if len(e.BoundCIDRs) > 0 {
		d["bound_cidrs"] = slices.Clone(e.BoundCIDRs)
	}
	if !e.LastRenewalTime.IsZero() {
		d["last_renewal_time"] = e.LastRenewalTime.Unix()
		d["last_renewal"] = e.LastRenewalTime
	}
	if !e.ExpireTime.IsZero() {
		d["expire_time"] = e.ExpireTime
		d["ttl"] = int64(RemainingTTL(e, now) / time.Second)
	}
	if !e.NoLease {
		d["renewable"] = e.Renewable && !e.ExpireTime.IsZero()
		d["issue_time"] = e.CreationTime
	}
	return d
}

var errBadToken = &logical.CodedError{Status: 403, Msg: "bad token", Err: logical.ErrPermissionDenied}

func (s *Store) handleLookup(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		id = d.String("urltoken")
	}
	if id == "" {
		id = req.ClientToken
	}
	if id == "" {
		return nil, logical.BadRequest("missing token ID")
	}
	var (
		e   *Entry
		err error
	)
	if id == req.ClientToken {
		e, _, err = s.lookupCaller(ctx, id)
	} else {
		e, err = s.Lookup(ctx, id)
	}
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errBadToken
	}
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: s.LookupData(e, id)}, nil
}

func (s *Store) handleLookupSelf(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	e, err := s.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: s.LookupData(e, req.ClientToken)}, nil
}

func accessorArg(d *framework.FieldData) (string, error) {
	a := d.String("accessor")
	if a == "" {
		a = d.String("urlaccessor")
	}
	if a == "" {
		return "", logical.BadRequest("missing accessor")
	}
	return a, nil
}

var errInvalidAccessor = logical.BadRequest("invalid accessor")

func (s *Store) byAccessor(ctx context.Context, d *framework.FieldData) (*Entry, error) {
	a, err := accessorArg(d)
	if err != nil {
		return nil, err
	}
	e, err := s.LookupAccessor(ctx, a)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errInvalidAccessor
	}
	return e, err
}

func (s *Store) handleLookupAccessor(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := s.byAccessor(ctx, d)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: s.LookupData(e, "")}, nil
}

func (s *Store) renewResponse(ctx context.Context, e *Entry, clientToken string, increment time.Duration) (*logical.Response, error) {
	out, warnings, err := s.renew(ctx, e, increment)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Auth: s.authFrom(out, clientToken), Warnings: warnings}, nil
}

func (s *Store) handleRenew(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		id = d.String("urltoken")
	}
	if id == "" {
		return nil, logical.BadRequest("missing token ID")
	}
	var (
		e   *Entry
		err error
	)
	if id == req.ClientToken {
		e, _, err = s.lookupCaller(ctx, id)
	} else {
		e, err = s.Lookup(ctx, id)
	}
	if errors.Is(err, logical.ErrNotFound) {
		return nil, logical.BadRequest("token not found")
	}
	if err != nil {
		return nil, err
	}
	return s.renewResponse(ctx, e, id, d.Duration("increment"))
}

func (s *Store) handleRenewSelf(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, _, err := s.lookupCaller(ctx, req.ClientToken)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, logical.BadRequest("token not found")
	}
	if err != nil {
		return nil, err
	}
	return s.renewResponse(ctx, e, req.ClientToken, d.Duration("increment"))
}

func (s *Store) handleRenewAccessor(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, err := s.byAccessor(ctx, d)
	if err != nil {
		return nil, err
	}
	return s.renewResponse(ctx, e, "", d.Duration("increment"))
}

func (s *Store) handleRevoke(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.String("token")
	if id == "" {
		id = d.String("urltoken")
	}
	if id == "" {
		return nil, logical.BadRequest("missing token ID")
	}
	return nil, s.Revoke(ctx, id)
}

func (s *Store) handleRevokeSelf(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return nil, s.Revoke(ctx, req.ClientToken)
}

func (s *Store) handleRevokeAccessor(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	a, err := accessorArg(d)
	if err != nil {
		return nil, err
	}
	err = s.RevokeAccessor(ctx, a)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, errInvalidAccessor
	}
	return nil, err // nil: 204 No Content
}

func (s *Store) handleRevokeOrphan(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	caller, err := s.caller(ctx, req)
	if err != nil {
		return nil, err
	}
	if !s.sudo(ctx, caller.Policies, fullPath(req)) {
		return nil, logical.BadRequest("root or sudo privileges required to revoke and orphan")
	}
	id := d.String("token")
	if id == "" {
		id = d.String("urltoken")
	}
	if id == "" {
		return nil, logical.BadRequest("missing token ID")
	}
	return nil, s.RevokeOrphan(ctx, id)
}

func (s *Store) handleAccessors(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	keys, err := s.cfg.Storage.List(ctx, accessorPrefix)
	if err != nil {
		return nil, fmt.Errorf("token: listing accessors: %w", err)
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		se, err := s.cfg.Storage.Get(ctx, accessorPrefix+k)
		if errors.Is(err, logical.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var r accessorRecord
		if err := json.Unmarshal(se.Value, &r); err != nil {
			return nil, fmt.Errorf("token: decoding accessor entry: %w", err)
		}
		out = append(out, r.Accessor)
	}
	slices.Sort(out)
	return framework.ListResponse(out), nil
}

func (s *Store) handleTidy(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	n, err := s.Tidy(ctx)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "token tidy done", "revoked", n)
	return &logical.Response{
		StatusCode: 202,
		Warnings:   []string{"Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."},
	}, nil
}
