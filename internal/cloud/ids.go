package cloud

import (
	"errors"
	"regexp"
	"strings"
)

// errMalformedID is returned by parseResourceID for IDs that are not ARM
// resource IDs.
var errMalformedID = errors.New("malformed resource ID")

var guidRE = regexp.MustCompile(`^[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$`)

// isGUID reports whether s is a GUID in the 8-4-4-4-12 form.
func isGUID(s string) bool { return guidRE.MatchString(s) }

// canonical spellings of the namespaces and types this stand-in serves; ARM
// matches these segments case-insensitively.
var canonicalSegment = map[string]string{
	"microsoft.compute":            "Microsoft.Compute",
	"microsoft.managedidentity":    "Microsoft.ManagedIdentity",
	"microsoft.authorization":      "Microsoft.Authorization",
	"microsoft.resources":          "Microsoft.Resources",
	"virtualmachines":              "virtualMachines",
	"virtualmachinescalesets":      "virtualMachineScaleSets",
	"userassignedidentities":       "userAssignedIdentities",
	"federatedidentitycredentials": "federatedIdentityCredentials",
	"roleassignments":              "roleAssignments",
	"roledefinitions":              "roleDefinitions",
}

func canon(seg string) string {
	if c, ok := canonicalSegment[strings.ToLower(seg)]; ok {
		return c
	}
	return seg
}

// resourceID is a parsed ARM resource ID or collection path:
// /subscriptions/{Sub}[/resourceGroups/{Group}][/providers/{Namespace}/{Types[0]}/{Names[0]}/...].
// For a collection path len(Names) == len(Types)-1.
type resourceID struct {
	Sub       string
	Group     string
	Namespace string
	Types     []string
	Names     []string
}

// parseResourceID parses s case-insensitively. A trailing type without a
// name is accepted (a collection) when allowCollection is set.
func parseResourceID(s string, allowCollection bool) (resourceID, error) {
	var r resourceID
	segs := strings.Split(strings.Trim(s, "/"), "/")
	if !strings.HasPrefix(s, "/") || len(segs) < 2 || !strings.EqualFold(segs[0], "subscriptions") || segs[1] == "" {
		return r, errMalformedID
	}
	r.Sub = segs[1]
	segs = segs[2:]
	if len(segs) > 0 && strings.EqualFold(segs[0], "resourceGroups") {
		if len(segs) < 2 || segs[1] == "" {
			if allowCollection && len(segs) == 1 {
				r.Types = []string{"resourceGroups"}
				return r, nil
			}
			return r, errMalformedID
		}
		r.Group = segs[1]
		segs = segs[2:]
	}
	if len(segs) == 0 {
		return r, nil
	}
	if !strings.EqualFold(segs[0], "providers") || len(segs) < 2 || segs[1] == "" {
		return r, errMalformedID
	}
	if len(segs) == 2 {
		// /subscriptions/{sub}/providers/{namespace}: the provider itself
		// (clients read it to learn api-versions).
		if !allowCollection {
			return r, errMalformedID
		}
		r.Namespace = canon(segs[1])
		return r, nil
	}
	r.Namespace = canon(segs[1])
	segs = segs[2:]
	for len(segs) > 0 {
		if segs[0] == "" {
			return r, errMalformedID
		}
		r.Types = append(r.Types, canon(segs[0]))
		if len(segs) == 1 {
			if !allowCollection {
				return r, errMalformedID
			}
			break
		}
		if segs[1] == "" {
			return r, errMalformedID
		}
		r.Names = append(r.Names, segs[1])
		segs = segs[2:]
	}
	return r, nil
}

// isCollection reports whether r names a collection rather than a resource.
func (r resourceID) isCollection() bool { return len(r.Names) < len(r.Types) }

// typeName returns the full resource type, e.g.
// "Microsoft.Compute/virtualMachineScaleSets/virtualMachines".
func (r resourceID) typeName() string {
	if r.Namespace == "" {
		if r.Group != "" {
			return "Microsoft.Resources/subscriptions/resourceGroups"
		}
		return "Microsoft.Resources/subscriptions"
	}
	return r.Namespace + "/" + strings.Join(r.Types, "/")
}

// is reports whether r has namespace ns and exactly the given type chain.
func (r resourceID) is(ns string, types ...string) bool {
	if !strings.EqualFold(r.Namespace, ns) || len(r.Types) != len(types) {
		return false
	}
	for i, t := range types {
		if !strings.EqualFold(r.Types[i], t) {
			return false
		}
	}
	return true
}

// groupID returns /subscriptions/{s}/resourceGroups/{g}.
func groupID(sub, group string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + group
}

// resourcePath builds an ID from a group and type/name pairs.
func resourcePath(sub, group, ns string, typeNames ...string) string {
	return groupID(sub, group) + "/providers/" + ns + "/" + strings.Join(typeNames, "/")
}

// key is the case-insensitive map key of an ARM ID.
func key(id string) string { return strings.ToLower(strings.TrimRight(id, "/")) }

// scopeContains reports whether scope is id or an ancestor of id, comparing
// whole segments case-insensitively. The root scope "/" contains everything.
func scopeContains(scope, id string) bool {
	s, i := key(scope), key(id)
	if s == "" {
		return true
	}
	return i == s || strings.HasPrefix(i, s+"/")
}
