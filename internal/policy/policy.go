// Package policy parses Vault-compatible ACL policies (HCL or JSON),
// merges them into an ACL that answers "may this request proceed?" with
// Vault's exact rule priority, and stores named policies behind the
// barrier. Parse, NewACL and the ACL methods are pure; Store does I/O
// through a logical.Storage. All exported types are safe for concurrent
// use once built (an ACL and a parsed Policy are immutable).
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
)

// Capability names as they appear in policies and in sys/capabilities.
const (
	CapDeny      = "deny"
	CapCreate    = "create"
	CapRead      = "read"
	CapUpdate    = "update"
	CapDelete    = "delete"
	CapList      = "list"
	CapSudo      = "sudo"
	CapPatch     = "patch"
	CapSubscribe = "subscribe"
	CapRecover   = "recover"
	// CapRoot is only ever reported (for root tokens), never granted.
	CapRoot = "root"
)

// Capability bits, as in Vault's bitmap.
const (
	bitDeny uint32 = 1 << iota
	bitCreate
	bitRead
	bitUpdate
	bitDelete
	bitList
	bitSudo
	bitPatch
	bitSubscribe
	bitRecover
)

var capBits = map[string]uint32{
	CapDeny:      bitDeny,
	CapCreate:    bitCreate,
	CapRead:      bitRead,
	CapUpdate:    bitUpdate,
	CapDelete:    bitDelete,
	CapList:      bitList,
	CapSudo:      bitSudo,
	CapPatch:     bitPatch,
	CapSubscribe: bitSubscribe,
	CapRecover:   bitRecover,
}

// Names of the built-in policies.
const (
	// RootName is the policy of root tokens: everything is allowed. It is
	// never stored.
	RootName = "root"
	// DefaultName is the policy attached to every non-root token by
	// default. It is created at Setup and may be edited but not deleted.
	DefaultName = "default"
	// responseWrappingName is immutable and never listed.
	responseWrappingName = "response-wrapping"
	controlGroupName     = "control-group"
)

// Policy is one parsed ACL policy. It is immutable after Parse.
type Policy struct {
	// Name is the policy's name (lowercased by Store.Put).
	Name string
	// Raw is the policy text as written.
	Raw string
	// Rules are the path stanzas in declaration order.
	Rules []*PathRule
	// Templated reports whether a rule path uses identity templating
	// ("{{identity.entity.id}}"). Templated rules are skipped by NewACL
	// because this server has no identity store.
	Templated bool
}

// PathRule is one `path "..." { ... }` stanza.
type PathRule struct {
	// Path is the pattern with any leading "/" removed and, for a prefix
	// rule without "+" segments, the trailing "*" removed.
	Path string
	// IsPrefix reports a trailing "*" glob.
	IsPrefix bool
	// HasSegmentWildcards reports a "+" segment; such rules keep their
	// trailing "*" in Path.
	HasSegmentWildcards bool
	// Templated reports identity templating in Path.
	Templated bool
	// Capabilities are the granted capabilities (just ["deny"] when deny
	// was listed), in declaration order with duplicates removed.
	Capabilities []string
	// RequiredParameters must all be present in the request data.
	RequiredParameters []string
	// AllowedParameters and DeniedParameters map a lowercased parameter
	// name to its allowed or denied values; an empty list means any value.
	AllowedParameters map[string][]any
	DeniedParameters  map[string][]any
	// MinWrappingTTL and MaxWrappingTTL constrain response wrapping; zero
	// means unset. They are parsed and merged but not enforced.
	MinWrappingTTL time.Duration
	MaxWrappingTTL time.Duration

	bits uint32
}

var topLevelKeys = map[string]bool{"name": true, "path": true}

var pathKeys = map[string]bool{
	"comment":               true,
	"policy":                true,
	"capabilities":          true,
	"allowed_parameters":    true,
	"denied_parameters":     true,
	"required_parameters":   true,
	"min_wrapping_ttl":      true,
	"max_wrapping_ttl":      true,
	"mfa_methods":           true,
	"control_group":         true,
	"subscribe_event_types": true,
}

// parseError builds the 400 error of a bad policy, with Vault's prefix.
func parseError(format string, args ...any) error {
	return &logical.CodedError{
		Status: 400,
		Msg:    "failed to parse policy: " + fmt.Sprintf(format, args...),
		Err:    logical.ErrInvalidRequest,
	}
}

