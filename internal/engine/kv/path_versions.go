package kv

import (
	"context"
	"errors"
	"strings"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

func versionsPath(prefix, synopsis string, fn framework.OperationFunc) *framework.Path {
	return &framework.Path{
		Pattern: prefix + framework.MatchAllRegex("path"),
		Fields: map[string]*framework.FieldSchema{
			"path":     {Type: framework.TypeString, Description: "Location of the secret."},
			"versions": {Type: framework.TypeRaw, Description: "Version numbers (array or comma separated)."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.UpdateOperation: fn,
		},
		HelpSynopsis: synopsis,
	}
}

// pathDelete serves delete/<path>: soft-delete the given versions.
func (b *versioned) pathDelete() *framework.Path {
	return versionsPath("delete/", "Mark versions as deleted; undelete restores them.", b.guard(b.deleteVersions))
}

// pathUndelete serves undelete/<path>: restore soft-deleted versions.
func (b *versioned) pathUndelete() *framework.Path {
	return versionsPath("undelete/", "Restore soft-deleted versions.", b.guard(b.undeleteVersions))
}

// pathDestroy serves destroy/<path>: remove the data of versions for good.
func (b *versioned) pathDestroy() *framework.Path {
	return versionsPath("destroy/", "Permanently remove the data of versions.", b.guard(b.destroyVersions))
}

// lockedMeta parses versions, locks the key and loads its metadata. The
// returned unlock must be called; a missing key gives logical.ErrNotFound.
func (b *versioned) lockedMeta(ctx context.Context, req *logical.Request, d *framework.FieldData, prefix, noVersionsMsg string) (*keyMetadata, []uint64, func(), error) {
	versions, err := versionsField(d)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(versions) == 0 {
		return nil, nil, nil, logical.BadRequest("%s", noVersionsMsg)
	}
	key := strings.TrimPrefix(req.Path, prefix)
	l := b.lockFor(key)
	l.Lock()
	meta, err := getMeta(ctx, req.Storage, key)
	if err != nil {
		l.Unlock()
		return nil, nil, nil, err
	}
	return meta, versions, l.Unlock, nil
}

func (b *versioned) deleteVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	meta, versions, unlock, err := b.lockedMeta(ctx, req, d, "delete/", "No version number provided")
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := b.clock.Now().UTC()
	for _, n := range versions {
		vm := meta.Versions[n]
		if vm == nil || vm.Destroyed || vm.deleted(now) {
			continue
		}
		vm.DeletionTime = &now
	}
	if err := putMeta(ctx, req.Storage, meta); err != nil {
		return nil, err
	}
	return noContent()
}

func (b *versioned) undeleteVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	meta, versions, unlock, err := b.lockedMeta(ctx, req, d, "undelete/", "No version number provided")
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	now := b.clock.Now().UTC()
	for _, n := range versions {
		vm := meta.Versions[n]
		if vm == nil || vm.Destroyed {
			continue
		}
		// An undeleted version gets a fresh automatic deletion time.
		vm.DeletionTime = deletionTime(now, cfg, meta)
	}
	if err := putMeta(ctx, req.Storage, meta); err != nil {
		return nil, err
	}
	return noContent()
}

func (b *versioned) destroyVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	meta, versions, unlock, err := b.lockedMeta(ctx, req, d, "destroy/", "no version number provided")
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, n := range versions {
		if vm := meta.Versions[n]; vm != nil {
			vm.Destroyed = true
		}
	}
	// Metadata first: a crash in between leaves destroyed versions whose
	// data is merely unreachable, never a readable destroyed version.
	if err := putMeta(ctx, req.Storage, meta); err != nil {
		return nil, err
	}
	for _, n := range versions {
		if err := req.Storage.Delete(ctx, b.versionKey(meta.Key, n)); err != nil {
			return nil, err
		}
	}
	return noContent()
}
