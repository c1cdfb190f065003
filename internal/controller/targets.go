package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

const (
	// OwnedAnnotation marks an AzureAssignedIdentity whose identity the
	// controller itself added to the VM or scale set (it was not there
	// before). Only such identities are ever removed.
	OwnedAnnotation = "aadpodidentity.keyward.dev/assigned-by-controller"

	// ConditionAssigned is the condition type on AzureAssignedIdentity
	// status: True once the identity is usable on the pod's node.
	ConditionAssigned = "Assigned"

	// Condition reasons.
	ReasonAssigned         = "Assigned"
	ReasonPending          = "Pending"
	ReasonAssignmentFailed = "AssignmentFailed"
	ReasonThrottled        = "Throttled"
	ReasonTargetNotFound   = "TargetNotFound"
	ReasonNodeNotFound     = "NodeNotFound"

	// Event reasons (events.k8s.io, on the AzureIdentityBinding).
	EventBindingApplied    = "BindingApplied"
	EventBindingApplyError = "BindingApplyError"
	EventBindingRemoved    = "BindingRemoved"

	requeueShort  = time.Second
	requeueFailed = 30 * time.Second
	writeParallel = 16
)

// targets reconciles one VM or scale set (or, under key "node/NAME", the
// assignments of a node without a usable target).
type targets struct {
	c         client.Client
	arm       ARM
	log       *slog.Logger
	clock     clock.PassiveClock
	metrics   *metrics
	events    recorder.EventRecorder
	immutable map[string]bool // normalized client IDs
	resync    time.Duration

	mu   sync.Mutex
	memo map[string]map[memoKey]time.Time // guarded by mu; by target key
}

// memoKey identifies a write: the assignment and a digest of the state the
// write set. The informer cache lags the API server, so a reconcile often
// sees an assignment as it was before the controller's last write; a write
// of the same state within memoTTL is not sent again (without this every
// reconcile rewrote every pending assignment). After memoTTL the cache is
// trusted again, so a state changed by someone else is repaired.
type memoKey struct {
	uid    types.UID
	digest string
}

// memoTTL bounds how long a write is assumed to be in flight to the cache.
const memoTTL = 30 * time.Second

func (r *targets) setup(mgr ctrl.Manager, workers int) error {
	aaiRelevant := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			// Not on the controller's own writes (status, conditions,
			// annotations), so a failing assignment does not loop.
			o, n := e.ObjectOld.(*aadv1.AzureAssignedIdentity), e.ObjectNew.(*aadv1.AzureAssignedIdentity)
			return (o.DeletionTimestamp == nil) != (n.DeletionTimestamp == nil) || !sameSpec(&o.Spec, &n.Spec) ||
				o.Status.Status != n.Status.Status && n.Status.Status != aadv1.AssignedIDAssigned
		},
	}
	nodeRelevant := predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.(*corev1.Node).Spec.ProviderID != e.ObjectNew.(*corev1.Node).Spec.ProviderID
		},
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("azureassignedidentity-targets").
		Watches(&aadv1.AzureAssignedIdentity{}, handler.EnqueueRequestsFromMapFunc(r.targetOfAssignment), builder.WithPredicates(aaiRelevant)).
		Watches(&corev1.Node{}, oldAndNew(func(_ context.Context, o client.Object) []reconcile.Request {
			return nodeRequests(o.(*corev1.Node))
		}), builder.WithPredicates(nodeRelevant)).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

func nodeRequests(n *corev1.Node) []reconcile.Request {
	reqs := []reconcile.Request{{NamespacedName: types.NamespacedName{Name: nodeKeyPrefix + n.Name}}}
	if t, err := TargetFromProviderID(n.Spec.ProviderID); err == nil {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: t.key()}})
	}
	return reqs
}

