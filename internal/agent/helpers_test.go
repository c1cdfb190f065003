package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
	"github.com/keyward/keyward/internal/cloud/cloudtest"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// nextIP hands out distinct loopback addresses (127.77.x.y) so that
// parallel tests' pods never share one.
var ipCounter atomic.Int32

func nextIP() string {
	n := ipCounter.Add(1)
	return fmt.Sprintf("127.77.%d.%d", n/250, n%250+2)
}

// podClient is an HTTP client whose connections come from ip, as a pod's
// would: the agent sees ip as the source address.
func podClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, Proxy: nil, DisableKeepAlives: true},
	}
}

// upstream is the node's IMDS (keyward cloud's) behind a recorder of every
// request that reaches it.
type upstream struct {
	URL string
	mu  sync.Mutex
	log []*url.URL // guarded by mu
}

func newUpstream(t testing.TB, imdsURL string) *upstream {
	t.Helper()
	target, err := url.Parse(imdsURL)
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{}
	// Rewrite (unlike Director) adds no X-Forwarded-For, which IMDS refuses.
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		cp := *r.URL
		u.log = append(u.log, &cp)
		u.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.URL = "http://" + ln.Addr().String()
	return u
}

// requests returns the URLs upstream has received so far.
func (u *upstream) requests() []*url.URL {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*url.URL(nil), u.log...)
}

// startAgent runs an agent on a free loopback port for the test and
// returns its base URL.
func startAgent(t testing.TB, cfg agent.Config) (string, *agent.Agent) {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent.Run returned early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready after 60s")
	}
	return "http://" + a.Addr().String(), a
}

// reply is an agent answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(string(r.body)))
}

// get sends GET base+path from the pod address ip with Metadata: true
// plus extra headers.
func get(t *testing.T, ip, base, path string, extra map[string]string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Metadata", "true")
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	return do(t, podClient(ip), req)
}

func do(t *testing.T, c *http.Client, req *http.Request) reply {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// tokenPath is the IMDS token request for resource (plus extra query).
func tokenPath(extra string) string {
	p := "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"
	if extra != "" {
		p += "&" + extra
	}
	return p
}

// claims are the token claims the tests check.
type claims struct {
	OID      string `json:"oid"`
	AppID    string `json:"appid"`
	XMSMIRID string `json:"xms_mirid"`
	Aud      string `json:"aud"`
	TID      string `json:"tid"`
}

// tokenClaims decodes the access token of a successful reply (without
// verifying it: the signature is keyward cloud's business).
func tokenClaims(t *testing.T, r reply) claims {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200, got %s", r)
	}
	var tok agent.Token
	if err := json.Unmarshal(r.body, &tok); err != nil {
		t.Fatalf("token body: %v", err)
	}
	return jwtClaims(t, tok.AccessToken)
}

func jwtClaims(t *testing.T, jwt string) claims {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var c claims
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JWT claims: %v", err)
	}
	return c
}

// identityClaims is what a token of identity id must carry.
func identityClaims(id cloudtest.Identity) claims {
	return claims{OID: id.PrincipalID, AppID: id.ClientID, XMSMIRID: xmsID(id.ID), Aud: "https://vault.azure.net", TID: id.TenantID}
}

// xmsID lower-cases "resourceGroups" as Entra does in xms_mirid.
func xmsID(id string) string { return strings.Replace(id, "/resourceGroups/", "/resourcegroups/", 1) }

// node is one simulated node: a scale-set instance in keyward cloud with
// its IMDS (behind a recorder) and a Kubernetes node.
type node struct {
	cloud    *cloudtest.Cloud
	scaleSet cloudtest.ScaleSet
	imds     *upstream
	name     string
	rg       string
}

