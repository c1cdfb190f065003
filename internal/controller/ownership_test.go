package controller_test

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/controller"
	"github.com/keyward/keyward/internal/k8stest"
)

// TestRefusedAddIsNotOwned: when ARM refuses to add an identity, the
// controller did not add it; if the operator then assigns it by hand, the
// controller must not remove it when the pod goes away.
func TestRefusedAddIsNotOwned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	vmss, nodes := f.scaleSetNodes(t, "vmss-own", 1)
	rid := "/subscriptions/" + f.cloud.SubscriptionID + "/resourceGroups/" + f.rg +
		"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/late"
	ctx := f.env.Context()
	id := &aadv1.AzureIdentity{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "late"},
		Spec: aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: rid, ClientID: "client-late"}}
	b := &aadv1.AzureIdentityBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "late"},
		Spec: aadv1.AzureIdentityBindingSpec{AzureIdentity: "late", Selector: "late"}}
	for _, o := range []client.Object{id, b} {
		if err := f.env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	f.env.CreatePod(k8stest.Pod{Namespace: f.ns, Name: "p", Labels: map[string]string{aadv1.CRDLabelKey: "late"}, NodeName: nodes[0], IP: "10.4.0.1"})
	f.start(t, nil)

	name := controller.AssignedIdentityName("p", f.ns, "late")
	eventually(t, "AssignmentFailed condition", func() bool {
		var a aadv1.AzureAssignedIdentity
		if err := f.env.Client.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, &a); err != nil {
			return false
		}
		c := meta.FindStatusCondition(a.Status.Conditions, controller.ConditionAssigned)
		return c != nil && c.Reason == controller.ReasonAssignmentFailed
	})
	// The operator works around it: creates the identity and assigns it.
	late := f.cloud.CreateIdentity(t, f.rg, "late")
	f.cloud.AssignIdentity(t, vmss.ID, late.ID)
	f.env.DeletePod(f.ns, "p")
	eventually(t, "assignment released", func() bool { return len(f.assigned(t)) == 0 })
	if !slices.Contains(f.vmssIdentities(t, "vmss-own"), strings.ToLower(late.ID)) {
		t.Fatalf("the controller removed an identity it did not add: %v", f.vmssIdentities(t, "vmss-own"))
	}
}
