package core

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/logical/framework"
	"github.com/keyward/keyward/internal/policy"
)

// newSystemBackend builds the sys/ backend: mounts, auth, tuning, the UI
// preflight, capabilities, keyring rotation, plus the paths contributed by
// the policy store, the audit broker and the lease manager.
func (c *Core) newSystemBackend(st *unsealedState) (*framework.Backend, error) {
	s := &sysBackend{core: c, st: st}
	b := &framework.Backend{
		Special: &logical.Paths{
			Unauthenticated: []string{"internal/ui/mounts", "internal/ui/mounts/*", "init", "seal-status", "unseal", "leader", "health"},
			Root: []string{
				"auth/*", "audit", "audit/*", "rotate", "rotate/*", "raw", "raw/*", "remount",
				"revoke-prefix/*", "leases/revoke-prefix/*", "leases/revoke-force/*", "leases/lookup/*", "revoke-force/*",
			},
		},
	}
	b.Paths = append(b.Paths, s.mountPaths()...)
	b.Paths = append(b.Paths, s.miscPaths()...)
	b.Paths = append(b.Paths, st.policies.Paths()...)
	b.Paths = append(b.Paths, st.audit.Paths()...)
	b.Paths = append(b.Paths, st.leases.Paths()...)
	if err := b.Compile(); err != nil {
		return nil, err
	}
	return b, nil
}

type sysBackend struct {
	core *Core
	st   *unsealedState
}

var mountFields = map[string]*framework.FieldSchema{
	"path":        {Type: framework.TypeString},
	"type":        {Type: framework.TypeString},
	"description": {Type: framework.TypeString},
	"config":      {Type: framework.TypeMap},
	"options":     {Type: framework.TypeKVPairs},
	"local":       {Type: framework.TypeBool},
	"seal_wrap":   {Type: framework.TypeBool},
	"plugin_name": {Type: framework.TypeString},
}

var tuneFields = map[string]*framework.FieldSchema{
	"path":               {Type: framework.TypeString},
	"default_lease_ttl":  {Type: framework.TypeString},
	"max_lease_ttl":      {Type: framework.TypeString},
	"description":        {Type: framework.TypeString},
	"options":            {Type: framework.TypeKVPairs},
	"listing_visibility": {Type: framework.TypeString},
	"token_type":         {Type: framework.TypeString},
}

func (s *sysBackend) mountPaths() []*framework.Path {
	return []*framework.Path{
		{
			Pattern:    "mounts/?",
			Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.listMounts(tableMounts)},
		},
		{
			Pattern:    "auth/?",
			Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.listMounts(tableAuth)},
		},
		{
			Pattern: "mounts/(?P<path>.+?)/tune",
			Fields:  tuneFields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readTune(tableMounts),
				logical.UpdateOperation: s.writeTune(tableMounts),
			},
		},
		{
			Pattern: "auth/(?P<path>.+?)/tune",
			Fields:  tuneFields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readTune(tableAuth),
				logical.UpdateOperation: s.writeTune(tableAuth),
			},
		},
		{
			Pattern: "mounts/(?P<path>.+)",
			Fields:  mountFields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readMount(tableMounts),
				logical.UpdateOperation: s.enable(tableMounts),
				logical.DeleteOperation: s.disable(tableMounts),
			},
		},
		{
			Pattern: "auth/(?P<path>.+)",
			Fields:  mountFields,
			Operations: map[logical.Operation]framework.OperationFunc{
				logical.ReadOperation:   s.readMount(tableAuth),
				logical.UpdateOperation: s.enable(tableAuth),
				logical.DeleteOperation: s.disable(tableAuth),
			},
		},
		{
			Pattern:    "internal/ui/mounts/?",
			Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.uiMounts},
		},
		{
			Pattern:    "internal/ui/mounts/(?P<path>.+)",
			Fields:     map[string]*framework.FieldSchema{"path": {Type: framework.TypeString}},
			Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.uiMount},
		},
	}
}

func secs(d time.Duration) int64 { return int64(d / time.Second) }

// mountInfo renders an entry as sys/mounts does.
func mountInfo(e *MountEntry) map[string]any {
	cfg := map[string]any{
		"default_lease_ttl": secs(e.Config.DefaultLeaseTTL),
		"max_lease_ttl":     secs(e.Config.MaxLeaseTTL),
		"force_no_cache":    e.Config.ForceNoCache,
	}
	if e.Config.ListingVisibility != "" {
		cfg["listing_visibility"] = e.Config.ListingVisibility
	}
	if e.Table == tableAuth {
		tt := e.Config.TokenType
		if tt == "" {
			tt = "default-service"
		}
		cfg["token_type"] = tt
	}
	var opts any
	if len(e.Options) > 0 {
		opts = e.Options
	}
	return map[string]any{
		"type":                    e.Type,
		"description":             e.Description,
		"accessor":                e.Accessor,
		"uuid":                    e.UUID,
		"config":                  cfg,
		"local":                   e.Local,
		"seal_wrap":               e.SealWrap,
		"external_entropy_access": false,
		"options":                 opts,
		"plugin_version":          "",
		"running_plugin_version":  "v" + strings.TrimSuffix(Version, "+keyward") + "+builtin",
		"running_sha256":          "",
	}
}

