// Package cloud is keyward's stand-in for the Azure services the tutorial
// uses: an Entra ID token service (per-tenant OIDC discovery v1/v2, JWKS,
// client-credentials tokens with secrets or federated assertions), a subset
// of Azure Resource Manager (resource groups, user-assigned identities and
// their federated credentials, virtual machines, scale sets and their
// instances, role assignments and definitions, RBAC enforced from the
// bearer token) and the instance metadata service (IMDS) of a given VM or
// scale-set instance.
//
// A Server serves the token service and ARM over HTTPS on two listeners
// (its own CA, written to the data directory), and IMDS over plain HTTP, one
// listener per instance (Config.IMDS or ServeIMDS), or in-process through
// IMDSHandler. The package's job is HTTP, so it imports net/http.
//
// Persistence: {DataDir}/cloud.db (bbolt, 0600) holds tenants,
// subscriptions, groups, identities, federated credentials, VMs, scale
// sets, principals (client secrets only as SHA-256 hashes) and role
// assignments. Token-signing keys are stored in the same file sealed with
// AES-256-GCM under {DataDir}/signing.kek (32 random bytes, 0600), so a copy
// of the database alone does not disclose them; they are never logged.
// ca.pem/ca-key.pem (0644/0600) are the HTTPS CA; profile.json (0600) holds
// the endpoints and the admin service principal's secret for clients.
//
// IMDS: real IMDS is one endpoint per VM, so each IMDS listener answers for
// exactly one VM or scale-set instance, given by its ARM ID
// (…/virtualMachines/{vm} or …/virtualMachineScaleSets/{vmss}/virtualMachines/{n});
// tokens are only issued for identities assigned to that VM or its scale set.
package cloud

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/keyward/keyward/internal/oidc"
)

// DefaultKeyOverlap is how long a rotated-out signing key stays published:
// longer than the longest token it signed (24 h 5 min).
const DefaultKeyOverlap = 25 * time.Hour

// Config configures a Server. Zero values pick the defaults noted.
type Config struct {
	// DataDir holds cloud.db, signing.kek, ca.pem, ca-key.pem and
	// profile.json. Required. Created 0700 when missing.
	DataDir string
	// LoginAddr is the token service's listen address (default
	// 127.0.0.1:0, an ephemeral port).
	LoginAddr string
	// ARMAddr is Resource Manager's listen address (default 127.0.0.1:0).
	ARMAddr string
	// TLSHosts are extra DNS names or IPs for the serving certificate
	// (127.0.0.1, ::1 and localhost are always included).
	TLSHosts []string
	// IMDS lists IMDS listeners Run starts, one per instance.
	IMDS []IMDSListener
	// IMDSRateLimit is the per-instance identity request rate in requests
	// per second (0 = Azure's 20; negative disables rate limiting).
	IMDSRateLimit float64
	// IMDSMaxConcurrent is the per-instance identity concurrency limit
	// (0 = Azure's 5; negative disables).
	IMDSMaxConcurrent int
	// KeyOverlap is how long a rotated-out key stays in the JWKS
	// (0 = DefaultKeyOverlap).
	KeyOverlap time.Duration
	// Bootstrap pre-creates tenants, subscriptions, groups, compute and
	// identities at start (idempotent). Nil creates only the defaults.
	Bootstrap *Bootstrap
	// Clock is the time source for tokens, key overlap and rate limits
	// (nil = real time).
	Clock clock.PassiveClock
	// Logger receives operational logs (nil = discard). Tokens, secrets and
	// keys are never logged.
	Logger *slog.Logger
	// FederationClient fetches external issuers' discovery documents and
	// keys for federated credentials (nil = a client with a 10 s timeout and
	// system roots).
	FederationClient *http.Client
}

// IMDSListener is one IMDS endpoint: plain HTTP at Addr (e.g.
// "127.0.0.1:8079") answering for the VM or scale-set instance InstanceID
// (.../virtualMachines/{vm} or .../virtualMachineScaleSets/{vmss}/virtualMachines/{n}).
type IMDSListener struct {
	Addr       string
	InstanceID string
}

