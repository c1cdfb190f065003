package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/keyward/keyward/internal/cloud"
)

// cloudCommands returns the `keyward cloud ...` commands: `cloud serve`
// (also bare `cloud`) runs the Azure stand-in; the others are az-style
// clients of a running stand-in (found through {data dir}/profile.json).
//
// Data directory: --data-dir, else $KEYWARD_CLOUD_DIR, else
// $HOME/.keyward/cloud.
func cloudCommands() []*Command {
	return []*Command{
		{Name: "cloud", Synopsis: "Run the Azure stand-in (Entra ID, ARM, IMDS); same as cloud serve", Run: runCloudServe},
		{Name: "cloud serve", Synopsis: "Run the Azure stand-in (Entra ID, ARM, IMDS)", Run: runCloudServe},
		{Name: "cloud account show", Synopsis: "Show the subscription and tenant (az account show)", Run: cloudClientCmd(cloudAccountShow)},
		{Name: "cloud group create", Synopsis: "Create a resource group (az group create)", Run: cloudClientCmd(cloudGroupCreate)},
		{Name: "cloud group show", Synopsis: "Show a resource group (az group show)", Run: cloudClientCmd(cloudGroupShow)},
		{Name: "cloud identity create", Synopsis: "Create a user-assigned identity (az identity create)", Run: cloudClientCmd(cloudIdentityCreate)},
		{Name: "cloud identity show", Synopsis: "Show a user-assigned identity (az identity show)", Run: cloudClientCmd(cloudIdentityShow)},
		{Name: "cloud identity list", Synopsis: "List user-assigned identities (az identity list)", Run: cloudClientCmd(cloudIdentityList)},
		{Name: "cloud identity delete", Synopsis: "Delete a user-assigned identity (az identity delete)", Run: cloudClientCmd(cloudIdentityDelete)},
		{Name: "cloud identity federated-credential create", Synopsis: "Add a federated credential to an identity", Run: cloudClientCmd(cloudFICCreate)},
		{Name: "cloud role assignment create", Synopsis: "Assign a role (az role assignment create)", Run: cloudClientCmd(cloudRoleCreate)},
		{Name: "cloud role assignment list", Synopsis: "List role assignments (az role assignment list)", Run: cloudClientCmd(cloudRoleList)},
		{Name: "cloud role assignment delete", Synopsis: "Delete a role assignment (az role assignment delete --ids)", Run: cloudClientCmd(cloudRoleDelete)},
		{Name: "cloud vmss show", Synopsis: "Show a scale set (az vmss show)", Run: cloudClientCmd(cloudVMSSShow)},
		{Name: "cloud vmss list-instances", Synopsis: "List a scale set's instances (az vmss list-instances)", Run: cloudClientCmd(cloudVMSSInstances)},
		{Name: "cloud vmss identity assign", Synopsis: "Assign identities to a scale set (az vmss identity assign)", Run: cloudClientCmd(cloudIdentityAssign(cloud.KindVMSS, true))},
		{Name: "cloud vmss identity remove", Synopsis: "Remove identities from a scale set (az vmss identity remove)", Run: cloudClientCmd(cloudIdentityAssign(cloud.KindVMSS, false))},
		{Name: "cloud vmss identity show", Synopsis: "Show a scale set's identities (az vmss identity show)", Run: cloudClientCmd(cloudIdentityShowCompute(cloud.KindVMSS))},
		{Name: "cloud vm identity assign", Synopsis: "Assign identities to a VM (az vm identity assign)", Run: cloudClientCmd(cloudIdentityAssign(cloud.KindVM, true))},
		{Name: "cloud vm identity remove", Synopsis: "Remove identities from a VM (az vm identity remove)", Run: cloudClientCmd(cloudIdentityAssign(cloud.KindVM, false))},
		{Name: "cloud vm identity show", Synopsis: "Show a VM's identities (az vm identity show)", Run: cloudClientCmd(cloudIdentityShowCompute(cloud.KindVM))},
	}
}

// API versions the CLI uses (those az uses today).
const (
	cloudRGVersion      = "2022-09-01"
	cloudSubVersion     = "2022-12-01"
	cloudMSIVersion     = "2023-01-31"
	cloudComputeVersion = "2024-11-01"
	cloudAuthzVersion   = "2022-04-01"
)

