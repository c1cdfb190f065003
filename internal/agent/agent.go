// Package agent is the node agent (the NMI of AAD Pod Identity): an
// IMDS-compatible endpoint that gives each pod on its node tokens of the
// identities bound to it and of nothing else.
//
// The caller is identified only by its source address, through a pod
// source scoped to the node (a Kubernetes informer, or a local registry on
// hosts without Kubernetes); no header or parameter the caller sends can
// change who it is. Paths are normalised so that case or separator tricks
// cannot reach the upstream IMDS. A pod whose identity is still being
// assigned gets 503 with Retry-After within seconds, never a 100 s hang.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Config configures an Agent.
type Config struct {
	// ListenAddr is where the IMDS endpoint listens, e.g. "127.0.0.1:2579"
	// (behind iptables DNAT) or a pod-reachable address in listener mode.
	ListenAddr string
	// ProbeAddr serves /healthz and /metrics; "" disables it.
	ProbeAddr string
	// Upstream is the real IMDS base URL (http://169.254.169.254 on Azure,
	// keyward cloud's IMDS listener off Azure). Required.
	Upstream string
	// Pods finds callers. Required.
	Pods PodSource
	// Identities lists pods' identities and exceptions. Required.
	Identities IdentitySource
	// Secrets reads service principal secrets; nil refuses type 1 and 2.
	Secrets SecretSource
	// Namespaced restricts every pod to identities of its own namespace
	// (upstream's forceNamespaced).
	Namespaced bool
	// AllowHostNetwork lets host-network pods get tokens. Off by default:
	// they share the node's address, so the caller cannot be told apart.
	AllowHostNetwork bool
	// PendingWait is how long a request waits for a Created assignment to
	// become Assigned before answering 503; 0 means 2 s.
	PendingWait time.Duration
	// RetryAfter is the Retry-After of a 503; 0 means 5 s.
	RetryAfter time.Duration
	// Cache, when non-nil, is started by Run, which serves only once it has
	// synced (the Kubernetes sources); nil means the sources need no start.
	Cache Cache
	// Interceptor redirects 169.254.169.254:80 to ListenAddr; nil means
	// listener mode (clients are pointed at ListenAddr directly).
	Interceptor Interceptor
	// InterceptRefresh is how often Run re-asserts the interception
	// (someone may flush the rules); 0 means 60 s, negative never.
	InterceptRefresh time.Duration
	// HTTPClient talks to the upstream IMDS and token services; nil means a
	// client with a 30 s timeout. IMDS must never be reached via a proxy.
	HTTPClient *http.Client
	// Registerer receives the agent's metrics; nil means none.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics; nil means prometheus.DefaultGatherer is NOT
	// used: /metrics is then absent.
	Gatherer prometheus.Gatherer
	// Logger; nil discards. Tokens are never logged.
	Logger *slog.Logger
	// Clock decides when cached tokens expire; nil means time.Now.
	Clock func() time.Time
}

// Cache is a pod/identity source that must be started and synced before
// it answers (a Kubernetes informer cache).
type Cache interface {
	// Start runs the cache until ctx is done.
	Start(ctx context.Context) error
	// WaitForCacheSync blocks until the cache has synced (true) or ctx is
	// done (false).
	WaitForCacheSync(ctx context.Context) bool
}

// Agent is the node agent. Create it with New and start it with Run.
type Agent struct {
	cfg     Config
	logger  *slog.Logger
	tokens  *tokenFetcher
	metrics *metrics

	mu    sync.Mutex
	addr  net.Addr // guarded by mu; set once listening
	ready chan struct{}
}

