package framework

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// FieldType is the type of a request field, with Vault's lenient input
// rules (numbers as strings, comma strings as lists, durations as "1h" or
// seconds).
type FieldType int

// The field types.
const (
	TypeString FieldType = iota + 1
	TypeLowerCaseString
	TypeInt
	TypeBool
	// TypeDurationSecond accepts an integer number of seconds, or a string
	// such as "90", "90s", "15m", "24h" or "7d". Parsed as time.Duration.
	TypeDurationSecond
	// TypeCommaStringSlice accepts a JSON array of strings or a comma
	// separated string; elements are trimmed and empty ones dropped.
	TypeCommaStringSlice
	// TypeStringSlice accepts a JSON array or a single string.
	TypeStringSlice
	// TypeKVPairs accepts an object of strings (or "k=v,k2=v2").
	TypeKVPairs
	// TypeMap accepts any JSON object.
	TypeMap
	// TypeRaw accepts anything, unparsed.
	TypeRaw
)

// FieldSchema describes one field.
type FieldSchema struct {
	Type        FieldType
	Default     any
	Description string
	// Required makes Validate fail when the field is absent.
	Required bool
}

// FieldData is a request's fields, parsed lazily against a schema.
type FieldData struct {
	// Raw is the request data plus the path captures.
	Raw map[string]any
	// Schema may be nil (every field is then TypeRaw).
	Schema map[string]*FieldSchema
}

// Validate parses every present field and checks required ones, returning
// a 400 error that names the first bad field (in name order).
func (d *FieldData) Validate() error {
	names := make([]string, 0, len(d.Schema))
	for k := range d.Schema {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		s := d.Schema[k]
		v, ok := d.Raw[k]
		if !ok || v == nil {
			if s.Required {
				return logical.BadRequest("missing required field %q", k)
			}
			continue
		}
		if _, err := parseField(s.Type, v); err != nil {
			return logical.BadRequest("error converting input %v for field %q: %v", v, k, err)
		}
	}
	return nil
}

// GetOk returns the parsed value of k and whether it was present in the
// request. Absent fields return the schema default (or the type's zero
// value) and false.
func (d *FieldData) GetOk(k string) (any, bool) {
	s, hasSchema := d.Schema[k]
	typ := TypeRaw
	if hasSchema {
		typ = s.Type
	}
	if v, ok := d.Raw[k]; ok && v != nil {
		parsed, err := parseField(typ, v)
		if err == nil {
			return parsed, true
		}
	}
	if hasSchema && s.Default != nil {
		parsed, err := parseField(typ, s.Default)
		if err == nil {
			return parsed, false
		}
	}
	return zero(typ), false
}

// Get returns the parsed value of k or its default.
func (d *FieldData) Get(k string) any {
	v, _ := d.GetOk(k)
	return v
}

// String returns field k as a string.
func (d *FieldData) String(k string) string { s, _ := d.Get(k).(string); return s }

// Int returns field k as an int.
func (d *FieldData) Int(k string) int { i, _ := d.Get(k).(int); return i }

// Bool returns field k as a bool.
func (d *FieldData) Bool(k string) bool { b, _ := d.Get(k).(bool); return b }

// Duration returns field k as a duration.
func (d *FieldData) Duration(k string) time.Duration {
	t, _ := d.Get(k).(time.Duration)
	return t
}

// Strings returns field k as a string slice.
func (d *FieldData) Strings(k string) []string { s, _ := d.Get(k).([]string); return s }

// KVPairs returns field k as a string map.
func (d *FieldData) KVPairs(k string) map[string]string {
	m, _ := d.Get(k).(map[string]string)
	return m
}

// Map returns field k as a JSON object.
func (d *FieldData) Map(k string) map[string]any { m, _ := d.Get(k).(map[string]any); return m }

// Has reports whether k was present in the request with a non-null value.
func (d *FieldData) Has(k string) bool { v, ok := d.Raw[k]; return ok && v != nil }

func zero(t FieldType) any {
	switch t {
	case TypeString, TypeLowerCaseString:
		return ""
	case TypeInt:
		return 0
	case TypeBool:
		return false
	case TypeDurationSecond:
		return time.Duration(0)
	case TypeCommaStringSlice, TypeStringSlice:
		return []string{}
	case TypeKVPairs:
		return map[string]string{}
	case TypeMap:
		return map[string]any{}
	default:
		return nil
	}
}

