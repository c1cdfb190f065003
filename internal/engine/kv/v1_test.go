package kv_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/engine/kv"
	"github.com/keyward/keyward/internal/logical"
)

func TestFactoryVersions(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "1", "2"} {
		if _, err := kv.Factory(context.Background(), logical.BackendConfig{
			System: sysView{}, Clock: &fakeClock{}, Options: map[string]string{"version": v},
		}); err != nil {
			t.Errorf("Factory(version %q): %v", v, err)
		}
	}
	_, err := kv.Factory(context.Background(), logical.BackendConfig{
		System: sysView{}, Clock: &fakeClock{}, Options: map[string]string{"version": "3"},
	})
	if status(err) != 400 {
		t.Errorf("Factory(version 3) = %v, want a 400 error", err)
	}
}

func TestV1ReadWriteListDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")

	if resp := e.must(logical.UpdateOperation, "mysecret", map[string]any{"foo": "bar"}); resp != nil {
		t.Fatalf("write response = %+v, want nil (204)", resp)
	}
	resp := e.must(logical.ReadOperation, "mysecret", nil)
	if diff := cmp.Diff(map[string]any{"foo": "bar"}, resp.Data); diff != "" {
		t.Errorf("read data (-want +got):\n%s", diff)
	}
	wantSecret := &logical.Secret{NoLease: true, LeaseOptions: logical.LeaseOptions{TTL: 768 * time.Hour}}
	if diff := cmp.Diff(wantSecret, resp.Secret); diff != "" {
		t.Errorf("read secret (-want +got):\n%s", diff)
	}

	// Whole-object replace, numbers kept exact.
	e.must(logical.UpdateOperation, "mysecret", map[string]any{"n": json.Number("12345678901234567890")})
	resp = e.must(logical.ReadOperation, "mysecret", nil)
	if diff := cmp.Diff(map[string]any{"n": json.Number("12345678901234567890")}, resp.Data); diff != "" {
		t.Errorf("read after replace (-want +got):\n%s", diff)
	}

	e.must(logical.UpdateOperation, "dir/a", map[string]any{"x": "1"})
	e.must(logical.UpdateOperation, "dir/sub/b", map[string]any{"x": "2"})
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"", []string{"dir/", "mysecret"}},
		{"dir/", []string{"a", "sub/"}},
		{"dir", []string{"a", "sub/"}},
		{"nothing/", []string{}},
	} {
		resp := e.must(logical.ListOperation, tc.path, nil)
		if diff := cmp.Diff(map[string]any{"keys": tc.want}, resp.Data); diff != "" {
			t.Errorf("list %q (-want +got):\n%s", tc.path, diff)
		}
	}

	if resp := e.must(logical.DeleteOperation, "mysecret", nil); resp != nil {
		t.Errorf("delete response = %+v, want nil", resp)
	}
	if resp := e.must(logical.ReadOperation, "mysecret", nil); resp != nil {
		t.Errorf("read after delete = %+v, want nil (404)", resp)
	}
	// Deleting again is not an error.
	e.must(logical.DeleteOperation, "mysecret", nil)
}

func TestV1TTL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	for _, tc := range []struct {
		name string
		data map[string]any
		want time.Duration
	}{
		{"no ttl key", map[string]any{"a": "b"}, 768 * time.Hour},
		{"ttl duration string", map[string]any{"ttl": "1h"}, time.Hour},
		{"ttl seconds string", map[string]any{"ttl": "90"}, 90 * time.Second},
		{"ttl number", map[string]any{"ttl": json.Number("30")}, 30 * time.Second},
		{"ttl float", map[string]any{"ttl": float64(45)}, 45 * time.Second},
		{"lease key", map[string]any{"lease": "2h"}, 2 * time.Hour},
		{"ttl preferred over lease", map[string]any{"ttl": "1m", "lease": "2h"}, time.Minute},
		{"unparsable ttl uses default", map[string]any{"ttl": "soon"}, 768 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.must(logical.UpdateOperation, "ttl", tc.data)
			resp := e.must(logical.ReadOperation, "ttl", nil)
			if resp.Secret == nil || !resp.Secret.NoLease || resp.Secret.TTL != tc.want {
				t.Errorf("secret = %+v, want NoLease TTL %v", resp.Secret, tc.want)
			}
		})
	}
}

func TestV1BadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	for _, tc := range []struct {
		name    string
		path    string
		data    map[string]any
		wantMsg string
	}{
		{"empty body", "x", nil, "missing data fields"},
		{"empty object", "x", map[string]any{}, "missing data fields"},
		{"no path", "", map[string]any{"a": "b"}, "missing path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.do(logical.UpdateOperation, tc.path, tc.data)
			if status(err) != 400 || err.Error() != tc.wantMsg {
				t.Errorf("write = %v (status %d), want 400 %q", err, status(err), tc.wantMsg)
			}
		})
	}
	if resp := e.must(logical.ReadOperation, "", nil); resp != nil {
		t.Errorf("read of mount root = %+v, want nil (404)", resp)
	}
}

func TestV1ExistenceCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "1")
	ec := e.b.(logical.ExistenceChecker)
	check := func() bool {
		t.Helper()
		found, exists, err := ec.ExistenceCheck(context.Background(), e.req(logical.UpdateOperation, "k", nil))
		if err != nil || !found {
			t.Fatalf("ExistenceCheck = %v, %v, %v", found, exists, err)
		}
		return exists
	}
	if check() {
		t.Error("exists before write")
	}
	e.must(logical.UpdateOperation, "k", map[string]any{"a": "b"})
	if !check() {
		t.Error("does not exist after write")
	}
}
