// Package lease is Keyward's expiration manager. It records a lease for
// every login token ("auth/<mount>/login/<hash>") and for every secret that
// carries one ("<mount>/<path>/<random>"), answers the sys/leases/* paths
// (lookup, list, renew, revoke, revoke-prefix, revoke-force, tidy and the
// legacy sys/renew, sys/revoke, sys/revoke-prefix), and revokes expired
// leases when Tidy runs against the injected clock. Revoking a login lease
// revokes its token through the token store; revoking a token revokes the
// leases it created (wire Config.OnRevoke of the token store to
// Manager.RevokeByToken). A Manager is safe for concurrent use.
package lease

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/token"
)

// Storage keys, relative to Config.Storage.
const (
	idPrefix    = "id/"
	tokenPrefix = "token/"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Lease is one registered lease.
type Lease struct {
	// ID is the lease ID: Path + "/" + a unique suffix.
	ID string `json:"id"`
	// Path is the request path that created the lease, e.g.
	// "auth/azure/login" or "database/creds/ro".
	Path string `json:"path"`
	// IssueTime is when the lease was created.
	IssueTime time.Time `json:"issue_time"`
	// ExpireTime is when the lease expires; zero means never.
	ExpireTime time.Time `json:"expire_time"`
	// LastRenewalTime is the last renewal; zero if never renewed.
	LastRenewalTime time.Time `json:"last_renewal_time"`
	// TTL is the TTL the lease was issued with.
	TTL time.Duration `json:"ttl"`
	// MaxTTL is the backend maximum TTL; zero means the mount maximum.
	MaxTTL time.Duration `json:"max_ttl"`
	// Renewable allows renewal.
	Renewable bool `json:"renewable"`
	// Auth marks a login token lease (its times follow the token).
	Auth bool `json:"auth"`
	// TokenAccessor is the login token (Auth) or the token whose request
	// created the secret. "" when unknown.
	TokenAccessor string `json:"token_accessor"`
	// InternalData is the secret's internal data, handed back to the
	// backend on renew and revoke; never shown to clients.
	InternalData map[string]any `json:"internal_data,omitempty"`
}

// Expired reports whether l has expired at now.
func (l *Lease) Expired(now time.Time) bool {
	return !l.ExpireTime.IsZero() && !now.Before(l.ExpireTime)
}

// RemainingTTL returns the time left at now, in whole seconds (0 when the
// lease never expires or has expired).
func (l *Lease) RemainingTTL(now time.Time) time.Duration {
	if l.ExpireTime.IsZero() {
		return 0
	}
	d := l.ExpireTime.Round(time.Second).Sub(now.Round(time.Second))
	return max(d, 0)
}

// Config configures a Manager.
type Config struct {
	// Storage is the manager's storage view (barrier-encrypted), e.g.
	// "sys/expire/". Required.
	Storage logical.Storage
	// Clock tells the time; nil means the system clock.
	Clock logical.Clock
	// Logger receives operational logs; nil discards.
	Logger *slog.Logger
	// Tokens is the token store, used to revoke login tokens and to read
	// their current expiry. Required.
	Tokens *token.Store
	// System returns the system view (default/max TTL) of the mount that
	// owns a lease path; nil, or a nil result, means Vault's defaults.
	System func(path string) logical.SystemView
	// RenewSecret asks the owning backend to renew a secret lease and
	// returns the backend's TTL/MaxTTL/Renewable. nil means the lease is
	// extended with its stored TTL and MaxTTL.
	RenewSecret func(ctx context.Context, l *Lease, increment time.Duration) (*logical.Secret, error)
	// RevokeSecret asks the owning backend to revoke a secret (e.g. drop a
	// database user). nil means nothing to do beyond forgetting the lease.
	RevokeSecret func(ctx context.Context, l *Lease) error
	// TidyInterval is the period of Run; zero means one minute.
	TidyInterval time.Duration
	// Rand is the randomness source for lease IDs; nil means crypto/rand.
	Rand io.Reader
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// Manager is the expiration manager. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	clock logical.Clock
	rand  io.Reader
	// mu serializes the write-back of a renewed lease with deletions, so
	// a renewal racing a revocation cannot resurrect the lease.
	mu sync.Mutex
}

// NewManager builds a Manager.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Storage == nil {
		return nil, errors.New("lease: Config.Storage is required")
	}
	if cfg.Tokens == nil {
		return nil, errors.New("lease: Config.Tokens is required")
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, rand: cfg.Rand}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.clock == nil {
		m.clock = systemClock{}
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	if m.cfg.TidyInterval <= 0 {
		m.cfg.TidyInterval = time.Minute
	}
	return m, nil
}

