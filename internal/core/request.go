package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/token"
)

// ErrInvalidToken is returned for unknown, expired or revoked tokens. Its
// message is modern Vault's, naming both problems.
var ErrInvalidToken = &logical.CodedError{
	Status: 403,
	Msg:    "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n",
	Err:    logical.ErrPermissionDenied,
}

// ErrNoRoute is the 404 for a path under no mount.
type ErrNoRoute struct{ Path string }

func (e *ErrNoRoute) Error() string {
	return fmt.Sprintf("no handler for route %q. route entry not found.", e.Path)
}

// HandleRequest serves one API request. req.Path is the full path without
// "/v1/" and req.ClientToken the caller's token ("" for none). The request
// is authenticated and authorized, audited, dispatched to its mount, and
// login results are turned into tokens.
func (c *Core) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	st := c.state
	if st == nil {
		return nil, ErrSealed
	}
	if req.ID == "" {
		req.ID = newUUID()
	}
	if req.Connection == nil {
		req.Connection = &logical.Connection{}
	}
	if strings.Contains(req.Path, "..") {
		return nil, logical.BadRequest("path cannot contain parent references")
	}
	m, rel, routed := st.router.match(req.Path)

	var caller *token.Entry
	if !routed || !matchSpecial(specialOf(m).Unauthenticated, rel) {
		var err error
		caller, err = c.authorize(ctx, st, req, false)
		if err == nil && caller.NumUses > 0 {
			// Spend the use before dispatch: concurrent requests must not
			// all pass on the same last use.
			if uerr := st.tokens.Use(ctx, caller); errors.Is(uerr, logical.ErrPermissionDenied) {
				err = ErrInvalidToken
			} else if uerr != nil {
				err = uerr
			}
		}
		if err != nil {
			c.auditFailure(ctx, st, nil, req, err)
			return nil, err
		}
	}
	if !routed {
		return nil, &ErrNoRoute{Path: req.Path}
	}
	callerAuth := callerAuthOf(caller)
	if err := st.audit.LogRequest(ctx, &audit.Input{Caller: callerAuth, Request: req}); err != nil {
		c.logger.Error("audit: every device failed to log the request", "error", err)
		return nil, errAuditFailed
	}

	sub := *req
	sub.Path = rel
	sub.MountPoint = m.path
	entry := m.entry()
	sub.MountType = entry.Type
	sub.MountAccessor = entry.Accessor
	sub.Storage = m.view
	resp, err := m.backend.HandleRequest(ctx, &sub)
	req.Operation = sub.Operation
	req.MountType = sub.MountType
	req.MountPoint = sub.MountPoint
	req.MountAccessor = sub.MountAccessor
	if err == nil && resp != nil {
		err = c.postProcess(ctx, st, m, &sub, resp)
		if err != nil {
			resp = nil
		}
	}
	if aerr := st.audit.LogResponse(ctx, &audit.Input{Caller: callerAuth, Request: req, Response: resp, Err: err}); aerr != nil {
		c.logger.Error("audit: every device failed to log the response", "error", aerr)
		return nil, errAuditFailed
	}
	return resp, err
}

var errAuditFailed = &logical.CodedError{Status: 500, Msg: "internal error: audit logging failed"}

func (c *Core) auditFailure(ctx context.Context, st *unsealedState, caller *logical.Auth, req *logical.Request, err error) {
	if aerr := st.audit.LogRequest(ctx, &audit.Input{Caller: caller, Request: req, Err: err}); aerr != nil {
		c.logger.Error("audit: every device failed to log a refused request", "error", aerr)
	}
}

func specialOf(m *mount) *logical.Paths {
	if m == nil {
		return &logical.Paths{}
	}
	if p := m.backend.SpecialPaths(); p != nil {
		return p
	}
	return &logical.Paths{}
}

// matchSpecial reports whether rel matches one of the globs: a trailing
// "*" matches any suffix; otherwise the match is exact.
func matchSpecial(globs []string, rel string) bool {
	for _, g := range globs {
		if prefix, ok := strings.CutSuffix(g, "*"); ok {
			if strings.HasPrefix(rel, prefix) {
				return true
			}
		} else if rel == g || rel == strings.TrimSuffix(g, "/") {
			return true
		}
	}
	return false
}

