package controller_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/controller"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestTutorialAssignAndRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	demo := f.cloud.CreateIdentity(t, f.rg, "demo")
	f.applyTutorial(t, "demo", demo)
	_, nodes := f.scaleSetNodes(t, "vmss-a", 2)
	labels := map[string]string{aadv1.CRDLabelKey: "demo"}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p1", Labels: labels, NodeName: nodes[0], IP: "10.1.0.1"})
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p2", Labels: labels, NodeName: nodes[1], IP: "10.1.0.2"})
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "unlabelled", NodeName: nodes[0], IP: "10.1.0.3"})
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "unscheduled", Labels: labels})
	f.start(t, nil)

	p1, p2 := controller.AssignedIdentityName("p1", f.ns, "demo"), controller.AssignedIdentityName("p2", f.ns, "demo")
	want := map[string]string{p1: aadv1.AssignedIDAssigned, p2: aadv1.AssignedIDAssigned}
	eventually(t, "both assignments Assigned", func() bool { return cmp.Equal(want, f.assigned(t)) })
	if diff := cmp.Diff(lower(demo.ID), f.vmssIdentities(t, "vmss-a")); diff != "" {
		t.Fatalf("scale set identities (-want +got):\n%s", diff)
	}

	// The assignment has MIC's shape.
	var a aadv1.AzureAssignedIdentity
	if err := f.env.Client.Get(f.env.Context(), client.ObjectKey{Namespace: f.ns, Name: p1}, &a); err != nil {
		t.Fatal(err)
	}
	type shape struct {
		Label, Pod, PodNamespace, Node, Identity, ClientID, Binding string
		Finalizers                                                  []string
		Replicas                                                    int32
		Condition                                                   metav1.ConditionStatus
	}
	cond := meta.FindStatusCondition(a.Status.Conditions, controller.ConditionAssigned)
	if cond == nil {
		t.Fatal("no Assigned condition")
	}
	got := shape{a.Labels[aadv1.NodeNameLabel], a.Spec.Pod, a.Spec.PodNamespace, a.Spec.NodeName,
		a.Spec.AzureIdentityRef.Name, a.Spec.AzureIdentityRef.Spec.ClientID, a.Spec.AzureBindingRef.Name,
		a.Finalizers, a.Status.AvailableReplicas, cond.Status}
	wantShape := shape{nodes[0], "p1", f.ns, nodes[0], "demo", demo.ClientID, "demo-binding",
		[]string{aadv1.AssignedIDFinalizer}, 1, metav1.ConditionTrue}
	if diff := cmp.Diff(wantShape, got); diff != "" {
		t.Errorf("assignment (-want +got):\n%s", diff)
	}

	// p2 still needs the identity: deleting p1 keeps it on the scale set.
	f.env.DeletePod(f.ns, "p1")
	eventually(t, "p1's assignment gone", func() bool {
		return cmp.Equal(map[string]string{p2: aadv1.AssignedIDAssigned}, f.assigned(t))
	})
	if diff := cmp.Diff(lower(demo.ID), f.vmssIdentities(t, "vmss-a")); diff != "" {
		t.Fatalf("identity removed while p2 needs it (-want +got):\n%s", diff)
	}

	// A completed pod releases its identity; the last one removes it.
	f.env.SetPodPhase(f.ns, "p2", corev1.PodSucceeded)
	eventually(t, "p2's assignment gone", func() bool { return len(f.assigned(t)) == 0 })
	if diff := cmp.Diff([]string{}, f.vmssIdentities(t, "vmss-a")); diff != "" {
		t.Fatalf("identity left on the scale set (-want +got):\n%s", diff)
	}
}

func TestBadIdentityDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good1 := f.cloud.CreateIdentity(t, f.rg, "good1")
	good2 := f.cloud.CreateIdentity(t, f.rg, "good2")
	_, nodes := f.scaleSetNodes(t, "vmss-b", 1)
	missing := "/subscriptions/" + f.cloud.SubscriptionID + "/resourceGroups/" + f.rg +
		"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/deleted-one"
	ctx := f.env.Context()
	for name, rid := range map[string]string{"good1": good1.ID, "good2": good2.ID, "bad": missing} {
		id := &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: rid, ClientID: "client-" + name}}
		b := &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name + "-binding"},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: name, Selector: "app"}}
		if err := f.env.Client.Create(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := f.env.Client.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p", Labels: map[string]string{aadv1.CRDLabelKey: "app"}, NodeName: nodes[0], IP: "10.2.0.1"})
	f.start(t, nil)

	want := map[string]string{
		controller.AssignedIdentityName("p", f.ns, "good1"): aadv1.AssignedIDAssigned,
		controller.AssignedIdentityName("p", f.ns, "good2"): aadv1.AssignedIDAssigned,
		controller.AssignedIdentityName("p", f.ns, "bad"):   aadv1.AssignedIDCreated,
	}
	eventually(t, "good identities assigned despite the bad one", func() bool { return cmp.Equal(want, f.assigned(t)) })
	if diff := cmp.Diff(lower(good1.ID, good2.ID), f.vmssIdentities(t, "vmss-b")); diff != "" {
		t.Fatalf("scale set identities (-want +got):\n%s", diff)
	}
	var bad aadv1.AzureAssignedIdentity
	eventually(t, "AssignmentFailed condition", func() bool {
		if err := f.env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: controller.AssignedIdentityName("p", f.ns, "bad")}, &bad); err != nil {
			return false
		}
		c := meta.FindStatusCondition(bad.Status.Conditions, controller.ConditionAssigned)
		return c != nil && c.Reason == controller.ReasonAssignmentFailed && c.Status == metav1.ConditionFalse
	})
}

