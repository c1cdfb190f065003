package token_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage/inmem"
	"github.com/keyward/keyward/internal/token"
)

// fakeClock is a settable logical.Clock.
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

// sysView is a fixed logical.SystemView.
type sysView struct{ def, max time.Duration }

func (v sysView) DefaultLeaseTTL() time.Duration { return v.def }
func (v sysView) MaxLeaseTTL() time.Duration     { return v.max }

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type env struct {
	store   *token.Store
	storage *inmem.Backend
	clock   *fakeClock
	root    string // root token ID
}

func newEnv(t testing.TB, mod func(*token.Config)) *env {
	t.Helper()
	st := inmem.New()
	clk := &fakeClock{now: epoch}
	cfg := token.Config{Storage: st, Clock: clk, System: sysView{def: 768 * time.Hour, max: 768 * time.Hour}}
	if mod != nil {
		mod(&cfg)
	}
	s, err := token.NewStore(cfg)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	ctx := context.Background()
	if err = s.Setup(ctx); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	root, err := s.CreateRoot(ctx, "")
	if err != nil {
		t.Fatalf("CreateRoot: %v", err)
	}
	return &env{store: s, storage: st, clock: clk, root: root.ID}
}

// do sends one request to the token backend as caller.
func (e *env) do(t testing.TB, op logical.Operation, path, caller string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	req := &logical.Request{
		ID:          "req",
		Operation:   op,
		Path:        path,
		MountPoint:  "auth/token/",
		MountType:   "token",
		Data:        data,
		ClientToken: caller,
		Connection:  &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	return e.store.Backend().HandleRequest(context.Background(), req)
}

// create makes a child token of caller through auth/token/create and
// returns its ID.
func (e *env) create(t testing.TB, caller string, data map[string]any) string {
	t.Helper()
	resp, err := e.do(t, logical.UpdateOperation, "create", caller, data)
	if err != nil {
		t.Fatalf("create %v: %v", data, err)
	}
	if resp == nil || resp.Auth == nil || resp.Auth.ClientToken == "" {
		t.Fatalf("create %v: no auth in response %+v", data, resp)
	}
	return resp.Auth.ClientToken
}

// statusOf maps an error to the HTTP status httpapi would give it.
func statusOf(err error) int {
	var ce *logical.CodedError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &ce):
		return ce.Status
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405
	case errors.Is(err, logical.ErrInvalidRequest):
		return 400
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

// allStorage returns every key and value in st.
func allStorage(t testing.TB, st *inmem.Backend) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(prefix string)
	walk = func(prefix string) {
		keys, err := st.List(context.Background(), prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		for _, k := range keys {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			e, err := st.Get(context.Background(), prefix+k)
			if err != nil {
				t.Fatalf("Get(%q): %v", prefix+k, err)
			}
			out[prefix+k] = string(e.Value)
		}
	}
	walk("")
	return out
}
