package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/internal/chart"
)

// TestChartCommandsParse runs the command line of every container the Helm
// chart renders with the real keyward binary, followed by -h: the flag
// parser stops at -h only if every flag before it exists and parses, so a
// chart that drifts from the commands' flags fails here.
func TestChartCommandsParse(t *testing.T) {
	t.Parallel()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const allOn = `server: {logLevel: debug}
identity:
  namespaced: true
  controller:
    immutableIdentities: [11111111-2222-3333-4444-555555555555]
    extraArgs: [--log-level=debug]
  agent:
    servicePrincipalSecrets: true
    allowHostNetwork: true
    extraArgs: [--log-level=debug]
`
	for _, tc := range []struct {
		name, values string
		// wantRefused: the controller and agent must refuse their flags
		// (proves the check can fail).
		wantRefused bool
	}{
		{name: "defaults"},
		{name: "everything on", values: allOn},
		{name: "unknown flag", values: "identity: {controller: {extraArgs: [--no-such-flag]}, agent: {extraArgs: [--no-such-flag]}}\n", wantRefused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.values), &vals); err != nil {
				t.Fatal(err)
			}
			r, err := chart.Render(filepath.Join(root, "deploy", "helm", "keyward"), chart.Release{Name: "keyward", Namespace: "kw", Values: vals})
			if err != nil {
				t.Fatal(err)
			}
			seen := 0
			for _, o := range r.Objects {
				var tmpl corev1.PodTemplateSpec
				switch o.GetKind() {
				case "Deployment":
					var d appsv1.Deployment
					convert(t, o.Object, &d)
					tmpl = d.Spec.Template
				case "DaemonSet":
					var d appsv1.DaemonSet
					convert(t, o.Object, &d)
					tmpl = d.Spec.Template
				case "StatefulSet":
					var s appsv1.StatefulSet
					convert(t, o.Object, &s)
					tmpl = s.Spec.Template
				default:
					continue
				}
				for _, c := range tmpl.Spec.Containers {
					seen++
					argv := append(expandK8sVars(c.Command, c.Env), c.Args...)
					if len(argv) < 2 || argv[0] != "keyward" {
						t.Errorf("%s/%s runs %v, want the keyward binary", o.GetKind(), o.GetName(), argv)
						continue
					}
					res := run(t, t.TempDir(), baseEnv(t.TempDir()), "", append(append([]string{keywardBin}, argv[1:]...), "-h")...)
					// Every command answers -h with its usage; an unknown or
					// malformed flag before it is reported instead.
					refused := strings.Contains(res.stderr, "flag provided but not defined") || strings.Contains(res.stderr, "invalid value") ||
						(argv[1] != "server" && res.code != 0)
					switch {
					case tc.wantRefused && argv[1] != "server" && !refused:
						t.Errorf("%s/%s: %v: accepted, want refused", o.GetKind(), o.GetName(), argv)
					case !tc.wantRefused && refused:
						t.Errorf("%s/%s: %v: exit %d\n%s", o.GetKind(), o.GetName(), argv, res.code, res.stderr)
					}
				}
			}
			if seen != 3 {
				t.Errorf("checked %d containers, want 3 (server, controller, agent)", seen)
			}
		})
	}
}

func convert(t *testing.T, u map[string]any, out any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u, out); err != nil {
		t.Fatal(err)
	}
}

var k8sVarRE = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandK8sVars replaces $(VAR) as the kubelet does, with plausible values
// for the downward-API variables.
func expandK8sVars(args []string, env []corev1.EnvVar) []string {
	vals := map[string]string{}
	for _, e := range env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			vals[e.Name] = map[string]string{
				"spec.nodeName": "aks-nodepool1-12345678-vmss000000", "status.hostIP": "10.240.0.4",
				"status.podIP": "10.244.0.7", "metadata.namespace": "kw", "metadata.name": "pod-0",
			}[e.ValueFrom.FieldRef.FieldPath]
		default:
			vals[e.Name] = e.Value
		}
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = k8sVarRE.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := vals[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		})
	}
	return out
}
