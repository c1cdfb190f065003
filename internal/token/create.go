package token

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// Token ID format (Vault ≥ 1.10 service tokens, short form).
const (
	// ServicePrefix starts every generated token ID.
	ServicePrefix = "hvs."
	// RandomLength is the number of base62 characters after the prefix and
	// in an accessor (≈143 bits of entropy).
	RandomLength = 24
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomBase62 returns n uniformly random base62 characters read from r
// (rejection sampling, no modulo bias).
func randomBase62(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("token: reading randomness: %w", err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62
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

// SanitizePolicies trims, lowercases, drops empty names, sorts and
// de-duplicates policies, as Vault does. A list containing "root" becomes
// ["root"]. When addDefault is set, "default" is added unless the result is
// ["root"].
func SanitizePolicies(policies []string, addDefault bool) []string {
	out := make([]string, 0, len(policies)+1)
	for _, p := range policies {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if p == "root" {
			return []string{"root"}
		}
		out = append(out, p)
	}
	if addDefault {
		out = append(out, "default")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// CalculateTTL is Vault's lease TTL calculation (framework.CalculateTTL):
// the effective max is the system max lowered by backendMaxTTL and
// explicitMaxTTL; a period wins over increment/backendTTL/system default;
// the result is capped to what is left until start+max (start+explicit max
// for periodic tokens). All times are truncated to the second. It returns
// the TTL and Vault's warnings; a lease past its max gives a 400 error.
func CalculateTTL(now time.Time, sys logical.SystemView, increment, backendTTL, period, backendMaxTTL, explicitMaxTTL time.Duration, start time.Time) (time.Duration, []string, error) {
	now = now.Truncate(time.Second)
	if start.IsZero() {
		start = now
	} else {
		start = start.Truncate(time.Second)
	}
	sysMax, sysDefault := DefaultMaxTTL, DefaultLeaseTTL
	if sys != nil {
		sysMax, sysDefault = sys.MaxLeaseTTL(), sys.DefaultLeaseTTL()
	}
	maxTTL := sysMax
	if backendMaxTTL > 0 && backendMaxTTL < maxTTL {
		maxTTL = backendMaxTTL
	}
	if explicitMaxTTL > 0 && explicitMaxTTL < maxTTL {
		maxTTL = explicitMaxTTL
	}
	if maxTTL <= 0 {
		return 0, nil, errors.New("token: max TTL must be greater than zero")
	}
	var (
		ttl      time.Duration
		warnings []string
		maxValid time.Time
	)
	if period > 0 {
		if period > maxTTL {
			warnings = append(warnings, fmt.Sprintf("period of %q exceeded the effective max_ttl of %q; period value is capped accordingly", humanDuration(period), humanDuration(maxTTL)))
			period = maxTTL
		}
		ttl = period
		if explicitMaxTTL > 0 {
			maxValid = start.Add(explicitMaxTTL)
		}
	} else {
		switch {
		case increment > 0:
			ttl = increment
		case backendTTL > 0:
			ttl = backendTTL
		default:
			ttl = sysDefault
		}
		maxValid = start.Add(maxTTL)
	}
	if !maxValid.IsZero() {
		left := maxValid.Sub(now)
		if left <= 0 {
			return 0, nil, logical.BadRequest("past the max TTL, cannot renew")
		}
		if maxValid.Before(now.Add(ttl)) {
			warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", humanDuration(ttl), humanDuration(left)))
			ttl = left
		}
	}
	return ttl, warnings, nil
}

// humanDuration formats d as Vault does in warnings ("768h", "1h30m").
func humanDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Create stores a new token built from e and returns it with its ID. If
// e.ID is empty a random "hvs." ID is generated; an accessor is always
// generated. Zero CreationTime, Type, DisplayName and MountType are filled;
// the TTL is computed with Vault's rules (root tokens without TTL or period
// never expire); e.Parent, when set, is the parent's accessor and must name
// a live token. e itself is not modified.
func (s *Store) Create(ctx context.Context, e *Entry) (*Entry, error) {
	out, _, err := s.create(ctx, e)
	return out, err
}

func (s *Store) create(ctx context.Context, in *Entry) (*Entry, []string, error) {
	if in == nil {
		return nil, nil, errors.New("token: nil entry")
	}
	if s.key.Load() == nil {
		return nil, nil, ErrNotSetUp
	}
	e := *in
	e.Policies = slices.Clone(in.Policies)
	if e.NumUses < 0 {
		return nil, nil, logical.BadRequest("number of uses cannot be negative")
	}
	now := s.now()
	if e.CreationTime.IsZero() {
		e.CreationTime = now
	}
	if e.Type == "" {
		e.Type = TypeService
	}
	if e.DisplayName == "" {
		e.DisplayName = "token"
	}
	if e.MountType == "" {
		e.MountType = "token"
	}
	var warnings []string
	isRoot := slices.Contains(e.Policies, "root")
	if isRoot && !strings.HasPrefix(e.Path, "auth/token/") {
		return nil, nil, logical.BadRequest("auth methods cannot create root tokens")
	}
	if e.Period > 0 || e.TTL > 0 || !isRoot {
		ttl, w, err := CalculateTTL(now, s.system(e.Path), 0, e.TTL, e.Period, e.MaxTTL, e.ExplicitMaxTTL, e.CreationTime)
		if err != nil {
			return nil, nil, err
		}
		warnings = w
		e.TTL = ttl
	}
	if e.TTL == 0 && e.ExplicitMaxTTL > 0 {
		e.TTL = e.ExplicitMaxTTL
	}
	e.ExpireTime = time.Time{}
	if e.TTL > 0 {
		e.ExpireTime = e.CreationTime.Add(e.TTL)
	} else {
		e.Renewable = false
	}
	e.Orphan = e.Parent == ""
	if e.ID == "" {
		r, err := randomBase62(s.rand, RandomLength)
		if err != nil {
			return nil, nil, err
		}
		e.ID = ServicePrefix + r
	}
	acc, err := randomBase62(s.rand, RandomLength)
	if err != nil {
		return nil, nil, err
	}
	e.Accessor = acc
	h, err := s.hash(e.ID)
	if err != nil {
		return nil, nil, err
	}
	ah, err := s.hash(e.Accessor)
	if err != nil {
		return nil, nil, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err = s.cfg.Storage.Get(ctx, idPrefix+h); err == nil {
		return nil, nil, logical.BadRequest("cannot create a token with a duplicate ID")
	} else if !errors.Is(err, logical.ErrNotFound) {
		return nil, nil, fmt.Errorf("token: checking for duplicate: %w", err)
	}
	var parentKey string
	if e.Parent != "" {
		var ph string
		ph, err = s.hashByAccessor(ctx, e.Parent)
		if err != nil {
			if errors.Is(err, logical.ErrNotFound) {
				return nil, nil, logical.BadRequest("parent token not found")
			}
			return nil, nil, err
		}
		// s.load, not lookupHash: revoking an expired parent here would
		// need mu, which we hold.
		var pe *Entry
		pe, err = s.load(ctx, ph)
		if errors.Is(err, logical.ErrNotFound) || (err == nil && expired(pe, now)) {
			return nil, nil, logical.BadRequest("parent token not found")
		}
		if err != nil {
			return nil, nil, err
		}
		var pah string
		pah, err = s.hash(e.Parent)
		if err != nil {
			return nil, nil, err
		}
		parentKey = parentPrefix + pah + "/" + h
		// Index first: a crash leaves at worst a dangling index entry that
		// Tidy removes, never an un-revocable child.
		if err = s.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: parentKey, Value: []byte("{}")}); err != nil {
			return nil, nil, fmt.Errorf("token: storing parent index: %w", err)
		}
	}
	av, err := jsonMarshal(accessorRecord{Accessor: e.Accessor, Hash: h})
	if err != nil {
		return nil, nil, err
	}
	if err := s.cfg.Storage.Put(ctx, &logical.StorageEntry{Key: accessorPrefix + ah, Value: av}); err != nil {
		return nil, nil, fmt.Errorf("token: storing accessor: %w", err)
	}
	if err := s.put(ctx, h, &e); err != nil {
		return nil, nil, err
	}
	return &e, warnings, nil
}

// CreateRoot creates a root token: policies ["root"], path
// "auth/token/root", display name "root", orphan, no TTL, not renewable.
// id "" generates a random ID; otherwise id is used as is (dev mode's
// -dev-root-token-id).
func (s *Store) CreateRoot(ctx context.Context, id string) (*Entry, error) {
	return s.Create(ctx, &Entry{
		ID:          id,
		Policies:    []string{"root"},
		Path:        "auth/token/root",
		DisplayName: "root",
		MountType:   "token",
		NoLease:     true,
	})
}

// EntryFromAuth builds the entry of a login token from an auth method's
// Auth for core to Create. mountPath is the auth mount with its trailing
// slash, e.g. "auth/azure/". Policies are sanitized with "default" added;
// the display name is the mount path without "auth/", "/" replaced by "-",
// plus the auth's DisplayName ("azure-<oid>"). Login tokens are orphans.
// A "root" policy is rejected by Create (400 "auth methods cannot create
// root tokens").
func (s *Store) EntryFromAuth(auth *logical.Auth, mountPath string) *Entry {
	if auth == nil {
		return &Entry{Path: mountPath + "login"}
	}
	mount := strings.TrimPrefix(mountPath, "auth/")
	display := strings.ReplaceAll(mount, "/", "-") + auth.DisplayName
	display = strings.TrimSuffix(display, "-")
	e := &Entry{
		Policies:       SanitizePolicies(slices.Clone(auth.Policies), !auth.NoDefaultPolicy),
		Path:           mountPath + "login",
		Meta:           cloneMeta(auth.Metadata),
		DisplayName:    display,
		NumUses:        auth.NumUses,
		TTL:            auth.TTL,
		MaxTTL:         auth.MaxTTL,
		ExplicitMaxTTL: auth.ExplicitMaxTTL,
		Period:         auth.Period,
		Renewable:      auth.Renewable,
		Type:           TypeService,
		EntityID:       auth.EntityID,
		InternalData:   auth.InternalData,
		MountType:      auth.MountType,
		BoundCIDRs:     slices.Clone(auth.BoundCIDRs),
	}
	if auth.Alias != nil {
		e.Alias = auth.Alias.Name
	}
	return e
}

func cloneMeta(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
