package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/policy"
)

// benchPolicies builds 10 policies of 5 rules each (50 paths): exact,
// prefix and "+" rules over distinct mounts.
func benchPolicies(tb testing.TB) []*policy.Policy {
	tb.Helper()
	var ps []*policy.Policy
	for i := range 10 {
		var sb strings.Builder
		fmt.Fprintf(&sb, "path \"team%d/app/config\" { capabilities = [\"read\"] }\n", i)
		fmt.Fprintf(&sb, "path \"team%d/app/*\" { capabilities = [\"read\", \"list\"] }\n", i)
		fmt.Fprintf(&sb, "path \"team%d/+/shared/*\" { capabilities = [\"update\"] }\n", i)
		fmt.Fprintf(&sb, "path \"secret/data/team%d/*\" { capabilities = [\"create\", \"update\"] }\n", i)
		fmt.Fprintf(&sb, "path \"auth/team%d/login\" { capabilities = [\"update\"] }\n", i)
		ps = append(ps, mustParse(tb, fmt.Sprintf("team%d", i), sb.String()))
	}
	return ps
}

func BenchmarkACLCheck(b *testing.B) {
	a, err := policy.NewACL(benchPolicies(b))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name, path string
		op         logical.Operation
		want       bool
	}{
		{"exact", "team7/app/config", read, true},
		{"glob", "team7/app/deep/er/secret", read, true},
		{"segment", "team3/x/shared/thing", update, true},
		{"miss", "nowhere/at/all/in/this/acl", read, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if a.Check(c.path, c.op, nil).Allowed != c.want {
					b.Fatal("unexpected result")
				}
			}
		})
	}
}

func BenchmarkNewACL(b *testing.B) {
	ps := benchPolicies(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := policy.NewACL(ps); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ name, text string }{
		{"tutorial", aksPolicy},
		{"default", policy.DefaultPolicyText()},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := policy.Parse("p", c.text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
