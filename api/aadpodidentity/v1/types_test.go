package v1_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// TestWireNames pins the JSON field names to AAD Pod Identity's v1 format.
func TestWireNames(t *testing.T) {
	t.Parallel()
	id := v1.AzureIdentity{Spec: v1.AzureIdentitySpec{
		Type: v1.ServicePrincipal, ResourceID: "r", ClientID: "c", TenantID: "t",
		ClientPassword:     corev1.SecretReference{Name: "n", Namespace: "ns"},
		AuxiliaryTenantIDs: []string{"a"}, ADResourceID: "ar", ADEndpoint: "e",
	}}
	binding := v1.AzureIdentityBinding{Spec: v1.AzureIdentityBindingSpec{
		AzureIdentity: "i", Selector: "s", Weight: 1,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"k": "v"}},
	}}
	aai := v1.AzureAssignedIdentity{
		Spec:   v1.AzureAssignedIdentitySpec{Pod: "p", PodNamespace: "pn", NodeName: "n"},
		Status: v1.AzureAssignedIdentityStatus{Status: v1.AssignedIDAssigned, AvailableReplicas: 1},
	}
	exc := v1.AzurePodIdentityException{Spec: v1.AzurePodIdentityExceptionSpec{PodLabels: map[string]string{"app": "mic"}}}

	tests := []struct {
		name string
		obj  any
		want string
	}{
		{"AzureIdentity", id.Spec, `{"type":1,"resourceID":"r","clientID":"c","clientPassword":{"name":"n","namespace":"ns"},"tenantID":"t","auxiliaryTenantIDs":["a"],"adResourceID":"ar","adEndpoint":"e"}`},
		{"AzureIdentityBinding", binding.Spec, `{"azureIdentity":"i","selector":"s","weight":1,"labelSelector":{"matchLabels":{"k":"v"}}}`},
		{"AzureAssignedIdentitySpec", aai.Spec, `{"pod":"p","podNamespace":"pn","nodename":"n"}`},
		{"AzureAssignedIdentityStatus", aai.Status, `{"status":"Assigned","availableReplicas":1}`},
		{"AzurePodIdentityException", exc.Spec, `{"podLabels":{"app":"mic"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(b)); diff != "" {
				t.Errorf("wire JSON (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddToScheme(t *testing.T) {
	t.Parallel()
	s := runtime.NewScheme()
	if err := v1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"AzureIdentity", "AzureIdentityBinding", "AzureAssignedIdentity", "AzurePodIdentityException"} {
		for _, k := range []string{kind, kind + "List"} {
			if !s.Recognizes(v1.SchemeGroupVersion.WithKind(k)) {
				t.Errorf("scheme does not recognize %s", k)
			}
		}
	}
}
