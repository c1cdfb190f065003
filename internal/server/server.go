// Package server assembles a running secrets server from a validated
// configuration: storage, core, HTTP listeners with timeouts, and graceful
// shutdown. The `server`, `demo` and `dev` commands and the test harness
// all start servers through it.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/core"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/logical"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/file"
	"github.com/keyward/keyward/internal/storage/inmem"
)

// Options configures a Server.
type Options struct {
	// Config is the validated server configuration. Required.
	Config *config.Config
	// Dev initializes and unseals at start (one key share), as -dev does.
	Dev bool
	// DevRootTokenID is the root token to use in dev mode ("" = random).
	DevRootTokenID string
	// Logger; nil discards.
	Logger *slog.Logger
	// Dependencies of the built-in auth methods.
	Dependencies builtin.Dependencies
	// Clock tells the core the time; nil means real time. Tests inject a
	// settable clock to expire tokens without sleeping.
	Clock logical.Clock
}

// Server is a started server.
type Server struct {
	// Core is the running core.
	Core *core.Core
	// Dev is set in dev mode: the unseal key and root token.
	Dev *core.DevResult

	logger    *slog.Logger
	listeners []net.Listener
	servers   []*http.Server
	closer    io.Closer // storage, may be nil
	wg        sync.WaitGroup
	errc      chan error
}

// Start opens storage, builds the core and starts serving on every
// listener. The caller must call Shutdown.
func Start(ctx context.Context, opts Options) (*Server, error) {
	cfg := opts.Config
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{logger: logger, errc: make(chan error, len(cfg.Listeners))}
	var phys storage.Backend
	switch cfg.Storage.Type {
	case "file":
		fb, err := file.New(cfg.Storage.Path)
		if err != nil {
			return nil, fmt.Errorf("opening file storage at %s: %w", cfg.Storage.Path, err)
		}
		phys, s.closer = fb, fb
	case "inmem":
		phys = inmem.New()
	default:
		return nil, fmt.Errorf("unsupported storage type %q", cfg.Storage.Type)
	}
	c, err := core.New(core.Config{
		Physical:        phys,
		StorageType:     cfg.Storage.Type,
		Registry:        builtin.Registry(opts.Dependencies),
		Logger:          logger,
		DefaultLeaseTTL: cfg.DefaultLeaseTTL,
		MaxLeaseTTL:     cfg.MaxLeaseTTL,
		ClusterName:     cfg.ClusterName,
		Clock:           opts.Clock,
	})
	if err != nil {
		s.closeStorage()
		return nil, err
	}
	s.Core = c
	if opts.Dev {
		dev, err := c.DevInitialize(ctx, opts.DevRootTokenID)
		if err != nil {
			s.closeStorage()
			return nil, fmt.Errorf("dev setup: %w", err)
		}
		s.Dev = dev
	}
	for _, l := range cfg.Listeners {
		if err := s.listen(ctx, l, cfg.UI); err != nil {
			_ = s.Shutdown(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) listen(ctx context.Context, l config.Listener, ui bool) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.Address)
	if err != nil {
		return fmt.Errorf("listener %s: %w", l.Address, err)
	}
	if !l.TLSDisable {
		cert, err := tls.LoadX509KeyPair(l.TLSCertFile, l.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("listener %s: loading TLS certificate: %w", l.Address, err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	srv := &http.Server{
		Handler: httpapi.New(httpapi.Config{
			Core:           s.Core,
			Logger:         s.logger,
			MaxRequestSize: l.MaxRequestSize,
			UI:             ui,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.listeners = append(s.listeners, ln)
	s.servers = append(s.servers, srv)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("serving %s: %w", ln.Addr(), err)
		}
	}()
	return nil
}

// Addrs returns the listening addresses, in configuration order.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Wait blocks until ctx is done or a listener fails.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.errc:
		return err
	}
}

// Shutdown stops accepting requests, waits for in-flight ones (bounded by
// ctx), seals the core and closes storage.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	if s.Core != nil {
		s.Core.Close(ctx)
	}
	s.closeStorage()
	return errors.Join(errs...)
}

func (s *Server) closeStorage() {
	if s.closer != nil {
		if err := s.closer.Close(); err != nil {
			s.logger.Warn("closing storage", "error", err)
		}
		s.closer = nil
	}
}
