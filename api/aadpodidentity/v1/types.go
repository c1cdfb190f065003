// Package v1 holds the Go types of the aadpodidentity.k8s.io/v1 custom
// resources: AzureIdentity, AzureIdentityBinding, AzureAssignedIdentity and
// AzurePodIdentityException. Their JSON field names match AAD Pod Identity's
// v1 wire format, so manifests written for it apply unchanged; the CRD
// manifests that describe them live in deploy/crds.
//
// Extensions over the upstream format are optional fields that upstream
// objects never carry: AzureIdentityBindingSpec.LabelSelector and
// AzureAssignedIdentityStatus.Conditions.
package v1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Well-known label, annotation, finalizer and state values shared by the
// identity controller and the node agent.
const (
	// CRDLabelKey is the pod label whose value is compared with
	// AzureIdentityBindingSpec.Selector.
	CRDLabelKey = "aadpodidbinding"

	// BehaviorKey is the AzureIdentity annotation that restricts an identity
	// to pods and bindings of its own namespace when set to
	// BehaviorNamespaced.
	BehaviorKey = "aadpodidentity.k8s.io/Behavior"
	// BehaviorNamespaced is the BehaviorKey value for namespaced identities.
	BehaviorNamespaced = "namespaced"

	// AssignedIDCreated is the AzureAssignedIdentity state between the
	// object's creation and the identity's assignment in ARM.
	AssignedIDCreated = "Created"
	// AssignedIDAssigned is the state once the identity is usable on the
	// pod's node.
	AssignedIDAssigned = "Assigned"
	// AssignedIDUnassigned is the state once the identity has been removed
	// from the node, just before the object is deleted.
	AssignedIDUnassigned = "Unassigned"

	// AssignedIDFinalizer is the finalizer the controller puts on every
	// AzureAssignedIdentity it creates.
	AssignedIDFinalizer = "azureassignedidentity.finalizers.aadpodidentity.k8s.io"

	// NodeNameLabel is the label on an AzureAssignedIdentity that holds the
	// name of the pod's node.
	NodeNameLabel = "nodename"

	// EventSource is the component name on Kubernetes Events written by the
	// identity components.
	EventSource = "aadpodidentity.k8s.io"
)

// IdentityType is the kind of Azure identity an AzureIdentity describes. It
// is an integer on the wire.
type IdentityType int

// Identity types.
const (
	// UserAssignedMSI (0) is a user-assigned managed identity, assigned to
	// the node's VM or scale set.
	UserAssignedMSI IdentityType = 0
	// ServicePrincipal (1) is an application with a client secret held in a
	// Kubernetes Secret.
	ServicePrincipal IdentityType = 1
	// ServicePrincipalCertificate (2) is an application with a PKCS#12
	// certificate held in a Kubernetes Secret.
	ServicePrincipalCertificate IdentityType = 2
)

// AzureIdentity describes one Azure identity that pods may use.
type AzureIdentity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AzureIdentitySpec   `json:"spec,omitempty"`
	Status AzureIdentityStatus `json:"status,omitempty"`
}

// AzureIdentitySpec holds the identity's credentials description.
type AzureIdentitySpec struct {
	// Type is the kind of identity (0, 1 or 2).
	Type IdentityType `json:"type,omitempty"`
	// ResourceID is the ARM ID of a user-assigned identity (type 0).
	ResourceID string `json:"resourceID,omitempty"`
	// ClientID is the identity's application (client) ID (all types).
	ClientID string `json:"clientID,omitempty"`
	// ClientPassword names the Secret holding a service principal's secret
	// (type 1) or certificate and password (type 2).
	ClientPassword corev1.SecretReference `json:"clientPassword,omitempty"`
	// TenantID is a service principal's tenant (types 1 and 2).
	TenantID string `json:"tenantID,omitempty"`
	// AuxiliaryTenantIDs are extra tenants for a multi-tenant service
	// principal (type 1).
	AuxiliaryTenantIDs []string `json:"auxiliaryTenantIDs,omitempty"`
	// ADResourceID is accepted for compatibility and unused.
	ADResourceID string `json:"adResourceID,omitempty"`
	// ADEndpoint is the authority host of a service principal; empty means
	// https://login.microsoftonline.com/.
	ADEndpoint string `json:"adEndpoint,omitempty"`
	// Replicas is accepted for compatibility and unused; nil when absent.
	Replicas *int32 `json:"replicas,omitempty"`
}

