package agent_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
	"github.com/keyward/keyward/internal/k8stest"
)

func startKube(t *testing.T) *k8stest.Env {
	t.Helper()
	env := k8stest.Start(t)
	env.InstallCRDs()
	return env
}

// TestKubeEachPodGetsItsOwnToken: two pods on one node, each assigned its
// own identity; each gets exactly its identity's token, and asking for the
// other's is refused without reaching the upstream IMDS.
func TestKubeEachPodGetsItsOwnToken(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("own")
	idA, idB := n.identity(t, "id-a", true), n.identity(t, "id-b", true)
	azA, azB := azureIdentity(ns, "a", idA), azureIdentity(ns, "b", idB)
	create(t, env, azA, azB)
	ipA, ipB := nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "pod-a", NodeName: n.name, IP: ipA, Labels: map[string]string{aadv1.CRDLabelKey: "a"}})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "pod-b", NodeName: n.name, IP: ipB, Labels: map[string]string{aadv1.CRDLabelKey: "b"}})
	assign(t, env, n, ns, "pod-a", azA, aadv1.AssignedIDAssigned)
	assign(t, env, n, ns, "pod-b", azB, aadv1.AssignedIDAssigned)
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)

	tests := []struct {
		name, ip, query string
		want            claims
	}{
		{"a default", ipA, "", identityClaims(idA)},
		{"a by client_id", ipA, "client_id=" + idA.ClientID, identityClaims(idA)},
		{"a by msi_res_id", ipA, "msi_res_id=" + url.QueryEscape(idA.ID), identityClaims(idA)},
		{"a by mi_res_id", ipA, "mi_res_id=" + url.QueryEscape(idA.ID), identityClaims(idA)},
		{"b default", ipB, "", identityClaims(idB)},
		{"b by client_id upper case", ipB, "client_id=" + strings.ToUpper(idB.ClientID), identityClaims(idB)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tokenClaims(t, get(t, tc.ip, base, tokenPath(tc.query), nil))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}

	before := n.tokenRequests()
	denied := []struct{ name, ip, query string }{
		{"a asks for b by client_id", ipA, "client_id=" + idB.ClientID},
		{"a asks for b by msi_res_id", ipA, "msi_res_id=" + url.QueryEscape(idB.ID)},
		{"b asks for a by mi_res_id", ipB, "mi_res_id=" + url.QueryEscape(idA.ID)},
		{"b asks for a with object_id only", ipB, "object_id=" + idA.PrincipalID},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, tc.ip, base, tokenPath(tc.query), nil)
			if r.status != http.StatusForbidden && r.status != http.StatusBadRequest {
				t.Fatalf("want 403 or 400, got %s", r)
			}
		})
	}
	if got := n.tokenRequests(); got != before {
		t.Errorf("denied requests reached the upstream IMDS: %d token requests", got-before)
	}
}