func TestPreexistingAndImmutableIdentitiesStay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pre := f.cloud.CreateIdentity(t, f.rg, "pre")
	imm := f.cloud.CreateIdentity(t, f.rg, "imm")
	own := f.cloud.CreateIdentity(t, f.rg, "own")
	vm := f.cloud.CreateVM(t, f.rg, "vm-c")
	f.cloud.AssignIdentity(t, vm.ID, pre.ID) // there before the controller
	node := k8stest.UniqueName("vm-node")
	f.env.CreateNode(node, "azure://"+vm.ID)
	for name, id := range map[string]string{"pre": pre.ID, "imm": imm.ID, "own": own.ID} {
		obj := &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: id, ClientID: map[string]string{"pre": pre.ClientID, "imm": imm.ClientID, "own": own.ClientID}[name]}}
		if err := f.env.Client.Create(f.env.Context(), obj); err != nil {
			t.Fatal(err)
		}
		b := &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
			Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: name, Selector: "web"}}
		if err := f.env.Client.Create(f.env.Context(), b); err != nil {
			t.Fatal(err)
		}
	}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "w", Labels: map[string]string{aadv1.CRDLabelKey: "web"}, NodeName: node, IP: "10.3.0.1"})
	f.start(t, func(c *controller.Config) { c.ImmutableClientIDs = []string{imm.ClientID} })

	eventually(t, "three assignments Assigned", func() bool {
		got := f.assigned(t)
		return len(got) == 3 && !slices.ContainsFunc(mapValues(got), func(s string) bool { return s != aadv1.AssignedIDAssigned })
	})
	if diff := cmp.Diff(lower(pre.ID, imm.ID, own.ID), f.vmIdentities(t, "vm-c")); diff != "" {
		t.Fatalf("VM identities (-want +got):\n%s", diff)
	}
	f.env.DeletePod(f.ns, "w")
	eventually(t, "assignments released", func() bool { return len(f.assigned(t)) == 0 })
	if diff := cmp.Diff(lower(pre.ID, imm.ID), f.vmIdentities(t, "vm-c")); diff != "" {
		t.Fatalf("VM identities after release (-want +got):\n%s", diff)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestMatchingSemantics(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.cloud.CreateIdentity(t, f.rg, "matching")
	_, nodes := f.scaleSetNodes(t, "vmss-d", 1)
	ctx := f.env.Context()
	other := f.env.NewNamespace("other")
	mk := func(ns, name string, annotations map[string]string) {
		obj := &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
			Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: id.ID, ClientID: id.ClientID}}
		if err := f.env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	bind := func(ns, name string, spec aadv1.AzureIdentityBindingSpec) {
		if err := f.env.Client.Create(ctx, &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}); err != nil {
			t.Fatal(err)
		}
	}
	// Plain selector; namespaced identity; label-selector extension; a
	// service principal (no ARM); a binding naming a missing identity.
	mk(f.ns, "plain", nil)
	bind(f.ns, "plain", aadv1.AzureIdentityBindingSpec{AzureIdentity: "plain", Selector: "sel"})
	mk(f.ns, "nsd", map[string]string{aadv1.BehaviorKey: aadv1.BehaviorNamespaced})
	bind(f.ns, "nsd", aadv1.AzureIdentityBindingSpec{AzureIdentity: "nsd", Selector: "sel"})
	bind(f.ns, "ls", aadv1.AzureIdentityBindingSpec{AzureIdentity: "plain-ls",
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "db"}}})
	mk(f.ns, "plain-ls", nil)
	sp := &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "sp"},
		Spec: aadv1.AzureIdentitySpec{Type: aadv1.ServicePrincipal, ClientID: "app", TenantID: f.cloud.TenantID}}
	if err := f.env.Client.Create(ctx, sp); err != nil {
		t.Fatal(err)
	}
	bind(f.ns, "sp", aadv1.AzureIdentityBindingSpec{AzureIdentity: "sp", Selector: "sp"})
	bind(f.ns, "ghost", aadv1.AzureIdentityBindingSpec{AzureIdentity: "ghost", Selector: "sel"})

	pods := []k8stest.Pod{
		{Namespace: f.ns, Name: "a", Labels: map[string]string{aadv1.CRDLabelKey: "sel"}},
		{Namespace: other, Name: "b", Labels: map[string]string{aadv1.CRDLabelKey: "sel", "tier": "db"}},
		{Namespace: f.ns, Name: "c", Labels: map[string]string{"tier": "db"}},
		{Namespace: f.ns, Name: "d", Labels: map[string]string{aadv1.CRDLabelKey: "sp"}},
		{Namespace: f.ns, Name: "e", Labels: map[string]string{aadv1.CRDLabelKey: "Sel"}}, // case matters
	}
	for i, p := range pods {
		p.NodeName, p.IP = nodes[0], "10.4.0."+string(rune('1'+i))
		f.env.CreatePod(p)
	}
	f.start(t, func(c *controller.Config) { c.Namespaces = []string{f.ns, other} })

	want := map[string]string{
		controller.AssignedIdentityName("a", f.ns, "plain"):    aadv1.AssignedIDAssigned,
		controller.AssignedIdentityName("a", f.ns, "nsd"):      aadv1.AssignedIDAssigned,
		controller.AssignedIdentityName("b", other, "plain"):   aadv1.AssignedIDAssigned, // cross-namespace selector (MIC)
		controller.AssignedIdentityName("c", f.ns, "plain-ls"): aadv1.AssignedIDAssigned, // label selector, own namespace only
		controller.AssignedIdentityName("d", f.ns, "sp"):       aadv1.AssignedIDAssigned, // no ARM needed
	}
	eventually(t, "assignments", func() bool { return cmp.Equal(want, f.assigned(t)) })
	if diff := cmp.Diff(want, f.assigned(t)); diff != "" {
		t.Fatalf("assignments (-want +got):\n%s", diff)
	}
}