// ---- az-style argument parsing ----

// cloudArgs holds parsed az-style flags: "--name v", "--name=v", "-n v",
// "-otsv" (short flag with attached value); multi-valued flags collect
// every following value up to the next flag.
type cloudArgs struct {
	vals  map[string][]string
	bools map[string]bool
}

// cloudFlagSpec describes accepted flags: canonical long name → aliases.
type cloudFlagSpec struct {
	names map[string]string // alias (with dashes) → canonical
	multi map[string]bool
	bool  map[string]bool
}

func cloudSpec(defs ...string) cloudFlagSpec {
	s := cloudFlagSpec{names: map[string]string{}, multi: map[string]bool{}, bool: map[string]bool{}}
	for _, d := range defs {
		// "name|n" ; suffix "*" = multi, "!" = boolean
		multi, boolean := strings.HasSuffix(d, "*"), strings.HasSuffix(d, "!")
		d = strings.TrimRight(d, "*!")
		parts := strings.Split(d, "|")
		canon := parts[0]
		for _, p := range parts {
			if len(p) == 1 {
				s.names["-"+p] = canon
			} else {
				s.names["--"+p] = canon
			}
		}
		s.multi[canon], s.bool[canon] = multi, boolean
	}
	// common output flags
	s.names["--query"], s.names["--output"], s.names["-o"] = "query", "output", "output"
	s.names["--data-dir"] = "data-dir"
	return s
}

var errCloudUsage = errors.New("usage")

func (s cloudFlagSpec) parse(args []string) (*cloudArgs, error) {
	a := &cloudArgs{vals: map[string][]string{}, bools: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			return nil, fmt.Errorf("unrecognized argument: %s: %w", arg, errCloudUsage)
		}
		name, val, hasVal := strings.Cut(arg, "=")
		canon, ok := s.names[name]
		if !ok && !strings.HasPrefix(arg, "--") && len(arg) > 2 {
			// -otsv
			if c, ok2 := s.names[arg[:2]]; ok2 {
				canon, ok, val, hasVal = c, true, arg[2:], true
			}
		}
		if !ok {
			return nil, fmt.Errorf("unrecognized arguments: %s: %w", arg, errCloudUsage)
		}
		if s.bool[canon] {
			a.bools[canon] = true
			continue
		}
		if hasVal {
			a.vals[canon] = append(a.vals[canon], val)
			continue
		}
		if i+1 >= len(args) {
			return nil, fmt.Errorf("argument %s: expected one argument: %w", name, errCloudUsage)
		}
		i++
		a.vals[canon] = append(a.vals[canon], args[i])
		for s.multi[canon] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			a.vals[canon] = append(a.vals[canon], args[i])
		}
	}
	return a, nil
}

