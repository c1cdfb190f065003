package cloud

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
)

var (
	filterPrincipalRE = regexp.MustCompile(`(?i)^\s*principalId\s+eq\s+'([^']+)'\s*$`)
	filterAssignedRE  = regexp.MustCompile(`(?i)^\s*assignedTo\('([^']+)'\)\s*$`)
	filterAtScopeRE   = regexp.MustCompile(`(?i)^\s*atScope\(\)\s*$`)
	filterRoleNameRE  = regexp.MustCompile(`(?i)^\s*roleName\s+eq\s+'([^']+)'\s*$`)
)

func assignmentJSON(a *RoleAssignment) map[string]any {
	ts := a.Created.UTC().Format(time.RFC3339Nano)
	return map[string]any{
		"id": a.ID, "name": a.Name, "type": "Microsoft.Authorization/roleAssignments",
		"properties": map[string]any{
			"roleDefinitionId": a.RoleDefinitionID, "principalId": a.PrincipalID, "principalType": a.PrincipalType,
			"scope": a.Scope, "condition": nil, "conditionVersion": nil, "createdOn": ts, "updatedOn": ts,
			"createdBy": a.CreatedBy, "updatedBy": a.CreatedBy, "delegatedManagedIdentityResourceId": nil, "description": nil,
		},
	}
}

func roleJSON(sub string, r RoleDefinition) map[string]any {
	return map[string]any{
		"id": roleDefinitionID(sub, r.ID), "name": r.ID, "type": "Microsoft.Authorization/roleDefinitions",
		"properties": map[string]any{
			"roleName": r.Name, "type": "BuiltInRole", "description": r.Description, "assignableScopes": []string{"/"},
			"permissions": []any{map[string]any{"actions": r.Actions, "notActions": orEmptySlice(r.NotActions), "dataActions": []string{}, "notDataActions": []string{}}},
			"createdOn":   "2015-02-02T21:55:09.8806423Z", "updatedOn": "2021-11-11T20:13:47.8628684Z", "createdBy": nil, "updatedBy": nil,
		},
	}
}

func orEmptySlice(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serveAuthorization serves {scope}/providers/Microsoft.Authorization/{rest}.
func (s *Server) serveAuthorization(ctx context.Context, q *armRequest, scope, rest string) error {
	parts := strings.Split(rest, "/")
	kind := strings.ToLower(parts[0])
	if kind != "roleassignments" && kind != "roledefinitions" || len(parts) > 2 {
		return armErr(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace 'Microsoft.Authorization' for api version '%s'.", parts[0], q.version)
	}
	if err := checkVersion(q.version, authzVersions, canon(parts[0]), "", false); err != nil {
		return err
	}
	if scope != "" {
		if err := s.validScope(scope); err != nil {
			return armErr(http.StatusBadRequest, "InvalidResourceId", "The resource ID '%s' is malformed.", q.r.URL.Path)
		}
		r, _ := parseResourceID(scope, false)
		s.st.mu.RLock()
		_, err := s.subscriptionLocked(r.Sub)
		s.st.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	authScope := scope
	if authScope == "" {
		authScope = "/"
	}
	if kind == "roledefinitions" {
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		if err := s.authorize(q.c, "Microsoft.Authorization/roleDefinitions/read", authScope); err != nil {
			return err
		}
		sub := ""
		if r, err := parseResourceID(scope, false); err == nil {
			sub = r.Sub
		}
		if len(parts) == 2 {
			r, ok := RoleByName(parts[1])
			if !ok || !strings.EqualFold(r.ID, parts[1]) {
				return armErr(http.StatusNotFound, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", parts[1])
			}
			writeJSON(q.w, http.StatusOK, roleJSON(sub, r))
			return nil
		}
		filter := q.r.URL.Query().Get("$filter")
		out := []any{}
		for _, r := range builtinRoles {
			if m := filterRoleNameRE.FindStringSubmatch(filter); m != nil && !strings.EqualFold(m[1], r.Name) {
				continue
			}
			out = append(out, roleJSON(sub, r))
		}
		writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
		return nil
	}
	action := "Microsoft.Authorization/roleAssignments/" + verbFor(q.r.Method)
	if len(parts) == 1 {
		if q.r.Method != http.MethodGet {
			return methodNotAllowed(q.r)
		}
		if err := s.authorize(q.c, action, authScope); err != nil {
			return err
		}
		filter := q.r.URL.Query().Get("$filter")
		principal, atScope := "", false
		switch {
		case filter == "":
		case filterPrincipalRE.MatchString(filter):
			principal = filterPrincipalRE.FindStringSubmatch(filter)[1]
		case filterAssignedRE.MatchString(filter):
			principal = filterAssignedRE.FindStringSubmatch(filter)[1]
			atScope = true
		case filterAtScopeRE.MatchString(filter):
			atScope = true
		default:
			return armErr(http.StatusBadRequest, "UnsupportedQuery", "The filter '%s' is not supported. Supported filters are either 'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.", filter)
		}
		out := []any{}
		for _, a := range s.ListRoleAssignments(ctx, scope, principal, atScope) {
			out = append(out, assignmentJSON(a))
		}
		writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
		return nil
	}
	id := scope + roleAssignmentsProvider + parts[1]
	if err := s.authorize(q.c, action, authScope); err != nil {
		return err
	}
	switch q.r.Method {
	case http.MethodGet:
		a, err := s.RoleAssignment(ctx, id)
		if err != nil {
			return err
		}
		writeJSON(q.w, http.StatusOK, assignmentJSON(a))
	case http.MethodPut:
		var body struct {
			Properties struct {
				RoleDefinitionID string `json:"roleDefinitionId"`
				PrincipalID      string `json:"principalId"`
				PrincipalType    string `json:"principalType"`
			} `json:"properties"`
		}
		if err := readBody(q.r, &body); err != nil {
			return err
		}
		p := body.Properties
		if p.RoleDefinitionID == "" || p.PrincipalID == "" {
			return armErr(http.StatusBadRequest, "InvalidCreateRoleAssignmentRequest", "The request to create role assignment '%s' is not valid. Role definition ID and principal ID are required.", parts[1])
		}
		if !isGUID(lastSegment(p.RoleDefinitionID)) {
			return armErr(http.StatusBadRequest, "InvalidRoleDefinitionId", "The role definition ID '%s' is not valid.", lastSegment(p.RoleDefinitionID))
		}
		a, created, err := s.CreateRoleAssignment(ctx, scope, parts[1], p.RoleDefinitionID, p.PrincipalID, p.PrincipalType, q.c.ObjectID)
		if err != nil {
			return err
		}
		writeJSON(q.w, createdStatus(created), assignmentJSON(a))
	case http.MethodDelete:
		a, found, err := s.DeleteRoleAssignment(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			q.w.WriteHeader(http.StatusNoContent)
			return nil
		}
		writeJSON(q.w, http.StatusOK, assignmentJSON(a))
	default:
		return methodNotAllowed(q.r)
	}
	return nil
}