func TestLeaderElection(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.cloud.CreateIdentity(t, f.rg, "lead")
	f.applyTutorial(t, "lead", id)
	_, nodes := f.scaleSetNodes(t, "vmss-e", 1)
	lease := k8stest.UniqueName("mic")
	le := func(c *controller.Config) {
		c.LeaderElection, c.LeaderElectionNamespace, c.LeaderElectionID = true, f.ns, lease
		c.LeaseDuration, c.RenewDeadline, c.RetryPeriod = 4e9, 3e9, 5e8
	}
	c1, stop1 := f.start(t, le)
	<-c1.Elected()
	c2, _ := f.start(t, le)

	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p1", Labels: map[string]string{aadv1.CRDLabelKey: "lead"}, NodeName: nodes[0], IP: "10.5.0.1"})
	eventually(t, "p1 assigned", func() bool {
		return f.assigned(t)[controller.AssignedIdentityName("p1", f.ns, "lead")] == aadv1.AssignedIDAssigned
	})
	if n := counter(t, c2, "aadpodidentity_mic_cycle_count"); n != 0 {
		t.Fatalf("standby instance reconciled %v targets, want 0", n)
	}
	select {
	case <-c2.Elected():
		t.Fatal("both instances elected")
	default:
	}

	stop1() // releases the lease
	select {
	case <-c2.Elected():
	case <-time.After(30 * time.Second):
		t.Fatal("standby instance not elected after the leader stopped")
	}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p2", Labels: map[string]string{aadv1.CRDLabelKey: "lead"}, NodeName: nodes[0], IP: "10.5.0.2"})
	eventually(t, "p2 assigned by the new leader", func() bool {
		return f.assigned(t)[controller.AssignedIdentityName("p2", f.ns, "lead")] == aadv1.AssignedIDAssigned
	})
	if n := counter(t, c2, "aadpodidentity_mic_new_leader_election_count"); n != 1 {
		t.Fatalf("new leader's election count = %v, want 1", n)
	}
}

// counter reads a counter from the controller's registry.
func counter(t *testing.T, c *controller.Controller, name string) float64 {
	t.Helper()
	mfs, err := c.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return sum
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

func TestNameCollisionKeepsFirstPod(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.cloud.CreateIdentity(t, f.rg, "collide")
	f.applyTutorial(t, "collide", id)
	_, nodes := f.scaleSetNodes(t, "vmss-f", 1)
	// "q" in "ctl-XXXX" and "q-ctl" in "XXXX" both give "q-ctl-XXXX-collide".
	suffix := strings.TrimPrefix(f.ns, "ctl-")
	if err := f.env.Client.Create(f.env.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: suffix}}); err != nil {
		t.Fatal(err)
	}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "q", Labels: map[string]string{aadv1.CRDLabelKey: "collide"}, NodeName: nodes[0], IP: "10.6.0.1"})
	f.start(t, func(c *controller.Config) { c.Namespaces = []string{f.ns, suffix} })
	name := controller.AssignedIdentityName("q", f.ns, "collide")
	eventually(t, "first pod assigned", func() bool { return f.assigned(t)[name] == aadv1.AssignedIDAssigned })

	f.env.CreatePod(k8stest.Pod{Namespace: suffix, Name: "q-ctl", Labels: map[string]string{aadv1.CRDLabelKey: "collide"}, NodeName: nodes[0], IP: "10.6.0.2"})
	if got := controller.AssignedIdentityName("q-ctl", suffix, "collide"); got != name {
		t.Fatalf("names differ (%s, %s): the test does not test a collision", got, name)
	}
	var a aadv1.AzureAssignedIdentity
	eventually(t, "assignment still the first pod's", func() bool {
		err := f.env.Client.Get(f.env.Context(), client.ObjectKey{Namespace: f.ns, Name: name}, &a)
		return err == nil && a.Spec.Pod == "q" && a.Spec.PodNamespace == f.ns
	})
}