func (a *cloudArgs) get(name string) string {
	if v := a.vals[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (a *cloudArgs) require(names ...string) error {
	var missing []string
	for _, n := range names {
		if a.get(n) == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the following arguments are required: %s: %w", strings.Join(missing, ", "), errCloudUsage)
	}
	return nil
}

// cloudDataDir resolves the data directory.
func cloudDataDir(env *Env, flagVal string) string {
	if flagVal != "" {
		return flagVal
	}
	if d := env.Getenv("KEYWARD_CLOUD_DIR"); d != "" {
		return d
	}
	return filepath.Join(env.Getenv("HOME"), ".keyward", "cloud")
}

// ---- serve ----

func runCloudServe(ctx context.Context, env *Env, args []string) int {
	spec := cloudSpec("login-addr", "arm-addr", "bootstrap", "imds*", "tls-host*", "log-level", "imds-rate-limit", "imds-max-concurrent")
	a, err := spec.parse(args)
	if err != nil {
		_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: %v\n\nUsage: keyward cloud serve [--data-dir DIR] [--login-addr 127.0.0.1:8700] [--arm-addr 127.0.0.1:8701]\n    [--bootstrap FILE] [--imds ADDR=INSTANCE_ID ...] [--tls-host NAME ...] [--log-level info]\n    [--imds-rate-limit 20] [--imds-max-concurrent 5]   (negative disables)\n", err)
		return 2
	}
	cfg := cloud.Config{
		DataDir:   cloudDataDir(env, a.get("data-dir")),
		LoginAddr: cmpOr(a.get("login-addr"), "127.0.0.1:8700"),
		ARMAddr:   cmpOr(a.get("arm-addr"), "127.0.0.1:8701"),
		TLSHosts:  a.vals["tls-host"],
	}
	lvl := slog.LevelInfo
	if err = lvl.UnmarshalText([]byte(cmpOr(a.get("log-level"), "info"))); err != nil {
		_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: bad --log-level: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lvl}))
	if v := a.get("imds-rate-limit"); v != "" {
		f, perr := strconv.ParseFloat(v, 64)
		if perr != nil {
			_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: bad --imds-rate-limit: %v\n", perr)
			return 2
		}
		cfg.IMDSRateLimit = f
	}
	if v := a.get("imds-max-concurrent"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil {
			_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: bad --imds-max-concurrent: %v\n", perr)
			return 2
		}
		cfg.IMDSMaxConcurrent = n
	}
	for _, m := range a.vals["imds"] {
		addr, inst, ok := strings.Cut(m, "=")
		if !ok {
			_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: --imds wants ADDR=INSTANCE_RESOURCE_ID, got %q\n", m)
			return 2
		}
		cfg.IMDS = append(cfg.IMDS, cloud.IMDSListener{Addr: addr, InstanceID: inst})
	}
	if f := a.get("bootstrap"); f != "" {
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: %v\n", rerr)
			return 1
		}
		if cfg.Bootstrap, err = cloud.ParseBootstrap(b); err != nil {
			_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: %v\n", err)
			return 1
		}
	}
	srv, err := cloud.New(ctx, cfg)
	if err != nil {
		_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: %v\n", err)
		return 1
	}
	_, _ = fmt.Fprintf(env.Stdout, "keyward cloud: authority host %s, resource manager %s\ntenant %s, subscription %s\nprofile %s\n",
		srv.AuthorityHost(), srv.ARMEndpoint(), srv.TenantID(), srv.SubscriptionID(), cloud.ProfilePath(cfg.DataDir))
	if err := srv.Run(ctx); err != nil {
		_, _ = fmt.Fprintf(env.Stderr, "keyward cloud serve: %v\n", err)
		return 1
	}
	return 0
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// ---- client commands ----

// cloudNoOutput is what a command returns when it prints nothing.
type cloudNoOutput struct{}

var (
	cloudNone = cloudNoOutput{}
	// cloudNull is JSON null (a --query that selects nothing).
	cloudNull = json.RawMessage("null")
)

// cloudCmd is the body of a client command: it returns the value to print.
type cloudCmd struct {
	spec cloudFlagSpec
	run  func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error)
}

func cloudClientCmd(cmd cloudCmd) func(context.Context, *Env, []string) int {
	return func(ctx context.Context, env *Env, args []string) int {
		a, err := cmd.spec.parse(args)
		if err != nil {
			_, _ = fmt.Fprintf(env.Stderr, "ERROR: %v\n", strings.TrimSuffix(err.Error(), ": usage"))
			return 2
		}
		prof, err := cloud.ReadProfile(cloudDataDir(env, a.get("data-dir")))
		if err != nil {
			_, _ = fmt.Fprintf(env.Stderr, "ERROR: %v (is `keyward cloud serve` running? set --data-dir or KEYWARD_CLOUD_DIR)\n", err)
			return 1
		}
		client, err := cloud.NewClient(prof)
		if err != nil {
			_, _ = fmt.Fprintf(env.Stderr, "ERROR: %v\n", err)
			return 1
		}
		v, err := cmd.run(ctx, client, a)
		if err != nil {
			var ae *cloud.ARMError
			if errors.As(err, &ae) {
				_, _ = fmt.Fprintf(env.Stderr, "ERROR: (%s) %s\nCode: %s\nMessage: %s\n", ae.Code, ae.Message, ae.Code, ae.Message)
			} else {
				_, _ = fmt.Fprintf(env.Stderr, "ERROR: %s\n", strings.TrimSuffix(err.Error(), ": usage"))
			}
			if errors.Is(err, errCloudUsage) {
				return 2
			}
			return 1
		}
		if _, none := v.(cloudNoOutput); none {
			return 0
		}
		if err := cloudPrint(env.Stdout, v, a.get("query"), cmpOr(a.get("output"), "json")); err != nil {
			_, _ = fmt.Fprintf(env.Stderr, "ERROR: %v\n", err)
			return 1
		}
		return 0
	}
}