func (r *targets) targetOfAssignment(ctx context.Context, o client.Object) []reconcile.Request {
	a := o.(*aadv1.AzureAssignedIdentity)
	node := &corev1.Node{}
	if err := r.c.Get(ctx, types.NamespacedName{Name: a.Spec.NodeName}, node); err == nil {
		if t, err := TargetFromProviderID(node.Spec.ProviderID); err == nil {
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: t.key()}}}
		}
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: nodeKeyPrefix + a.Spec.NodeName}}}
}

// idState is everything known about one user-assigned identity on a
// target.
type idState struct {
	id        string // normalized ARM ID
	live      []*aadv1.AzureAssignedIdentity
	deleting  []*aadv1.AzureAssignedIdentity
	owned     bool // some assignment says the controller added it
	immutable bool
}

// Reconcile implements reconcile.Reconciler for one target.
func (r *targets) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	start := time.Now()
	defer func() {
		r.metrics.cycles.Inc()
		r.metrics.cycleTime.Observe(time.Since(start).Seconds())
	}()
	if name, ok := strings.CutPrefix(req.Name, nodeKeyPrefix); ok {
		return r.reconcileNode(ctx, req, name)
	}
	t, err := targetFromResourceID(req.Name)
	if err != nil {
		return reconcile.Result{}, nil // not a key this controller makes
	}
	var nodes corev1.NodeList
	if lerr := r.c.List(ctx, &nodes, client.MatchingFields{idxNodeTarget: req.Name}); lerr != nil {
		return reconcile.Result{}, lerr
	}
	var all []*aadv1.AzureAssignedIdentity
	for i := range nodes.Items {
		var l aadv1.AzureAssignedIdentityList
		if lerr := r.c.List(ctx, &l, client.MatchingFields{idxAssignedNode: nodes.Items[i].Name}); lerr != nil {
			return reconcile.Result{}, lerr
		}
		for j := range l.Items {
			all = append(all, &l.Items[j])
		}
	}

	w := r.newWriter(req.Name, all)
	ids := map[string]*idState{}
	for _, a := range all {
		ref := a.Spec.AzureIdentityRef
		if ref == nil || ref.Spec.Type != aadv1.UserAssignedMSI || !resourceIDPattern.MatchString(ref.Spec.ResourceID) {
			// Service principals need nothing from ARM.
			if a.DeletionTimestamp != nil {
				w.release(a)
			} else {
				w.assigned(a, false)
			}
			continue
		}
		id := normalize(ref.Spec.ResourceID)
		s := ids[id]
		if s == nil {
			s = &idState{id: id}
			ids[id] = s
		}
		if a.Annotations[OwnedAnnotation] == "true" {
			s.owned = true
		}
		if r.immutable[normalize(ref.Spec.ClientID)] {
			s.immutable = true
		}
		if a.DeletionTimestamp != nil {
			s.deleting = append(s.deleting, a)
		} else {
			s.live = append(s.live, a)
		}
	}
	if len(ids) == 0 {
		return reconcile.Result{}, w.flush(ctx)
	}

	cur, err := r.identities(ctx, t)
	switch {
	case errors.Is(err, ErrTargetNotFound):
		for _, s := range ids {
			for _, a := range s.live {
				w.pending(a, ReasonTargetNotFound, t.ID()+" does not exist")
			}
			for _, a := range s.deleting {
				w.release(a)
			}
		}
		return reconcile.Result{RequeueAfter: r.resync}, w.flush(ctx)
	case err != nil:
		var te *ThrottledError
		if errors.As(err, &te) {
			for _, s := range ids {
				for _, a := range s.live {
					if a.Status.Status != aadv1.AssignedIDAssigned {
						w.pending(a, ReasonThrottled, err.Error())
					}
				}
			}
			return reconcile.Result{RequeueAfter: max(te.Until.Sub(r.clock.Now()), requeueShort)}, w.flush(ctx)
		}
		return reconcile.Result{}, err
	}

	var add, remove []string
	for _, s := range ids {
		switch {
		case len(s.live) > 0 && !cur.UserAssigned[s.id]:
			add = append(add, s.id)
		case len(s.live) == 0 && s.owned && !s.immutable && cur.UserAssigned[s.id]:
			remove = append(remove, s.id)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)

	// Record ownership before adding, so that a crash after the PATCH
	// cannot turn an identity the controller added into one it never
	// removes.
	adding, removing := map[string]bool{}, map[string]bool{}
	for _, id := range remove {
		removing[id] = true
	}
	for _, id := range add {
		adding[id] = true
		for _, a := range ids[id].live {
			w.own(a)
		}
	}
	if err := w.flush(ctx); err != nil {
		return reconcile.Result{}, err
	}

	failed, fatal := r.apply(ctx, t, cur, add, remove)
	after := cur.UserAssigned // apply updated it in place
	retry := fatal != nil || len(failed) > 0
	for _, s := range ids {
		for _, a := range s.live {
			switch {
			case after[s.id]:
				w.assigned(a, s.owned || adding[s.id])
			case failed[s.id] != nil:
				w.failed(a, failed[s.id], adding[s.id] && !s.owned)
			case fatal != nil:
				w.pending(a, ReasonAssignmentFailed, conditionMessage(fatal))
			}
		}
		if len(s.live) == 0 && after[s.id] && s.owned && !s.immutable {
			continue // removal failed: keep the finalizers, retry
		}
		for _, a := range s.deleting {
			if removing[s.id] {
				w.removed(a)
			}
			w.release(a)
		}
	}
	if err := w.flush(ctx); err != nil {
		return reconcile.Result{}, err
	}
	if fatal != nil {
		var te *ThrottledError
		if errors.As(fatal, &te) {
			return reconcile.Result{RequeueAfter: max(te.Until.Sub(r.clock.Now()), requeueShort)}, nil
		}
		r.log.ErrorContext(ctx, "ARM update failed", "target", t.ID(), "err", fatal)
	}
	if retry {
		return reconcile.Result{RequeueAfter: requeueFailed}, nil
	}
	return reconcile.Result{RequeueAfter: r.resync}, nil
}

