package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// paramsAllowed applies required, denied and allowed parameter constraints
// to request data, in Vault's order. Parameter names match
// case-insensitively.
func paramsAllowed(p *perms, data map[string]any) bool {
	if len(p.required) > 0 {
		lower := lowerKeys(data)
		for _, k := range p.required {
			if _, ok := lower[strings.ToLower(k)]; !ok {
				return false
			}
		}
	}
	if len(data) == 0 {
		return true
	}
	if len(p.denied) > 0 {
		if _, all := p.denied["*"]; all {
			return false
		}
		for k, v := range data {
			if list, ok := p.denied[strings.ToLower(k)]; ok && anyValueInList(v, list) {
				return false
			}
		}
	}
	if len(p.allowed) == 0 {
		return true
	}
	_, allowAll := p.allowed["*"]
	if allowAll && len(p.allowed) == 1 {
		return true
	}
	for k, v := range data {
		list, ok := p.allowed[strings.ToLower(k)]
		if !ok {
			if !allowAll {
				return false
			}
			continue
		}
		if !valueInList(v, list) {
			return false
		}
	}
	return true
}

func lowerKeys(m map[string]any) map[string]struct{} {
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[strings.ToLower(k)] = struct{}{}
	}
	return out
}

// valueInList reports whether v is permitted by list: an empty list
// matches anything; a list value matches when every element does; a
// string matches a list entry exactly or by a leading/trailing "*" glob,
// and a comma-separated string also matches when each element does.
func valueInList(v any, list []any) bool {
	if len(list) == 0 {
		return true
	}
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if !scalarInList(e, list) {
				return false
			}
		}
		return true
	case []string:
		for _, e := range x {
			if !scalarInList(e, list) {
				return false
			}
		}
		return true
	case string:
		if scalarInList(x, list) {
			return true
		}
		if !strings.Contains(x, ",") {
			return false
		}
		for _, e := range strings.Split(x, ",") {
			if !scalarInList(strings.TrimSpace(e), list) {
				return false
			}
		}
		return true
	default:
		return scalarInList(v, list)
	}
}

// anyValueInList is valueInList for denied parameters: a list value, or a
// comma-separated string, is denied when any one element is.
func anyValueInList(v any, list []any) bool {
	if valueInList(v, list) {
		return true
	}
	switch x := v.(type) {
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { return scalarInList(e, list) })
	case []string:
		return slices.ContainsFunc(x, func(e string) bool { return scalarInList(e, list) })
	case string:
		for _, e := range strings.Split(x, ",") {
			if scalarInList(strings.TrimSpace(e), list) {
				return true
			}
		}
	}
	return false
}

func scalarInList(v any, list []any) bool {
	vs, vIsString := v.(string)
	for _, e := range list {
		if e == nil || v == nil {
			if e == nil && v == nil {
				return true
			}
			continue
		}
		es, eIsString := e.(string)
		if eIsString && vIsString {
			if globMatch(es, vs) {
				return true
			}
			continue
		}
		if canonical(e) == canonical(v) {
			return true
		}
	}
	return false
}

// globMatch matches val against item, where item may start and/or end
// with "*" (a lone "*" is literal, as in Vault).
func globMatch(item, val string) bool {
	if len(item) < 2 {
		return item == val
	}
	pre, suf := item[0] == '*', item[len(item)-1] == '*'
	switch {
	case pre && suf:
		return strings.Contains(val, item[1:len(item)-1])
	case pre:
		return strings.HasSuffix(val, item[1:])
	case suf:
		return strings.HasPrefix(val, item[:len(item)-1])
	default:
		return item == val
	}
}

// canonical renders a scalar for comparison across JSON and HCL number
// representations.
func canonical(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case int64:
		return strconv.FormatFloat(float64(x), 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		return fmt.Sprintf("%v", x)
	}
}