// Setup prepares the manager after unseal. It revokes leases that expired
// while the server was sealed (a Tidy pass).
func (m *Manager) Setup(ctx context.Context) error {
	if _, err := m.Tidy(ctx); err != nil {
		return fmt.Errorf("lease: setup: %w", err)
	}
	return nil
}

// Run calls Tidy every Config.TidyInterval until ctx is done; it returns
// nil when ctx is cancelled.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.TidyInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := m.Tidy(ctx); err != nil {
				m.log.WarnContext(ctx, "lease tidy failed", "error", err)
			} else if n > 0 {
				m.log.InfoContext(ctx, "lease tidy revoked leases", "count", n)
			}
		}
	}
}

func (m *Manager) system(path string) logical.SystemView {
	if m.cfg.System != nil {
		return m.cfg.System(path)
	}
	return nil
}

func accessorKey(accessor string) string {
	sum := sha256.Sum256([]byte("lease-index:" + accessor))
	return tokenPrefix + hex.EncodeToString(sum[:]) + "/"
}

func indexKey(accessor, leaseID string) string {
	return accessorKey(accessor) + base64.RawURLEncoding.EncodeToString([]byte(leaseID))
}

// validID rejects lease IDs that could escape the id/ namespace.
func validID(id string) bool {
	if id == "" || strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") {
		return false
	}
	for _, seg := range strings.Split(id, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func (m *Manager) load(ctx context.Context, id string) (*Lease, error) {
	if !validID(id) {
		return nil, logical.ErrNotFound
	}
	se, err := m.cfg.Storage.Get(ctx, idPrefix+id)
	if err != nil {
		return nil, err
	}
	var l Lease
	if err := json.Unmarshal(se.Value, &l); err != nil {
		return nil, fmt.Errorf("lease: decoding %q: %w", id, err)
	}
	return &l, nil
}

func (m *Manager) put(ctx context.Context, l *Lease) error {
	v, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("lease: encoding: %w", err)
	}
	if err := m.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: idPrefix + l.ID, Value: v}); err != nil {
		return fmt.Errorf("lease: storing: %w", err)
	}
	return nil
}

// register stores l and its token index entry.
func (m *Manager) register(ctx context.Context, l *Lease) error {
	if l.TokenAccessor != "" {
		// Index first so that a crash never leaves a lease its token's
		// revocation cannot find.
		if err := m.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: indexKey(l.TokenAccessor, l.ID), Value: []byte("{}")}); err != nil {
			return fmt.Errorf("lease: storing token index: %w", err)
		}
	}
	return m.put(ctx, l)
}

// RegisterAuth records the lease of a login token e created at path (e.g.
// "auth/azure/login"; "" means e.Path) and returns its ID,
// "<path>/<hash of the accessor>". The lease's times follow the token's.
func (m *Manager) RegisterAuth(ctx context.Context, path string, e *token.Entry) (string, error) {
	if e == nil || e.Accessor == "" {
		return "", errors.New("lease: RegisterAuth needs a token entry with an accessor")
	}
	if path == "" {
		path = e.Path
	}
	path = strings.Trim(path, "/")
	sum := sha256.Sum256([]byte("lease-auth:" + e.Accessor))
	l := &Lease{
		ID:            path + "/" + hex.EncodeToString(sum[:20]),
		Path:          path,
		IssueTime:     e.CreationTime,
		ExpireTime:    e.ExpireTime,
		TTL:           e.TTL,
		MaxTTL:        e.MaxTTL,
		Renewable:     e.Renewable,
		Auth:          true,
		TokenAccessor: e.Accessor,
	}
	if !validID(l.ID) {
		return "", logical.BadRequest("invalid lease path %q", path)
	}
	if err := m.register(ctx, l); err != nil {
		return "", err
	}
	return l.ID, nil
}

// RegisterSecret records a lease for secret s read at path by the token
// with accessor tokenAccessor, computes its TTL (s.TTL or the mount
// default, capped by s.MaxTTL and the mount max) and returns the lease ID.
// It sets s.LeaseID, s.TTL and s.IssueTime. A secret with NoLease is not
// registered: it gives "" and a nil error.
func (m *Manager) RegisterSecret(ctx context.Context, path, tokenAccessor string, s *logical.Secret) (string, error) {
	if s == nil {
		return "", errors.New("lease: nil secret")
	}
	if s.NoLease {
		return "", nil
	}
	path = strings.Trim(path, "/")
	suffix, err := randomBase62(m.rand, token.RandomLength)
	if err != nil {
		return "", err
	}
	now := m.clock.Now()
	ttl, _, err := token.CalculateTTL(now, m.system(path), 0, s.TTL, 0, s.MaxTTL, 0, now)
	if err != nil {
		return "", err
	}
	l := &Lease{
		ID:            path + "/" + suffix,
		Path:          path,
		IssueTime:     now,
		ExpireTime:    now.Add(ttl),
		TTL:           ttl,
		MaxTTL:        s.MaxTTL,
		Renewable:     s.Renewable,
		TokenAccessor: tokenAccessor,
		InternalData:  s.InternalData,
	}
	if !validID(l.ID) {
		return "", logical.BadRequest("invalid lease path %q", path)
	}
	if err := m.register(ctx, l); err != nil {
		return "", err
	}
	s.LeaseID, s.TTL, s.IssueTime = l.ID, ttl, now
	return l.ID, nil
}

