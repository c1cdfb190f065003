package framework_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/logical/framework"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := []struct {
		in   any
		want time.Duration
	}{
		{"", 0},
		{"90", 90 * time.Second},
		{90, 90 * time.Second},
		{json.Number("3600"), time.Hour},
		{float64(1.5), 1500 * time.Millisecond},
		{"15m", 15 * time.Minute},
		{"768h", 768 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
	}
	for _, tc := range good {
		got, err := framework.ParseDuration(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%#v) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []any{"-5", -5, json.Number("-1"), "-1h", "-2d", "soon", "99999999999999999999", json.Number("1e300"), float64(-1), []any{"1h"}} {
		if got, err := framework.ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%#v) = %v, want an error", in, got)
		}
	}
}

func TestFieldDataValidate(t *testing.T) {
	t.Parallel()
	schema := map[string]*framework.FieldSchema{
		"ttl":      {Type: framework.TypeDurationSecond},
		"policies": {Type: framework.TypeCommaStringSlice},
		"n":        {Type: framework.TypeInt, Required: true},
	}
	d := &framework.FieldData{Raw: map[string]any{"ttl": "1h", "policies": "a, b,,c", "n": json.Number("3"), "extra": 1}, Schema: schema}
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got := d.Duration("ttl"); got != time.Hour {
		t.Errorf("ttl = %v", got)
	}
	if got := d.Strings("policies"); len(got) != 3 || got[2] != "c" {
		t.Errorf("policies = %q", got)
	}
	for name, raw := range map[string]map[string]any{
		"missing required": {"ttl": "1h"},
		"bad duration":     {"n": 1, "ttl": "-1h"},
		"bad int":          {"n": "three"},
		"bad list":         {"n": 1, "policies": map[string]any{}},
	} {
		if err := (&framework.FieldData{Raw: raw, Schema: schema}).Validate(); err == nil {
			t.Errorf("%s: Validate succeeded", name)
		}
	}
	// null means absent.
	if (&framework.FieldData{Raw: map[string]any{"ttl": nil}, Schema: schema}).Has("ttl") {
		t.Error("a null field counts as present")
	}
}