// Parse parses policy text in HCL (Vault's policy syntax) or JSON. Errors
// are *logical.CodedError with status 400 and a message starting "failed
// to parse policy: "; syntax errors name the line and column.
func Parse(name, text string) (*Policy, error) {
	var stanzas []rawStanza
	var err error
	if trimmed := strings.TrimSpace(text); strings.HasPrefix(trimmed, "{") {
		stanzas, err = parseJSON(text)
	} else {
		stanzas, err = parseHCL(text)
	}
	if err != nil {
		return nil, err
	}
	p := &Policy{Name: name, Raw: text}
	for _, st := range stanzas {
		r, err := buildRule(st)
		if err != nil {
			return nil, err
		}
		if r.Templated {
			p.Templated = true
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// rawStanza is a path stanza before validation: attribute values are
// plain Go values (string, float64/json.Number, bool, []any,
// map[string]any).
type rawStanza struct {
	path  string
	line  int
	attrs map[string]any
	lines map[string]int
}

func parseHCL(text string) ([]rawStanza, error) {
	f, diags := hclsyntax.ParseConfig([]byte(text), "policy.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diagError(diags)
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, parseError("unexpected body type")
	}
	// Report unknown keys in source order, as Vault does.
	type item struct {
		key  string
		line int
	}
	var items []item
	for name, a := range body.Attributes {
		items = append(items, item{name, a.SrcRange.Start.Line})
	}
	for _, b := range body.Blocks {
		items = append(items, item{b.Type, b.TypeRange.Start.Line})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].line < items[j].line })
	for _, it := range items {
		if !topLevelKeys[it.key] {
			return nil, parseError("invalid key %q on line %d", it.key, it.line)
		}
	}
	if a, ok := body.Attributes["path"]; ok {
		return nil, parseError("invalid key %q on line %d: path must be a block", "path", a.SrcRange.Start.Line)
	}
	var out []rawStanza
	for _, b := range body.Blocks {
		if b.Type != "path" {
			continue
		}
		if len(b.Labels) != 1 {
			return nil, parseError("At %d:%d: path blocks need exactly one label", b.TypeRange.Start.Line, b.TypeRange.Start.Column)
		}
		st := rawStanza{path: b.Labels[0], line: b.TypeRange.Start.Line, attrs: map[string]any{}, lines: map[string]int{}}
		keys := make([]item, 0, len(b.Body.Attributes)+len(b.Body.Blocks))
		for n, a := range b.Body.Attributes {
			keys = append(keys, item{n, a.SrcRange.Start.Line})
		}
		for _, nb := range b.Body.Blocks {
			keys = append(keys, item{nb.Type, nb.TypeRange.Start.Line})
		}
		sort.SliceStable(keys, func(i, j int) bool { return keys[i].line < keys[j].line })
		for _, k := range keys {
			if !pathKeys[k.key] {
				return nil, parseError("path %q: invalid key %q on line %d", st.path, k.key, k.line)
			}
		}
		for n, a := range b.Body.Attributes {
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				return nil, diagError(diags)
			}
			gv, err := ctyToGo(v)
			if err != nil {
				return nil, parseError("At %d:%d: %s: %v", a.SrcRange.Start.Line, a.SrcRange.Start.Column, n, err)
			}
			st.attrs[n] = gv
			st.lines[n] = a.SrcRange.Start.Line
		}
		// HCL1 let objects be written as blocks: `allowed_parameters { a = [] }`.
		for _, nb := range b.Body.Blocks {
			if len(nb.Labels) != 0 || len(nb.Body.Blocks) != 0 {
				return nil, parseError("path %q: invalid value for %q on line %d", st.path, nb.Type, nb.TypeRange.Start.Line)
			}
			m := map[string]any{}
			for n, a := range nb.Body.Attributes {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					return nil, diagError(diags)
				}
				gv, err := ctyToGo(v)
				if err != nil {
					return nil, parseError("At %d:%d: %s: %v", a.SrcRange.Start.Line, a.SrcRange.Start.Column, n, err)
				}
				m[n] = gv
			}
			st.attrs[nb.Type] = m
			st.lines[nb.Type] = nb.TypeRange.Start.Line
		}
		out = append(out, st)
	}
	// Blocks are in source order already.
	return out, nil
}

func diagError(diags hcl.Diagnostics) error {
	for _, d := range diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject != nil {
			return parseError("At %d:%d: %s", d.Subject.Start.Line, d.Subject.Start.Column, msg)
		}
		return parseError("%s", msg)
	}
	return parseError("%s", diags.Error())
}

func ctyToGo(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil //nolint:nilnil // a null HCL value is a nil Go value
	}
	if !v.IsWhollyKnown() {
		return nil, errors.New("value is not known")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == 0 {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		f, _ := bf.Float64()
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), nil
	case t == cty.Bool:
		return v.True(), nil
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			g, err := ctyToGo(e)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case t.IsMapType() || t.IsObjectType():
		out := make(map[string]any, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			g, err := ctyToGo(e)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = g
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value type %s", t.FriendlyName())
	}
}