func parseField(t FieldType, v any) (any, error) {
	switch t {
	case TypeString:
		return parseString(v)
	case TypeLowerCaseString:
		s, err := parseString(v)
		return strings.ToLower(s), err
	case TypeInt:
		return parseInt(v)
	case TypeBool:
		return parseBool(v)
	case TypeDurationSecond:
		return ParseDuration(v)
	case TypeCommaStringSlice:
		return parseStrings(v, true)
	case TypeStringSlice:
		return parseStrings(v, false)
	case TypeKVPairs:
		return parseKVPairs(v)
	case TypeMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("expected a map, got %T", v)
		}
		return m, nil
	default:
		return v, nil
	}
}

func parseString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	default:
		return "", fmt.Errorf("expected a string, got %T", v)
	}
}

func parseInt(v any) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	case int64:
		return int(x), nil
	case float64:
		if x != float64(int(x)) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int(x), nil
	case json.Number:
		i, err := x.Int64()
		return int(i), err
	case string:
		if x == "" {
			return 0, nil
		}
		i, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", x)
		}
		return i, nil
	default:
		return 0, fmt.Errorf("expected an integer, got %T", v)
	}
}

func parseBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		if x == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(x)
		if err != nil {
			return false, fmt.Errorf("%q is not a boolean", x)
		}
		return b, nil
	case float64:
		return x != 0, nil
	case json.Number:
		return x.String() != "0", nil
	case int:
		return x != 0, nil
	default:
		return false, fmt.Errorf("expected a boolean, got %T", v)
	}
}

// maxDurationSeconds bounds durations given in seconds (about 292 years,
// what time.Duration can hold).
const maxDurationSeconds = int64(1<<63-1) / int64(time.Second)

// ParseDuration parses Vault's duration input: integer seconds (number or
// string) or a Go duration string, with "d" accepted for days. Negative
// and out-of-range durations are errors.
func ParseDuration(v any) (time.Duration, error) {
	secs := func(n int64) (time.Duration, error) {
		if n < 0 {
			return 0, fmt.Errorf("negative duration %d", n)
		}
		if n > maxDurationSeconds {
			return 0, fmt.Errorf("duration %d seconds is out of range", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	switch x := v.(type) {
	case time.Duration:
		if x < 0 {
			return 0, fmt.Errorf("negative duration %s", x)
		}
		return x, nil
	case int:
		return secs(int64(x))
	case int64:
		return secs(x)
	case float64:
		if x != x || x < 0 || x > float64(maxDurationSeconds) {
			return 0, fmt.Errorf("duration %v is out of range", x)
		}
		return time.Duration(x * float64(time.Second)), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return secs(i)
		}
		f, err := x.Float64()
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", x.String())
		}
		return ParseDuration(f)
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return secs(i)
		}
		if strings.HasSuffix(s, "d") {
			days, err := strconv.ParseInt(strings.TrimSuffix(s, "d"), 10, 64)
			if err != nil || days < 0 || days > maxDurationSeconds/86400 {
				return 0, fmt.Errorf("invalid duration %q", s)
			}
			return time.Duration(days) * 24 * time.Hour, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return d, nil
	default:
		return 0, fmt.Errorf("expected a duration, got %T", v)
	}
}

func parseStrings(v any, comma bool) ([]string, error) {
	var raw []string
	switch x := v.(type) {
	case string:
		if comma {
			raw = strings.Split(x, ",")
		} else {
			raw = []string{x}
		}
	case []string:
		raw = x
	case []any:
		for _, e := range x {
			s, err := parseString(e)
			if err != nil {
				return nil, err
			}
			raw = append(raw, s)
		}
	default:
		return nil, fmt.Errorf("expected a list of strings, got %T", v)
	}
	out := make([]string, 0, len(raw))
	for _, s := range raw {
		s = strings.TrimSpace(s)
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func parseKVPairs(v any) (map[string]string, error) {
	out := map[string]string{}
	switch x := v.(type) {
	case map[string]string:
		return x, nil
	case map[string]any:
		for k, e := range x {
			s, err := parseString(e)
			if err != nil {
				return nil, err
			}
			out[k] = s
		}
	case string:
		for _, kv := range strings.Split(x, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%q is not k=v", kv)
			}
			out[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("expected k=v strings, got %T", e)
			}
			k, val, ok := strings.Cut(s, "=")
			if !ok {
				return nil, fmt.Errorf("%q is not k=v", s)
			}
			out[k] = val
		}
	default:
		return nil, fmt.Errorf("expected a map of strings, got %T", v)
	}
	return out, nil
}
