package kv

import (
	"context"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// pathSubkeys serves subkeys/<path>: the structure of a version's data with
// every leaf value replaced by null.
func (b *versioned) pathSubkeys() *framework.Path {
	return &framework.Path{
		Pattern: `subkeys/` + framework.MatchAllRegex("path"),
		Fields: map[string]*framework.FieldSchema{
			"path":    {Type: framework.TypeString, Description: "Location of the secret."},
			"version": {Type: framework.TypeInt, Description: "Version to read; 0 reads the current version."},
			"depth":   {Type: framework.TypeInt, Description: "Deepest nesting level to return; 0 means no limit."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation: b.guard(b.subkeysRead),
		},
		HelpSynopsis: "Read the structure of a secret with its values removed.",
	}
}

func (b *versioned) subkeysRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	depth := d.Int("depth")
	if depth < 0 {
		return nil, logical.BadRequest("depth must be a non-negative integer")
	}
	return b.readVersion(ctx, req, d, "subkeys/", "subkeys", func(data map[string]any) any {
		return subkeys(data, 1, depth)
	})
}
