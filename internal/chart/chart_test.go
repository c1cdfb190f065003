package chart_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/internal/chart"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

// tutorialValues is the tutorial's vault-values.yaml (its indentation,
// lost in the published page, restored as the Vault chart defines it).
const tutorialValues = `server:
  standalone:
    enabled: true
    config: |
      ui = true
      listener "tcp" {
        tls_disable = 1
        address = "[::]:8200"
        cluster_address = "[::]:8201"
      }
      storage "file" {
        path = "/vault/data"
      }
  extraLabels:
    aadpodidbinding: "vault"
  dataStorage:
    enabled: true
    size: 10Gi
    storageClass: null
    accessMode: ReadWriteOnce
ui:
  enabled: true
  serviceType: LoadBalancer
`

// everythingValues switches on every optional part of the chart.
const everythingValues = `image:
  repository: registry.example/keyward
  tag: "9.9.9"
imagePullSecrets: [{name: regcred}]
server:
  extraLabels: {aadpodidbinding: vault, team: platform}
  annotations: {example.com/a: b}
  extraEnvironmentVars:
    AZURE_POD_IDENTITY_AUTHORITY_HOST: http://169.254.169.254
    KEYWARD_AZURE_CA_FILE: /keyward/ca/ca.pem
  logLevel: debug
  resources: {requests: {cpu: 250m, memory: 256Mi}}
  tolerations: [{key: dedicated, operator: Equal, value: secrets, effect: NoSchedule}]
  nodeSelector: {kubernetes.io/os: linux}
  priorityClassName: ""
  dataStorage: {enabled: false}
  service: {type: NodePort, annotations: {example.com/svc: x}}
  livenessProbe: {enabled: true}
  serviceAccount: {create: true, name: keyward-server, annotations: {example.com/sa: y}}
ui:
  enabled: true
  serviceType: LoadBalancer
  loadBalancerSourceRanges: [10.0.0.0/8]
identity:
  namespaced: true
  controller:
    replicas: 3
    cloudConfigSecret: azure-cloud-config
    immutableIdentities: [11111111-2222-3333-4444-555555555555, 66666666-7777-8888-9999-000000000000]
    extraArgs: [--log-level=debug]
    extraEnvironmentVars: {FOO: bar}
  agent:
    servicePrincipalSecrets: true
    allowHostNetwork: true
    intercept: false
    extraArgs: [--log-level=debug]
`

func parseValues(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	var v map[string]any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("values: %v", err)
	}
	return v
}

func chartDir(t *testing.T) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "deploy", "helm", "keyward")
}

// repoRoot walks up from the package directory to the module root.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

func render(t *testing.T, name, namespace, values string) *chart.Rendered {
	t.Helper()
	r, err := chart.Render(chartDir(t), chart.Release{Name: name, Namespace: namespace, Values: parseValues(t, values)})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// find returns the rendered object of kind and name, converted to out.
func find(t *testing.T, r *chart.Rendered, kind, name string, out any) {
	t.Helper()
	for _, o := range r.Objects {
		if o.GetKind() == kind && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("%s %s: %v", kind, name, err)
			}
			return
		}
	}
	t.Fatalf("no %s %s rendered; have %v", kind, name, objectNames(r))
}

