package policy_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/policy"
)

const (
	read   = logical.ReadOperation
	list   = logical.ListOperation
	update = logical.UpdateOperation
	create = logical.CreateOperation
	del    = logical.DeleteOperation
	patch  = logical.PatchOperation
	renew  = logical.RenewOperation
)

func mustParse(t testing.TB, name, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(name, text)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return p
}

func mustACL(t testing.TB, texts ...string) *policy.ACL {
	t.Helper()
	var ps []*policy.Policy
	for i, txt := range texts {
		ps = append(ps, mustParse(t, "p"+string(rune('a'+i)), txt))
	}
	a, err := policy.NewACL(ps)
	if err != nil {
		t.Fatalf("NewACL: %v", err)
	}
	return a
}

type check struct {
	path string
	op   logical.Operation
	data map[string]any
	want bool
}

func runChecks(t *testing.T, a *policy.ACL, checks []check) {
	t.Helper()
	for _, c := range checks {
		if got := a.Check(c.path, c.op, c.data).Allowed; got != c.want {
			t.Errorf("Check(%q, %s, %v).Allowed = %v, want %v", c.path, c.op, c.data, got, c.want)
		}
	}
}

func TestACLPriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policies []string
		checks   []check
		caps     map[string][]string
	}{
		{
			name: "exact rule beats a more permissive glob",
			policies: []string{`
path "secret/foo" { capabilities = ["read"] }
path "secret/*"   { capabilities = ["read", "update", "delete"] }`},
			checks: []check{
				{"secret/foo", read, nil, true},
				{"secret/foo", update, nil, false},
				{"secret/foo", del, nil, false},
				{"secret/bar", update, nil, true},
			},
			caps: map[string][]string{
				"secret/foo": {"read"},
				"secret/bar": {"delete", "read", "update"},
			},
		},
		{
			name: "longest prefix wins",
			policies: []string{`
path "secret/*"   { capabilities = ["read"] }
path "secret/a/*" { capabilities = ["deny"] }
path "secret/a/b*" { capabilities = ["update"] }`},
			checks: []check{
				{"secret/x", read, nil, true},
				{"secret/a/x", read, nil, false},
				{"secret/a/bc", update, nil, true},
				{"secret/a/bc", read, nil, false},
				{"secret", read, nil, false},
			},
			caps: map[string][]string{
				"secret/a/x":  {"deny"},
				"secret/a/bc": {"update"},
				"other":       {"deny"},
			},
		},
		{
			name: "later first wildcard wins (prefix after +)",
			policies: []string{`
path "secret/+/foo" { capabilities = ["read"] }
path "secret/bar/*" { capabilities = ["update"] }`},
			checks: []check{
				{"secret/bar/foo", update, nil, true},
				{"secret/bar/foo", read, nil, false},
				{"secret/baz/foo", read, nil, true},
			},
		},
		{
			name: "later first wildcard wins (+ after prefix)",
			policies: []string{`
path "secret/*"         { capabilities = ["update"] }
path "secret/data/+/x"  { capabilities = ["read"] }`},
			checks: []check{
				{"secret/data/a/x", read, nil, true},
				{"secret/data/a/x", update, nil, false},
				{"secret/data/a/y", update, nil, true},
			},
		},
		{
			name: "non-prefix beats prefix at the same position",
			policies: []string{`
path "secret/*"     { capabilities = ["update"] }
path "secret/+/foo" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/x/foo", read, nil, true},
				{"secret/x/foo", update, nil, false},
				{"secret/x/bar", update, nil, true},
			},
		},
		{
			name: "+ rule with trailing glob loses to + rule without",
			policies: []string{`
path "secret/+/*"   { capabilities = ["update"] }
path "secret/+/foo" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/x/foo", read, nil, true},
				{"secret/x/foo", update, nil, false},
				{"secret/x/foo/deeper", update, nil, true},
				{"secret/x", update, nil, false},
			},
		},
		{
			name: "fewer + wins",
			policies: []string{`
path "secret/+/+/baz"   { capabilities = ["update"] }
path "secret/+/bar/baz" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/a/bar/baz", read, nil, true},
				{"secret/a/bar/baz", update, nil, false},
				{"secret/a/qux/baz", update, nil, true},
			},
		},
		{
			name: "longer pattern wins",
			policies: []string{`
path "secret/+/a*"  { capabilities = ["update"] }
path "secret/+/ab*" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/x/abc", read, nil, true},
				{"secret/x/abc", update, nil, false},
				{"secret/x/acc", update, nil, true},
			},
		},
		{
			name: "lexicographically greater wins",
			policies: []string{`
path "secret/+/+/y" { capabilities = ["update"] }
path "secret/+/x/+" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/a/x/y", read, nil, true},
				{"secret/a/x/y", update, nil, false},
				{"secret/a/b/y", update, nil, true},
			},
		},
		{
			name: "segment counts must match for non-prefix + rules",
			policies: []string{`
path "secret/+"  { capabilities = ["read"] }
path "+/config"  { capabilities = ["update"] }
path "+"         { capabilities = ["list"] }`},
			checks: []check{
				{"secret/a", read, nil, true},
				{"secret/a/b", read, nil, false},
				{"secret", read, nil, false},
				{"azure/config", update, nil, true},
				{"azure/config/x", update, nil, false},
				{"anything", list, nil, true},
				{"any/thing", list, nil, false},
			},
		},
		{
			name:     "+ matches exactly one whole segment",
			policies: []string{`path "kv/+/data" { capabilities = ["read"] }`},
			checks: []check{
				{"kv/team/data", read, nil, true},
				{"kv/team/datax", read, nil, false},
				{"kv/team/sub/data", read, nil, false},
			},
		},
		{
			name:     "prefix match is a plain string prefix",
			policies: []string{`path "aks*" { capabilities = ["read"] }`},
			checks: []check{
				{"aks", read, nil, true},
				{"aksfoo/bar", read, nil, true},
				{"ak", read, nil, false},
			},
		},
		{
			name:     "star alone matches everything",
			policies: []string{`path "*" { capabilities = ["read"] }`},
			checks: []check{
				{"anything/at/all", read, nil, true},
				{"", read, nil, true},
				{"x", update, nil, false},
			},
		},
		{
			name:     "leading slash in rule is stripped; path too",
			policies: []string{`path "/secret/x" { capabilities = ["read"] }`},
			checks: []check{
				{"secret/x", read, nil, true},
				{"/secret/x", read, nil, true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := mustACL(t, tc.policies...)
			runChecks(t, a, tc.checks)
			for p, want := range tc.caps {
				if diff := cmp.Diff(want, a.Capabilities(p)); diff != "" {
					t.Errorf("Capabilities(%q) (-want +got):\n%s", p, diff)
				}
			}
		})
	}
}

func TestACLListOnFolders(t *testing.T) {
	t.Parallel()
	a := mustACL(t, `
path "exact" { capabilities = ["list"] }
path "dir/"  { capabilities = ["list"] }
path "glob/*" { capabilities = ["list"] }
path "nolist/*" { capabilities = ["read"] }
path "seg/+" { capabilities = ["list"] }
`)
	runChecks(t, a, []check{
		{"exact/", list, nil, true},  // exact rule without the trailing slash
		{"exact", list, nil, true},   // exact
		{"exact/", read, nil, false}, // only list falls back to the trimmed path
		{"dir/", list, nil, true},
		{"dir", list, nil, false},
		{"glob/", list, nil, true},
		{"glob/sub/", list, nil, true},
		{"glob", list, nil, false},
		{"nolist/", list, nil, false},
		{"seg/a/", list, nil, true}, // trimmed "seg/a" matches "seg/+"
	})
}

func TestACLMerging(t *testing.T) {
	t.Parallel()
	t.Run("deny wins whichever policy comes first", func(t *testing.T) {
		t.Parallel()
		for _, order := range [][]string{
			{`path "secret/*" { capabilities = ["read", "update", "sudo"] }`, `path "secret/*" { capabilities = ["deny"] }`},
			{`path "secret/*" { capabilities = ["deny"] }`, `path "secret/*" { capabilities = ["read", "update", "sudo"] }`},
		} {
			a := mustACL(t, order...)
			res := a.Check("secret/x", read, nil)
			if diff := cmp.Diff(policy.Result{Capabilities: []string{"deny"}}, res); diff != "" {
				t.Errorf("Check (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"deny"}, a.Capabilities("secret/x")); diff != "" {
				t.Errorf("Capabilities (-want +got):\n%s", diff)
			}
		}
	})
	t.Run("capabilities union", func(t *testing.T) {
		t.Parallel()
		a := mustACL(t,
			`path "kv/x" { capabilities = ["read"] }`,
			`path "kv/x" { capabilities = ["update", "sudo"] }`,
			`path "kv/x" { policy = "read" }`)
		if diff := cmp.Diff([]string{"list", "read", "sudo", "update"}, a.Capabilities("kv/x")); diff != "" {
			t.Errorf("Capabilities (-want +got):\n%s", diff)
		}
		runChecks(t, a, []check{{"kv/x", read, nil, true}, {"kv/x", update, nil, true}, {"kv/x", del, nil, false}})
	})
	t.Run("deny in one list drops the rest", func(t *testing.T) {
		t.Parallel()
		a := mustACL(t, `path "kv/x" { capabilities = ["read", "deny", "update"] }`)
		if diff := cmp.Diff([]string{"deny"}, a.Capabilities("kv/x")); diff != "" {
			t.Errorf("Capabilities (-want +got):\n%s", diff)
		}
	})
	t.Run("exact deny is not overridden by a glob from another policy", func(t *testing.T) {
		t.Parallel()
		a := mustACL(t, `path "kv/secret" { capabilities = ["deny"] }`, `path "kv/*" { capabilities = ["read"] }`)
		runChecks(t, a, []check{{"kv/secret", read, nil, false}, {"kv/other", read, nil, true}})
	})
	t.Run("exact and glob rules of the same text do not merge", func(t *testing.T) {
		t.Parallel()
		a := mustACL(t, `path "aks/*" { capabilities = ["read"] }`, `path "aks/mysecret" { capabilities = ["update"] }`)
		runChecks(t, a, []check{{"aks/mysecret", read, nil, false}, {"aks/mysecret", update, nil, true}})
	})
	t.Run("parameter lists merge; empty list dominates", func(t *testing.T) {
		t.Parallel()
		a := mustACL(t,
			`path "kv/p" {
  capabilities = ["update"]
  allowed_parameters = { "color" = ["red"], "size" = ["s"] }
}`,
			`path "kv/p" {
  capabilities = ["update"]
  allowed_parameters = { "color" = ["blue"], "size" = [] }
}`)
		runChecks(t, a, []check{
			{"kv/p", update, map[string]any{"color": "red"}, true},
			{"kv/p", update, map[string]any{"color": "blue"}, true},
			{"kv/p", update, map[string]any{"color": "green"}, false},
			{"kv/p", update, map[string]any{"size": "xxl"}, true},
			{"kv/p", update, map[string]any{"shape": "x"}, false},
		})
	})
	t.Run("nil policies are skipped", func(t *testing.T) {
		t.Parallel()
		a, err := policy.NewACL([]*policy.Policy{nil, mustParse(t, "x", `path "a" { capabilities = ["read"] }`)})
		if err != nil {
			t.Fatal(err)
		}
		runChecks(t, a, []check{{"a", read, nil, true}})
	})
}

func TestACLOperations(t *testing.T) {
	t.Parallel()
	a := mustACL(t, `
path "r" { capabilities = ["read"] }
path "c" { capabilities = ["create"] }
path "u" { capabilities = ["update"] }
path "p" { capabilities = ["patch"] }
path "d" { capabilities = ["delete"] }
path "l" { capabilities = ["list"] }
`)
	ops := []logical.Operation{read, create, update, patch, del, list, renew}
	allowed := map[string]map[logical.Operation]bool{
		"r": {read: true},
		"c": {create: true},
		"u": {update: true, renew: true},
		"p": {patch: true},
		"d": {del: true},
		"l": {list: true},
	}
	for path, ok := range allowed {
		for _, op := range ops {
			if got := a.Check(path, op, nil).Allowed; got != ok[op] {
				t.Errorf("Check(%q, %s) = %v, want %v", path, op, got, ok[op])
			}
		}
	}
	if a.Check("r", logical.Operation("help"), nil).Allowed {
		t.Error("unknown operation allowed")
	}
}

func TestACLSudoAndRoot(t *testing.T) {
	t.Parallel()
	a := mustACL(t, `
path "sys/audit/*" { capabilities = ["update", "sudo"] }
path "sys/mounts"  { capabilities = ["read"] }
path "sys/seal"    { capabilities = ["sudo"] }`)
	tests := []struct {
		path string
		op   logical.Operation
		want policy.Result
	}{
		{"sys/audit/file", update, policy.Result{Allowed: true, Sudo: true, Capabilities: []string{"sudo", "update"}}},
		{"sys/audit/file", del, policy.Result{Sudo: true, Capabilities: []string{"sudo", "update"}}},
		{"sys/mounts", read, policy.Result{Allowed: true, Capabilities: []string{"read"}}},
		{"sys/seal", update, policy.Result{Sudo: true, Capabilities: []string{"sudo"}}},
		{"nowhere", read, policy.Result{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, a.Check(tc.path, tc.op, nil)); diff != "" {
			t.Errorf("Check(%q, %s) (-want +got):\n%s", tc.path, tc.op, diff)
		}
	}

	root, err := policy.NewACL([]*policy.Policy{{Name: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(policy.Result{Allowed: true, Sudo: true, Root: true, Capabilities: []string{"root"}},
		root.Check("sys/seal", update, nil)); diff != "" {
		t.Errorf("root Check (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"root"}, root.Capabilities("anything")); diff != "" {
		t.Errorf("root Capabilities (-want +got):\n%s", diff)
	}
	if !root.IsRoot() || a.IsRoot() {
		t.Error("IsRoot wrong")
	}
	if _, err := policy.NewACL([]*policy.Policy{{Name: "root"}, {Name: "default"}}); err == nil {
		t.Error("root combined with other policies: want error")
	}
}

func TestACLTutorialAndDefault(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "default", policy.DefaultPolicyText())
	aks := mustParse(t, "aks", "path \"aks/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n")
	a, err := policy.NewACL([]*policy.Policy{aks, def})
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, a, []check{
		{"aks/mysecret", read, nil, true},
		{"aks/", list, nil, true},
		{"aks/mysecret", update, map[string]any{"foo": "bar"}, false},
		{"aks/mysecret", create, nil, false},
		{"aks/mysecret", del, nil, false},
		{"aks", read, nil, false},
		{"sys/mounts", read, nil, false},
		{"sys/policy/aks", update, nil, false},
		{"sys/policies/acl/aks", read, nil, false},
		// default policy allowances
		{"auth/token/lookup-self", read, nil, true},
		{"auth/token/lookup-self", update, nil, false},
		{"auth/token/renew-self", update, nil, true},
		{"auth/token/revoke-self", update, nil, true},
		{"auth/token/create", update, nil, false},
		{"sys/capabilities-self", update, nil, true},
		{"sys/leases/renew", update, nil, true},
		{"sys/leases/lookup", update, nil, true},
		{"sys/renew", update, nil, true},
		{"cubbyhole/x", create, nil, true},
		{"cubbyhole/", list, nil, true},
		{"sys/wrapping/unwrap", update, nil, true},
		{"sys/tools/hash/sha2-256", update, nil, true},
		{"sys/internal/ui/resultant-acl", read, nil, true},
		{"identity/oidc/provider/p1/authorize", read, nil, true},
		{"identity/oidc/provider/p1/x/authorize", read, nil, false},
		// templated rules are skipped without an identity store
		{"identity/entity/id/{{identity.entity.id}}", read, nil, false},
	})
	if diff := cmp.Diff([]string{"list", "read"}, a.Capabilities("aks/mysecret")); diff != "" {
		t.Errorf("Capabilities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"deny"}, a.Capabilities("sys/mounts")); diff != "" {
		t.Errorf("Capabilities (-want +got):\n%s", diff)
	}
}

func TestACLParameters(t *testing.T) {
	t.Parallel()
	a := mustACL(t, `
path "allowed" {
  capabilities = ["create", "update", "read"]
  allowed_parameters = {
    "Color" = ["red", "bl*", "*een"]
    "n"     = [1, true]
    "any"   = []
  }
}
path "allowed-star" {
  capabilities = ["update"]
  allowed_parameters = { "*" = [], "ttl" = ["1h"] }
}
path "only-star" {
  capabilities = ["update"]
  allowed_parameters = { "*" = [] }
}
path "denied" {
  capabilities = ["update"]
  denied_parameters = { "admin" = [], "role" = ["root", "super*"] }
}
path "denied-all" {
  capabilities = ["update", "list"]
  denied_parameters = { "*" = [] }
}
path "required" {
  capabilities = ["update", "delete"]
  required_parameters = ["Name", "id"]
}
`)
	runChecks(t, a, []check{
		{"allowed", update, nil, true},
		{"allowed", update, map[string]any{"color": "red"}, true},
		{"allowed", update, map[string]any{"COLOR": "blue"}, true},
		{"allowed", update, map[string]any{"color": "green"}, true},
		{"allowed", update, map[string]any{"color": "pink"}, false},
		{"allowed", update, map[string]any{"color": "red,blue"}, true},
		{"allowed", update, map[string]any{"color": "red,pink"}, false},
		{"allowed", update, map[string]any{"color": []any{"red", "blue"}}, true},
		{"allowed", update, map[string]any{"color": []any{"red", "pink"}}, false},
		{"allowed", update, map[string]any{"n": float64(1)}, true},
		{"allowed", update, map[string]any{"n": true}, true},
		{"allowed", update, map[string]any{"n": float64(2)}, false},
		{"allowed", update, map[string]any{"any": "whatever"}, true},
		{"allowed", update, map[string]any{"other": "x"}, false},
		{"allowed", create, map[string]any{"other": "x"}, false},
		{"allowed", read, map[string]any{"other": "x"}, false},
		{"allowed-star", update, map[string]any{"other": "x", "ttl": "1h"}, true},
		{"allowed-star", update, map[string]any{"ttl": "2h"}, false},
		{"only-star", update, map[string]any{"whatever": "x"}, true},
		{"denied", update, map[string]any{"name": "x"}, true},
		{"denied", update, map[string]any{"admin": "x"}, false},
		{"denied", update, map[string]any{"role": "root"}, false},
		{"denied", update, map[string]any{"role": "superuser"}, false},
		{"denied", update, map[string]any{"role": "reader"}, true},
		{"denied", update, map[string]any{"role": []any{"reader", "root"}}, false},
		{"denied", update, map[string]any{"role": []string{"superuser", "reader"}}, false},
		{"denied", update, map[string]any{"role": "reader,root"}, false},
		{"denied", update, map[string]any{"role": "reader, root"}, false},
		{"denied", update, map[string]any{"role": []any{"reader", "writer"}}, true},
		{"denied", update, map[string]any{"role": "reader,writer"}, true},
		{"denied-all", update, map[string]any{"x": "y"}, false},
		{"denied-all", update, nil, true},
		{"denied-all", list, map[string]any{"x": "y"}, true}, // list is not parameter-checked
		{"required", update, map[string]any{"name": "a", "ID": "b"}, true},
		{"required", update, map[string]any{"name": "a"}, false},
		{"required", update, nil, false},
		{"required", del, nil, true},
	})
}

func TestAnyAccessUnder(t *testing.T) {
	t.Parallel()
	mk := func(src string) *policy.ACL {
		t.Helper()
		p, err := policy.Parse("p", src)
		if err != nil {
			t.Fatal(err)
		}
		a, err := policy.NewACL([]*policy.Policy{p})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name   string
		policy string
		mount  string
		want   bool
	}{
		{"tutorial policy sees aks/", `path "aks/*" { capabilities = ["read", "list"] }`, "aks/", true},
		{"tutorial policy does not see secret/", `path "aks/*" { capabilities = ["read", "list"] }`, "secret/", false},
		{"exact rule below the mount", `path "secret/data/app" { capabilities = ["read"] }`, "secret/", true},
		{"deny only", `path "secret/*" { capabilities = ["deny"] }`, "secret/", false},
		{"glob above the mount", `path "se*" { capabilities = ["read"] }`, "secret/", true},
		{"plus segment", `path "secret/+/app" { capabilities = ["read"] }`, "secret/", true},
		{"plus segment elsewhere", `path "other/+/app" { capabilities = ["read"] }`, "secret/", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := mk(tc.policy).AnyAccessUnder(tc.mount); got != tc.want {
				t.Errorf("AnyAccessUnder(%q) = %v, want %v", tc.mount, got, tc.want)
			}
		})
	}
}
