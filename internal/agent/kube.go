package agent

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Mode is how the agent learns which identities a pod may use.
type Mode string

// Operation modes, as upstream's --operation-mode.
const (
	// ModeStandard reads the AzureAssignedIdentities the identity
	// controller writes for the pods of this node.
	ModeStandard Mode = "standard"
	// ModeManaged has no controller: identities are assigned to the node
	// by the operator, and the agent matches AzureIdentityBindings and
	// AzureIdentities in the pod's own namespace itself.
	ModeManaged Mode = "managed"
)

// Cache index names (field paths as upstream writes them).
const (
	indexPodIP  = "status.podIPs"
	indexPodKey = "spec.podKey" // AzureAssignedIdentity: podNamespace/pod
)

// KubeConfig configures Kube.
type KubeConfig struct {
	// RESTConfig reaches the API server. Required.
	RESTConfig *rest.Config
	// NodeName is this node's name; only its pods (and in standard mode
	// only AzureAssignedIdentities labelled nodename=NodeName) are
	// watched. Required.
	NodeName string
	// Mode is ModeStandard ("" means standard) or ModeManaged.
	Mode Mode
}

// Kube is the Kubernetes-backed PodSource, IdentitySource, SecretSource and
// Cache: a controller-runtime informer cache (pods of one node indexed by
// address; in standard mode the AzureAssignedIdentities labelled with the
// node; AzureIdentities, AzureIdentityBindings and
// AzurePodIdentityExceptions of all namespaces), plus an uncached client
// for Secrets (read with a GET per request, never
// cached). Start it (or hand it to Config.Cache) before use. Safe for
// concurrent use.
type Kube struct {
	cache  cache.Cache
	direct client.Reader
	mode   Mode
	node   string
}

var (
	_ PodSource      = (*Kube)(nil)
	_ IdentitySource = (*Kube)(nil)
	_ SecretSource   = (*Kube)(nil)
	_ Cache          = (*Kube)(nil)
)

// NewKube builds the sources and registers their informers and indexes;
// nothing is listed until Start.
func NewKube(ctx context.Context, cfg KubeConfig) (*Kube, error) {
	var errs []error
	if cfg.RESTConfig == nil {
		errs = append(errs, errors.New("agent: a Kubernetes REST config is required"))
	}
	if cfg.NodeName == "" {
		errs = append(errs, errors.New("agent: the node name is required (--node or NODE_NAME)"))
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeStandard
	case ModeStandard, ModeManaged:
	default:
		errs = append(errs, fmt.Errorf("agent: unknown operation mode %q (want standard or managed)", cfg.Mode))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := aadv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	byObject := map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Field: fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName)},
	}
	if cfg.Mode == ModeStandard {
		byObject[&aadv1.AzureAssignedIdentity{}] = cache.ByObject{
			Label: labels.SelectorFromSet(labels.Set{aadv1.NodeNameLabel: cfg.NodeName}),
		}
	}
	c, err := cache.New(cfg.RESTConfig, cache.Options{
		Scheme:                      scheme,
		ByObject:                    byObject,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: kube cache: %w", err)
	}
	direct, err := client.New(rest.CopyConfig(cfg.RESTConfig), client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("agent: kube client: %w", err)
	}
	k := &Kube{cache: c, direct: direct, mode: cfg.Mode, node: cfg.NodeName}
	if err := c.IndexField(ctx, &corev1.Pod{}, indexPodIP, podIPs); err != nil {
		return nil, fmt.Errorf("agent: pod IP index: %w", err)
	}
	// Bindings and identities are watched in both modes: in standard mode
	// they tell a pod whose assignment the controller has not written yet
	// (503, retry) from a pod that has no identity at all (403).
	objs := []client.Object{&aadv1.AzurePodIdentityException{}, &aadv1.AzureIdentityBinding{}, &aadv1.AzureIdentity{}}
	if cfg.Mode == ModeStandard {
		if err := c.IndexField(ctx, &aadv1.AzureAssignedIdentity{}, indexPodKey, func(o client.Object) []string {
			aai := o.(*aadv1.AzureAssignedIdentity)
			return []string{aai.Spec.PodNamespace + "/" + aai.Spec.Pod}
		}); err != nil {
			return nil, fmt.Errorf("agent: assigned identity index: %w", err)
		}
	}
	for _, o := range objs {
		if _, err := c.GetInformer(ctx, o); err != nil {
			return nil, fmt.Errorf("agent: informer for %T: %w", o, err)
		}
	}
	return k, nil
}

// podIPs indexes a pod by every address it has.
func podIPs(o client.Object) []string {
	p := o.(*corev1.Pod)
	var ips []string
	if p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	for _, ip := range p.Status.PodIPs {
		if ip.IP != "" && ip.IP != p.Status.PodIP {
			ips = append(ips, ip.IP)
		}
	}
	return ips
}

// Start runs the informers until ctx is done.
func (k *Kube) Start(ctx context.Context) error { return k.cache.Start(ctx) }

