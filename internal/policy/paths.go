package policy

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Paths returns the policy endpoints of the system backend, with patterns
// relative to the sys/ mount:
//
//	policy            GET/LIST  {"keys": [...], "policies": [...]}
//	policy/<name>     GET {"name","rules"}, PUT/POST {"policy"|"rules"}, DELETE
//	policies/acl      LIST      {"keys": [...]}
//	policies/acl/<name> GET {"name","policy"}, PUT/POST {"policy"}, DELETE
//
// Each call returns fresh Path values.
func (s *Store) Paths() []*framework.Path {
	fields := map[string]*framework.FieldSchema{
		"name":   {Type: framework.TypeString, Description: "The name of the policy."},
		"policy": {Type: framework.TypeString, Description: "The rules of the policy (HCL or JSON, optionally base64)."},
		"rules":  {Type: framework.TypeString, Description: "Deprecated alias of policy."},
	}
	return []*framework.Path{
		{
			Pattern: "policy/?",
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: s.handleList(true),
				logical.ListOperation: s.handleList(true),
			},
			HelpSynopsis: "List the configured access control policies.",
		},
		{
			Pattern: "policy/(?P<name>.+)",
			Fields:  fields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.handleRead(true),
				logical.UpdateOperation: s.handleWrite,
				logical.DeleteOperation: s.handleDelete,
			},
			HelpSynopsis: "Read, write or delete an access control policy (legacy path).",
		},
		{
			Pattern: "policies/acl/?",
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ListOperation: s.handleList(false),
			},
			HelpSynopsis: "List the configured access control policies.",
		},
		{
			Pattern: "policies/acl/(?P<name>.+)",
			Fields:  fields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.handleRead(false),
				logical.UpdateOperation: s.handleWrite,
				logical.DeleteOperation: s.handleDelete,
			},
			HelpSynopsis: "Read, write or delete an access control policy.",
		},
	}
}

func (s *Store) handleList(legacy bool) framework.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
		keys, err := s.List(ctx)
		if err != nil {
			return nil, err
		}
		resp := framework.ListResponse(keys)
		if legacy {
			resp.Data["policies"] = keys
		}
		return resp, nil
	}
}

// errNoPolicy renders as Vault's bare 404 ({"errors":[]}).
var errNoPolicy = &logical.CodedError{Status: 404, Err: logical.ErrNotFound}

func (s *Store) handleRead(legacy bool) framework.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		p, err := s.Get(ctx, d.String("name"))
		if err != nil {
			if isNotFound(err) {
				return nil, errNoPolicy
			}
			return nil, err
		}
		key := "policy"
		if legacy {
			key = "rules"
		}
		return &logical.Response{Data: map[string]any{"name": p.Name, key: p.Raw}}, nil
	}
}

func (s *Store) handleWrite(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	raw := d.String("name")
	name := sanitizeName(raw)
	if name == "" {
		return nil, logical.BadRequest("policy name must be provided in the URL")
	}
	var warnings []string
	if name != raw {
		warnings = append(warnings, fmt.Sprintf("policy name was converted to %s", name))
	}
	text := d.String("policy")
	if text == "" && d.Has("rules") {
		text = d.String("rules")
		warnings = append(warnings, "'rules' is deprecated, please use 'policy' instead")
	}
	if strings.TrimSpace(text) == "" {
		return nil, logical.BadRequest("'policy' parameter not supplied or empty")
	}
	if dec, err := base64.StdEncoding.DecodeString(text); err == nil {
		text = string(dec)
	}
	if immutable(name) {
		return nil, logical.BadRequest("cannot update %q policy", name)
	}
	p, err := Parse(name, text)
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, p); err != nil {
		return nil, err
	}
	if len(warnings) == 0 {
		return nil, nil //nolint:nilnil // a nil response renders 204 (logical.Response contract)
	}
	return &logical.Response{Warnings: warnings}, nil
}

func (s *Store) handleDelete(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := s.Delete(ctx, d.String("name")); err != nil {
		return nil, err
	}
	return nil, nil //nolint:nilnil // a nil response renders 204 (logical.Response contract)
}
