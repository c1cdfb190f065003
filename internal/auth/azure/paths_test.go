package azure_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/auth/azure"
	"github.com/keyward/keyward/internal/logical"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	h := newHarness(t, azure.Dependencies{})
	if _, err := h.do(logical.ReadOperation, "config", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("read before write: err = %v, want ErrNotFound", err)
	}
	// The tutorial's write.
	if resp := h.mustDo(logical.UpdateOperation, "config", map[string]any{
		"tenant_id": testTenant, "resource": armAud,
	}); resp != nil {
		t.Errorf("write response = %+v, want nil (204)", resp)
	}
	h.mustDo(logical.UpdateOperation, "config", map[string]any{
		"client_id": "cid", "client_secret": "s3cret", "environment": "azurechinacloud", "max_retries": "5",
		"retry_delay": "2s", "authority_host": "https://127.0.0.1:8443", "resource_manager_endpoint": "https://127.0.0.1:8444/",
		"compat_mode": "STRICT",
	})
	got := h.mustDo(logical.ReadOperation, "config", nil).Data
	want := map[string]any{
		"tenant_id":                 testTenant,
		"resource":                  armAud,
		"environment":               "azurechinacloud",
		"client_id":                 "cid",
		"max_retries":               5,
		"retry_delay":               int64(2 * time.Second),
		"max_retry_delay":           int64(60 * time.Second),
		"authority_host":            "https://127.0.0.1:8443",
		"resource_manager_endpoint": "https://127.0.0.1:8444/",
		"resource_manager_audience": "",
		"compat_mode":               "strict",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("config read (-want +got):\n%s", diff)
	}
	if _, ok := got["client_secret"]; ok {
		t.Error("client_secret read back")
	}

	// Retry settings revert to defaults when absent from a write.
	h.mustDo(logical.UpdateOperation, "config", map[string]any{"compat_mode": "legacy"})
	got = h.mustDo(logical.ReadOperation, "config", nil).Data
	if got["max_retries"] != 3 || got["retry_delay"] != int64(4*time.Second) || got["compat_mode"] != "legacy" || got["client_id"] != "cid" {
		t.Errorf("after partial write: %v", got)
	}

	h.mustDo(logical.DeleteOperation, "config", nil)
	if _, err := h.do(logical.ReadOperation, "config", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("read after delete: err = %v, want ErrNotFound", err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := map[string]any{"tenant_id": testTenant, "resource": armAud}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		data   map[string]any
		status int
	}{
		{"no tenant", with("tenant_id", nil), 500},
		{"no resource", with("resource", nil), 500},
		{"unknown environment", with("environment", "MarsCloud"), 500},
		{"bad authority host", with("authority_host", "login.example"), 400},
		{"authority host with query", with("authority_host", "https://h/?x=1"), 400},
		{"bad arm endpoint", with("resource_manager_endpoint", "ftp://x"), 400},
		{"bad compat mode", with("compat_mode", "yolo"), 400},
		{"tenant with slash", with("tenant_id", "a/b"), 400},
		{"negative retries", with("max_retries", -1), 400},
		{"retries not a number", with("max_retries", "many"), 400},
		{"bad duration", with("retry_delay", "soon"), 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, azure.Dependencies{})
			resp, err := h.do(logical.UpdateOperation, "config", tc.data)
			if err == nil {
				t.Fatalf("write accepted: %+v", resp)
			}
			if got := statusOf(err); got != tc.status {
				t.Errorf("status %d (%v), want %d", got, err, tc.status)
			}
			if _, err := h.do(logical.ReadOperation, "config", nil); !errors.Is(err, logical.ErrNotFound) {
				t.Errorf("rejected config was stored (read err %v)", err)
			}
		})
	}
}

