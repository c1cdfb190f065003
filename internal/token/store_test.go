package token_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/token"
)

var (
	idRe       = regexp.MustCompile(`^hvs\.[0-9A-Za-z]{24}$`)
	accessorRe = regexp.MustCompile(`^[0-9A-Za-z]{24}$`)
)

func TestIDFormatAndEntropy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	seen := map[string]bool{}
	chars := map[rune]int{}
	const n = 300
	for range n {
		got, err := e.store.Create(ctx, &token.Entry{Policies: []string{"default"}, Path: "auth/token/create"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if !idRe.MatchString(got.ID) {
			t.Fatalf("ID %q does not match %v", got.ID, idRe)
		}
		if !accessorRe.MatchString(got.Accessor) {
			t.Fatalf("accessor %q does not match %v", got.Accessor, accessorRe)
		}
		if seen[got.ID] || seen[got.Accessor] {
			t.Fatalf("duplicate ID or accessor %q/%q", got.ID, got.Accessor)
		}
		seen[got.ID], seen[got.Accessor] = true, true
		for _, c := range strings.TrimPrefix(got.ID, "hvs.") {
			chars[c]++
		}
	}
	// 7200 uniformly drawn characters: every one of the 62 symbols shows up
	// and none dominates (expected ≈116 each).
	if len(chars) != 62 {
		t.Errorf("only %d distinct characters in %d IDs", len(chars), n)
	}
	for c, k := range chars {
		if k > 250 {
			t.Errorf("character %q appears %d times: biased generator", c, k)
		}
	}
}

func TestStorageHoldsOnlyHashes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	child := e.create(t, e.root, map[string]any{"policies": "a"})
	grand := e.create(t, child, map[string]any{"policies": "a"})
	login, err := e.store.Create(ctx, e.store.EntryFromAuth(&logical.Auth{Policies: []string{"aks"}, DisplayName: "oid"}, "auth/azure/"))
	if err != nil {
		t.Fatalf("Create login: %v", err)
	}
	custom, err := e.store.CreateRoot(ctx, "my-dev-root-token")
	if err != nil {
		t.Fatalf("CreateRoot custom: %v", err)
	}
	ids := []string{e.root, child, grand, login.ID, custom.ID}
	for k, v := range allStorage(t, e.storage) {
		for _, id := range ids {
			if strings.Contains(k, id) || strings.Contains(v, id) {
				t.Errorf("token ID found in clear in storage entry %q", k)
			}
			if bare := strings.TrimPrefix(id, "hvs."); strings.Contains(k, bare) || strings.Contains(v, bare) {
				t.Errorf("token ID body found in clear in storage entry %q", k)
			}
		}
		if rest, ok := strings.CutPrefix(k, "id/"); ok && !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(rest) {
			t.Errorf("token key %q is not a 64-hex HMAC", k)
		}
	}
	// The tokens still work, so the hashes are keyed consistently.
	for _, id := range ids {
		if _, err := e.store.Lookup(ctx, id); err != nil {
			t.Errorf("Lookup after scan: %v", err)
		}
	}
}