// Lookup returns the lease with the given ID. Unknown, revoked and expired
// leases give an error wrapping logical.ErrNotFound (expired ones are
// revoked on the way). Login leases report their token's current times.
func (m *Manager) Lookup(ctx context.Context, id string) (*Lease, error) {
	l, err := m.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.Auth {
		te, err := m.cfg.Tokens.LookupAccessor(ctx, l.TokenAccessor)
		if errors.Is(err, logical.ErrNotFound) {
			m.forget(ctx, l)
			return nil, logical.ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		l.ExpireTime, l.LastRenewalTime, l.Renewable = te.ExpireTime, te.LastRenewalTime, te.Renewable && !te.ExpireTime.IsZero()
	}
	if l.Expired(m.clock.Now()) {
		if err := m.revoke(ctx, l, false); err != nil {
			m.log.WarnContext(ctx, "lazy lease revocation failed", "lease_id", l.ID, "error", err)
		}
		return nil, logical.ErrNotFound
	}
	return l, nil
}

// List returns the immediate children of prefix among lease IDs (prefix is
// "" or ends in "/"), as storage.Backend.List does.
func (m *Manager) List(ctx context.Context, prefix string) ([]string, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if prefix != "" && !validID(strings.TrimSuffix(prefix, "/")) {
		return []string{}, nil
	}
	keys, err := m.cfg.Storage.List(ctx, idPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("lease: listing: %w", err)
	}
	return keys, nil
}

// Renew renews a secret lease by increment (0 means its TTL) and returns
// the renewed lease and Vault's warnings. Errors are 400
// *logical.CodedError: "lease not found", "lease expired", "lease is not
// renewable", "tokens cannot be renewed through this endpoint".
func (m *Manager) Renew(ctx context.Context, id string, increment time.Duration) (*Lease, []string, error) {
	l, err := m.load(ctx, id)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil, logical.BadRequest("lease not found")
	}
	if err != nil {
		return nil, nil, err
	}
	now := m.clock.Now()
	if l.Auth {
		return nil, nil, logical.BadRequest("tokens cannot be renewed through this endpoint")
	}
	switch {
	case l.Expired(now):
		return nil, nil, logical.BadRequest("lease expired")
	case !l.Renewable || l.ExpireTime.IsZero():
		return nil, nil, logical.BadRequest("lease is not renewable")
	}
	backendTTL, backendMax := l.TTL, l.MaxTTL
	if m.cfg.RenewSecret != nil {
		s, rerr := m.cfg.RenewSecret(ctx, l, increment)
		if rerr != nil {
			return nil, nil, rerr
		}
		if s == nil {
			return nil, nil, errors.New("lease: backend returned no secret on renewal")
		}
		backendTTL, backendMax = s.TTL, s.MaxTTL
		l.Renewable = s.Renewable
		if s.InternalData != nil {
			l.InternalData = s.InternalData
		}
	}
	ttl, warnings, err := token.CalculateTTL(now, m.system(l.Path), increment, backendTTL, 0, backendMax, 0, l.IssueTime)
	if err != nil {
		return nil, nil, err
	}
	l.ExpireTime, l.LastRenewalTime, l.MaxTTL = now.Add(ttl), now, backendMax
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.cfg.Storage.Get(ctx, idPrefix+l.ID); err != nil {
		if errors.Is(err, logical.ErrNotFound) {
			return nil, nil, logical.BadRequest("lease not found") // revoked meanwhile
		}
		return nil, nil, err
	}
	if err := m.put(ctx, l); err != nil {
		return nil, nil, err
	}
	return l, warnings, nil
}

// Revoke revokes the lease with the given ID: a login lease revokes its
// token (and the token's children and leases), a secret lease asks the
// backend to revoke the secret. Unknown leases are not an error.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	l, err := m.load(ctx, id)
	if errors.Is(err, logical.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return m.revoke(ctx, l, false)
}

