package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of the pod identity resources.
const GroupName = "aadpodidentity.k8s.io"

// SchemeGroupVersion is the group and version of the types in this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1"}

// Plural resource names, as used in REST paths and RBAC rules.
const (
	ResourceAzureIdentities            = "azureidentities"
	ResourceAzureIdentityBindings      = "azureidentitybindings"
	ResourceAzureAssignedIdentities    = "azureassignedidentities"
	ResourceAzurePodIdentityExceptions = "azurepodidentityexceptions"
)

// AddToScheme registers the types of this package in s. It has no other
// side effect and may be called on any number of schemes.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(SchemeGroupVersion,
		&AzureIdentity{}, &AzureIdentityList{},
		&AzureIdentityBinding{}, &AzureIdentityBindingList{},
		&AzureAssignedIdentity{}, &AzureAssignedIdentityList{},
		&AzurePodIdentityException{}, &AzurePodIdentityExceptionList{},
	)
	metav1.AddToGroupVersion(s, SchemeGroupVersion)
	return nil
}
