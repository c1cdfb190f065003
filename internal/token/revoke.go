package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/logical"
)

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("token: encoding: %w", err)
	}
	return b, nil
}

// Revoke revokes the token with the given ID and all its descendants.
// Revoking an unknown token is not an error.
func (s *Store) Revoke(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	h, err := s.hash(id)
	if err != nil {
		return err
	}
	return s.revokeHash(ctx, h)
}

// RevokeAccessor revokes the token with the given accessor and all its
// descendants. An unknown accessor gives an error wrapping
// logical.ErrNotFound.
func (s *Store) RevokeAccessor(ctx context.Context, accessor string) error {
	h, err := s.hashByAccessor(ctx, accessor)
	if err != nil {
		return err
	}
	return s.revokeHash(ctx, h)
}

func (s *Store) revokeHash(ctx context.Context, h string) error {
	e, err := s.load(ctx, h)
	if errors.Is(err, logical.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.revokeTree(ctx, h, e)
}

// RevokeOrphan revokes the token with the given ID and turns its children
// into orphans. Revoking an unknown token is not an error.
func (s *Store) RevokeOrphan(ctx context.Context, id string) error {
	if id == "" {
		return nil
	}
	h, err := s.hash(id)
	if err != nil {
		return err
	}
	e, err := s.load(ctx, h)
	if errors.Is(err, logical.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	pah, err := s.hash(e.Accessor)
	if err != nil {
		return err
	}
	children, err := s.cfg.Storage.List(ctx, parentPrefix+pah+"/")
	if err != nil {
		return fmt.Errorf("token: listing children: %w", err)
	}
	s.mu.Lock()
	for _, ch := range children {
		c, lerr := s.load(ctx, ch)
		if errors.Is(lerr, logical.ErrNotFound) {
			continue
		}
		if lerr != nil {
			s.mu.Unlock()
			return lerr
		}
		c.Parent, c.Orphan = "", true
		if err = s.put(ctx, ch, c); err != nil {
			s.mu.Unlock()
			return err
		}
		if err = s.cfg.Storage.Delete(ctx, parentPrefix+pah+"/"+ch); err != nil {
			s.mu.Unlock()
			return fmt.Errorf("token: deleting parent index: %w", err)
		}
	}
	s.mu.Unlock()
	_, err = s.revokeOne(ctx, h, e)
	return err
}

// revokeTree revokes the token under h and its descendants, depth first.
func (s *Store) revokeTree(ctx context.Context, h string, e *Entry) error {
	_, err := s.revokeCount(ctx, h, e)
	return err
}

// revokeCount is revokeTree returning the number of tokens revoked.
func (s *Store) revokeCount(ctx context.Context, h string, e *Entry) (int, error) {
	pah, err := s.hash(e.Accessor)
	if err != nil {
		return 0, err
	}
	children, err := s.cfg.Storage.List(ctx, parentPrefix+pah+"/")
	if err != nil {
		return 0, fmt.Errorf("token: listing children: %w", err)
	}
	n := 0
	var errs []error
	for _, ch := range children {
		c, lerr := s.load(ctx, ch)
		switch {
		case errors.Is(lerr, logical.ErrNotFound):
		case lerr != nil:
			errs = append(errs, lerr)
			continue
		default:
			k, rerr := s.revokeCount(ctx, ch, c)
			n += k
			if rerr != nil {
				errs = append(errs, rerr)
				continue
			}
		}
		if err = s.cfg.Storage.Delete(ctx, parentPrefix+pah+"/"+ch); err != nil {
			errs = append(errs, fmt.Errorf("token: deleting parent index: %w", err))
		}
	}
	if len(errs) > 0 {
		// Keep the parent so that its remaining children stay revocable.
		return n, errors.Join(errs...)
	}
	k, err := s.revokeOne(ctx, h, e)
	return n + k, err
}

// revokeOne deletes one token (entry, accessor and own parent index) and
// calls OnRevoke. The entry is deleted first so the token stops working
// even if the callback fails.
func (s *Store) revokeOne(ctx context.Context, h string, e *Entry) (int, error) {
	// Deletions hold mu so that a concurrent Use or Renew (which write the
	// entry back under mu) cannot resurrect the token.
	s.mu.Lock()
	if err := s.cfg.Storage.Delete(ctx, idPrefix+h); err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("token: deleting entry: %w", err)
	}
	var errs []error
	if ah, err := s.hash(e.Accessor); err == nil {
		if err := s.cfg.Storage.Delete(ctx, accessorPrefix+ah); err != nil {
			errs = append(errs, fmt.Errorf("token: deleting accessor: %w", err))
		}
	}
	if e.Parent != "" {
		if pah, err := s.hash(e.Parent); err == nil {
			if err := s.cfg.Storage.Delete(ctx, parentPrefix+pah+"/"+h); err != nil {
				errs = append(errs, fmt.Errorf("token: deleting parent index: %w", err))
			}
		}
	}
	s.mu.Unlock()
	s.log.DebugContext(ctx, "token revoked", "accessor", e.Accessor, "path", e.Path)
	if s.cfg.OnRevoke != nil {
		if err := s.cfg.OnRevoke(ctx, e); err != nil {
			s.log.WarnContext(ctx, "token revocation callback failed", "accessor", e.Accessor, "error", err)
			errs = append(errs, err)
		}
	}
	return 1, errors.Join(errs...)
}
