package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
)

// CLI runs one keyward command in-process with the platform's environment
// (VAULT_ADDR, the token helper's HOME, KEYWARD_CLOUD_DIR) and returns its
// standard output. A non-zero exit is an error carrying standard error.
type CLI func(ctx context.Context, stdin string, args ...string) (string, error)

// TutorialPolicy is the tutorial's policy aks.
const TutorialPolicy = `path "aks/*" {
  capabilities = ["read", "list"]
}
`

// Result is what the tutorial run established.
type Result struct {
	// Secret is the data read from aks/mysecret by the demo pod.
	Secret map[string]any
	// IntruderRefused reports that the unlabelled pod got no token.
	IntruderRefused bool
	// RootToken is the root token from operator init.
	RootToken string
}

type printer struct {
	w    io.Writer
	step int
}

// show prints a step: the tutorial's command and what keyward ran.
func (p *printer) show(tutorial, keyward string) {
	p.step++
	fmt.Fprintf(p.w, "\n[%2d] tutorial: %s\n", p.step, tutorial)
	if keyward != "" && keyward != tutorial {
		fmt.Fprintf(p.w, "     keyward:  %s\n", keyward)
	}
}

func (p *printer) result(format string, args ...any) {
	fmt.Fprintf(p.w, "     → %s\n", fmt.Sprintf(format, args...))
}

