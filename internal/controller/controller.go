// Package controller is Keyward's identity controller, the equivalent of
// AAD Pod Identity's MIC. It keeps one AzureAssignedIdentity per (pod,
// identity) that a binding selects, and keeps the user-assigned identities
// those pods need on their nodes' VMs or scale sets through ARM.
//
// Unlike MIC's full-resync loop it runs two level-triggered reconcilers on
// a controller-runtime manager with Lease leader election:
//
//   - assignments, keyed by pod: creates, updates and deletes the pod's
//     AzureAssignedIdentities (status Created, finalizer, nodename label);
//   - targets, keyed by VM or scale set: adds the identities that live
//     assignments need with delta PATCHes (at most 150 IDs each; a request
//     that ARM rejects is split until the bad identities are isolated, so
//     one bad identity never blocks the rest), marks assignments Assigned,
//     removes identities no longer needed by any pod of the target, and
//     then releases the deleted assignments' finalizers.
//
// Identities that were on a VM before the controller assigned them, and
// identities whose client ID is listed as immutable, are never removed.
// Completed and Failed pods release their identities.
package controller

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Config configures a Controller. RESTConfig and ARM are required.
type Config struct {
	// RESTConfig reaches the Kubernetes API. A zero QPS means DefaultQPS
	// (burst twice that).
	RESTConfig *rest.Config
	// ARM assigns identities to VMs and scale sets.
	ARM ARM
	// Logger receives the controller's logs; nil discards them.
	Logger *slog.Logger
	// Clock stamps conditions; nil means the real clock.
	Clock clock.PassiveClock

	// ForceNamespaced restricts every identity to pods and bindings of its
	// own namespace (MIC's --forceNamespaced).
	ForceNamespaced bool
	// ImmutableClientIDs are client IDs of identities never removed from a
	// VM or scale set (MIC's --immutable-user-msis); compared
	// case-insensitively.
	ImmutableClientIDs []string
	// AssignedIdentityNamespace holds AzureAssignedIdentities of identities
	// that are not namespaced; "" means "default", as MIC.
	AssignedIdentityNamespace string

	// Namespaces limits the namespaced objects the controller watches
	// (pods, identities, bindings, assignments); nil means all.
	// AssignedIdentityNamespace is always added. Nodes are always watched
	// cluster-wide.
	Namespaces []string

	// LeaderElection enables Lease leader election: only the leader
	// reconciles.
	LeaderElection bool
	// LeaderElectionNamespace holds the Lease; "" means "default".
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease; "" means "aad-pod-identity-mic".
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election;
	// zero means 15 s, 10 s and 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// HealthProbeAddr serves /healthz and /readyz (e.g. ":8080"); "" or
	// "0" disables it.
	HealthProbeAddr string
	// ResyncInterval re-checks every target against ARM (repairs identities
	// removed out of band); 0 means 3 minutes.
	ResyncInterval time.Duration
	// MaxConcurrentReconciles per reconciler; 0 means 8.
	MaxConcurrentReconciles int
}

// DefaultQPS is the Kubernetes client rate used when Config.RESTConfig
// sets none.
const DefaultQPS = 200

// Controller is the identity controller. Build it with New and run it with
// Run.
type Controller struct {
	mgr     manager.Manager
	metrics *metrics
	log     *slog.Logger
}

// NewScheme returns a scheme with the client-go built-in types and
// aadpodidentity.k8s.io/v1.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(aadv1.AddToScheme(s))
	return s
}

