package token

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// Renew extends the token e (found by its accessor) with Vault's rules and
// returns the renewed entry. increment 0 means the token's creation TTL
// (or its period). Errors are 400 *logical.CodedError: "token not found",
// "lease is not renewable" (not renewable, or no TTL such as root),
// "lease expired", "past the max TTL, cannot renew". For login tokens
// (Path not under "auth/token/") Config.RenewAuth is consulted first and
// its TTL, MaxTTL and Period replace the stored ones; its explicit max TTL
// can only lower the stored one.
func (s *Store) Renew(ctx context.Context, e *Entry, increment time.Duration) (*Entry, error) {
	out, _, err := s.renew(ctx, e, increment)
	return out, err
}

func (s *Store) renew(ctx context.Context, e *Entry, increment time.Duration) (*Entry, []string, error) {
	if e == nil {
		return nil, nil, logical.BadRequest("token not found")
	}
	if increment < 0 {
		return nil, nil, logical.BadRequest("increment must be positive")
	}
	h, cur, err := s.current(ctx, e.Accessor)
	if err != nil {
		return nil, nil, err
	}
	if err = renewable(cur, s.now()); err != nil {
		return nil, nil, err
	}
	backendTTL, backendMax, period, explicitMax := cur.TTL, cur.MaxTTL, cur.Period, cur.ExplicitMaxTTL
	if s.cfg.RenewAuth != nil && !strings.HasPrefix(cur.Path, "auth/token/") {
		a, aerr := s.cfg.RenewAuth(ctx, cur)
		if aerr != nil {
			return nil, nil, aerr
		}
		if a == nil {
			return nil, nil, errors.New("token: auth method returned no auth on renewal")
		}
		backendTTL, backendMax, period = a.TTL, a.MaxTTL, a.Period
		if a.ExplicitMaxTTL > 0 && (explicitMax == 0 || a.ExplicitMaxTTL < explicitMax) {
			explicitMax = a.ExplicitMaxTTL
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err = s.load(ctx, h) // reload under the lock
	if errors.Is(err, logical.ErrNotFound) {
		return nil, nil, logical.BadRequest("token not found")
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if err = renewable(cur, now); err != nil {
		return nil, nil, err
	}
	ttl, warnings, err := CalculateTTL(now, s.system(cur.Path), increment, backendTTL, period, backendMax, explicitMax, cur.CreationTime)
	if err != nil {
		return nil, nil, err
	}
	cur.ExpireTime = now.Add(ttl)
	cur.LastRenewalTime = now
	cur.MaxTTL, cur.Period, cur.ExplicitMaxTTL = backendMax, period, explicitMax
	if err := s.put(ctx, h, cur); err != nil {
		return nil, nil, err
	}
	out := *cur
	return &out, warnings, nil
}

// current loads the live entry with the given accessor and its hash.
func (s *Store) current(ctx context.Context, accessor string) (string, *Entry, error) {
	h, err := s.hashByAccessor(ctx, accessor)
	if err == nil {
		var cur *Entry
		cur, err = s.lookupHash(ctx, h, true)
		if err == nil {
			return h, cur, nil
		}
	}
	if errors.Is(err, logical.ErrNotFound) {
		return "", nil, logical.BadRequest("token not found")
	}
	return "", nil, err
}

func renewable(e *Entry, now time.Time) error {
	switch {
	case e.ExpireTime.IsZero() || !e.Renewable:
		return logical.BadRequest("lease is not renewable")
	case expired(e, now):
		return logical.BadRequest("lease expired")
	}
	return nil
}

// RemainingTTL returns the whole seconds left before e expires at now
// (0 for tokens that never expire or have expired).
func RemainingTTL(e *Entry, now time.Time) time.Duration {
	if e.ExpireTime.IsZero() {
		return 0
	}
	d := e.ExpireTime.Round(time.Second).Sub(now.Round(time.Second))
	if d < 0 {
		return 0
	}
	return d
}
