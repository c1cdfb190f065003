package token_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/token"
)

func TestRenew(t *testing.T) {
	t.Parallel()
	type step struct {
		advance   time.Duration
		increment any // nil: no increment field
		wantTTL   time.Duration
		wantCode  int // 0: success
		wantMsg   string
		wantWarn  bool
	}
	tests := []struct {
		name   string
		sys    sysView
		create map[string]any
		steps  []step
	}{
		{
			name:   "increment within max",
			create: map[string]any{"ttl": "1h"},
			steps: []step{
				{advance: 30 * time.Minute, increment: "2h", wantTTL: 2 * time.Hour},
				{advance: time.Hour, wantTTL: time.Hour}, // no increment: creation TTL
			},
		},
		{
			name:   "explicit_max_ttl caps",
			create: map[string]any{"ttl": "1h", "explicit_max_ttl": "2h"},
			steps: []step{
				{advance: 50 * time.Minute, increment: "3h", wantTTL: 70 * time.Minute, wantWarn: true},
				{advance: 69 * time.Minute, increment: 3600, wantTTL: time.Minute, wantWarn: true},
				{advance: 2 * time.Minute, wantCode: 400, wantMsg: "token not found"}, // expired: lookup fails
			},
		},
		{
			name:   "mount max_ttl caps",
			sys:    sysView{def: time.Hour, max: 2 * time.Hour},
			create: map[string]any{"policies": "p", "ttl": "2h"},
			steps: []step{
				{advance: 90 * time.Minute, increment: "1h", wantTTL: 30 * time.Minute, wantWarn: true},
			},
		},
		{
			name:   "period renews to period forever",
			sys:    sysView{def: time.Hour, max: 2 * time.Hour},
			create: map[string]any{"period": "1h"},
			steps: []step{
				{advance: 50 * time.Minute, increment: "5h", wantTTL: time.Hour},
				{advance: 50 * time.Minute, wantTTL: time.Hour},
				{advance: 50 * time.Minute, wantTTL: time.Hour}, // past the mount max: periods ignore it
			},
		},
		{
			name:   "period capped by explicit_max_ttl",
			create: map[string]any{"period": "1h", "explicit_max_ttl": "90m"},
			steps: []step{
				{advance: 45 * time.Minute, wantTTL: 45 * time.Minute, wantWarn: true},
			},
		},
		{
			name:   "period larger than mount max is capped",
			sys:    sysView{def: time.Hour, max: 2 * time.Hour},
			create: map[string]any{"period": "5h"},
			steps: []step{
				{advance: time.Minute, wantTTL: 2 * time.Hour, wantWarn: true},
			},
		},
		{
			name:   "not renewable",
			create: map[string]any{"ttl": "1h", "renewable": false},
			steps:  []step{{advance: time.Minute, wantCode: 400, wantMsg: "lease is not renewable"}},
		},
		{
			name:   "bad increment",
			create: map[string]any{"ttl": "1h"},
			steps:  []step{{increment: "soon", wantCode: 400}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *token.Config) {
				if tc.sys.max > 0 {
					c.System = tc.sys
				}
			})
			id := e.create(t, e.root, tc.create)
			for i, st := range tc.steps {
				e.clock.Advance(st.advance)
				data := map[string]any{}
				if st.increment != nil {
					data["increment"] = st.increment
				}
				resp, err := e.do(t, logical.UpdateOperation, "renew-self", id, data)
				if st.wantCode != 0 {
					if statusOf(err) != st.wantCode || (st.wantMsg != "" && msgOf(err) != st.wantMsg) {
						t.Fatalf("step %d: got %d %q, want %d %q", i, statusOf(err), msgOf(err), st.wantCode, st.wantMsg)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if resp.Auth.TTL != st.wantTTL {
					t.Errorf("step %d: TTL %v, want %v", i, resp.Auth.TTL, st.wantTTL)
				}
				if got := len(resp.Warnings) > 0; got != st.wantWarn {
					t.Errorf("step %d: warnings %q, want some=%v", i, resp.Warnings, st.wantWarn)
				}
				if resp.Auth.ClientToken != id {
					t.Errorf("step %d: client_token not echoed", i)
				}
				look, err := e.do(t, logical.ReadOperation, "lookup-self", id, nil)
				if err != nil {
					t.Fatal(err)
				}
				now := e.clock.Now()
				if diff := cmp.Diff(map[string]any{"ttl": int64(st.wantTTL / time.Second), "expire_time": now.Add(st.wantTTL), "last_renewal_time": now.Unix()},
					map[string]any{"ttl": look.Data["ttl"], "expire_time": look.Data["expire_time"], "last_renewal_time": look.Data["last_renewal_time"]}); diff != "" {
					t.Errorf("step %d: lookup after renew (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

func TestRenewPathsAndErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	id := e.create(t, e.root, map[string]any{"ttl": "1h"})
	te, _ := e.store.Lookup(ctx, id)

	resp, err := e.do(t, logical.UpdateOperation, "renew", e.root, map[string]any{"token": id, "increment": "2h"})
	if err != nil || resp.Auth.TTL != 2*time.Hour || resp.Auth.ClientToken != id {
		t.Errorf("renew: %+v %v", resp, err)
	}
	resp, err = e.do(t, logical.UpdateOperation, "renew-accessor", e.root, map[string]any{"accessor": te.Accessor, "increment": 600})
	if err != nil || resp.Auth.TTL != 10*time.Minute || resp.Auth.ClientToken != "" || resp.Auth.Accessor != te.Accessor {
		t.Errorf("renew-accessor: %+v %v", resp, err)
	}
	resp, err = e.do(t, logical.UpdateOperation, "renew/"+id, e.root, nil)
	if err != nil || resp.Auth.TTL != time.Hour {
		t.Errorf("renew/<token>: %+v %v", resp, err)
	}
	for _, tc := range []struct {
		name, path, caller string
		data               map[string]any
		code               int
		msg                string
	}{
		{"root token", "renew-self", e.root, nil, 400, "lease is not renewable"},
		{"missing token", "renew", e.root, nil, 400, "missing token ID"},
		{"unknown token", "renew", e.root, map[string]any{"token": "hvs.nope"}, 400, "token not found"},
		{"unknown accessor", "renew-accessor", e.root, map[string]any{"accessor": "nope"}, 400, "invalid accessor"},
		{"missing accessor", "renew-accessor", e.root, nil, 400, "missing accessor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.do(t, logical.UpdateOperation, tc.path, tc.caller, tc.data)
			if statusOf(err) != tc.code || msgOf(err) != tc.msg {
				t.Errorf("got %d %q, want %d %q", statusOf(err), msgOf(err), tc.code, tc.msg)
			}
		})
	}
	if _, err := e.store.Renew(ctx, nil, 0); statusOf(err) != 400 {
		t.Errorf("Renew(nil): %v", err)
	}
}

func TestRenewLoginTokenUsesAuthMethod(t *testing.T) {
	t.Parallel()
	var calls []string
	fail := false
	e := newEnv(t, func(c *token.Config) {
		c.RenewAuth = func(_ context.Context, te *token.Entry) (*logical.Auth, error) {
			calls = append(calls, te.InternalData["role"].(string))
			if fail {
				return nil, logical.BadRequest("role aks-role does not exist during renewal")
			}
			return &logical.Auth{LeaseOptions: logical.LeaseOptions{TTL: 30 * time.Minute, MaxTTL: time.Hour, Renewable: true}}, nil
		}
	})
	ctx := context.Background()
	login, err := e.store.Create(ctx, e.store.EntryFromAuth(&logical.Auth{
		LeaseOptions: logical.LeaseOptions{Renewable: true},
		Policies:     []string{"aks"}, DisplayName: "oid", InternalData: map[string]any{"role": "aks-role"},
	}, "auth/azure/"))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	got, err := e.store.Renew(ctx, login, 0)
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if want := e.clock.Now().Add(30 * time.Minute); !got.ExpireTime.Equal(want) {
		t.Errorf("ExpireTime %v, want %v", got.ExpireTime, want)
	}
	e.clock.Advance(28 * time.Minute)
	if _, err = e.store.Renew(ctx, login, 0); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(28 * time.Minute)
	got, err = e.store.Renew(ctx, login, time.Hour) // role max 1h from creation: 3m left
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(3 * time.Minute); !got.ExpireTime.Equal(want) {
		t.Errorf("capped ExpireTime %v, want %v", got.ExpireTime, want)
	}
	fail = true
	if _, err := e.store.Renew(ctx, login, 0); statusOf(err) != 400 {
		t.Errorf("failing auth method: %v", err)
	}
	if diff := cmp.Diff([]string{"aks-role", "aks-role", "aks-role", "aks-role"}, calls); diff != "" {
		t.Errorf("RenewAuth calls (-want +got):\n%s", diff)
	}
	// Tokens of the token store itself do not consult the auth method.
	id := e.create(t, e.root, map[string]any{"ttl": "1h"})
	if _, err := e.do(t, logical.UpdateOperation, "renew-self", id, nil); err != nil || len(calls) != 4 {
		t.Errorf("token-store token renewal: calls=%d err=%v", len(calls), err)
	}
}

func TestCreatePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		parent   []string // nil: root
		sudo     bool
		data     map[string]any
		want     []string
		wantCode int
		wantMsg  string
	}{
		{name: "root inherits root", want: []string{"root"}},
		{name: "root grants anything", data: map[string]any{"policies": "b,A, a"}, want: []string{"a", "b", "default"}},
		{name: "inherit parent", parent: []string{"a"}, want: []string{"a", "default"}},
		{name: "subset", parent: []string{"a", "b"}, data: map[string]any{"policies": []any{"b"}}, want: []string{"b", "default"}},
		{name: "default always allowed", parent: []string{"a"}, data: map[string]any{"policies": "default"}, want: []string{"default"}},
		{name: "no_default_policy", parent: []string{"a"}, data: map[string]any{"policies": "a", "no_default_policy": true}, want: []string{"a"}},
		{name: "not a subset", parent: []string{"a"}, data: map[string]any{"policies": "a,b"}, wantCode: 400, wantMsg: "child policies must be subset of parent"},
		{name: "root from non-root", parent: []string{"a"}, data: map[string]any{"policies": "root"}, wantCode: 400, wantMsg: "child policies must be subset of parent"},
		{name: "sudo lifts the subset rule", parent: []string{"a"}, sudo: true, data: map[string]any{"policies": "z"}, want: []string{"default", "z"}},
		{name: "sudo non-root cannot mint root", parent: []string{"a"}, sudo: true, data: map[string]any{"policies": "root"}, wantCode: 400, wantMsg: "root tokens may not be created without parent token being root"},
		{name: "sudo non-root cannot mint root among others", parent: []string{"a"}, sudo: true, data: map[string]any{"policies": "z,root"}, wantCode: 400, wantMsg: "root tokens may not be created without parent token being root"},
		{name: "non-assignable", data: map[string]any{"policies": "response-wrapping"}, wantCode: 400, wantMsg: `cannot assign policy "response-wrapping"`},
		{name: "no policy at all", data: map[string]any{"policies": "a", "no_default_policy": true}, parent: []string{"a"}, want: []string{"a"}},
		{name: "empty after no_default", parent: []string{"a"}, data: map[string]any{"policies": "default", "no_default_policy": true}, wantCode: 400, wantMsg: "token must have at least one policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *token.Config) {
				c.HasSudo = func(_ context.Context, _ []string, path string) bool { return tc.sudo && path == "auth/token/create" }
			})
			caller := e.root
			if tc.parent != nil {
				caller = e.create(t, e.root, map[string]any{"policies": tc.parent, "no_default_policy": true})
			}
			resp, err := e.do(t, logical.UpdateOperation, "create", caller, tc.data)
			if tc.wantCode != 0 {
				if statusOf(err) != tc.wantCode || msgOf(err) != tc.wantMsg {
					t.Fatalf("got %d %q, want %d %q", statusOf(err), msgOf(err), tc.wantCode, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, resp.Auth.Policies); diff != "" {
				t.Errorf("policies (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, resp.Auth.TokenPolicies); diff != "" {
				t.Errorf("token_policies (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateResponseAndLookupData(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	resp, err := e.do(t, logical.UpdateOperation, "create", e.root, map[string]any{
		"policies": "aks", "meta": map[string]any{"team": "x"}, "ttl": "1h", "explicit_max_ttl": "10h",
		"display_name": "My App!", "num_uses": "3",
	})
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Auth
	rootEntry, _ := e.store.Lookup(ctx, e.root)
	wantAuth := &logical.Auth{
		LeaseOptions:   logical.LeaseOptions{TTL: time.Hour, Renewable: true, IssueTime: epoch},
		DisplayName:    "token-My-App",
		Policies:       []string{"aks", "default"},
		TokenPolicies:  []string{"aks", "default"},
		Metadata:       map[string]string{"team": "x"},
		ExplicitMaxTTL: 10 * time.Hour,
		NumUses:        3,
		TokenType:      "service",
		MountType:      "token",
	}
	if diff := cmp.Diff(wantAuth, a, cmpopts.IgnoreFields(logical.Auth{}, "ClientToken", "Accessor"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("create auth (-want +got):\n%s", diff)
	}
	if !idRe.MatchString(a.ClientToken) || !accessorRe.MatchString(a.Accessor) || a.Orphan {
		t.Errorf("client_token %q accessor %q orphan %v", a.ClientToken, a.Accessor, a.Orphan)
	}
	e.clock.Advance(10 * time.Minute)
	wantData := map[string]any{
		"id": a.ClientToken, "accessor": a.Accessor, "policies": []string{"aks", "default"},
		"path": "auth/token/create", "meta": map[string]string{"team": "x"}, "display_name": "token-My-App",
		"num_uses": 3, "orphan": false, "creation_time": epoch.Unix(), "creation_ttl": int64(3600),
		"expire_time": epoch.Add(time.Hour), "ttl": int64(3000), "explicit_max_ttl": int64(36000),
		"entity_id": "", "type": "service", "renewable": true, "issue_time": epoch,
	}
	look, err := e.do(t, logical.ReadOperation, "lookup-self", a.ClientToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantData, look.Data); diff != "" {
		t.Errorf("lookup-self (-want +got):\n%s", diff)
	}
	look, err = e.do(t, logical.UpdateOperation, "lookup", e.root, map[string]any{"token": a.ClientToken})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantData, look.Data); diff != "" {
		t.Errorf("lookup (-want +got):\n%s", diff)
	}
	wantData["id"] = ""
	look, err = e.do(t, logical.UpdateOperation, "lookup-accessor", e.root, map[string]any{"accessor": a.Accessor})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantData, look.Data); diff != "" {
		t.Errorf("lookup-accessor (-want +got):\n%s", diff)
	}
	// The root token: no TTL, no lease, orphan.
	look, err = e.do(t, logical.ReadOperation, "lookup-self", e.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantRoot := map[string]any{
		"id": e.root, "accessor": rootEntry.Accessor, "policies": []string{"root"}, "path": "auth/token/root",
		"meta": map[string]string(nil), "display_name": "root", "num_uses": 0, "orphan": true,
		"creation_time": epoch.Unix(), "creation_ttl": int64(0), "expire_time": nil, "ttl": int64(0),
		"explicit_max_ttl": int64(0), "entity_id": "", "type": "service",
	}
	if diff := cmp.Diff(wantRoot, look.Data); diff != "" {
		t.Errorf("root lookup-self (-want +got):\n%s", diff)
	}
}

func TestCreateOrphanAndOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	user := e.create(t, e.root, map[string]any{"policies": "p"})

	// create-orphan is open to anyone allowed on the path (Vault).
	resp, err := e.do(t, logical.UpdateOperation, "create-orphan", user, nil)
	if err != nil || !resp.Auth.Orphan {
		t.Fatalf("create-orphan: %+v %v", resp, err)
	}
	te, _ := e.store.Lookup(ctx, resp.Auth.ClientToken)
	if te.Path != "auth/token/create-orphan" || te.Parent != "" {
		t.Errorf("orphan entry: path %q parent %q", te.Path, te.Parent)
	}
	// no_parent by root.
	resp, err = e.do(t, logical.UpdateOperation, "create", e.root, map[string]any{"no_parent": true})
	if err != nil || !resp.Auth.Orphan {
		t.Errorf("no_parent by root: %+v %v", resp, err)
	}
	// Custom ID by root.
	resp, err = e.do(t, logical.UpdateOperation, "create", e.root, map[string]any{"id": "my-token"})
	if err != nil || resp.Auth.ClientToken != "my-token" {
		t.Errorf("custom id: %+v %v", resp, err)
	}
	if _, err = e.do(t, logical.UpdateOperation, "create", e.root, map[string]any{"id": "my-token"}); statusOf(err) != 400 {
		t.Errorf("duplicate id: %v", err)
	}
	// Root child without TTL never expires and is not renewable.
	resp, err = e.do(t, logical.UpdateOperation, "create", e.root, nil)
	if err != nil || resp.Auth.TTL != 0 || resp.Auth.Renewable {
		t.Errorf("root child: %+v %v", resp.Auth, err)
	}
	// Default TTL comes from the mount.
	resp, err = e.do(t, logical.UpdateOperation, "create", user, nil)
	if err != nil || resp.Auth.TTL != 768*time.Hour || !resp.Auth.Renewable {
		t.Errorf("default ttl: %+v %v", resp.Auth, err)
	}
	// Deprecated "lease" is the TTL.
	resp, err = e.do(t, logical.UpdateOperation, "create", user, map[string]any{"lease": "15m"})
	if err != nil || resp.Auth.TTL != 15*time.Minute {
		t.Errorf("lease: %+v %v", resp.Auth, err)
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	user := e.create(t, e.root, map[string]any{"policies": "p"})
	tests := []struct {
		name   string
		op     logical.Operation
		path   string
		caller string
		data   map[string]any
		code   int
		msg    string
	}{
		{"bad ttl string", logical.UpdateOperation, "create", e.root, map[string]any{"ttl": "forever"}, 400, ""},
		{"negative ttl", logical.UpdateOperation, "create", e.root, map[string]any{"ttl": "-5m"}, 400, ""},
		{"bad num_uses", logical.UpdateOperation, "create", e.root, map[string]any{"num_uses": "many"}, 400, ""},
		{"negative num_uses", logical.UpdateOperation, "create", e.root, map[string]any{"num_uses": -1}, 400, "number of uses cannot be negative"},
		{"bad renewable", logical.UpdateOperation, "create", e.root, map[string]any{"renewable": "perhaps"}, 400, ""},
		{"batch type", logical.UpdateOperation, "create", e.root, map[string]any{"type": "batch"}, 400, "batch tokens are not supported"},
		{"unknown type", logical.UpdateOperation, "create", e.root, map[string]any{"type": "gold"}, 400, `invalid 'token_type' value "gold"`},
		{"no_parent without sudo", logical.UpdateOperation, "create", user, map[string]any{"no_parent": true}, 400, "root or sudo privileges required to create orphan token"},
		{"period without sudo", logical.UpdateOperation, "create", user, map[string]any{"period": "1h"}, 400, "root or sudo privileges required to create periodic token"},
		{"id without sudo", logical.UpdateOperation, "create", user, map[string]any{"id": "abc"}, 400, "root or sudo privileges required to specify token id"},
		{"id with hvs prefix", logical.UpdateOperation, "create", e.root, map[string]any{"id": "hvs.abc"}, 400, "custom token ID cannot have the 'hvs.' prefix"},
		{"id with a period", logical.UpdateOperation, "create", e.root, map[string]any{"id": "a.b"}, 400, "custom token ID cannot have a '.' in the value"},
		{"unknown role", logical.UpdateOperation, "create/ci", e.root, nil, 400, "unknown role ci"},
		{"unknown caller", logical.UpdateOperation, "create", "hvs.nobody", nil, 400, "parent token lookup failed: no parent found"},
		{"lookup unknown token", logical.UpdateOperation, "lookup", e.root, map[string]any{"token": "hvs.nobody"}, 403, "bad token"},
		{"lookup no token at all", logical.UpdateOperation, "lookup", "", nil, 400, "missing token ID"},
		{"lookup-self unknown caller", logical.ReadOperation, "lookup-self", "hvs.nobody", nil, 403, "permission denied"},
		{"lookup-accessor missing", logical.UpdateOperation, "lookup-accessor", e.root, nil, 400, "missing accessor"},
		{"lookup-accessor unknown", logical.UpdateOperation, "lookup-accessor", e.root, map[string]any{"accessor": "nope"}, 400, "invalid accessor"},
		{"revoke missing token", logical.UpdateOperation, "revoke", e.root, nil, 400, "missing token ID"},
		{"revoke-accessor unknown", logical.UpdateOperation, "revoke-accessor", e.root, map[string]any{"accessor": "nope"}, 400, "invalid accessor"},
		{"revoke-orphan missing token", logical.UpdateOperation, "revoke-orphan", e.root, nil, 400, "missing token ID"},
		{"unknown path", logical.ReadOperation, "frobnicate", e.root, nil, 404, ""},
		{"wrong operation", logical.DeleteOperation, "create", e.root, nil, 405, ""},
		{"lookup-self is read only", logical.UpdateOperation, "lookup-self", e.root, nil, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.do(t, tc.op, tc.path, tc.caller, tc.data)
			if statusOf(err) != tc.code {
				t.Fatalf("status %d (%v), want %d", statusOf(err), err, tc.code)
			}
			if tc.msg != "" && msgOf(err) != tc.msg {
				t.Errorf("message %q, want %q", msgOf(err), tc.msg)
			}
		})
	}
	// Revoking an unknown token is a silent success (204), as Vault.
	if resp, err := e.do(t, logical.UpdateOperation, "revoke", e.root, map[string]any{"token": "hvs.nobody"}); err != nil || resp != nil {
		t.Errorf("revoke unknown: %v %v", resp, err)
	}
}

func TestAccessorsListAndSpecialPaths(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	var want []string
	for range 3 {
		id := e.create(t, e.root, nil)
		te, _ := e.store.Lookup(ctx, id)
		want = append(want, te.Accessor)
	}
	root, _ := e.store.Lookup(ctx, e.root)
	want = append(want, root.Accessor)
	slices.Sort(want)
	resp, err := e.do(t, logical.ListOperation, "accessors/", e.root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, resp.Data["keys"]); diff != "" {
		t.Errorf("accessors (-want +got):\n%s", diff)
	}
	wantSpecial := &logical.Paths{Root: []string{"revoke-orphan/*", "accessors*"}}
	if diff := cmp.Diff(wantSpecial, e.store.Backend().SpecialPaths()); diff != "" {
		t.Errorf("special paths (-want +got):\n%s", diff)
	}
	resp, err = e.do(t, logical.UpdateOperation, "tidy", e.root, nil)
	if err != nil || resp.StatusCode != 202 {
		t.Errorf("tidy: %+v %v", resp, err)
	}
}

func TestLoginTokenFromAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *token.Config) {
		c.SystemFor = func(path string) logical.SystemView {
			if path == "auth/azure/login" {
				return sysView{def: 2 * time.Hour, max: 4 * time.Hour}
			}
			return nil
		}
	})
	ctx := context.Background()
	auth := &logical.Auth{
		LeaseOptions: logical.LeaseOptions{Renewable: true},
		DisplayName:  "0000-oid",
		Policies:     []string{"AKS", "default", "aks"},
		Metadata:     map[string]string{"role": "aks-role"},
		InternalData: map[string]any{"role": "aks-role"},
		Alias:        &logical.Alias{Name: "0000-oid"},
		MountType:    "azure",
	}
	entry := e.store.EntryFromAuth(auth, "auth/azure/")
	got, err := e.store.Create(ctx, entry)
	if err != nil {
		t.Fatal(err)
	}
	want := &token.Entry{
		Accessor: got.Accessor, ID: got.ID, Policies: []string{"aks", "default"}, Path: "auth/azure/login",
		Meta: map[string]string{"role": "aks-role"}, DisplayName: "azure-0000-oid", CreationTime: epoch,
		TTL: 2 * time.Hour, ExpireTime: epoch.Add(2 * time.Hour), Renewable: true, Orphan: true, Type: "service",
		InternalData: map[string]any{"role": "aks-role"}, MountType: "azure", Alias: "0000-oid",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("login entry (-want +got):\n%s", diff)
	}
	// Auth methods cannot create root tokens.
	_, err = e.store.Create(ctx, e.store.EntryFromAuth(&logical.Auth{Policies: []string{"root"}}, "auth/azure/"))
	if statusOf(err) != 400 || msgOf(err) != "auth methods cannot create root tokens" {
		t.Errorf("root via login: %d %q", statusOf(err), msgOf(err))
	}
	if _, err := e.store.Create(ctx, nil); err == nil {
		t.Error("Create(nil) succeeded")
	}
	if _, err := e.store.Create(ctx, &token.Entry{Parent: "nope", Policies: []string{"a"}}); statusOf(err) != 400 {
		t.Errorf("unknown parent: %v", err)
	}
	if err := e.store.Use(ctx, nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Errorf("Use(nil): %v", err)
	}
}

func TestSanitizePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         []string
		addDefault bool
		want       []string
	}{
		{nil, true, []string{"default"}},
		{nil, false, []string{}},
		{[]string{" B ", "a", "", "b"}, false, []string{"a", "b"}},
		{[]string{"a", "root", "b"}, true, []string{"root"}},
		{[]string{"default", "x"}, true, []string{"default", "x"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, token.SanitizePolicies(tc.in, tc.addDefault)); diff != "" {
			t.Errorf("SanitizePolicies(%q, %v) (-want +got):\n%s", tc.in, tc.addDefault, diff)
		}
	}
}