// New validates cfg and builds an Agent.
func New(cfg Config) (*Agent, error) {
	var errs []error
	if cfg.Upstream == "" {
		errs = append(errs, errors.New("agent: Upstream IMDS URL is required"))
	}
	if cfg.Pods == nil {
		errs = append(errs, errors.New("agent: a pod source is required"))
	}
	if cfg.Identities == nil {
		errs = append(errs, errors.New("agent: an identity source is required"))
	}
	if cfg.ListenAddr == "" {
		errs = append(errs, errors.New("agent: ListenAddr is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.PendingWait <= 0 {
		cfg.PendingWait = 2 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Agent{
		cfg:     cfg,
		logger:  logger,
		tokens:  newTokenFetcher(cfg.Upstream, cfg.HTTPClient, cfg.Clock),
		metrics: m,
		ready:   make(chan struct{}),
	}, nil
}

// Addr returns the IMDS listener's address once Run listens (nil before).
func (a *Agent) Addr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Ready is closed once the agent listens and interception is installed.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run starts the sources' cache (if any) and waits for it to sync, then
// listens, installs interception and serves until ctx is done; then it
// removes interception and shuts the listeners down gracefully. Call it
// once.
func (a *Agent) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	var probe *http.Server
	if a.cfg.ProbeAddr != "" {
		probeLn, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.cfg.ProbeAddr)
		if err != nil {
			return fmt.Errorf("agent: listen %s: %w", a.cfg.ProbeAddr, err)
		}
		probe = newHTTPServer(a.probeHandler(), a.logger)
		go func() { errc <- probe.Serve(probeLn) }()
	}
	cacheDone := make(chan struct{})
	if a.cfg.Cache != nil {
		go func() {
			defer close(cacheDone)
			if err := a.cfg.Cache.Start(ctx); err != nil {
				errc <- fmt.Errorf("agent: source cache: %w", err)
			}
		}()
		if !a.cfg.Cache.WaitForCacheSync(ctx) {
			cancel()
			<-cacheDone
			a.shutdown(ctx, nil, probe)
			select {
			case err := <-errc:
				if !errors.Is(err, http.ErrServerClosed) {
					return err
				}
			default:
			}
			return fmt.Errorf("agent: source cache did not sync: %w", context.Cause(ctx))
		}
	} else {
		close(cacheDone)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", a.cfg.ListenAddr)
	if err != nil {
		cancel()
		<-cacheDone
		a.shutdown(ctx, nil, probe)
		return fmt.Errorf("agent: listen %s: %w", a.cfg.ListenAddr, err)
	}
	a.mu.Lock()
	a.addr = ln.Addr()
	a.mu.Unlock()
	srv := newHTTPServer(a.Handler(), a.logger)
	reasserted := make(chan struct{}) // closed when no re-assertion can run
	if a.cfg.Interceptor != nil {
		if err := a.cfg.Interceptor.Install(ctx); err != nil {
			_ = ln.Close()
			cancel()
			<-cacheDone
			a.shutdown(ctx, nil, probe)
			rmCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer stop()
			if rerr := a.cfg.Interceptor.Remove(rmCtx); rerr != nil {
				a.logger.Warn("removing partial interception", "error", rerr)
			}
			return fmt.Errorf("agent: installing interception: %w", err)
		}
		if a.cfg.InterceptRefresh >= 0 {
			go func() {
				defer close(reasserted)
				a.reassert(ctx)
			}()
		} else {
			close(reasserted)
		}
	} else {
		close(reasserted)
	}
	go func() { errc <- srv.Serve(ln) }()
	close(a.ready)
	a.logger.Info("node agent serving", "addr", ln.Addr().String(), "upstream", a.cfg.Upstream)
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	cancel()
	<-reasserted
	if a.cfg.Interceptor != nil {
		shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := a.cfg.Interceptor.Remove(shutdownCtx); err != nil {
			a.logger.Warn("removing interception", "error", err)
		}
		stop()
	}
	a.shutdown(ctx, srv, probe)
	<-cacheDone
	return runErr
}

// reassert re-installs the interception every InterceptRefresh until ctx
// is done.
func (a *Agent) reassert(ctx context.Context) {
	every := a.cfg.InterceptRefresh
	if every == 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := a.cfg.Interceptor.Install(ctx); err != nil && ctx.Err() == nil {
				a.logger.Error("re-asserting interception failed", "error", err)
			}
		}
	}
}

// shutdown stops the servers that are not nil, waiting up to 10 s for
// requests in flight.
func (a *Agent) shutdown(ctx context.Context, servers ...*http.Server) {
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, s := range servers {
		if s != nil {
			_ = s.Shutdown(shutdownCtx)
		}
	}
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func (a *Agent) probeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-a.ready:
			_, _ = io.WriteString(w, "Active")
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "Not Active")
		}
	})
	if a.cfg.Gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	return mux
}

// Handler returns the IMDS endpoint's handler (for tests and embedding).
func (a *Agent) Handler() http.Handler {
	return http.HandlerFunc(a.serveIMDS)
}

// route is what a request path means, decided on a normalised form.
type route int

