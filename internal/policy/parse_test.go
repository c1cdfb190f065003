package policy_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/policy"
)

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		text    string
		wantMsg string // exact public message; "" means only the status is checked
	}{
		{"syntax error", "path \"a\" {\n  capabilities = [\"read\"\n}\n", ""},
		{"unclosed block", `path "a" {`, ""},
		{"unknown capability", `path "a" { capabilities = ["read", "fly"] }`,
			`failed to parse policy: path "a": invalid capability "fly"`},
		{"unknown top-level key", "name = \"x\"\nbogus = 1\n",
			`failed to parse policy: invalid key "bogus" on line 2`},
		{"unknown top-level block", "\n\nfoo \"x\" {}\n",
			`failed to parse policy: invalid key "foo" on line 3`},
		{"unknown path key", "path \"a\" {\n  capabilities = [\"read\"]\n  colour = \"red\"\n}\n",
			`failed to parse policy: path "a": invalid key "colour" on line 3`},
		{"bad legacy policy", `path "a" { policy = "admin" }`,
			`failed to parse policy: path "a": invalid policy "admin"`},
		{"plus star", `path "a/+*" { capabilities = ["read"] }`,
			`failed to parse policy: path "a/+*": invalid use of wildcards ('+*' is forbidden)`},
		{"capabilities not a list of strings", `path "a" { capabilities = [1] }`, ""},
		{"variables are not allowed", `path "a" { capabilities = [read] }`, ""},
		{"path as attribute", `path = "a"`, ""},
		{"bad ttl", `path "a" { capabilities = ["read"]  max_wrapping_ttl = "soon" }`, ""},
		{"max below min", `path "a" {
  capabilities = ["read"]
  min_wrapping_ttl = "1h"
  max_wrapping_ttl = "1m"
}`, `failed to parse policy: path "a": max_wrapping_ttl cannot be less than min_wrapping_ttl`},
		{"allowed_parameters not a map", `path "a" {
  capabilities = ["read"]
  allowed_parameters = ["x"]
}`, ""},
		{"json syntax error", "{\"path\": {\"a\": }", ""},
		{"json unknown key", `{"pth": {}}`, `failed to parse policy: invalid key "pth" on line 1`},
		{"json unknown capability", `{"path": {"a": {"capabilities": ["fly"]}}}`,
			`failed to parse policy: path "a": invalid capability "fly"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := policy.Parse("x", tc.text)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			var ce *logical.CodedError
			if !errors.As(err, &ce) || ce.Status != 400 {
				t.Fatalf("error %v (%T): want *logical.CodedError with status 400", err, err)
			}
			if !errors.Is(err, logical.ErrInvalidRequest) {
				t.Errorf("error does not wrap ErrInvalidRequest")
			}
			if tc.wantMsg != "" {
				if diff := cmp.Diff(tc.wantMsg, ce.Msg); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestParseSyntaxErrorNamesPosition(t *testing.T) {
	t.Parallel()
	_, err := policy.Parse("x", "path \"a\" {\n  capabilities = [\"read\"\n}\n")
	var ce *logical.CodedError
	if !errors.As(err, &ce) {
		t.Fatalf("want CodedError, got %v", err)
	}
	// The message must point at line 2 or 3 (where the list is unclosed).
	if got := ce.Msg; !containsAny(got, "At 2:", "At 3:") {
		t.Errorf("message %q does not name the line/column", got)
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}

func TestParseRules(t *testing.T) {
	t.Parallel()
	text := `
# comment
name = "ignored"
path "/secret/*" {
  capabilities = ["read", "list", "read"]
}
path "secret/+/data/*" {
  capabilities = ["update"]
}
path "legacy" {
  policy = "write"
}
path "legacy-sudo" {
  policy = "sudo"
  capabilities = ["patch"]
}
path "params" {
  capabilities = ["create"]
  allowed_parameters = { "Foo" = ["a", 2] }
  denied_parameters {
    bar = []
  }
  required_parameters = ["baz"]
  min_wrapping_ttl = 60
  max_wrapping_ttl = "1h"
  comment = "hi"
  mfa_methods = ["m"]
}
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
`
	p, err := policy.Parse("mine", text)
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.Policy{
		Name:      "mine",
		Raw:       text,
		Templated: true,
		Rules: []*policy.PathRule{
			{Path: "secret/", IsPrefix: true, Capabilities: []string{"read", "list"}},
			{Path: "secret/+/data/*", IsPrefix: true, HasSegmentWildcards: true, Capabilities: []string{"update"}},
			{Path: "legacy", Capabilities: []string{"create", "read", "update", "delete", "list"}},
			{Path: "legacy-sudo", Capabilities: []string{"create", "read", "update", "delete", "list", "sudo", "patch"}},
			{
				Path:               "params",
				Capabilities:       []string{"create"},
				AllowedParameters:  map[string][]any{"foo": {"a", json.Number("2")}},
				DeniedParameters:   map[string][]any{"bar": {}},
				RequiredParameters: []string{"baz"},
				MinWrappingTTL:     time.Minute,
				MaxWrappingTTL:     time.Hour,
			},
			{Path: "identity/entity/id/{{identity.entity.id}}", Templated: true, Capabilities: []string{"read"}},
		},
	}
	if diff := cmp.Diff(want, p, cmpopts.IgnoreUnexported(policy.PathRule{})); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	a := mustACLFrom(t, mustParse(t, "j", `{"path": {"kv/*": {"capabilities": ["read"]}, "kv/x": {"policy": "deny"}}}`))
	runChecks(t, a, []check{{"kv/a", read, nil, true}, {"kv/x", read, nil, false}})
}

func TestParseEmptyPolicy(t *testing.T) {
	t.Parallel()
	p, err := policy.Parse("e", "# nothing\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Rules) != 0 {
		t.Errorf("rules: %+v", p.Rules)
	}
}

func mustACLFrom(t testing.TB, ps ...*policy.Policy) *policy.ACL {
	t.Helper()
	a, err := policy.NewACL(ps)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
