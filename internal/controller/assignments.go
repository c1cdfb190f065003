package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// +kubebuilder:rbac:groups="",resources=pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=aadpodidentity.k8s.io,resources=azureidentities;azureidentitybindings,verbs=get;list;watch
// +kubebuilder:rbac:groups=aadpodidentity.k8s.io,resources=azureassignedidentities,verbs=get;list;watch;create;update;patch;delete

// assignments reconciles one pod: it makes the pod's
// AzureAssignedIdentities match the bindings that select it.
type assignments struct {
	c               client.Client
	log             *slog.Logger
	clock           clock.PassiveClock
	metrics         *metrics
	forceNamespaced bool
	aaiNamespace    string // namespace of assignments of non-namespaced identities
}

func (r *assignments) setup(mgr ctrl.Manager, workers int) error {
	podChanged := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, n := e.ObjectOld.(*corev1.Pod), e.ObjectNew.(*corev1.Pod)
			return !equality.Semantic.DeepEqual(o.Labels, n.Labels) || o.Spec.NodeName != n.Spec.NodeName ||
				o.Status.Phase != n.Status.Phase
		},
	}
	aaiGone := predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("azureassignedidentity-assignments").
		For(&corev1.Pod{}, builder.WithPredicates(podChanged)).
		Watches(&aadv1.AzureIdentityBinding{}, oldAndNew(r.podsOfBinding)).
		Watches(&aadv1.AzureIdentity{}, oldAndNew(r.podsOfIdentity)).
		Watches(&aadv1.AzureAssignedIdentity{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			a := o.(*aadv1.AzureAssignedIdentity)
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: a.Spec.PodNamespace, Name: a.Spec.Pod}}}
		}), builder.WithPredicates(aaiGone)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// oldAndNew enqueues the requests fn maps from both the old and the new
// object of an update, so a changed selector also releases the pods it no
// longer selects.
func oldAndNew(fn func(context.Context, client.Object) []reconcile.Request) handler.EventHandler {
	add := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, r := range fn(ctx, o) {
				q.Add(r)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
	}
}

// podsOfBinding maps a binding to the pods it may select.
func (r *assignments) podsOfBinding(ctx context.Context, o client.Object) []reconcile.Request {
	b := o.(*aadv1.AzureIdentityBinding)
	var reqs []reconcile.Request
	if b.Spec.Selector != "" {
		var pods corev1.PodList
		if err := r.c.List(ctx, &pods, client.MatchingFields{idxPodSelector: b.Spec.Selector}); err != nil {
			r.log.ErrorContext(ctx, "list pods of binding", "binding", b.Namespace+"/"+b.Name, "err", err)
		}
		for i := range pods.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
		}
	}
	if b.Spec.LabelSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.LabelSelector)
		if err == nil {
			var pods corev1.PodList
			if err := r.c.List(ctx, &pods, client.InNamespace(b.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
				r.log.ErrorContext(ctx, "list pods of binding", "binding", b.Namespace+"/"+b.Name, "err", err)
			}
			for i := range pods.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
			}
		}
	}
	return reqs
}

// podsOfIdentity maps an identity to the pods of the bindings naming it.
func (r *assignments) podsOfIdentity(ctx context.Context, o client.Object) []reconcile.Request {
	var bindings aadv1.AzureIdentityBindingList
	if err := r.c.List(ctx, &bindings, client.MatchingFields{idxBindingIdentity: o.GetNamespace() + "/" + o.GetName()}); err != nil {
		r.log.ErrorContext(ctx, "list bindings of identity", "identity", o.GetNamespace()+"/"+o.GetName(), "err", err)
		return nil
	}
	var reqs []reconcile.Request
	for i := range bindings.Items {
		reqs = append(reqs, r.podsOfBinding(ctx, &bindings.Items[i])...)
	}
	return reqs
}

