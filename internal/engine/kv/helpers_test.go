package kv_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/engine/kv"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage/inmem"
)

// t0 is the fake clock's starting time.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

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
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sysView is a logical.SystemView with fixed TTLs.
type sysView struct{ def, max time.Duration }

func (s sysView) DefaultLeaseTTL() time.Duration { return s.def }
func (s sysView) MaxLeaseTTL() time.Duration     { return s.max }

// env is one mounted backend over in-memory storage.
type env struct {
	t     testing.TB
	b     logical.Backend
	s     logical.Storage
	clock *fakeClock
}

func newEnv(t testing.TB, version string) *env {
	t.Helper()
	return newEnvOn(t, version, inmem.New(), &fakeClock{now: t0})
}

// newEnvOn mounts a backend of the given version on existing storage and
// initializes it as core does.
func newEnvOn(t testing.TB, version string, s logical.Storage, clock *fakeClock) *env {
	t.Helper()
	ctx := context.Background()
	b, err := kv.Factory(ctx, logical.BackendConfig{
		System:  sysView{def: 768 * time.Hour, max: 768 * time.Hour},
		Options: map[string]string{"version": version},
		Clock:   clock,
	})
	if err != nil {
		t.Fatalf("Factory(version %q): %v", version, err)
	}
	if in, ok := b.(logical.Initializer); ok {
		if err := in.Initialize(ctx, s); err != nil {
			t.Fatalf("Initialize: %v", err)
		}
	}
	return &env{t: t, b: b, s: s, clock: clock}
}

// req builds a request as core would after routing.
func (e *env) req(op logical.Operation, path string, data map[string]any) *logical.Request {
	return &logical.Request{
		Operation:  op,
		Path:       path,
		MountPoint: "secret/",
		MountType:  "kv",
		Data:       data,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
		Storage:    e.s,
	}
}

// do runs one request, converting update to create when the backend's
// existence check says the object is new (as core does).
func (e *env) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	r := e.req(op, path, data)
	if op == logical.UpdateOperation {
		if ec, ok := e.b.(logical.ExistenceChecker); ok {
			found, exists, err := ec.ExistenceCheck(context.Background(), r)
			if err != nil {
				return nil, err
			}
			if found && !exists {
				r.Operation = logical.CreateOperation
			}
		}
	}
	return e.b.HandleRequest(context.Background(), r)
}

// patch runs a PATCH with the given content type ("" = no header).
func (e *env) patch(path, contentType string, data map[string]any) (*logical.Response, error) {
	r := e.req(logical.PatchOperation, path, data)
	if contentType != "" {
		r.Headers = map[string][]string{"Content-Type": {contentType}}
	}
	return e.b.HandleRequest(context.Background(), r)
}

// must runs a request that must succeed.
func (e *env) must(op logical.Operation, path string, data map[string]any) *logical.Response {
	e.t.Helper()
	resp, err := e.do(op, path, data)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// status returns the HTTP status an error maps to (CodedError status, or
// the sentinel's status), 0 for nil.
func status(err error) int {
	if err == nil {
		return 0
	}
	var ce *logical.CodedError
	if errors.As(err, &ce) {
		return ce.Status
	}
	switch {
	case errors.Is(err, logical.ErrUnsupportedPath):
		return 404
	case errors.Is(err, logical.ErrUnsupportedOperation):
		return 405
	case errors.Is(err, logical.ErrInvalidRequest):
		return 400
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403
	}
	return 500
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// newEnvNoInit builds a backend without calling Initialize.
func newEnvNoInit(t testing.TB, version string) (logical.Backend, error) {
	t.Helper()
	return kv.Factory(context.Background(), logical.BackendConfig{
		System:  sysView{def: 768 * time.Hour, max: 768 * time.Hour},
		Options: map[string]string{"version": version},
		Clock:   &fakeClock{now: t0},
	})
}

// yieldingStorage is in-memory storage that yields the processor inside
// every call, so concurrent requests interleave between a read and the
// write that depends on it (a lost update shows up reliably).
type yieldingStorage struct{ *inmem.Backend }

func (y yieldingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	e, err := y.Backend.Get(ctx, key)
	runtime.Gosched()
	return e, err
}

func (y yieldingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	runtime.Gosched()
	return y.Backend.Put(ctx, e)
}