// Server is a running cloud stand-in. Create with New, serve with Run.
// Methods are safe for concurrent use.
type Server struct {
	cfg   Config
	log   *slog.Logger
	clock clock.PassiveClock
	store *store
	st    *state
	keys  *oidc.KeySet
	keyMu sync.Mutex // serializes rotations

	loginLn, armLn   net.Listener
	loginURL, armURL string
	tlsConfig        *tls.Config
	caPEM            []byte

	tenant, sub              string
	adminClient, adminSecret string
	adminObject              string

	imds *imdsLimiter
	fed  *federation
}

// meta is the record of the default tenant and admin principal.
type meta struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	AdminObjectID  string `json:"adminObjectId"`
	AdminClientID  string `json:"adminClientId"`
}

// Profile is what `keyward cloud serve` writes to {DataDir}/profile.json
// (mode 0600) so clients (the keyward cloud CLI, demo) can find and log in
// to the running service, like az's ~/.azure. It contains the admin client
// secret.
type Profile struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	AuthorityHost  string `json:"authorityHost"`
	ARMEndpoint    string `json:"armEndpoint"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	CAFile         string `json:"caFile"`
}

// ProfilePath returns the profile file path for dataDir.
func ProfilePath(dataDir string) string { return filepath.Join(dataDir, "profile.json") }

// New opens the data directory, loads or creates state and keys, applies
// cfg.Bootstrap, and binds the login and ARM listeners (so AuthorityHost
// and ARMEndpoint are known before Run). Call Run to serve, or Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("cloud: DataDir is required")
	}
	if cfg.LoginAddr == "" {
		cfg.LoginAddr = "127.0.0.1:0"
	}
	if cfg.ARMAddr == "" {
		cfg.ARMAddr = "127.0.0.1:0"
	}
	if cfg.KeyOverlap == 0 {
		cfg.KeyOverlap = DefaultKeyOverlap
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, clock: cfg.Clock, store: st, st: newState()}
	s.imds = newIMDSLimiter(cfg.IMDSRateLimit, cfg.IMDSMaxConcurrent)
	s.fed = newFederation(cfg.FederationClient, s.now)
	ok := false
	defer func() {
		if !ok {
			_ = s.Close()
		}
	}()
	if err = s.st.load(st); err != nil {
		return nil, err
	}
	if err = s.loadKeys(); err != nil {
		return nil, err
	}
	if err = s.setupTLS(); err != nil {
		return nil, err
	}
	lc := &net.ListenConfig{}
	if s.loginLn, err = lc.Listen(ctx, "tcp", cfg.LoginAddr); err != nil {
		return nil, fmt.Errorf("cloud: listen login: %w", err)
	}
	if s.armLn, err = lc.Listen(ctx, "tcp", cfg.ARMAddr); err != nil {
		return nil, fmt.Errorf("cloud: listen arm: %w", err)
	}
	s.loginURL = baseURL(s.loginLn.Addr())
	s.armURL = baseURL(s.armLn.Addr())
	if err := s.bootstrapDefaults(ctx); err != nil {
		return nil, err
	}
	if cfg.Bootstrap != nil {
		if err := s.ApplyBootstrap(ctx, cfg.Bootstrap); err != nil {
			return nil, err
		}
	}
	if err := s.writeProfile(); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

func baseURL(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return "https://" + a.String() + "/"
	}
	host := ta.IP.String()
	if ta.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(ta.Port)) + "/"
}

func (s *Server) now() time.Time { return s.clock.Now() }

// AuthorityHost is the token service base URL, ending in "/"
// (e.g. https://127.0.0.1:40123/), i.e. azcore's ActiveDirectoryAuthorityHost.
func (s *Server) AuthorityHost() string { return s.loginURL }

// ARMEndpoint is the Resource Manager base URL, ending in "/".
func (s *Server) ARMEndpoint() string { return s.armURL }

// CACertPEM is the PEM CA certificate both HTTPS listeners chain to.
func (s *Server) CACertPEM() []byte { return append([]byte(nil), s.caPEM...) }

// TenantID is the default tenant.
func (s *Server) TenantID() string { return s.tenant }

// SubscriptionID is the default subscription.
func (s *Server) SubscriptionID() string { return s.sub }

// AdminCredentials returns the admin service principal (Owner on the
// default subscription): client ID, client secret, object ID.
func (s *Server) AdminCredentials() (clientID, secret, objectID string) {
	return s.adminClient, s.adminSecret, s.adminObject
}

// bootstrapDefaults makes sure the default tenant, subscription and admin
// principal exist and that the admin has a known secret.
func (s *Server) bootstrapDefaults(ctx context.Context) error {
	var m meta
	raw, err := s.metaGet("defaults")
	if err != nil {
		return err
	}
	if raw != nil {
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("cloud: meta: %w", err)
		}
	} else {
		m.TenantID, m.SubscriptionID = uuid.NewString(), uuid.NewString()
		if b := s.cfg.Bootstrap; b != nil {
			if b.TenantID != "" {
				m.TenantID = b.TenantID
			}
			if b.SubscriptionID != "" {
				m.SubscriptionID = b.SubscriptionID
			}
		}
		if !isGUID(m.TenantID) || !isGUID(m.SubscriptionID) {
			return errors.New("cloud: bootstrap tenantId and subscriptionId must be GUIDs")
		}
	}
	name := "Keyward Subscription"
	if b := s.cfg.Bootstrap; b != nil && b.SubscriptionName != "" {
		name = b.SubscriptionName
	}
	if err := s.ensureTenantSubscription(m.TenantID, m.SubscriptionID, name); err != nil {
		return err
	}
	s.tenant, s.sub = m.TenantID, m.SubscriptionID
	if m.AdminObjectID == "" {
		cid, secret, oid, err := s.CreateServicePrincipal(ctx, m.TenantID, "keyward-admin")
		if err != nil {
			return err
		}
		if _, _, err := s.CreateRoleAssignment(ctx, "/subscriptions/"+m.SubscriptionID, "", RoleOwner, oid, "ServicePrincipal", oid); err != nil {
			return err
		}
		m.AdminObjectID, m.AdminClientID, s.adminSecret = oid, cid, secret
		b, _ := json.Marshal(m)
		if err := s.metaPut("defaults", b); err != nil {
			return err
		}
	} else {
		// Recover the secret from the profile; mint a new one if lost.
		if p, err := ReadProfile(s.cfg.DataDir); err == nil && p.ClientID == m.AdminClientID {
			s.st.mu.RLock()
			pr := s.st.byApp[key(m.AdminClientID)]
			s.st.mu.RUnlock()
			if pr != nil && pr.checkSecret(p.ClientSecret) {
				s.adminSecret = p.ClientSecret
			}
		}
		if s.adminSecret == "" {
			sec, err := s.AddClientSecret(ctx, m.AdminClientID)
			if err != nil {
				return err
			}
			s.adminSecret = sec
		}
	}
	s.adminClient, s.adminObject = m.AdminClientID, m.AdminObjectID
	return nil
}

func (s *Server) metaGet(k string) ([]byte, error) {
	var out []byte
	err := s.store.view(bucketMeta, k, func(v []byte) { out = append([]byte(nil), v...) })
	return out, err
}

func (s *Server) metaPut(k string, v []byte) error { return s.store.putRaw(bucketMeta, k, v) }

// ReadProfile reads {dataDir}/profile.json.
func ReadProfile(dataDir string) (*Profile, error) {
	b, err := os.ReadFile(ProfilePath(dataDir))
	if err != nil {
		return nil, fmt.Errorf("cloud: read profile: %w", err)
	}
	var p Profile
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("cloud: parse profile: %w", err)
	}
	return &p, nil
}

func (s *Server) writeProfile() error {
	p := Profile{TenantID: s.tenant, SubscriptionID: s.sub, AuthorityHost: s.loginURL, ARMEndpoint: s.armURL,
		ClientID: s.adminClient, ClientSecret: s.adminSecret, CAFile: filepath.Join(s.cfg.DataDir, "ca.pem")}
	b, err := json.MarshalIndent(p, "", "  ") //nolint:gosec // the profile carries the admin secret by design (0600 file, like ~/.azure)
	if err != nil {
		return fmt.Errorf("cloud: profile: %w", err)
	}
	tmp := ProfilePath(s.cfg.DataDir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("cloud: write profile: %w", err)
	}
	return os.Rename(tmp, ProfilePath(s.cfg.DataDir))
}

// loadKeys loads the signing keys or creates the first one.
func (s *Server) loadKeys() error {
	raws, err := s.store.sealedAll(bucketKeys)
	if err != nil {
		return err
	}
	var keys []*oidc.Key
	for _, r := range raws {
		k, kerr := oidc.UnmarshalKey(r)
		if kerr != nil {
			return kerr
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		k, kerr := oidc.NewKey(s.now())
		if kerr != nil {
			return kerr
		}
		keys = []*oidc.Key{k}
	}
	ks, err := oidc.NewKeySet(keys)
	if err != nil {
		return err
	}
	s.keys = ks
	return s.saveKeys()
}

func (s *Server) saveKeys() error {
	vals := map[string][]byte{}
	for _, k := range s.keys.Keys() {
		b, err := oidc.MarshalKey(k)
		if err != nil {
			return err
		}
		vals[k.ID] = b
	}
	return s.store.replaceSealed(bucketKeys, vals)
}

// RotateKeys generates a new signing key; the previous one stays published
// for Config.KeyOverlap. It returns the new key's kid.
func (s *Server) RotateKeys(_ context.Context) (string, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	k, err := oidc.NewKey(s.now())
	if err != nil {
		return "", err
	}
	s.keys.Rotate(k, s.now(), s.cfg.KeyOverlap)
	if err := s.saveKeys(); err != nil {
		return "", err
	}
	s.log.Info("signing key rotated", "kid", k.ID)
	return k.ID, nil
}

// Run serves the token service, ARM and the configured IMDS listeners until
// ctx is done, then shuts them down and closes the store.
func (s *Server) Run(ctx context.Context) error {
	defer func() { _ = s.store.close() }()
	g, gctx := errgroup.WithContext(ctx)
	serve := func(ln net.Listener, h http.Handler, tlsOn bool) {
		srv := newHTTPServer(h, s.log)
		if tlsOn {
			srv.TLSConfig = s.tlsConfig.Clone() // each server mutates its own (NextProtos)
		}
		g.Go(func() error {
			var err error
			if tlsOn {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
		g.Go(func() error {
			<-gctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		})
	}
	type imdsL struct {
		ln net.Listener
		h  http.Handler
	}
	var imds []imdsL
	for _, l := range s.cfg.IMDS {
		h, err := s.IMDSHandler(ctx, l.InstanceID)
		if err == nil {
			var ln net.Listener
			if ln, err = (&net.ListenConfig{}).Listen(ctx, "tcp", l.Addr); err == nil {
				imds = append(imds, imdsL{ln, h})
				s.log.Info("imds listening", "addr", ln.Addr().String(), "instance", l.InstanceID)
				continue
			}
		}
		for _, i := range imds {
			_ = i.ln.Close()
		}
		_ = s.loginLn.Close()
		_ = s.armLn.Close()
		return fmt.Errorf("cloud: imds %s for %s: %w", l.Addr, l.InstanceID, err)
	}
	serve(s.loginLn, s.LoginHandler(), true)
	serve(s.armLn, s.ARMHandler(), true)
	for _, i := range imds {
		serve(i.ln, i.h, false)
	}
	s.log.Info("cloud listening", "authority", s.loginURL, "arm", s.armURL, "tenant", s.tenant, "subscription", s.sub)
	return g.Wait()
}

// ServeIMDS serves IMDS for instanceID on ln (plain HTTP, as real IMDS)
// until ctx is done.
func (s *Server) ServeIMDS(ctx context.Context, ln net.Listener, instanceID string) error {
	h, err := s.IMDSHandler(ctx, instanceID)
	if err != nil {
		return err
	}
	srv := newHTTPServer(h, s.log)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the listeners and the store without serving (for a Server
// whose Run was never called).
func (s *Server) Close() error {
	if s.loginLn != nil {
		_ = s.loginLn.Close()
	}
	if s.armLn != nil {
		_ = s.armLn.Close()
	}
	return s.store.close()
}

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