func TestSaltPersistsAcrossStores(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	again, err := token.NewStore(token.Config{Storage: e.storage, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if _, err = again.Lookup(ctx, e.root); !errors.Is(err, token.ErrNotSetUp) {
		t.Fatalf("Lookup before Setup: got %v, want ErrNotSetUp", err)
	}
	if err = again.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := again.Lookup(ctx, e.root)
	if err != nil {
		t.Fatalf("Lookup root in second store: %v", err)
	}
	if diff := cmp.Diff([]string{"root"}, got.Policies); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
}

func TestLookupAndAccessor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	created, err := e.store.Create(ctx, &token.Entry{Policies: []string{"a", "default"}, Path: "auth/token/create", Meta: map[string]string{"k": "v"}, TTL: time.Hour, Renewable: true})
	if err != nil {
		t.Fatal(err)
	}
	byID, err := e.store.Lookup(ctx, created.ID)
	if err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	byAcc, err := e.store.LookupAccessor(ctx, created.Accessor)
	if err != nil {
		t.Fatalf("LookupAccessor: %v", err)
	}
	want := *created
	want.ID = ""
	if diff := cmp.Diff(&want, byID); diff != "" {
		t.Errorf("Lookup (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want, byAcc); diff != "" {
		t.Errorf("LookupAccessor (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ name, id, acc string }{
		{"empty", "", ""},
		{"unknown", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAA"},
		{"id as accessor", created.Accessor, created.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.store.Lookup(ctx, tc.id); !errors.Is(err, logical.ErrNotFound) {
				t.Errorf("Lookup(%q) = %v, want ErrNotFound", tc.id, err)
			}
			if _, err := e.store.LookupAccessor(ctx, tc.acc); !errors.Is(err, logical.ErrNotFound) {
				t.Errorf("LookupAccessor(%q) = %v, want ErrNotFound", tc.acc, err)
			}
		})
	}
}

func TestCascadeRevocation(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"Revoke", "RevokeAccessor", "http revoke", "http revoke-self", "http revoke-accessor"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			var revoked atomic.Int32
			e := newEnv(t, func(c *token.Config) {
				c.OnRevoke = func(context.Context, *token.Entry) error { revoked.Add(1); return nil }
			})
			ctx := context.Background()
			a := e.create(t, e.root, map[string]any{"policies": "p"})
			b := e.create(t, a, nil)
			c := e.create(t, b, nil)
			sibling := e.create(t, e.root, nil)
			ae, err := e.store.Lookup(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			be, _ := e.store.Lookup(ctx, b)
			if be.Parent != ae.Accessor || be.Orphan {
				t.Fatalf("b.Parent = %q orphan=%v, want %q", be.Parent, be.Orphan, ae.Accessor)
			}
			switch via {
			case "Revoke":
				err = e.store.Revoke(ctx, a)
			case "RevokeAccessor":
				err = e.store.RevokeAccessor(ctx, ae.Accessor)
			case "http revoke":
				_, err = e.do(t, logical.UpdateOperation, "revoke", e.root, map[string]any{"token": a})
			case "http revoke-self":
				_, err = e.do(t, logical.UpdateOperation, "revoke-self", a, nil)
			case "http revoke-accessor":
				_, err = e.do(t, logical.UpdateOperation, "revoke-accessor", e.root, map[string]any{"accessor": ae.Accessor})
			}
			if err != nil {
				t.Fatalf("%s: %v", via, err)
			}
			for name, id := range map[string]string{"a": a, "b": b, "c": c} {
				if _, err := e.store.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
					t.Errorf("%s still valid after revoking a: %v", name, err)
				}
			}
			for name, id := range map[string]string{"root": e.root, "sibling": sibling} {
				if _, err := e.store.Lookup(ctx, id); err != nil {
					t.Errorf("%s revoked too: %v", name, err)
				}
			}
			if got := revoked.Load(); got != 3 {
				t.Errorf("OnRevoke called %d times, want 3", got)
			}
			// Nothing of a, b, c remains: ids are root+sibling, accessors too,
			// and the parent index is empty.
			parents := 0
			for k := range allStorage(t, e.storage) {
				if strings.HasPrefix(k, "parent/") {
					parents++
				}
			}
			if parents != 1 { // root -> sibling
				t.Errorf("%d parent index entries remain, want 1", parents)
			}
			keys, _ := e.storage.List(ctx, "id/")
			if len(keys) != 2 {
				t.Errorf("%d token entries remain, want 2", len(keys))
			}
			acc, _ := e.storage.List(ctx, "accessor/")
			if len(acc) != 2 {
				t.Errorf("%d accessor entries remain, want 2", len(acc))
			}
		})
	}
}