// Reconcile implements reconcile.Reconciler for one pod.
func (r *assignments) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := r.c.Get(ctx, req.NamespacedName, pod); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		pod = nil
	}
	desired, err := r.desired(ctx, pod)
	if err != nil {
		return reconcile.Result{}, err
	}
	var existing aadv1.AzureAssignedIdentityList
	if err := r.c.List(ctx, &existing, client.MatchingFields{idxAssignedPod: req.Namespace + "/" + req.Name}); err != nil {
		return reconcile.Result{}, err
	}
	have := map[types.NamespacedName]*aadv1.AzureAssignedIdentity{}
	var errs []error
	for i := range existing.Items {
		a := &existing.Items[i]
		key := client.ObjectKeyFromObject(a)
		have[key] = a
		want, ok := desired[key]
		if a.DeletionTimestamp != nil {
			continue
		}
		if !ok || assignmentChanged(a, want) {
			// Released through the finalizer once the target reconciler
			// has removed the identity from the VM if need be.
			if err := r.c.Delete(ctx, a); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if !sameSpec(&a.Spec, &want.Spec) || a.Labels[aadv1.NodeNameLabel] != want.Labels[aadv1.NodeNameLabel] {
			patch := client.MergeFrom(a.DeepCopy())
			a.Spec = want.Spec
			if a.Labels == nil {
				a.Labels = map[string]string{}
			}
			a.Labels[aadv1.NodeNameLabel] = want.Labels[aadv1.NodeNameLabel]
			if err := r.c.Patch(ctx, a, patch); err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	requeue, collision := false, false
	for key, want := range desired {
		if a, ok := have[key]; ok {
			if a.DeletionTimestamp != nil || assignmentChanged(a, want) {
				// The old object is still being released; its deletion
				// event brings us back.
				requeue = true
			}
			continue
		}
		if err := r.c.Create(ctx, want); err != nil {
			if apierrors.IsAlreadyExists(err) {
				if r.collides(ctx, want) {
					collision = true
				} else {
					requeue = true // the cache has not seen it yet
				}
				continue
			}
			if apierrors.IsInvalid(err) {
				// e.g. a name longer than 253 characters: retrying cannot help.
				r.log.ErrorContext(ctx, "invalid AzureAssignedIdentity", "name", want.Name, "err", err)
				continue
			}
			r.metrics.kubeErrors.Inc()
			errs = append(errs, err)
			continue
		}
		r.metrics.additions.Inc()
	}
	if len(errs) > 0 {
		return reconcile.Result{}, fmt.Errorf("pod %s: %w", req.NamespacedName, errors.Join(errs...))
	}
	if requeue {
		return reconcile.Result{RequeueAfter: requeueShort}, nil
	}
	if collision {
		return reconcile.Result{RequeueAfter: requeueFailed}, nil
	}
	return reconcile.Result{}, nil
}

// collides reports whether an assignment named like want exists for
// another pod: "<pod>-<namespace>-<identity>" is ambiguous (pod "a-b" in
// namespace "c" and pod "a" in namespace "b-c"), as in MIC. The first pod
// keeps it.
func (r *assignments) collides(ctx context.Context, want *aadv1.AzureAssignedIdentity) bool {
	cur := &aadv1.AzureAssignedIdentity{}
	if err := r.c.Get(ctx, client.ObjectKeyFromObject(want), cur); err != nil {
		return false
	}
	if cur.Spec.Pod == want.Spec.Pod && cur.Spec.PodNamespace == want.Spec.PodNamespace {
		return false
	}
	r.log.WarnContext(ctx, "AzureAssignedIdentity name already used by another pod; not assigned",
		"name", want.Name, "pod", want.Spec.PodNamespace+"/"+want.Spec.Pod, "holder", cur.Spec.PodNamespace+"/"+cur.Spec.Pod)
	return true
}

// assignmentChanged reports a change that needs a new assignment: another
// node, or another identity behind the same name.
func assignmentChanged(have, want *aadv1.AzureAssignedIdentity) bool {
	if have.Spec.NodeName != want.Spec.NodeName {
		return true
	}
	h, w := have.Spec.AzureIdentityRef, want.Spec.AzureIdentityRef
	if h == nil || w == nil {
		return h != w
	}
	return h.Spec.Type != w.Spec.Type || normalize(h.Spec.ResourceID) != normalize(w.Spec.ResourceID) ||
		normalize(h.Spec.ClientID) != normalize(w.Spec.ClientID) || h.UID != w.UID
}

// sameSpec compares what the controller writes into an assignment's spec,
// ignoring fields the API server may normalise in the embedded copies.
func sameSpec(a, b *aadv1.AzureAssignedIdentitySpec) bool {
	if a.Pod != b.Pod || a.PodNamespace != b.PodNamespace || a.NodeName != b.NodeName {
		return false
	}
	sameMeta := func(x, y *metav1.ObjectMeta) bool {
		return x.Name == y.Name && x.Namespace == y.Namespace && x.UID == y.UID && x.ResourceVersion == y.ResourceVersion &&
			equality.Semantic.DeepEqual(x.Annotations, y.Annotations)
	}
	ai, bi, ab, bb := a.AzureIdentityRef, b.AzureIdentityRef, a.AzureBindingRef, b.AzureBindingRef
	if ai == nil || bi == nil || ab == nil || bb == nil {
		return ai == nil && bi == nil && ab == nil && bb == nil
	}
	return sameMeta(&ai.ObjectMeta, &bi.ObjectMeta) && equality.Semantic.DeepEqual(ai.Spec, bi.Spec) &&
		sameMeta(&ab.ObjectMeta, &bb.ObjectMeta) && equality.Semantic.DeepEqual(ab.Spec, bb.Spec)
}

// desired returns the AzureAssignedIdentities the pod should have, by
// key. A nil pod (deleted) has none; so has a pod that is not scheduled
// or has completed or failed.
func (r *assignments) desired(ctx context.Context, pod *corev1.Pod) (map[types.NamespacedName]*aadv1.AzureAssignedIdentity, error) {
	out := map[types.NamespacedName]*aadv1.AzureAssignedIdentity{}
	if pod == nil || pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return out, nil
	}
	var bindings []aadv1.AzureIdentityBinding
	if v := pod.Labels[aadv1.CRDLabelKey]; v != "" {
		var l aadv1.AzureIdentityBindingList
		if err := r.c.List(ctx, &l, client.MatchingFields{idxBindingSelector: v}); err != nil {
			return nil, err
		}
		bindings = append(bindings, l.Items...)
	}
	var ls aadv1.AzureIdentityBindingList
	if err := r.c.List(ctx, &ls, client.InNamespace(pod.Namespace), client.MatchingFields{idxBindingLabelSelector: "true"}); err != nil {
		return nil, err
	}
	for _, b := range ls.Items {
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.LabelSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue // an empty selector would select every pod: refused
		}
		if b.Spec.Selector != "" && b.Spec.Selector == pod.Labels[aadv1.CRDLabelKey] {
			continue // already matched by its selector
		}
		bindings = append(bindings, b)
	}
	sort.Slice(bindings, func(i, j int) bool {
		if bindings[i].Namespace != bindings[j].Namespace {
			return bindings[i].Namespace < bindings[j].Namespace
		}
		return bindings[i].Name < bindings[j].Name
	})
	for i := range bindings {
		b := &bindings[i]
		id := &aadv1.AzureIdentity{}
		if err := r.c.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.AzureIdentity}, id); err != nil {
			if apierrors.IsNotFound(err) {
				continue // identity deleted or not created yet
			}
			return nil, err
		}
		namespaced := r.forceNamespaced || id.Annotations[aadv1.BehaviorKey] == aadv1.BehaviorNamespaced
		if namespaced && (id.Namespace != b.Namespace || b.Namespace != pod.Namespace) {
			continue
		}
		if id.Spec.Type == aadv1.UserAssignedMSI && !resourceIDPattern.MatchString(id.Spec.ResourceID) {
			r.log.WarnContext(ctx, "AzureIdentity has an invalid resourceID; ignored", "identity", id.Namespace+"/"+id.Name)
			continue
		}
		a := r.build(pod, b, id, namespaced)
		key := client.ObjectKeyFromObject(a)
		if _, dup := out[key]; dup {
			r.log.WarnContext(ctx, "two bindings give the pod identities of the same name; keeping the first",
				"pod", pod.Namespace+"/"+pod.Name, "assignedIdentity", a.Name, "binding", b.Namespace+"/"+b.Name)
			continue
		}
		out[key] = a
	}
	return out, nil
}

