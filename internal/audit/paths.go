package audit

import (
	"context"
	"strings"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Paths returns the audit endpoints of the system backend, with patterns
// relative to the sys/ mount:
//
//	audit               GET     {"<path>/": {"type","description","options","local","path"}}
//	audit/<path>        PUT/POST {type, description, options, local} enables; DELETE disables
//	audit-hash/<path>   PUT/POST {input} -> {"hash": "hmac-sha256:..."}
//
// Vault marks sys/audit and sys/audit/* as sudo paths; core enforces that.
// Each call returns fresh Path values.
func (b *Broker) Paths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern: "audit/?",
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation: b.handleList,
			},
			HelpSynopsis: "List the enabled audit devices.",
		},
		{
			Pattern: "audit/(?P<path>.+)",
			Fields: map[string]*framework.FieldSchema{
				"path":        {Type: framework.TypeString, Description: "The path of the audit device."},
				"type":        {Type: framework.TypeString, Description: "The type of the device: file."},
				"description": {Type: framework.TypeString, Description: "A human-friendly description."},
				"options":     {Type: framework.TypeKVPairs, Description: "Device options such as file_path, hmac_accessor, log_raw."},
				"local":       {Type: framework.TypeBool, Description: "Mark the device local-only."},
			},
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.handleEnable,
				logical.DeleteOperation: b.handleDisable,
			},
			HelpSynopsis: "Enable or disable an audit device.",
		},
		{
			Pattern: "audit-hash/(?P<path>.+)",
			Fields: map[string]*framework.FieldSchema{
				"path":  {Type: framework.TypeString, Description: "The path of the audit device."},
				"input": {Type: framework.TypeString, Description: "The string to hash."},
			},
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.UpdateOperation: b.handleHash,
			},
			HelpSynopsis: "Hash a value with an audit device's salt.",
		},
	}
}

func (b *Broker) handleList(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	b.mu.RLock()
	table := b.tableLocked()
	b.mu.RUnlock()
	data := make(map[string]any, len(table))
	for _, e := range table {
		opts := map[string]string{}
		for k, v := range e.Options {
			opts[k] = v
		}
		data[e.Path] = map[string]any{
			"type":        e.Type,
			"description": e.Description,
			"options":     opts,
			"local":       e.Local,
			"path":        e.Path,
		}
	}
	return &logical.Response{Data: data}, nil
}

func (b *Broker) handleEnable(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	err := b.Enable(ctx, EnableRequest{
		Path:        d.String("path"),
		Type:        strings.TrimSpace(d.String("type")),
		Description: d.String("description"),
		Options:     d.KVPairs("options"),
		Local:       d.Bool("local"),
	})
	if err != nil {
		return nil, err
	}
	return nil, nil //nolint:nilnil // a nil response renders 204 (logical.Response contract)
}

func (b *Broker) handleDisable(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := b.Disable(ctx, d.String("path")); err != nil {
		return nil, err
	}
	return nil, nil //nolint:nilnil // a nil response renders 204 (logical.Response contract)
}

func (b *Broker) handleHash(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	input := d.String("input")
	if input == "" {
		return nil, logical.BadRequest("the \"input\" parameter is empty")
	}
	h, err := b.Hash(d.String("path"), input)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"hash": h}}, nil
}