// TestKubeAzidentity: the official ManagedIdentityCredential, talking to
// the agent from the pod's address, gets the pod's identity's token.
func TestKubeAzidentity(t *testing.T) {
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("sdk")
	id := n.identity(t, "sdk-id", true)
	other := n.identity(t, "sdk-other", true)
	az := azureIdentity(ns, "sdk", id)
	create(t, env, az)
	ip := nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "app", NodeName: n.name, IP: ip, Labels: map[string]string{aadv1.CRDLabelKey: "sdk"}})
	assign(t, env, n, ns, "app", az, aadv1.AssignedIDAssigned)
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)
	// azidentity v1.15 (MSAL v1.10.1) declares AZURE_POD_IDENTITY_AUTHORITY_HOST
	// but always sends IMDS requests to 169.254.169.254; set it as a pod
	// would and let the pod's transport carry the request to the agent.
	t.Setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", base)
	agentHost := strings.TrimPrefix(base, "http://")

	tests := []struct {
		name    string
		id      azidentity.ManagedIDKind
		wantErr bool
	}{
		{"default identity", nil, false},
		{"client id", azidentity.ClientID(id.ClientID), false},
		{"resource id", azidentity.ResourceID(id.ID), false},
		{"another identity of the node", azidentity.ClientID(other.ClientID), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
				ID: tc.id,
				ClientOptions: azcore.ClientOptions{
					Transport: &podTransport{client: podClient(ip), agentHost: agentHost},
					Retry:     policy.RetryOptions{MaxRetries: -1},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
			if tc.wantErr {
				if err == nil {
					t.Fatal("got a token for an identity not bound to the pod")
				}
				return
			}
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if diff := cmp.Diff(identityClaims(id), jwtClaims(t, tok.Token)); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
}

// podTransport sends requests for 169.254.169.254 to the agent from the
// pod's address (what the node's DNAT does for a real pod).
type podTransport struct {
	client    *http.Client
	agentHost string
}

func (p *podTransport) Do(req *http.Request) (*http.Response, error) {
	if h := req.URL.Hostname(); h == "169.254.169.254" {
		req = req.Clone(req.Context())
		req.URL.Host = p.agentHost
		req.Host = p.agentHost
	}
	return p.client.Do(req)
}

// TestKubeAttacks: each way of asking for someone else's identity is
// refused, and none of them reaches the upstream IMDS.
func TestKubeAttacks(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	victimNS, attackerNS := env.NewNamespace("victim"), env.NewNamespace("attacker")
	victimID := n.identity(t, "victim", true)
	az := azureIdentity(victimNS, "victim", victimID)
	nsd := azureIdentity(victimNS, "victim-nsd", victimID)
	nsd.Annotations = map[string]string{aadv1.BehaviorKey: aadv1.BehaviorNamespaced}
	create(t, env, az, nsd)
	victimIP, plainIP, crossIP, crossNsdIP, hostIP := nextIP(), nextIP(), nextIP(), nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: victimNS, Name: "victim", NodeName: n.name, IP: victimIP, Labels: map[string]string{aadv1.CRDLabelKey: "victim"}})
	env.CreatePod(k8stest.Pod{Namespace: attackerNS, Name: "plain", NodeName: n.name, IP: plainIP})
	env.CreatePod(k8stest.Pod{Namespace: attackerNS, Name: "cross", NodeName: n.name, IP: crossIP, Labels: map[string]string{aadv1.CRDLabelKey: "victim"}})
	env.CreatePod(k8stest.Pod{Namespace: attackerNS, Name: "cross-nsd", NodeName: n.name, IP: crossNsdIP, Labels: map[string]string{aadv1.CRDLabelKey: "victim-nsd"}})
	env.CreatePod(k8stest.Pod{Namespace: attackerNS, Name: "hostnet", NodeName: n.name, IP: hostIP, HostNetwork: true, Labels: map[string]string{aadv1.CRDLabelKey: "victim"}})
	assign(t, env, n, victimNS, "victim", az, aadv1.AssignedIDAssigned)
	// The controller (not forced namespaced) would assign the victim's
	// identity to a pod of another namespace carrying the label, and to
	// the host-network pod: the agent must still refuse where required.
	assign(t, env, n, attackerNS, "cross", az, aadv1.AssignedIDAssigned)
	assign(t, env, n, attackerNS, "cross-nsd", nsd, aadv1.AssignedIDAssigned)
	assign(t, env, n, attackerNS, "hostnet", az, aadv1.AssignedIDAssigned)
	open := kubeAgent(t, env, n, agent.ModeStandard, nil)
	namespaced := kubeAgent(t, env, n, agent.ModeStandard, func(c *agent.Config) { c.Namespaced = true })
	hostAllowed := kubeAgent(t, env, n, agent.ModeStandard, func(c *agent.Config) { c.AllowHostNetwork = true })
	victim := map[string]string{"podname": "victim", "podns": victimNS}

	// Controls: the same requests that must be refused below succeed when
	// the rule under test does not apply, so the refusals are meaningful.
	controls := []struct{ name, ip, base string }{
		{"victim itself", victimIP, open},
		{"victim itself, namespaced agent", victimIP, namespaced},
		{"cross-namespace label, agent not namespaced", crossIP, open},
		{"host-network pod, allowed", hostIP, hostAllowed},
	}
	for _, tc := range controls {
		t.Run("control/"+tc.name, func(t *testing.T) {
			if diff := cmp.Diff(identityClaims(victimID), tokenClaims(t, get(t, tc.ip, tc.base, tokenPath(""), nil))); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}

	before := n.tokenRequests()
	attacks := []struct {
		name, ip, base, path string
		headers              map[string]string
		want                 int
	}{
		{"unlabelled pod", plainIP, open, tokenPath(""), nil, http.StatusForbidden},
		{"unlabelled pod names the identity", plainIP, open, tokenPath("client_id=" + victimID.ClientID), nil, http.StatusForbidden},
		{"unlabelled pod claims to be the victim (podname/podns)", plainIP, open, tokenPath(""), victim, http.StatusForbidden},
		{"unlabelled pod sends X-Forwarded-For of the victim", plainIP, open, tokenPath(""), map[string]string{"X-Forwarded-For": victimIP}, http.StatusBadRequest},
		{"victim's request with X-Forwarded-For", victimIP, open, tokenPath(""), map[string]string{"X-Forwarded-For": plainIP}, http.StatusBadRequest},
		{"label of another namespace, namespaced agent", crossIP, namespaced, tokenPath(""), nil, http.StatusForbidden},
		{"label of another namespace, namespaced agent, by client_id", crossIP, namespaced, tokenPath("client_id=" + victimID.ClientID), nil, http.StatusForbidden},
		{"label of a namespaced identity of another namespace", crossNsdIP, open, tokenPath(""), nil, http.StatusForbidden},
		{"host-network pod", hostIP, open, tokenPath(""), nil, http.StatusForbidden},
		{"host-network pod claims to be the victim", hostIP, open, tokenPath(""), victim, http.StatusForbidden},
		{"unknown address", nextIP(), open, tokenPath(""), nil, http.StatusForbidden},
	}
	for _, tc := range attacks {
		t.Run("attack/"+tc.name, func(t *testing.T) {
			r := get(t, tc.ip, tc.base, tc.path, tc.headers)
			if r.status != tc.want {
				t.Fatalf("want %d, got %s", tc.want, r)
			}
		})
	}
	if got := n.tokenRequests(); got != before {
		t.Errorf("refused requests reached the upstream IMDS: %d token requests", got-before)
	}
}

// TestKubePathTricks: backslash, encoded, dot-segment and case variants of
// the token path are refused or answered by the agent itself for the
// caller's own identity; none is forwarded to the upstream IMDS, which
// would hand out any identity of the node.
func TestKubePathTricks(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("paths")
	own := n.identity(t, "own", true)
	n.identity(t, "not-mine", true)
	az := azureIdentity(ns, "own", own)
	create(t, env, az)
	ip, plainIP := nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "labelled", NodeName: n.name, IP: ip, Labels: map[string]string{aadv1.CRDLabelKey: "own"}})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "plain", NodeName: n.name, IP: plainIP})
	assign(t, env, n, ns, "labelled", az, aadv1.AssignedIDAssigned)
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)
	q := "?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net"

	refused := []string{
		`/metadata/identity\oauth2\token/`,
		`/metadata/identity\oauth2/token`,
		`/metadata/identity%5Coauth2%5Ctoken`,
		`/metadata/identity%5coauth2/token`,
		`/metadata/identity/oauth2/token/../token`,
		`/metadata/identity/./oauth2/token`,
		`/metadata//identity/oauth2/token`,
		`/metadata/identity/oauth2/tokens`,
		`/metadata/Identity/oauth2/token/extra`,
		`/METADATA/IDENTITY/OAUTH2`,
		`/metadata/identity`,
		`/metadata/instance/../identity/oauth2/token`,
		`/metadata/%2e%2e/metadata/identity/oauth2/token`,
	}
	for _, ip := range []string{plainIP, ip} {
		for _, p := range refused {
			t.Run("refused "+ip+" "+p, func(t *testing.T) {
				r := rawGet(t, ip, base, p+q)
				if r.status == http.StatusOK {
					t.Fatalf("path trick answered 200: %s", r)
				}
			})
		}
	}
	if got := n.tokenRequests(); got != 0 {
		t.Fatalf("path tricks reached the upstream IMDS token endpoint %d times", got)
	}

	// Case variants of the exact path are the token route: a pod without
	// identity is refused, a pod with one gets only its own.
	variants := []string{
		"/Metadata/identity/oauth2/token",
		"/metadata/Identity/oauth2/token",
		"/METADATA/IDENTITY/OAUTH2/TOKEN/",
		"/metadata/identity/OAuth2/Token",
	}
	for _, p := range variants {
		t.Run("case variant unlabelled "+p, func(t *testing.T) {
			if r := rawGet(t, plainIP, base, p+q); r.status != http.StatusForbidden {
				t.Fatalf("want 403, got %s", r)
			}
		})
	}
	if got := n.tokenRequests(); got != 0 {
		t.Fatalf("case variants from an unlabelled pod reached the upstream IMDS %d times", got)
	}
	for _, p := range variants {
		t.Run("case variant labelled "+p, func(t *testing.T) {
			if diff := cmp.Diff(identityClaims(own), tokenClaims(t, rawGet(t, ip, base, p+q))); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
	for _, u := range n.imds.requests() {
		if u.Path != "/metadata/identity/oauth2/token" || u.Query().Get("client_id") != own.ClientID {
			t.Errorf("upstream received %s", u)
		}
	}
}

// rawGet sends a request line with the path exactly as given (no client
// normalisation), from ip.
func rawGet(t *testing.T, ip, base, pathAndQuery string) reply {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Opaque keeps backslashes and escapes as sent.
	req.URL = &url.URL{Scheme: u.Scheme, Host: u.Host, Opaque: strings.SplitN(pathAndQuery, "?", 2)[0]}
	if _, q, ok := strings.Cut(pathAndQuery, "?"); ok {
		req.URL.RawQuery = q
	}
	req.Header.Set("Metadata", "true")
	return do(t, podClient(ip), req)
}

// TestKubePendingAssignment: before the assignment exists, or while it is
// Created, the agent answers 503 with Retry-After within PendingWait
// instead of hanging; once Assigned the token is served.
func TestKubePendingAssignment(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("pending")
	id := n.identity(t, "late", true)
	az := azureIdentity(ns, "late", id)
	binding := &aadv1.AzureIdentityBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"},
		Spec:       aadv1.AzureIdentityBindingSpec{AzureIdentity: "late", Selector: "late"},
	}
	create(t, env, az, binding)
	ip := nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "job", NodeName: n.name, IP: ip, Labels: map[string]string{aadv1.CRDLabelKey: "late"}})
	base := kubeAgent(t, env, n, agent.ModeStandard, func(c *agent.Config) {
		c.PendingWait = 300 * time.Millisecond
		c.RetryAfter = 7 * time.Second
	})

	check503 := func(t *testing.T) {
		t.Helper()
		r := get(t, ip, base, tokenPath(""), nil)
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("want 503, got %s", r)
		}
		if got := r.header.Get("Retry-After"); got != "7" {
			t.Errorf("Retry-After = %q, want 7", got)
		}
	}
	t.Run("binding without assignment", check503)
	aai := assign(t, env, n, ns, "job", az, aadv1.AssignedIDCreated)
	waitFor(t, func() bool { return get(t, ip, base, tokenPath(""), nil).status == http.StatusServiceUnavailable })
	t.Run("assignment created", check503)
	setState(t, env, aai, aadv1.AssignedIDAssigned)
	waitFor(t, func() bool { return get(t, ip, base, tokenPath(""), nil).status == http.StatusOK })
	if diff := cmp.Diff(identityClaims(id), tokenClaims(t, get(t, ip, base, tokenPath(""), nil))); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}

	// Assigned in Kubernetes but not yet on the VM (IMDS: Identity not
	// found): also 503, never a token of something else.
	notYet := n.identity(t, "not-on-vm", false)
	az2 := azureIdentity(ns, "not-on-vm", notYet)
	create(t, env, az2)
	ip2 := nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "job2", NodeName: n.name, IP: ip2})
	assign(t, env, n, ns, "job2", az2, aadv1.AssignedIDAssigned)
	waitFor(t, func() bool { return get(t, ip2, base, tokenPath(""), nil).status != http.StatusForbidden })
	if r := get(t, ip2, base, tokenPath(""), nil); r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("identity not on the VM: want 503 with Retry-After, got %s", r)
	}
}

