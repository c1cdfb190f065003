// Package framework builds a logical.Backend from paths declared as data:
// a regular expression, typed fields and one handler per operation. It does
// the routing, field parsing and validation that every engine would
// otherwise repeat.
package framework

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/keyward/keyward/internal/logical"
)

// OperationFunc handles one operation on a matched path.
type OperationFunc func(ctx context.Context, req *logical.Request, d *FieldData) (*logical.Response, error)

// ExistenceFunc reports whether the object at a path exists.
type ExistenceFunc func(ctx context.Context, req *logical.Request, d *FieldData) (bool, error)

// Path is one route family.
type Path struct {
	// Pattern is a regular expression matched against the whole request
	// path (it is anchored for you). Named groups become fields.
	Pattern string
	// Fields declares the accepted fields and their types. Fields not
	// declared are ignored, as Vault does.
	Fields map[string]*FieldSchema
	// Operations maps each supported operation to its handler. A
	// CreateOperation request on a path with only an UpdateOperation
	// handler goes to that handler.
	Operations map[logical.Operation]OperationFunc
	// ExistenceCheck, when set, lets core tell create from update.
	ExistenceCheck ExistenceFunc
	// HelpSynopsis is a one-line description.
	HelpSynopsis string

	re *regexp.Regexp
}

// Backend is a logical.Backend built from Paths.
type Backend struct {
	// Paths are tried in order; the first whose pattern matches wins.
	Paths []*Path
	// Special lists unauthenticated and sudo paths.
	Special *logical.Paths
	// Init, when set, is called by core after mounting and after unseal.
	Init func(ctx context.Context, s logical.Storage) error
	// Clean, when set, is called when the mount goes away.
	Clean func(ctx context.Context)
}

var (
	_ logical.Backend          = (*Backend)(nil)
	_ logical.ExistenceChecker = (*Backend)(nil)
	_ logical.Initializer      = (*Backend)(nil)
	_ logical.Cleaner          = (*Backend)(nil)
)

// Compile anchors and compiles every pattern. It must be called once before
// the backend serves requests; factories call it and return its error.
func (b *Backend) Compile() error {
	for _, p := range b.Paths {
		re, err := regexp.Compile("^(?:" + p.Pattern + ")$")
		if err != nil {
			return fmt.Errorf("framework: path %q: %w", p.Pattern, err)
		}
		p.re = re
	}
	return nil
}

func (b *Backend) route(path string) (*Path, map[string]string) {
	for _, p := range b.Paths {
		if p.re == nil {
			continue
		}
		m := p.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		captures := make(map[string]string)
		for i, name := range p.re.SubexpNames() {
			if name != "" && m[i] != "" {
				captures[name] = m[i]
			}
		}
		return p, captures
	}
	return nil, nil
}

func (b *Backend) fieldData(p *Path, req *logical.Request, captures map[string]string) *FieldData {
	raw := make(map[string]any, len(req.Data)+len(captures))
	for k, v := range req.Data {
		raw[k] = v
	}
	for k, v := range captures {
		raw[k] = v
	}
	return &FieldData{Raw: raw, Schema: p.Fields}
}

// HandleRequest routes req to the matching path's handler.
func (b *Backend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	p, captures := b.route(req.Path)
	if p == nil {
		return nil, logical.ErrUnsupportedPath
	}
	op := req.Operation
	fn, ok := p.Operations[op]
	if !ok && op == logical.CreateOperation {
		fn, ok = p.Operations[logical.UpdateOperation]
	}
	if !ok {
		return nil, logical.ErrUnsupportedOperation
	}
	d := b.fieldData(p, req, captures)
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return fn(ctx, req, d)
}

// ExistenceCheck runs the matching path's existence check, if any.
func (b *Backend) ExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	p, captures := b.route(req.Path)
	if p == nil || p.ExistenceCheck == nil {
		return false, false, nil
	}
	d := b.fieldData(p, req, captures)
	if err := d.Validate(); err != nil {
		return false, false, err
	}
	exists, err := p.ExistenceCheck(ctx, req, d)
	return true, exists, err
}

// SpecialPaths returns b.Special.
func (b *Backend) SpecialPaths() *logical.Paths { return b.Special }

// Initialize calls b.Init when set.
func (b *Backend) Initialize(ctx context.Context, s logical.Storage) error {
	if b.Init == nil {
		return nil
	}
	return b.Init(ctx, s)
}

// Cleanup calls b.Clean when set.
func (b *Backend) Cleanup(ctx context.Context) {
	if b.Clean != nil {
		b.Clean(ctx)
	}
}

// GenericNameRegex matches one path segment and captures it as name.
func GenericNameRegex(name string) string {
	return fmt.Sprintf("(?P<%s>\\w(([\\w-.@]+)?\\w)?)", name)
}

// MatchAllRegex captures the rest of the path (possibly empty) as name.
func MatchAllRegex(name string) string {
	return fmt.Sprintf(`(?P<%s>.*)`, name)
}

// OptionalTrailingSlash matches an optional "/".
const OptionalTrailingSlash = "/?"

// ListResponse builds Vault's list response {"keys": [...]}. The transport
// renders an empty list as 404, as Vault does.
func ListResponse(keys []string) *logical.Response {
	return &logical.Response{Data: map[string]any{"keys": keys}}
}

// TrimPrefixes is strings.TrimPrefix applied for each prefix in turn.
func TrimPrefixes(s string, prefixes ...string) string {
	for _, p := range prefixes {
		s = strings.TrimPrefix(s, p)
	}
	return s
}