// reconcileNode handles the assignments of a node that is gone or has no
// Azure providerID: nothing can be assigned, and deleted assignments are
// released without ARM (as MIC does for deleted nodes).
func (r *targets) reconcileNode(ctx context.Context, req reconcile.Request, name string) (reconcile.Result, error) {
	node := &corev1.Node{}
	reason, msg := ReasonNodeNotFound, "node "+name+" not found"
	if err := r.c.Get(ctx, types.NamespacedName{Name: name}, node); err == nil {
		if _, perr := TargetFromProviderID(node.Spec.ProviderID); perr == nil {
			return reconcile.Result{}, nil // the target reconciler owns it
		}
		msg = "node " + name + " has no Azure providerID"
	} else if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	var l aadv1.AzureAssignedIdentityList
	if err := r.c.List(ctx, &l, client.MatchingFields{idxAssignedNode: name}); err != nil {
		return reconcile.Result{}, err
	}
	all := make([]*aadv1.AzureAssignedIdentity, len(l.Items))
	for i := range l.Items {
		all[i] = &l.Items[i]
	}
	w := r.newWriter(req.Name, all)
	for i := range l.Items {
		a := &l.Items[i]
		ref := a.Spec.AzureIdentityRef
		switch {
		case a.DeletionTimestamp != nil:
			w.release(a)
		case ref == nil || ref.Spec.Type != aadv1.UserAssignedMSI:
			w.assigned(a, false)
		default:
			w.pending(a, reason, msg)
		}
	}
	return reconcile.Result{}, w.flush(ctx)
}