func (s *sysBackend) listMounts(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		data := map[string]any{}
		for _, m := range s.st.router.list(table) {
			data[m.entry().Path] = mountInfo(m.entry())
		}
		return &logical.Response{Data: data}, nil
	}
}

func routeOf(table, path string) string {
	path = strings.Trim(path, "/") + "/"
	if table == tableAuth {
		return "auth/" + path
	}
	return path
}

func (s *sysBackend) readMount(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		m, ok := s.st.router.get(routeOf(table, d.String("path")))
		if !ok {
			return nil, logical.BadRequest("no mount at path %q", d.String("path"))
		}
		return &logical.Response{Data: mountInfo(m.entry())}, nil
	}
}

func parseTTL(v any, field string) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	if s, ok := v.(string); ok && (s == "" || s == "system") {
		return 0, nil
	}
	d, err := framework.ParseDuration(v)
	if err != nil {
		return 0, logical.BadRequest("unable to parse %s: %v", field, err)
	}
	return d, nil
}

func (s *sysBackend) enable(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		typ := d.String("type")
		if typ == "" {
			typ = d.String("plugin_name")
		}
		if typ == "" {
			return nil, logical.BadRequest("backend type must be specified as a string")
		}
		e := &MountEntry{
			Table:       table,
			Path:        d.String("path"),
			Type:        typ,
			Description: d.String("description"),
			Local:       d.Bool("local"),
			SealWrap:    d.Bool("seal_wrap"),
		}
		if d.Has("options") {
			e.Options = d.KVPairs("options")
		}
		cfg := d.Map("config")
		var err error
		if e.Config.DefaultLeaseTTL, err = parseTTL(cfg["default_lease_ttl"], "default TTL"); err != nil {
			return nil, err
		}
		if e.Config.MaxLeaseTTL, err = parseTTL(cfg["max_lease_ttl"], "max TTL"); err != nil {
			return nil, err
		}
		if v, ok := cfg["listing_visibility"].(string); ok {
			e.Config.ListingVisibility = v
		}
		if v, ok := cfg["token_type"].(string); ok && table == tableAuth {
			e.Config.TokenType = v
		}
		if err := s.core.mountIn(ctx, s.st, e); err != nil {
			return nil, err
		}
		return nil, nil //nolint:nilnil // logical contract: nil response renders 204
	}
}

func (s *sysBackend) disable(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		if err := s.core.unmount(ctx, s.st, table, d.String("path")); err != nil {
			return nil, err
		}
		return nil, nil //nolint:nilnil // 204
	}
}

func (s *sysBackend) readTune(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		m, ok := s.st.router.get(routeOf(table, d.String("path")))
		if !ok {
			return nil, logical.BadRequest("cannot fetch sysview for path %q", d.String("path"))
		}
		e := m.entry()
		sv := &mountSystemView{core: s.core, mount: m}
		data := map[string]any{
			"default_lease_ttl": secs(sv.DefaultLeaseTTL()),
			"max_lease_ttl":     secs(sv.MaxLeaseTTL()),
			"force_no_cache":    e.Config.ForceNoCache,
			"description":       e.Description,
		}
		if len(e.Options) > 0 {
			data["options"] = e.Options
		}
		if table == tableAuth {
			data["token_type"] = mountInfo(e)["config"].(map[string]any)["token_type"]
		}
		return &logical.Response{Data: data}, nil
	}
}

