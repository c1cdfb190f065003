package cloud_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/msi/armmsi"
	"github.com/google/go-cmp/cmp"

	"github.com/keyward/keyward/internal/cloud/cloudtest"
)

// sdkClients are the real Azure SDK clients pointed at the stand-in.
type sdkClients struct {
	msi   *armmsi.UserAssignedIdentitiesClient
	fic   *armmsi.FederatedIdentityCredentialsClient
	vmss  *armcompute.VirtualMachineScaleSetsClient
	vms   *armcompute.VirtualMachineScaleSetVMsClient
	vm    *armcompute.VirtualMachinesClient
	roles *armauthorization.RoleAssignmentsClient
}

func newSDK(t *testing.T, c *cloudtest.Cloud, clientID, secret string) sdkClients {
	t.Helper()
	cred, err := azidentity.NewClientSecretCredential(c.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()}, DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := &arm.ClientOptions{ClientOptions: azcore.ClientOptions{Cloud: c.CloudConfig(), Transport: c.HTTPClient()}}
	var s sdkClients
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	s.msi, err = armmsi.NewUserAssignedIdentitiesClient(c.SubscriptionID, cred, opts)
	must(err)
	s.fic, err = armmsi.NewFederatedIdentityCredentialsClient(c.SubscriptionID, cred, opts)
	must(err)
	s.vmss, err = armcompute.NewVirtualMachineScaleSetsClient(c.SubscriptionID, cred, opts)
	must(err)
	s.vms, err = armcompute.NewVirtualMachineScaleSetVMsClient(c.SubscriptionID, cred, opts)
	must(err)
	s.vm, err = armcompute.NewVirtualMachinesClient(c.SubscriptionID, cred, opts)
	must(err)
	s.roles, err = armauthorization.NewRoleAssignmentsClient(c.SubscriptionID, cred, opts)
	must(err)
	return s
}