// build makes the AzureAssignedIdentity for pod, binding and identity, as
// MIC names and labels it.
func (r *assignments) build(pod *corev1.Pod, b *aadv1.AzureIdentityBinding, id *aadv1.AzureIdentity, namespaced bool) *aadv1.AzureAssignedIdentity {
	ns := r.aaiNamespace
	if namespaced {
		ns = id.Namespace
	}
	idRef := &aadv1.AzureIdentity{
		TypeMeta:   metav1.TypeMeta{APIVersion: aadv1.SchemeGroupVersion.String(), Kind: "AzureIdentity"},
		ObjectMeta: refMeta(&id.ObjectMeta),
		Spec:       *id.Spec.DeepCopy(),
	}
	bRef := &aadv1.AzureIdentityBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: aadv1.SchemeGroupVersion.String(), Kind: "AzureIdentityBinding"},
		ObjectMeta: refMeta(&b.ObjectMeta),
		Spec:       *b.Spec.DeepCopy(),
	}
	return &aadv1.AzureAssignedIdentity{
		ObjectMeta: metav1.ObjectMeta{
			Name:       AssignedIdentityName(pod.Name, pod.Namespace, id.Name),
			Namespace:  ns,
			Labels:     map[string]string{aadv1.NodeNameLabel: pod.Spec.NodeName},
			Finalizers: []string{aadv1.AssignedIDFinalizer},
		},
		Spec: aadv1.AzureAssignedIdentitySpec{
			AzureIdentityRef: idRef,
			AzureBindingRef:  bRef,
			Pod:              pod.Name,
			PodNamespace:     pod.Namespace,
			NodeName:         pod.Spec.NodeName,
		},
		Status: aadv1.AzureAssignedIdentityStatus{Status: aadv1.AssignedIDCreated, AvailableReplicas: 1},
	}
}

// refMeta is the metadata kept in an embedded copy.
func refMeta(m *metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: copyMap(m.Labels), Annotations: copyMap(m.Annotations),
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// AssignedIdentityName is the AzureAssignedIdentity name MIC uses:
// "<pod>-<podNamespace>-<identity>".
func AssignedIdentityName(pod, podNamespace, identity string) string {
	return strings.Join([]string{pod, podNamespace, identity}, "-")
}
