package k8stest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var (
	crdsMu        sync.Mutex
	crdsInstalled bool // guarded by crdsMu; true once the CRDs are established
)

// InstallCRDs creates the CRDs in <repo root>/deploy/crds (once per test
// binary; later calls return at once) and waits until they are
// established.
func (e *Env) InstallCRDs() {
	e.t.Helper()
	crdsMu.Lock()
	defer crdsMu.Unlock()
	if crdsInstalled {
		return
	}
	if err := e.installCRDs(e.Context(), filepath.Join(e.RepoRoot, "deploy", "crds")); err != nil {
		e.t.Fatalf("k8stest: install CRDs: %v", err)
	}
	crdsInstalled = true
}

func (e *Env) installCRDs(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no CRD manifests in %s", dir)
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		if err := e.Client.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s: %w", f, err)
		}
		names = append(names, crd.Name)
	}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := e.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, err
			}
			if !established(crd) {
				return false, nil
			}
		}
		return true, nil
	})
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// NewNamespace creates a namespace with a unique name starting with prefix
// and returns its name. Namespaces are not deleted (nothing would finalize
// them); use unique names instead.
func (e *Env) NewNamespace(prefix string) string {
	e.t.Helper()
	name := prefix + "-" + randomSuffix()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(e.Context(), ns); err != nil {
		e.t.Fatalf("k8stest: create namespace: %v", err)
	}
	return name
}

// UniqueName returns prefix followed by a random suffix, for cluster-scoped
// objects such as nodes that parallel tests create.
func UniqueName(prefix string) string { return prefix + "-" + randomSuffix() }

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// CreateNode creates a Ready node with the given spec.providerID (may be
// "") and deletes it when the test ends.
func (e *Env) CreateNode(name, providerID string) *corev1.Node {
	e.t.Helper()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{ProviderID: providerID},
	}
	ctx := e.Context()
	if err := e.Client.Create(ctx, node); err != nil {
		e.t.Fatalf("k8stest: create node %s: %v", name, err)
	}
	node.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady",
	}}
	if err := e.Client.Status().Update(ctx, node); err != nil {
		e.t.Fatalf("k8stest: node %s status: %v", name, err)
	}
	e.t.Cleanup(func() {
		err := e.Client.Delete(context.WithoutCancel(ctx), node)
		if err != nil && !apierrors.IsNotFound(err) {
			e.t.Errorf("k8stest: delete node %s: %v", name, err)
		}
	})
	return node
}

// Pod describes a pod for CreatePod.
type Pod struct {
	Namespace string
	Name      string
	Labels    map[string]string
	// NodeName is the node the pod is bound to (through pods/binding);
	// "" leaves the pod unscheduled.
	NodeName string
	// IP is written to status.podIP and status.podIPs; "" leaves them
	// empty. Ignored without NodeName.
	IP string
	// HostNetwork sets spec.hostNetwork.
	HostNetwork bool
}

// CreatePod creates a pod, binds it to p.NodeName through the pods/binding
// subresource as a scheduler would, and sets phase Running and the pod IP
// through the status subresource as a kubelet would. The pod is deleted
// (grace period 0) when the test ends. It returns the pod as last written.
func (e *Env) CreatePod(p Pod) *corev1.Pod {
	e.t.Helper()
	ctx := e.Context()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "main", Image: "registry.k8s.io/pause:3.10"}},
			HostNetwork:                   p.HostNetwork,
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
	if err := e.Client.Create(ctx, pod); err != nil {
		e.t.Fatalf("k8stest: create pod %s/%s: %v", p.Namespace, p.Name, err)
	}
	e.t.Cleanup(func() {
		if err := e.deletePod(context.WithoutCancel(ctx), p.Namespace, p.Name); err != nil {
			e.t.Errorf("k8stest: %v", err)
		}
	})
	if p.NodeName == "" {
		return pod
	}
	binding := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: p.NodeName},
	}
	if err := e.Client.SubResource("binding").Create(ctx, pod, binding); err != nil {
		e.t.Fatalf("k8stest: bind pod %s/%s to %s: %v", p.Namespace, p.Name, p.NodeName, err)
	}
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
		e.t.Fatalf("k8stest: get pod: %v", err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.HostIP = "127.0.0.1"
	if p.IP != "" {
		pod.Status.PodIP = p.IP
		pod.Status.PodIPs = []corev1.PodIP{{IP: p.IP}}
	}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if err := e.Client.Status().Update(ctx, pod); err != nil {
		e.t.Fatalf("k8stest: pod %s/%s status: %v", p.Namespace, p.Name, err)
	}
	return pod
}

// SetPodPhase writes status.phase (e.g. corev1.PodSucceeded for a
// completed pod) through the status subresource.
func (e *Env) SetPodPhase(namespace, name string, phase corev1.PodPhase) {
	e.t.Helper()
	ctx := e.Context()
	pod := &corev1.Pod{}
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		e.t.Fatalf("k8stest: get pod %s/%s: %v", namespace, name, err)
	}
	pod.Status.Phase = phase
	if err := e.Client.Status().Update(ctx, pod); err != nil {
		e.t.Fatalf("k8stest: pod %s/%s phase: %v", namespace, name, err)
	}
}

// DeletePod deletes a pod at once (grace period 0, as a kubelet confirms).
// A missing pod is not an error.
func (e *Env) DeletePod(namespace, name string) {
	e.t.Helper()
	if err := e.deletePod(e.Context(), namespace, name); err != nil {
		e.t.Fatalf("k8stest: %v", err)
	}
}

func (e *Env) deletePod(ctx context.Context, namespace, name string) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	err := e.Client.Delete(ctx, pod, client.GracePeriodSeconds(0))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod %s/%s: %w", namespace, name, err)
	}
	return nil
}

// Apply creates every object of a multi-document YAML manifest, as
// `kubectl create -f` would, with strict field validation (unknown or
// duplicate fields are errors, as with kubectl). Objects without a
// namespace get namespace (cluster-scoped kinds ignore it). It returns
// the created objects or the first error.
func (e *Env) Apply(ctx context.Context, namespace string, manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetNamespace() == "" {
			namespaced, err := e.Client.IsObjectNamespaced(u)
			if err != nil {
				return out, err
			}
			if namespaced {
				u.SetNamespace(namespace)
			}
		}
		if err := e.Client.Create(ctx, u, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			return out, fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		out = append(out, u)
	}
}

// ImpersonatingConfig returns a copy of RESTConfig that acts as user with
// groups (the admin may impersonate anyone), for RBAC tests.
func (e *Env) ImpersonatingConfig(user string, groups ...string) *rest.Config {
	c := rest.CopyConfig(e.RESTConfig)
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return c
}