// RunTutorial plays the tutorial against the platform. It returns an
// error unless the demo pod read the secret and the intruder was refused.
func (p *Platform) RunTutorial(ctx context.Context, out io.Writer, run CLI) (*Result, error) {
	pr := &printer{w: out}
	sub := p.Cloud.SubscriptionID()
	tenant := p.Cloud.TenantID()
	res := &Result{}

	// Azure: the two identities with the Reader role.
	ids := map[string]string{} // name -> client ID
	resIDs := map[string]string{}
	for _, name := range []string{"demo", "vault"} {
		pr.show(fmt.Sprintf("az identity create -g ${IDENTITY_RESOURCE_GROUP} -n %s", name),
			fmt.Sprintf("keyward cloud identity create -g %s -n %s", NodeGroup, name))
		if _, err := run(ctx, "", "cloud", "identity", "create", "-g", NodeGroup, "-n", name); err != nil {
			return nil, err
		}
		clientID, err := run(ctx, "", "cloud", "identity", "show", "-g", NodeGroup, "-n", name, "--query", "clientId", "-otsv")
		if err != nil {
			return nil, err
		}
		resID, err := run(ctx, "", "cloud", "identity", "show", "-g", NodeGroup, "-n", name, "--query", "id", "-otsv")
		if err != nil {
			return nil, err
		}
		ids[name], resIDs[name] = strings.TrimSpace(clientID), strings.TrimSpace(resID)
		pr.result("IDENTITY_CLIENT_ID=%s", ids[name])
		pr.result("IDENTITY_RESOURCE_ID=%s", resIDs[name])
		scope := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", sub, NodeGroup)
		pr.show("az role assignment create --role Reader --assignee ${IDENTITY_CLIENT_ID} --scope /subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${IDENTITY_RESOURCE_GROUP} --query id -otsv",
			fmt.Sprintf("keyward cloud role assignment create --role Reader --assignee %s --scope %s --query id -otsv", ids[name], scope))
		assignment, err := run(ctx, "", "cloud", "role", "assignment", "create", "--role", "Reader", "--assignee", ids[name], "--scope", scope, "--query", "id", "-otsv")
		if err != nil {
			return nil, err
		}
		pr.result("IDENTITY_ASSIGNMENT_ID=%s", strings.TrimSpace(assignment))
	}

	// Pod identity: AzureIdentity and AzureIdentityBinding; the identities
	// are assigned to the node's scale set (the controller's job on
	// Kubernetes, done here as on a managed-mode node).
	for _, name := range []string{"demo", "vault"} {
		pr.show(fmt.Sprintf("kubectl apply -f - (AzureIdentity %s, type 0; AzureIdentityBinding %s-binding, selector %s)", name, name, name),
			"node agent local registry: AzureIdentity + AzureIdentityBinding")
		if err := p.Registry.AddIdentity(aadv1.AzureIdentity{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: PodNamespace},
			Spec:       aadv1.AzureIdentitySpec{Type: aadv1.UserAssignedMSI, ResourceID: resIDs[name], ClientID: ids[name]},
		}); err != nil {
			return nil, err
		}
		if err := p.Registry.AddBinding(aadv1.AzureIdentityBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-binding", Namespace: PodNamespace},
			Spec:       aadv1.AzureIdentityBindingSpec{AzureIdentity: name, Selector: name},
		}); err != nil {
			return nil, err
		}
		pr.show("(MIC assigns the identity to the node's scale set)",
			fmt.Sprintf("keyward cloud vmss identity assign -g %s -n %s --identities %s", NodeGroup, ScaleSet, resIDs[name]))
		if _, err := run(ctx, "", "cloud", "vmss", "identity", "assign", "-g", NodeGroup, "-n", ScaleSet, "--identities", resIDs[name]); err != nil {
			return nil, err
		}
		pr.result("identity %s assigned to %s", name, ScaleSet)
	}

	// Vault: init, unseal, login, azure auth, kv, policy.
	pr.show("vault operator init -key-shares 1 -key-threshold 1", "keyward operator init -key-shares 1 -key-threshold 1")
	initOut, err := run(ctx, "", "operator", "init", "-key-shares", "1", "-key-threshold", "1")
	if err != nil {
		return nil, err
	}
	unsealKey := lineValue(initOut, "Unseal Key 1:")
	res.RootToken = lineValue(initOut, "Initial Root Token:")
	if unsealKey == "" || res.RootToken == "" {
		return nil, fmt.Errorf("operator init printed no key or root token:\n%s", initOut)
	}
	pr.result("Unseal Key 1: %s…  Initial Root Token: %s…", unsealKey[:6], res.RootToken[:8])
	steps := []struct {
		tutorial string
		args     []string
		stdin    string
	}{
		{"vault operator unseal", []string{"operator", "unseal", unsealKey}, ""},
		{"vault login", []string{"login", res.RootToken}, ""},
		{"vault auth enable azure", []string{"auth", "enable", "azure"}, ""},
		{"vault write auth/azure/config tenant_id=$(az account show --query tenantId -o tsv) resource=https://management.azure.com/",
			[]string{"write", "auth/azure/config", "tenant_id=" + tenant, "resource=https://management.azure.com/",
				"authority_host=" + p.Cloud.AuthorityHost(), "resource_manager_endpoint=" + p.Cloud.ARMEndpoint()}, ""},
		{`vault write auth/azure/role/aks-role policies="aks" bound_subscription_ids=${SUBSCRIPTION_ID} bound_resource_groups=${IDENTITY_RESOURCE_GROUP}`,
			[]string{"write", "auth/azure/role/aks-role", "policies=aks", "bound_subscription_ids=" + sub, "bound_resource_groups=" + NodeGroup}, ""},
		{"vault secrets enable -path=aks kv", []string{"secrets", "enable", "-path=aks", "kv"}, ""},
		{"vault kv put aks/mysecret foo=bar", []string{"kv", "put", "aks/mysecret", "foo=bar"}, ""},
		{"vault policy write aks << EOF ... EOF", []string{"policy", "write", "aks", "-"}, TutorialPolicy},
	}
	for _, s := range steps {
		shown := "keyward " + strings.Join(redactArgs(s.args), " ")
		pr.show(s.tutorial, shown)
		out, rerr := run(ctx, s.stdin, s.args...)
		if rerr != nil {
			return nil, rerr
		}
		if line := summaryLine(out); line != "" {
			pr.result("%s", line)
		}
	}

	// The demo pod: instance metadata, a token from the agent, login, read.
	pod, err := PodHTTPClient(DemoPodIP, nil)
	if err != nil {
		return nil, err
	}
	pr.show(`metadata=$(curl -H Metadata:true "http://169.254.169.254/metadata/instance?api-version=2017-08-01")`,
		fmt.Sprintf("GET %s/metadata/instance?api-version=2017-08-01 from the demo pod (%s)", p.AgentURL, DemoPodIP))
	var md struct {
		Compute struct {
			SubscriptionID    string `json:"subscriptionId"`
			Name              string `json:"name"`
			VMScaleSetName    string `json:"vmScaleSetName"`
			ResourceGroupName string `json:"resourceGroupName"`
		} `json:"compute"`
	}
	if err = getJSON(ctx, pod, p.AgentURL+"/metadata/instance?api-version=2017-08-01", map[string]string{"Metadata": "true"}, &md); err != nil {
		return nil, fmt.Errorf("instance metadata: %w", err)
	}
	pr.result("subscription_id=%s vm_name=%s vmss_name=%s resource_group_name=%s",
		md.Compute.SubscriptionID, md.Compute.Name, md.Compute.VMScaleSetName, md.Compute.ResourceGroupName)

	tokenURL := p.AgentURL + "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=" + url.QueryEscape("https://management.azure.com/")
	pr.show(`response=$(curl 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F' -H Metadata:true -s)`,
		"GET "+tokenURL+" from the demo pod")
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
	}
	if err = getJSON(ctx, pod, tokenURL, map[string]string{"Metadata": "true"}, &tok); err != nil {
		return nil, fmt.Errorf("token for the demo pod: %w", err)
	}
	pr.result("jwt=%s… (the demo identity's token)", tok.AccessToken[:16])

	body := map[string]string{
		"role":                "aks-role",
		"jwt":                 tok.AccessToken,
		"subscription_id":     md.Compute.SubscriptionID,
		"resource_group_name": md.Compute.ResourceGroupName,
		"vm_name":             md.Compute.Name,
		"vmss_name":           md.Compute.VMScaleSetName,
	}
	pr.show(`VAULT_TOKEN=$(curl -s --request POST --data @auth_payload_complete.json $VAULT_ADDR/v1/auth/azure/login | jq .auth.client_token | sed 's/"//g')`,
		"POST "+p.ServerURL+"/v1/auth/azure/login with the tutorial's JSON body")
	var login struct {
		Auth struct {
			ClientToken string   `json:"client_token"`
			Policies    []string `json:"policies"`
		} `json:"auth"`
	}
	raw, _ := json.Marshal(body)
	if err = postJSON(ctx, pod, p.ServerURL+"/v1/auth/azure/login", raw, &login); err != nil {
		return nil, fmt.Errorf("azure login: %w", err)
	}
	pr.result("VAULT_TOKEN=%s… policies %v", login.Auth.ClientToken[:8], login.Auth.Policies)

	pr.show(`curl -s --header "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/aks/mysecret | jq`,
		"GET "+p.ServerURL+"/v1/aks/mysecret with that token")
	var secret struct {
		Data map[string]any `json:"data"`
	}
	if err = getJSON(ctx, pod, p.ServerURL+"/v1/aks/mysecret", map[string]string{"X-Vault-Token": login.Auth.ClientToken}, &secret); err != nil {
		return nil, fmt.Errorf("reading aks/mysecret: %w", err)
	}
	res.Secret = secret.Data
	pr.result("data: %v", secret.Data)

	// A pod without the aadpodidbinding label gets nothing.
	intruder, err := PodHTTPClient(IntruderPodIP, nil)
	if err != nil {
		return nil, err
	}
	pr.show("(a pod without the aadpodidbinding label asks for a token)",
		fmt.Sprintf("GET %s from the intruder pod (%s)", tokenURL, IntruderPodIP))
	status, msg, err := getStatus(ctx, intruder, tokenURL, map[string]string{"Metadata": "true"})
	if err != nil {
		return nil, err
	}
	res.IntruderRefused = status == http.StatusForbidden
	pr.result("%d %s", status, msg)

	if res.Secret["foo"] != "bar" {
		return res, fmt.Errorf("aks/mysecret = %v, want foo=bar", res.Secret)
	}
	if !res.IntruderRefused {
		return res, fmt.Errorf("the intruder pod was not refused (status %d)", status)
	}
	return res, nil
}

