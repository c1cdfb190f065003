package kv

import (
	"context"
	"errors"
	"strings"
	"time"

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

// updateVersions serves delete/, undelete/ and destroy/: it parses the
// "versions" field, then under the key's lock calls apply on each listed
// version that exists, with one timestamp, and stores the metadata. after,
// if not nil, runs next with the lock still held. A missing key is a no-op;
// both answer 204.
func (b *versioned) updateVersions(ctx context.Context, req *logical.Request, d *framework.FieldData, prefix, noVersionsMsg string,
	apply func(meta *keyMetadata, vm *versionMetadata, now time.Time), after func(meta *keyMetadata, versions []uint64) error,
) (*logical.Response, error) {
	versions, err := versionsField(d)
	if err != nil {
		return nil, err
	}
	if len(versions) == 0 {
		return nil, logical.BadRequest("%s", noVersionsMsg)
	}
	meta, unlock, err := b.lockMeta(ctx, req.Storage, strings.TrimPrefix(req.Path, prefix), true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	now := b.clock.Now().UTC()
	for _, n := range versions {
		if vm := meta.Versions[n]; vm != nil {
			apply(meta, vm, now)
		}
	}
	if err := putMeta(ctx, req.Storage, meta); err != nil {
		return nil, err
	}
	if after != nil {
		if err := after(meta, versions); err != nil {
			return nil, err
		}
	}
	return noContent()
}

func (b *versioned) deleteVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.updateVersions(ctx, req, d, "delete/", "No version number provided",
		func(_ *keyMetadata, vm *versionMetadata, now time.Time) {
			if !vm.Destroyed && !vm.deleted(now) {
				vm.DeletionTime = &now
			}
		}, nil)
}

func (b *versioned) undeleteVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return b.updateVersions(ctx, req, d, "undelete/", "No version number provided",
		func(meta *keyMetadata, vm *versionMetadata, now time.Time) {
			if !vm.Destroyed {
				// An undeleted version gets a fresh automatic deletion time.
				vm.DeletionTime = deletionTime(now, cfg, meta)
			}
		}, nil)
}

func (b *versioned) destroyVersions(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	// Metadata first: a crash in between leaves destroyed versions whose
	// data is merely unreachable, never a readable destroyed version.
	return b.updateVersions(ctx, req, d, "destroy/", "no version number provided",
		func(_ *keyMetadata, vm *versionMetadata, _ time.Time) { vm.Destroyed = true },
		func(meta *keyMetadata, versions []uint64) error {
			for _, n := range versions {
				if err := req.Storage.Delete(ctx, b.versionKey(meta.Key, n)); err != nil {
					return err
				}
			}
			return nil
		})
}