// waitFor polls cond (informer propagation) for up to 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestKubeExceptions: a pod matching an AzurePodIdentityException reaches
// the node's identities directly; a pod of another namespace with the same
// label does not.
func TestKubeExceptions(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns, other := env.NewNamespace("except"), env.NewNamespace("notexcept")
	nodeID := n.identity(t, "kubelet", true)
	ex := &aadv1.AzurePodIdentityException{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "system"},
		Spec:       aadv1.AzurePodIdentityExceptionSpec{PodLabels: map[string]string{"app": "Node-Agent"}},
	}
	create(t, env, ex)
	ip, otherIP := nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "excepted", NodeName: n.name, IP: ip, Labels: map[string]string{"app": "node-agent"}})
	env.CreatePod(k8stest.Pod{Namespace: other, Name: "same-label", NodeName: n.name, IP: otherIP, Labels: map[string]string{"app": "node-agent"}})
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)

	if diff := cmp.Diff(identityClaims(nodeID), tokenClaims(t, get(t, ip, base, tokenPath("client_id="+nodeID.ClientID), nil))); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if r := get(t, otherIP, base, tokenPath("client_id="+nodeID.ClientID), nil); r.status != http.StatusForbidden {
		t.Fatalf("exception of another namespace applied: %s", r)
	}
}