// cloudPrint applies the --query path (a JMESPath subset: dotted
// identifiers and [n] indexes) and writes json or tsv like az.
func cloudPrint(w io.Writer, v any, query, output string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc any
	if err = json.Unmarshal(b, &doc); err != nil {
		return err
	}
	if query != "" {
		if doc, err = cloudQuery(doc, query); err != nil {
			return err
		}
		if r, ok := doc.(json.RawMessage); ok && string(r) == "null" {
			doc = nil
		}
	}
	switch output {
	case "json", "jsonc":
		out, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", out)
		return err
	case "tsv":
		_, err := io.WriteString(w, cloudTSV(doc))
		return err
	case "none":
		return nil
	}
	return fmt.Errorf("argument --output/-o: invalid choice: '%s' (choose from 'json', 'jsonc', 'none', 'tsv')", output)
}

func cloudQuery(doc any, q string) (any, error) {
	cur := doc
	for _, part := range strings.Split(q, ".") {
		name, idx, hasIdx := strings.Cut(part, "[")
		if name != "" {
			m, ok := cur.(map[string]any)
			if !ok {
				return cloudNull, nil
			}
			cur = m[name]
		}
		if hasIdx {
			n, err := strconv.Atoi(strings.TrimSuffix(idx, "]"))
			l, ok := cur.([]any)
			if err != nil {
				return nil, fmt.Errorf("argument --query: invalid jmespath_type value: %q", q)
			}
			if !ok || n < 0 || n >= len(l) {
				return cloudNull, nil
			}
			cur = l[n]
		}
	}
	return cur, nil
}

func cloudTSV(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case []any:
		var sb strings.Builder
		for _, e := range t {
			sb.WriteString(cloudTSV(e))
		}
		return sb.String()
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var cells []string
		for _, k := range keys {
			switch t[k].(type) {
			case map[string]any, []any:
				continue // az omits nested objects from tsv rows
			}
			cells = append(cells, strings.TrimSuffix(cloudTSV(t[k]), "\n"))
		}
		return strings.Join(cells, "\t") + "\n"
	}
	return cloudScalar(v) + "\n"
}

func cloudScalar(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		if t {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// ---- account / group ----

var cloudAccountShow = cloudCmd{spec: cloudSpec("subscription|s"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	p := c.Profile()
	sub := cmpOr(a.get("subscription"), p.SubscriptionID)
	var s map[string]any
	if err := c.ARM(ctx, "GET", "/subscriptions/"+sub, cloudSubVersion, nil, nil, &s); err != nil {
		return nil, err
	}
	return map[string]any{
		"environmentName": "AzureCloud", "homeTenantId": s["tenantId"], "id": s["subscriptionId"], "isDefault": true,
		"managedByTenants": []any{}, "name": s["displayName"], "state": s["state"], "tenantId": s["tenantId"],
		"user": map[string]string{"name": p.ClientID, "type": "servicePrincipal"},
	}, nil
}}

func cloudSub(c *cloud.Client, a *cloudArgs) string {
	return cmpOr(a.get("subscription"), c.Profile().SubscriptionID)
}

var cloudGroupCreate = cloudCmd{spec: cloudSpec("name|n|resource-group|g", "location|l", "subscription", "tags*"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "location"); err != nil {
		return nil, err
	}
	var out map[string]any
	err := c.ARM(ctx, "PUT", "/subscriptions/"+cloudSub(c, a)+"/resourcegroups/"+a.get("name"), cloudRGVersion, nil,
		map[string]any{"location": a.get("location"), "tags": cloudTags(a.vals["tags"])}, &out)
	return out, err
}}

var cloudGroupShow = cloudCmd{spec: cloudSpec("name|n|resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name"); err != nil {
		return nil, err
	}
	var out map[string]any
	err := c.ARM(ctx, "GET", "/subscriptions/"+cloudSub(c, a)+"/resourcegroups/"+a.get("name"), cloudRGVersion, nil, nil, &out)
	return out, err
}}

func cloudTags(kv []string) map[string]string {
	m := map[string]string{}
	for _, t := range kv {
		k, v, _ := strings.Cut(t, "=")
		m[k] = v
	}
	return m
}

