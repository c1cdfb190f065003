// Package token is Keyward's token store: it issues service tokens
// ("hvs." + 24 base62 characters), keeps them in storage only as
// HMAC-SHA256 hashes under a per-store random salt, indexes them by accessor
// and by parent (for cascading revocation), applies use counts, TTLs and
// renewals with Vault's rules, and serves the auth/token/* HTTP paths as a
// framework.Backend. A Store is safe for concurrent use.
package token

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// TypeService is the only token type Keyward issues.
const TypeService = "service"

// Default TTLs used when Config.System is nil (Vault's system defaults).
const (
	DefaultLeaseTTL = 768 * time.Hour
	DefaultMaxTTL   = 768 * time.Hour
)

// Storage keys, relative to Config.Storage.
const (
	saltKey        = "salt"
	idPrefix       = "id/"
	accessorPrefix = "accessor/"
	parentPrefix   = "parent/"
)

// ErrNotSetUp is returned by operations called before Setup.
var ErrNotSetUp = errors.New("token: store is not set up")

// Entry is one token. The plaintext ID is set only on the Entry returned by
// Create or CreateRoot; storage holds an HMAC of it, never the ID itself.
type Entry struct {
	// ID is the client token (only on a freshly created entry).
	ID string `json:"-"`
	// Accessor is the public handle of the token (24 base62 characters).
	Accessor string `json:"accessor"`
	// Parent is the accessor of the parent token; "" for orphans.
	Parent string `json:"parent,omitempty"`
	// Policies are the token policies, sanitized and sorted.
	Policies []string `json:"policies"`
	// Path is the creation path, e.g. "auth/token/create", "auth/azure/login".
	Path string `json:"path"`
	// Meta is shown by lookups (nil when none).
	Meta map[string]string `json:"meta,omitempty"`
	// DisplayName is e.g. "token", "token-ci", "azure-<oid>", "root".
	DisplayName string `json:"display_name"`
	// NumUses is the remaining number of uses; 0 means unlimited and -1
	// means exhausted (revocation pending).
	NumUses int `json:"num_uses"`
	// CreationTime is when the token was created.
	CreationTime time.Time `json:"creation_time"`
	// TTL is the TTL the token was created with (creation_ttl); 0 = none.
	TTL time.Duration `json:"ttl"`
	// MaxTTL is the backend (role) maximum TTL; 0 means the mount maximum.
	MaxTTL time.Duration `json:"max_ttl,omitempty"`
	// ExplicitMaxTTL is a hard cap from CreationTime; 0 means none.
	ExplicitMaxTTL time.Duration `json:"explicit_max_ttl"`
	// Period makes the token periodic; 0 means not periodic.
	Period time.Duration `json:"period,omitempty"`
	// ExpireTime is when the token expires; zero means never (root).
	ExpireTime time.Time `json:"expire_time"`
	// LastRenewalTime is the time of the last renewal; zero if never.
	LastRenewalTime time.Time `json:"last_renewal_time"`
	// Renewable allows renewal.
	Renewable bool `json:"renewable"`
	// Orphan reports that the token has no parent.
	Orphan bool `json:"orphan"`
	// Type is "service".
	Type string `json:"type"`
	// EntityID is the identity entity, "" when none.
	EntityID string `json:"entity_id"`
	// InternalData is stored with the token, never shown (login tokens).
	InternalData map[string]any `json:"internal_data,omitempty"`
	// MountType is the auth method type that issued the token ("token" for
	// the token store itself).
	MountType string `json:"mount_type"`
	// BoundCIDRs restricts where the token may be used from.
	BoundCIDRs []string `json:"bound_cidrs,omitempty"`
	// Alias is the auth method's alias name of the caller.
	Alias string `json:"alias,omitempty"`
	// NoLease marks tokens that have no lease (the root tokens created by
	// CreateRoot); lookups then omit issue_time and renewable, as Vault.
	NoLease bool `json:"no_lease,omitempty"`
}

// record is the stored form of an Entry.
type record struct {
	Hash  string `json:"hash"`
	Entry *Entry `json:"entry"`
}

// accessorRecord is the stored form of an accessor index entry.
type accessorRecord struct {
	Accessor string `json:"accessor"`
	Hash     string `json:"hash"`
}