// TestKubeServicePrincipal: a type 1 identity gets its token from the
// token service with the secret read from its Secret.
func TestKubeServicePrincipal(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("sp")
	clientID, secret, objectID := n.cloud.ServicePrincipal(t, "sp-app")
	create(t, env, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sp-secret"},
		Data:       map[string][]byte{"clientsecret": []byte(secret)},
	})
	sp := &aadv1.AzureIdentity{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sp"},
		Spec: aadv1.AzureIdentitySpec{
			Type: aadv1.ServicePrincipal, ClientID: clientID, TenantID: n.cloud.TenantID,
			ADEndpoint:     n.cloud.AuthorityHost,
			ClientPassword: corev1.SecretReference{Name: "sp-secret", Namespace: ns},
		},
	}
	missing := sp.DeepCopy()
	missing.Name = "sp-missing"
	missing.Spec.ClientPassword.Name = "nope"
	// An identity in another namespace naming this namespace's secret and
	// an identity sending the secret over plain HTTP are refused.
	thief := sp.DeepCopy()
	thief.Namespace, thief.Name = env.NewNamespace("thief"), "thief"
	plain := sp.DeepCopy()
	plain.Name = "sp-plain"
	plain.Spec.ADEndpoint = strings.Replace(n.cloud.AuthorityHost, "https://", "http://", 1)
	create(t, env, sp, missing, thief, plain)
	ip, ip2, ip3, ip4 := nextIP(), nextIP(), nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "sp-pod", NodeName: n.name, IP: ip})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "sp-missing", NodeName: n.name, IP: ip2})
	env.CreatePod(k8stest.Pod{Namespace: thief.Namespace, Name: "thief", NodeName: n.name, IP: ip3})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "sp-plain", NodeName: n.name, IP: ip4})
	assign(t, env, n, ns, "sp-pod", sp, aadv1.AssignedIDAssigned)
	assign(t, env, n, ns, "sp-missing", missing, aadv1.AssignedIDAssigned)
	assign(t, env, n, thief.Namespace, "thief", thief, aadv1.AssignedIDAssigned)
	assign(t, env, n, ns, "sp-plain", plain, aadv1.AssignedIDAssigned)
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)
	for name, ip := range map[string]string{"secret of another namespace": ip3, "plain-HTTP adEndpoint": ip4} {
		if r := get(t, ip, base, tokenPath(""), nil); r.status != http.StatusForbidden {
			t.Errorf("%s: want 403, got %s", name, r)
		}
	}

	got := tokenClaims(t, get(t, ip, base, tokenPath(""), nil))
	want := claims{OID: objectID, AppID: clientID, Aud: "https://vault.azure.net", TID: n.cloud.TenantID}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if r := get(t, ip2, base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("missing secret: want 403, got %s", r)
	}
	if got := n.tokenRequests(); got != 0 {
		t.Errorf("service principal tokens went to IMDS (%d requests)", got)
	}
}

