package agent_test

import (
	"net/http"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
)

// TestServicePrincipalCacheNeedsTheSecret: an identity in another
// namespace naming the same service principal (client ID, tenant,
// endpoint) with a wrong secret must not be served the token cached for
// the identity that has the right secret.
func TestServicePrincipalCacheNeedsTheSecret(t *testing.T) {
	t.Parallel()
	s := newLocalSetup(t, nil)
	clientID, secret, _ := s.node.cloud.ServicePrincipal(t, "shared-sp")
	victimIP, thiefIP := nextIP(), nextIP()
	sp := func(ns string) aadv1.AzureIdentity {
		return aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sp"}, Spec: aadv1.AzureIdentitySpec{
			Type: aadv1.ServicePrincipal, ClientID: clientID, TenantID: s.node.cloud.TenantID, ADEndpoint: s.node.cloud.AuthorityHost,
			ClientPassword: corev1.SecretReference{Name: "sp"}}}
	}
	for _, err := range []error{
		s.reg.AddPod(agent.LocalPod{Namespace: "victim", Name: "app", IP: victimIP, Labels: map[string]string{aadv1.CRDLabelKey: "sp"}}),
		s.reg.AddIdentity(sp("victim")),
		s.reg.AddBinding(binding("victim", "sp", "sp", "sp")),
		s.reg.AddPod(agent.LocalPod{Namespace: "thief", Name: "app", IP: thiefIP, Labels: map[string]string{aadv1.CRDLabelKey: "sp"}}),
		s.reg.AddIdentity(sp("thief")),
		s.reg.AddBinding(binding("thief", "sp", "sp", "sp")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.reg.SetSecret("victim", "sp", map[string][]byte{"clientsecret": []byte(secret)})
	s.reg.SetSecret("thief", "sp", map[string][]byte{"clientsecret": []byte("not-the-secret")})
	tokenClaims(t, get(t, victimIP, s.base, tokenPath(""), nil)) // warms the cache
	if r := get(t, thiefIP, s.base, tokenPath(""), nil); r.status == http.StatusOK {
		t.Fatalf("identity with a wrong secret got the cached token of another namespace's: %s", r)
	}
}

// TestIdentityWithoutSelectorRefused: a type 0 AzureIdentity naming
// neither a clientID nor a resourceID must not become a token of the
// node's own identity (IMDS answers a request without selector with the
// node's only identity).
func TestIdentityWithoutSelectorRefused(t *testing.T) {
	t.Parallel()
	n := newNode(t, nil)
	n.identity(t, "node-only", true)
	ip := nextIP()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{
		Pods: []agent.LocalPod{{Namespace: "evil", Name: "app", IP: ip, Labels: map[string]string{aadv1.CRDLabelKey: "blank"}}},
		Identities: []aadv1.AzureIdentity{{ObjectMeta: metav1.ObjectMeta{Namespace: "evil", Name: "blank"},
			Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI}}},
		Bindings: []aadv1.AzureIdentityBinding{binding("evil", "blank", "blank", "blank")},
	})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := startAgent(t, agent.Config{Upstream: n.imds.URL, Pods: reg, Identities: reg, HTTPClient: n.cloud.HTTPClient()})
	if r := get(t, ip, base, tokenPath(""), nil); r.status != http.StatusForbidden {
		t.Fatalf("identity without clientID/resourceID: want 403, got %s", r)
	}
	if got := n.tokenRequests(); got != 0 {
		t.Errorf("upstream token requests = %d, want 0", got)
	}
}