func (r *targets) identities(ctx context.Context, t Target) (IdentitySet, error) {
	op := "vm_get"
	if t.ScaleSet {
		op = "vmss_get"
	}
	start := time.Now()
	set, err := r.arm.Identities(ctx, t)
	r.metrics.armOp(op, start, err)
	if err == nil && set.UserAssigned == nil {
		set.UserAssigned = map[string]bool{}
	}
	return set, err
}

// apply adds and removes identities on t in PATCHes of at most
// MaxIdentitiesPerPatch changes. A PATCH that ARM rejects (400/403) is
// split in halves until the identities it rejects are isolated: those are
// returned in failed and every other change is made. fatal is an error
// that stopped all further requests (throttling, server or network
// errors). cur.UserAssigned is updated to what ARM now holds.
func (r *targets) apply(ctx context.Context, t Target, cur IdentitySet, add, remove []string) (failed map[string]error, fatal error) {
	type change struct {
		id  string
		add bool
	}
	var changes []change
	for _, id := range remove {
		changes = append(changes, change{id, false})
	}
	for _, id := range add {
		changes = append(changes, change{id, true})
	}
	failed = map[string]error{}
	op := "vm_update"
	if t.ScaleSet {
		op = "vmss_update"
	}
	var patch func(chunk []change) error
	patch = func(chunk []change) error {
		var a, rm []string
		for _, c := range chunk {
			if c.add {
				a = append(a, c.id)
			} else {
				rm = append(rm, c.id)
			}
		}
		start := time.Now()
		err := r.arm.PatchIdentities(ctx, t, cur, a, rm)
		r.metrics.armOp(op, start, err)
		if err == nil {
			for _, c := range chunk {
				if c.add {
					cur.UserAssigned[c.id] = true
				} else {
					delete(cur.UserAssigned, c.id)
				}
			}
			return nil
		}
		if !rejected(err) {
			return err
		}
		if len(chunk) == 1 {
			failed[chunk[0].id] = err
			return nil
		}
		mid := len(chunk) / 2
		if err := patch(chunk[:mid]); err != nil {
			return err
		}
		return patch(chunk[mid:])
	}
	for start := 0; start < len(changes); start += MaxIdentitiesPerPatch {
		end := min(start+MaxIdentitiesPerPatch, len(changes))
		if err := patch(changes[start:end]); err != nil {
			return failed, err
		}
	}
	return failed, nil
}

// newWriter returns a writer for one reconcile of key, whose assignments
// are all; it drops expired memo entries and those of assignments no
// longer listed.
func (r *targets) newWriter(key string, all []*aadv1.AzureAssignedIdentity) *writer {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.memo == nil {
		r.memo = map[string]map[memoKey]time.Time{}
	}
	present := make(map[types.UID]bool, len(all))
	for _, a := range all {
		present[a.UID] = true
	}
	now := r.clock.Now()
	m := r.memo[key]
	for k, at := range m {
		if !present[k.uid] || now.Sub(at) >= memoTTL {
			delete(m, k)
		}
	}
	if len(m) == 0 {
		delete(r.memo, key)
	}
	return &writer{r: r, key: key}
}

// writer collects assignment writes and performs them in parallel.
type writer struct {
	r   *targets
	key string
	ops []func(ctx context.Context) error
}

func (w *writer) add(op func(ctx context.Context) error) { w.ops = append(w.ops, op) }

// flush runs the collected writes, at most writeParallel at a time, and
// returns their errors joined.
func (w *writer) flush(ctx context.Context) error {
	ops := w.ops
	w.ops = nil
	var g errgroup.Group
	g.SetLimit(writeParallel)
	errs := make([]error, len(ops))
	for i, op := range ops {
		g.Go(func() error {
			if err := op(ctx); err != nil && !apierrors.IsNotFound(err) {
				w.r.metrics.kubeErrors.Inc()
				errs[i] = err
			}
			return nil
		})
	}
	_ = g.Wait()
	return errors.Join(errs...)
}

