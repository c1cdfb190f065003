package kv

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// pathInvalid answers every path a KV v2 mount does not serve (for example
// "<mount>/foo" without "data/") with Vault's 404 and a warning naming the
// right CLI command.
func (b *versioned) pathInvalid() *framework.Path {
	return &framework.Path{
		Pattern: `.*`,
		Operations: map[logical.Operation]framework.OperationFunc{
			logical.ReadOperation:   invalidPath,
			logical.UpdateOperation: invalidPath,
			logical.PatchOperation:  invalidPath,
			logical.DeleteOperation: invalidPath,
			logical.ListOperation:   invalidPath,
		},
		HelpSynopsis: "Invalid path for a versioned K/V secrets engine.",
	}
}

func invalidPath(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	switch req.Path {
	case "metadata", "data", "delete", "undelete", "destroy":
		return &logical.Response{
			StatusCode: 404,
			Warnings:   []string{"Non-listing operations on the root of a K/V v2 mount are not supported."},
		}, nil
	}
	var sub string
	switch req.Operation {
	case logical.CreateOperation, logical.UpdateOperation:
		sub = "put"
	case logical.PatchOperation:
		sub = "patch"
	case logical.ReadOperation:
		sub = "get"
	case logical.ListOperation:
		sub = "list"
	case logical.DeleteOperation:
		sub = "delete"
	}
	return &logical.Response{
		StatusCode: 404,
		Warnings:   []string{fmt.Sprintf("Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv %s' for this operation.", sub)},
	}, nil
}

func isNotFound(err error) bool { return errors.Is(err, logical.ErrNotFound) }
