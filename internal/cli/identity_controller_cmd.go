package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azcloud "github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/keyward/keyward/internal/controller"
)

// identityControllerCommand returns `keyward identity controller`, the
// identity controller (AAD Pod Identity's MIC).
func identityControllerCommand() *Command {
	return &Command{
		Name:     "identity controller",
		Synopsis: "Run the identity controller (MIC): assign pod identities to nodes through ARM",
		Run:      runIdentityController,
	}
}

// controllerFlags are the parsed flags of `identity controller`. Names
// follow MIC's where MIC has the flag.
type controllerFlags struct {
	kubeconfig, cloudconfig, immutable                  string
	leNamespace, leName, probeAddr, metricsAddr         string
	armEndpoint, authorityHost, caFile, logLevel        string
	tenantID, clientID, clientSecret, userAssignedMSIID string
	forceNamespaced, leaderElect, useMSI                bool
	resync, leaseDuration                               time.Duration
}

// azureJSON is the part of AKS's /etc/kubernetes/azure.json the
// controller reads.
type azureJSON struct {
	Cloud                       string `json:"cloud"`
	TenantID                    string `json:"tenantId"`
	AADClientID                 string `json:"aadClientId"`
	AADClientSecret             string `json:"aadClientSecret"`
	UseManagedIdentityExtension bool   `json:"useManagedIdentityExtension"`
	UserAssignedIdentityID      string `json:"userAssignedIdentityID"`
}

func parseControllerFlags(env *Env, args []string) (*controllerFlags, error) {
	f := &controllerFlags{}
	fs := flag.NewFlagSet("identity controller", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.kubeconfig, "kubeconfig", env.Getenv("KUBECONFIG"), "Kubeconfig file (default $KUBECONFIG, else in-cluster configuration).")
	fs.StringVar(&f.cloudconfig, "cloudconfig", "", "azure.json with the controller's ARM credentials (else $TENANT_ID, $CLIENT_ID, $CLIENT_SECRET, $USE_MSI, $USER_ASSIGNED_MSI_CLIENT_ID).")
	fs.BoolVar(&f.forceNamespaced, "forceNamespaced", strings.EqualFold(env.Getenv("FORCENAMESPACED"), "true"), "Identities only serve pods and bindings of their own namespace (default $FORCENAMESPACED).")
	fs.StringVar(&f.immutable, "immutable-user-msis", "", "Comma-separated client IDs of identities never removed from VMs or scale sets.")
	fs.DurationVar(&f.resync, "syncRetryDuration", 3*time.Minute, "How often every VM or scale set is re-checked against ARM.")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "Use Lease leader election (only the leader acts).")
	fs.StringVar(&f.leNamespace, "leader-election-namespace", "default", "Namespace of the leader Lease.")
	fs.StringVar(&f.leName, "leader-election-name", "aad-pod-identity-mic", "Name of the leader Lease.")
	fs.DurationVar(&f.leaseDuration, "leader-election-duration", 15*time.Second, "Lease duration (renew deadline 2/3 of it, retry period 1/5).")
	fs.StringVar(&f.probeAddr, "http-probe-address", ":8080", "Address serving /healthz and /readyz (\"0\" = disabled).")
	fs.StringVar(&f.metricsAddr, "prometheus-address", ":8888", "Address serving /metrics (\"\" = disabled).")
	fs.StringVar(&f.armEndpoint, "arm-endpoint", "", "Resource Manager URL (default Azure public cloud; keyward cloud's ARM off Azure).")
	fs.StringVar(&f.authorityHost, "authority-host", "", "Entra ID authority host URL (default Azure public cloud).")
	fs.StringVar(&f.caFile, "ca-file", env.Getenv("KEYWARD_AZURE_CA_FILE"), "Extra CA certificates (PEM) to trust for ARM and Entra ID (default $KEYWARD_AZURE_CA_FILE).")
	fs.StringVar(&f.logLevel, "log-level", "info", "Log level: debug, info, warn, error.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	f.tenantID, f.clientID, f.clientSecret = env.Getenv("TENANT_ID"), env.Getenv("CLIENT_ID"), env.Getenv("CLIENT_SECRET")
	f.useMSI = strings.EqualFold(env.Getenv("USE_MSI"), "true")
	f.userAssignedMSIID = env.Getenv("USER_ASSIGNED_MSI_CLIENT_ID")
	var errs []error
	if f.cloudconfig != "" {
		b, err := os.ReadFile(f.cloudconfig)
		if err != nil {
			errs = append(errs, fmt.Errorf("--cloudconfig: %w", err))
		} else {
			var a azureJSON
			if err := json.Unmarshal(b, &a); err != nil {
				errs = append(errs, fmt.Errorf("--cloudconfig %s: %w", f.cloudconfig, err))
			}
			f.tenantID, f.clientID, f.clientSecret = a.TenantID, a.AADClientID, a.AADClientSecret
			f.useMSI, f.userAssignedMSIID = a.UseManagedIdentityExtension, a.UserAssignedIdentityID
		}
	}
	if !f.useMSI && (f.tenantID == "" || f.clientID == "" || f.clientSecret == "") {
		errs = append(errs, errors.New("ARM credentials missing: a tenant, client ID and secret, or managed identity (USE_MSI=true)"))
	}
	for name, u := range map[string]string{"--arm-endpoint": f.armEndpoint, "--authority-host": f.authorityHost} {
		if u != "" && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("%s %q must be an https URL", name, u))
		}
	}
	if (f.armEndpoint == "") != (f.authorityHost == "") {
		errs = append(errs, errors.New("--arm-endpoint and --authority-host go together"))
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--prometheus-address: %w", err))
		}
	}
	if f.leaseDuration < 3*time.Second {
		errs = append(errs, errors.New("--leader-election-duration must be at least 3s"))
	}
	return f, errors.Join(errs...)
}

