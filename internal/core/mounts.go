package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage"
)

// Mount tables and where they are stored (barrier-encrypted).
const (
	tableMounts = "mounts"
	tableAuth   = "auth"

	keyMountTable = "core/mounts"
	keyAuthTable  = "core/auth"
)

// MountConfig is a mount's tunable configuration.
type MountConfig struct {
	DefaultLeaseTTL   time.Duration `json:"default_lease_ttl"`
	MaxLeaseTTL       time.Duration `json:"max_lease_ttl"`
	ForceNoCache      bool          `json:"force_no_cache"`
	ListingVisibility string        `json:"listing_visibility,omitempty"`
	TokenType         string        `json:"token_type,omitempty"`
}

// MountEntry is one mounted engine or auth method. Path is relative to its
// table: "aks/" in mounts, "azure/" in auth (routed at "auth/azure/").
type MountEntry struct {
	Table       string            `json:"table"`
	Path        string            `json:"path"`
	Type        string            `json:"type"`
	Description string            `json:"description"`
	UUID        string            `json:"uuid"`
	Accessor    string            `json:"accessor"`
	Config      MountConfig       `json:"config"`
	Options     map[string]string `json:"options"`
	Local       bool              `json:"local"`
	SealWrap    bool              `json:"seal_wrap"`
}

// routePath is the full request path prefix of the mount.
func (m *MountEntry) routePath() string {
	if m.Table == tableAuth {
		return "auth/" + m.Path
	}
	return m.Path
}

// storagePrefix is where the mount's data lives under the barrier.
func (m *mount) entry() *MountEntry { return m.cur.Load() }

func (m *MountEntry) storagePrefix() string {
	if m.Table == tableAuth {
		return "auth/" + m.UUID + "/"
	}
	return "logical/" + m.UUID + "/"
}

// mount is a live mount: its entry, backend and storage view.
type mount struct {
	// path is the route path ("aks/", "auth/azure/"); immutable.
	path string
	// cur is the current entry; tuning swaps it.
	cur     atomic.Pointer[MountEntry]
	backend logical.Backend
	view    logical.Storage
	// builtin mounts (sys/, auth/token/) are not persisted nor removable.
	builtin bool
}

// router maps request paths to mounts by longest prefix.
type router struct {
	mu     sync.RWMutex
	mounts map[string]*mount // by route path; guarded by mu
}

func newRouter() *router { return &router{mounts: map[string]*mount{}} }

// match returns the mount for path and the path relative to it.
func (r *router) match(path string) (*mount, string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var best *mount
	for prefix, m := range r.mounts {
		if strings.HasPrefix(path, prefix) || path+"/" == prefix {
			if best == nil || len(prefix) > len(best.path) {
				best = m
			}
		}
	}
	if best == nil {
		return nil, "", false
	}
	rel := strings.TrimPrefix(path, best.path)
	if path+"/" == best.path {
		rel = ""
	}
	return best, rel, true
}

func (r *router) get(routePath string) (*mount, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.mounts[routePath]
	return m, ok
}

// conflict reports an existing mount that is a prefix of routePath or has
// it as a prefix.
func (r *router) conflict(routePath string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for p := range r.mounts {
		if strings.HasPrefix(p, routePath) || strings.HasPrefix(routePath, p) {
			return p, true
		}
	}
	return "", false
}

func (r *router) add(m *mount) {
	r.mu.Lock()
	r.mounts[m.path] = m
	r.mu.Unlock()
}

func (r *router) remove(routePath string) {
	r.mu.Lock()
	delete(r.mounts, routePath)
	r.mu.Unlock()
}

// list returns the mounts of a table sorted by path.
func (r *router) list(table string) []*mount {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*mount
	for _, m := range r.mounts {
		if m.entry().Table == table {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

func (r *router) cleanup(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.mounts {
		if cl, ok := m.backend.(logical.Cleaner); ok {
			cl.Cleanup(ctx)
		}
	}
}

// mountSystemView gives a backend its mount's TTLs, following tuning.
type mountSystemView struct {
	core  *Core
	mount *mount
}

func (v *mountSystemView) entry() *MountEntry { return v.mount.entry() }

func (v *mountSystemView) DefaultLeaseTTL() time.Duration {
	if d := v.entry().Config.DefaultLeaseTTL; d > 0 {
		return d
	}
	return v.core.cfg.DefaultLeaseTTL
}

func (v *mountSystemView) MaxLeaseTTL() time.Duration {
	if d := v.entry().Config.MaxLeaseTTL; d > 0 {
		return d
	}
	return v.core.cfg.MaxLeaseTTL
}

var reservedPrefixes = []string{"sys/", "auth/", "cubbyhole/", "identity/"}

// normalizeMountPath cleans a user-given mount path and validates it.
func normalizeMountPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", logical.BadRequest("path cannot be empty")
	}
	if strings.Contains(p, "..") {
		return "", logical.BadRequest("path cannot contain parent references")
	}
	return p + "/", nil
}

// instantiate builds the backend of entry.
func (c *Core) instantiate(ctx context.Context, entry *MountEntry) (*mount, error) {
	factories := c.cfg.Registry.Engines
	if entry.Table == tableAuth {
		factories = c.cfg.Registry.Auth
	}
	factory, ok := factories[entry.Type]
	if !ok {
		if entry.Table == tableAuth {
			return nil, logical.BadRequest("unknown auth method type: %q", entry.Type)
		}
		return nil, logical.BadRequest("unknown backend type: %q", entry.Type)
	}
	m := &mount{path: entry.routePath(), view: barrier.NewView(c.barrier, entry.storagePrefix())}
	m.cur.Store(entry)
	path := m.path
	sys := &mountSystemView{core: c, mount: m}
	opts := map[string]string{}
	for k, v := range entry.Options {
		opts[k] = v
	}
	b, err := factory(ctx, logical.BackendConfig{
		Logger:  c.logger.With("mount", path, "type", entry.Type),
		System:  sys,
		Options: opts,
		Clock:   c.clock,
	})
	if err != nil {
		return nil, logical.BadRequest("cannot create backend %q: %v", entry.Type, err)
	}
	if in, ok := b.(logical.Initializer); ok {
		if err := in.Initialize(ctx, m.view); err != nil {
			return nil, fmt.Errorf("initializing %s: %w", path, err)
		}
	}
	m.backend = b
	return m, nil
}

// mountTable is the persisted form of a table.
type mountTable struct {
	Entries []*MountEntry `json:"entries"`
}

func (c *Core) loadTable(ctx context.Context, key string) ([]*MountEntry, error) {
	e, err := c.barrier.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return []*MountEntry{}, nil
	}
	if err != nil {
		return nil, err
	}
	var t mountTable
	if err := json.Unmarshal(e.Value, &t); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", key, err)
	}
	return t.Entries, nil
}

// persistTable writes the user mounts of a table. Caller holds tableMu.
func (c *Core) persistTable(ctx context.Context, st *unsealedState, table string) error {
	var t mountTable
	for _, m := range st.router.list(table) {
		if !m.builtin {
			t.Entries = append(t.Entries, m.entry())
		}
	}
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	key := keyMountTable
	if table == tableAuth {
		key = keyAuthTable
	}
	return c.barrier.Put(ctx, &storage.Entry{Key: key, Value: raw})
}
