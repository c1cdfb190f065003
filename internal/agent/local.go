package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"sigs.k8s.io/yaml"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// LocalPod is a pod of the local registry: a local address (e.g.
// 127.0.0.5) standing for a pod, with the pod's namespace, name and labels.
type LocalPod struct {
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	IP          string            `json:"ip"`
	Labels      map[string]string `json:"labels,omitempty"`
	HostNetwork bool              `json:"hostNetwork,omitempty"`
}

// LocalRegistryFile is the file form of a local registry (YAML or JSON).
// Identities, bindings and exceptions use the aadpodidentity.k8s.io/v1
// object shapes (metadata.name and metadata.namespace are required).
// Secrets are deliberately not part of the file: type 1 identities need
// LocalRegistry.SetSecret.
type LocalRegistryFile struct {
	Pods       []LocalPod                        `json:"pods,omitempty"`
	Identities []aadv1.AzureIdentity             `json:"identities,omitempty"`
	Bindings   []aadv1.AzureIdentityBinding      `json:"bindings,omitempty"`
	Exceptions []aadv1.AzurePodIdentityException `json:"exceptions,omitempty"`
}

// LocalRegistry is a PodSource, IdentitySource and SecretSource for hosts
// without Kubernetes and for the demo. Identities work as in managed mode:
// every identity counts as assigned to this host, and a pod gets the
// identities named by the bindings of its own namespace that select it.
// The zero value is not usable; create it with NewLocalRegistry. Safe for
// concurrent use.
type LocalRegistry struct {
	mu         sync.RWMutex
	pods       map[string]LocalPod                        // guarded by mu; by IP
	identities map[string]aadv1.AzureIdentity             // guarded by mu; by namespace/name
	bindings   map[string]aadv1.AzureIdentityBinding      // guarded by mu; by namespace/name
	exceptions map[string]aadv1.AzurePodIdentityException // guarded by mu; by namespace/name
	secrets    map[string]map[string][]byte               // guarded by mu; by namespace/name
}

var (
	_ PodSource      = (*LocalRegistry)(nil)
	_ IdentitySource = (*LocalRegistry)(nil)
	_ SecretSource   = (*LocalRegistry)(nil)
)

