package policy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
	"github.com/keyward/keyward/internal/policy"
	"github.com/keyward/keyward/internal/storage/inmem"
)

const aksPolicy = "path \"aks/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"

func newStore(t *testing.T) (*policy.Store, *inmem.Backend) {
	t.Helper()
	b := inmem.New()
	s := policy.NewStore(b)
	if err := s.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, b
}

func wantStatus(t *testing.T, err error, status int) {
	t.Helper()
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != status {
		t.Fatalf("error %v: want *logical.CodedError with status %d", err, status)
	}
}

func TestStoreCRUD(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, b := newStore(t)

	// Setup wrote the default policy in Vault's storage format.
	e, err := b.Get(ctx, "default")
	if err != nil {
		t.Fatalf("default not stored: %v", err)
	}
	if !containsAny(string(e.Value), `"Version":2`, `"Type":0`) {
		t.Errorf("stored form %s", e.Value)
	}

	p := mustParse(t, "AKS ", aksPolicy)
	if err = s.Put(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "aks")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "aks" || got.Raw != aksPolicy {
		t.Errorf("Get = %q %q", got.Name, got.Raw)
	}
	names, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"aks", "default", "root"}, names); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	root, err := s.Get(ctx, "root")
	if err != nil || root.Name != "root" {
		t.Errorf("Get(root) = %+v, %v", root, err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("Get(nope) err = %v, want ErrNotFound", err)
	}

	wantStatus(t, s.Put(ctx, &policy.Policy{Name: "Root", Raw: ""}), 400)
	wantStatus(t, s.Put(ctx, &policy.Policy{Name: "response-wrapping"}), 400)
	wantStatus(t, s.Put(ctx, &policy.Policy{Name: "  "}), 400)
	wantStatus(t, s.Delete(ctx, "root"), 400)
	wantStatus(t, s.Delete(ctx, "default"), 400)

	if err := s.Delete(ctx, "aks"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "aks"); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	if err := s.Delete(ctx, "aks"); err != nil {
		t.Errorf("deleting a missing policy: %v", err)
	}
}

func TestStoreDefaultCreatedOnFirstUse(t *testing.T) {
	t.Parallel()
	s := policy.NewStore(inmem.New()) // no Setup
	p, err := s.Get(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if p.Raw != policy.DefaultPolicyText() {
		t.Error("default policy text differs")
	}
	names, err := s.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"default", "root"}, names); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}

func TestStoreDefaultIsEditableAndKeptBySetup(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t)
	if err := s.Put(ctx, mustParse(t, "default", `path "x" { capabilities = ["read"] }`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.ACL(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a, []check{{"x", read, nil, true}, {"auth/token/lookup-self", read, nil, false}})
}

func TestStoreACLCacheInvalidation(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t)
	if err := s.Put(ctx, mustParse(t, "aks", aksPolicy)); err != nil {
		t.Fatal(err)
	}
	a1, err := s.ACL(ctx, "aks", "default", "missing")
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a1, []check{{"aks/mysecret", read, nil, true}, {"auth/token/lookup-self", read, nil, true}})
	a2, err := s.ACL(ctx, "missing", "default", "AKS", "aks")
	if err != nil {
		t.Fatal(err)
	}
	if a1 != a2 {
		t.Error("same name set: want the cached ACL")
	}
	if err = s.Put(ctx, mustParse(t, "aks", `path "aks/*" { capabilities = ["deny"] }`)); err != nil {
		t.Fatal(err)
	}
	a3, err := s.ACL(ctx, "aks", "default")
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a3, []check{{"aks/mysecret", read, nil, false}})
	if err = s.Delete(ctx, "aks"); err != nil {
		t.Fatal(err)
	}
	a4, err := s.ACL(ctx, "aks", "default")
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a4, []check{{"aks/mysecret", read, nil, false}, {"auth/token/lookup-self", read, nil, true}})

	r, err := s.ACL(ctx, "root")
	if err != nil || !r.IsRoot() {
		t.Errorf("ACL(root) = %v, %v", r, err)
	}
}

// sysBackend mounts the store's paths the way the sys backend does.
func sysBackend(t *testing.T, s *policy.Store) *framework.Backend {
	t.Helper()
	b := &framework.Backend{Paths: s.Paths()}
	if err := b.Compile(); err != nil {
		t.Fatal(err)
	}
	return b
}

func do(t *testing.T, b *framework.Backend, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	return b.HandleRequest(context.Background(), &logical.Request{Operation: op, Path: path, Data: data, MountPoint: "sys/"})
}

