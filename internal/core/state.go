package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/barrier"
	"github.com/keyward/keyward/internal/lease"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/policy"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/token"
)

// Barrier prefixes of the built-in subsystems.
const (
	prefixPolicy = "sys/policy/"
	prefixToken  = "sys/token/"
	prefixLease  = "sys/expire/"
	prefixAudit  = "sys/audit/"
)

// buildState sets up everything that lives while unsealed: stores, the
// built-in mounts, the persisted mounts, and the background loops.
func (c *Core) buildState(ctx context.Context) (*unsealedState, error) {
	st := &unsealedState{router: newRouter()}
	st.policies = policy.NewStore(barrier.NewView(c.barrier, prefixPolicy))
	if err := st.policies.Setup(ctx); err != nil {
		return nil, fmt.Errorf("policy store: %w", err)
	}

	tokenMount := &mount{path: "auth/token/", view: barrier.NewView(c.barrier, prefixToken), builtin: true}
	tokenMount.cur.Store(&MountEntry{
		Table: tableAuth, Path: "token/", Type: "token", Description: "token based credentials",
		UUID: "token", Accessor: "auth_token_" + randomHex(4), Config: MountConfig{TokenType: "default-service"},
	})
	tokens, err := token.NewStore(token.Config{
		Storage: tokenMount.view,
		Clock:   c.clock,
		Logger:  c.logger.With("component", "token"),
		System:  &mountSystemView{core: c, mount: tokenMount},
		RenewAuth: func(ctx context.Context, e *token.Entry) (*logical.Auth, error) {
			return c.renewAuth(ctx, st, e)
		},
		SystemFor: func(path string) logical.SystemView { return c.systemViewFor(st, path) },
		OnRevoke: func(ctx context.Context, e *token.Entry) error {
			if st.leases == nil {
				return nil
			}
			return st.leases.RevokeByToken(ctx, e)
		},
		HasSudo: func(ctx context.Context, policies []string, path string) bool {
			acl, err := st.policies.ACL(ctx, policies...)
			if err != nil {
				return false
			}
			r := acl.Check(path, logical.UpdateOperation, nil)
			return r.Root || r.Sudo
		},
	})
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	if err = tokens.Setup(ctx); err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	st.tokens = tokens
	tokenMount.backend = tokens.Backend()

	leases, err := lease.NewManager(lease.Config{
		Storage: barrier.NewView(c.barrier, prefixLease),
		Clock:   c.clock,
		Logger:  c.logger.With("component", "lease"),
		Tokens:  tokens,
		System:  func(path string) logical.SystemView { return c.systemViewFor(st, path) },
	})
	if err != nil {
		return nil, fmt.Errorf("lease manager: %w", err)
	}
	if err = leases.Setup(ctx); err != nil {
		return nil, fmt.Errorf("lease manager: %w", err)
	}
	st.leases = leases

	st.audit = audit.NewBroker(audit.BrokerConfig{
		Storage: barrier.NewView(c.barrier, prefixAudit),
		Logger:  c.logger.With("component", "audit"),
		Clock:   c.clock,
	})
	if err = st.audit.Setup(ctx); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}

	sysBackend, err := c.newSystemBackend(st)
	if err != nil {
		return nil, err
	}
	sysMount := &mount{path: "sys/", backend: sysBackend, view: barrier.NewView(c.barrier, "sys/data/"), builtin: true}
	sysMount.cur.Store(&MountEntry{
		Table: tableMounts, Path: "sys/", Type: "system", Description: "system endpoints used for control, policy and debugging",
		UUID: "system", Accessor: "system_" + randomHex(4),
	})
	st.router.add(sysMount)
	st.router.add(tokenMount)

	for _, t := range []struct{ table, key string }{{tableMounts, keyMountTable}, {tableAuth, keyAuthTable}} {
		entries, err := c.loadTable(ctx, t.key)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			e.Table = t.table
			m, err := c.instantiate(ctx, e)
			if err != nil {
				return nil, fmt.Errorf("mounting %s: %w", e.routePath(), err)
			}
			st.router.add(m)
		}
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st.cancel = cancel
	st.wg.Add(2)
	go func() {
		defer st.wg.Done()
		if err := tokens.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			c.logger.Error("token expiration loop stopped", "error", err)
		}
	}()
	go func() {
		defer st.wg.Done()
		if err := leases.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			c.logger.Error("lease expiration loop stopped", "error", err)
		}
	}()
	return st, nil
}

// systemViewFor is the system view of the mount owning path (nil when no
// mount does, meaning the defaults).
func (c *Core) systemViewFor(st *unsealedState, path string) logical.SystemView {
	m, _, ok := st.router.match(path)
	if !ok {
		return nil
	}
	return &mountSystemView{core: c, mount: m}
}

// Mount enables a secrets engine (Table "mounts") or auth method (Table
// "auth"). It is called from a request (read lock held) or during dev
// setup.
func (c *Core) Mount(ctx context.Context, e *MountEntry) error {
	if c.state == nil {
		return ErrSealed
	}
	return c.mountIn(ctx, c.state, e)
}