// Config configures a Store.
type Config struct {
	// Storage is the token store's storage view (barrier-encrypted); keys
	// are relative to it. Required.
	Storage logical.Storage
	// Clock tells the time; nil means the system clock.
	Clock logical.Clock
	// Logger receives operational logs (never tokens); nil discards.
	Logger *slog.Logger
	// System gives the default and max TTL of the token mount; nil means
	// DefaultLeaseTTL and DefaultMaxTTL.
	System logical.SystemView
	// SystemFor, when set, returns the system view that applies to a token
	// created at path (e.g. the auth mount of "auth/azure/login"); it may
	// return nil to fall back to System.
	SystemFor func(path string) logical.SystemView
	// RenewAuth re-checks a login token with its auth method when it is
	// renewed. It is called for tokens whose Path is not under
	// "auth/token/". nil means no re-check.
	RenewAuth func(ctx context.Context, e *Entry) (*logical.Auth, error)
	// HasSudo reports whether policies grant sudo on path (a full request
	// path such as "auth/token/create"). nil means only "root" has sudo.
	HasSudo func(ctx context.Context, policies []string, path string) bool
	// OnRevoke, when set, is called after each token is revoked (for lease
	// cleanup). Its error is logged and returned by the revoking call.
	OnRevoke func(ctx context.Context, e *Entry) error
	// TidyInterval is the period of Run; zero means one minute.
	TidyInterval time.Duration
	// Rand is the randomness source for IDs; nil means crypto/rand.
	Rand io.Reader
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Store is the token store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	log     *slog.Logger
	clock   logical.Clock
	rand    io.Reader
	key     atomic.Pointer[[]byte] // HMAC salt; nil until Setup
	mu      sync.Mutex             // serializes read-modify-write of entries
	backend *framework.Backend
}

// NewStore builds a Store. Call Setup before use.
func NewStore(cfg Config) (*Store, error) {
	if cfg.Storage == nil {
		return nil, errors.New("token: Config.Storage is required")
	}
	s := &Store{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, rand: cfg.Rand}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.cfg.TidyInterval <= 0 {
		s.cfg.TidyInterval = time.Minute
	}
	b, err := s.newBackend()
	if err != nil {
		return nil, err
	}
	s.backend = b
	return s, nil
}

type saltRecord struct {
	Salt []byte `json:"salt"`
}

// Setup loads the store's salt from storage, creating it on first use. Core
// calls it after every unseal.
func (s *Store) Setup(ctx context.Context) error {
	e, err := s.cfg.Storage.Get(ctx, saltKey)
	switch {
	case err == nil:
		var r saltRecord
		if err = json.Unmarshal(e.Value, &r); err != nil || len(r.Salt) != 32 {
			return fmt.Errorf("token: corrupt salt: %w", errors.Join(err, errors.New("bad salt")))
		}
		s.key.Store(&r.Salt)
		return nil
	case errors.Is(err, logical.ErrNotFound):
		salt := make([]byte, 32)
		if _, err = io.ReadFull(s.rand, salt); err != nil {
			return fmt.Errorf("token: generating salt: %w", err)
		}
		var v []byte
		v, err = json.Marshal(saltRecord{Salt: salt})
		if err != nil {
			return fmt.Errorf("token: encoding salt: %w", err)
		}
		if err = s.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: saltKey, Value: v}); err != nil {
			return fmt.Errorf("token: storing salt: %w", err)
		}
		s.key.Store(&salt)
		return nil
	default:
		return fmt.Errorf("token: loading salt: %w", err)
	}
}

// hash returns the salted HMAC-SHA256 of v, hex encoded.
func (s *Store) hash(v string) (string, error) {
	k := s.key.Load()
	if k == nil {
		return "", ErrNotSetUp
	}
	m := hmac.New(sha256.New, *k)
	m.Write([]byte(v))
	return hex.EncodeToString(m.Sum(nil)), nil
}

func (s *Store) now() time.Time { return s.clock.Now() }

func (s *Store) system(path string) logical.SystemView {
	if s.cfg.SystemFor != nil {
		if v := s.cfg.SystemFor(path); v != nil {
			return v
		}
	}
	return s.cfg.System
}

// load reads the record stored under an ID hash.
func (s *Store) load(ctx context.Context, h string) (*Entry, error) {
	se, err := s.cfg.Storage.Get(ctx, idPrefix+h)
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(se.Value, &r); err != nil {
		return nil, fmt.Errorf("token: decoding entry: %w", err)
	}
	if r.Entry == nil || subtle.ConstantTimeCompare([]byte(r.Hash), []byte(h)) != 1 {
		return nil, fmt.Errorf("token: entry under %q does not match its key", "id/…")
	}
	return r.Entry, nil
}

