package controller

import (
	"context"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Cache field indexes.
const (
	// idxPodSelector: pod → value of its aadpodidbinding label.
	idxPodSelector = "keyward.pod.selector"
	// idxBindingSelector: binding → spec.selector.
	idxBindingSelector = "keyward.binding.selector"
	// idxBindingLabelSelector: binding → "true" when it has a label
	// selector (namespace-local).
	idxBindingLabelSelector = "keyward.binding.labelselector"
	// idxBindingIdentity: binding → "<namespace>/<spec.azureIdentity>".
	idxBindingIdentity = "keyward.binding.identity"
	// idxAssignedPod: assigned identity → "<podNamespace>/<pod>".
	idxAssignedPod = "keyward.aai.pod"
	// idxAssignedNode: assigned identity → spec.nodename.
	idxAssignedNode = "keyward.aai.node"
	// idxNodeTarget: node → target key (lower-cased VM or scale-set ID).
	idxNodeTarget = "keyward.node.target"
)

// index is one cache field index.
type index struct {
	obj client.Object
	key string
	fn  client.IndexerFunc
}

func indexes() []index {
	one := func(v string) []string {
		if v == "" {
			return nil
		}
		return []string{v}
	}
	return []index{
		{&corev1.Pod{}, idxPodSelector, func(o client.Object) []string { return one(o.GetLabels()[aadv1.CRDLabelKey]) }},
		{&aadv1.AzureIdentityBinding{}, idxBindingSelector, func(o client.Object) []string {
			return one(o.(*aadv1.AzureIdentityBinding).Spec.Selector)
		}},
		{&aadv1.AzureIdentityBinding{}, idxBindingLabelSelector, func(o client.Object) []string {
			if o.(*aadv1.AzureIdentityBinding).Spec.LabelSelector != nil {
				return []string{"true"}
			}
			return nil
		}},
		{&aadv1.AzureIdentityBinding{}, idxBindingIdentity, func(o client.Object) []string {
			b := o.(*aadv1.AzureIdentityBinding)
			return one(b.Namespace + "/" + b.Spec.AzureIdentity)
		}},
		{&aadv1.AzureAssignedIdentity{}, idxAssignedPod, func(o client.Object) []string {
			a := o.(*aadv1.AzureAssignedIdentity)
			return one(a.Spec.PodNamespace + "/" + a.Spec.Pod)
		}},
		{&aadv1.AzureAssignedIdentity{}, idxAssignedNode, func(o client.Object) []string {
			return one(o.(*aadv1.AzureAssignedIdentity).Spec.NodeName)
		}},
		{&corev1.Node{}, idxNodeTarget, func(o client.Object) []string {
			t, err := TargetFromProviderID(o.(*corev1.Node).Spec.ProviderID)
			if err != nil {
				return nil
			}
			return []string{t.key()}
		}},
	}
}

func addIndexes(ctx context.Context, mgr manager.Manager) error {
	for _, i := range indexes() {
		if err := mgr.GetFieldIndexer().IndexField(ctx, i.obj, i.key, i.fn); err != nil {
			return err
		}
	}
	return nil
}

// resourceIDPattern is the shape of a user-assigned identity's ARM ID.
var resourceIDPattern = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+$`)

// normalize lower-cases an ARM ID or client ID for comparison.
func normalize(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
