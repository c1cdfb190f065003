package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

func binding(ns, name, identity, selector string) aadv1.AzureIdentityBinding {
	return aadv1.AzureIdentityBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       aadv1.AzureIdentityBindingSpec{AzureIdentity: identity, Selector: selector},
	}
}

// localSetup is a node with two identities and a local registry holding
// pod "app" (bound to id "app") in namespace "demo".
type localSetup struct {
	node  *node
	reg   *agent.LocalRegistry
	base  string
	app   cloudtest.Identity
	spare cloudtest.Identity
	appIP string
}

func newLocalSetup(t *testing.T, mutate func(*agent.Config)) *localSetup {
	t.Helper()
	n := newNode(t, nil)
	s := &localSetup{node: n, app: n.identity(t, "app", true), spare: n.identity(t, "spare", true), appIP: nextIP()}
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{
		Pods:       []agent.LocalPod{{Namespace: "demo", Name: "app", IP: s.appIP, Labels: map[string]string{aadv1.CRDLabelKey: "app"}}},
		Identities: []aadv1.AzureIdentity{*azureIdentity("demo", "app", s.app), *azureIdentity("demo", "spare", s.spare)},
		Bindings:   []aadv1.AzureIdentityBinding{binding("demo", "app", "app", "app")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.reg = reg
	cfg := agent.Config{Upstream: n.imds.URL, Pods: reg, Identities: reg, Secrets: reg, HTTPClient: n.cloud.HTTPClient()}
	if mutate != nil {
		mutate(&cfg)
	}
	s.base, _ = startAgent(t, cfg)
	return s
}

// TestLocalRegistry: pods added and removed at runtime get and lose their
// identities; nothing crosses namespaces.
func TestLocalRegistry(t *testing.T) {
	t.Parallel()
	s := newLocalSetup(t, nil)
	if diff := cmp.Diff(identityClaims(s.app), tokenClaims(t, get(t, s.appIP, s.base, tokenPath(""), nil))); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if r := get(t, s.appIP, s.base, tokenPath("client_id="+s.spare.ClientID), nil); r.status != http.StatusForbidden {
		t.Fatalf("identity not bound: want 403, got %s", r)
	}

	// A pod added at runtime (as the demo does).
	worker := nextIP()
	if r := get(t, worker, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("unknown pod: want 403, got %s", r)
	}
	if err := s.reg.AddPod(agent.LocalPod{Namespace: "demo", Name: "worker", IP: worker, Labels: map[string]string{aadv1.CRDLabelKey: "spare"}}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, worker, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("pod without binding: want 403, got %s", r)
	}
	if err := s.reg.AddBinding(binding("demo", "spare", "spare", "spare")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(identityClaims(s.spare), tokenClaims(t, get(t, worker, s.base, tokenPath(""), nil))); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// Same label, other namespace: the binding does not apply.
	intruder := nextIP()
	if err := s.reg.AddPod(agent.LocalPod{Namespace: "other", Name: "intruder", IP: intruder, Labels: map[string]string{aadv1.CRDLabelKey: "app"}}); err != nil {
		t.Fatal(err)
	}
	if r := get(t, intruder, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("pod of another namespace: want 403, got %s", r)
	}

	s.reg.RemovePod("demo", "worker")
	if r := get(t, worker, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("removed pod: want 403, got %s", r)
	}
	s.reg.RemoveBinding("demo", "app")
	if r := get(t, s.appIP, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("removed binding: want 403, got %s", r)
	}
}

// TestLocalRegistryAddPodErrors: every bad pod is refused.
func TestLocalRegistryAddPodErrors(t *testing.T) {
	t.Parallel()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{Pods: []agent.LocalPod{{Namespace: "a", Name: "taken", IP: "127.0.0.9"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pod  agent.LocalPod
	}{
		{"no namespace", agent.LocalPod{Name: "p", IP: "127.0.0.10"}},
		{"no name", agent.LocalPod{Namespace: "a", IP: "127.0.0.10"}},
		{"no address", agent.LocalPod{Namespace: "a", Name: "p"}},
		{"bad address", agent.LocalPod{Namespace: "a", Name: "p", IP: "127.0.0.300"}},
		{"address of another pod", agent.LocalPod{Namespace: "a", Name: "p", IP: "127.0.0.9"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if addErr := reg.AddPod(tc.pod); !errors.Is(addErr, agent.ErrInvalidLocalObject) {
				t.Fatalf("want ErrInvalidLocalObject, got %v", addErr)
			}
		})
	}
	// Re-adding the same pod updates it.
	if err = reg.AddPod(agent.LocalPod{Namespace: "a", Name: "taken", IP: "127.0.0.9", Labels: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	p, err := reg.PodByIP(t.Context(), "127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"x": "y"}, p.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if _, err := reg.PodByIP(t.Context(), "127.0.0.11"); !errors.Is(err, agent.ErrUnknownCaller) {
		t.Errorf("unknown address: want ErrUnknownCaller, got %v", err)
	}
	if _, err := reg.Secret(t.Context(), "a", "nope"); !errors.Is(err, agent.ErrSecretNotFound) {
		t.Errorf("missing secret: want ErrSecretNotFound, got %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"identity", reg.AddIdentity(aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Name: "x"}})},
		{"binding", reg.AddBinding(aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "x"}})},
		{"exception", reg.AddException(aadv1.AzurePodIdentityException{})},
	} {
		if !errors.Is(tc.err, agent.ErrInvalidLocalObject) {
			t.Errorf("%s without namespace/name: want ErrInvalidLocalObject, got %v", tc.name, tc.err)
		}
	}
}

// TestLoadLocalRegistry reads the file form and rejects bad files.
func TestLoadLocalRegistry(t *testing.T) {
	t.Parallel()
	good := `
pods:
- namespace: demo
  name: app
  ip: 127.0.0.5
  labels: {aadpodidbinding: app, tier: web}
identities:
- metadata: {name: app, namespace: demo, annotations: {aadpodidentity.k8s.io/Behavior: namespaced}}
  spec: {type: 0, resourceID: /subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app, clientID: 00000000-0000-0000-0000-000000000001}
- metadata: {name: web, namespace: demo}
  spec: {type: 0, clientID: 00000000-0000-0000-0000-000000000002}
bindings:
- metadata: {name: app, namespace: demo}
  spec: {azureIdentity: app, selector: app}
- metadata: {name: web, namespace: demo}
  spec: {azureIdentity: web, labelSelector: {matchLabels: {tier: web}}}
exceptions:
- metadata: {name: ex, namespace: demo}
  spec: {podLabels: {role: system}}
`
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.yaml")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := agent.LoadLocalRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	pod, err := reg.PodByIP(ctx, "127.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := reg.IdentitiesFor(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name, ClientID, State string
		Namespaced            bool
	}
	var got []view
	for _, id := range ids {
		got = append(got, view{id.Name, id.Spec.ClientID, id.State, id.Namespaced})
	}
	want := []view{
		{"app", "00000000-0000-0000-0000-000000000001", aadv1.AssignedIDAssigned, true},
		{"web", "00000000-0000-0000-0000-000000000002", aadv1.AssignedIDAssigned, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identities (-want +got):\n%s", diff)
	}
	if ex, err := reg.Excepted(ctx, pod); err != nil || ex {
		t.Errorf("Excepted = %v, %v; want false", ex, err)
	}

	bad := []struct {
		name, body string
		invalid    bool
	}{
		{"unknown field", "pods:\n- namespace: a\n  name: b\n  ip: 127.0.0.1\n  color: red\n", false},
		{"not yaml", "pods: [", false},
		{"pod without namespace", "pods:\n- name: b\n  ip: 127.0.0.1\n", true},
		{"bad ip", "pods:\n- namespace: a\n  name: b\n  ip: localhost\n", true},
		{"duplicate ip", "pods:\n- {namespace: a, name: b, ip: 127.0.0.1}\n- {namespace: a, name: c, ip: 127.0.0.1}\n", true},
		{"identity without name", "identities:\n- metadata: {namespace: a}\n", true},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := agent.LoadLocalRegistry(p)
			if err == nil {
				t.Fatal("bad file accepted")
			}
			if tc.invalid && !errors.Is(err, agent.ErrInvalidLocalObject) {
				t.Errorf("want ErrInvalidLocalObject, got %v", err)
			}
		})
	}
	if _, err := agent.LoadLocalRegistry(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: want ErrNotExist, got %v", err)
	}
}

// TestLocalRegistryConcurrent exercises the registry under -race.
func TestLocalRegistryConcurrent(t *testing.T) {
	t.Parallel()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{
		Identities: []aadv1.AzureIdentity{{ObjectMeta: metav1.ObjectMeta{Namespace: "n", Name: "id"}}},
		Bindings:   []aadv1.AzureIdentityBinding{binding("n", "b", "id", "sel")},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ip := fmt.Sprintf("127.88.%d.%d", w, i%50+1)
				_ = reg.AddPod(agent.LocalPod{Namespace: "n", Name: fmt.Sprintf("p%d-%d", w, i%50), IP: ip, Labels: map[string]string{aadv1.CRDLabelKey: "sel"}})
				if p, err := reg.PodByIP(ctx, ip); err == nil {
					if _, err := reg.IdentitiesFor(ctx, p); err != nil {
						t.Error(err)
					}
					p.Labels["mutated"] = "yes" // must not affect the registry
				}
				reg.RemovePod("n", fmt.Sprintf("p%d-%d", w, (i+25)%50))
			}
		}()
	}
	wg.Wait()
}

// TestLocalExceptionAndServicePrincipal: exceptions reach the node's
// identities; a type 1 identity uses the secret set in memory.
func TestLocalExceptionAndServicePrincipal(t *testing.T) {
	t.Parallel()
	s := newLocalSetup(t, nil)
	sysIP, spIP := nextIP(), nextIP()
	clientID, secret, objectID := s.node.cloud.ServicePrincipal(t, "local-sp")
	for _, err := range []error{
		s.reg.AddPod(agent.LocalPod{Namespace: "kube-system", Name: "sys", IP: sysIP, Labels: map[string]string{"role": "System"}}),
		s.reg.AddException(aadv1.AzurePodIdentityException{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "sys"},
			Spec: aadv1.AzurePodIdentityExceptionSpec{PodLabels: map[string]string{"role": "system"}}}),
		s.reg.AddPod(agent.LocalPod{Namespace: "demo", Name: "sp", IP: spIP, Labels: map[string]string{aadv1.CRDLabelKey: "sp"}}),
		s.reg.AddIdentity(aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "sp"}, Spec: aadv1.AzureIdentitySpec{
			Type: aadv1.ServicePrincipal, ClientID: clientID, TenantID: s.node.cloud.TenantID, ADEndpoint: s.node.cloud.AuthorityHost,
			ClientPassword: corev1.SecretReference{Name: "sp"}}}),
		s.reg.AddBinding(binding("demo", "sp", "sp", "sp")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(identityClaims(s.spare), tokenClaims(t, get(t, sysIP, s.base, tokenPath("client_id="+s.spare.ClientID), nil))); diff != "" {
		t.Errorf("exception claims (-want +got):\n%s", diff)
	}
	if r := get(t, spIP, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("service principal without secret: want 403, got %s", r)
	}
	s.reg.SetSecret("demo", "sp", map[string][]byte{"clientsecret": []byte(secret)})
	want := claims{OID: objectID, AppID: clientID, Aud: "https://vault.azure.net", TID: s.node.cloud.TenantID}
	if diff := cmp.Diff(want, tokenClaims(t, get(t, spIP, s.base, tokenPath(""), nil))); diff != "" {
		t.Errorf("service principal claims (-want +got):\n%s", diff)
	}
}

// TestRequestValidation covers every refused request shape.
func TestRequestValidation(t *testing.T) {
	t.Parallel()
	s := newLocalSetup(t, nil)
	// A second identity bound to the app pod makes selection mandatory.
	multiIP := nextIP()
	for _, err := range []error{
		s.reg.AddPod(agent.LocalPod{Namespace: "demo", Name: "multi", IP: multiIP, Labels: map[string]string{aadv1.CRDLabelKey: "multi", "tier": "x"}}),
		s.reg.AddBinding(binding("demo", "multi-app", "app", "multi")),
		s.reg.AddBinding(aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "multi-spare"},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: "spare", LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "x"}}}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	metadataMissing := `{"error":"invalid_request","error_description":"Required metadata header not specified"}` + "\n"
	tests := []struct {
		name, method, ip, path string
		header                 map[string]string
		want                   int
		body                   string
	}{
		{"no Metadata header", "GET", s.appIP, tokenPath(""), map[string]string{"Metadata": ""}, 400, metadataMissing},
		{"Metadata: True", "GET", s.appIP, tokenPath(""), map[string]string{"Metadata": "True"}, 400, metadataMissing},
		{"no resource", "GET", s.appIP, "/metadata/identity/oauth2/token?api-version=2018-02-01", nil, 400, ""},
		{"POST", "POST", s.appIP, tokenPath(""), nil, 405, ""},
		{"object_id selection", "GET", s.appIP, tokenPath("object_id=" + s.app.PrincipalID), nil, 400, ""},
		{"several identities, none selected", "GET", multiIP, tokenPath(""), nil, 400, ""},
		{"unknown route", "GET", s.appIP, "/latest/meta-data/iam/security-credentials/", nil, 404, ""},
		{"root", "GET", s.appIP, "/", nil, 400, ""},
		{"non-ASCII path", "GET", s.appIP, "/metadata/%C4%B0nstance", nil, 400, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tc.method, s.base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Metadata", "true")
			for k, v := range tc.header {
				if v == "" {
					req.Header.Del(k)
				} else {
					req.Header.Set(k, v)
				}
			}
			r := do(t, podClient(tc.ip), req)
			if r.status != tc.want {
				t.Fatalf("want %d, got %s", tc.want, r)
			}
			if tc.body != "" && string(r.body) != tc.body {
				t.Errorf("body %q, want %q", r.body, tc.body)
			}
		})
	}
	// Selecting resolves the ambiguity, and only among the pod's own.
	for _, id := range []cloudtest.Identity{s.app, s.spare} {
		if diff := cmp.Diff(identityClaims(id), tokenClaims(t, get(t, multiIP, s.base, tokenPath("client_id="+id.ClientID), nil))); diff != "" {
			t.Errorf("claims (-want +got):\n%s", diff)
		}
	}
	// versions is proxied.
	if r := get(t, s.appIP, s.base, "/metadata/versions", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "2018-02-01") {
		t.Errorf("versions: %s", r)
	}
}