func TestRevokeOrphan(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.create(t, e.root, map[string]any{"policies": "p"})
	b := e.create(t, a, nil)
	c := e.create(t, b, nil)

	// A non-sudo caller is refused.
	other := e.create(t, e.root, map[string]any{"policies": "p"})
	_, err := e.do(t, logical.UpdateOperation, "revoke-orphan", other, map[string]any{"token": a})
	if statusOf(err) != 400 || msgOf(err) != "root or sudo privileges required to revoke and orphan" {
		t.Fatalf("non-sudo revoke-orphan: %d %q", statusOf(err), msgOf(err))
	}
	if _, err = e.do(t, logical.UpdateOperation, "revoke-orphan", e.root, map[string]any{"token": a}); err != nil {
		t.Fatalf("revoke-orphan: %v", err)
	}
	if _, err = e.store.Lookup(ctx, a); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("a still valid: %v", err)
	}
	be, err := e.store.Lookup(ctx, b)
	if err != nil {
		t.Fatalf("b revoked: %v", err)
	}
	if !be.Orphan || be.Parent != "" {
		t.Errorf("b: orphan=%v parent=%q, want orphan", be.Orphan, be.Parent)
	}
	ce, err := e.store.Lookup(ctx, c)
	if err != nil {
		t.Fatalf("c revoked: %v", err)
	}
	if ce.Parent != be.Accessor {
		t.Errorf("c.Parent = %q, want b's accessor", ce.Parent)
	}
	resp, err := e.do(t, logical.UpdateOperation, "lookup", e.root, map[string]any{"token": b})
	if err != nil || resp.Data["orphan"] != true {
		t.Errorf("lookup b: orphan=%v err=%v", resp.Data["orphan"], err)
	}
	// b still cascades to c.
	if err := e.store.Revoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Lookup(ctx, c); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("c survives its new parent's revocation: %v", err)
	}
	// The HasSudo hook grants revoke-orphan to non-root callers.
	e2 := newEnv(t, func(c *token.Config) {
		c.HasSudo = func(_ context.Context, pols []string, path string) bool {
			return path == "auth/token/revoke-orphan" && len(pols) > 0 && pols[0] == "admin"
		}
	})
	admin := e2.create(t, e2.root, map[string]any{"policies": "admin"})
	victim := e2.create(t, e2.root, nil)
	if _, err := e2.do(t, logical.UpdateOperation, "revoke-orphan", admin, map[string]any{"token": victim}); err != nil {
		t.Errorf("sudo revoke-orphan: %v", err)
	}
}

func TestNumUses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create(t, e.root, map[string]any{"policies": "p", "num_uses": 2})
	use := func() error {
		te, err := e.store.Lookup(ctx, id)
		if err != nil {
			return err
		}
		return e.store.Use(ctx, te)
	}
	if err := use(); err != nil {
		t.Fatalf("use 1: %v", err)
	}
	resp, err := e.do(t, logical.ReadOperation, "lookup-self", id, nil)
	if err != nil || resp.Data["num_uses"] != 1 {
		t.Fatalf("after one use: num_uses=%v err=%v", resp.Data["num_uses"], err)
	}
	// A limited-use token cannot create children.
	_, err = e.do(t, logical.UpdateOperation, "create", id, nil)
	if statusOf(err) != 400 || msgOf(err) != "restricted use token cannot generate child tokens" {
		t.Errorf("child of limited token: %d %q", statusOf(err), msgOf(err))
	}
	if err := use(); err != nil {
		t.Fatalf("use 2: %v", err)
	}
	// The request that consumed the last use still completes...
	if _, err := e.do(t, logical.ReadOperation, "lookup-self", id, nil); err != nil {
		t.Errorf("lookup-self in the last request: %v", err)
	}
	// ...but the token is gone afterwards.
	if err := use(); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("third use: %v, want ErrNotFound", err)
	}
	if _, err := e.do(t, logical.UpdateOperation, "lookup", e.root, map[string]any{"token": id}); statusOf(err) != 403 {
		t.Errorf("lookup of exhausted token: %d, want 403", statusOf(err))
	}
}

func TestNumUsesConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create(t, e.root, map[string]any{"num_uses": 5})
	te, err := e.store.Lookup(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			cp := *te
			if err := e.store.Use(ctx, &cp); err == nil {
				ok.Add(1)
			} else if !errors.Is(err, logical.ErrPermissionDenied) {
				t.Errorf("Use: %v", err)
			}
		})
	}
	wg.Wait()
	if got := ok.Load(); got != 5 {
		t.Errorf("%d uses succeeded, want 5", got)
	}
	if n, err := e.store.Tidy(ctx); err != nil || n != 1 {
		t.Errorf("Tidy = %d, %v; want 1 exhausted token revoked", n, err)
	}
	if _, err := e.store.LookupAccessor(ctx, te.Accessor); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("exhausted token survives Tidy: %v", err)
	}
}

