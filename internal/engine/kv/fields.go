package kv

import (
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// mergePatchContentType is the only media type PATCH accepts (RFC 7386).
const mergePatchContentType = "application/merge-patch+json"

// checkPatchContentType answers 415 unless the request declares a JSON
// merge patch body, as Vault's HTTP layer does (400 when the header does
// not parse).
func checkPatchContentType(req *logical.Request) error {
	var ct string
	for k, v := range req.Headers {
		if strings.EqualFold(k, "Content-Type") && len(v) > 0 {
			ct = v[0]
			break
		}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		if ct == "" {
			return &logical.CodedError{Status: 415}
		}
		return logical.BadRequest("%v", err)
	}
	if mt != mergePatchContentType {
		return &logical.CodedError{Status: 415}
	}
	return nil
}

// objectField returns request field name as a JSON object. A JSON null is
// an empty object (Vault's weak decoding); any other non-object is a 400.
func objectField(d *framework.FieldData, name string) (map[string]any, error) {
	raw := d.Raw[name]
	switch v := raw.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return v, nil
	default:
		return nil, logical.BadRequest("error converting input %v for field %q: '' expected a map, got '%s'", raw, name, jsonKind(raw))
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case float64, json.Number, int, int64:
		return "float64"
	case []any:
		return "slice"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// intValue converts a JSON scalar to an int as Vault's weak decoding does.
func intValue(v any) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case float64:
		if x != float64(int64(x)) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || f != float64(int64(f)) {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(f), nil
	case string:
		if strings.TrimSpace(x) == "" {
			return 0, nil
		}
		return strconv.ParseInt(strings.TrimSpace(x), 10, 64)
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	default:
		return 0, fmt.Errorf("expected an integer, got %T", v)
	}
}

// casOption returns options.cas and whether it was given. options must be
// an object (or null); a cas that is not an integer is a 400.
func casOption(d *framework.FieldData) (int64, bool, error) {
	raw, ok := d.Raw["options"]
	if !ok || raw == nil {
		return 0, false, nil
	}
	opts, ok := raw.(map[string]any)
	if !ok {
		return 0, false, logical.BadRequest("error converting input %v for field %q: '' expected a map, got '%s'", raw, "options", jsonKind(raw))
	}
	casRaw, ok := opts["cas"]
	if !ok {
		return 0, false, nil
	}
	cas, err := intValue(casRaw)
	if err != nil {
		return 0, false, logical.BadRequest("error parsing check-and-set parameter")
	}
	return cas, true, nil
}

// checkCAS enforces check-and-set: a given cas must equal the current
// version (0 = the key must not exist yet); without one the write fails
// when the mount or the key requires cas.
func checkCAS(d *framework.FieldData, cfg kvConfig, meta *keyMetadata) error {
	cas, given, err := casOption(d)
	if err != nil {
		return err
	}
	if given {
		if cas < 0 || uint64(cas) != meta.CurrentVersion {
			return logical.BadRequest("check-and-set parameter did not match the current version")
		}
		return nil
	}
	if cfg.CasRequired || meta.CasRequired {
		return logical.BadRequest("check-and-set parameter required for this call")
	}
	return nil
}

// versionsField parses Vault's TypeCommaIntSlice: a JSON array of numbers
// or numeric strings, a comma separated string, or a single number.
func versionsField(d *framework.FieldData) ([]uint64, error) {
	raw, ok := d.Raw["versions"]
	if !ok || raw == nil {
		return nil, nil
	}
	var items []any
	switch x := raw.(type) {
	case []any:
		items = x
	case string:
		for _, s := range strings.Split(x, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
	default:
		items = []any{x}
	}
	out := make([]uint64, 0, len(items))
	for _, it := range items {
		n, err := intValue(it)
		if err != nil || n < 0 {
			return nil, logical.BadRequest("error converting input %v for field %q: cannot parse %v as a version number", raw, "versions", it)
		}
		out = append(out, uint64(n))
	}
	return out, nil
}

// signedDuration parses a duration field that may be negative (the mount
// config's delete_version_after): integer seconds or a Go duration string
// ("d" accepted for days).
func signedDuration(v any) (time.Duration, error) {
	if s, ok := v.(string); ok {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "-") {
			d, err := signedDuration(strings.TrimPrefix(s, "-"))
			return -d, err
		}
		return framework.ParseDuration(s)
	}
	if v == nil {
		return 0, nil
	}
	if n, err := intValue(v); err == nil && n < 0 {
		d, err := framework.ParseDuration(-n)
		return -d, err
	}
	return framework.ParseDuration(v)
}

// durationField parses a field as a duration; absent means ok=false.
func durationField(d *framework.FieldData, name string, allowNegative bool) (time.Duration, bool, error) {
	raw, ok := d.Raw[name]
	if !ok {
		return 0, false, nil
	}
	dur, err := signedDuration(raw)
	if err != nil {
		return 0, false, logical.BadRequest("error converting input %v for field %q: %v", raw, name, err)
	}
	if dur < 0 && !allowNegative {
		return 0, false, logical.BadRequest("%s cannot be negative", name)
	}
	return dur, true, nil
}

// Limits on custom_metadata, as Vault enforces them.
const (
	maxCustomMetadataKeys        = 64
	maxCustomMetadataKeyLength   = 128
	maxCustomMetadataValueLength = 512
	customMetadataErrPrefix      = "custom_metadata validation failed"
)

// customMetadataField converts custom_metadata to strings. With
// keepNulls, JSON nulls are returned as deletions (for PATCH).
func customMetadataField(raw any, keepNulls bool) (set map[string]string, unset []string, err error) {
	set = map[string]string{}
	if raw == nil {
		return set, nil, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, nil, logical.BadRequest("%s: '' expected a map, got '%s'", customMetadataErrPrefix, jsonKind(raw))
	}
	for k, v := range m {
		switch x := v.(type) {
		case nil:
			if keepNulls {
				unset = append(unset, k)
				continue
			}
			set[k] = ""
		case string:
			set[k] = x
		case json.Number:
			set[k] = x.String()
		case float64:
			set[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			if x {
				set[k] = "1"
			} else {
				set[k] = "0"
			}
		default:
			return nil, nil, logical.BadRequest("%s: '%s' expected type 'string', got unconvertible type '%T'", customMetadataErrPrefix, k, v)
		}
	}
	return set, unset, nil
}

// validateCustomMetadata applies Vault's limits and reports every problem
// in Vault's multi-error format.
func validateCustomMetadata(m map[string]string) error {
	var errs []string
	if n := len(m); n > maxCustomMetadataKeys {
		errs = append(errs, fmt.Sprintf("%s: payload must contain at most %d keys, provided %d", customMetadataErrPrefix, maxCustomMetadataKeys, n))
	} else {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := m[k]
			if l := len(k); l == 0 || l > maxCustomMetadataKeyLength {
				errs = append(errs, fmt.Sprintf("%s: length of key %q is %d but must be 0 < len(key) <= %d", customMetadataErrPrefix, k, l, maxCustomMetadataKeyLength))
			}
			if l := len(v); l == 0 || l > maxCustomMetadataValueLength {
				errs = append(errs, fmt.Sprintf("%s: length of value for key %q is %d but must be 0 < len(value) <= %d", customMetadataErrPrefix, k, l, maxCustomMetadataValueLength))
			}
			if !printable(k) {
				errs = append(errs, fmt.Sprintf("%s: key %q (%s) contains unprintable characters", customMetadataErrPrefix, k, k))
			}
			if !printable(v) {
				errs = append(errs, fmt.Sprintf("%s: value for key %q contains unprintable characters", customMetadataErrPrefix, k))
			}
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return logical.BadRequest("1 error occurred:\n\t* %s\n\n", errs[0])
	default:
		return logical.BadRequest("%d errors occurred:\n\t* %s\n\n", len(errs), strings.Join(errs, "\n\t* "))
	}
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// mergePatch applies an RFC 7386 JSON merge patch to target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	out := make(map[string]any, len(t)+len(p))
	if ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = mergePatch(out[k], v)
	}
	return out
}

// subkeys replaces every leaf of m (a non-object or an empty object) with
// nil. Objects at depth maxDepth (top level = 1) become leaves; 0 means no
// limit.
func subkeys(m map[string]any, depth, maxDepth int) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		sub, ok := v.(map[string]any)
		if ok && len(sub) > 0 && (maxDepth == 0 || depth < maxDepth) {
			out[k] = subkeys(sub, depth+1, maxDepth)
			continue
		}
		out[k] = nil
	}
	return out
}