// TestTokenCache: a warm cache answers without the upstream; tokens are
// refetched once they are within five minutes of expiry on the agent's
// clock.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newLocalSetup(t, func(c *agent.Config) { c.Clock = clock })
	first := get(t, s.appIP, s.base, tokenPath(""), nil)
	tokenClaims(t, first)
	for range 5 {
		if r := get(t, s.appIP, s.base, tokenPath(""), nil); string(r.body) != string(first.body) {
			t.Fatalf("cached token changed: %s", r)
		}
	}
	if got := s.node.tokenRequests(); got != 1 {
		t.Fatalf("upstream token requests with a warm cache = %d, want 1", got)
	}
	// Another resource is another cache entry.
	get(t, s.appIP, s.base, "/metadata/identity/oauth2/token?resource=https%3A%2F%2Fmanagement.azure.com%2F", nil)
	if got := s.node.tokenRequests(); got != 2 {
		t.Fatalf("upstream token requests = %d, want 2", got)
	}
	// keyward cloud's IMDS tokens live 24h05m; at +24h01m the entry is
	// within its five-minute margin.
	mu.Lock()
	now = now.Add(23 * time.Hour)
	mu.Unlock()
	get(t, s.appIP, s.base, tokenPath(""), nil)
	if got := s.node.tokenRequests(); got != 2 {
		t.Fatalf("upstream token requests an hour before expiry = %d, want 2", got)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Minute)
	mu.Unlock()
	get(t, s.appIP, s.base, tokenPath(""), nil)
	if got := s.node.tokenRequests(); got != 3 {
		t.Fatalf("upstream token requests after expiry margin = %d, want 3", got)
	}
}