// New builds the controller. It contacts the API server only to discover
// resources; nothing reconciles before Run.
func New(ctx context.Context, cfg Config) (*Controller, error) {
	if cfg.RESTConfig == nil || cfg.ARM == nil {
		return nil, errors.New("controller: Config.RESTConfig and Config.ARM are required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.LeaseDuration, 15*time.Second)
	def(&cfg.RenewDeadline, 10*time.Second)
	def(&cfg.RetryPeriod, 2*time.Second)
	def(&cfg.ResyncInterval, 3*time.Minute)
	if cfg.LeaderElectionNamespace == "" {
		cfg.LeaderElectionNamespace = "default"
	}
	if cfg.LeaderElectionID == "" {
		cfg.LeaderElectionID = "aad-pod-identity-mic"
	}
	if cfg.AssignedIdentityNamespace == "" {
		cfg.AssignedIdentityNamespace = "default"
	}
	if cfg.MaxConcurrentReconciles == 0 {
		cfg.MaxConcurrentReconciles = 8
	}
	probe := cfg.HealthProbeAddr
	if probe == "" {
		probe = "0"
	}

	var cacheOpts cache.Options
	if len(cfg.Namespaces) > 0 {
		// Assignments of non-namespaced identities live there.
		cacheOpts.DefaultNamespaces = map[string]cache.Config{cfg.AssignedIdentityNamespace: {}}
		for _, ns := range cfg.Namespaces {
			cacheOpts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	restCfg := rest.CopyConfig(cfg.RESTConfig)
	if restCfg.QPS == 0 {
		// client-go's default of 5 requests per second is what made MIC
		// cycles take up to 30 minutes at scale (#1267).
		restCfg.QPS, restCfg.Burst = DefaultQPS, 2*DefaultQPS
	}
	m := newMetrics()
	mgr, err := ctrl.NewManager(restCfg, manager.Options{
		Scheme:                        NewScheme(),
		Cache:                         cacheOpts,
		Logger:                        logr.FromSlogHandler(log.Handler()),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        probe,
		LeaderElection:                cfg.LeaderElection,
		LeaderElectionResourceLock:    "leases",
		LeaderElectionNamespace:       cfg.LeaderElectionNamespace,
		LeaderElectionID:              cfg.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &cfg.LeaseDuration,
		RenewDeadline:                 &cfg.RenewDeadline,
		RetryPeriod:                   &cfg.RetryPeriod,
		// Several controllers may run in one process (tests, the demo).
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	if probe != "0" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	if err := addIndexes(ctx, mgr); err != nil {
		return nil, err
	}
	immutable := map[string]bool{}
	for _, id := range cfg.ImmutableClientIDs {
		immutable[normalize(id)] = true
	}
	rec := mgr.GetEventRecorder(aadv1.EventSource)
	if err := (&assignments{
		c: mgr.GetClient(), log: log, clock: clk, metrics: m,
		forceNamespaced: cfg.ForceNamespaced, aaiNamespace: cfg.AssignedIdentityNamespace,
	}).setup(mgr, cfg.MaxConcurrentReconciles); err != nil {
		return nil, err
	}
	if err := (&targets{
		c: mgr.GetClient(), arm: cfg.ARM, log: log, clock: clk, metrics: m, events: rec,
		immutable: immutable, resync: cfg.ResyncInterval,
	}).setup(mgr, cfg.MaxConcurrentReconciles); err != nil {
		return nil, err
	}
	if err := mgr.Add(leaderCounter{m}); err != nil {
		return nil, err
	}
	return &Controller{mgr: mgr, metrics: m, log: log}, nil
}

// Registry returns the registry holding the controller's Prometheus
// metrics (namespace aadpodidentity). Serve it together with
// controller-runtime's metrics.Registry.
func (c *Controller) Registry() *prometheus.Registry { return c.metrics.reg }

// Elected is closed once this instance leads (at once without leader
// election).
func (c *Controller) Elected() <-chan struct{} { return c.mgr.Elected() }

// Run runs the controller until ctx is cancelled (returns nil) or it fails,
// including when it loses the leader lease (returns an error; the caller
// decides whether to exit).
func (c *Controller) Run(ctx context.Context) error {
	c.log.InfoContext(ctx, "identity controller starting")
	return c.mgr.Start(ctx)
}

// leaderCounter counts elections won: it runs only on the leader.
type leaderCounter struct{ m *metrics }

func (l leaderCounter) Start(ctx context.Context) error {
	l.m.leaderElections.Inc()
	<-ctx.Done()
	return nil
}

func (l leaderCounter) NeedLeaderElection() bool { return true }