func TestStorePaths(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	b := sysBackend(t, s)

	// Modern write, read, list.
	resp, err := do(t, b, update, "policies/acl/aks", map[string]any{"policy": aksPolicy})
	if err != nil || resp != nil {
		t.Fatalf("write: %v %v", resp, err)
	}
	resp, err = do(t, b, read, "policies/acl/aks", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "aks", "policy": aksPolicy}, resp.Data); diff != "" {
		t.Errorf("read (-want +got):\n%s", diff)
	}
	resp, err = do(t, b, list, "policies/acl/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"keys": []string{"aks", "default", "root"}}, resp.Data); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	// Legacy endpoints.
	resp, err = do(t, b, read, "policy", nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"aks", "default", "root"}
	if diff := cmp.Diff(map[string]any{"keys": keys, "policies": keys}, resp.Data); diff != "" {
		t.Errorf("legacy list (-want +got):\n%s", diff)
	}
	resp, err = do(t, b, read, "policy/aks", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"name": "aks", "rules": aksPolicy}, resp.Data); diff != "" {
		t.Errorf("legacy read (-want +got):\n%s", diff)
	}
	resp, err = do(t, b, update, "policy/Legacy", map[string]any{"rules": `path "l" { policy = "read" }`})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"policy name was converted to legacy", "'rules' is deprecated, please use 'policy' instead"}, resp.Warnings); diff != "" {
		t.Errorf("legacy write warnings (-want +got):\n%s", diff)
	}

	// Base64 bodies are decoded first.
	if _, err = do(t, b, update, "policies/acl/b64", map[string]any{"policy": "cGF0aCAiYjY0IiB7IGNhcGFiaWxpdGllcyA9IFsicmVhZCJdIH0="}); err != nil {
		t.Fatal(err)
	}
	if p, gerr := s.Get(t.Context(), "b64"); gerr != nil || p.Raw != `path "b64" { capabilities = ["read"] }` {
		t.Errorf("b64 policy = %+v, %v", p, gerr)
	}

	// Errors.
	_, err = do(t, b, update, "policies/acl/bad", map[string]any{"policy": `path "a" { capabilities = ["fly"] }`})
	wantStatus(t, err, 400)
	_, err = do(t, b, update, "policies/acl/empty", map[string]any{"policy": ""})
	wantStatus(t, err, 400)
	_, err = do(t, b, update, "policies/acl/root", map[string]any{"policy": aksPolicy})
	wantStatus(t, err, 400)
	_, err = do(t, b, update, "policies/acl/root", map[string]any{"policy": aksPolicy})
	var ce *logical.CodedError
	if errors.As(err, &ce) && ce.Msg != `cannot update "root" policy` {
		t.Errorf("root write message %q", ce.Msg)
	}
	_, err = do(t, b, logical.DeleteOperation, "policies/acl/default", nil)
	wantStatus(t, err, 400)
	if errors.As(err, &ce) && ce.Msg != "cannot delete default policy" {
		t.Errorf("default delete message %q", ce.Msg)
	}
	_, err = do(t, b, logical.DeleteOperation, "policy/root", nil)
	wantStatus(t, err, 400)
	if errors.As(err, &ce) && ce.Msg != `cannot delete "root" policy` {
		t.Errorf("root delete message %q", ce.Msg)
	}
	_, err = do(t, b, read, "policies/acl/missing", nil)
	wantStatus(t, err, 404)

	if _, err = do(t, b, logical.DeleteOperation, "policies/acl/aks", nil); err != nil {
		t.Fatal(err)
	}
	_, err = do(t, b, read, "policies/acl/aks", nil)
	wantStatus(t, err, 404)
}

func TestStoreConcurrentACLAndWrites(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t)
	if err := s.Put(ctx, mustParse(t, "aks", aksPolicy)); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(done)
		for i := range 50 {
			caps := `["read"]`
			if i%2 == 1 {
				caps = `["deny"]`
			}
			if err := s.Put(ctx, mustParse(t, "aks", `path "aks/*" { capabilities = `+caps+` }`)); err != nil {
				errs <- err
				return
			}
		}
	}()
	for range 200 {
		if _, err := s.ACL(ctx, "aks", "default"); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	// The last write (i=49) denies; the cache must not serve an older ACL.
	a, err := s.ACL(ctx, "aks", "default")
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a, []check{{"aks/x", read, nil, false}})
}