func (c *Core) mountIn(ctx context.Context, st *unsealedState, e *MountEntry) error {
	st.tableMu.Lock()
	defer st.tableMu.Unlock()
	path, err := normalizeMountPath(e.Path)
	if err != nil {
		return err
	}
	e.Path = path
	if e.Table == tableMounts {
		for _, r := range reservedPrefixes {
			if strings.HasPrefix(path, r) {
				return logical.BadRequest("cannot mount at %q: the %q prefix is reserved", path, r)
			}
		}
		switch e.Type {
		case "kv-v1":
			e.Type = "kv"
			e.Options = withOption(e.Options, "version", "1")
		case "kv-v2":
			e.Type = "kv"
			e.Options = withOption(e.Options, "version", "2")
		case "generic":
		case "kv":
			if v := e.Options["version"]; v != "" && v != "1" && v != "2" {
				return logical.BadRequest("invalid kv version %q: must be 1 or 2", v)
			}
		default:
			if _, ok := e.Options["version"]; ok {
				return logical.BadRequest("secrets engine %q does not allow setting a version", e.Type)
			}
		}
	} else if e.Type == "token" {
		return logical.BadRequest("token credential backend cannot be instantiated")
	}
	if e.Config.DefaultLeaseTTL > 0 && e.Config.MaxLeaseTTL > 0 && e.Config.DefaultLeaseTTL > e.Config.MaxLeaseTTL {
		return logical.BadRequest("given default lease TTL greater than given max lease TTL")
	}
	if e.Config.DefaultLeaseTTL > c.cfg.MaxLeaseTTL && e.Config.MaxLeaseTTL == 0 {
		return logical.BadRequest("given default lease TTL greater than system max lease TTL of %d", int64(c.cfg.MaxLeaseTTL.Seconds()))
	}
	if existing, ok := st.router.conflict(e.routePath()); ok {
		return logical.BadRequest("path is already in use at %s", existing)
	}
	e.UUID = newUUID()
	prefix := e.Type
	if e.Table == tableAuth {
		prefix = "auth_" + e.Type
	}
	e.Accessor = prefix + "_" + randomHex(4)
	m, err := c.instantiate(ctx, e)
	if err != nil {
		return err
	}
	st.router.add(m)
	if err := c.persistTable(ctx, st, e.Table); err != nil {
		st.router.remove(m.path)
		return fmt.Errorf("persisting mount table: %w", err)
	}
	return nil
}

func withOption(opts map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for kk, vv := range opts {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// unmount disables the mount at routePath: revokes its leases and tokens,
// removes it from the table, then deletes its data.
func (c *Core) unmount(ctx context.Context, st *unsealedState, table, path string) error {
	st.tableMu.Lock()
	defer st.tableMu.Unlock()
	path, err := normalizeMountPath(path)
	if err != nil {
		return err
	}
	routePath := path
	if table == tableAuth {
		routePath = "auth/" + path
	}
	m, ok := st.router.get(routePath)
	if !ok {
		// Vault answers 204 for a missing mount.
		return nil
	}
	if m.builtin {
		return logical.BadRequest("cannot unmount %q", routePath)
	}
	if _, err := st.leases.RevokePrefix(ctx, routePath, true); err != nil {
		return fmt.Errorf("revoking leases under %s: %w", routePath, err)
	}
	st.router.remove(routePath)
	if err := c.persistTable(ctx, st, table); err != nil {
		st.router.add(m)
		return fmt.Errorf("persisting mount table: %w", err)
	}
	if cl, ok := m.backend.(logical.Cleaner); ok {
		cl.Cleanup(ctx)
	}
	if err := deleteTree(ctx, m.view, ""); err != nil {
		c.logger.Warn("could not delete all data of the removed mount", "mount", routePath, "error", err)
	}
	return nil
}

func deleteTree(ctx context.Context, s storage.Backend, prefix string) error {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/") {
			if err := deleteTree(ctx, s, prefix+k); err != nil {
				return err
			}
			continue
		}
		if err := s.Delete(ctx, prefix+k); err != nil {
			return err
		}
	}
	return nil
}

// tune applies changes to a mount's configuration. A changed
// options.version of a kv mount re-creates its backend (KV's upgrade).
func (c *Core) tune(ctx context.Context, st *unsealedState, routePath string, apply func(e *MountEntry) error) error {
	st.tableMu.Lock()
	defer st.tableMu.Unlock()
	m, ok := st.router.get(routePath)
	if !ok {
		return logical.BadRequest("cannot tune %q: no mount at this path", routePath)
	}
	old := m.entry()
	next := *old
	next.Options = withOption(old.Options, "", "")
	delete(next.Options, "")
	if err := apply(&next); err != nil {
		return err
	}
	maxTTL := next.Config.MaxLeaseTTL
	if maxTTL == 0 {
		maxTTL = c.cfg.MaxLeaseTTL
	}
	if next.Config.DefaultLeaseTTL > maxTTL {
		return logical.BadRequest("default lease TTL cannot be larger than max lease TTL")
	}
	if next.Options["version"] != old.Options["version"] && !m.builtin {
		if next.Type != "kv" && next.Type != "generic" {
			return logical.BadRequest("secrets engine %q does not allow setting a version", next.Type)
		}
		if old.Options["version"] == "2" && next.Options["version"] != "2" {
			return logical.BadRequest("cannot downgrade a kv mount from version 2")
		}
		fresh, err := c.instantiate(ctx, &next)
		if err != nil {
			return err
		}
		if cl, ok := m.backend.(logical.Cleaner); ok {
			cl.Cleanup(ctx)
		}
		st.router.add(fresh)
		if err := c.persistTable(ctx, st, next.Table); err != nil {
			st.router.add(m)
			return fmt.Errorf("persisting mount table: %w", err)
		}
		return nil
	}
	m.cur.Store(&next)
	if m.builtin {
		return nil
	}
	if err := c.persistTable(ctx, st, next.Table); err != nil {
		m.cur.Store(old)
		return fmt.Errorf("persisting mount table: %w", err)
	}
	return nil
}