func TestExpiryAndTidy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	short := e.create(t, e.root, map[string]any{"ttl": "1h"})
	child := e.create(t, short, map[string]any{"ttl": "5h"})
	long := e.create(t, e.root, map[string]any{"ttl": "2h"})
	lazy := e.create(t, e.root, map[string]any{"ttl": "30m"})

	e.clock.Advance(59 * time.Minute)
	resp, err := e.do(t, logical.ReadOperation, "lookup-self", short, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"ttl": int64(60), "expire_time": epoch.Add(time.Hour), "creation_ttl": int64(3600)},
		map[string]any{"ttl": resp.Data["ttl"], "expire_time": resp.Data["expire_time"], "creation_ttl": resp.Data["creation_ttl"]}); diff != "" {
		t.Errorf("lookup before expiry (-want +got):\n%s", diff)
	}
	if n, terr := e.store.Tidy(ctx); terr != nil || n != 1 { // only "lazy" (30m) has expired
		t.Fatalf("Tidy at 59m = %d, %v; want 1", n, terr)
	}
	e.clock.Advance(time.Minute) // exactly at expiry
	if _, err = e.store.Lookup(ctx, lazy); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("lazy: %v", err)
	}
	n, err := e.store.Tidy(ctx)
	if err != nil || n != 2 { // short + its child
		t.Fatalf("Tidy at 60m = %d, %v; want 2", n, err)
	}
	for name, id := range map[string]string{"short": short, "child": child} {
		if _, err := e.store.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("%s still valid: %v", name, err)
		}
	}
	if _, err := e.store.Lookup(ctx, long); err != nil {
		t.Errorf("long revoked early: %v", err)
	}
	// Lazy revocation on lookup, without Tidy.
	e.clock.Advance(2 * time.Hour)
	if _, err := e.store.Lookup(ctx, long); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("long after expiry: %v", err)
	}
	if keys, _ := e.storage.List(ctx, "id/"); len(keys) != 1 {
		t.Errorf("%d token entries left, want only root", len(keys))
	}
	if _, err := e.store.Lookup(ctx, e.root); err != nil {
		t.Errorf("root expired: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.store.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestRevokeRacingUseAndRenew(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	for range 30 {
		id := e.create(t, e.root, map[string]any{"num_uses": 1000, "ttl": "1h"})
		te, err := e.store.Lookup(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 20 {
				cp := *te
				_ = e.store.Use(ctx, &cp)         // fails once revoked
				_, _ = e.store.Renew(ctx, &cp, 0) // likewise
			}
		})
		if err := e.store.Revoke(ctx, id); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := e.store.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
			t.Fatalf("revoked token resurrected by a concurrent Use/Renew: %v", err)
		}
	}
}

// TestChildOfExpiredParentRefused checks that a token stops working as
// soon as an ancestor expires, without waiting for Tidy.
func TestChildOfExpiredParentRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	parent := e.create(t, e.root, map[string]any{"ttl": "1h"})
	child := e.create(t, parent, map[string]any{"ttl": "5h"})
	grandchild := e.create(t, child, map[string]any{"ttl": "5h"})
	sibling := e.create(t, e.root, map[string]any{"ttl": "5h"})

	e.clock.Advance(30 * time.Minute)
	for name, id := range map[string]string{"child": child, "grandchild": grandchild} {
		if _, err := e.store.Lookup(ctx, id); err != nil {
			t.Fatalf("%s before the parent expired: %v", name, err)
		}
	}
	e.clock.Advance(31 * time.Minute)
	for name, id := range map[string]string{"grandchild": grandchild, "child": child} {
		if _, err := e.store.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("%s after the parent expired: %v, want not found", name, err)
		}
		if _, err := e.do(t, logical.ReadOperation, "lookup-self", id, nil); statusOf(err) != 403 {
			t.Errorf("%s lookup-self after the parent expired: %v, want 403", name, err)
		}
	}
	if _, err := e.store.Lookup(ctx, sibling); err != nil {
		t.Errorf("unrelated token: %v", err)
	}
	if keys, _ := e.storage.List(ctx, "id/"); len(keys) != 2 {
		t.Errorf("%d token entries left, want root and sibling", len(keys))
	}
}