func (s *Store) put(ctx context.Context, h string, e *Entry) error {
	v, err := json.Marshal(record{Hash: h, Entry: e})
	if err != nil {
		return fmt.Errorf("token: encoding entry: %w", err)
	}
	if err := s.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: idPrefix + h, Value: v}); err != nil {
		return fmt.Errorf("token: storing entry: %w", err)
	}
	return nil
}

// hashByAccessor resolves an accessor to the hash of its token ID.
func (s *Store) hashByAccessor(ctx context.Context, accessor string) (string, error) {
	if accessor == "" {
		return "", logical.ErrNotFound
	}
	ah, err := s.hash(accessor)
	if err != nil {
		return "", err
	}
	se, err := s.cfg.Storage.Get(ctx, accessorPrefix+ah)
	if err != nil {
		return "", err
	}
	var r accessorRecord
	if err := json.Unmarshal(se.Value, &r); err != nil {
		return "", fmt.Errorf("token: decoding accessor entry: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(r.Accessor), []byte(accessor)) != 1 {
		return "", logical.ErrNotFound
	}
	return r.Hash, nil
}

// expired reports whether e has expired at now.
func expired(e *Entry, now time.Time) bool {
	return !e.ExpireTime.IsZero() && !now.Before(e.ExpireTime)
}

// lookupHash returns the live entry under h. Expired and exhausted tokens
// are revoked (best effort) and reported as logical.ErrNotFound unless
// allowPending is set, in which case exhausted (NumUses == -1) tokens are
// still returned so the request that consumed the last use can finish.
func (s *Store) lookupHash(ctx context.Context, h string, allowPending bool) (*Entry, error) {
	e, err := s.load(ctx, h)
	if err != nil {
		return nil, err
	}
	if expired(e, s.now()) || (e.NumUses < 0 && !allowPending) {
		if err := s.revokeTree(ctx, h, e); err != nil {
			s.log.WarnContext(ctx, "lazy token revocation failed", "accessor", e.Accessor, "error", err)
		}
		return nil, logical.ErrNotFound
	}
	if e.Parent != "" {
		// A token dies with its parent: an expired or missing ancestor
		// makes it invalid now, not at the next Tidy.
		ph, perr := s.hashByAccessor(ctx, e.Parent)
		if perr == nil {
			_, perr = s.lookupHash(ctx, ph, true)
		}
		if errors.Is(perr, logical.ErrNotFound) {
			if cur, lerr := s.load(ctx, h); lerr == nil && cur.Parent != e.Parent {
				// Orphaned by a concurrent revoke-orphan: look again.
				return s.lookupHash(ctx, h, allowPending)
			}
			if err := s.revokeHash(ctx, h); err != nil {
				s.log.WarnContext(ctx, "lazy token revocation failed", "accessor", e.Accessor, "error", err)
			}
			return nil, logical.ErrNotFound
		}
		if perr != nil {
			return nil, perr
		}
	}
	return e, nil
}

// Lookup returns the token with the given ID. Unknown, revoked, expired
// and exhausted tokens give an error wrapping logical.ErrNotFound (expired
// and exhausted ones are revoked on the way). The returned Entry has no ID.
func (s *Store) Lookup(ctx context.Context, id string) (*Entry, error) {
	if id == "" {
		return nil, logical.ErrNotFound
	}
	h, err := s.hash(id)
	if err != nil {
		return nil, err
	}
	return s.lookupHash(ctx, h, false)
}

// lookupCaller is Lookup for the caller of a request being served: a token
// whose last use was consumed by this very request is still returned.
func (s *Store) lookupCaller(ctx context.Context, id string) (*Entry, string, error) {
	if id == "" {
		return nil, "", logical.ErrNotFound
	}
	h, err := s.hash(id)
	if err != nil {
		return nil, "", err
	}
	e, err := s.lookupHash(ctx, h, true)
	return e, h, err
}

// LookupAccessor returns the token with the given accessor, with the same
// rules as Lookup.
func (s *Store) LookupAccessor(ctx context.Context, accessor string) (*Entry, error) {
	h, err := s.hashByAccessor(ctx, accessor)
	if err != nil {
		return nil, err
	}
	return s.lookupHash(ctx, h, false)
}

// Use consumes one use of e when it has a use limit. When the last use is
// consumed the token is marked exhausted: this request proceeds, later
// lookups fail and the token is revoked by the next lookup or Tidy. A token
// already exhausted or revoked gives logical.ErrPermissionDenied.
func (s *Store) Use(ctx context.Context, e *Entry) error {
	if e == nil {
		return logical.ErrPermissionDenied
	}
	if e.NumUses == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.hashByAccessor(ctx, e.Accessor)
	if err != nil {
		if errors.Is(err, logical.ErrNotFound) {
			return logical.ErrPermissionDenied
		}
		return err
	}
	cur, err := s.load(ctx, h)
	if err != nil {
		if errors.Is(err, logical.ErrNotFound) {
			return logical.ErrPermissionDenied
		}
		return err
	}
	switch {
	case cur.NumUses < 0 || expired(cur, s.now()):
		return logical.ErrPermissionDenied
	case cur.NumUses == 0:
		return nil
	case cur.NumUses == 1:
		cur.NumUses = -1
	default:
		cur.NumUses--
	}
	if err := s.put(ctx, h, cur); err != nil {
		return err
	}
	e.NumUses = cur.NumUses
	return nil
}

// Backend returns the auth/token/* backend. Its patterns are relative to
// the mount "auth/token/".
func (s *Store) Backend() *framework.Backend { return s.backend }

// Run calls Tidy every Config.TidyInterval until ctx is done; it returns
// nil when ctx is cancelled.
func (s *Store) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.TidyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := s.Tidy(ctx); err != nil {
				s.log.WarnContext(ctx, "token tidy failed", "error", err)
			} else if n > 0 {
				s.log.InfoContext(ctx, "token tidy revoked tokens", "count", n)
			}
		}
	}
}

