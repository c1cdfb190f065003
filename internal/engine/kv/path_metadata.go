package kv

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// casRequiredIgnoredWarning is Vault's warning when a key tries to turn
// off a check-and-set the mount mandates.
const casRequiredIgnoredWarning = `"cas_required" set to false, but is mandated by backend config. This value will be ignored.`

// pathMetadata serves metadata/<path>: key settings, version listing,
// permanent deletion of a key, and LIST of keys.
func (b *versioned) pathMetadata() *framework.Path {
	return &framework.Path{
		Pattern: `metadata/` + framework.MatchAllRegex("path"),
		Fields: map[string]*framework.FieldSchema{
			"path":                 {Type: framework.TypeString, Description: "Location of the secret."},
			"cas_required":         {Type: framework.TypeBool, Description: "Require check-and-set on every write of this key."},
			"max_versions":         {Type: framework.TypeInt, Description: "Versions to keep; 0 uses the mount's setting."},
			"delete_version_after": {Type: framework.TypeRaw, Description: "Time after which a new version is soft-deleted; 0 clears."},
			"custom_metadata":      {Type: framework.TypeRaw, Description: "Version-agnostic user key/value pairs."},
		},
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   b.guard(b.metadataRead),
			logical.CreateOperation: b.guard(b.metadataWrite),
			logical.UpdateOperation: b.guard(b.metadataWrite),
			logical.PatchOperation:  b.guard(b.metadataPatch),
			logical.DeleteOperation: b.guard(b.metadataDelete),
			logical.ListOperation:   b.guard(b.metadataList),
		},
		ExistenceCheck: b.metaExists("metadata/"),
		HelpSynopsis:   "Read and write key settings, list keys, and permanently delete a key with all its versions.",
	}
}

func (b *versioned) metadataRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	meta, unlock, err := b.lockMeta(ctx, req.Storage, strings.TrimPrefix(req.Path, "metadata/"), false)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return nil, err
	}
	versions := make(map[string]any, len(meta.Versions))
	for n, vm := range meta.Versions {
		versions[strconv.FormatUint(n, 10)] = map[string]any{
			"created_time":  formatTime(&vm.CreatedTime),
			"deletion_time": formatTime(vm.DeletionTime),
			"destroyed":     vm.Destroyed,
		}
	}
	return &logical.Response{Data: map[string]any{
		"versions":             versions,
		"current_version":      meta.CurrentVersion,
		"oldest_version":       meta.OldestVersion,
		"created_time":         formatTime(&meta.CreatedTime),
		"updated_time":         formatTime(&meta.UpdatedTime),
		"max_versions":         meta.MaxVersions,
		"cas_required":         meta.CasRequired,
		"delete_version_after": meta.DeleteVersionAfter.String(),
		"custom_metadata":      meta.CustomMetadata,
	}}, nil
}

// metadataSettings are the parsed settings of a metadata write or patch.
type metadataSettings struct {
	maxVersions    *uint32
	casRequired    *bool
	dva            *time.Duration
	customSet      map[string]string
	customUnset    []string
	customGiven    bool
	customIsNull   bool
	anySettingSent bool
}

func parseMetadataSettings(d *framework.FieldData, patch bool) (*metadataSettings, error) {
	s := &metadataSettings{}
	if raw, ok := d.Raw["max_versions"]; ok {
		s.anySettingSent = true
		n, err := intValue(raw)
		if err != nil {
			return nil, logical.BadRequest("error converting input %v for field %q: %v", raw, "max_versions", err)
		}
		if n < 0 || n > int64(^uint32(0)) {
			return nil, logical.BadRequest("max_versions must be between 0 and %d", ^uint32(0))
		}
		v := uint32(n)
		s.maxVersions = &v
	}
	if _, ok := d.Raw["cas_required"]; ok {
		s.anySettingSent = true
		v := d.Bool("cas_required")
		s.casRequired = &v
	}
	dva, ok, err := durationField(d, "delete_version_after", false)
	if err != nil {
		return nil, err
	}
	if ok {
		s.anySettingSent = true
		s.dva = &dva
	}
	if raw, ok := d.Raw["custom_metadata"]; ok {
		s.anySettingSent = true
		s.customGiven = true
		s.customIsNull = raw == nil
		set, unset, err := customMetadataField(raw, patch)
		if err != nil {
			return nil, err
		}
		if err := validateCustomMetadata(set); err != nil {
			return nil, err
		}
		s.customSet, s.customUnset = set, unset
	}
	return s, nil
}

