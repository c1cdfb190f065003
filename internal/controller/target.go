package controller

import (
	"errors"
	"fmt"
	"strings"
)

// Target is the ARM resource that carries a node's user-assigned
// identities: the node's virtual machine, or its whole scale set (identities
// are assigned at scale-set level, so every instance gets them).
type Target struct {
	SubscriptionID string
	ResourceGroup  string
	// Name is the VM or scale-set name.
	Name string
	// ScaleSet is true for a virtual machine scale set.
	ScaleSet bool
}

// ID returns the target's ARM resource ID.
func (t Target) ID() string {
	kind := "virtualMachines"
	if t.ScaleSet {
		kind = "virtualMachineScaleSets"
	}
	return "/subscriptions/" + t.SubscriptionID + "/resourceGroups/" + t.ResourceGroup +
		"/providers/Microsoft.Compute/" + kind + "/" + t.Name
}

// key is the lower-cased ID, used as the reconcile key and index value.
func (t Target) key() string { return strings.ToLower(t.ID()) }

// ErrProviderID reports a node providerID that names no Azure VM or scale
// set instance.
var ErrProviderID = errors.New("unsupported node providerID")

// TargetFromProviderID parses a node's spec.providerID:
//
//	azure:///subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachines/NAME
//	azure:///subscriptions/S/resourceGroups/G/providers/Microsoft.Compute/virtualMachineScaleSets/SS/virtualMachines/N
//
// Segment names are matched case-insensitively, as ARM does.
func TargetFromProviderID(providerID string) (Target, error) {
	rest, ok := strings.CutPrefix(providerID, "azure://")
	if !ok {
		return Target{}, fmt.Errorf("%w: %q", ErrProviderID, providerID)
	}
	return targetFromResourceID(rest)
}

func targetFromResourceID(id string) (Target, error) {
	seg := strings.Split(strings.TrimPrefix(id, "/"), "/")
	bad := fmt.Errorf("%w: %q", ErrProviderID, id)
	if len(seg) < 8 || !strings.EqualFold(seg[0], "subscriptions") || !strings.EqualFold(seg[2], "resourceGroups") ||
		!strings.EqualFold(seg[4], "providers") || !strings.EqualFold(seg[5], "Microsoft.Compute") {
		return Target{}, bad
	}
	for _, s := range seg {
		if s == "" {
			return Target{}, bad
		}
	}
	t := Target{SubscriptionID: seg[1], ResourceGroup: seg[3], Name: seg[7]}
	switch {
	case strings.EqualFold(seg[6], "virtualMachines") && len(seg) == 8:
	case strings.EqualFold(seg[6], "virtualMachineScaleSets") && (len(seg) == 8 || len(seg) == 10 && strings.EqualFold(seg[8], "virtualMachines")):
		t.ScaleSet = true
	default:
		return Target{}, bad
	}
	return t, nil
}

// nodeKeyPrefix starts the reconcile key of a node that has no usable
// target (missing node, empty or foreign providerID).
const nodeKeyPrefix = "node/"
