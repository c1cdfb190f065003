package controller

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// memARM is an in-memory ARM for measuring the reconcilers alone.
type memARM struct {
	mu      sync.Mutex
	sets    map[string]map[string]bool // guarded by mu; target key → identity IDs
	patches int                        // guarded by mu
}

func (m *memARM) Identities(_ context.Context, t Target) (IdentitySet, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := IdentitySet{UserAssigned: map[string]bool{}}
	for id := range m.sets[t.key()] {
		out.UserAssigned[id] = true
	}
	return out, nil
}

func (m *memARM) PatchIdentities(_ context.Context, t Target, _ IdentitySet, add, remove []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.patches++
	s := m.sets[t.key()]
	if s == nil {
		s = map[string]bool{}
		m.sets[t.key()] = s
	}
	for _, id := range add {
		s[strings.ToLower(id)] = true
	}
	for _, id := range remove {
		delete(s, strings.ToLower(id))
	}
	return nil
}

// BenchmarkReconcileFullResync runs both reconcilers over 10,000 pods and
// 1,000 bindings (100 nodes in 10 scale sets) on controller-runtime's fake
// client and an in-memory ARM: the controller's own cost for a full
// resync, without apiserver or network latency.
//
//	go test -run '^$' -bench BenchmarkReconcileFullResync -benchtime=3x ./internal/controller/
func BenchmarkReconcileFullResync(b *testing.B) {
	const pods, bindings, scaleSets, perSet = 10000, 1000, 10, 10
	for b.Loop() {
		b.StopTimer()
		var objs []client.Object
		var nodes []string
		targetKeys := map[string]bool{}
		for s := range scaleSets {
			for i := range perSet {
				name := fmt.Sprintf("vmss%02d%06d", s, i)
				pid := fmt.Sprintf("azure:///subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss%02d/virtualMachines/%d", s, i)
				objs = append(objs, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{ProviderID: pid}})
				nodes = append(nodes, name)
				t, _ := TargetFromProviderID(pid)
				targetKeys[t.key()] = true
			}
		}
		for i := range bindings {
			name := fmt.Sprintf("id-%04d", i)
			objs = append(objs,
				&aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: aadv1.AzureIdentitySpec{
					ResourceID: "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name, ClientID: name}},
				&aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
					Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: name, Selector: name}})
		}
		for i := range pods {
			objs = append(objs, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("pod-%05d", i), Labels: map[string]string{aadv1.CRDLabelKey: fmt.Sprintf("id-%04d", i%bindings)}},
				Spec:       corev1.PodSpec{NodeName: nodes[i%len(nodes)]},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning},
			})
		}
		fb := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...)
		for _, i := range indexes() {
			fb = fb.WithIndex(i.obj, i.key, i.fn)
		}
		c := fb.Build()
		arm := &memARM{sets: map[string]map[string]bool{}}
		m := newMetrics()
		as := &assignments{c: c, log: discard(), clock: clock.RealClock{}, metrics: m, aaiNamespace: "default"}
		ts := &targets{c: c, arm: arm, log: discard(), clock: clock.RealClock{}, metrics: m, immutable: map[string]bool{}}
		ctx := b.Context()

		b.StartTimer()
		for i := range pods {
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: fmt.Sprintf("pod-%05d", i)}}
			if _, err := as.Reconcile(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		for k := range targetKeys {
			if _, err := ts.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: k}}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()

		var l aadv1.AzureAssignedIdentityList
		if err := c.List(ctx, &l); err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, a := range l.Items {
			if a.Status.Status == aadv1.AssignedIDAssigned {
				n++
			}
		}
		if n != pods {
			b.Fatalf("%d of %d assignments Assigned", n, pods)
		}
		b.ReportMetric(float64(arm.patches), "PATCHes")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