func (b *versioned) metadataWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	key, s, err := metadataRequest(req, d, false)
	if err != nil {
		return nil, err
	}
	if !s.anySettingSent {
		return noContent()
	}
	cfg, err := b.config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}

	meta, unlock, err := b.lockMeta(ctx, req.Storage, key, true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		now := b.clock.Now().UTC()
		meta = newKeyMetadata(key)
		meta.CreatedTime, meta.UpdatedTime = now, now
	} else if err != nil {
		return nil, err
	}
	return s.store(ctx, req.Storage, cfg, meta, false)
}

// metadataRequest returns the key of a metadata write or patch (which may
// not be empty) and its parsed settings.
func metadataRequest(req *logical.Request, d *framework.FieldData, patch bool) (string, *metadataSettings, error) {
	key := strings.TrimPrefix(req.Path, "metadata/")
	if key == "" {
		return "", nil, logical.BadRequest("missing path")
	}
	s, err := parseMetadataSettings(d, patch)
	if err != nil {
		return "", nil, err
	}
	return key, s, nil
}

// store applies the settings to meta, saves it and answers the write or
// patch. The key's lock must be held.
func (s *metadataSettings) store(ctx context.Context, st logical.Storage, cfg kvConfig, meta *keyMetadata, patch bool) (*logical.Response, error) {
	s.apply(meta, patch)
	if err := putMeta(ctx, st, meta); err != nil {
		return nil, err
	}
	return casWarning(cfg, s)
}

func (s *metadataSettings) apply(meta *keyMetadata, patch bool) {
	if s.maxVersions != nil {
		meta.MaxVersions = *s.maxVersions
	}
	if s.casRequired != nil {
		meta.CasRequired = *s.casRequired
	}
	if s.dva != nil {
		meta.DeleteVersionAfter = *s.dva
	}
	if !s.customGiven {
		return
	}
	if !patch || s.customIsNull {
		meta.CustomMetadata = s.customSet
	} else {
		merged := make(map[string]string, len(meta.CustomMetadata)+len(s.customSet))
		for k, v := range meta.CustomMetadata {
			merged[k] = v
		}
		for k, v := range s.customSet {
			merged[k] = v
		}
		for _, k := range s.customUnset {
			delete(merged, k)
		}
		meta.CustomMetadata = merged
	}
	if len(meta.CustomMetadata) == 0 {
		meta.CustomMetadata = nil
	}
}

func casWarning(cfg kvConfig, s *metadataSettings) (*logical.Response, error) {
	if s.casRequired != nil && !*s.casRequired && cfg.CasRequired {
		return &logical.Response{Warnings: []string{casRequiredIgnoredWarning}}, nil
	}
	return noContent()
}

func (b *versioned) metadataPatch(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkPatchContentType(req); err != nil {
		return nil, err
	}
	key, s, err := metadataRequest(req, d, true)
	if err != nil {
		return nil, err
	}
	// In a merge patch a null resets a setting to its zero value.
	for _, name := range []string{"max_versions", "cas_required", "delete_version_after"} {
		if raw, ok := d.Raw[name]; ok && raw == nil {
			switch name {
			case "max_versions":
				s.maxVersions = new(uint32)
			case "cas_required":
				s.casRequired = new(bool)
			case "delete_version_after":
				s.dva = new(time.Duration)
			}
		}
	}
	cfg, err := b.config(ctx, req.Storage)
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
	return s.store(ctx, req.Storage, cfg, meta, true)
}

// metadataDelete removes a key's metadata and the data of every version.
func (b *versioned) metadataDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	key := strings.TrimPrefix(req.Path, "metadata/")
	_, unlock, err := b.lockMeta(ctx, req.Storage, key, true)
	defer unlock()
	if errors.Is(err, logical.ErrNotFound) {
		return noContent()
	}
	if err != nil {
		return nil, err
	}
	// Every stored version, including leftovers of a failed cleanup.
	dir := b.versionDir(key)
	names, err := req.Storage.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if err := req.Storage.Delete(ctx, dir+n); err != nil {
			return nil, err
		}
	}
	if err := req.Storage.Delete(ctx, metadataPrefix+key); err != nil {
		return nil, err
	}
	return noContent()
}

func (b *versioned) metadataList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	prefix := strings.TrimPrefix(req.Path, "metadata/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := req.Storage.List(ctx, metadataPrefix+prefix)
	if err != nil {
		return nil, err
	}
	return framework.ListResponse(keys), nil
}