// authorize authenticates req.ClientToken and checks the ACL for the
// request (after turning an update of a missing object into a create).
// forceSudo demands sudo whatever the path.
func (c *Core) authorize(ctx context.Context, st *unsealedState, req *logical.Request, forceSudo bool) (*token.Entry, error) {
	if req.ClientToken == "" {
		return nil, logical.ErrPermissionDenied
	}
	te, err := st.tokens.Lookup(ctx, req.ClientToken)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	if len(te.BoundCIDRs) > 0 && (req.Connection == nil || !addrInCIDRs(req.Connection.RemoteAddr, te.BoundCIDRs)) {
		return nil, logical.ErrPermissionDenied
	}
	req.ClientTokenAccessor = te.Accessor
	req.DisplayName = te.DisplayName
	req.EntityID = te.EntityID
	req.Policies = te.Policies

	m, rel, routed := st.router.match(req.Path)
	if routed && req.Operation == logical.UpdateOperation {
		if ec, ok := m.backend.(logical.ExistenceChecker); ok {
			probe := *req
			probe.Path = rel
			probe.MountPoint = m.path
			probe.Storage = m.view
			found, exists, cerr := ec.ExistenceCheck(ctx, &probe)
			if cerr != nil {
				return nil, cerr
			}
			if found && !exists {
				req.Operation = logical.CreateOperation
			}
		}
	}
	acl, err := st.policies.ACL(ctx, te.Policies...)
	if err != nil {
		return nil, fmt.Errorf("building ACL: %w", err)
	}
	res := acl.Check(req.Path, req.Operation, req.Data)
	if !res.Allowed {
		return nil, logical.ErrPermissionDenied
	}
	needSudo := forceSudo || (routed && matchSpecial(specialOf(m).Root, rel))
	if needSudo && !res.Sudo && !res.Root {
		return nil, logical.ErrPermissionDenied
	}
	return te, nil
}

