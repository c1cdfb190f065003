package lease

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// SudoPaths are the sys paths (relative to "sys/") served by Paths that
// need the sudo capability, for the sys backend's SpecialPaths().Root.
var SudoPaths = []string{
	"leases/lookup/*",
	"leases/revoke-prefix/*",
	"leases/revoke-force/*",
	"revoke-prefix/*",
	"revoke-force/*",
}

// Paths returns the sys/leases/* paths (and the legacy sys/renew,
// sys/revoke, sys/revoke-prefix, sys/revoke-force), relative to the sys
// mount, for the sys backend to include in its framework.Backend.
func (m *Manager) Paths() []*framework.Path {
	up := logical.UpdateOperation
	idFields := map[string]*framework.FieldSchema{
		"lease_id":     {Type: framework.TypeString, Description: "The lease ID."},
		"url_lease_id": {Type: framework.TypeString, Description: "The lease ID in the URL."},
	}
	renewFields := map[string]*framework.FieldSchema{
		"lease_id":     {Type: framework.TypeString},
		"url_lease_id": {Type: framework.TypeString},
		"increment":    {Type: framework.TypeDurationSecond, Description: "Requested extension of the lease."},
	}
	revokeFields := map[string]*framework.FieldSchema{
		"lease_id":     {Type: framework.TypeString},
		"url_lease_id": {Type: framework.TypeString},
		"sync":         {Type: framework.TypeBool, Default: true},
	}
	prefixFields := map[string]*framework.FieldSchema{
		"prefix": {Type: framework.TypeString, Description: "Lease ID prefix."},
		"sync":   {Type: framework.TypeBool, Default: true},
	}
	ops := func(op logical.Operation, f framework.OperationFunc) map[logical.Operation]framework.OperationFunc {
		return map[logical.Operation]framework.OperationFunc{op: f}
	}
	return []*framework.Path{
		{Pattern: "leases/lookup", Fields: idFields, Operations: ops(up, m.handleLookup), HelpSynopsis: "Look up a lease."},
		{Pattern: "leases/lookup/" + framework.MatchAllRegex("prefix"), Fields: prefixFields, Operations: ops(logical.ListOperation, m.handleList), HelpSynopsis: "List leases under a prefix."},
		{Pattern: "leases/renew(/(?P<url_lease_id>.+))?", Fields: renewFields, Operations: ops(up, m.handleRenew), HelpSynopsis: "Renew a lease."},
		{Pattern: "renew(/(?P<url_lease_id>.+))?", Fields: renewFields, Operations: ops(up, m.handleRenew), HelpSynopsis: "Renew a lease (legacy path)."},
		{Pattern: "leases/revoke(/(?P<url_lease_id>.+))?", Fields: revokeFields, Operations: ops(up, m.handleRevoke), HelpSynopsis: "Revoke a lease."},
		{Pattern: "revoke(/(?P<url_lease_id>.+))?", Fields: revokeFields, Operations: ops(up, m.handleRevoke), HelpSynopsis: "Revoke a lease (legacy path)."},
		{Pattern: "leases/revoke-prefix/(?P<prefix>.+)", Fields: prefixFields, Operations: ops(up, m.handleRevokePrefix(false)), HelpSynopsis: "Revoke all leases under a prefix."},
		{Pattern: "revoke-prefix/(?P<prefix>.+)", Fields: prefixFields, Operations: ops(up, m.handleRevokePrefix(false)), HelpSynopsis: "Revoke all leases under a prefix (legacy path)."},
		{Pattern: "leases/revoke-force/(?P<prefix>.+)", Fields: prefixFields, Operations: ops(up, m.handleRevokePrefix(true)), HelpSynopsis: "Forget all leases under a prefix, ignoring backend errors."},
		{Pattern: "revoke-force/(?P<prefix>.+)", Fields: prefixFields, Operations: ops(up, m.handleRevokePrefix(true)), HelpSynopsis: "Forget all leases under a prefix (legacy path)."},
		{Pattern: "leases/tidy", Operations: ops(up, m.handleTidy), HelpSynopsis: "Revoke expired and orphaned leases."},
	}
}

func leaseIDArg(d *framework.FieldData) (string, error) {
	id := d.String("lease_id")
	if id == "" {
		id = d.String("url_lease_id")
	}
	if id == "" {
		return "", logical.BadRequest("lease_id must be specified")
	}
	return id, nil
}

func (m *Manager) handleLookup(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := d.String("lease_id")
	if id == "" {
		return nil, logical.BadRequest("lease_id must be specified")
	}
	l, err := m.Lookup(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return nil, logical.BadRequest("invalid lease")
		}
		return nil, err
	}
	now := m.clock.Now()
	data := map[string]any{
		"id":           l.ID,
		"issue_time":   l.IssueTime,
		"expire_time":  nil,
		"last_renewal": nil,
		"ttl":          int64(0),
		"renewable":    l.Renewable && !l.ExpireTime.IsZero(),
	}
	if !l.LastRenewalTime.IsZero() {
		data["last_renewal"] = l.LastRenewalTime
	}
	if !l.ExpireTime.IsZero() {
		data["expire_time"] = l.ExpireTime
		data["ttl"] = int64(l.RemainingTTL(now) / time.Second)
	}
	return &logical.Response{Data: data}, nil
}

func (m *Manager) handleList(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	keys, err := m.List(ctx, d.String("prefix"))
	if err != nil {
		return nil, err
	}
	return framework.ListResponse(keys), nil
}

func (m *Manager) handleRenew(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := leaseIDArg(d)
	if err != nil {
		return nil, err
	}
	l, warnings, err := m.Renew(ctx, id, d.Duration("increment"))
	if err != nil {
		return nil, err
	}
	return &logical.Response{
		Secret: &logical.Secret{
			LeaseID: l.ID,
			LeaseOptions: logical.LeaseOptions{
				TTL:       l.RemainingTTL(m.clock.Now()),
				MaxTTL:    l.MaxTTL,
				Renewable: l.Renewable,
				IssueTime: l.IssueTime,
			},
		},
		Warnings: warnings,
	}, nil
}

func (m *Manager) handleRevoke(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := leaseIDArg(d)
	if err != nil {
		return nil, err
	}
	return nil, m.Revoke(ctx, id)
}

func (m *Manager) handleRevokePrefix(force bool) framework.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		_, err := m.RevokePrefix(ctx, d.String("prefix"), force)
		return nil, err
	}
}

func (m *Manager) handleTidy(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	n, err := m.Tidy(ctx)
	if err != nil {
		return nil, err
	}
	m.log.InfoContext(ctx, "lease tidy done", "revoked", n)
	return &logical.Response{
		StatusCode: 202,
		Warnings:   []string{"Tidy operation successfully started. Any information from the operation will be printed to Vault's server logs."},
	}, nil
}