// TestKubeManagedMode: without a controller, bindings in the pod's own
// namespace (selector or label selector) name identities pre-assigned to
// the node; bindings of other namespaces never apply.
func TestKubeManagedMode(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns, other := env.NewNamespace("managed"), env.NewNamespace("managed-other")
	idSel, idLS := n.identity(t, "sel", true), n.identity(t, "lsel", true)
	create(t, env,
		azureIdentity(ns, "sel", idSel), azureIdentity(ns, "ls", idLS),
		&aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sel"},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: "sel", Selector: "sel"}},
		&aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ls"},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: "ls", LabelSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "api"}}}}}},
	)
	selIP, lsIP, otherIP := nextIP(), nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "sel", NodeName: n.name, IP: selIP, Labels: map[string]string{aadv1.CRDLabelKey: "sel"}})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "ls", NodeName: n.name, IP: lsIP, Labels: map[string]string{"tier": "api"}})
	env.CreatePod(k8stest.Pod{Namespace: other, Name: "x", NodeName: n.name, IP: otherIP, Labels: map[string]string{aadv1.CRDLabelKey: "sel", "tier": "web"}})
	base := kubeAgent(t, env, n, agent.ModeManaged, func(c *agent.Config) { c.Namespaced = true })

	for _, tc := range []struct {
		name, ip string
		want     claims
	}{{"selector", selIP, identityClaims(idSel)}, {"label selector", lsIP, identityClaims(idLS)}} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tokenClaims(t, get(t, tc.ip, base, tokenPath(""), nil))); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
	if r := get(t, otherIP, base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("pod of another namespace: want 403, got %s", r)
	}
	if r := get(t, selIP, base, tokenPath("client_id="+idLS.ClientID), nil); r.status != http.StatusForbidden {
		t.Fatalf("pod asking for an identity whose binding does not select it: want 403, got %s", r)
	}
}

