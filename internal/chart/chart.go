// Package chart renders Keyward's Helm chart (deploy/helm/keyward) with
// Helm's own template engine, as `helm template` or `helm install` would,
// and decodes the result into Kubernetes objects. Tests use it to check
// the chart against a real API server; tools can use it to print
// manifests without a helm binary.
package chart

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Release names the release to render and its user-supplied values.
type Release struct {
	// Name is the release name (`helm install NAME`). Required.
	Name string
	// Namespace is the release namespace. Required.
	Namespace string
	// Values are the user values (`--values`), coalesced with the chart's
	// values.yaml; nil means the defaults.
	Values map[string]any
}

// Rendered is a rendered chart.
type Rendered struct {
	// CRDs are the objects of the chart's crds/ directory, which Helm
	// installs unrendered before the templates.
	CRDs []*unstructured.Unstructured
	// Objects are the rendered templates' objects, ordered by template
	// file name and then by position in the file.
	Objects []*unstructured.Unstructured
	// Notes is the rendered NOTES.txt.
	Notes string
}

// ErrRelease reports a Release without a name or namespace.
var ErrRelease = errors.New("chart: release name and namespace are required")

// Render loads the chart in dir and renders it for rel. Template errors
// (including the chart's own `fail` checks) are returned as they are.
func Render(dir string, rel Release) (*Rendered, error) {
	if rel.Name == "" || rel.Namespace == "" {
		return nil, ErrRelease
	}
	ch, err := loader.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("chart: load %s: %w", dir, err)
	}
	vals, err := chartutil.ToRenderValues(ch, rel.Values, chartutil.ReleaseOptions{
		Name:      rel.Name,
		Namespace: rel.Namespace,
		Revision:  1,
		IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("chart: values: %w", err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("chart: render: %w", err)
	}
	out := &Rendered{}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		base := path.Base(name)
		switch {
		case base == "NOTES.txt":
			out.Notes = files[name]
			continue
		case strings.HasPrefix(base, "_"), !strings.HasSuffix(base, ".yaml"):
			continue
		}
		objs, err := Decode([]byte(files[name]))
		if err != nil {
			return nil, fmt.Errorf("chart: %s: %w", name, err)
		}
		out.Objects = append(out.Objects, objs...)
	}
	for _, crd := range ch.CRDObjects() {
		objs, err := Decode(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("chart: %s: %w", crd.Filename, err)
		}
		out.CRDs = append(out.CRDs, objs...)
	}
	return out, nil
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents. A document without apiVersion or kind is an error.
func Decode(manifest []byte) ([]*unstructured.Unstructured, error) {
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
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			return out, fmt.Errorf("object without apiVersion or kind: %v", u.Object)
		}
		out = append(out, u)
	}
}
