// Package coretest starts real Keyward servers on loopback for tests: the
// real core, storage and HTTP stack, with a github.com/hashicorp/vault/api
// client pointed at them. Import it only from tests.
package coretest

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/server"
)

// TestServer is a running server.
type TestServer struct {
	// Addr is the base URL, e.g. "http://127.0.0.1:39123".
	Addr string
	// RootToken and UnsealKey are set when the server was started
	// initialized (the default).
	RootToken string
	UnsealKey []byte
	// Client is a vault/api client for Addr, authenticated with RootToken.
	Client *api.Client
	// Server is the running server (Core is Server.Core).
	Server *server.Server
}

type options struct {
	deps          builtin.Dependencies
	storageDir    string
	uninitialized bool
	rootToken     string
	logger        *slog.Logger
	clock         logical.Clock
	maxRequest    int64
}

// Option changes how NewTestServer starts the server.
type Option func(*options)

// WithDependencies sets the outbound dependencies of the built-in auth
// methods (for example an HTTP client trusting keyward cloud's CA).
func WithDependencies(d builtin.Dependencies) Option { return func(o *options) { o.deps = d } }

// WithFileStorage uses the file backend in dir instead of memory.
func WithFileStorage(dir string) Option { return func(o *options) { o.storageDir = dir } }

// Uninitialized starts the server without initializing it (no root token).
func Uninitialized() Option { return func(o *options) { o.uninitialized = true } }

// WithRootToken sets the root token ID of an initialized server.
func WithRootToken(id string) Option { return func(o *options) { o.rootToken = id } }

// WithClock sets the server's clock (see Clock).
func WithClock(c logical.Clock) Option { return func(o *options) { o.clock = c } }

// WithMaxRequestSize sets the listener's body limit in bytes.
func WithMaxRequestSize(n int64) Option { return func(o *options) { o.maxRequest = n } }

// Clock is a settable clock for tests. The zero value starts at the real
// time of its first use. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Now()
	}
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.Now()
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// WithLogger sets the server's logger (default: discard; set
// KEYWARD_TEST_LOG=1 to log to stderr).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// NewTestServer starts a server on 127.0.0.1 with a free port; by default
// initialized with one key share and unsealed, on in-memory storage. It is
// shut down when the test ends.
func NewTestServer(t testing.TB, opts ...Option) *TestServer {
	t.Helper()
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	if o.logger == nil && os.Getenv("KEYWARD_TEST_LOG") != "" {
		o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg := &config.Config{
		Listeners:       []config.Listener{{Address: "127.0.0.1:0", TLSDisable: true, MaxRequestSize: config.DefaultMaxRequestSize}},
		Storage:         config.Storage{Type: "inmem"},
		UI:              true,
		DefaultLeaseTTL: config.DefaultLeaseTTL,
		MaxLeaseTTL:     config.DefaultMaxTTL,
	}
	if o.maxRequest > 0 {
		cfg.Listeners[0].MaxRequestSize = o.maxRequest
	}
	if o.storageDir != "" {
		cfg.Storage = config.Storage{Type: "file", Path: o.storageDir}
	}
	ctx := context.Background()
	srv, err := server.Start(ctx, server.Options{
		Config:         cfg,
		Dev:            !o.uninitialized,
		DevRootTokenID: o.rootToken,
		Logger:         o.logger,
		Dependencies:   o.deps,
		Clock:          o.clock,
	})
	if err != nil {
		t.Fatalf("starting test server: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Logf("test server shutdown: %v", err)
		}
	})
	ts := &TestServer{Addr: "http://" + srv.Addrs()[0].String(), Server: srv}
	if srv.Dev != nil {
		ts.RootToken = srv.Dev.RootToken
		ts.UnsealKey = srv.Dev.UnsealKey
	}
	ts.Client = ts.NewClient(t, ts.RootToken)
	return ts
}

// NewClient returns a vault/api client for the server using token (which
// may be empty).
func (ts *TestServer) NewClient(t testing.TB, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = ts.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("vault api client: %v", err)
	}
	c.SetToken(token)
	return c
}
