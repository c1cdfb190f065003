// Package kv implements the KV secrets engine, wire-compatible with Vault's
// kv plugin: version 1 (a passthrough that stores one JSON object per path)
// and version 2 (versioned secrets with metadata, soft delete, undelete,
// destroy, check-and-set, merge-patch and subkeys). Factory picks the
// version from the mount option "version". Backends are safe for concurrent
// use; all state lives in the storage view core hands them.
package kv

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keyward/keyward/internal/logical"
)

// Factory builds the KV backend of one mount. conf.Options["version"] is
// "" or "1" for KV v1 and "2" for KV v2; any other value is an error.
func Factory(ctx context.Context, conf logical.BackendConfig) (logical.Backend, error) {
	if conf.Logger == nil {
		conf.Logger = slog.New(slog.DiscardHandler)
	}
	if conf.System == nil {
		return nil, fmt.Errorf("kv: backend config has no system view")
	}
	if conf.Clock == nil {
		return nil, fmt.Errorf("kv: backend config has no clock")
	}
	switch v := conf.Options["version"]; v {
	case "", "1":
		return newPassthrough(conf)
	case "2":
		return newVersioned(conf)
	default:
		return nil, logical.BadRequest("unsupported kv version %q", v)
	}
}

// notFound is the contract's "nothing here" answer: a nil response with a
// nil error renders 404 for reads and patches and 204 for writes.
func notFound() (*logical.Response, error) {
	return nil, nil //nolint:nilnil // logical contract: nil response = 404 on read, 204 on write
}

// noContent is a successful write with nothing to render (204).
func noContent() (*logical.Response, error) {
	return nil, nil //nolint:nilnil // logical contract: nil response = 204 on write
}

// patchNotFound answers a PATCH of a missing secret: 404 with no data (a
// nil response would render 204 for a patch).
func patchNotFound() (*logical.Response, error) {
	return &logical.Response{StatusCode: 404}, nil
}
