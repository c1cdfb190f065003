package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// passthrough is KV v1: every request path is a storage key holding the
// JSON object last written there.
type passthrough struct {
	*framework.Backend
	sys logical.SystemView
}

func newPassthrough(conf logical.BackendConfig) (logical.Backend, error) {
	b := &passthrough{sys: conf.System}
	b.Backend = &framework.Backend{
		Paths: []*framework.Path{{
			// Handlers use req.Path, never a "path" field, so a body key
			// named "path" cannot redirect a write.
			Pattern: framework.MatchAllRegex("path"),
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   b.read,
				logical.CreateOperation: b.write,
				logical.UpdateOperation: b.write,
				logical.DeleteOperation: b.delete,
				logical.ListOperation:   b.list,
			},
			ExistenceCheck: b.exists,
			HelpSynopsis:   "Pass-through secret storage: read and write arbitrary JSON objects.",
		}},
	}
	if err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *passthrough) exists(ctx context.Context, req *logical.Request, _ *framework.FieldData) (bool, error) {
	if req.Path == "" {
		return false, nil
	}
	_, err := req.Storage.Get(ctx, req.Path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, logical.ErrNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("existence check failed: %w", err)
	}
}

func (b *passthrough) read(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if req.Path == "" || strings.HasSuffix(req.Path, "/") {
		return notFound()
	}
	e, err := req.Storage.Get(ctx, req.Path)
	if errors.Is(err, logical.ErrNotFound) {
		return notFound()
	}
	if err != nil {
		return nil, fmt.Errorf("read failed: %w", err)
	}
	data, err := decodeObject(e.Value)
	if err != nil {
		return nil, fmt.Errorf("json decoding failed: %w", err)
	}
	// lease_duration: the secret's own "ttl" (or legacy "lease") key when
	// it parses as a duration, else the mount's default lease TTL.
	ttl := b.sys.DefaultLeaseTTL()
	raw, ok := data["ttl"]
	if !ok {
		raw, ok = data["lease"]
	}
	if ok {
		if d, err := framework.ParseDuration(raw); err == nil {
			ttl = d
		}
	}
	return &logical.Response{
		Data:   data,
		Secret: &logical.Secret{NoLease: true, LeaseOptions: logical.LeaseOptions{TTL: ttl}},
	}, nil
}

func (b *passthrough) write(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if req.Path == "" {
		return nil, logical.BadRequest("missing path")
	}
	if len(req.Data) == 0 {
		return nil, logical.BadRequest("missing data fields")
	}
	buf, err := json.Marshal(req.Data)
	if err != nil {
		return nil, logical.BadRequest("json encoding failed: %v", err)
	}
	if err := req.Storage.Put(ctx, &logical.StorageEntry{Key: req.Path, Value: buf}); err != nil {
		return nil, fmt.Errorf("failed to write: %w", err)
	}
	return noContent()
}

func (b *passthrough) delete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	if req.Path == "" {
		return noContent()
	}
	if err := req.Storage.Delete(ctx, req.Path); err != nil {
		return nil, err
	}
	return noContent()
}

func (b *passthrough) list(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	prefix := req.Path
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := req.Storage.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return framework.ListResponse(keys), nil
}

// decodeObject decodes a stored JSON object, keeping numbers as
// json.Number so large integers survive a round trip.
func decodeObject(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	out := map[string]any{}
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}
