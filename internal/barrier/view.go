package barrier

import (
	"context"
	"strings"

	"github.com/keyward/keyward/internal/storage"
)

// View is a prefix-scoped storage.Backend (the logical.Storage handed to a
// mount): keys are relative to the prefix, which callers cannot escape
// because keys are only ever appended to it. Safe for concurrent use if the
// underlying backend is.
type View struct {
	s      storage.Backend
	prefix string
}

var _ storage.Backend = (*View)(nil)

// NewView returns a view of s under prefix. A non-empty prefix gets a
// trailing "/" if it lacks one.
func NewView(s storage.Backend, prefix string) *View {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &View{s: s, prefix: prefix}
}

// SubView returns a view of v under prefix (relative to v).
func (v *View) SubView(prefix string) *View {
	return NewView(v.s, v.prefix+prefix)
}

// Prefix returns the view's prefix (empty or ending in "/").
func (v *View) Prefix() string { return v.prefix }

// Put stores e under the prefixed key.
func (v *View) Put(ctx context.Context, e *storage.Entry) error {
	return v.s.Put(ctx, &storage.Entry{Key: v.prefix + e.Key, Value: e.Value})
}

// Get returns the entry under the prefixed key, with Key relative to the
// view.
func (v *View) Get(ctx context.Context, key string) (*storage.Entry, error) {
	e, err := v.s.Get(ctx, v.prefix+key)
	if err != nil {
		return nil, err
	}
	return &storage.Entry{Key: key, Value: e.Value}, nil
}

// Delete removes the prefixed key.
func (v *View) Delete(ctx context.Context, key string) error {
	return v.s.Delete(ctx, v.prefix+key)
}

// List lists the children of the prefixed prefix.
func (v *View) List(ctx context.Context, prefix string) ([]string, error) {
	return v.s.List(ctx, v.prefix+prefix)
}