// already reports whether the same state was written to a within memoTTL.
func (w *writer) already(a *aadv1.AzureAssignedIdentity, digest string) bool {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	at, ok := w.r.memo[w.key][memoKey{a.UID, digest}]
	return ok && w.r.clock.Since(at) < memoTTL
}

func (w *writer) remember(a *aadv1.AzureAssignedIdentity, digest string) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	m := w.r.memo[w.key]
	if m == nil {
		m = map[memoKey]time.Time{}
		w.r.memo[w.key] = m
	}
	m[memoKey{a.UID, digest}] = w.r.clock.Now()
}

// digest summarises what the controller writes to an assignment.
func digest(a *aadv1.AzureAssignedIdentity) string {
	var b strings.Builder
	b.WriteString(a.Status.Status + "|" + a.Annotations[OwnedAnnotation] + "|" + strings.Join(a.Finalizers, ","))
	for _, c := range a.Status.Conditions {
		b.WriteString("|" + c.Type + "=" + string(c.Status) + "/" + c.Reason + "/" + c.Message)
	}
	return b.String()
}

// update patches a with mutate applied, if mutate changed anything and the
// same change was not already sent from this version.
func (w *writer) update(a *aadv1.AzureAssignedIdentity, mutate func(a *aadv1.AzureAssignedIdentity) bool, onDone func()) {
	n := a.DeepCopy()
	if !mutate(n) {
		return
	}
	d := digest(n)
	if w.already(a, d) {
		return
	}
	w.add(func(ctx context.Context) error {
		err := w.r.c.Patch(ctx, n, client.MergeFrom(a))
		if err == nil {
			w.remember(a, d)
			if onDone != nil {
				onDone()
			}
		}
		return err
	})
}

func (w *writer) setCondition(a *aadv1.AzureAssignedIdentity, status metav1.ConditionStatus, reason, msg string) bool {
	return meta.SetStatusCondition(&a.Status.Conditions, metav1.Condition{
		// No ObservedGeneration: without a status subresource every status
		// write bumps the generation, so it would never be current.
		Type: ConditionAssigned, Status: status, Reason: reason, Message: msg,
		LastTransitionTime: metav1.NewTime(w.r.clock.Now()),
	})
}

// own marks a as holding an identity the controller adds.
func (w *writer) own(a *aadv1.AzureAssignedIdentity) {
	w.update(a, func(n *aadv1.AzureAssignedIdentity) bool {
		if n.Annotations[OwnedAnnotation] == "true" {
			return false
		}
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[OwnedAnnotation] = "true"
		return true
	}, nil)
}

// assigned moves a to Assigned (and marks it owned if owned).
func (w *writer) assigned(a *aadv1.AzureAssignedIdentity, owned bool) {
	wasAssigned := a.Status.Status == aadv1.AssignedIDAssigned
	w.update(a, func(n *aadv1.AzureAssignedIdentity) bool {
		changed := false
		if owned && n.Annotations[OwnedAnnotation] != "true" {
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			n.Annotations[OwnedAnnotation] = "true"
			changed = true
		}
		if n.Status.Status != aadv1.AssignedIDAssigned {
			n.Status.Status = aadv1.AssignedIDAssigned
			changed = true
		}
		if n.Status.AvailableReplicas != 1 {
			n.Status.AvailableReplicas = 1
			changed = true
		}
		if w.setCondition(n, metav1.ConditionTrue, ReasonAssigned, "identity assigned to node "+n.Spec.NodeName) {
			changed = true
		}
		return changed
	}, func() {
		if wasAssigned {
			return
		}
		w.r.metrics.additionTime.Observe(w.r.clock.Since(a.CreationTimestamp.Time).Seconds())
		w.event(a, corev1.EventTypeNormal, EventBindingApplied, "Assign",
			"Binding %s applied on node %s for pod %s", bindingName(a), a.Spec.NodeName, a.Name)
	})
}

