package lease_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/lease"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
	"github.com/keyward/keyward/internal/storage/inmem"
	"github.com/keyward/keyward/internal/token"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type sysView struct{ def, max time.Duration }

func (v sysView) DefaultLeaseTTL() time.Duration { return v.def }
func (v sysView) MaxLeaseTTL() time.Duration     { return v.max }

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type env struct {
	tokens  *token.Store
	mgr     *lease.Manager
	sys     *framework.Backend
	clock   *fakeClock
	mu      sync.Mutex
	revoked []string // secret lease IDs handed to RevokeSecret
	failOn  string   // RevokeSecret fails for this lease ID
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{clock: &fakeClock{now: epoch}}
	var mgr *lease.Manager
	tokens, err := token.NewStore(token.Config{
		Storage:  inmem.New(),
		Clock:    e.clock,
		System:   sysView{def: 768 * time.Hour, max: 768 * time.Hour},
		OnRevoke: func(ctx context.Context, te *token.Entry) error { return mgr.RevokeByToken(ctx, te) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err = tokens.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	mgr, err = lease.NewManager(lease.Config{
		Storage: inmem.New(),
		Clock:   e.clock,
		Tokens:  tokens,
		System: func(path string) logical.SystemView {
			if strings.HasPrefix(path, "db/") {
				return sysView{def: time.Hour, max: 3 * time.Hour}
			}
			return nil
		},
		RevokeSecret: func(_ context.Context, l *lease.Lease) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if l.ID == e.failOn {
				return errors.New("backend down")
			}
			e.revoked = append(e.revoked, l.ID)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	sys := &framework.Backend{Paths: mgr.Paths(), Special: &logical.Paths{Root: lease.SudoPaths}}
	if err := sys.Compile(); err != nil {
		t.Fatal(err)
	}
	e.tokens, e.mgr, e.sys = tokens, mgr, sys
	return e
}

func (e *env) revokedIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(e.revoked)
	slices.Sort(out)
	return out
}

func (e *env) do(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return e.sys.HandleRequest(context.Background(), &logical.Request{
		Operation: op, Path: path, MountPoint: "sys/", Data: data,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
}

func (e *env) login(t *testing.T) (*token.Entry, string) {
	t.Helper()
	ctx := context.Background()
	te, err := e.tokens.Create(ctx, e.tokens.EntryFromAuth(&logical.Auth{
		LeaseOptions: logical.LeaseOptions{TTL: time.Hour, Renewable: true},
		Policies:     []string{"aks"}, DisplayName: "oid",
	}, "auth/azure/"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := e.mgr.RegisterAuth(ctx, "auth/azure/login", te)
	if err != nil {
		t.Fatal(err)
	}
	return te, id
}

func (e *env) secret(t *testing.T, path, accessor string, s *logical.Secret) string {
	t.Helper()
	id, err := e.mgr.RegisterSecret(context.Background(), path, accessor, s)
	if err != nil {
		t.Fatalf("RegisterSecret(%q): %v", path, err)
	}
	return id
}

func statusOf(err error) int {
	var ce *logical.CodedError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &ce):
		return ce.Status
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405
	default:
		return 500
	}
}

func msgOf(err error) string {
	var ce *logical.CodedError
	if errors.As(err, &ce) {
		return ce.Msg
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestAuthLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	te, id := e.login(t)
	if !strings.HasPrefix(id, "auth/azure/login/") || len(id) <= len("auth/azure/login/")+20 {
		t.Fatalf("lease ID %q", id)
	}
	if strings.Contains(id, te.ID) || strings.Contains(id, te.Accessor) {
		t.Fatalf("lease ID %q reveals the token or accessor", id)
	}
	// Re-registering the same token is idempotent.
	if again, err := e.mgr.RegisterAuth(ctx, "", te); err != nil || again != id {
		t.Errorf("re-register: %q %v, want %q", again, err, id)
	}

	e.clock.Advance(10 * time.Minute)
	resp, err := e.do(t, logical.UpdateOperation, "leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": id, "issue_time": epoch, "expire_time": epoch.Add(time.Hour), "last_renewal": nil, "ttl": int64(3000), "renewable": true}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("lookup (-want +got):\n%s", diff)
	}
	// Renewing the token moves the lease.
	if _, err = e.tokens.Renew(ctx, te, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	resp, err = e.do(t, logical.UpdateOperation, "leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		t.Fatal(err)
	}
	want["expire_time"], want["last_renewal"], want["ttl"] = e.clock.Now().Add(2*time.Hour), e.clock.Now(), int64(7200)
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("lookup after token renewal (-want +got):\n%s", diff)
	}
	// ...and Tidy at the original expiry leaves it alone.
	e.clock.Advance(55 * time.Minute)
	if n, terr := e.mgr.Tidy(ctx); terr != nil || n != 0 {
		t.Errorf("Tidy = %d, %v; want 0", n, terr)
	}
	// Tokens are renewed through auth/token, not sys/leases.
	_, err = e.do(t, logical.UpdateOperation, "leases/renew", map[string]any{"lease_id": id})
	if statusOf(err) != 400 || msgOf(err) != "tokens cannot be renewed through this endpoint" {
		t.Errorf("renew auth lease: %d %q", statusOf(err), msgOf(err))
	}
	// Revoking the lease revokes the token.
	if _, err := e.do(t, logical.UpdateOperation, "leases/revoke", map[string]any{"lease_id": id}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.tokens.LookupAccessor(ctx, te.Accessor); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("token survives its lease: %v", err)
	}
	if _, err := e.mgr.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("lease survives revocation: %v", err)
	}
}

func TestTokenRevocationRevokesLeases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	te, authID := e.login(t)
	s1 := e.secret(t, "db/creds/ro", te.Accessor, &logical.Secret{LeaseOptions: logical.LeaseOptions{Renewable: true}})
	s2 := e.secret(t, "db/creds/rw", te.Accessor, &logical.Secret{})
	other, _ := e.login(t)
	s3 := e.secret(t, "db/creds/ro", other.Accessor, &logical.Secret{})

	if err := e.tokens.RevokeAccessor(ctx, te.Accessor); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted(s1, s2), e.revokedIDs()); diff != "" {
		t.Errorf("secrets revoked with the token (-want +got):\n%s", diff)
	}
	for _, id := range []string{authID, s1, s2} {
		if _, err := e.mgr.Lookup(ctx, id); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("lease %q survives: %v", id, err)
		}
	}
	if _, err := e.mgr.Lookup(ctx, s3); err != nil {
		t.Errorf("other token's lease revoked: %v", err)
	}
	// Token expiry (token store Tidy) takes its leases along too.
	e.clock.Advance(2 * time.Hour)
	if _, err := e.tokens.Tidy(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted(s1, s2, s3), e.revokedIDs()); diff != "" {
		t.Errorf("after token expiry (-want +got):\n%s", diff)
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

func TestSecretLeaseLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	te, err := e.tokens.Create(ctx, &token.Entry{Policies: []string{"p"}, Path: "auth/token/create", TTL: 10 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	sec := &logical.Secret{LeaseOptions: logical.LeaseOptions{TTL: 30 * time.Minute, MaxTTL: 2 * time.Hour, Renewable: true}, InternalData: map[string]any{"user": "v-1"}}
	id := e.secret(t, "/db/creds/ro/", te.Accessor, sec)
	if !strings.HasPrefix(id, "db/creds/ro/") || sec.LeaseID != id || sec.TTL != 30*time.Minute || !sec.IssueTime.Equal(epoch) {
		t.Fatalf("lease %q secret %+v", id, sec)
	}
	defTTL := e.secret(t, "db/creds/ro", te.Accessor, &logical.Secret{})
	if l, lerr := e.mgr.Lookup(ctx, defTTL); lerr != nil || !l.ExpireTime.Equal(epoch.Add(time.Hour)) {
		t.Errorf("mount default TTL: %+v %v", l, lerr)
	}
	capped := &logical.Secret{LeaseOptions: logical.LeaseOptions{TTL: 10 * time.Hour}}
	e.secret(t, "db/creds/ro", te.Accessor, capped)
	if capped.TTL != 3*time.Hour {
		t.Errorf("TTL over mount max: %v, want 3h", capped.TTL)
	}
	if got, rerr := e.mgr.RegisterSecret(ctx, "kv/x", te.Accessor, &logical.Secret{NoLease: true}); rerr != nil || got != "" {
		t.Errorf("NoLease: %q %v", got, rerr)
	}

	steps := []struct {
		name     string
		advance  time.Duration
		path     string
		data     map[string]any
		wantTTL  time.Duration
		wantWarn bool
	}{
		{"renew default", 20 * time.Minute, "leases/renew", map[string]any{"lease_id": id}, 30 * time.Minute, false},
		{"renew increment", 20 * time.Minute, "leases/renew/" + id, map[string]any{"increment": "1h"}, time.Hour, false},
		{"renew capped by max", 50 * time.Minute, "renew", map[string]any{"lease_id": id, "increment": 7200}, 30 * time.Minute, true},
	}
	for _, st := range steps {
		e.clock.Advance(st.advance)
		var resp *logical.Response
		resp, err = e.do(t, logical.UpdateOperation, st.path, st.data)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want := &logical.Secret{LeaseID: id, LeaseOptions: logical.LeaseOptions{TTL: st.wantTTL, MaxTTL: 2 * time.Hour, Renewable: true, IssueTime: epoch}}
		if diff := cmp.Diff(want, resp.Secret); diff != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, diff)
		}
		if (len(resp.Warnings) > 0) != st.wantWarn {
			t.Errorf("%s: warnings %q", st.name, resp.Warnings)
		}
	}
	resp, err := e.do(t, logical.UpdateOperation, "leases/lookup", map[string]any{"lease_id": id})
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	want := map[string]any{"id": id, "issue_time": epoch, "expire_time": now.Add(30 * time.Minute), "last_renewal": now, "ttl": int64(1800), "renewable": true}
	if diff := cmp.Diff(want, resp.Data); diff != "" {
		t.Errorf("lookup (-want +got):\n%s", diff)
	}
	// Past the max TTL: expired, so renew fails and Tidy revokes it.
	e.clock.Advance(30 * time.Minute)
	_, err = e.do(t, logical.UpdateOperation, "leases/renew", map[string]any{"lease_id": id})
	if statusOf(err) != 400 || msgOf(err) != "lease expired" {
		t.Errorf("renew expired: %d %q", statusOf(err), msgOf(err))
	}
	n, err := e.mgr.Tidy(ctx)
	if err != nil || n != 2 { // id (2h) and defTTL (1h); capped lives until 3h
		t.Errorf("Tidy = %d, %v; want 2", n, err)
	}
	if !slices.Contains(e.revokedIDs(), id) {
		t.Errorf("RevokeSecret not called for %q: %q", id, e.revokedIDs())
	}
}

func TestLeaseErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	te, _ := e.login(t)
	fixed := e.secret(t, "db/creds/ro", te.Accessor, &logical.Secret{LeaseOptions: logical.LeaseOptions{Renewable: false}})
	tests := []struct {
		name string
		op   logical.Operation
		path string
		data map[string]any
		code int
		msg  string
	}{
		{"lookup without id", logical.UpdateOperation, "leases/lookup", nil, 400, "lease_id must be specified"},
		{"lookup unknown", logical.UpdateOperation, "leases/lookup", map[string]any{"lease_id": "db/creds/ro/nope"}, 400, "invalid lease"},
		{"lookup traversal", logical.UpdateOperation, "leases/lookup", map[string]any{"lease_id": "db/../../x"}, 400, "invalid lease"},
		{"renew without id", logical.UpdateOperation, "leases/renew", nil, 400, "lease_id must be specified"},
		{"renew unknown", logical.UpdateOperation, "leases/renew", map[string]any{"lease_id": "db/creds/ro/nope"}, 400, "lease not found"},
		{"renew not renewable", logical.UpdateOperation, "leases/renew", map[string]any{"lease_id": fixed}, 400, "lease is not renewable"},
		{"renew bad increment", logical.UpdateOperation, "leases/renew", map[string]any{"lease_id": fixed, "increment": "lots"}, 400, ""},
		{"revoke without id", logical.UpdateOperation, "leases/revoke", nil, 400, "lease_id must be specified"},
		{"revoke-prefix traversal", logical.UpdateOperation, "leases/revoke-prefix/a/../b", nil, 400, `invalid prefix "a/../b"`},
		{"lookup is not readable", logical.ReadOperation, "leases/lookup", nil, 405, ""},
		{"unknown path", logical.UpdateOperation, "leases/frob", nil, 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.do(t, tc.op, tc.path, tc.data)
			if statusOf(err) != tc.code || (tc.msg != "" && msgOf(err) != tc.msg) {
				t.Errorf("got %d %q, want %d %q", statusOf(err), msgOf(err), tc.code, tc.msg)
			}
		})
	}
	// Revoking an unknown lease succeeds with no content.
	for _, p := range []string{"leases/revoke", "revoke"} {
		if resp, err := e.do(t, logical.UpdateOperation, p, map[string]any{"lease_id": "db/creds/ro/nope"}); err != nil || resp != nil {
			t.Errorf("%s unknown: %v %v", p, resp, err)
		}
	}
	if _, err := lease.NewManager(lease.Config{Storage: inmem.New()}); err == nil {
		t.Error("NewManager without Tokens succeeded")
	}
	if _, err := e.mgr.RegisterAuth(context.Background(), "auth/x/login", nil); err == nil {
		t.Error("RegisterAuth(nil) succeeded")
	}
}

func TestRevokePrefixAndList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	te, authID := e.login(t)
	var ro []string
	for range 3 {
		ro = append(ro, e.secret(t, "db/creds/ro", te.Accessor, &logical.Secret{}))
	}
	rw := e.secret(t, "db/creds/rw", te.Accessor, &logical.Secret{})
	rox := e.secret(t, "db/creds/rox", te.Accessor, &logical.Secret{})

	resp, err := e.do(t, logical.ListOperation, "leases/lookup/db/creds/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ro/", "rox/", "rw/"}, resp.Data["keys"]); diff != "" {
		t.Errorf("list db/creds/ (-want +got):\n%s", diff)
	}
	resp, err = e.do(t, logical.ListOperation, "leases/lookup/db/creds/ro", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wantKeys []string
	for _, id := range ro {
		wantKeys = append(wantKeys, strings.TrimPrefix(id, "db/creds/ro/"))
	}
	slices.Sort(wantKeys)
	if diff := cmp.Diff(wantKeys, resp.Data["keys"]); diff != "" {
		t.Errorf("list db/creds/ro (-want +got):\n%s", diff)
	}
	resp, err = e.do(t, logical.ListOperation, "leases/lookup/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"auth/", "db/"}, resp.Data["keys"]); diff != "" {
		t.Errorf("list root (-want +got):\n%s", diff)
	}

	// "db/creds/ro" must not take "db/creds/rox" along.
	if _, err = e.do(t, logical.UpdateOperation, "leases/revoke-prefix/db/creds/ro", nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sorted(ro...), e.revokedIDs()); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}
	for _, id := range []string{rw, rox, authID} {
		if _, err = e.mgr.Lookup(ctx, id); err != nil {
			t.Errorf("%q revoked by prefix: %v", id, err)
		}
	}
	// A failing backend stops revoke-prefix but not revoke-force.
	e.failOn = rw
	if _, err = e.do(t, logical.UpdateOperation, "revoke-prefix/db", nil); err == nil {
		t.Error("revoke-prefix with a failing backend succeeded")
	}
	if _, err = e.mgr.Lookup(ctx, rw); err != nil {
		t.Errorf("failed revocation forgot the lease: %v", err)
	}
	if _, err = e.do(t, logical.UpdateOperation, "leases/revoke-force/db", nil); err != nil {
		t.Fatalf("revoke-force: %v", err)
	}
	if _, err = e.mgr.Lookup(ctx, rw); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("revoke-force left %q: %v", rw, err)
	}
	// Revoking the auth prefix revokes the login token.
	if n, rerr := e.mgr.RevokePrefix(ctx, "auth/azure/", false); rerr != nil || n != 1 {
		t.Errorf("RevokePrefix(auth/azure/) = %d, %v", n, rerr)
	}
	if _, err = e.tokens.LookupAccessor(ctx, te.Accessor); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("login token survives revoke-prefix: %v", err)
	}
	resp, err = e.do(t, logical.UpdateOperation, "leases/tidy", nil)
	if err != nil || resp.StatusCode != 202 {
		t.Errorf("tidy: %+v %v", resp, err)
	}
	if diff := cmp.Diff([]string{"leases/lookup/*", "leases/revoke-prefix/*", "leases/revoke-force/*", "revoke-prefix/*", "revoke-force/*"}, lease.SudoPaths); diff != "" {
		t.Errorf("SudoPaths (-want +got):\n%s", diff)
	}
}

func TestTidyOrphanedSecretLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	// A secret whose token vanished without the OnRevoke hook (e.g. a
	// crash between the two) is revoked by Tidy.
	bare, err := token.NewStore(token.Config{Storage: inmem.New(), Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err = bare.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	te, err := e.tokens.Create(ctx, &token.Entry{Policies: []string{"p"}, Path: "auth/token/create"})
	if err != nil {
		t.Fatal(err)
	}
	id := e.secret(t, "db/creds/ro", te.Accessor, &logical.Secret{})
	ghost := e.secret(t, "db/creds/ro", "no-such-accessor", &logical.Secret{})
	if n, err := e.mgr.Tidy(ctx); err != nil || n != 1 {
		t.Fatalf("Tidy = %d, %v; want 1", n, err)
	}
	if diff := cmp.Diff([]string{ghost}, e.revokedIDs()); diff != "" {
		t.Errorf("revoked (-want +got):\n%s", diff)
	}
	if _, err := e.mgr.Lookup(ctx, id); err != nil {
		t.Errorf("live token's lease revoked: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.mgr.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
