package k8stest_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

const tutorialManifest = `apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: demo
spec:
  type: 0
  resourceID: /subscriptions/0000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo
  clientID: 11111111-2222-3333-4444-555555555555
---
apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentityBinding
metadata:
  name: demo-binding
spec:
  azureIdentity: demo
  selector: demo
`

func TestCRDsAndTutorialManifest(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	env.InstallCRDs()
	env.InstallCRDs() // idempotent
	ns := env.NewNamespace("crd")
	ctx := env.Context()

	if _, err := env.Apply(ctx, ns, []byte(tutorialManifest)); err != nil {
		t.Fatalf("tutorial manifest: %v", err)
	}
	var id aadv1.AzureIdentity
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo"}, &id); err != nil {
		t.Fatal(err)
	}
	wantSpec := aadv1.AzureIdentitySpec{
		Type:       aadv1.UserAssignedMSI,
		ResourceID: "/subscriptions/0000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/demo",
		ClientID:   "11111111-2222-3333-4444-555555555555",
	}
	if diff := cmp.Diff(wantSpec, id.Spec); diff != "" {
		t.Errorf("AzureIdentity spec (-want +got):\n%s", diff)
	}
	var b aadv1.AzureIdentityBinding
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "demo-binding"}, &b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(aadv1.AzureIdentityBindingSpec{AzureIdentity: "demo", Selector: "demo"}, b.Spec); diff != "" {
		t.Errorf("binding spec (-want +got):\n%s", diff)
	}
}

func TestStrictValidationRejectsUnknownFields(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	env.InstallCRDs()
	ns := env.NewNamespace("strict")
	tests := []struct{ name, manifest string }{
		{"unknown spec field", "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: x}\nspec: {type: 0, resourceId: wrong-case}\n"},
		{"type as string", "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentity\nmetadata: {name: y}\nspec: {type: \"zero\"}\n"},
		{"binding unknown field", "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\nmetadata: {name: z}\nspec: {azureIdentity: a, selectors: b}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Apply(env.Context(), ns, []byte(tc.manifest))
			if !apierrors.IsBadRequest(err) && !apierrors.IsInvalid(err) {
				t.Fatalf("Apply = %v, want a 400/422 rejection", err)
			}
		})
	}
}

func TestAssignedIdentityWireFormat(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	env.InstallCRDs()
	ns := env.NewNamespace("wire")
	ctx := env.Context()
	aai := &aadv1.AzureAssignedIdentity{}
	aai.Namespace, aai.Name = ns, "p-ns-id"
	aai.Spec = aadv1.AzureAssignedIdentitySpec{
		AzureIdentityRef: &aadv1.AzureIdentity{Spec: aadv1.AzureIdentitySpec{ClientID: "c"}},
		AzureBindingRef:  &aadv1.AzureIdentityBinding{Spec: aadv1.AzureIdentityBindingSpec{Selector: "s"}},
		Pod:              "p", PodNamespace: ns, NodeName: "n1",
	}
	aai.Spec.AzureIdentityRef.APIVersion, aai.Spec.AzureIdentityRef.Kind = "aadpodidentity.k8s.io/v1", "AzureIdentity"
	aai.Spec.AzureIdentityRef.Name = "id"
	aai.Spec.AzureBindingRef.APIVersion, aai.Spec.AzureBindingRef.Kind = "aadpodidentity.k8s.io/v1", "AzureIdentityBinding"
	aai.Spec.AzureBindingRef.Name = "b"
	aai.Status.Status = aadv1.AssignedIDCreated
	if err := env.Client.Create(ctx, aai); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("aadpodidentity.k8s.io/v1")
	u.SetKind("AzureAssignedIdentity")
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(aai), u); err != nil {
		t.Fatal(err)
	}
	for _, path := range [][]string{
		{"spec", "nodename"}, {"spec", "podNamespace"}, {"spec", "pod"},
		{"spec", "azureIdentityRef", "spec", "clientID"}, {"spec", "azureBindingRef", "spec", "selector"},
		{"status", "status"},
	} {
		if _, found, err := unstructured.NestedString(u.Object, path...); !found || err != nil {
			t.Errorf("stored object lacks %v (err %v)", path, err)
		}
	}
}

func TestPodBoundWithIP(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	ns := env.NewNamespace("pods")
	node := k8stest.UniqueName("node")
	env.CreateNode(node, "azure:///subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/"+node)
	env.CreatePod(k8stest.Pod{Namespace: ns, Name: "p1", Labels: map[string]string{"aadpodidbinding": "demo"}, NodeName: node, IP: "10.244.0.7"})

	ctx := env.Context()
	var pods corev1.PodList
	if err := env.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name, Node, IP string
		Phase          corev1.PodPhase
	}
	var got []view
	for _, p := range pods.Items {
		got = append(got, view{p.Name, p.Spec.NodeName, p.Status.PodIP, p.Status.Phase})
	}
	if diff := cmp.Diff([]view{{"p1", node, "10.244.0.7", corev1.PodRunning}}, got); diff != "" {
		t.Fatalf("pods (-want +got):\n%s", diff)
	}

	env.SetPodPhase(ns, "p1", corev1.PodSucceeded)
	var p corev1.Pod
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p1"}, &p); err != nil {
		t.Fatal(err)
	}
	if p.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("phase = %s, want Succeeded", p.Status.Phase)
	}
	env.DeletePod(ns, "p1")
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "p1"}, &p); !apierrors.IsNotFound(err) {
		t.Fatalf("Get after DeletePod = %v, want NotFound", err)
	}
}

func TestImpersonationIsSubjectToRBAC(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	c, err := client.New(env.ImpersonatingConfig("nobody"), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var pods corev1.PodList
	if err := c.List(env.Context(), &pods); !apierrors.IsForbidden(err) {
		t.Fatalf("List as nobody = %v, want Forbidden", err)
	}
}
