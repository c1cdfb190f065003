package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward/keyward/internal/agent"
)

// identityAgentCommand returns `keyward identity agent`, the node agent
// (AAD Pod Identity's NMI).
func identityAgentCommand() *Command {
	return &Command{
		Name:     "identity agent",
		Synopsis: "Run the node agent (NMI): IMDS-compatible tokens for the pods of this node",
		Run:      runIdentityAgent,
	}
}

// agentFlags are the parsed flags of `identity agent`.
type agentFlags struct {
	node, listen, probe, metadataIP, metadataPort, upstream, interceptIface string
	mode, kubeconfig, localRegistry, caFile, logLevel                       string
	forceNamespaced, allowHostNetwork, intercept                            bool
	pendingWait, retryAfter, iptRefresh                                     time.Duration
}

func parseAgentFlags(env *Env, args []string) (*agentFlags, error) {
	f := &agentFlags{}
	fs := flag.NewFlagSet("identity agent", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.node, "node", env.Getenv("NODE_NAME"), "Name of this node (default $NODE_NAME); only its pods are served.")
	fs.StringVar(&f.listen, "listen-address", "127.0.0.1:2579", "Address of the IMDS endpoint (the DNAT target with --intercept).")
	fs.StringVar(&f.probe, "probe-address", "", "Address serving /healthz and /metrics (\"\" = disabled).")
	fs.StringVar(&f.metadataIP, "metadata-ip", "169.254.169.254", "Metadata address intercepted with --intercept.")
	fs.StringVar(&f.metadataPort, "metadata-port", "80", "Metadata port intercepted with --intercept.")
	fs.StringVar(&f.upstream, "upstream", "http://169.254.169.254", "Base URL of the node's real IMDS (keyward cloud's IMDS listener off Azure).")
	fs.BoolVar(&f.forceNamespaced, "forceNamespaced", strings.EqualFold(env.Getenv("FORCENAMESPACED"), "true"), "Pods may only use identities of their own namespace (default $FORCENAMESPACED).")
	fs.StringVar(&f.mode, "operation-mode", string(agent.ModeStandard), "standard (assignments written by the identity controller) or managed (identities pre-assigned to the node).")
	fs.BoolVar(&f.allowHostNetwork, "allow-host-network", false, "Serve host-network pods (they share the node's address; off by default).")
	fs.StringVar(&f.interceptIface, "intercept-interface", "", "Limit --intercept to traffic entering on this interface (e.g. a pod bridge); default all interfaces.")
	fs.BoolVar(&f.intercept, "intercept", false, "Install iptables DNAT of metadata-ip:metadata-port to the listen address (needs root); default is listener mode.")
	fs.StringVar(&f.kubeconfig, "kubeconfig", env.Getenv("KUBECONFIG"), "Kubeconfig file (default $KUBECONFIG, else in-cluster configuration).")
	fs.StringVar(&f.localRegistry, "local-registry", "", "YAML/JSON file of local pods, identities and bindings to use instead of Kubernetes.")
	fs.StringVar(&f.caFile, "ca-file", env.Getenv("KEYWARD_AZURE_CA_FILE"), "Extra CA certificates (PEM) to trust for token services, e.g. keyward cloud's (default $KEYWARD_AZURE_CA_FILE).")
	fs.DurationVar(&f.iptRefresh, "ipt-update-interval", time.Minute, "How often --intercept re-asserts its iptables rules.")
	fs.DurationVar(&f.pendingWait, "pending-wait", 2*time.Second, "How long a request waits for a pending assignment before answering 503.")
	fs.DurationVar(&f.retryAfter, "retry-after", 5*time.Second, "Retry-After of 503 answers.")
	fs.StringVar(&f.logLevel, "log-level", "info", "Log level: debug, info, warn, error.")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	var errs []error
	switch agent.Mode(f.mode) {
	case agent.ModeStandard, agent.ModeManaged:
	default:
		errs = append(errs, fmt.Errorf("--operation-mode must be standard or managed, got %q", f.mode))
	}
	if f.localRegistry == "" && f.node == "" {
		errs = append(errs, errors.New("--node (or NODE_NAME) is required with Kubernetes"))
	}
	if _, _, err := net.SplitHostPort(f.listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen-address: %w", err))
	}
	if net.ParseIP(f.metadataIP) == nil {
		errs = append(errs, fmt.Errorf("--metadata-ip %q is not an IP address", f.metadataIP))
	}
	if p, err := strconv.Atoi(f.metadataPort); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("--metadata-port %q is not a port", f.metadataPort))
	}
	if !strings.HasPrefix(f.upstream, "http://") && !strings.HasPrefix(f.upstream, "https://") {
		errs = append(errs, fmt.Errorf("--upstream %q must be an http(s) URL", f.upstream))
	}
	return f, errors.Join(errs...)
}

func runIdentityAgent(ctx context.Context, env *Env, args []string) int {
	f, err := parseAgentFlags(env, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", err)
		return 2
	}
	logger := newLogger(env.Stderr, f.logLevel)
	cfg := agent.Config{
		ListenAddr:       f.listen,
		ProbeAddr:        f.probe,
		Upstream:         f.upstream,
		Namespaced:       f.forceNamespaced || agent.Mode(f.mode) == agent.ModeManaged,
		AllowHostNetwork: f.allowHostNetwork,
		PendingWait:      f.pendingWait,
		RetryAfter:       f.retryAfter,
		Logger:           logger,
	}
	client, err := outboundClient(f.caFile, "--ca-file", 30*time.Second, true)
	if err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", err)
		return 1
	}
	cfg.HTTPClient = client
	if f.probe != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if f.localRegistry != "" {
		reg, lerr := agent.LoadLocalRegistry(f.localRegistry)
		if lerr != nil {
			fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", lerr)
			return 1
		}
		cfg.Pods, cfg.Identities, cfg.Secrets = reg, reg, reg
	} else {
		restCfg, kerr := kubeRESTConfig(f.kubeconfig)
		if kerr != nil {
			fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", kerr)
			return 1
		}
		ctrllog.SetLogger(logr.FromSlogHandler(logger.Handler()))
		kube, kerr := agent.NewKube(ctx, agent.KubeConfig{RESTConfig: restCfg, NodeName: f.node, Mode: agent.Mode(f.mode)})
		if kerr != nil {
			fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", kerr)
			return 1
		}
		cfg.Pods, cfg.Identities, cfg.Secrets, cfg.Cache = kube, kube, kube, kube
	}
	if f.intercept {
		// DNAT needs a concrete target: an agent listening on every
		// address is reached on loopback (as upstream does).
		target := f.listen
		if host, port, serr := net.SplitHostPort(f.listen); serr == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
			target = net.JoinHostPort("127.0.0.1", port)
		}
		cfg.Interceptor = &agent.IPTables{MetadataIP: f.metadataIP, MetadataPort: f.metadataPort, Target: target, InInterface: f.interceptIface}
		cfg.InterceptRefresh = f.iptRefresh
	}
	a, err := agent.New(cfg)
	if err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", err)
		return 1
	}
	go func() {
		select {
		case <-a.Ready():
			fmt.Fprintf(env.Stdout, "keyward identity agent: serving IMDS on %s (upstream %s)\n", a.Addr(), f.upstream)
		case <-ctx.Done():
		}
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(env.Stderr, "keyward identity agent: %v\n", err)
		return 1
	}
	return 0
}