func runIdentityController(ctx context.Context, env *Env, args []string) int {
	f, err := parseControllerFlags(env, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity controller: %v\n", err)
		return 2
	}
	if err := runController(ctx, env, f); err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity controller: %v\n", err)
		return 1
	}
	return 0
}

func runController(ctx context.Context, env *Env, f *controllerFlags) error {
	logger := newLogger(env.Stderr, f.logLevel)
	ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))
	restCfg, err := kubeRESTConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	transport, err := outboundClient(f.caFile, "--ca-file", 2*time.Minute, false)
	if err != nil {
		return err
	}
	cloudCfg := azcloud.AzurePublic
	if f.armEndpoint != "" {
		cloudCfg = azcloud.Configuration{
			ActiveDirectoryAuthorityHost: f.authorityHost,
			Services: map[azcloud.ServiceName]azcloud.ServiceConfiguration{
				azcloud.ResourceManager: {Endpoint: strings.TrimSuffix(f.armEndpoint, "/"), Audience: "https://management.core.windows.net/"},
			},
		}
	}
	opts := azcore.ClientOptions{Cloud: cloudCfg, Transport: transport}
	var cred azcore.TokenCredential
	if f.useMSI {
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
		if f.userAssignedMSIID != "" {
			o.ID = azidentity.ClientID(f.userAssignedMSIID)
		}
		cred, err = azidentity.NewManagedIdentityCredential(o)
	} else {
		cred, err = azidentity.NewClientSecretCredential(f.tenantID, f.clientID, f.clientSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: opts, DisableInstanceDiscovery: f.authorityHost != ""})
	}
	if err != nil {
		return err
	}
	armClient, err := controller.NewComputeARM(controller.ComputeConfig{Credential: cred, Cloud: cloudCfg, Transport: transport})
	if err != nil {
		return err
	}
	var immutable []string
	for _, id := range strings.Split(f.immutable, ",") {
		if id = strings.TrimSpace(id); id != "" {
			immutable = append(immutable, id)
		}
	}
	if f.userAssignedMSIID != "" { // the controller's own identity (MIC #981)
		immutable = append(immutable, f.userAssignedMSIID)
	}
	ctl, err := controller.New(ctx, controller.Config{
		RESTConfig: restCfg, ARM: armClient, Logger: logger,
		ForceNamespaced: f.forceNamespaced, ImmutableClientIDs: immutable,
		LeaderElection: f.leaderElect, LeaderElectionNamespace: f.leNamespace, LeaderElectionID: f.leName,
		LeaseDuration: f.leaseDuration, RenewDeadline: f.leaseDuration * 2 / 3, RetryPeriod: f.leaseDuration / 5,
		HealthProbeAddr: f.probeAddr, ResyncInterval: f.resync,
	})
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ctl.Run(gctx) })
	if f.metricsAddr != "" {
		g.Go(func() error {
			return serveMetrics(gctx, f.metricsAddr, prometheus.Gatherers{ctrlmetrics.Registry, ctl.Registry()})
		})
	}
	fmt.Fprintf(env.Stdout, "keyward identity controller: started (leader election %v)\n", f.leaderElect)
	return g.Wait()
}

// serveMetrics serves /metrics on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, g prometheus.Gatherer) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	<-done
	return nil
}