// ---- identities ----

// cloudFlatten turns an ARM resource into az's flattened output
// (properties merged into the top level, resourceGroup added).
func cloudFlatten(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != "properties" {
			out[k] = v
		}
	}
	if p, ok := m["properties"].(map[string]any); ok {
		for k, v := range p {
			out[k] = v
		}
	}
	if id, ok := m["id"].(string); ok {
		segs := strings.Split(id, "/")
		for i := 0; i+1 < len(segs); i++ {
			if strings.EqualFold(segs[i], "resourceGroups") {
				out["resourceGroup"] = segs[i+1]
				break
			}
		}
	}
	return out
}

func cloudIdentityPath(c *cloud.Client, a *cloudArgs) string {
	return "/subscriptions/" + cloudSub(c, a) + "/resourceGroups/" + a.get("resource-group") + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + a.get("name")
}

var cloudIdentityCreate = cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "location|l", "subscription", "tags*"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "resource-group"); err != nil {
		return nil, err
	}
	loc := a.get("location")
	if loc == "" { // az defaults to the group's location
		var g map[string]any
		if err := c.ARM(ctx, "GET", "/subscriptions/"+cloudSub(c, a)+"/resourcegroups/"+a.get("resource-group"), cloudRGVersion, nil, nil, &g); err != nil {
			return nil, err
		}
		loc, _ = g["location"].(string)
	}
	var out map[string]any
	if err := c.ARM(ctx, "PUT", cloudIdentityPath(c, a), cloudMSIVersion, nil, map[string]any{"location": loc, "tags": cloudTags(a.vals["tags"])}, &out); err != nil {
		return nil, err
	}
	return cloudFlatten(out), nil
}}

var cloudIdentityShow = cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "subscription", "ids"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	path := a.get("ids")
	if path == "" {
		if err := a.require("name", "resource-group"); err != nil {
			return nil, err
		}
		path = cloudIdentityPath(c, a)
	}
	var out map[string]any
	if err := c.ARM(ctx, "GET", path, cloudMSIVersion, nil, nil, &out); err != nil {
		return nil, err
	}
	return cloudFlatten(out), nil
}}

var cloudIdentityList = cloudCmd{spec: cloudSpec("resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	path := "/subscriptions/" + cloudSub(c, a)
	if g := a.get("resource-group"); g != "" {
		path += "/resourceGroups/" + g
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := c.ARM(ctx, "GET", path+"/providers/Microsoft.ManagedIdentity/userAssignedIdentities", cloudMSIVersion, nil, nil, &out); err != nil {
		return nil, err
	}
	list := []any{}
	for _, v := range out.Value {
		list = append(list, cloudFlatten(v))
	}
	return list, nil
}}

var cloudIdentityDelete = cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "resource-group"); err != nil {
		return nil, err
	}
	return cloudNone, c.ARM(ctx, "DELETE", cloudIdentityPath(c, a), cloudMSIVersion, nil, nil, nil)
}}

var cloudFICCreate = cloudCmd{spec: cloudSpec("name|n", "identity-name", "resource-group|g", "issuer", "subject", "audiences*", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "identity-name", "resource-group", "issuer", "subject"); err != nil {
		return nil, err
	}
	auds := a.vals["audiences"]
	if len(auds) == 0 {
		auds = []string{"api://AzureADTokenExchange"}
	}
	path := "/subscriptions/" + cloudSub(c, a) + "/resourceGroups/" + a.get("resource-group") + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + a.get("identity-name") + "/federatedIdentityCredentials/" + a.get("name")
	var out map[string]any
	if err := c.ARM(ctx, "PUT", path, cloudMSIVersion, nil, map[string]any{"properties": map[string]any{"issuer": a.get("issuer"), "subject": a.get("subject"), "audiences": auds}}, &out); err != nil {
		return nil, err
	}
	return cloudFlatten(out), nil
}}

// ---- role assignments ----

