package kv

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// pathData serves data/<path>: versioned read, write, merge-patch and soft
// delete of the latest version. The path may not end in "/".
func (b *versioned) pathData() *framework.Path {
	return &framework.Path{
		Pattern: `data/(?P<path>.*?[^/])`,
		Fields: map[string]*framework.FieldSchema{
			"path":    {Type: framework.TypeString, Description: "Location of the secret."},
			"version": {Type: framework.TypeInt, Description: "Version to read; 0 or absent reads the current version."},
			"options": {Type: framework.TypeRaw, Description: `Write options; "cas" enables check-and-set.`},
			"data":    {Type: framework.TypeRaw, Description: "The secret's data (a JSON object)."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.guard(b.dataRead),
			logical.CreateOperation: b.guard(b.dataWrite),
			logical.UpdateOperation: b.guard(b.dataWrite),
			logical.PatchOperation:  b.guard(b.dataPatch),
			logical.DeleteOperation: b.guard(b.dataDelete),
		},
		ExistenceCheck: b.metaExists("data/"),
		HelpSynopsis:   "Write, patch, read and delete versioned data in the key-value store.",
	}
}

// metaExists is the existence check of data/ and metadata/: a secret
// exists when its metadata record does.
func (b *versioned) metaExists(prefix string) framework.ExistenceFunc {
	return func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
		if b.upgrading.Load() {
			return false, nil
		}
		if !b.ready.Load() {
			if err := b.prepare(ctx, req.Storage); err != nil {
				return false, err
			}
		}
		_, err := getMeta(ctx, req.Storage, strings.TrimPrefix(req.Path, prefix))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, logical.ErrNotFound):
			return false, nil
		default:
			return false, err
		}
	}
}

func (b *versioned) dataRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.readVersion(ctx, req, d, "data/", "data", func(data map[string]any) any { return data })
}

// lockMeta takes key's lock (shared unless write) and loads its metadata,
// or logical.ErrNotFound. The lock is held on return whatever the error:
// the caller must call unlock.
func (b *versioned) lockMeta(ctx context.Context, s logical.Storage, key string, write bool) (meta *keyMetadata, unlock func(), err error) {
	l := b.lockFor(key)
	if write {
		l.Lock()
		unlock = l.Unlock
	} else {
		l.RLock()
		unlock = l.RUnlock
	}
	meta, err = getMeta(ctx, s, key)
	return meta, unlock, err
}

// readVersion serves a read of one version of the key after prefix: the
// "version" field, else the current one. The response holds the version's
// metadata and, under field, render of its data; a deleted or destroyed
// version gives a 404 with field null, a missing key or version a bare 404.
func (b *versioned) readVersion(ctx context.Context, req *logical.Request, d *framework.FieldData, prefix, field string, render func(map[string]any) any) (*logical.Response, error) {
	key := strings.TrimPrefix(req.Path, prefix)
	meta, unlock, err := b.lockMeta(ctx, req.Storage, key, false)
	defer unlock()
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
		field:      nil,
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
	resp.Data[field] = render(data)
	return resp, nil
}

// dataField validates the "data" object and the "options" of a data write
// or patch.
func dataField(d *framework.FieldData) (map[string]any, error) {
	if _, ok := d.Raw["data"]; !ok {
		return nil, logical.BadRequest("no data provided")
	}
	data, err := objectField(d, "data")
	if err != nil {
		return nil, err
	}
	if _, _, err = casOption(d); err != nil {
		return nil, err
	}
	return data, nil
}

func (b *versioned) dataWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key := strings.TrimPrefix(req.Path, "data/")
	data, err := dataField(d)
	if err != nil {
		return nil, err
	}
	buf, err := json.Marshal(data)
	if err != nil {
		return nil, logical.BadRequest("json encoding failed: %v", err)
	}
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}

	meta, unlock, err := b.lockMeta(ctx, req.Storage, key, true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		meta = newKeyMetadata(key)
	} else if err != nil {
		return nil, err
	}
	if err := checkCAS(d, cfg, meta); err != nil {
		return nil, err
	}
	return b.addVersion(ctx, req.Storage, cfg, meta, buf)
}

// addVersion stores buf as the next version of meta's key, records it in
// the metadata and prunes versions beyond the window. The key's lock must
// be held.
func (b *versioned) addVersion(ctx context.Context, s logical.Storage, cfg kvConfig, meta *keyMetadata, buf []byte) (*logical.Response, error) {
	now := b.clock.Now().UTC()
	next := meta.CurrentVersion + 1
	if err := b.putVersion(ctx, s, meta.Key, next, &versionEntry{Data: buf, CreatedTime: now}); err != nil {
		return nil, err
	}
	vm, toDelete := meta.addVersion(now, deletionTime(now, cfg, meta), cfg.MaxVersions)
	if err := putMeta(ctx, s, meta); err != nil {
		return nil, err
	}
	resp := &logical.Response{Data: versionInfo(meta.CurrentVersion, vm, meta.CustomMetadata)}
	if err := b.pruneVersions(ctx, s, meta.Key, toDelete); err != nil {
		// A failed cleanup is retried on the next write; Vault warns.
		b.logger.Warn("kv: cleaning up old versions failed", "error", err)
		resp.Warnings = append(resp.Warnings, "error occurred when cleaning up old versions, these will be cleaned up on next write: "+err.Error())
	}
	return resp, nil
}

func (b *versioned) dataPatch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkPatchContentType(req); err != nil {
		return nil, err
	}
	key := strings.TrimPrefix(req.Path, "data/")
	patch, err := dataField(d)
	if err != nil {
		return nil, err
	}
	meta, unlock, err := b.lockMeta(ctx, req.Storage, key, true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		return patchNotFound()
	}
	if err != nil {
		return nil, err
	}
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if err = checkCAS(d, cfg, meta); err != nil {
		return nil, err
	}
	vm := meta.Versions[meta.CurrentVersion]
	if vm == nil {
		return patchNotFound()
	}
	if vm.deleted(b.clock.Now()) || vm.Destroyed {
		return &logical.Response{
			StatusCode: 404,
			Data:       versionInfo(meta.CurrentVersion, vm, meta.CustomMetadata),
		}, nil
	}
	current, err := b.versionData(ctx, req.Storage, key, meta.CurrentVersion)
	if err != nil {
		return nil, err
	}
	buf, err := json.Marshal(mergePatch(current, patch))
	if err != nil {
		return nil, logical.BadRequest("json encoding failed: %v", err)
	}
	return b.addVersion(ctx, req.Storage, cfg, meta, buf)
}

// dataDelete soft-deletes the current version (204 whatever happens).
func (b *versioned) dataDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	meta, unlock, err := b.lockMeta(ctx, req.Storage, strings.TrimPrefix(req.Path, "data/"), true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	now := b.clock.Now().UTC()
	lv := meta.Versions[meta.CurrentVersion]
	if lv == nil || lv.Destroyed || lv.deleted(now) {
		return noContent()
	}
	lv.DeletionTime = &now
	if err := putMeta(ctx, req.Storage, meta); err != nil {
		return nil, err
	}
	return noContent()
}