// WaitForCacheSync blocks until every informer has synced or ctx is done.
func (k *Kube) WaitForCacheSync(ctx context.Context) bool { return k.cache.WaitForCacheSync(ctx) }

// PodByIP returns the pending or running pod of this node with address ip.
func (k *Kube) PodByIP(ctx context.Context, ip string) (*Pod, error) {
	var list corev1.PodList
	if err := k.cache.List(ctx, &list, client.MatchingFields{indexPodIP: ip}); err != nil {
		return nil, fmt.Errorf("listing pods by IP: %w", err)
	}
	var found []*Pod
	for i := range list.Items {
		p := &list.Items[i]
		if p.Spec.NodeName != k.node || (p.Status.Phase != corev1.PodPending && p.Status.Phase != corev1.PodRunning) {
			continue
		}
		found = append(found, &Pod{
			Namespace: p.Namespace, Name: p.Name, IP: ip, Labels: p.Labels,
			HostNetwork: p.Spec.HostNetwork, Phase: string(p.Status.Phase),
		})
	}
	switch len(found) {
	case 0:
		return nil, ErrUnknownCaller
	case 1:
		return found[0], nil
	default:
		return nil, ErrAmbiguousCaller
	}
}

// IdentitiesFor returns the pod's identities: in standard mode from the
// AzureAssignedIdentities of the pod on this node (their state as the
// controller wrote it), plus, as Created, the identities of bindings that
// select the pod but have no assignment yet; in managed mode from the bindings and identities
// of the pod's namespace (always Assigned: the operator pre-assigns them).
func (k *Kube) IdentitiesFor(ctx context.Context, pod *Pod) ([]Identity, error) {
	if k.mode == ModeManaged {
		return k.managedIdentities(ctx, pod)
	}
	var list aadv1.AzureAssignedIdentityList
	if err := k.cache.List(ctx, &list, client.MatchingFields{indexPodKey: pod.Namespace + "/" + pod.Name}); err != nil {
		return nil, fmt.Errorf("listing assigned identities: %w", err)
	}
	var out []Identity
	have := map[string]bool{}
	for i := range list.Items {
		aai := &list.Items[i]
		ref := aai.Spec.AzureIdentityRef
		if ref == nil || aai.DeletionTimestamp != nil || aai.Spec.PodNamespace != pod.Namespace || aai.Spec.Pod != pod.Name {
			continue
		}
		have[ref.Namespace+"/"+ref.Name] = true
		out = append(out, identityOf(ref, aai.Status.Status))
	}
	// Bindings that select the pod but have no assignment yet: the
	// controller has not caught up. They count as Created (pending).
	var bindings aadv1.AzureIdentityBindingList
	if err := k.cache.List(ctx, &bindings); err != nil {
		return nil, fmt.Errorf("listing bindings: %w", err)
	}
	for i := range bindings.Items {
		b := &bindings.Items[i]
		key := b.Namespace + "/" + b.Spec.AzureIdentity
		if have[key] || !bindingSelects(b, pod) {
			continue
		}
		var id aadv1.AzureIdentity
		err := k.cache.Get(ctx, client.ObjectKey{Namespace: b.Namespace, Name: b.Spec.AzureIdentity}, &id)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading identity %s: %w", key, err)
		}
		have[key] = true
		out = append(out, identityOf(&id, aadv1.AssignedIDCreated))
	}
	return out, nil
}

func (k *Kube) managedIdentities(ctx context.Context, pod *Pod) ([]Identity, error) {
	var bindings aadv1.AzureIdentityBindingList
	if err := k.cache.List(ctx, &bindings, client.InNamespace(pod.Namespace)); err != nil {
		return nil, fmt.Errorf("listing bindings: %w", err)
	}
	var out []Identity
	seen := map[string]bool{}
	for i := range bindings.Items {
		b := &bindings.Items[i]
		if !bindingSelects(b, pod) || seen[b.Spec.AzureIdentity] {
			continue
		}
		var id aadv1.AzureIdentity
		err := k.cache.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: b.Spec.AzureIdentity}, &id)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading identity %s/%s: %w", pod.Namespace, b.Spec.AzureIdentity, err)
		}
		seen[b.Spec.AzureIdentity] = true
		out = append(out, identityOf(&id, aadv1.AssignedIDAssigned))
	}
	return out, nil
}

// Excepted reports whether an AzurePodIdentityException in the pod's
// namespace matches one of its labels.
func (k *Kube) Excepted(ctx context.Context, pod *Pod) (bool, error) {
	var list aadv1.AzurePodIdentityExceptionList
	if err := k.cache.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		return false, fmt.Errorf("listing exceptions: %w", err)
	}
	for i := range list.Items {
		if exceptionMatches(&list.Items[i], pod) {
			return true, nil
		}
	}
	return false, nil
}

// Secret reads a Secret with a live GET (Secrets are never cached).
func (k *Kube) Secret(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	err := k.direct.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrSecretNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}