func lineValue(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// summaryLine picks the line that tells what a command did: its
// "Success!" line, the "Sealed" row of a status table, else the first.
func summaryLine(s string) string {
	first := ""
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if first == "" {
			first = l
		}
		if strings.HasPrefix(l, "Success!") || strings.HasPrefix(l, "Sealed") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return first
}

// redactArgs hides tokens and keys in printed commands.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "hvs.") || (i > 0 && (args[i-1] == "unseal" || args[i-1] == "login")):
			out[i] = a[:min(6, len(a))] + "…"
		default:
			out[i] = a
		}
	}
	return out
}

func getStatus(ctx context.Context, c *http.Client, u string, hdr map[string]string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func getJSON(ctx context.Context, c *http.Client, u string, hdr map[string]string, out any) error {
	// The first request after an assignment may meet a 503 with
	// Retry-After while the node catches up: honour it a few times.
	for attempt := 0; ; attempt++ {
		status, body, err := getStatus(ctx, c, u, hdr)
		if err != nil {
			return err
		}
		if status == http.StatusServiceUnavailable && attempt < 5 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		if status != http.StatusOK {
			return fmt.Errorf("%d %s", status, body)
		}
		return json.Unmarshal([]byte(body), out)
	}
}

func postJSON(ctx context.Context, c *http.Client, u string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	// curl --data sends the form content type, as the tutorial's does.
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errors.New("login response is not JSON")
	}
	return nil
}