// cloudResolveAssignee turns an app (client) ID or object ID into the
// principal's object ID, as az does through Graph.
func cloudResolveAssignee(ctx context.Context, c *cloud.Client, assignee string) (string, error) {
	var list struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if err := c.Graph(ctx, "/v1.0/servicePrincipals", url.Values{"$filter": {"appId eq '" + assignee + "'"}}, &list); err != nil {
		return "", err
	}
	if len(list.Value) == 1 {
		return list.Value[0].ID, nil
	}
	var sp struct {
		ID string `json:"id"`
	}
	if err := c.Graph(ctx, "/v1.0/servicePrincipals/"+url.PathEscape(assignee), nil, &sp); err == nil && sp.ID != "" {
		return sp.ID, nil
	}
	return "", fmt.Errorf("Cannot find user or service principal in graph database for '%s'. If the assignee is an appId, make sure the corresponding service principal is created with 'az ad sp create --id %s'.", assignee, assignee) //nolint:staticcheck // az's message
}

var cloudRoleCreate = cloudCmd{spec: cloudSpec("role", "assignee", "assignee-object-id", "assignee-principal-type", "scope", "resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("role"); err != nil {
		return nil, err
	}
	scope := a.get("scope")
	if scope == "" {
		scope = "/subscriptions/" + cloudSub(c, a)
		if g := a.get("resource-group"); g != "" {
			scope += "/resourceGroups/" + g
		}
	}
	principal := a.get("assignee-object-id")
	if principal == "" {
		if err := a.require("assignee"); err != nil {
			return nil, err
		}
		var err error
		if principal, err = cloudResolveAssignee(ctx, c, a.get("assignee")); err != nil {
			return nil, err
		}
	}
	var defs struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	role := a.get("role")
	if _, err := uuid.Parse(role); err == nil {
		defs.Value = append(defs.Value, struct {
			ID string `json:"id"`
		}{ID: "/subscriptions/" + cloudSub(c, a) + "/providers/Microsoft.Authorization/roleDefinitions/" + role})
	} else if err := c.ARM(ctx, "GET", scope+"/providers/Microsoft.Authorization/roleDefinitions", cloudAuthzVersion, url.Values{"$filter": {"roleName eq '" + role + "'"}}, nil, &defs); err != nil {
		return nil, err
	}
	if len(defs.Value) != 1 {
		return nil, fmt.Errorf("Role '%s' doesn't exist.", role) //nolint:staticcheck // az's message
	}
	var out map[string]any
	err := c.ARM(ctx, "PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString(), cloudAuthzVersion, nil,
		map[string]any{"properties": map[string]any{"roleDefinitionId": defs.Value[0].ID, "principalId": principal, "principalType": cmpOr(a.get("assignee-principal-type"), "ServicePrincipal")}}, &out)
	if err != nil {
		return nil, err
	}
	return cloudFlatten(out), nil
}}

var cloudRoleList = cloudCmd{spec: cloudSpec("assignee", "scope", "resource-group|g", "subscription", "all!"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	scope := a.get("scope")
	if scope == "" {
		scope = "/subscriptions/" + cloudSub(c, a)
		if g := a.get("resource-group"); g != "" {
			scope += "/resourceGroups/" + g
		}
	}
	q := url.Values{}
	if as := a.get("assignee"); as != "" {
		pid, err := cloudResolveAssignee(ctx, c, as)
		if err != nil {
			return nil, err
		}
		q.Set("$filter", "principalId eq '"+pid+"'")
	} else if !a.bools["all"] {
		q.Set("$filter", "atScope()")
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := c.ARM(ctx, "GET", scope+"/providers/Microsoft.Authorization/roleAssignments", cloudAuthzVersion, q, nil, &out); err != nil {
		return nil, err
	}
	list := []any{}
	for _, v := range out.Value {
		list = append(list, cloudFlatten(v))
	}
	return list, nil
}}

var cloudRoleDelete = cloudCmd{spec: cloudSpec("ids*"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("ids"); err != nil {
		return nil, err
	}
	for _, id := range a.vals["ids"] {
		if err := c.ARM(ctx, "DELETE", id, cloudAuthzVersion, nil, nil, nil); err != nil {
			return nil, err
		}
	}
	return cloudNone, nil
}}

// ---- compute ----

func cloudComputePath(c *cloud.Client, a *cloudArgs, kind string) string {
	return "/subscriptions/" + cloudSub(c, a) + "/resourceGroups/" + a.get("resource-group") + "/providers/Microsoft.Compute/" + kind + "/" + a.get("name")
}

var cloudVMSSShow = cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "resource-group"); err != nil {
		return nil, err
	}
	var out map[string]any
	if err := c.ARM(ctx, "GET", cloudComputePath(c, a, cloud.KindVMSS), cloudComputeVersion, nil, nil, &out); err != nil {
		return nil, err
	}
	return cloudFlatten(out), nil
}}