// pending leaves a in Created with a reason.
func (w *writer) pending(a *aadv1.AzureAssignedIdentity, reason, msg string) {
	w.update(a, func(n *aadv1.AzureAssignedIdentity) bool {
		changed := w.setCondition(n, metav1.ConditionFalse, reason, msg)
		if n.Status.Status != aadv1.AssignedIDCreated && n.Status.Status != aadv1.AssignedIDAssigned {
			n.Status.Status = aadv1.AssignedIDCreated
			changed = true
		}
		return changed
	}, nil)
}

// failed records that ARM refused a's identity. disown drops the owned
// mark own set before the refused PATCH: the controller did not add the
// identity, so it must never remove it (e.g. once an operator assigns it).
func (w *writer) failed(a *aadv1.AzureAssignedIdentity, err error, disown bool) {
	if disown {
		// a is the copy read before own's write; patch from that state.
		a = a.DeepCopy()
		if a.Annotations == nil {
			a.Annotations = map[string]string{}
		}
		a.Annotations[OwnedAnnotation] = "true"
	}
	w.update(a, func(n *aadv1.AzureAssignedIdentity) bool {
		changed := w.setCondition(n, metav1.ConditionFalse, ReasonAssignmentFailed, conditionMessage(err))
		if disown {
			delete(n.Annotations, OwnedAnnotation)
			changed = true
		}
		if n.Status.Status != aadv1.AssignedIDCreated {
			n.Status.Status = aadv1.AssignedIDCreated
			changed = true
		}
		return changed
	}, func() {
		w.event(a, corev1.EventTypeWarning, EventBindingApplyError, "Assign",
			"Applying binding %s on node %s for pod %s failed: %v", bindingName(a), a.Spec.NodeName, a.Name, err)
	})
}

// removed records that a's identity was removed from the target.
func (w *writer) removed(a *aadv1.AzureAssignedIdentity) {
	w.event(a, corev1.EventTypeNormal, EventBindingRemoved, "Unassign",
		"Binding %s removed from node %s for pod %s", bindingName(a), a.Spec.NodeName, a.Name)
}

// release removes the finalizer of a deleted assignment, which lets the
// API server delete it.
func (w *writer) release(a *aadv1.AzureAssignedIdentity) {
	if !controllerutil.ContainsFinalizer(a, aadv1.AssignedIDFinalizer) {
		return
	}
	n := a.DeepCopy()
	controllerutil.RemoveFinalizer(n, aadv1.AssignedIDFinalizer)
	d := digest(n)
	if w.already(a, d) {
		return
	}
	w.add(func(ctx context.Context) error {
		err := w.r.c.Patch(ctx, n, client.MergeFromWithOptions(a, client.MergeFromWithOptimisticLock{}))
		if err == nil {
			w.remember(a, d)
			w.r.metrics.deletions.Inc()
			if a.DeletionTimestamp != nil {
				w.r.metrics.deletionTime.Observe(w.r.clock.Since(a.DeletionTimestamp.Time).Seconds())
			}
		}
		return err
	})
}

func (w *writer) event(a *aadv1.AzureAssignedIdentity, typ, reason, action, note string, args ...any) {
	if w.r.events == nil || a.Spec.AzureBindingRef == nil {
		return
	}
	w.r.events.Eventf(a.Spec.AzureBindingRef, a, typ, reason, action, note, args...)
}

// conditionMessage is a stable description of an ARM error for a status
// condition (the full error, with request IDs, goes to events and logs).
func conditionMessage(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return fmt.Sprintf("ARM refused the assignment: HTTP %d %s", re.StatusCode, re.Code)
	}
	var te *ThrottledError
	if errors.As(err, &te) {
		return te.Error()
	}
	return "ARM request failed"
}

func bindingName(a *aadv1.AzureAssignedIdentity) string {
	if a.Spec.AzureBindingRef == nil {
		return ""
	}
	return a.Spec.AzureBindingRef.Name
}
