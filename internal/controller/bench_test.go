package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/controller"
	"github.com/keyward/keyward/internal/k8stest"
)

// BenchmarkFullResync measures a cold start of the controller against a
// real apiserver and the real cloud stand-in: 10,000 running pods and
// 1,000 bindings (each with its own user-assigned identity) already exist
// on 100 nodes in 10 scale sets; the clock runs from controller start until
// all 10,000 AzureAssignedIdentities are Assigned and every scale set holds
// its identities. Setup is not timed. Run with -benchtime=1x:
//
//	go test -run '^$' -bench BenchmarkFullResync -benchtime=1x -timeout 30m ./internal/controller/
func BenchmarkFullResync(b *testing.B) {
	const (
		pods, bindings, scaleSets, perSet = 10000, 1000, 10, 10
	)
	for range b.N {
		b.StopTimer()
		f := newFixture(b)
		ctx := b.Context()
		var nodes []string
		for s := range scaleSets {
			ss := f.cloud.CreateScaleSet(b, f.rg, fmt.Sprintf("vmss-%02d", s), perSet)
			for _, in := range ss.Instances {
				node := k8stest.UniqueName(fmt.Sprintf("bench-%02d", s))
				f.env.CreateNode(node, "azure://"+in.ID)
				nodes = append(nodes, node)
			}
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(32)
		for i := range bindings {
			id := f.cloud.CreateIdentity(b, f.rg, fmt.Sprintf("id-%04d", i))
			g.Go(func() error {
				name := fmt.Sprintf("id-%04d", i)
				if err := f.env.Client.Create(gctx, &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
					Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: id.ID, ClientID: id.ClientID}}); err != nil {
					return err
				}
				return f.env.Client.Create(gctx, &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
					Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: name, Selector: name}})
			})
		}
		for i := range pods {
			g.Go(func() error {
				return createBoundPod(gctx, f.env.Client, f.ns, fmt.Sprintf("pod-%05d", i),
					fmt.Sprintf("id-%04d", i%bindings), nodes[i%len(nodes)])
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
		watch, err := cache.New(f.env.RESTConfig, cache.Options{Scheme: f.env.Scheme, DefaultNamespaces: map[string]cache.Config{f.ns: {}}})
		if err != nil {
			b.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		go func() { _ = watch.Start(wctx) }()
		var l aadv1.AzureAssignedIdentityList
		if err := watch.List(ctx, &l); err != nil { // starts the informer
			b.Fatal(err)
		}

		b.StartTimer()
		start := time.Now()
		f.start(b, func(c *controller.Config) { c.MaxConcurrentReconciles = 8 })
		var assigned int
		for assigned < pods {
			time.Sleep(200 * time.Millisecond)
			if err := watch.List(ctx, &l); err != nil {
				b.Fatal(err)
			}
			assigned = 0
			for i := range l.Items {
				if l.Items[i].Status.Status == aadv1.AssignedIDAssigned {
					assigned++
				}
			}
			if time.Since(start) > 25*time.Minute {
				b.Fatalf("only %d of %d assigned after %v", assigned, pods, time.Since(start))
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		wcancel()
		b.ReportMetric(elapsed.Seconds(), "s/full-resync")
		b.ReportMetric(float64(pods)/elapsed.Seconds(), "assignments/s")
	}
}

// createBoundPod creates a pod, binds it to node and marks it Running, as
// k8stest.CreatePod does, from any goroutine.
func createBoundPod(ctx context.Context, c client.Client, ns, name, selector, node string) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{aadv1.CRDLabelKey: selector}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}},
			TerminationGracePeriodSeconds: ptr.To[int64](0)},
	}
	if err := c.Create(ctx, pod); err != nil {
		return err
	}
	if err := c.SubResource("binding").Create(ctx, pod, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: node},
	}); err != nil {
		return err
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		return err
	}
	pod.Status.Phase = corev1.PodRunning
	return c.Status().Update(ctx, pod)
}