// addrInCIDRs reports whether addr is inside one of cidrs (CIDRs or bare
// addresses). An unparsable addr is refused.
func addrInCIDRs(addr string, cidrs []string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil {
			if p.Contains(a) {
				return true
			}
		} else if b, err := netip.ParseAddr(c); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

func callerAuthOf(te *token.Entry) *logical.Auth {
	if te == nil {
		return nil
	}
	return &logical.Auth{
		ClientToken:   te.ID,
		Accessor:      te.Accessor,
		DisplayName:   te.DisplayName,
		Policies:      te.Policies,
		TokenPolicies: te.Policies,
		Metadata:      te.Meta,
		EntityID:      te.EntityID,
		TokenType:     "service",
	}
}

// postProcess turns a login's Auth into a token and registers leases.
func (c *Core) postProcess(ctx context.Context, st *unsealedState, m *mount, req *logical.Request, resp *logical.Response) error {
	if resp.Auth != nil && m.entry().Table == tableAuth && m.entry().Type != "token" {
		// Only a login (an unauthenticated path of an auth method) may turn
		// into a new token, as in Vault.
		if !matchSpecial(specialOf(m).Unauthenticated, req.Path) {
			c.logger.Error("auth method returned a login result outside a login path", "mount", m.path, "path", req.Path)
			return &logical.CodedError{Status: 500, Msg: "internal error: login result outside a login path"}
		}
		if err := c.createLoginToken(ctx, st, m, resp.Auth); err != nil {
			return err
		}
	}
	if resp.Secret != nil && !resp.Secret.NoLease && resp.Secret.LeaseID == "" {
		sys := &mountSystemView{core: c, mount: m}
		if resp.Secret.TTL <= 0 || resp.Secret.TTL > sys.MaxLeaseTTL() {
			if resp.Secret.TTL <= 0 {
				resp.Secret.TTL = sys.DefaultLeaseTTL()
			}
			if resp.Secret.TTL > sys.MaxLeaseTTL() {
				resp.Secret.TTL = sys.MaxLeaseTTL()
			}
		}
		id, err := st.leases.RegisterSecret(ctx, m.path+req.Path, req.ClientTokenAccessor, resp.Secret)
		if err != nil {
			return fmt.Errorf("registering lease: %w", err)
		}
		resp.Secret.LeaseID = id
	}
	return nil
}

// createLoginToken mints the token of a successful login, with Vault's TTL
// rules: a period wins; else the auth's TTL or the mount default, capped by
// the effective max TTL (mount max, auth max, explicit max).
func (c *Core) createLoginToken(ctx context.Context, st *unsealedState, m *mount, auth *logical.Auth) error {
	policies := append([]string{}, auth.Policies...)
	if !auth.NoDefaultPolicy {
		policies = append(policies, "default")
	}
	policies = sanitizePolicies(policies)
	for _, p := range policies {
		if p == "root" {
			return logical.BadRequest("auth methods cannot create root tokens")
		}
	}
	auth.Policies = policies
	sys := &mountSystemView{core: c, mount: m}
	maxTTL := sys.MaxLeaseTTL()
	if auth.MaxTTL > 0 && auth.MaxTTL < maxTTL {
		maxTTL = auth.MaxTTL
	}
	if auth.ExplicitMaxTTL > 0 && auth.ExplicitMaxTTL < maxTTL {
		maxTTL = auth.ExplicitMaxTTL
	}
	ttl := auth.TTL
	if auth.Period > 0 {
		ttl = auth.Period
	} else if ttl <= 0 {
		ttl = sys.DefaultLeaseTTL()
	}
	if ttl > maxTTL {
		ttl = maxTTL
	}
	auth.TTL = ttl
	auth.MaxTTL = maxTTL
	entry := st.tokens.EntryFromAuth(auth, m.path)
	created, err := st.tokens.Create(ctx, entry)
	if err != nil {
		return fmt.Errorf("creating token: %w", err)
	}
	if _, err := st.leases.RegisterAuth(ctx, m.path+"login", created); err != nil {
		_ = st.tokens.Revoke(ctx, created.ID)
		return fmt.Errorf("registering token lease: %w", err)
	}
	auth.ClientToken = created.ID
	auth.Accessor = created.Accessor
	auth.TokenPolicies = created.Policies
	auth.Policies = created.Policies
	auth.Orphan = true
	auth.TTL = created.TTL
	auth.TokenType = "service"
	auth.EntityID = created.EntityID
	auth.MountType = m.entry().Type
	return nil
}

// sanitizePolicies lowercases, trims, dedups and sorts policy names.
func sanitizePolicies(in []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// renewAuth re-checks a login token with its auth method on renewal.
func (c *Core) renewAuth(ctx context.Context, st *unsealedState, e *token.Entry) (*logical.Auth, error) {
	m, rel, ok := st.router.match(e.Path)
	if !ok || m.entry().Table != tableAuth {
		return nil, logical.BadRequest("no auth method at %q to renew this token", e.Path)
	}
	req := &logical.Request{
		ID:            newUUID(),
		Operation:     logical.RenewOperation,
		Path:          rel,
		MountPoint:    m.path,
		MountType:     m.entry().Type,
		MountAccessor: m.entry().Accessor,
		Storage:       m.view,
		Connection:    &logical.Connection{},
		Auth: &logical.Auth{
			LeaseOptions:   logical.LeaseOptions{TTL: e.TTL, Renewable: e.Renewable, IssueTime: e.CreationTime},
			DisplayName:    e.DisplayName,
			Policies:       e.Policies,
			TokenPolicies:  e.Policies,
			Metadata:       e.Meta,
			InternalData:   e.InternalData,
			ExplicitMaxTTL: e.ExplicitMaxTTL,
			Period:         e.Period,
			NumUses:        e.NumUses,
			EntityID:       e.EntityID,
			Accessor:       e.Accessor,
		},
	}
	resp, err := m.backend.HandleRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.Auth == nil {
		return nil, logical.BadRequest("auth method refused to renew the token")
	}
	return resp.Auth, nil
}
