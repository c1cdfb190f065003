// Package demo runs the tutorial's whole system on one machine, with no
// Kubernetes, no Azure and no root: keyward cloud (Entra ID, ARM, IMDS of
// one scale-set instance standing for the AKS node), the node agent with a
// local registry of pods (loopback addresses 127.0.0.x standing for pod
// IPs), and the secrets server running as the `vault` pod. The `demo`
// command then plays the tutorial's steps against it; `dev` leaves it
// running.
package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
	"github.com/keyward/keyward/internal/builtin"
	"github.com/keyward/keyward/internal/cloud"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
)

// The tutorial's names. The node's resource group is where AKS puts its
// scale set (MC_<rg>_<cluster>_<region>); the tutorial's
// IDENTITY_RESOURCE_GROUP must be that group for the role's
// bound_resource_groups to match the node.
const (
	Location      = "canadacentral"
	NodeGroup     = "MC_aks-demo-rg_demo-cluster_canadacentral"
	ScaleSet      = "aks-nodepool1-12345678-vmss"
	PodNamespace  = "default"
	DemoPodIP     = "127.0.0.2"
	VaultPodIP    = "127.0.0.3"
	IntruderPodIP = "127.0.0.4"
)

// TutorialConfig is the tutorial's server configuration; the demo runs it
// with the listen address and data path changed (see ServerConfig).
const TutorialConfig = `ui = true
listener "tcp" {
  tls_disable = 1
  address = "[::]:8200"
  cluster_address = "[::]:8201"
}
storage "file" {
  path = "/vault/data"
}
`

// Options configures Start.
type Options struct {
	// Dir holds all state; "" means a new temporary directory removed by
	// Close.
	Dir string
	// ServerAddr is the server's listen address; "" means 127.0.0.1:0.
	ServerAddr string
	// Logger for the components; nil discards.
	Logger *slog.Logger
}

// Platform is the running system.
type Platform struct {
	Dir        string
	Cloud      *cloud.Server
	CloudDir   string
	IMDSURL    string // keyward cloud's IMDS of the node (the agent's upstream)
	AgentURL   string // the node agent (what 169.254.169.254 is on a node)
	ServerURL  string // the secrets server (VAULT_ADDR)
	Registry   *agent.LocalRegistry
	InstanceID string // the node: the scale-set instance's resource ID

	server  *server.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errMu   sync.Mutex
	errs    []error // guarded by errMu
	tempDir bool
}

// Start starts keyward cloud, the node agent and the secrets server.
func Start(ctx context.Context, opts Options) (_ *Platform, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &Platform{Dir: opts.Dir}
	if p.Dir == "" {
		if p.Dir, err = os.MkdirTemp("", "keyward-demo-"); err != nil {
			return nil, err
		}
		p.tempDir = true
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	defer func() {
		if err != nil {
			p.Close(ctx)
		}
	}()

	// keyward cloud, with the node: one scale set with one instance.
	p.CloudDir = filepath.Join(p.Dir, "cloud")
	p.Cloud, err = cloud.New(ctx, cloud.Config{
		DataDir: p.CloudDir,
		Logger:  logger.With("component", "cloud"),
		Bootstrap: &cloud.Bootstrap{ResourceGroups: []cloud.BootstrapGroup{
			{Name: "aks-demo-rg", Location: Location},
			{Name: NodeGroup, Location: Location, ScaleSets: []cloud.BootstrapCompute{{Name: ScaleSet, Instances: 1}}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("starting keyward cloud: %w", err)
	}
	p.InstanceID = fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/virtualMachineScaleSets/%s/virtualMachines/0",
		p.Cloud.SubscriptionID(), NodeGroup, ScaleSet)
	p.goRun("keyward cloud", func() error { return p.Cloud.Run(runCtx) })
	var lc net.ListenConfig
	imdsLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.IMDSURL = "http://" + imdsLn.Addr().String()
	p.goRun("node IMDS", func() error { return p.Cloud.ServeIMDS(runCtx, imdsLn, p.InstanceID) })

	// The node agent with the pods of the tutorial.
	p.Registry, err = agent.NewLocalRegistry(agent.LocalRegistryFile{Pods: []agent.LocalPod{
		{Namespace: PodNamespace, Name: "demo", IP: DemoPodIP, Labels: map[string]string{"app": "ubuntu", aadv1.CRDLabelKey: "demo"}},
		{Namespace: PodNamespace, Name: "vault-0", IP: VaultPodIP, Labels: map[string]string{"app.kubernetes.io/name": "vault", aadv1.CRDLabelKey: "vault"}},
		{Namespace: PodNamespace, Name: "intruder", IP: IntruderPodIP, Labels: map[string]string{"app": "ubuntu"}},
	}})
	if err != nil {
		return nil, err
	}
	ag, err := agent.New(agent.Config{
		ListenAddr: "127.0.0.1:0",
		Upstream:   p.IMDSURL,
		Pods:       p.Registry,
		Identities: p.Registry,
		Secrets:    p.Registry,
		Logger:     logger.With("component", "agent"),
	})
	if err != nil {
		return nil, err
	}
	p.goRun("node agent", func() error { return ag.Run(runCtx) })
	select {
	case <-ag.Ready():
	case <-time.After(10 * time.Second):
		return nil, errors.New("the node agent did not start")
	}
	p.AgentURL = "http://" + ag.Addr().String()

	// The secrets server: the tutorial's configuration, running as the
	// vault pod (its outbound connections come from the pod's address, so
	// the agent gives it the vault identity for its ARM checks).
	cfg, err := ServerConfig(filepath.Join(p.Dir, "vault-data"), opts.ServerAddr)
	if err != nil {
		return nil, err
	}
	client, err := PodHTTPClient(VaultPodIP, p.Cloud.CACertPEM())
	if err != nil {
		return nil, err
	}
	p.server, err = server.Start(ctx, server.Options{
		Config: cfg,
		Logger: logger.With("component", "server"),
		Dependencies: builtin.Dependencies{
			AzureHTTPClient: client,
			IMDSEndpoint:    p.AgentURL,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the secrets server: %w", err)
	}
	p.ServerURL = "http://" + p.server.Addrs()[0].String()
	return p, nil
}

// ServerConfig is TutorialConfig with the data path and listen address
// replaced (addr "" means 127.0.0.1:0).
func ServerConfig(dataDir, addr string) (*config.Config, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	src := strings.Replace(TutorialConfig, `"[::]:8200"`, fmt.Sprintf("%q", addr), 1)
	src = strings.Replace(src, `"/vault/data"`, fmt.Sprintf("%q", dataDir), 1)
	return config.Parse("tutorial.hcl", []byte(src))
}

// PodHTTPClient returns an HTTP client whose connections come from ip (a
// pod's address) and that trusts caPEM in addition to the system roots.
func PodHTTPClient(ip string, caPEM []byte) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)},
		Timeout:   10 * time.Second,
	}).DialContext
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("the CA certificate is not valid PEM")
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

func (p *Platform) goRun(name string, fn func() error) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
			p.errMu.Lock()
			p.errs = append(p.errs, fmt.Errorf("%s: %w", name, err))
			p.errMu.Unlock()
		}
	}()
}

// Err returns the errors of components that stopped on their own.
func (p *Platform) Err() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return errors.Join(p.errs...)
}

// Close stops everything and removes a temporary directory.
func (p *Platform) Close(ctx context.Context) {
	if p.server != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = p.server.Shutdown(sctx)
		cancel()
	}
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
	if p.Cloud != nil {
		_ = p.Cloud.Close()
	}
	if p.tempDir {
		_ = os.RemoveAll(p.Dir)
	}
}