func TestSDKCreatesIdentitiesAndAssignsToScaleSet(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	ctx := context.Background()
	const rg = "MC_myrg_mycluster_eastus"
	c.CreateResourceGroup(t, rg, "eastus")
	ss := c.CreateScaleSet(t, rg, "aks-nodepool1-12345678-vmss", 3)
	sdk := newSDK(t, c, c.AdminClientID, c.AdminClientSecret)

	created, err := sdk.msi.CreateOrUpdate(ctx, rg, "app-identity", armmsi.Identity{Location: to.Ptr("eastus")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := created.Identity
	if id.Properties == nil || id.Properties.ClientID == nil || id.Properties.PrincipalID == nil || *id.Properties.TenantID != c.TenantID {
		t.Fatalf("identity properties = %+v", id.Properties)
	}
	wantID := "/subscriptions/" + c.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/app-identity"
	if diff := cmp.Diff(wantID, *id.ID); diff != "" {
		t.Errorf("identity ID (-want +got):\n%s", diff)
	}
	got, err := sdk.msi.Get(ctx, strings.ToLower(rg), "APP-IDENTITY", nil) // ARM names are case-insensitive
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*id.Properties.ClientID, *got.Properties.ClientID); diff != "" {
		t.Error(diff)
	}
	second, err := sdk.msi.CreateOrUpdate(ctx, rg, "second", armmsi.Identity{Location: to.Ptr("eastus")}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Assign both with the delta PATCH MIC sends (lower-cased keys, {}).
	poller, err := sdk.vmss.BeginUpdate(ctx, rg, ss.Name, armcompute.VirtualMachineScaleSetUpdate{
		Identity: &armcompute.VirtualMachineScaleSetIdentity{
			Type: to.Ptr(armcompute.ResourceIdentityTypeUserAssigned),
			UserAssignedIdentities: map[string]*armcompute.UserAssignedIdentitiesValue{
				strings.ToLower(*id.ID): {}, *second.ID: {},
			},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = poller.PollUntilDone(ctx, nil); err != nil {
		t.Fatal(err)
	}
	vmss, err := sdk.vmss.Get(ctx, rg, ss.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	principals := map[string]string{}
	for k, v := range vmss.Identity.UserAssignedIdentities {
		principals[k] = *v.PrincipalID
	}
	want := map[string]string{*id.ID: *id.Properties.PrincipalID, *second.ID: *second.Properties.PrincipalID}
	if diff := cmp.Diff(want, principals); diff != "" {
		t.Errorf("scale set identities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(armcompute.ResourceIdentityTypeUserAssigned, *vmss.Identity.Type); diff != "" {
		t.Error(diff)
	}

	// Remove one with null.
	poller, err = sdk.vmss.BeginUpdate(ctx, rg, ss.Name, armcompute.VirtualMachineScaleSetUpdate{
		Identity: &armcompute.VirtualMachineScaleSetIdentity{
			Type:                   to.Ptr(armcompute.ResourceIdentityTypeSystemAssignedUserAssigned),
			UserAssignedIdentities: map[string]*armcompute.UserAssignedIdentitiesValue{*second.ID: nil},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := poller.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range res.Identity.UserAssignedIdentities {
		keys = append(keys, k)
	}
	if diff := cmp.Diff([]string{*id.ID}, keys); diff != "" {
		t.Errorf("after removal (-want +got):\n%s", diff)
	}
	if res.Identity.PrincipalID == nil || *res.Identity.TenantID != c.TenantID {
		t.Errorf("system-assigned identity missing: %+v", res.Identity)
	}

	// Instances are listed with their names.
	var names []string
	pager := sdk.vms.NewListPager(rg, ss.Name, nil)
	for pager.More() {
		page, perr := pager.NextPage(ctx)
		if perr != nil {
			t.Fatal(perr)
		}
		for _, v := range page.Value {
			names = append(names, *v.Name)
		}
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{ss.Name + "_0", ss.Name + "_1", ss.Name + "_2"}, names); diff != "" {
		t.Error(diff)
	}

	// Role assignment through armauthorization: Reader on the group.
	scope := "/subscriptions/" + c.SubscriptionID + "/resourceGroups/" + rg
	ra, err := sdk.roles.Create(ctx, scope, "0f1a9e6c-4b6e-4bde-9a7c-2f4f7f9d1a11", armauthorization.RoleAssignmentCreateParameters{
		Properties: &armauthorization.RoleAssignmentProperties{
			RoleDefinitionID: to.Ptr("/subscriptions/" + c.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"),
			PrincipalID:      id.Properties.PrincipalID,
			PrincipalType:    to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(scope+"/providers/Microsoft.Authorization/roleAssignments/0f1a9e6c-4b6e-4bde-9a7c-2f4f7f9d1a11", *ra.ID); diff != "" {
		t.Error(diff)
	}

	// Federated credential.
	fic, err := sdk.fic.CreateOrUpdate(ctx, rg, "app-identity", "kubernetes-federated-identity", armmsi.FederatedIdentityCredential{
		Properties: &armmsi.FederatedIdentityCredentialProperties{
			Issuer: to.Ptr("https://oidc.example/issuer"), Subject: to.Ptr("system:serviceaccount:default:app"),
			Audiences: []*string{to.Ptr("api://AzureADTokenExchange")},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(*id.ID+"/federatedIdentityCredentials/kubernetes-federated-identity", *fic.ID); diff != "" {
		t.Error(diff)
	}
}

func TestSDKRBACEnforced(t *testing.T) {
	t.Parallel()
	c := cloudtest.Start(t)
	ctx := context.Background()
	c.CreateResourceGroup(t, "rg", "westus")
	ss := c.CreateScaleSet(t, "rg", "vmss", 1)
	ident := c.CreateIdentity(t, "rg", "mic-identity")
	cid, secret, oid := c.ServicePrincipal(t, "mic")
	sdk := newSDK(t, c, cid, secret)

	var re *azcore.ResponseError
	_, err := sdk.vmss.Get(ctx, "rg", "vmss", nil)
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.ErrorCode != "AuthorizationFailed" {
		t.Fatalf("Get without role: %v", err)
	}

	c.AssignRole(t, oid, "Virtual Machine Contributor", "/subscriptions/"+c.SubscriptionID+"/resourceGroups/rg")
	if _, err = sdk.vmss.Get(ctx, "rg", "vmss", nil); err != nil {
		t.Fatalf("Get with role: %v", err)
	}
	// Write on the scale set but no assign/action on the identity.
	_, err = sdk.vmss.BeginUpdate(ctx, "rg", "vmss", armcompute.VirtualMachineScaleSetUpdate{Identity: &armcompute.VirtualMachineScaleSetIdentity{
		Type: to.Ptr(armcompute.ResourceIdentityTypeUserAssigned), UserAssignedIdentities: map[string]*armcompute.UserAssignedIdentitiesValue{ident.ID: {}},
	}}, nil)
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || re.ErrorCode != "LinkedAuthorizationFailed" {
		t.Fatalf("update without Managed Identity Operator: %v", err)
	}
	c.AssignRole(t, oid, "Managed Identity Operator", ident.ID)
	p, err := sdk.vmss.BeginUpdate(ctx, "rg", "vmss", armcompute.VirtualMachineScaleSetUpdate{Identity: &armcompute.VirtualMachineScaleSetIdentity{
		Type: to.Ptr(armcompute.ResourceIdentityTypeUserAssigned), UserAssignedIdentities: map[string]*armcompute.UserAssignedIdentitiesValue{ident.ID: {}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = p.PollUntilDone(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, err := sdk.vmss.Get(ctx, "rg", ss.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Identity.UserAssignedIdentities[ident.ID]; !ok {
		t.Errorf("identity not assigned: %v", got.Identity.UserAssignedIdentities)
	}
}
