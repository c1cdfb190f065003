package agent

import (
	"context"
	"errors"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// Pod is the caller as the agent knows it from its pod source. Everything
// here comes from the source (the Kubernetes API or the local registry),
// never from the request.
type Pod struct {
	Namespace   string
	Name        string
	IP          string
	Labels      map[string]string
	HostNetwork bool
	// Phase is the pod phase ("Pending", "Running", ...).
	Phase string
}

// String returns namespace/name.
func (p *Pod) String() string { return p.Namespace + "/" + p.Name }

// Errors of pod sources.
var (
	// ErrUnknownCaller: no pod on this node has the caller's address.
	ErrUnknownCaller = errors.New("no pod on this node has the caller's address")
	// ErrAmbiguousCaller: several pods share the caller's address (host
	// network pods share the node's).
	ErrAmbiguousCaller = errors.New("several pods share the caller's address")
	// ErrSecretNotFound: the Secret an identity names does not exist.
	ErrSecretNotFound = errors.New("secret not found")
)

// PodSource finds the pod that owns a source address. Implementations are
// safe for concurrent use.
type PodSource interface {
	// PodByIP returns the one running or pending pod with the address, or
	// ErrUnknownCaller / ErrAmbiguousCaller.
	PodByIP(ctx context.Context, ip string) (*Pod, error)
}

// Identity is an identity a pod may use, with its assignment state.
type Identity struct {
	// Name and Namespace of the AzureIdentity.
	Name      string
	Namespace string
	Spec      aadv1.AzureIdentitySpec
	// Namespaced reports the identity's namespaced behaviour annotation.
	Namespaced bool
	// State is "Assigned" when usable, "Created" while the controller is
	// still assigning it to the node.
	State string
}

// IdentitySource lists the identities of a pod. Implementations are safe
// for concurrent use.
type IdentitySource interface {
	// IdentitiesFor returns the pod's identities in every state.
	IdentitiesFor(ctx context.Context, pod *Pod) ([]Identity, error)
	// Excepted reports whether an AzurePodIdentityException lets the pod
	// use the node's own identity through the upstream IMDS.
	Excepted(ctx context.Context, pod *Pod) (bool, error)
}

// SecretSource reads service principal credentials (the Secret an
// AzureIdentity of type 1 or 2 names).
type SecretSource interface {
	// Secret returns the data of the named Secret.
	Secret(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// bindingSelects reports whether binding b selects pod, with upstream's
// semantics (exact match of the aadpodidbinding label) plus the
// label-selector extension (pods of the binding's own namespace only). An
// invalid label selector selects nothing.
func bindingSelects(b *aadv1.AzureIdentityBinding, pod *Pod) bool {
	if b.Spec.Selector != "" && pod.Labels[aadv1.CRDLabelKey] == b.Spec.Selector {
		return true
	}
	if b.Spec.LabelSelector == nil || b.Namespace != pod.Namespace {
		return false
	}
	sel, err := metav1.LabelSelectorAsSelector(b.Spec.LabelSelector)
	if err != nil || sel.Empty() {
		// An empty selector would select every pod of the namespace;
		// require at least one requirement.
		return false
	}
	return sel.Matches(labels.Set(pod.Labels))
}

// identityOf converts an AzureIdentity into the agent's view of it.
func identityOf(id *aadv1.AzureIdentity, state string) Identity {
	var spec aadv1.AzureIdentitySpec
	id.Spec.DeepCopyInto(&spec)
	return Identity{
		Name:       id.Name,
		Namespace:  id.Namespace,
		Spec:       spec,
		Namespaced: strings.EqualFold(id.Annotations[aadv1.BehaviorKey], aadv1.BehaviorNamespaced),
		State:      state,
	}
}

// exceptionMatches reports whether any label of the exception matches the
// pod's (values compared case-insensitively, as upstream).
func exceptionMatches(ex *aadv1.AzurePodIdentityException, pod *Pod) bool {
	if ex.Namespace != pod.Namespace {
		return false
	}
	for k, v := range ex.Spec.PodLabels {
		if pv, ok := pod.Labels[k]; ok && strings.EqualFold(pv, v) {
			return true
		}
	}
	return false
}