func (s *sysBackend) writeTune(table string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		err := s.core.tune(ctx, s.st, routeOf(table, d.String("path")), func(e *MountEntry) error {
			if d.Has("default_lease_ttl") {
				v, err := parseTTL(d.Get("default_lease_ttl"), "default TTL")
				if err != nil {
					return err
				}
				e.Config.DefaultLeaseTTL = v
			}
			if d.Has("max_lease_ttl") {
				v, err := parseTTL(d.Get("max_lease_ttl"), "max TTL")
				if err != nil {
					return err
				}
				e.Config.MaxLeaseTTL = v
			}
			if d.Has("description") {
				e.Description = d.String("description")
			}
			if d.Has("listing_visibility") {
				e.Config.ListingVisibility = d.String("listing_visibility")
			}
			if d.Has("options") {
				for k, v := range d.KVPairs("options") {
					e.Options[k] = v
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		return nil, nil //nolint:nilnil // 204
	}
}

// uiMounts lists the mounts visible to the caller (sys/internal/ui/mounts).
func (s *sysBackend) uiMounts(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	acl, err := s.callerACL(ctx, req)
	if err != nil {
		return nil, err
	}
	secret := map[string]any{}
	auth := map[string]any{}
	for _, m := range s.st.router.list(tableMounts) {
		if hasMountAccess(acl, m.path) {
			secret[m.entry().Path] = mountInfo(m.entry())
		}
	}
	for _, m := range s.st.router.list(tableAuth) {
		if hasMountAccess(acl, m.path) {
			auth[m.entry().Path] = mountInfo(m.entry())
		}
	}
	return &logical.Response{Data: map[string]any{"secret": secret, "auth": auth}}, nil
}

func (s *sysBackend) callerACL(ctx context.Context, req *logical.Request) (*policy.ACL, error) {
	if req.ClientToken == "" {
		return nil, logical.ErrPermissionDenied
	}
	te, err := s.st.tokens.Lookup(ctx, req.ClientToken)
	if errors.Is(err, logical.ErrNotFound) {
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, err
	}
	return s.st.policies.ACL(ctx, te.Policies...)
}

// hasMountAccess reports whether the ACL grants anything at or under the
// mount path, as Vault's UI mount preflight does.
func hasMountAccess(acl *policy.ACL, mountPath string) bool {
	caps := acl.Capabilities(mountPath)
	if len(caps) > 0 && (len(caps) != 1 || caps[0] != "deny") {
		return true
	}
	return acl.AnyAccessUnder(mountPath)
}

func (s *sysBackend) uiMount(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	path := strings.TrimPrefix(d.String("path"), "/")
	if path == "" {
		return nil, logical.BadRequest("path not set")
	}
	acl, err := s.callerACL(ctx, req)
	if err != nil {
		return nil, err
	}
	m, _, ok := s.st.router.match(path)
	denied := &logical.CodedError{Status: 403, Err: logical.ErrPermissionDenied,
		Msg: "preflight capability check returned 403, please ensure client's policies grant access to path \"" + strings.TrimSuffix(path, "/") + "/\""}
	if !ok || !hasMountAccess(acl, m.path) {
		return nil, denied
	}
	info := mountInfo(m.entry())
	info["path"] = m.path
	return &logical.Response{Data: info}, nil
}

func (s *sysBackend) miscPaths() []*framework.Path {
	capFields := map[string]*framework.FieldSchema{
		"token":    {Type: framework.TypeString},
		"accessor": {Type: framework.TypeString},
		"path":     {Type: framework.TypeCommaStringSlice},
		"paths":    {Type: framework.TypeCommaStringSlice},
	}
	return []*framework.Path{
		{
			Pattern:    "capabilities",
			Fields:     capFields,
			Operations: map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: s.capabilities("token")},
		},
		{
			Pattern:    "capabilities-self",
			Fields:     capFields,
			Operations: map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: s.capabilities("self")},
		},
		{
			Pattern:    "capabilities-accessor",
			Fields:     capFields,
			Operations: map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: s.capabilities("accessor")},
		},
		{
			Pattern:    "rotate",
			Operations: map[logical.Operation]framework.OperationFunc{logical.UpdateOperation: s.rotate},
		},
		{
			Pattern:    "key-status",
			Operations: map[logical.Operation]framework.OperationFunc{logical.ReadOperation: s.keyStatus},
		},
	}
}

func (s *sysBackend) capabilities(mode string) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		var policies []string
		switch mode {
		case "self":
			// HandleRequest authenticated the caller (and may have spent
			// its last use) and set req.Policies.
			if req.ClientTokenAccessor == "" {
				return nil, ErrInvalidToken
			}
			policies = req.Policies
		case "accessor":
			acc := d.String("accessor")
			if acc == "" {
				return nil, logical.BadRequest("missing accessor")
			}
			te, err := s.st.tokens.LookupAccessor(ctx, acc)
			if err != nil {
				return nil, logical.BadRequest("invalid accessor")
			}
			policies = te.Policies
		default:
			tok := d.String("token")
			if tok == "" {
				return nil, logical.BadRequest("missing token")
			}
			te, err := s.st.tokens.Lookup(ctx, tok)
			if err != nil {
				return nil, logical.BadRequest("invalid token")
			}
			policies = te.Policies
		}
		paths := append(d.Strings("paths"), d.Strings("path")...)
		if len(paths) == 0 {
			return nil, logical.BadRequest("missing paths")
		}
		acl, err := s.st.policies.ACL(ctx, policies...)
		if err != nil {
			return nil, err
		}
		data := map[string]any{}
		var all []string
		seen := map[string]bool{}
		for _, p := range paths {
			caps := acl.Capabilities(strings.TrimPrefix(p, "/"))
			data[p] = caps
			for _, c := range caps {
				if !seen[c] {
					seen[c] = true
					all = append(all, c)
				}
			}
		}
		sort.Strings(all)
		data["capabilities"] = all
		if len(paths) == 1 {
			data["capabilities"] = data[paths[0]]
		}
		return &logical.Response{Data: data}, nil
	}
}

func (s *sysBackend) rotate(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if _, err := s.core.barrier.Rotate(ctx); err != nil {
		return nil, err
	}
	return nil, nil //nolint:nilnil // 204
}

func (s *sysBackend) keyStatus(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	ks, err := s.core.barrier.KeyStatus()
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"term":         ks.Term,
		"install_time": ks.InstallTime.UTC().Format(time.RFC3339Nano),
		"encryptions":  ks.Encryptions,
	}}, nil
}