// TestProbeAndMetrics: /healthz says Active once serving, /metrics counts
// requests by route and status.
func TestProbeAndMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	probe := ln.Addr().String()
	_ = ln.Close()
	s := newLocalSetup(t, func(c *agent.Config) { c.ProbeAddr, c.Registerer, c.Gatherer = probe, reg, reg })
	get(t, s.appIP, s.base, tokenPath(""), nil)
	get(t, s.appIP, s.base, `/metadata/identity\oauth2\token`, nil)
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "Active"},
		{"/metrics", `keyward_agent_requests_total{code="200",route="token"} 1`},
		{"/metrics", `keyward_agent_requests_total{code="400",route="invalid"} 1`},
	} {
		resp, err := http.Get("http://" + probe + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), tc.want) {
			t.Errorf("%s lacks %q:\n%s", tc.path, tc.want, body)
		}
	}
}

// blockedCache never syncs.
type blockedCache struct{}

func (blockedCache) Start(ctx context.Context) error { <-ctx.Done(); return nil }
func (blockedCache) WaitForCacheSync(ctx context.Context) bool {
	<-ctx.Done()
	return false
}

// TestRunWaitsForSync: the agent does not serve before its sources have
// synced, reports Not Active meanwhile, and Run returns when ctx ends.
func TestRunWaitsForSync(t *testing.T) {
	t.Parallel()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	probe := ln.Addr().String()
	_ = ln.Close()
	a, err := agent.New(agent.Config{ListenAddr: "127.0.0.1:0", ProbeAddr: probe, Upstream: "http://127.0.0.1:1", Pods: reg, Identities: reg, Cache: blockedCache{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var resp *http.Response
	waitFor(t, func() bool {
		var err error
		resp, err = http.Get("http://" + probe + "/healthz")
		return err == nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "Not Active" {
		t.Errorf("healthz before sync: %d %q", resp.StatusCode, body)
	}
	if a.Addr() != nil {
		t.Errorf("listening before sync on %v", a.Addr())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestNewValidation: missing required settings are all reported.
func TestNewValidation(t *testing.T) {
	t.Parallel()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{})
	if err != nil {
		t.Fatal(err)
	}
	full := agent.Config{ListenAddr: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", Pods: reg, Identities: reg}
	if _, err := agent.New(full); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mutate := range map[string]func(*agent.Config){
		"no listen address": func(c *agent.Config) { c.ListenAddr = "" },
		"no upstream":       func(c *agent.Config) { c.Upstream = "" },
		"no pods":           func(c *agent.Config) { c.Pods = nil },
		"no identities":     func(c *agent.Config) { c.Identities = nil },
	} {
		cfg := full
		mutate(&cfg)
		if _, err := agent.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := agent.NewKube(t.Context(), agent.KubeConfig{Mode: "weird"}); err == nil {
		t.Error("NewKube accepted an empty config")
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSecurityLogs: refusals are logged with the caller's address; tokens
// and secrets never are.
func TestSecurityLogs(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newLocalSetup(t, func(c *agent.Config) { c.Logger = logger })
	ok := get(t, s.appIP, s.base, tokenPath(""), nil)
	var tok agent.Token
	if err := json.Unmarshal(ok.body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: %s", ok)
	}
	stranger := nextIP()
	if r := get(t, stranger, s.base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("stranger: %s", r)
	}
	if r := get(t, s.appIP, s.base, tokenPath("client_id="+s.spare.ClientID), nil); r.status != http.StatusForbidden {
		t.Fatalf("unbound identity: %s", r)
	}
	type entry struct {
		Msg    string `json:"msg"`
		Remote string `json:"remote"`
		Pod    string `json:"pod"`
		Status int    `json:"status"`
	}
	var refused []entry
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if strings.Contains(e.Msg, "refused") {
			e.Remote = strings.Split(e.Remote, ":")[0]
			refused = append(refused, e)
		}
	}
	want := []entry{
		{Msg: "request refused", Remote: stranger, Status: http.StatusForbidden},
		{Msg: "token request refused", Remote: s.appIP, Pod: "demo/app", Status: http.StatusForbidden},
	}
	if diff := cmp.Diff(want, refused); diff != "" {
		t.Errorf("refusal logs (-want +got):\n%s", diff)
	}
	if strings.Contains(logs.String(), tok.AccessToken) || strings.Contains(logs.String(), strings.Split(tok.AccessToken, ".")[2]) {
		t.Error("the access token was logged")
	}
}
