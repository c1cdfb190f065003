package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/logical"
)

// aclCacheMax bounds the ACL cache; it is emptied when full.
const aclCacheMax = 1024

// storedPolicy is the storage form of a policy, as Vault's PolicyEntry.
type storedPolicy struct {
	Version   int
	Raw       string
	Templated bool
	Type      int
}

// Store keeps named policies in a logical.Storage (a barrier view whose
// keys are policy names) and caches parsed policies and merged ACLs. It is
// safe for concurrent use.
type Store struct {
	storage logical.Storage

	mu       sync.Mutex
	policies map[string]*Policy // parsed cache by name; guarded by mu
	acls     map[string]*ACL    // by joined name set; guarded by mu
	gen      uint64             // bumped on every write; guarded by mu
}

// NewStore returns a Store over s (keys are policy names).
func NewStore(s logical.Storage) *Store {
	return &Store{storage: s, policies: map[string]*Policy{}, acls: map[string]*ACL{}}
}

// sanitizeName lowercases and trims a policy name, as Vault does.
func sanitizeName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

func immutable(name string) bool {
	return name == RootName || name == responseWrappingName || name == controlGroupName
}

func (s *Store) invalidate(name string) {
	s.mu.Lock()
	delete(s.policies, name)
	s.acls = map[string]*ACL{}
	s.gen++
	s.mu.Unlock()
}

// Setup ensures the default policy exists (writing Vault's default text
// when it is absent) and drops every cache. Core calls it after unseal.
func (s *Store) Setup(ctx context.Context) error {
	s.mu.Lock()
	s.policies = map[string]*Policy{}
	s.acls = map[string]*ACL{}
	s.gen++
	s.mu.Unlock()
	_, err := s.ensureDefault(ctx)
	return err
}

// ensureDefault returns the default policy, writing it first if absent.
func (s *Store) ensureDefault(ctx context.Context) (*Policy, error) {
	p, err := s.load(ctx, DefaultName)
	if err == nil {
		return p, nil
	}
	if !errors.Is(err, logical.ErrNotFound) {
		return nil, err
	}
	p, err = Parse(DefaultName, defaultPolicyText)
	if err != nil {
		return nil, fmt.Errorf("policy: built-in default policy: %w", err)
	}
	if err := s.write(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Get returns the named policy (name is lowercased first). "root" is
// built in (no rules); "default" is created on first use. A missing policy
// yields an error wrapping logical.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (*Policy, error) {
	name = sanitizeName(name)
	if name == RootName {
		return &Policy{Name: RootName}, nil
	}
	s.mu.Lock()
	p, ok := s.policies[name]
	s.mu.Unlock()
	if ok {
		return p, nil
	}
	if name == DefaultName {
		return s.ensureDefault(ctx)
	}
	return s.load(ctx, name)
}

// load reads and parses a stored policy and caches it.
func (s *Store) load(ctx context.Context, name string) (*Policy, error) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	e, err := s.storage.Get(ctx, name)
	if err != nil {
		if errors.Is(err, logical.ErrNotFound) {
			return nil, fmt.Errorf("policy %q: %w", name, logical.ErrNotFound)
		}
		return nil, fmt.Errorf("policy: read %q: %w", name, err)
	}
	var sp storedPolicy
	if uerr := json.Unmarshal(e.Value, &sp); uerr != nil {
		return nil, fmt.Errorf("policy: decode %q: %w", name, uerr)
	}
	p, err := Parse(name, sp.Raw)
	if err != nil {
		return nil, fmt.Errorf("policy: stored policy %q: %w", name, err)
	}
	s.mu.Lock()
	if s.gen == gen {
		s.policies[name] = p
	}
	s.mu.Unlock()
	return p, nil
}

func (s *Store) write(ctx context.Context, p *Policy) error {
	b, err := json.Marshal(storedPolicy{Version: 2, Raw: p.Raw, Templated: p.Templated})
	if err != nil {
		return fmt.Errorf("policy: encode %q: %w", p.Name, err)
	}
	if err := s.storage.Put(ctx, &logical.StorageEntry{Key: p.Name, Value: b}); err != nil {
		return fmt.Errorf("policy: write %q: %w", p.Name, err)
	}
	s.invalidate(p.Name)
	return nil
}

// Put stores p under its lowercased, trimmed name. The root,
// response-wrapping and control-group policies cannot be written (400
// `cannot update "root" policy`).
func (s *Store) Put(ctx context.Context, p *Policy) error {
	if p == nil {
		return errors.New("policy: nil policy")
	}
	name := sanitizeName(p.Name)
	if name == "" {
		return logical.BadRequest("policy name must be provided in the URL")
	}
	if immutable(name) {
		return logical.BadRequest("cannot update %q policy", name)
	}
	cp := *p
	cp.Name = name
	return s.write(ctx, &cp)
}

// Delete removes the named policy. root cannot be deleted (400 `cannot
// delete "root" policy`), nor default (400 `cannot delete default
// policy`). Deleting a missing policy succeeds.
func (s *Store) Delete(ctx context.Context, name string) error {
	name = sanitizeName(name)
	if immutable(name) {
		return logical.BadRequest("cannot delete %q policy", name)
	}
	if name == DefaultName {
		return logical.BadRequest("cannot delete default policy")
	}
	if err := s.storage.Delete(ctx, name); err != nil {
		return fmt.Errorf("policy: delete %q: %w", name, err)
	}
	s.invalidate(name)
	return nil
}

// List returns the stored policy names, sorted, with "default" always
// present and "root" appended last, as Vault's sys/policy list does.
// Non-assignable policies are hidden.
func (s *Store) List(ctx context.Context) ([]string, error) {
	keys, err := s.storage.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("policy: list: %w", err)
	}
	out := make([]string, 0, len(keys)+2)
	for _, k := range keys {
		if strings.HasSuffix(k, "/") || k == responseWrappingName || k == controlGroupName || k == RootName {
			continue
		}
		out = append(out, k)
	}
	if !slices.Contains(out, DefaultName) {
		out = append(out, DefaultName)
	}
	sort.Strings(out)
	return append(out, RootName), nil
}

// ACL returns the merged ACL of the named policies, cached by name set
// until the next Put, Delete or Setup. Names are lowercased; unknown names
// are skipped, as Vault does.
func (s *Store) ACL(ctx context.Context, names ...string) (*ACL, error) {
	set := make([]string, 0, len(names))
	for _, n := range names {
		n = sanitizeName(n)
		if n != "" && !slices.Contains(set, n) {
			set = append(set, n)
		}
	}
	sorted := slices.Clone(set)
	sort.Strings(sorted)
	key := strings.Join(sorted, "\x00")

	s.mu.Lock()
	if a, ok := s.acls[key]; ok {
		s.mu.Unlock()
		return a, nil
	}
	gen := s.gen
	s.mu.Unlock()

	pols := make([]*Policy, 0, len(set))
	for _, n := range set {
		p, err := s.Get(ctx, n)
		if errors.Is(err, logical.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pols = append(pols, p)
	}
	a, err := NewACL(pols)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.gen == gen {
		if len(s.acls) >= aclCacheMax {
			s.acls = map[string]*ACL{}
		}
		s.acls[key] = a
	}
	s.mu.Unlock()
	return a, nil
}

func isNotFound(err error) bool { return errors.Is(err, logical.ErrNotFound) }
