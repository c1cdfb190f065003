package cloud

import "time"

// Tenant is an Entra tenant.
type Tenant struct {
	ID string `json:"id"`
}

// Subscription is an Azure subscription in a tenant.
type Subscription struct {
	ID          string `json:"id"`
	TenantID    string `json:"tenantId"`
	DisplayName string `json:"displayName"`
}

// ResourceGroup is a resource group. ID uses the canonical casing
// /subscriptions/{s}/resourceGroups/{name}.
type ResourceGroup struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	SubscriptionID string            `json:"subscriptionId"`
	Location       string            `json:"location"`
	Tags           map[string]string `json:"tags,omitempty"`
}

// Identity is a user-assigned managed identity
// (Microsoft.ManagedIdentity/userAssignedIdentities).
type Identity struct {
	ID             string            `json:"id"`
	Name           string            `json:"name"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	Location       string            `json:"location"`
	Tags           map[string]string `json:"tags,omitempty"`
	TenantID       string            `json:"tenantId"`
	ClientID       string            `json:"clientId"`
	PrincipalID    string            `json:"principalId"`
	Created        time.Time         `json:"created"`
}

// FederatedCredential is a federated identity credential on a user-assigned
// identity.
type FederatedCredential struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	IdentityID string   `json:"identityId"`
	Issuer     string   `json:"issuer"`
	Subject    string   `json:"subject"`
	Audiences  []string `json:"audiences"`
}

// Compute kinds.
const (
	KindVM   = "virtualMachines"
	KindVMSS = "virtualMachineScaleSets"
)

// Instance is one VM of a scale set.
type Instance struct {
	InstanceID string `json:"instanceId"`
	// Name is "{vmss}_{instanceId}".
	Name string `json:"name"`
	// ID is the instance's ARM ID (.../virtualMachineScaleSets/{vmss}/virtualMachines/{instanceId}).
	ID   string `json:"id"`
	VMID string `json:"vmId"`
}

// Compute is a virtual machine or a (uniform) virtual machine scale set.
type Compute struct {
	ID             string            `json:"id"`
	Kind           string            `json:"kind"`
	Name           string            `json:"name"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	Location       string            `json:"location"`
	Tags           map[string]string `json:"tags,omitempty"`
	VMSize         string            `json:"vmSize"`
	// UniqueID is the VM's vmId or the scale set's uniqueId.
	UniqueID string `json:"uniqueId"`
	// SystemPrincipalID is set when the system-assigned identity is enabled.
	SystemPrincipalID string `json:"systemPrincipalId,omitempty"`
	// SystemClientID is the app ID of the system-assigned identity.
	SystemClientID string `json:"systemClientId,omitempty"`
	// UserAssigned lists assigned identity IDs (canonical casing).
	UserAssigned []string `json:"userAssigned,omitempty"`
	// Instances of a scale set; empty for a VM.
	Instances []Instance `json:"instances,omitempty"`
}

// Principal is a service principal in a tenant: an application's, or a
// managed identity's (user- or system-assigned).
type Principal struct {
	ObjectID    string `json:"objectId"`
	AppID       string `json:"appId"`
	TenantID    string `json:"tenantId"`
	DisplayName string `json:"displayName"`
	// Type is "Application" or "ManagedIdentity".
	Type string `json:"type"`
	// SecretHashes are SHA-256 hashes of the client secrets (never the
	// secrets themselves).
	SecretHashes [][]byte `json:"secretHashes,omitempty"`
	// ResourceID is the ARM ID of the identity for managed identities.
	ResourceID string `json:"resourceId,omitempty"`
}

// RoleAssignment is a Microsoft.Authorization/roleAssignments resource.
type RoleAssignment struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	Scope            string    `json:"scope"`
	RoleDefinitionID string    `json:"roleDefinitionId"`
	PrincipalID      string    `json:"principalId"`
	PrincipalType    string    `json:"principalType"`
	CreatedBy        string    `json:"createdBy"`
	Created          time.Time `json:"created"`
}
