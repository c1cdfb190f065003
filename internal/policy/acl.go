package policy

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
)

// ErrRootWithOthers is returned by NewACL when the root policy is combined
// with other policies (Vault refuses this too).
var ErrRootWithOthers = errors.New("other policies present along with root")

// perms is the merged permission set of one rule path.
type perms struct {
	bits     uint32
	required []string
	allowed  map[string][]any
	denied   map[string][]any
	minWrap  time.Duration
	maxWrap  time.Duration
	caps     []string // sorted capability names of bits; shared, read-only
}

// segRule is a rule with "+" segment wildcards, pre-split for matching.
type segRule struct {
	full       string   // the rule path as written (with any trailing "*")
	wcPath     string   // full without the trailing "*"
	parts      []string // wcPath split on "/"
	isPrefix   bool
	firstWC    int    // index of the first "+"
	literal    string // full[:firstWC]: every match starts with it
	wildcards  int    // number of "+" segments
	permission *perms
}

// ACL is the merged, immutable result of several policies. It is safe for
// concurrent use.
type ACL struct {
	root         bool
	exact        map[string]*perms
	prefix       map[string]*perms
	prefixLens   []int // distinct prefix key lengths, descending
	seg          []*segRule
	policyNames  []string
	templatedOff bool
}

// Result is the outcome of ACL.Check.
type Result struct {
	// Allowed reports that the operation may proceed.
	Allowed bool
	// Sudo reports the sudo capability on the matched rule (root-protected
	// paths need it in addition to Allowed). True for a root ACL.
	Sudo bool
	// Root reports a root ACL.
	Root bool
	// Capabilities are the matched rule's capabilities, sorted; nil when no
	// rule matched; ["root"] for a root ACL. The slice is shared: do not
	// modify it.
	Capabilities []string
}

// NewACL merges policies the way Vault does: rules with the same path
// string are merged (deny wins over everything, otherwise capabilities are
// unioned, wrapping TTLs take the lesser value, parameter constraints are
// combined); exact, prefix and "+" rules are kept apart. A policy named
// "root" yields a root ACL and must be the only policy. Nil entries are
// skipped. Rules with identity templating are skipped (no identity store).
func NewACL(policies []*Policy) (*ACL, error) {
	a := &ACL{exact: map[string]*perms{}, prefix: map[string]*perms{}}
	segByPath := map[string]*segRule{}
	for _, p := range policies {
		if p == nil {
			continue
		}
		a.policyNames = append(a.policyNames, p.Name)
		if p.Name == RootName {
			if len(policies) != 1 {
				return nil, ErrRootWithOthers
			}
			a.root = true
			return a, nil
		}
		for _, r := range p.Rules {
			if r.Templated {
				a.templatedOff = true
				continue
			}
			var existing *perms
			switch {
			case r.HasSegmentWildcards:
				if s, ok := segByPath[r.Path]; ok {
					existing = s.permission
				} else {
					s := newSegRule(r.Path)
					s.permission = newPerms(r)
					segByPath[r.Path] = s
					a.seg = append(a.seg, s)
					continue
				}
			case r.IsPrefix:
				existing = a.prefix[r.Path]
				if existing == nil {
					a.prefix[r.Path] = newPerms(r)
					continue
				}
			default:
				existing = a.exact[r.Path]
				if existing == nil {
					a.exact[r.Path] = newPerms(r)
					continue
				}
			}
			mergeInto(existing, r)
		}
	}
	lens := map[int]bool{}
	for k := range a.prefix {
		lens[len(k)] = true
	}
	for l := range lens {
		a.prefixLens = append(a.prefixLens, l)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(a.prefixLens)))
	for _, m := range []map[string]*perms{a.exact, a.prefix} {
		for _, p := range m {
			p.caps = capNames(p.bits)
		}
	}
	for _, s := range a.seg {
		s.permission.caps = capNames(s.permission.bits)
	}
	return a, nil
}

func newSegRule(full string) *segRule {
	s := &segRule{full: full, firstWC: strings.Index(full, "+")}
	if s.firstWC > 0 {
		s.literal = full[:s.firstWC]
	}
	wc := full
	if strings.HasSuffix(wc, "*") {
		s.isPrefix = true
		wc = wc[:len(wc)-1]
	}
	s.wcPath = wc
	s.parts = strings.Split(wc, "/")
	for _, p := range s.parts {
		if p == "+" {
			s.wildcards++
		}
	}
	return s
}