// TestKubePodLifecycle: completed and deleted pods lose their identity,
// and pods of other nodes are never callers here.
func TestKubePodLifecycle(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	otherNode := k8stest.UniqueName("other-node")
	env.CreateNode(otherNode, "")
	ns := env.NewNamespace("life")
	id := n.identity(t, "life", true)
	az := azureIdentity(ns, "life", id)
	create(t, env, az)
	ip, elsewhereIP := nextIP(), nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "p", NodeName: n.name, IP: ip})
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "elsewhere", NodeName: otherNode, IP: elsewhereIP})
	assign(t, env, n, ns, "p", az, aadv1.AssignedIDAssigned)
	assign(t, env, n, ns, "elsewhere", az, aadv1.AssignedIDAssigned)
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)

	if r := get(t, elsewhereIP, base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("pod of another node: want 403, got %s", r)
	}
	tokenClaims(t, get(t, ip, base, tokenPath(""), nil))
	env.SetPodPhase(ns, "p", corev1.PodSucceeded)
	waitFor(t, func() bool { return get(t, ip, base, tokenPath(""), nil).status == http.StatusForbidden })
}

// TestKubeInstanceMetadata: instance metadata is proxied on the
// normalised path with the caller's case kept below /metadata/instance.
func TestKubeInstanceMetadata(t *testing.T) {
	t.Parallel()
	env := startKube(t)
	n := newNode(t, env)
	ns := env.NewNamespace("instance")
	ip := nextIP()
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "p", NodeName: n.name, IP: ip})
	base := kubeAgent(t, env, n, agent.ModeStandard, nil)
	tests := []struct {
		name, path string
		status     int
		body       string
	}{
		{"scale set name", "/metadata/instance/compute/vmScaleSetName?api-version=2017-08-01&format=text", 200, n.scaleSet.Name},
		{"upper-case prefix", "/METADATA/Instance/compute/vmScaleSetName?api-version=2017-08-01&format=text", 200, n.scaleSet.Name},
		{"unknown field", "/metadata/instance/compute/nope?api-version=2017-08-01&format=text", 404, ""},
		{"unknown path", "/metadata/other?api-version=2017-08-01", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, ip, base, tc.path, nil)
			if r.status != tc.status {
				t.Fatalf("want %d, got %s", tc.status, r)
			}
			if tc.body != "" && strings.TrimSpace(string(r.body)) != tc.body {
				t.Errorf("body %q, want %q", r.body, tc.body)
			}
		})
	}
	if r := get(t, nextIP(), base, "/metadata/instance?api-version=2017-08-01", nil); r.status != http.StatusForbidden {
		t.Errorf("unknown caller read instance metadata: %s", r)
	}
}
