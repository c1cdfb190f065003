package kv

import (
	"context"
	"errors"
	"strings"

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
	key := strings.TrimPrefix(req.Path, "subkeys/")
	l := b.lockFor(key)
	l.RLock()
	defer l.RUnlock()

	meta, err := getMeta(ctx, req.Storage, key)
	if errors.Is(err, logical.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return nil, err
	}
	ver := meta.CurrentVersion
	if v := d.Int("version"); v > 0 {
		ver = uint64(v)
	}
	vm := meta.Versions[ver]
	if vm == nil {
		return notFound()
	}
	resp := &logical.Response{Data: map[string]any{
		"subkeys":  nil,
		"metadata": versionInfo(ver, vm, meta.CustomMetadata),
	}}
	if vm.deleted(b.clock.Now()) || vm.Destroyed {
		resp.StatusCode = 404
		return resp, nil
	}
	data, err := b.versionData(ctx, req.Storage, key, ver)
	if err != nil {
		return nil, err
	}
	resp.Data["subkeys"] = subkeys(data, 1, depth)
	return resp, nil
}
