// Package inmem is an in-memory storage.Backend for tests and dev mode.
// Nothing survives the process. A Backend is safe for concurrent use.
package inmem

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/storage"
)

// Backend is a map-backed storage.Backend. The zero value is not usable;
// call New.
type Backend struct {
	mu   sync.RWMutex
	data map[string][]byte // guarded by mu; values are private copies
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{data: make(map[string][]byte)}
}

// Put stores a copy of e.Value under e.Key.
func (b *Backend) Put(ctx context.Context, e *storage.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := slices.Clone(e.Value)
	if v == nil {
		v = []byte{}
	}
	b.mu.Lock()
	b.data[e.Key] = v
	b.mu.Unlock()
	return nil
}

// Get returns a copy of the entry under key, or storage.ErrNotFound.
func (b *Backend) Get(ctx context.Context, key string) (*storage.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.RLock()
	v, ok := b.data[key]
	b.mu.RUnlock()
	if !ok {
		return nil, storage.ErrNotFound
	}
	return &storage.Entry{Key: key, Value: slices.Clone(v)}, nil
}

// Delete removes key; a missing key is not an error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.data, key)
	b.mu.Unlock()
	return nil
}

// List returns the sorted immediate children of prefix: leaves as they are,
// folders with a trailing "/". It scans every key (O(n)).
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seen := make(map[string]struct{})
	b.mu.RLock()
	for k := range b.data {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = struct{}{}
	}
	b.mu.RUnlock()
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out, nil
}
