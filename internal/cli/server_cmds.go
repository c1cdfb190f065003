package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
)

// serverCommands returns the `server` command.
func serverCommands() []*Command {
	return []*Command{{
		Name:     "server",
		Synopsis: "Start a secrets server (Vault-compatible API)",
		Run:      runServer,
	}}
}

func runServer(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	configPath := fs.String("config", "", "Path to the server configuration file (Vault's HCL format).")
	dev := fs.Bool("dev", false, "Development mode: in-memory, initialized and unsealed, root token printed.")
	devRoot := fs.String("dev-root-token-id", "", "Root token ID to use in dev mode.")
	devListen := fs.String("dev-listen-address", "127.0.0.1:8200", "Address to listen on in dev mode.")
	logLevel := fs.String("log-level", "", "Log level: trace, debug, info, warn, error (overrides the file).")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "Too many arguments (expected 0, got %d)\n", fs.NArg())
		return 2
	}
	if *devRoot == "" {
		*devRoot = env.Getenv("VAULT_DEV_ROOT_TOKEN_ID")
	}
	if v := env.Getenv("VAULT_DEV_LISTEN_ADDRESS"); v != "" && !flagSet(fs, "dev-listen-address") {
		*devListen = v
	}
	var cfg *config.Config
	switch {
	case *dev:
		cfg = &config.Config{
			Listeners:       []config.Listener{{Address: *devListen, TLSDisable: true, MaxRequestSize: config.DefaultMaxRequestSize}},
			Storage:         config.Storage{Type: "inmem"},
			UI:              true,
			DefaultLeaseTTL: config.DefaultLeaseTTL,
			MaxLeaseTTL:     config.DefaultMaxTTL,
			LogLevel:        "info",
		}
	case *configPath != "":
		var err error
		cfg, err = config.Load(*configPath)
		if err != nil {
			fmt.Fprintf(env.Stderr, "Error loading configuration from %s:\n%v\n", *configPath, err)
			return 1
		}
	default:
		fmt.Fprintln(env.Stderr, "A configuration file must be specified with -config, or use -dev.")
		return 2
	}
	if *logLevel != "" {
		cfg.LogLevel = *logLevel
	}
	logger := newLogger(env.Stderr, cfg.LogLevel)
	deps, err := azureDependencies(env)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		return 1
	}
	srv, err := server.Start(ctx, server.Options{
		Config:         cfg,
		Dev:            *dev,
		DevRootTokenID: *devRoot,
		Logger:         logger,
		Dependencies:   deps,
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error initializing core: %v\n", err)
		return 1
	}
	if srv.Dev != nil {
		if home := env.Getenv("HOME"); home != "" {
			// As vault -dev does: authenticate the CLI with the root token.
			if err := os.WriteFile(home+"/.vault-token", []byte(srv.Dev.RootToken), 0o600); err != nil {
				logger.Warn("could not write the token helper file", "error", err)
			}
		}
	}
	printBanner(env.Stdout, cfg, srv)
	runErr := srv.Wait(ctx)
	fmt.Fprintln(env.Stdout, "==> Keyward shutdown triggered")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("shutdown", "error", err)
	}
	if runErr != nil {
		fmt.Fprintf(env.Stderr, "Error: %v\n", runErr)
		return 1
	}
	return 0
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "trace", "debug":
		l = slog.LevelDebug
	case "warn", "warning":
		l = slog.LevelWarn
	case "error", "err":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// azureDependencies builds the outbound settings of the azure auth method
// from the environment: AZURE_POD_IDENTITY_AUTHORITY_HOST (the IMDS the
// server's own managed identity uses, as azidentity reads it) and
// KEYWARD_AZURE_CA_FILE (extra CA certificates to trust, e.g. keyward
// cloud's).
func azureDependencies(env *Env) (builtin.Dependencies, error) {
	deps := builtin.Dependencies{IMDSEndpoint: strings.TrimSuffix(env.Getenv("AZURE_POD_IDENTITY_AUTHORITY_HOST"), "/")}
	client, err := outboundClient(env.Getenv("KEYWARD_AZURE_CA_FILE"), "KEYWARD_AZURE_CA_FILE", 30*time.Second, false)
	if err != nil {
		return deps, err
	}
	deps.AzureHTTPClient = client
	return deps, nil
}

func printBanner(w io.Writer, cfg *config.Config, srv *server.Server) {
	fmt.Fprintln(w, "==> Keyward server configuration:")
	fmt.Fprintln(w)
	for i, a := range srv.Addrs() {
		tlsState := "enabled"
		if cfg.Listeners[i].TLSDisable {
			tlsState = "disabled"
		}
		fmt.Fprintf(w, "             Listener %d: tcp (addr: %q, max_request_size: %q, tls: %q)\n", i+1, a.String(), fmt.Sprint(cfg.Listeners[i].MaxRequestSize), tlsState)
	}
	fmt.Fprintf(w, "                Storage: %s\n", cfg.Storage.Type)
	fmt.Fprintf(w, "              Log Level: %s\n", cfg.LogLevel)
	fmt.Fprintf(w, "                     UI: %t\n", cfg.UI)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "==> Keyward server started! Log data will stream in below:")
	fmt.Fprintln(w)
	if srv.Dev == nil {
		return
	}
	addr := srv.Addrs()[0].String()
	fmt.Fprintf(w, `WARNING! dev mode is enabled! In this mode, Keyward runs entirely in-memory
and starts unsealed with a single unseal key. The root token is already
authenticated to the CLI, so you can immediately begin using Keyward.

You may need to set the following environment variables:

    $ export VAULT_ADDR='http://%s'

The unseal key and root token are displayed below in case you want to
seal/unseal the Vault or re-authenticate.

Unseal Key: %s
Root Token: %s

Development mode should NOT be used in production installations!

`, addr, base64.StdEncoding.EncodeToString(srv.Dev.UnsealKey), srv.Dev.RootToken)
}