func newNode(t testing.TB, env *k8stest.Env) *node {
	t.Helper()
	c := cloudtest.Start(t)
	rg := "rg-agent"
	c.CreateResourceGroup(t, rg, "westeurope")
	ss := c.CreateScaleSet(t, rg, "aks-nodepool1-vmss", 1)
	n := &node{cloud: c, scaleSet: ss, rg: rg, imds: newUpstream(t, c.StartIMDS(t, ss.Instances[0].ID))}
	if env != nil {
		n.name = k8stest.UniqueName("node")
		env.CreateNode(n.name, "azure://"+ss.Instances[0].ID)
	}
	return n
}

// identity creates a user-assigned identity and, when assign is true,
// assigns it to the node's scale set.
func (n *node) identity(t testing.TB, name string, assign bool) cloudtest.Identity {
	t.Helper()
	id := n.cloud.CreateIdentity(t, n.rg, name)
	if assign {
		n.cloud.AssignIdentity(t, n.scaleSet.ID, id.ID)
	}
	return id
}

// tokenRequests counts upstream token requests.
func (n *node) tokenRequests() int {
	c := 0
	for _, u := range n.imds.requests() {
		if strings.EqualFold(u.Path, "/metadata/identity/oauth2/token") {
			c++
		}
	}
	return c
}

// kubeAgent starts an agent on Kubernetes sources for n.
func kubeAgent(t testing.TB, env *k8stest.Env, n *node, mode agent.Mode, mutate func(*agent.Config)) string {
	t.Helper()
	kube, err := agent.NewKube(t.Context(), agent.KubeConfig{RESTConfig: env.RESTConfig, NodeName: n.name, Mode: mode})
	if err != nil {
		t.Fatalf("NewKube: %v", err)
	}
	cfg := agent.Config{
		Upstream: n.imds.URL, Pods: kube, Identities: kube, Secrets: kube, Cache: kube,
		HTTPClient: n.cloud.HTTPClient(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	base, _ := startAgent(t, cfg)
	return base
}

// azureIdentity is the AzureIdentity object of a managed identity.
func azureIdentity(ns, name string, id cloudtest.Identity) *aadv1.AzureIdentity {
	return &aadv1.AzureIdentity{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: id.ID, ClientID: id.ClientID},
	}
}

// assign writes an AzureAssignedIdentity for pod ns/pod on n, as the
// controller would, in state (Created or Assigned), and returns it.
func assign(t testing.TB, env *k8stest.Env, n *node, podNS, pod string, id *aadv1.AzureIdentity, state string) *aadv1.AzureAssignedIdentity {
	t.Helper()
	ref := id.DeepCopy()
	ref.APIVersion, ref.Kind = aadv1.SchemeGroupVersion.String(), "AzureIdentity"
	aai := &aadv1.AzureAssignedIdentity{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: id.Namespace, Name: pod + "-" + id.Namespace + "-" + id.Name,
			Labels: map[string]string{aadv1.NodeNameLabel: n.name},
		},
		Spec: aadv1.AzureAssignedIdentitySpec{
			AzureIdentityRef: ref, Pod: pod, PodNamespace: podNS, NodeName: n.name,
		},
	}
	aai.Status.Status = state
	if err := env.Client.Create(t.Context(), aai); err != nil {
		t.Fatalf("create assigned identity: %v", err)
	}
	if aai.Status.Status != state {
		// The CRD has a status subresource: status is written separately.
		setState(t, env, aai, state)
	}
	return aai
}

// setState writes the assignment's status.status (through the status
// subresource when the CRD has one, else with the object).
func setState(t testing.TB, env *k8stest.Env, aai *aadv1.AzureAssignedIdentity, state string) {
	t.Helper()
	ctx := t.Context()
	for attempt := 0; ; attempt++ {
		cur := &aadv1.AzureAssignedIdentity{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(aai), cur); err != nil {
			t.Fatalf("get assigned identity: %v", err)
		}
		cur.Status.Status = state
		err := env.Client.Update(ctx, cur)
		if err == nil && cur.Status.Status != state {
			err = env.Client.Status().Update(ctx, cur)
		}
		if apierrors.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			t.Fatalf("set assigned identity state: %v", err)
		}
		*aai = *cur
		return
	}
}

func create(t testing.TB, env *k8stest.Env, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(t.Context(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
