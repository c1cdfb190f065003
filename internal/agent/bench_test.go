package agent_test

import (
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
	"github.com/keyward/keyward/internal/k8stest"
)

// keepAliveClient is a pod's client that reuses connections, as SDKs do.
func keepAliveClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

// fetch sends one token request and returns its latency; it fails the
// benchmark on a non-200 answer.
func fetch(b *testing.B, c *http.Client, url string) time.Duration {
	start := time.Now()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Metadata", "true")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return time.Since(start)
}

func reportPercentiles(b *testing.B, lat []time.Duration, unit string, scale time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / float64(scale)
	}
	b.ReportMetric(pct(0.50), "p50-"+unit)
	b.ReportMetric(pct(0.99), "p99-"+unit)
	b.ReportMetric(float64(lat[len(lat)-1])/float64(scale), "max-"+unit)
}

// BenchmarkTokenWarmCache: token requests over HTTP from a pod's address
// with the token already cached (the agent's steady state), with the local
// registry and with the Kubernetes informer sources; sequential and
// parallel clients.
func BenchmarkTokenWarmCache(b *testing.B) {
	env := k8stest.Start(b)
	env.InstallCRDs()
	n := newNode(b, env)
	id := n.cloud.CreateIdentity(b, n.rg, "bench")
	n.cloud.AssignIdentity(b, n.scaleSet.ID, id.ID)

	localIP, kubeIP := nextIP(), nextIP()
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{
		Pods:       []agent.LocalPod{{Namespace: "demo", Name: "app", IP: localIP, Labels: map[string]string{aadv1.CRDLabelKey: "app"}}},
		Identities: []aadv1.AzureIdentity{*azureIdentity("demo", "app", id)},
		Bindings:   []aadv1.AzureIdentityBinding{binding("demo", "app", "app", "app")},
	})
	if err != nil {
		b.Fatal(err)
	}
	ns := env.NewNamespace("bench")
	az := azureIdentity(ns, "app", id)
	if cerr := env.Client.Create(b.Context(), az); cerr != nil {
		b.Fatal(cerr)
	}
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "app", NodeName: n.name, IP: kubeIP})
	assign(b, env, n, ns, "app", az, aadv1.AssignedIDAssigned)
	kube, err := agent.NewKube(b.Context(), agent.KubeConfig{RESTConfig: env.RESTConfig, NodeName: n.name})
	if err != nil {
		b.Fatal(err)
	}
	sources := []struct {
		name string
		ip   string
		cfg  agent.Config
	}{
		{"local", localIP, agent.Config{Pods: reg, Identities: reg}},
		{"kube", kubeIP, agent.Config{Pods: kube, Identities: kube, Cache: kube}},
	}
	for _, s := range sources {
		cfg := s.cfg
		cfg.Upstream, cfg.HTTPClient = n.imds.URL, n.cloud.HTTPClient()
		base := startAgentBase(b, cfg)
		url := base + tokenPath("")
		c := keepAliveClient(s.ip)
		fetch(b, c, url) // warm the cache
		b.Run(s.name+"/sequential", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				lat = append(lat, fetch(b, c, url))
			}
			b.StopTimer()
			reportPercentiles(b, lat, "µs", time.Microsecond)
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			var mu sync.Mutex
			var lat []time.Duration
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					mine = append(mine, fetch(b, c, url))
				}
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			reportPercentiles(b, lat, "µs", time.Microsecond)
		})
	}
}

// BenchmarkPodLabelledToFirstToken measures, against the real apiserver,
// the time from the write that makes a running pod eligible to the first
// 200 the agent serves it (polling every 2 ms):
//   - managed: the pod is labelled (binding and identity exist);
//   - standard: the controller's AzureAssignedIdentity (Assigned) is created.
func BenchmarkPodLabelledToFirstToken(b *testing.B) {
	env := k8stest.Start(b)
	env.InstallCRDs()
	n := newNode(b, env)
	id := n.cloud.CreateIdentity(b, n.rg, "first")
	n.cloud.AssignIdentity(b, n.scaleSet.ID, id.ID)
	ctx := b.Context()
	for _, mode := range []agent.Mode{agent.ModeManaged, agent.ModeStandard} {
		ns := env.NewNamespace("first")
		az := azureIdentity(ns, "first", id)
		bind := &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first"},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: "first", Selector: "first"}}
		for _, o := range []client.Object{az, bind} {
			if err := env.Client.Create(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
		kube, err := agent.NewKube(ctx, agent.KubeConfig{RESTConfig: env.RESTConfig, NodeName: n.name, Mode: mode})
		if err != nil {
			b.Fatal(err)
		}
		base := startAgentBase(b, agent.Config{Upstream: n.imds.URL, HTTPClient: n.cloud.HTTPClient(),
			Pods: kube, Identities: kube, Cache: kube, PendingWait: time.Millisecond, Namespaced: mode == agent.ModeManaged})
		url := base + tokenPath("")
		b.Run(string(mode), func(b *testing.B) {
			var lat []time.Duration
			for range b.N {
				b.StopTimer()
				ip := nextIP()
				name := "p-" + strings.ReplaceAll(ip, ".", "-")
				env.CreatePod(k8stest.Pod{Namespace: ns, Name: name, NodeName: n.name, IP: ip})
				c := keepAliveClient(ip)
				// The pod is known to the agent (and refused) before the change.
				for status(b, c, url) != http.StatusForbidden {
					time.Sleep(2 * time.Millisecond)
				}
				b.StartTimer()
				start := time.Now()
				if mode == agent.ModeManaged {
					pod := &metav1.PartialObjectMetadata{}
					pod.SetGroupVersionKind(podGVK)
					pod.SetNamespace(ns)
					pod.SetName(name)
					patch := []byte(`{"metadata":{"labels":{"aadpodidbinding":"first"}}}`)
					if err := env.Client.Patch(ctx, pod, client.RawPatch("application/merge-patch+json", patch)); err != nil {
						b.Fatal(err)
					}
				} else {
					assign(b, env, n, ns, name, az, aadv1.AssignedIDAssigned)
				}
				for status(b, c, url) != http.StatusOK {
					time.Sleep(2 * time.Millisecond)
				}
				lat = append(lat, time.Since(start))
			}
			reportPercentiles(b, lat, "ms", time.Millisecond)
		})
	}
}

var podGVK = corev1.SchemeGroupVersion.WithKind("Pod")

func startAgentBase(b *testing.B, cfg agent.Config) string {
	base, _ := startAgent(b, cfg)
	return base
}

func status(b *testing.B, c *http.Client, url string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Metadata", "true")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