// Tidy revokes every expired or exhausted token (with its descendants) and
// removes dangling index entries. It returns the number of tokens revoked.
func (s *Store) Tidy(ctx context.Context) (int, error) {
	if s.key.Load() == nil {
		return 0, ErrNotSetUp
	}
	keys, err := s.cfg.Storage.List(ctx, idPrefix)
	if err != nil {
		return 0, fmt.Errorf("token: listing tokens: %w", err)
	}
	now := s.now()
	revoked := 0
	var errs []error
	for _, h := range keys {
		if err := ctx.Err(); err != nil {
			return revoked, err
		}
		e, err := s.load(ctx, h)
		if errors.Is(err, logical.ErrNotFound) {
			continue // revoked meanwhile (e.g. as a child)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !expired(e, now) && e.NumUses >= 0 {
			continue
		}
		n, err := s.revokeCount(ctx, h, e)
		revoked += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.tidyIndexes(ctx); err != nil {
		errs = append(errs, err)
	}
	return revoked, errors.Join(errs...)
}

// tidyIndexes removes accessor and parent index entries whose token is gone.
func (s *Store) tidyIndexes(ctx context.Context) error {
	var errs []error
	acc, err := s.cfg.Storage.List(ctx, accessorPrefix)
	if err != nil {
		return fmt.Errorf("token: listing accessors: %w", err)
	}
	for _, ah := range acc {
		se, gerr := s.cfg.Storage.Get(ctx, accessorPrefix+ah)
		if gerr != nil {
			continue
		}
		var r accessorRecord
		if json.Unmarshal(se.Value, &r) != nil {
			continue
		}
		if err = s.deleteIfOrphaned(ctx, accessorPrefix+ah, r.Hash); err != nil {
			errs = append(errs, err)
		}
	}
	parents, err := s.cfg.Storage.List(ctx, parentPrefix)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("token: listing parents: %w", err))...)
	}
	for _, p := range parents {
		children, err := s.cfg.Storage.List(ctx, parentPrefix+p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, c := range children {
			if err := s.deleteIfOrphaned(ctx, parentPrefix+p+c, c); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// deleteIfOrphaned deletes the index entry key when no token is stored
// under hash h. It holds mu, as Create does while it writes an index entry
// before the token itself.
func (s *Store) deleteIfOrphaned(ctx context.Context, key, h string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.cfg.Storage.Get(ctx, idPrefix+h)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, logical.ErrNotFound):
		if err = s.cfg.Storage.Delete(ctx, key); err != nil {
			return fmt.Errorf("token: deleting index entry: %w", err)
		}
		return nil
	default:
		return err
	}
}