// TestRoleTutorial writes the tutorial's role as the CLI sends it and
// reads it back in Vault's shape.
func TestRoleTutorial(t *testing.T) {
	t.Parallel()
	h := newHarness(t, azure.Dependencies{})
	if resp := h.mustDo(logical.UpdateOperation, "role/aks-role", map[string]any{
		"policies": "aks", "bound_subscription_ids": "sub-1", "bound_resource_groups": "MC_rg_aks_eastus",
	}); resp != nil {
		t.Errorf("write response = %+v, want nil (204)", resp)
	}
	got := h.mustDo(logical.ReadOperation, "role/aks-role", nil).Data
	want := map[string]any{
		"bound_service_principal_ids": []string{},
		"bound_group_ids":             []string{},
		"bound_locations":             []string{},
		"bound_subscription_ids":      []string{"sub-1"},
		"bound_resource_groups":       []string{"MC_rg_aks_eastus"},
		"bound_scale_sets":            []string{},
		"token_policies":              []string{"aks"},
		"token_ttl":                   int64(0),
		"token_max_ttl":               int64(0),
		"token_explicit_max_ttl":      int64(0),
		"token_period":                int64(0),
		"token_bound_cidrs":           []string{},
		"token_no_default_policy":     false,
		"token_num_uses":              0,
		"token_type":                  "default",
		"policies":                    []string{"aks"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("role read (-want +got):\n%s", diff)
	}
	list := h.mustDo(logical.ListOperation, "role/", nil).Data
	if diff := cmp.Diff(map[string]any{"keys": []string{"aks-role"}}, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
}

func TestRoleFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		write []map[string]any
		want  map[string]any // subset of the read
	}{
		{
			name:  "arrays and comma strings",
			write: []map[string]any{{"bound_service_principal_ids": []any{"a", " b "}, "bound_group_ids": "g1, g2,,", "bound_scale_sets": "s1"}},
			want:  map[string]any{"bound_service_principal_ids": []string{"a", "b"}, "bound_group_ids": []string{"g1", "g2"}, "bound_scale_sets": []string{"s1"}},
		},
		{
			name:  "policies normalised",
			write: []map[string]any{{"bound_locations": "eastus", "token_policies": "B,a, a ,default"}},
			want:  map[string]any{"token_policies": []string{"a", "b", "default"}},
		},
		{
			name:  "root policy wins",
			write: []map[string]any{{"bound_locations": "eastus", "policies": "aks,root"}},
			want:  map[string]any{"token_policies": []string{"root"}, "policies": []string{"root"}},
		},
		{
			name:  "legacy ttl fields mirror",
			write: []map[string]any{{"bound_locations": "eastus", "ttl": "1h", "max_ttl": 7200, "period": "30m", "num_uses": 3}},
			want: map[string]any{"token_ttl": int64(3600), "ttl": int64(3600), "token_max_ttl": int64(7200), "max_ttl": int64(7200),
				"token_period": int64(1800), "period": int64(1800), "token_num_uses": 3, "num_uses": 3},
		},
		{
			name:  "new field wins over legacy",
			write: []map[string]any{{"bound_locations": "eastus", "token_ttl": "2h", "ttl": "1h"}},
			want:  map[string]any{"token_ttl": int64(7200), "ttl": int64(7200)},
		},
		{
			name: "new field clears legacy",
			write: []map[string]any{
				{"bound_locations": "eastus", "policies": "old"},
				{"token_policies": "new"},
			},
			want: map[string]any{"token_policies": []string{"new"}},
		},
		{
			name: "update merges",
			write: []map[string]any{
				{"bound_locations": "eastus", "token_ttl": 60},
				{"bound_scale_sets": "s1"},
			},
			want: map[string]any{"bound_locations": []string{"eastus"}, "bound_scale_sets": []string{"s1"}, "token_ttl": int64(60)},
		},
		{
			name:  "token type and cidrs",
			write: []map[string]any{{"bound_locations": "eastus", "token_type": "batch", "token_bound_cidrs": "10.0.0.0/8,192.0.2.1"}},
			want:  map[string]any{"token_type": "batch", "token_bound_cidrs": []string{"10.0.0.0/8", "192.0.2.1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, azure.Dependencies{})
			for _, w := range tc.write {
				h.mustDo(logical.UpdateOperation, "role/r1", w)
			}
			got := h.mustDo(logical.ReadOperation, "role/R1", nil).Data
			sub := map[string]any{}
			for k := range tc.want {
				sub[k] = got[k]
			}
			if diff := cmp.Diff(tc.want, sub); diff != "" {
				t.Errorf("read (-want +got):\n%s", diff)
			}
			if tc.name == "new field clears legacy" {
				if _, ok := got["policies"]; ok {
					t.Errorf("legacy policies still read back: %v", got["policies"])
				}
			}
		})
	}
}

func TestRoleErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data map[string]any
	}{
		{"no bound constraint", map[string]any{"policies": "aks"}},
		{"ttl over max_ttl", map[string]any{"bound_locations": "x", "token_ttl": "2h", "token_max_ttl": "1h"}},
		{"legacy ttl over max_ttl", map[string]any{"bound_locations": "x", "ttl": "2h", "max_ttl": "1h"}},
		{"negative num uses", map[string]any{"bound_locations": "x", "token_num_uses": -1}},
		{"bad token type", map[string]any{"bound_locations": "x", "token_type": "weird"}},
		{"batch with period", map[string]any{"bound_locations": "x", "token_type": "batch", "token_period": "1h"}},
		{"batch with num uses", map[string]any{"bound_locations": "x", "token_type": "batch", "token_num_uses": 2}},
		{"period over mount max", map[string]any{"bound_locations": "x", "token_period": "800h"}},
		{"bad cidr", map[string]any{"bound_locations": "x", "token_bound_cidrs": "10.0.0.0/33"}},
		{"bad duration", map[string]any{"bound_locations": "x", "token_ttl": "forever"}},
		{"bad bool", map[string]any{"bound_locations": "x", "token_no_default_policy": "maybe"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, azure.Dependencies{})
			_, err := h.do(logical.UpdateOperation, "role/r", tc.data)
			if statusOf(err) != 400 || !errors.Is(err, logical.ErrInvalidRequest) {
				t.Fatalf("err = %v, want 400", err)
			}
			if _, err := h.do(logical.ReadOperation, "role/r", nil); !errors.Is(err, logical.ErrNotFound) {
				t.Errorf("rejected role stored (read err %v)", err)
			}
		})
	}
}

func TestRoleWarningAndDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, azure.Dependencies{})
	resp := h.mustDo(logical.UpdateOperation, "role/r", map[string]any{"bound_locations": "x", "token_max_ttl": "1000h"})
	if resp == nil || len(resp.Warnings) != 1 {
		t.Fatalf("want one warning, got %+v", resp)
	}
	h.mustDo(logical.UpdateOperation, "role/s", map[string]any{"bound_locations": "x"})
	if diff := cmp.Diff([]string{"r", "s"}, h.mustDo(logical.ListOperation, "role", nil).Data["keys"]); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if resp := h.mustDo(logical.DeleteOperation, "role/r", nil); resp != nil {
		t.Errorf("delete response %+v, want nil", resp)
	}
	if _, err := h.do(logical.ReadOperation, "role/r", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("read after delete: %v", err)
	}
	// Deleting again is not an error, as Vault.
	h.mustDo(logical.DeleteOperation, "role/r", nil)
	if _, err := h.do(logical.ReadOperation, "nope", nil); !errors.Is(err, logical.ErrUnsupportedPath) {
		t.Errorf("unknown path: %v", err)
	}
	if _, err := h.do(logical.ReadOperation, "login", nil); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Errorf("GET login: %v", err)
	}
}