var cloudVMSSInstances = cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
	if err := a.require("name", "resource-group"); err != nil {
		return nil, err
	}
	var out struct {
		Value []map[string]any `json:"value"`
	}
	if err := c.ARM(ctx, "GET", cloudComputePath(c, a, cloud.KindVMSS)+"/virtualMachines", cloudComputeVersion, nil, nil, &out); err != nil {
		return nil, err
	}
	list := []any{}
	for _, v := range out.Value {
		list = append(list, cloudFlatten(v))
	}
	return list, nil
}}

// cloudIdentityOutput is az's `vm/vmss identity assign|show` output.
func cloudIdentityOutput(ident map[string]any, assign bool) map[string]any {
	if ident == nil {
		return nil
	}
	if !assign {
		return ident
	}
	sys, _ := ident["principalId"].(string)
	ua := ident["userAssignedIdentities"]
	if ua == nil {
		ua = map[string]any{}
	}
	return map[string]any{"systemAssignedIdentity": sys, "userAssignedIdentities": ua}
}

func cloudIdentityAssign(kind string, add bool) cloudCmd {
	return cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "identities*", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
		if err := a.require("name", "resource-group"); err != nil {
			return nil, err
		}
		ids := a.vals["identities"]
		path := cloudComputePath(c, a, kind)
		var cur struct {
			Identity map[string]any `json:"identity"`
		}
		if err := c.ARM(ctx, "GET", path, cloudComputeVersion, nil, nil, &cur); err != nil {
			return nil, err
		}
		sys := false
		existing := map[string]bool{}
		if cur.Identity != nil {
			t, _ := cur.Identity["type"].(string)
			sys = strings.Contains(t, "SystemAssigned")
			if m, ok := cur.Identity["userAssignedIdentities"].(map[string]any); ok {
				for k := range m {
					existing[strings.ToLower(k)] = true
				}
			}
		}
		delta := map[string]any{}
		if add && len(ids) == 0 { // az: no --identities = system assigned
			sys = true
		}
		for _, id := range ids {
			if id == "[system]" {
				sys = add
				continue
			}
			if !strings.HasPrefix(id, "/") {
				id = "/subscriptions/" + cloudSub(c, a) + "/resourceGroups/" + a.get("resource-group") + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + id
			}
			if add {
				delta[id] = map[string]any{}
				existing[strings.ToLower(id)] = true
			} else {
				delta[id] = nil
				delete(existing, strings.ToLower(id))
			}
		}
		typ := "None"
		switch {
		case sys && len(existing) > 0:
			typ = "SystemAssigned, UserAssigned"
		case sys:
			typ = "SystemAssigned"
		case len(existing) > 0:
			typ = "UserAssigned"
		}
		body := map[string]any{"type": typ}
		if len(existing) > 0 || len(delta) > 0 && typ != "None" && typ != "SystemAssigned" {
			body["userAssignedIdentities"] = delta
		}
		var out struct {
			Identity map[string]any `json:"identity"`
		}
		if err := c.ARM(ctx, "PATCH", path, cloudComputeVersion, nil, map[string]any{"identity": body}, &out); err != nil {
			return nil, err
		}
		if !add {
			return cloudNone, nil
		}
		return cloudIdentityOutput(out.Identity, true), nil
	}}
}

func cloudIdentityShowCompute(kind string) cloudCmd {
	return cloudCmd{spec: cloudSpec("name|n", "resource-group|g", "subscription"), run: func(ctx context.Context, c *cloud.Client, a *cloudArgs) (any, error) {
		if err := a.require("name", "resource-group"); err != nil {
			return nil, err
		}
		var out struct {
			Identity map[string]any `json:"identity"`
		}
		if err := c.ARM(ctx, "GET", cloudComputePath(c, a, kind), cloudComputeVersion, nil, nil, &out); err != nil {
			return nil, err
		}
		if out.Identity == nil {
			return cloudNone, nil
		}
		return out.Identity, nil
	}}
}