// NewLocalRegistry returns a registry holding the contents of f (which may
// be the zero value).
func NewLocalRegistry(f LocalRegistryFile) (*LocalRegistry, error) {
	r := &LocalRegistry{
		pods:       map[string]LocalPod{},
		identities: map[string]aadv1.AzureIdentity{},
		bindings:   map[string]aadv1.AzureIdentityBinding{},
		exceptions: map[string]aadv1.AzurePodIdentityException{},
		secrets:    map[string]map[string][]byte{},
	}
	var errs []error
	for _, p := range f.Pods {
		errs = append(errs, r.AddPod(p))
	}
	for _, id := range f.Identities {
		errs = append(errs, r.AddIdentity(id))
	}
	for _, b := range f.Bindings {
		errs = append(errs, r.AddBinding(b))
	}
	for _, e := range f.Exceptions {
		errs = append(errs, r.AddException(e))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// LoadLocalRegistry reads a registry file (YAML or JSON; unknown fields
// are errors).
func LoadLocalRegistry(path string) (*LocalRegistry, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: local registry: %w", err)
	}
	var f LocalRegistryFile
	if uerr := yaml.UnmarshalStrict(raw, &f); uerr != nil {
		return nil, fmt.Errorf("agent: local registry %s: %w", path, uerr)
	}
	r, err := NewLocalRegistry(f)
	if err != nil {
		return nil, fmt.Errorf("agent: local registry %s: %w", path, err)
	}
	return r, nil
}

// ErrInvalidLocalObject is returned for registry entries that lack a name,
// namespace or valid address, or whose address is taken.
var ErrInvalidLocalObject = errors.New("invalid local registry entry")

func checkMeta(kind, namespace, name string) error {
	if namespace == "" || name == "" {
		return fmt.Errorf("%s %q in namespace %q: namespace and name are required: %w", kind, name, namespace, ErrInvalidLocalObject)
	}
	return nil
}

// AddPod adds a pod, or replaces the pod with the same address if it has
// the same namespace and name. An address held by another pod is an error.
func (r *LocalRegistry) AddPod(p LocalPod) error {
	if err := checkMeta("pod", p.Namespace, p.Name); err != nil {
		return err
	}
	addr, err := netip.ParseAddr(p.IP)
	if err != nil {
		return fmt.Errorf("pod %s/%s: address %q: %w", p.Namespace, p.Name, p.IP, ErrInvalidLocalObject)
	}
	p.IP = addr.Unmap().String()
	p.Labels = cloneLabels(p.Labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.pods[p.IP]; ok && (old.Namespace != p.Namespace || old.Name != p.Name) {
		return fmt.Errorf("pod %s/%s: address %s is already used by %s/%s: %w", p.Namespace, p.Name, p.IP, old.Namespace, old.Name, ErrInvalidLocalObject)
	}
	r.pods[p.IP] = p
	return nil
}

// RemovePod removes the pod with the namespace and name (no error when
// absent).
func (r *LocalRegistry) RemovePod(namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ip, p := range r.pods {
		if p.Namespace == namespace && p.Name == name {
			delete(r.pods, ip)
		}
	}
}

// AddIdentity adds or replaces an AzureIdentity.
func (r *LocalRegistry) AddIdentity(id aadv1.AzureIdentity) error {
	if err := checkMeta("identity", id.Namespace, id.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.identities[id.Namespace+"/"+id.Name] = *id.DeepCopy()
	return nil
}

// AddBinding adds or replaces an AzureIdentityBinding.
func (r *LocalRegistry) AddBinding(b aadv1.AzureIdentityBinding) error {
	if err := checkMeta("binding", b.Namespace, b.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bindings[b.Namespace+"/"+b.Name] = *b.DeepCopy()
	return nil
}

// RemoveBinding removes a binding (no error when absent).
func (r *LocalRegistry) RemoveBinding(namespace, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.bindings, namespace+"/"+name)
}

// AddException adds or replaces an AzurePodIdentityException.
func (r *LocalRegistry) AddException(e aadv1.AzurePodIdentityException) error {
	if err := checkMeta("exception", e.Namespace, e.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exceptions[e.Namespace+"/"+e.Name] = *e.DeepCopy()
	return nil
}

// SetSecret stores the data of a Secret in memory (service principal
// identities read "clientsecret" from it). It is never written to disk.
func (r *LocalRegistry) SetSecret(namespace, name string, data map[string][]byte) {
	cp := make(map[string][]byte, len(data))
	for k, v := range data {
		cp[k] = slices.Clone(v)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets[namespace+"/"+name] = cp
}

// PodByIP returns the pod with the address.
func (r *LocalRegistry) PodByIP(_ context.Context, ip string) (*Pod, error) {
	if a, err := netip.ParseAddr(ip); err == nil {
		ip = a.Unmap().String()
	}
	r.mu.RLock()
	p, ok := r.pods[ip]
	r.mu.RUnlock()
	if !ok {
		return nil, ErrUnknownCaller
	}
	return &Pod{Namespace: p.Namespace, Name: p.Name, IP: p.IP, Labels: cloneLabels(p.Labels), HostNetwork: p.HostNetwork, Phase: "Running"}, nil
}

// IdentitiesFor returns the identities of the pod's namespace named by a
// binding there that selects the pod, each in state Assigned.
func (r *LocalRegistry) IdentitiesFor(_ context.Context, pod *Pod) ([]Identity, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Identity
	seen := map[string]bool{}
	keys := make([]string, 0, len(r.bindings))
	for k := range r.bindings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b := r.bindings[k]
		if b.Namespace != pod.Namespace || !bindingSelects(&b, pod) || seen[b.Spec.AzureIdentity] {
			continue
		}
		id, ok := r.identities[pod.Namespace+"/"+b.Spec.AzureIdentity]
		if !ok {
			continue
		}
		seen[b.Spec.AzureIdentity] = true
		out = append(out, identityOf(&id, aadv1.AssignedIDAssigned))
	}
	return out, nil
}

// Excepted reports whether an exception of the pod's namespace matches it.
func (r *LocalRegistry) Excepted(_ context.Context, pod *Pod) (bool, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.exceptions {
		if exceptionMatches(&e, pod) {
			return true, nil
		}
	}
	return false, nil
}

// Secret returns a copy of a Secret set with SetSecret.
func (r *LocalRegistry) Secret(_ context.Context, namespace, name string) (map[string][]byte, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	data, ok := r.secrets[namespace+"/"+name]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, ErrSecretNotFound)
	}
	cp := make(map[string][]byte, len(data))
	for k, v := range data {
		cp[k] = slices.Clone(v)
	}
	return cp, nil
}

func cloneLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	cp := make(map[string]string, len(m))
	for k, v := range m {
		cp[k] = v
	}
	return cp
}
