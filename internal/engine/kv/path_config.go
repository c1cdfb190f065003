package kv

import (
	"context"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// pathConfig serves config: mount-wide max_versions, cas_required and
// delete_version_after.
func (b *versioned) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: `config`,
		Fields: map[string]*framework.FieldSchema{
			"max_versions":         {Type: framework.TypeInt, Description: "Versions to keep per key; 0 keeps 10."},
			"cas_required":         {Type: framework.TypeBool, Description: "Require check-and-set on every write."},
			"delete_version_after": {Type: framework.TypeRaw, Description: "Time after which new versions are soft-deleted; negative disables, 0 clears."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.guard(b.configRead),
			logical.UpdateOperation: b.guard(b.configWrite),
		},
		HelpSynopsis: "Configure settings applied to every key of the mount.",
	}
}

func (b *versioned) configRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"max_versions":         cfg.MaxVersions,
		"cas_required":         cfg.CasRequired,
		"delete_version_after": cfg.DeleteVersionAfter.String(),
	}}, nil
}

func (b *versioned) configWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	_, mOK := d.Raw["max_versions"]
	_, cOK := d.Raw["cas_required"]
	dva, dOK, err := durationField(d, "delete_version_after", true)
	if err != nil {
		return nil, err
	}
	if !mOK && !cOK && !dOK {
		return noContent()
	}
	maxVersions := d.Int("max_versions")
	if maxVersions < 0 {
		return nil, logical.BadRequest("max_versions must be a non-negative integer")
	}

	b.cfgMu.Lock()
	defer b.cfgMu.Unlock()
	var cfg kvConfig
	if b.cfg != nil {
		cfg = *b.cfg
	} else if err := getJSON(ctx, req.Storage, keyConfig, &cfg); err != nil && !isNotFound(err) {
		return nil, err
	}
	if mOK {
		cfg.MaxVersions = uint32(maxVersions)
	}
	if cOK {
		cfg.CasRequired = d.Bool("cas_required")
	}
	if dOK {
		switch {
		case dva < 0:
			cfg.DeleteVersionAfter = deleteVersionAfterDisabled
		default:
			cfg.DeleteVersionAfter = dva
		}
	}
	if err := putJSON(ctx, req.Storage, keyConfig, &cfg); err != nil {
		return nil, err
	}
	b.cfg = &cfg
	return noContent()
}
