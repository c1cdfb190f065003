// Package storage defines the physical storage contract that sits under the
// security barrier. A Backend is completely untrusted: everything the server
// writes through it is encrypted by internal/barrier first (except the
// barrier's own bootstrap records, which are themselves encrypted or
// public). Implementations live in sub-packages (inmem, file) and all pass
// the conformance suite in storagetest.
package storage

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Get when no entry exists under the key.
// Backends never answer (nil, nil).
var ErrNotFound = errors.New("storage: entry not found")

// Entry is one key/value pair. Value is opaque to the backend.
type Entry struct {
	Key   string
	Value []byte
}

// Backend is the physical storage contract. Keys are slash-separated paths
// without a leading slash. All methods are safe for concurrent use.
//
// Put is atomic and durable on return: after Put returns nil, a crash at any
// later moment leaves the new value readable, and a crash during Put leaves
// either the old or the new value, never a torn one.
type Backend interface {
	// Put stores e, replacing any previous value under e.Key.
	Put(ctx context.Context, e *Entry) error
	// Get returns the entry under key, or ErrNotFound.
	Get(ctx context.Context, key string) (*Entry, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the immediate children of prefix (which is empty or ends
	// in "/"), sorted: leaf names as they are, sub-folders with a trailing
	// "/". A prefix with no children yields an empty slice.
	List(ctx context.Context, prefix string) ([]string, error)
}