// AzureIdentityStatus is accepted for compatibility and unused.
type AzureIdentityStatus struct {
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
}

// AzureIdentityList is a list of AzureIdentity.
type AzureIdentityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []AzureIdentity `json:"items"`
}

// AzureIdentityBinding binds the AzureIdentity named in its spec (in the
// binding's namespace) to the pods it selects.
type AzureIdentityBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AzureIdentityBindingSpec   `json:"spec,omitempty"`
	Status AzureIdentityBindingStatus `json:"status,omitempty"`
}

// AzureIdentityBindingSpec selects pods for an identity.
type AzureIdentityBindingSpec struct {
	// AzureIdentity is the name of an AzureIdentity in the binding's
	// namespace.
	AzureIdentity string `json:"azureIdentity,omitempty"`
	// Selector selects pods, in any namespace unless the identity is
	// namespaced, whose CRDLabelKey label equals it exactly.
	Selector string `json:"selector,omitempty"`
	// Weight is accepted for compatibility and unused.
	Weight int `json:"weight,omitempty"`
	// LabelSelector (extension) selects pods by label selector. Unlike
	// Selector it only ever selects pods in the binding's own namespace.
	// nil means the binding uses Selector only; a binding may carry both.
	LabelSelector *metav1.LabelSelector `json:"labelSelector,omitempty"`
}

// AzureIdentityBindingStatus is accepted for compatibility and unused.
type AzureIdentityBindingStatus struct {
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
}

// AzureIdentityBindingList is a list of AzureIdentityBinding.
type AzureIdentityBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []AzureIdentityBinding `json:"items"`
}

// AzureAssignedIdentity records that one pod may use one identity. Only
// the identity controller writes it; the node agent reads it.
type AzureAssignedIdentity struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AzureAssignedIdentitySpec   `json:"spec,omitempty"`
	Status AzureAssignedIdentityStatus `json:"status,omitempty"`
}

// AzureAssignedIdentitySpec holds copies of the matched identity and
// binding and the pod they were matched for.
type AzureAssignedIdentitySpec struct {
	// AzureIdentityRef is a copy of the identity; nil only on malformed
	// objects.
	AzureIdentityRef *AzureIdentity `json:"azureIdentityRef,omitempty"`
	// AzureBindingRef is a copy of the binding; nil only on malformed
	// objects.
	AzureBindingRef *AzureIdentityBinding `json:"azureBindingRef,omitempty"`
	// Pod is the pod's name.
	Pod string `json:"pod,omitempty"`
	// PodNamespace is the pod's namespace.
	PodNamespace string `json:"podNamespace,omitempty"`
	// NodeName is the pod's node ("nodename" on the wire, lower case).
	NodeName string `json:"nodename,omitempty"`
	// Replicas is accepted for compatibility and unused.
	Replicas *int32 `json:"replicas,omitempty"`
}

// AzureAssignedIdentityStatus is the assignment's lifecycle state.
type AzureAssignedIdentityStatus struct {
	// Status is "", AssignedIDCreated, AssignedIDAssigned or
	// AssignedIDUnassigned.
	Status string `json:"status,omitempty"`
	// AvailableReplicas is 1 on objects written by the controller.
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// Conditions (extension) explain the state, e.g. why an assignment is
	// still Created.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// AzureAssignedIdentityList is a list of AzureAssignedIdentity.
type AzureAssignedIdentityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []AzureAssignedIdentity `json:"items"`
}

// AzurePodIdentityException lets pods in its namespace that carry any one
// of its labels reach the instance metadata service directly.
type AzurePodIdentityException struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AzurePodIdentityExceptionSpec   `json:"spec,omitempty"`
	Status AzurePodIdentityExceptionStatus `json:"status,omitempty"`
}

// AzurePodIdentityExceptionSpec lists the excepted labels; a pod matches
// when any one key has an equal value (compared case-insensitively).
type AzurePodIdentityExceptionSpec struct {
	PodLabels map[string]string `json:"podLabels,omitempty"`
}

// AzurePodIdentityExceptionStatus is accepted for compatibility and unused.
type AzurePodIdentityExceptionStatus struct {
	Status string `json:"status,omitempty"`
}

// AzurePodIdentityExceptionList is a list of AzurePodIdentityException.
type AzurePodIdentityExceptionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []AzurePodIdentityException `json:"items"`
}