func objectNames(r *chart.Rendered) []string {
	var names []string
	for _, o := range r.Objects {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	sort.Strings(names)
	return names
}

// TestCRDsMatchDeploy fails when the chart's copy of the CRDs differs from
// deploy/crds (Helm only installs files inside the chart).
func TestCRDsMatchDeploy(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	src := filepath.Join(root, "deploy", "crds")
	dst := filepath.Join(chartDir(t), "crds")
	list := func(dir string) []string {
		m, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range m {
			names = append(names, filepath.Base(f))
		}
		return names
	}
	want, got := list(src), list(dst)
	if len(want) == 0 {
		t.Fatalf("no CRDs in %s", src)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("CRD files of the chart differ from deploy/crds (-deploy/crds +chart); run: cp deploy/crds/*.yaml deploy/helm/keyward/crds/\n%s", diff)
	}
	for _, name := range want {
		a, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between deploy/crds and the chart; run: cp deploy/crds/*.yaml deploy/helm/keyward/crds/", name)
		}
	}
}

// TestRenderDryRun renders the chart with several value sets and creates
// every object with server-side dry-run (and strict field validation) on a
// real kube-apiserver, after installing the chart's CRDs for real.
func TestRenderDryRun(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	ctx := env.Context()
	installChartCRDs(t, env, render(t, "crds", "default", ""))

	tests := []struct {
		name, release, values string
		wantKinds             []string
	}{
		{name: "defaults", release: "keyward", wantKinds: []string{
			"ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
			"Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "Service",
			"ServiceAccount", "ServiceAccount", "ServiceAccount", "StatefulSet",
		}},
		{name: "tutorial vault-values.yaml", release: "vault", values: tutorialValues, wantKinds: []string{
			"ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
			"Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "Service", "Service",
			"ServiceAccount", "ServiceAccount", "ServiceAccount", "StatefulSet",
		}},
		{name: "everything on", release: "all", values: everythingValues, wantKinds: []string{
			"ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
			"Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "Service", "Service",
			"ServiceAccount", "ServiceAccount", "ServiceAccount", "StatefulSet",
		}},
		{name: "server only", release: "srv", values: "identity: {enabled: false}\n", wantKinds: []string{
			"ConfigMap", "Service", "Service", "ServiceAccount", "StatefulSet",
		}},
		{name: "identity only", release: "pi", values: "server: {enabled: false}\nidentity: {controller: {replicas: 1}}\n", wantKinds: []string{
			"ClusterRole", "ClusterRole", "ClusterRoleBinding", "ClusterRoleBinding", "DaemonSet",
			"Deployment", "Role", "RoleBinding", "ServiceAccount", "ServiceAccount",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := env.NewNamespace("chart")
			r := render(t, tc.release, ns, tc.values)
			var kinds []string
			for _, o := range r.Objects {
				kinds = append(kinds, o.GetKind())
			}
			sort.Strings(kinds)
			if diff := cmp.Diff(tc.wantKinds, kinds); diff != "" {
				t.Errorf("rendered kinds (-want +got):\n%s\nobjects: %v", diff, objectNames(r))
			}
			for _, o := range r.Objects {
				if o.GetNamespace() == "" {
					namespaced, err := env.Client.IsObjectNamespaced(o)
					if err != nil {
						t.Fatalf("%s/%s: %v", o.GetKind(), o.GetName(), err)
					}
					if namespaced {
						t.Errorf("%s/%s is namespaced but has no metadata.namespace", o.GetKind(), o.GetName())
						o.SetNamespace(ns)
					}
				}
				obj := o.DeepCopy()
				if err := env.Client.Create(ctx, obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
					t.Errorf("dry-run create %s/%s: %v", o.GetKind(), o.GetName(), err)
					continue
				}
				// Dry-run must not have persisted anything.
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				err := env.Client.Get(ctx, client.ObjectKeyFromObject(o), got)
				if !apierrors.IsNotFound(err) {
					t.Errorf("%s/%s exists after a dry run (err %v)", o.GetKind(), o.GetName(), err)
				}
			}
		})
	}
}

// installChartCRDs creates the chart's CRDs (as `helm install` does
// before the templates) and waits until they are established.
func installChartCRDs(t *testing.T, env *k8stest.Env, r *chart.Rendered) {
	t.Helper()
	ctx := env.Context()
	if len(r.CRDs) != 4 {
		t.Fatalf("chart has %d CRDs, want 4", len(r.CRDs))
	}
	var names []string
	for _, u := range r.CRDs {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, crd, true); err != nil {
			t.Fatalf("CRD %s: %v", u.GetName(), err)
		}
		if err := env.Client.Create(ctx, crd); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", crd.Name, err)
		}
		names = append(names, crd.Name)
	}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range names {
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
				return false, err
			}
			ok := false
			for _, c := range crd.Status.Conditions {
				ok = ok || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
			}
			if !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("CRDs not established: %v", err)
	}
	// Discovery of the client's REST mapper may predate the CRDs.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("aadpodidentity.k8s.io/v1")
		u.SetKind("AzureAssignedIdentity")
		_, nerr := env.Client.IsObjectNamespaced(u)
		return nerr == nil, nil
	})
	if err != nil {
		t.Fatalf("CRD kinds not discoverable: %v", err)
	}
}

// TestTutorialValues checks that the tutorial's values produce what the
// tutorial relies on.
func TestTutorialValues(t *testing.T) {
	t.Parallel()
	r := render(t, "vault", "default", tutorialValues)

	var sts appsv1.StatefulSet
	find(t, r, "StatefulSet", "vault", &sts)
	if got := sts.Spec.Template.Labels["aadpodidbinding"]; got != "vault" {
		t.Errorf("server pod label aadpodidbinding = %q, want vault", got)
	}
	if _, ok := sts.Spec.Selector.MatchLabels["aadpodidbinding"]; ok {
		t.Error("extraLabels must not be part of the immutable selector")
	}
	c := sts.Spec.Template.Spec.Containers[0]
	if diff := cmp.Diff([]string{"keyward", "server", "-config=/keyward/config/extraconfig-from-values.hcl"}, c.Command); diff != "" {
		t.Errorf("server command (-want +got):\n%s", diff)
	}
	if c.Image != "keyward/keyward:0.1.0" {
		t.Errorf("image = %q, want keyward/keyward:0.1.0 (the chart's appVersion)", c.Image)
	}
	var mounts []string
	for _, m := range c.VolumeMounts {
		mounts = append(mounts, m.Name+"="+m.MountPath)
	}
	if diff := cmp.Diff([]string{"config=/keyward/config", "home=/home/keyward", "data=/vault/data"}, mounts); diff != "" {
		t.Errorf("server mounts (-want +got):\n%s", diff)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("volumeClaimTemplates = %d, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	pvc := sts.Spec.VolumeClaimTemplates[0]
	if pvc.Name != "data" || pvc.Spec.StorageClassName != nil ||
		!slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) ||
		!pvc.Spec.Resources.Requests.Storage().Equal(resource.MustParse("10Gi")) {
		t.Errorf("data volume claim = %+v, want data, 10Gi, ReadWriteOnce, default storage class", pvc.Spec)
	}
	if sts.Spec.Template.Spec.AutomountServiceAccountToken == nil || *sts.Spec.Template.Spec.AutomountServiceAccountToken {
		t.Error("the server must not mount a service account token")
	}

	var cm corev1.ConfigMap
	find(t, r, "ConfigMap", "vault-config", &cm)
	wantHCL := strings.TrimSuffix(parseValues(t, tutorialValues)["server"].(map[string]any)["standalone"].(map[string]any)["config"].(string), "\n")
	if diff := cmp.Diff(wantHCL, cm.Data["extraconfig-from-values.hcl"]); diff != "" {
		t.Errorf("server config (-want +got):\n%s", diff)
	}

	var ui corev1.Service
	find(t, r, "Service", "vault-ui", &ui)
	if ui.Spec.Type != corev1.ServiceTypeLoadBalancer || len(ui.Spec.Ports) != 1 || ui.Spec.Ports[0].Port != 8200 {
		t.Errorf("vault-ui service = %+v, want LoadBalancer on 8200", ui.Spec)
	}
	if diff := cmp.Diff(sts.Spec.Selector.MatchLabels, ui.Spec.Selector); diff != "" {
		t.Errorf("vault-ui selects other pods than the server's (-server +ui):\n%s", diff)
	}
}

// TestDefaultServerConfigIsTutorials checks the default HCL is the
// tutorial's configuration.
func TestDefaultServerConfigIsTutorials(t *testing.T) {
	t.Parallel()
	r := render(t, "keyward", "default", "")
	var cm corev1.ConfigMap
	find(t, r, "ConfigMap", "keyward-config", &cm)
	hcl := cm.Data["extraconfig-from-values.hcl"]
	for _, want := range []string{`ui = true`, `tls_disable = 1`, `address = "[::]:8200"`, `cluster_address = "[::]:8201"`, `storage "file"`, `path = "/vault/data"`} {
		if !strings.Contains(hcl, want) {
			t.Errorf("default config lacks %q:\n%s", want, hcl)
		}
	}
	var ss appsv1.StatefulSet
	find(t, r, "StatefulSet", "keyward", &ss)
	for _, o := range r.Objects {
		if o.GetKind() == "Service" && strings.HasSuffix(o.GetName(), "-ui") {
			t.Errorf("ui service rendered with ui.enabled false: %s", o.GetName())
		}
	}
}

// TestIdentityWorkloads checks the controller and agent pod specs.
func TestIdentityWorkloads(t *testing.T) {
	t.Parallel()
	r := render(t, "keyward", "pod-identity", "")

	var ds appsv1.DaemonSet
	find(t, r, "DaemonSet", "keyward-identity-agent", &ds)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("agent must use the host network")
	}
	if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("agent dnsPolicy = %s", spec.DNSPolicy)
	}
	ac := spec.Containers[0]
	if ac.SecurityContext == nil || ac.SecurityContext.Capabilities == nil {
		t.Fatal("agent has no capabilities set")
	}
	if diff := cmp.Diff([]corev1.Capability{"NET_ADMIN", "NET_RAW"}, ac.SecurityContext.Capabilities.Add); diff != "" {
		t.Errorf("agent capabilities added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.Capability{"ALL"}, ac.SecurityContext.Capabilities.Drop); diff != "" {
		t.Errorf("agent capabilities dropped (-want +got):\n%s", diff)
	}
	if ac.SecurityContext.Privileged != nil && *ac.SecurityContext.Privileged {
		t.Error("agent must not be privileged")
	}
	envFrom := map[string]string{}
	for _, e := range ac.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			envFrom[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if envFrom["NODE_NAME"] != "spec.nodeName" {
		t.Errorf("agent NODE_NAME from %q, want spec.nodeName", envFrom["NODE_NAME"])
	}
	for _, want := range []string{"--node=$(NODE_NAME)", "--intercept", "--upstream=http://169.254.169.254"} {
		if !slices.Contains(ac.Command, want) {
			t.Errorf("agent command %v lacks %s", ac.Command, want)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": ac.LivenessProbe, "readiness": ac.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
			t.Errorf("agent %s probe = %+v, want GET /healthz", name, p)
		}
	}

	var dep appsv1.Deployment
	find(t, r, "Deployment", "keyward-identity-controller", &dep)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("controller replicas = %v, want 2", dep.Spec.Replicas)
	}
	cc := dep.Spec.Template.Spec.Containers[0]
	for _, want := range []string{"--leader-election-namespace=$(POD_NAMESPACE)", "--leader-election-name=keyward-identity-controller"} {
		if !slices.Contains(cc.Command, want) {
			t.Errorf("controller command %v lacks %s", cc.Command, want)
		}
	}
	if dep.Spec.Template.Spec.HostNetwork {
		t.Error("controller must not use the host network")
	}
	if cc.SecurityContext == nil || cc.SecurityContext.Capabilities == nil || !slices.Equal(cc.SecurityContext.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cc.SecurityContext.Capabilities.Add) != 0 {
		t.Errorf("controller capabilities = %+v, want all dropped and none added", cc.SecurityContext)
	}
	for name, p := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"liveness": {cc.LivenessProbe, "/healthz"}, "readiness": {cc.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			t.Errorf("controller %s probe = %+v, want GET %s", name, p.probe, p.path)
		}
	}
	// The node's azure.json (root-only on AKS) needs root; a Secret does not.
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 {
		t.Errorf("controller with the node's azure.json: securityContext %+v, want runAsUser 0", sc)
	}
	r = render(t, "keyward", "pod-identity", "identity: {controller: {cloudConfigSecret: azure-config}}\n")
	find(t, r, "Deployment", "keyward-identity-controller", &dep)
	if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("controller with a cloud config Secret: securityContext %+v, want non-root", sc)
	}
	if v := dep.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != "azure-config" {
		t.Errorf("controller volumes = %+v, want the Secret azure-config", v)
	}
}

// TestRenderErrors covers the chart's refusals.
func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rel     chart.Release
		wantErr string
		wantIs  error
	}{
		{name: "no release name", rel: chart.Release{Namespace: "default"}, wantIs: chart.ErrRelease},
		{name: "no namespace", rel: chart.Release{Name: "x"}, wantIs: chart.ErrRelease},
		{name: "HA mode", rel: chart.Release{Name: "x", Namespace: "default", Values: parseValues(t, "server: {standalone: {enabled: false}}\n")},
			wantErr: "server.standalone.enabled must be true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := chart.Render(chartDir(t), tc.rel)
			if err == nil {
				t.Fatal("render succeeded, want an error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v, want %v", err, tc.wantIs)
			}
			// The chart's own fail message is the only way Helm reports it.
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to mention %q", err, tc.wantErr)
			}
		})
	}
	if _, err := chart.Render(filepath.Join(t.TempDir(), "missing"), chart.Release{Name: "x", Namespace: "y"}); err == nil {
		t.Error("rendering a missing chart succeeded")
	}
	if _, err := chart.Decode([]byte("foo: bar\n")); err == nil {
		t.Error("decoding an object without kind succeeded")
	}
}

// writeVerbs are the verbs that change state.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "*"}

// TestRBACStatic inspects the rendered roles: no wildcards anywhere, the
// agent never writes, Secrets only on request.
func TestRBACStatic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, values string
		agentSecrets bool
	}{
		{name: "defaults"},
		{name: "service principal secrets", values: "identity: {agent: {servicePrincipalSecrets: true}}\n", agentSecrets: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := render(t, "keyward", "pod-identity", tc.values)
			var roles int
			for _, o := range r.Objects {
				if o.GetKind() != "ClusterRole" && o.GetKind() != "Role" {
					continue
				}
				roles++
				var role rbacv1.ClusterRole // same rules shape as Role
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
					t.Fatal(err)
				}
				for _, rule := range role.Rules {
					for _, field := range [][]string{rule.Verbs, rule.Resources, rule.APIGroups, rule.ResourceNames, rule.NonResourceURLs} {
						if slices.Contains(field, "*") {
							t.Errorf("%s %s has a wildcard: %+v", o.GetKind(), o.GetName(), rule)
						}
					}
					if len(rule.NonResourceURLs) > 0 {
						t.Errorf("%s %s grants non-resource URLs: %+v", o.GetKind(), o.GetName(), rule)
					}
					core := slices.Contains(rule.APIGroups, "")
					if o.GetName() == "keyward-identity-agent" {
						for _, v := range rule.Verbs {
							if slices.Contains(writeVerbs, v) {
								t.Errorf("agent may %s %v", v, rule.Resources)
							}
						}
					}
					if o.GetName() == "keyward-identity-controller" && core {
						for _, v := range rule.Verbs {
							if slices.Contains(writeVerbs, v) && !slices.Equal(rule.Resources, []string{"events"}) {
								t.Errorf("controller may %s core %v", v, rule.Resources)
							}
						}
					}
					if slices.Contains(rule.Resources, "secrets") {
						if o.GetName() != "keyward-identity-agent" || !tc.agentSecrets || !slices.Equal(rule.Verbs, []string{"get"}) {
							t.Errorf("%s %s grants %v on secrets", o.GetKind(), o.GetName(), rule.Verbs)
						}
					}
				}
			}
			if roles != 3 {
				t.Errorf("rendered %d roles, want 3 (controller, controller leader election, agent)", roles)
			}
		})
	}
}

// TestRBACEffective installs the chart's RBAC for real and asks the API
// server what each service account may do (SubjectAccessReview).
func TestRBACEffective(t *testing.T) {
	t.Parallel()
	env := k8stest.Start(t)
	ctx := env.Context()
	ns := env.NewNamespace("rbac")
	other := env.NewNamespace("rbac-other")
	release := k8stest.UniqueName("rbac")
	r := render(t, release, ns, "")
	for _, o := range r.Objects {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount":
		default:
			continue
		}
		obj := o.DeepCopy()
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatalf("create %s/%s: %v", o.GetKind(), o.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(context.WithoutCancel(ctx), obj); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("delete %s/%s: %v", obj.GetKind(), obj.GetName(), err)
			}
		})
	}
	controller := "system:serviceaccount:" + ns + ":" + release + "-identity-controller"
	agentSA := "system:serviceaccount:" + ns + ":" + release + "-identity-agent"
	server := "system:serviceaccount:" + ns + ":" + release
	const aad = "aadpodidentity.k8s.io"
	tests := []accessCase{
		// controller
		{user: controller, verb: "list", res: "pods", want: true},
		{user: controller, verb: "watch", res: "nodes", want: true},
		{user: controller, verb: "update", res: "pods"},
		{user: controller, verb: "patch", res: "nodes"},
		{user: controller, verb: "get", res: "secrets", ns: other},
		{user: controller, verb: "list", group: aad, res: "azureidentitybindings", want: true},
		{user: controller, verb: "update", group: aad, res: "azureidentities"},
		{user: controller, verb: "create", group: aad, res: "azureassignedidentities", ns: other, want: true},
		{user: controller, verb: "delete", group: aad, res: "azureassignedidentities", ns: other, want: true},
		{user: controller, verb: "update", group: aad, res: "azurepodidentityexceptions"},
		{user: controller, verb: "create", res: "events", ns: other, want: true},
		{user: controller, verb: "create", group: "coordination.k8s.io", res: "leases", ns: ns, want: true},
		{user: controller, verb: "update", group: "coordination.k8s.io", res: "leases", ns: ns, name: "keyward-identity-controller", want: true},
		{user: controller, verb: "update", group: "coordination.k8s.io", res: "leases", ns: ns, name: "someone-else"},
		{user: controller, verb: "create", group: "coordination.k8s.io", res: "leases", ns: other},
		{user: controller, verb: "get", group: "apiextensions.k8s.io", res: "customresourcedefinitions"},
		{user: controller, verb: "get", res: "configmaps", ns: ns},
		// agent
		{user: agentSA, verb: "list", res: "pods", want: true},
		{user: agentSA, verb: "watch", res: "pods", want: true},
		{user: agentSA, verb: "create", res: "pods", ns: other},
		{user: agentSA, verb: "list", group: aad, res: "azureassignedidentities", want: true},
		{user: agentSA, verb: "watch", group: aad, res: "azurepodidentityexceptions", want: true},
		{user: agentSA, verb: "update", group: aad, res: "azureassignedidentities", ns: other},
		{user: agentSA, verb: "get", res: "secrets", ns: other},
		{user: agentSA, verb: "list", res: "nodes"},
		// server: nothing at all
		{user: server, verb: "get", res: "pods", ns: ns},
		{user: server, verb: "get", res: "secrets", ns: ns},
	}
	// The authorizer learns of new bindings through an informer: wait
	// until every allowed case is allowed before checking the refusals.
	check := func(tc accessCase) (bool, string) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   tc.user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: tc.ns, Verb: tc.verb, Group: tc.group, Resource: tc.res, Name: tc.name,
			},
		}}
		if err := env.Client.Create(ctx, sar); err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		return sar.Status.Allowed, sar.Status.Reason
	}
	for _, tc := range tests {
		if !tc.want {
			continue
		}
		var reason string
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
			var ok bool
			ok, reason = check(tc)
			return ok, nil
		})
		if err != nil {
			t.Errorf("%s may not %s %s/%s in %q (name %q): %s", tc.user, tc.verb, tc.group, tc.res, tc.ns, tc.name, reason)
		}
	}
	for _, tc := range tests {
		if tc.want {
			continue
		}
		if ok, reason := check(tc); ok {
			t.Errorf("%s may %s %s/%s in %q (name %q), want refused (%s)", tc.user, tc.verb, tc.group, tc.res, tc.ns, tc.name, reason)
		}
	}
}

// accessCase is one question to the authorizer.
type accessCase struct {
	user                 string
	verb, group, res, ns string
	name                 string
	want                 bool
}

// BenchmarkRender measures rendering the chart with the tutorial's values
// (what `helm template` does per release).
func BenchmarkRender(b *testing.B) {
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(tutorialValues), &vals); err != nil {
		b.Fatal(err)
	}
	dir, err := os.Getwd()
	if err != nil {
		b.Fatal(err)
	}
	chartPath := filepath.Join(dir, "..", "..", "deploy", "helm", "keyward")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chart.Render(chartPath, chart.Release{Name: "vault", Namespace: "default", Values: vals}); err != nil {
			b.Fatal(err)
		}
	}
}