func newPerms(r *PathRule) *perms {
	return &perms{
		bits:     r.bits,
		required: slices.Clone(r.RequiredParameters),
		allowed:  cloneParams(r.AllowedParameters),
		denied:   cloneParams(r.DeniedParameters),
		minWrap:  r.MinWrappingTTL,
		maxWrap:  r.MaxWrappingTTL,
	}
}

func cloneParams(m map[string][]any) map[string][]any {
	if m == nil {
		return nil
	}
	out := make(map[string][]any, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// mergeInto merges rule r into the existing permissions of the same path.
func mergeInto(e *perms, r *PathRule) {
	switch {
	case e.bits&bitDeny != 0:
		return
	case r.bits&bitDeny != 0:
		e.bits = bitDeny
		e.allowed = nil
		e.denied = nil
		return
	default:
		e.bits |= r.bits
	}
	if r.MaxWrappingTTL > 0 && (e.maxWrap == 0 || r.MaxWrappingTTL < e.maxWrap) {
		e.maxWrap = r.MaxWrappingTTL
	}
	if r.MinWrappingTTL > 0 && (e.minWrap == 0 || r.MinWrappingTTL < e.minWrap) {
		e.minWrap = r.MinWrappingTTL
	}
	e.allowed = mergeParams(e.allowed, r.AllowedParameters)
	e.denied = mergeParams(e.denied, r.DeniedParameters)
	for _, k := range r.RequiredParameters {
		if !slices.Contains(e.required, k) {
			e.required = append(e.required, k)
		}
	}
}

// mergeParams combines parameter constraints; an empty value list means
// "any value" and dominates.
func mergeParams(into, from map[string][]any) map[string][]any {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		return cloneParams(from)
	}
	for k, v := range from {
		cur, ok := into[k]
		if ok && (len(cur) == 0 || len(v) == 0) {
			into[k] = []any{}
			continue
		}
		into[k] = append(slices.Clone(v), cur...)
	}
	return into
}

// capOrder is the sorted order of reported capability names.
var capOrder = func() []string {
	names := make([]string, 0, len(capBits))
	for n := range capBits {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

func capNames(bits uint32) []string {
	var out []string
	for _, n := range capOrder {
		if bits&capBits[n] != 0 {
			out = append(out, n)
		}
	}
	return out
}

var rootCaps = []string{CapRoot}

// IsRoot reports whether this is a root ACL.
func (a *ACL) IsRoot() bool { return a.root }

// Policies returns the names of the policies merged into a, in order.
func (a *ACL) Policies() []string { return slices.Clone(a.policyNames) }

// match finds the permissions governing path for op, following Vault's
// order: exact rule; for list, the exact rule without a trailing "/", then
// the non-exact rules of the path without a trailing "/"; then the
// non-exact rules of path. Nil means no rule applies.
func (a *ACL) match(path string, op logical.Operation) *perms {
	if p, ok := a.exact[path]; ok {
		return p
	}
	if op == logical.ListOperation {
		trimmed := strings.TrimSuffix(path, "/")
		if p, ok := a.exact[trimmed]; ok {
			return p
		}
		if len(trimmed) != len(path) {
			if p := a.nonExact(trimmed); p != nil {
				return p
			}
		}
	}
	return a.nonExact(path)
}

// nonExact picks among the longest matching prefix rule and the matching
// "+" rules by Vault's priority: later first wildcard, then non-prefix
// over prefix, then fewer "+", then longer pattern, then the
// lexicographically greater pattern.
func (a *ACL) nonExact(path string) *perms {
	var best *segRule
	var prefixCand segRule
	for _, l := range a.prefixLens {
		if l > len(path) {
			continue
		}
		if p, ok := a.prefix[path[:l]]; ok {
			prefixCand = segRule{wcPath: path[:l], isPrefix: true, firstWC: l, permission: p}
			best = &prefixCand
			break
		}
	}
	if len(a.seg) == 0 {
		if best == nil {
			return nil
		}
		return best.permission
	}
	nParts := strings.Count(path, "/") + 1
	for _, s := range a.seg {
		if nParts < len(s.parts) || (!s.isPrefix && nParts != len(s.parts)) || !strings.HasPrefix(path, s.literal) {
			continue
		}
		if !segMatch(s, path) {
			continue
		}
		if best == nil || lessPriority(best, s) {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	return best.permission
}

// segMatch reports whether path matches the "+" rule s (segment counts
// already checked).
func segMatch(s *segRule, path string) bool {
	rest := path
	last := len(s.parts) - 1
	for i, want := range s.parts {
		var seg string
		if j := strings.IndexByte(rest, '/'); j >= 0 && i < last {
			seg, rest = rest[:j], rest[j+1:]
		} else if i < last {
			return false
		} else {
			seg = rest
			if j := strings.IndexByte(rest, '/'); j >= 0 {
				seg = rest[:j]
			}
		}
		switch {
		case want == "+":
		case want == seg:
		case s.isPrefix && i == last && strings.HasPrefix(seg, want):
		default:
			return false
		}
	}
	return true
}

// lessPriority reports whether x has lower priority than y.
func lessPriority(x, y *segRule) bool {
	if x.firstWC != y.firstWC {
		return x.firstWC < y.firstWC
	}
	if x.isPrefix != y.isPrefix {
		return x.isPrefix
	}
	if x.wildcards != y.wildcards {
		return x.wildcards > y.wildcards
	}
	if len(x.wcPath) != len(y.wcPath) {
		return len(x.wcPath) < len(y.wcPath)
	}
	return x.wcPath < y.wcPath
}

// opBit is the capability an operation needs.
func opBit(op logical.Operation) uint32 {
	switch op {
	case logical.ReadOperation:
		return bitRead
	case logical.ListOperation:
		return bitList
	case logical.UpdateOperation, logical.RenewOperation:
		return bitUpdate
	case logical.CreateOperation:
		return bitCreate
	case logical.DeleteOperation:
		return bitDelete
	case logical.PatchOperation:
		return bitPatch
	default:
		return 0
	}
}

// Check decides whether op on path (the full request path without "/v1/",
// for example "aks/mysecret") is allowed, including the parameter
// constraints of the matched rule against data (which may be nil).
func (a *ACL) Check(path string, op logical.Operation, data map[string]any) Result {
	if a.root {
		return Result{Allowed: true, Sudo: true, Root: true, Capabilities: rootCaps}
	}
	path = strings.TrimPrefix(path, "/")
	p := a.match(path, op)
	if p == nil {
		return Result{}
	}
	res := Result{Sudo: p.bits&bitSudo != 0, Capabilities: p.caps}
	need := opBit(op)
	if need == 0 || p.bits&need == 0 || p.bits&bitDeny != 0 {
		return res
	}
	switch op {
	case logical.ReadOperation, logical.UpdateOperation, logical.CreateOperation, logical.PatchOperation:
		res.Allowed = paramsAllowed(p, data)
	default:
		res.Allowed = true
	}
	return res
}

// Capabilities returns what sys/capabilities reports for path: the
// matched rule's capabilities, sorted; ["root"] for a root ACL; ["deny"]
// when nothing matches or the rule denies.
func (a *ACL) Capabilities(path string) []string {
	if a.root {
		return []string{CapRoot}
	}
	p := a.match(strings.TrimPrefix(path, "/"), logical.ListOperation)
	if p == nil || p.bits&bitDeny != 0 || len(p.caps) == 0 {
		return []string{CapDeny}
	}
	return slices.Clone(p.caps)
}

// AnyAccessUnder reports whether some rule at or below prefix (a mount
// path ending in "/") grants a capability other than deny. It is what
// Vault's UI mount preflight asks: may the caller see this mount at all?
func (a *ACL) AnyAccessUnder(prefix string) bool {
	if a.root {
		return true
	}
	grants := func(p *perms) bool { return p != nil && p.bits != 0 && p.bits&bitDeny == 0 }
	for path, p := range a.exact {
		if strings.HasPrefix(path, prefix) && grants(p) {
			return true
		}
	}
	for path, p := range a.prefix {
		if (strings.HasPrefix(path, prefix) || strings.HasPrefix(prefix, path)) && grants(p) {
			return true
		}
	}
	for _, r := range a.seg {
		if grants(r.permission) && segCouldMatchUnder(r, prefix) {
			return true
		}
	}
	return false
}

// segCouldMatchUnder reports whether a "+" rule can match a path under
// prefix: their literal parts agree segment by segment.
func segCouldMatchUnder(r *segRule, prefix string) bool {
	want := strings.Split(strings.TrimSuffix(prefix, "/"), "/")
	for i, seg := range want {
		if i >= len(r.parts) {
			return r.isPrefix
		}
		if r.parts[i] != "+" && r.parts[i] != seg {
			if i == len(r.parts)-1 && r.isPrefix && strings.HasPrefix(seg, r.parts[i]) {
				return true
			}
			return false
		}
	}
	return true
}