// RevokePrefix revokes every lease whose ID starts with prefix (a path
// prefix: "aws/creds" means "aws/creds/…"). With force, backend
// revocation errors are logged and the leases forgotten anyway. It
// returns the number of leases revoked.
func (m *Manager) RevokePrefix(ctx context.Context, prefix string, force bool) (int, error) {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" && !validID(prefix) {
		return 0, logical.BadRequest("invalid prefix %q", prefix)
	}
	if prefix != "" {
		prefix += "/"
	}
	ids, err := m.walk(ctx, prefix)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, id := range ids {
		l, err := m.load(ctx, id)
		if errors.Is(err, logical.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.revoke(ctx, l, force); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// walk returns every lease ID under prefix ("" or ending in "/").
func (m *Manager) walk(ctx context.Context, prefix string) ([]string, error) {
	keys, err := m.cfg.Storage.List(ctx, idPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("lease: listing: %w", err)
	}
	var out []string
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if strings.HasSuffix(k, "/") {
			sub, err := m.walk(ctx, prefix+k)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, prefix+k)
	}
	return out, nil
}

// revoke revokes one lease. For a login lease the token store revokes the
// token, whose OnRevoke hook lands in RevokeByToken and forgets the lease.
func (m *Manager) revoke(ctx context.Context, l *Lease, force bool) error {
	if l.Auth {
		err := m.cfg.Tokens.RevokeAccessor(ctx, l.TokenAccessor)
		if err != nil && !errors.Is(err, logical.ErrNotFound) {
			if !force {
				return fmt.Errorf("lease: revoking token of %q: %w", l.ID, err)
			}
			m.log.WarnContext(ctx, "forced lease revocation ignored an error", "lease_id", l.ID, "error", err)
		}
		m.forget(ctx, l)
		return nil
	}
	if m.cfg.RevokeSecret != nil {
		if err := m.cfg.RevokeSecret(ctx, l); err != nil {
			if !force {
				return fmt.Errorf("lease: revoking %q: %w", l.ID, err)
			}
			m.log.WarnContext(ctx, "forced lease revocation ignored an error", "lease_id", l.ID, "error", err)
		}
	}
	m.forget(ctx, l)
	return nil
}

// forget deletes a lease and its index entry (best effort, logged).
func (m *Manager) forget(ctx context.Context, l *Lease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.cfg.Storage.Delete(ctx, idPrefix+l.ID); err != nil {
		m.log.WarnContext(ctx, "deleting lease failed", "lease_id", l.ID, "error", err)
	}
	if l.TokenAccessor != "" {
		if err := m.cfg.Storage.Delete(ctx, indexKey(l.TokenAccessor, l.ID)); err != nil {
			m.log.WarnContext(ctx, "deleting lease index failed", "lease_id", l.ID, "error", err)
		}
	}
}

// RevokeByToken revokes every lease created by the token e (its login
// lease and the secrets it read). Wire it as token.Config.OnRevoke.
func (m *Manager) RevokeByToken(ctx context.Context, e *token.Entry) error {
	if e == nil || e.Accessor == "" {
		return nil
	}
	prefix := accessorKey(e.Accessor)
	keys, err := m.cfg.Storage.List(ctx, prefix)
	if err != nil {
		return fmt.Errorf("lease: listing token leases: %w", err)
	}
	var errs []error
	for _, k := range keys {
		raw, err := base64.RawURLEncoding.DecodeString(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("lease: bad index key: %w", err))
			continue
		}
		l, err := m.load(ctx, string(raw))
		if errors.Is(err, logical.ErrNotFound) {
			_ = m.cfg.Storage.Delete(ctx, prefix+k)
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if l.Auth {
			m.forget(ctx, l) // the token is already gone
			continue
		}
		if err := m.revoke(ctx, l, false); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Tidy revokes every expired lease, every secret lease whose token is
// gone and forgets login leases whose token is gone. It returns the number
// of leases removed.
func (m *Manager) Tidy(ctx context.Context) (int, error) {
	ids, err := m.walk(ctx, "")
	if err != nil {
		return 0, err
	}
	now := m.clock.Now()
	n := 0
	var errs []error
	for _, id := range ids {
		l, err := m.load(ctx, id)
		if errors.Is(err, logical.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var dead bool
		if l.TokenAccessor != "" {
			// A login lease follows its token (which may have been
			// renewed); any lease dies with the token that created it.
			te, err := m.cfg.Tokens.LookupAccessor(ctx, l.TokenAccessor)
			switch {
			case errors.Is(err, logical.ErrNotFound):
				dead = true
			case err != nil:
				errs = append(errs, err)
				continue
			case l.Auth:
				l.ExpireTime = te.ExpireTime
			}
		}
		dead = dead || l.Expired(now)
		if !dead {
			continue
		}
		if err := m.revoke(ctx, l, false); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func randomBase62(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("lease: reading randomness: %w", err)
		}
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out), nil
}

func isNotFound(err error) bool { return errors.Is(err, logical.ErrNotFound) }