func parseJSON(text string) ([]rawStanza, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(text, int(se.Offset))
			return nil, parseError("At %d:%d: %v", line, col, err)
		}
		return nil, parseError("%v", err)
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !topLevelKeys[k] {
			return nil, parseError("invalid key %q on line %d", k, 1)
		}
	}
	var objs []map[string]any
	switch p := top["path"].(type) {
	case nil:
	case map[string]any:
		objs = append(objs, p)
	case []any:
		for _, e := range p {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, parseError("path: expected an object, got %T", e)
			}
			objs = append(objs, m)
		}
	default:
		return nil, parseError("path: expected an object, got %T", p)
	}
	var out []rawStanza
	for _, o := range objs {
		names := make([]string, 0, len(o))
		for n := range o {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			body, ok := o[n].(map[string]any)
			if !ok {
				return nil, parseError("path %q: expected an object, got %T", n, o[n])
			}
			st := rawStanza{path: n, line: 1, attrs: map[string]any{}, lines: map[string]int{}}
			for k, v := range body {
				if !pathKeys[k] {
					return nil, parseError("path %q: invalid key %q on line %d", n, k, 1)
				}
				st.attrs[k] = v
				st.lines[k] = 1
			}
			out = append(out, st)
		}
	}
	return out, nil
}

func lineCol(text string, offset int) (int, int) {
	if offset > len(text) {
		offset = len(text)
	}
	line, col := 1, 1
	for _, r := range text[:offset] {
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

func buildRule(st rawStanza) (*PathRule, error) {
	r := &PathRule{Path: strings.TrimPrefix(st.path, "/")}
	if strings.Contains(r.Path, "+*") {
		return nil, parseError("path %q: invalid use of wildcards ('+*' is forbidden)", r.Path)
	}
	r.Templated = strings.Contains(r.Path, "{{")
	r.HasSegmentWildcards = r.Path == "+" || strings.Contains(r.Path, "/+") || strings.HasPrefix(r.Path, "+/")
	if strings.HasSuffix(r.Path, "*") {
		r.IsPrefix = true
		if !r.HasSegmentWildcards {
			r.Path = strings.TrimSuffix(r.Path, "*")
		}
	}

	var caps []string
	if v, ok := st.attrs["policy"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, parseError("path %q: policy must be a string", r.Path)
		}
		switch s {
		case "deny":
			caps = append(caps, CapDeny)
		case "read":
			caps = append(caps, CapRead, CapList)
		case "write":
			caps = append(caps, CapCreate, CapRead, CapUpdate, CapDelete, CapList)
		case "sudo":
			caps = append(caps, CapCreate, CapRead, CapUpdate, CapDelete, CapList, CapSudo)
		default:
			return nil, parseError("path %q: invalid policy %q", r.Path, s)
		}
	}
	if v, ok := st.attrs["capabilities"]; ok {
		list, err := stringList(v)
		if err != nil {
			return nil, parseError("path %q: capabilities: %v", r.Path, err)
		}
		caps = append(caps, list...)
	}
	for _, c := range caps {
		b, ok := capBits[c]
		if !ok {
			return nil, parseError("path %q: invalid capability %q", r.Path, c)
		}
		if b == bitDeny {
			r.bits = bitDeny
			r.Capabilities = []string{CapDeny}
			break
		}
		if r.bits&b == 0 {
			r.Capabilities = append(r.Capabilities, c)
		}
		r.bits |= b
	}

	var err error
	if r.MinWrappingTTL, err = ttlAttr(st, "min_wrapping_ttl"); err != nil {
		return nil, err
	}
	if r.MaxWrappingTTL, err = ttlAttr(st, "max_wrapping_ttl"); err != nil {
		return nil, err
	}
	if r.MinWrappingTTL > 0 && r.MaxWrappingTTL > 0 && r.MaxWrappingTTL < r.MinWrappingTTL {
		return nil, parseError("path %q: max_wrapping_ttl cannot be less than min_wrapping_ttl", r.Path)
	}
	if r.AllowedParameters, err = paramsAttr(st, r.Path, "allowed_parameters"); err != nil {
		return nil, err
	}
	if r.DeniedParameters, err = paramsAttr(st, r.Path, "denied_parameters"); err != nil {
		return nil, err
	}
	if v, ok := st.attrs["required_parameters"]; ok {
		list, err := stringList(v)
		if err != nil {
			return nil, parseError("path %q: required_parameters: %v", r.Path, err)
		}
		r.RequiredParameters = list
	}
	return r, nil
}

func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return []string{}, nil
	case string:
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("expected a list of strings, got element %v", e)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("expected a list of strings, got %T", v)
	}
}

func ttlAttr(st rawStanza, key string) (time.Duration, error) {
	v, ok := st.attrs[key]
	if !ok || v == nil {
		return 0, nil
	}
	d, err := framework.ParseDuration(v)
	if err != nil {
		return 0, parseError("path %q: error parsing %s: %v", st.path, key, err)
	}
	return d, nil
}

func paramsAttr(st rawStanza, path, key string) (map[string][]any, error) {
	v, ok := st.attrs[key]
	if !ok || v == nil {
		return nil, nil //nolint:nilnil // absent means "no constraint"
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, parseError("path %q: %s must be a map of lists, got %T", path, key, v)
	}
	out := make(map[string][]any, len(m))
	for k, e := range m {
		switch x := e.(type) {
		case nil:
			out[strings.ToLower(k)] = []any{}
		case []any:
			out[strings.ToLower(k)] = x
		default:
			out[strings.ToLower(k)] = []any{x}
		}
	}
	return out, nil
}