const (
	routeInvalid route = iota
	routeToken
	routeInstance
	routeVersions
	routeNotFound
)

// classify normalises the raw request path. A backslash (raw or
// escaped), a dot segment, an empty segment or a non-ASCII byte makes the
// request invalid; case never matters, so case variants can only reach our
// own handlers. The returned path is what is forwarded upstream: the
// canonical lower-case prefix followed by the caller's remaining segments
// with their case kept (instance paths such as
// /metadata/instance/compute/vmScaleSetName are case-sensitive).
func classify(r *http.Request) (route, string) {
	raw := r.URL.EscapedPath()
	if strings.Contains(raw, `\`) || strings.Contains(strings.ToLower(raw), "%5c") || strings.Contains(r.RequestURI, `\`) {
		return routeInvalid, ""
	}
	p, err := url.PathUnescape(raw)
	if err != nil {
		return routeInvalid, ""
	}
	for i := 0; i < len(p); i++ {
		if p[i] < 0x20 || p[i] >= 0x7f {
			return routeInvalid, ""
		}
	}
	trimmed := strings.TrimSuffix(p, "/")
	lower := strings.ToLower(trimmed)
	for _, seg := range strings.Split(strings.TrimPrefix(lower, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return routeInvalid, ""
		}
	}
	const instance = "/metadata/instance"
	switch {
	case lower == "/metadata/identity/oauth2/token":
		return routeToken, lower
	case strings.Contains(lower, "identity") || strings.Contains(lower, "oauth2") || strings.Contains(lower, "token"):
		// Anything else that looks like the token path is refused rather
		// than forwarded to the node's own IMDS.
		return routeInvalid, ""
	case lower == instance || strings.HasPrefix(lower, instance+"/"):
		return routeInstance, instance + trimmed[len(instance):]
	case lower == "/metadata/versions":
		return routeVersions, lower
	default:
		return routeNotFound, lower
	}
}

func (a *Agent) serveIMDS(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	rt, path := classify(r)
	defer func() {
		a.metrics.observe(rt, rec.status, time.Since(start))
		a.logger.Debug("imds request", "route", routeName(rt), "status", rec.status, "remote", r.RemoteAddr, "duration", time.Since(start))
	}()
	if rt == routeInvalid {
		writeError(rec, http.StatusBadRequest, "invalid_request", "Invalid request")
		return
	}
	if r.Method != http.MethodGet {
		writeError(rec, http.StatusMethodNotAllowed, "invalid_request", "Only GET is supported")
		return
	}
	if len(r.Header.Values("X-Forwarded-For")) > 0 {
		writeError(rec, http.StatusBadRequest, "invalid_request", "Requests with X-Forwarded-For are not accepted")
		return
	}
	if r.Header.Get("Metadata") != "true" {
		writeError(rec, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	if rt == routeNotFound {
		writeError(rec, http.StatusNotFound, "not_found", "Not found")
		return
	}
	pod, status, err := a.caller(r)
	if err != nil {
		a.logger.Warn("request refused", "remote", r.RemoteAddr, "path", r.URL.Path, "status", status, "reason", err.Error())
		writeError(rec, status, "forbidden", err.Error())
		return
	}
	switch rt {
	case routeToken:
		a.serveToken(rec, r, pod)
	case routeInstance, routeVersions:
		a.proxy(rec, r, path)
	}
}

// caller identifies the pod behind the request's source address.
func (a *Agent) caller(r *http.Request) (*Pod, int, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil, http.StatusInternalServerError, errors.New("request remote address is invalid")
	}
	host := ap.Addr().Unmap().WithZone("").String()
	ctx := r.Context()
	var pod *Pod
	// A pod that has just received its address may not be in the cache
	// yet: look again briefly before refusing.
	for attempt := 0; ; attempt++ {
		pod, err = a.cfg.Pods.PodByIP(ctx, host)
		if err == nil || !errors.Is(err, ErrUnknownCaller) || attempt >= 5 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, http.StatusServiceUnavailable, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	switch {
	case errors.Is(err, ErrUnknownCaller):
		return nil, http.StatusForbidden, fmt.Errorf("no pod on this node has address %s", host)
	case errors.Is(err, ErrAmbiguousCaller):
		return nil, http.StatusForbidden, fmt.Errorf("address %s is shared by several pods (host network?); refusing to guess the caller", host)
	case err != nil:
		a.logger.Error("pod lookup failed", "remote", host, "error", err)
		return nil, http.StatusServiceUnavailable, errors.New("pod lookup failed")
	}
	if pod.HostNetwork && !a.cfg.AllowHostNetwork {
		return nil, http.StatusForbidden, fmt.Errorf("pod %s uses the host network; host network pods are not allowed", pod)
	}
	return pod, 0, nil
}

// proxy forwards an instance metadata request to the upstream IMDS on the
// normalised path.
func (a *Agent) proxy(w http.ResponseWriter, r *http.Request, path string) {
	u, err := url.Parse(a.cfg.Upstream)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "building upstream request failed")
		return
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "building upstream request failed")
		return
	}
	req.Header.Set("Metadata", "true")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		a.logger.Warn("upstream IMDS unreachable", "error", err)
		writeError(w, http.StatusServiceUnavailable, "upstream_unavailable", "the instance metadata service is unreachable")
		return
	}
	defer func() { _ = resp.Body.Close() }()
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, 4<<20))
}

// serveToken answers the token request of pod.
func (a *Agent) serveToken(w http.ResponseWriter, r *http.Request, pod *Pod) {
	q := r.URL.Query()
	resource := q.Get("resource")
	if resource == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "parameter resource cannot be empty")
		return
	}
	clientID := q.Get("client_id")
	resourceID := q.Get("msi_res_id")
	if resourceID == "" {
		resourceID = q.Get("mi_res_id")
	}
	if q.Get("object_id") != "" && clientID == "" && resourceID == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "selecting an identity by object_id is not supported; use client_id or msi_res_id")
		return
	}
	ctx := r.Context()
	excepted, err := a.cfg.Identities.Excepted(ctx, pod)
	if err != nil {
		a.logger.Error("listing exceptions failed", "pod", pod.String(), "error", err)
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "identity information is unavailable")
		return
	}
	if excepted {
		tok, err := a.tokens.managedIdentity(ctx, clientID, resourceID, resource)
		if err == nil {
			a.logger.Info("token served to excepted pod", "pod", pod.String(), "client_id", clientID, "msi_res_id", resourceID, "resource", resource)
		}
		a.writeToken(w, pod, tok, err)
		return
	}
	// The wait for a pending assignment is bounded in real time: the
	// caller must get an answer within seconds whatever the clock says.
	wait := time.NewTimer(a.cfg.PendingWait)
	defer wait.Stop()
	poll := time.NewTicker(pendingPoll)
	defer poll.Stop()
	for {
		id, pending, err := a.pick(ctx, pod, clientID, resourceID)
		switch {
		case err != nil:
			var se *statusError
			if errors.As(err, &se) {
				a.logger.Warn("token request refused", "pod", pod.String(), "remote", r.RemoteAddr, "status", se.status, "reason", se.msg)
				writeError(w, se.status, se.code, se.msg)
				return
			}
			a.logger.Error("resolving identities failed", "pod", pod.String(), "error", err)
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "identity information is unavailable")
			return
		case id != nil:
			tok, err := a.fetch(ctx, id, resource)
			if err == nil {
				a.logger.Info("token served", "pod", pod.String(), "identity", id.Namespace+"/"+id.Name, "client_id", id.Spec.ClientID, "resource", resource)
			}
			a.writeToken(w, pod, tok, err)
			return
		case pending:
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
				a.writePending(w, pod)
				return
			case <-poll.C:
			}
		default:
			a.writePending(w, pod)
			return
		}
	}
}

// pendingPoll is how often a request waiting for an assignment looks again.
const pendingPoll = 100 * time.Millisecond

type statusError struct {
	status    int
	code, msg string
}

func (e *statusError) Error() string { return e.msg }

// pick chooses the identity for the request among the pod's. It returns
// (nil, true, nil) when the wanted identity exists but is still being
// assigned.
func (a *Agent) pick(ctx context.Context, pod *Pod, clientID, resourceID string) (*Identity, bool, error) {
	all, err := a.cfg.Identities.IdentitiesFor(ctx, pod)
	if err != nil {
		return nil, false, err
	}
	var assigned, created []*Identity
	for i := range all {
		id := &all[i]
		if (a.cfg.Namespaced || id.Namespaced) && id.Namespace != pod.Namespace {
			continue
		}
		if clientID != "" && !strings.EqualFold(id.Spec.ClientID, clientID) {
			continue
		}
		if resourceID != "" && !strings.EqualFold(id.Spec.ResourceID, resourceID) {
			continue
		}
		switch id.State {
		case aadv1.AssignedIDAssigned:
			assigned = append(assigned, id)
		case aadv1.AssignedIDCreated, "":
			created = append(created, id)
		}
	}
	switch {
	case len(assigned) == 1:
		return assigned[0], false, nil
	case len(assigned) > 1:
		return nil, false, &statusError{http.StatusBadRequest, "invalid_request",
			"Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request"}
	case len(created) > 0:
		return nil, true, nil
	case clientID != "" || resourceID != "":
		return nil, false, &statusError{http.StatusForbidden, "forbidden",
			fmt.Sprintf("the requested identity is not bound to pod %s", pod)}
	default:
		return nil, false, &statusError{http.StatusForbidden, "forbidden",
			fmt.Sprintf("no identity is bound to pod %s", pod)}
	}
}

// fetch gets a token for id.
func (a *Agent) fetch(ctx context.Context, id *Identity, resource string) (*Token, error) {
	switch id.Spec.Type {
	case aadv1.UserAssignedMSI:
		if id.Spec.ClientID == "" && id.Spec.ResourceID == "" {
			// Asking IMDS with neither would get the node's own identity.
			return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("identity %s/%s names neither a clientID nor a resourceID", id.Namespace, id.Name)}
		}
		return a.tokens.managedIdentity(ctx, id.Spec.ClientID, id.Spec.ResourceID, resource)
	case aadv1.ServicePrincipal:
		if a.cfg.Secrets == nil {
			return nil, &statusError{http.StatusForbidden, "forbidden", "service principal identities are not enabled on this agent"}
		}
		// The secret must live in the identity's own namespace: whoever
		// may write an AzureIdentity must not be able to make the agent
		// read (and send to an endpoint of their choice) a secret of
		// another namespace.
		ns := id.Spec.ClientPassword.Namespace
		if ns == "" {
			ns = id.Namespace
		}
		if ns != id.Namespace {
			return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("identity %s/%s names a secret of another namespace", id.Namespace, id.Name)}
		}
		if ep := id.Spec.ADEndpoint; ep != "" && !strings.HasPrefix(strings.ToLower(ep), "https://") {
			return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("identity %s/%s: adEndpoint must be an https URL", id.Namespace, id.Name)}
		}
		data, err := a.cfg.Secrets.Secret(ctx, ns, id.Spec.ClientPassword.Name)
		if errors.Is(err, ErrSecretNotFound) {
			return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("the secret of identity %s/%s does not exist", id.Namespace, id.Name)}
		}
		if err != nil {
			return nil, fmt.Errorf("reading the secret of identity %s/%s: %w", id.Namespace, id.Name, err)
		}
		secret := string(data["clientsecret"])
		if secret == "" {
			return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("secret of identity %s/%s has no clientsecret key", id.Namespace, id.Name)}
		}
		return a.tokens.servicePrincipal(ctx, id.Spec.ADEndpoint, id.Spec.TenantID, id.Spec.ClientID, secret, resource)
	default:
		return nil, &statusError{http.StatusForbidden, "forbidden", fmt.Sprintf("identity type %d is not supported by this agent", id.Spec.Type)}
	}
}

func (a *Agent) writeToken(w http.ResponseWriter, pod *Pod, tok *Token, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, tok)
		return
	}
	var se *statusError
	var ue *UpstreamError
	switch {
	case errors.As(err, &se):
		writeError(w, se.status, se.code, se.msg)
	case errors.As(err, &ue) && (ue.Status == http.StatusNotFound || (ue.Status == http.StatusBadRequest && ue.identityNotFound())):
		// The assignment has not reached the node's IMDS yet.
		a.writePending(w, pod)
	case errors.As(err, &ue) && ue.Status < 500:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write(ue.Body)
	default:
		a.logger.Warn("token acquisition failed", "pod", pod.String(), "error", err)
		w.Header().Set("Retry-After", fmt.Sprint(int(a.cfg.RetryAfter/time.Second)))
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "token acquisition failed; retry later")
	}
}

func (a *Agent) writePending(w http.ResponseWriter, pod *Pod) {
	w.Header().Set("Retry-After", fmt.Sprint(int(a.cfg.RetryAfter/time.Second)))
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
		fmt.Sprintf("the identity of pod %s is being assigned to this node; retry later", pod))
}
