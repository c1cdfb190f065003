package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/cloud"
	"github.com/keyward/keyward/internal/k8stest"
)

func TestMain(m *testing.M) {
	bin, err := buildKeyward()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	keywardBin = bin
	k8stest.Main(m)
}

// The tutorial's names.
const (
	location     = "canadacentral"
	clusterRG    = "aks-demo-rg"
	nodeRG       = "MC_aks-demo-rg_demo-cluster_canadacentral" // the cluster's node resource group
	scaleSet     = "aks-nodepool1-12345678-vmss"
	nodeName     = "aks-nodepool1-12345678-vmss000000"
	armResource  = "https://management.azure.com/"
	tutorialHCL0 = `ui = true

listener "tcp" {
  tls_disable = 1
  address = "%s"
  cluster_address = "%s"
}
storage "file" {
  path = "%s"
}
`
)

// TestTutorial runs the tutorial end to end with separate processes. As
// root, pods are network namespaces whose metadata traffic is DNATed to
// the node agent (subtest netns); everywhere, pods are also loopback
// addresses whose curl binds its source address (subtest loopback).
// KEYWARD_E2E_NETWORK=netns or loopback runs only one.
func TestTutorial(t *testing.T) {
	only := os.Getenv("KEYWARD_E2E_NETWORK")
	for _, mode := range []string{"netns", "loopback"} {
		t.Run(mode, func(t *testing.T) {
			if only != "" && only != mode {
				t.Skipf("KEYWARD_E2E_NETWORK=%s", only)
			}
			if mode == "netns" {
				if ok, why := netnsUsable(); !ok {
					t.Skipf("pods as network namespaces need root, ip, iptables, curl, jq and bash: %s", why)
				}
			}
			for _, bin := range []string{"curl", "jq", "bash"} {
				if _, err := lookPath(bin); err != nil {
					t.Skipf("the tutorial's pod commands need %s: %v", bin, err)
				}
			}
			runTutorial(t, mode == "netns")
		})
	}
}

// pod is a tutorial pod: its Kubernetes labels and how it runs commands.
type pod struct {
	name   string
	labels map[string]string
	ip     string
	// netns is the pod's network namespace ("" in loopback mode).
	netns string
}

type tutorial struct {
	t         *testing.T
	netns     bool
	env       *k8stest.Env
	dir       string // scratch directory
	home      string // HOME of the CLI processes
	path      string // PATH with the keyward binary first
	cloudDir  string
	profile   *cloud.Profile
	sub       string
	tenant    string
	agent     string // agent listen address
	imds      string // keyward cloud's IMDS listener for the node
	vaultIP   string
	vaultPort int
	pods      map[string]*pod
	net       *network
	node      string
}

func runTutorial(t *testing.T, useNetns bool) {
	tu := &tutorial{t: t, netns: useNetns, dir: t.TempDir(), pods: map[string]*pod{}}
	tu.home = filepath.Join(tu.dir, "home")
	tu.cloudDir = filepath.Join(tu.dir, "cloud")
	for _, d := range []string{tu.home, tu.cloudDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tu.path = filepath.Dir(keywardBin) + ":" + os.Getenv("PATH")
	tu.env = k8stest.Start(t)
	tu.env.InstallCRDs()
	ns := tu.env.NewNamespace("tutorial")
	tu.node = nodeName + "-" + randomID(2)

	// Pods and their addresses. The server is the "vault" pod.
	tu.agent = "127.0.0.1:" + itoa(freePort(t, "127.0.0.1"))
	if useNetns {
		tu.net = newNetwork(t, tu.agent, "vault", "demo", "intruder")
		for name, p := range tu.net.pods {
			tu.pods[name] = &pod{name: name, ip: p.podIP, netns: p.netns}
		}
		tu.vaultIP, tu.vaultPort = tu.pods["vault"].ip, 8200
	} else {
		// The server cannot choose its source address, so the vault pod is
		// 127.0.0.1, the address its requests to the agent come from.
		b := 100 + int(randomID(1)[0])%100
		tu.pods["vault"] = &pod{name: "vault", ip: "127.0.0.1"}
		tu.pods["demo"] = &pod{name: "demo", ip: fmt.Sprintf("127.%d.0.2", b)}
		tu.pods["intruder"] = &pod{name: "intruder", ip: fmt.Sprintf("127.%d.0.3", b)}
		tu.vaultIP, tu.vaultPort = "127.0.0.1", freePort(t, "127.0.0.1")
	}
	tu.pods["vault"].labels = map[string]string{"app": "vault", "aadpodidbinding": "vault"}
	tu.pods["demo"].labels = map[string]string{"app": "ubuntu", "aadpodidbinding": "demo"}
	tu.pods["intruder"].labels = map[string]string{"app": "ubuntu"}

	tu.startCloud()
	kubeconfig := tu.writeKubeconfig()
	tu.startAgent(kubeconfig)
	tu.startController(kubeconfig)
	tu.startServer()

	// Runs after the pods, identities and bindings are deleted and before
	// the processes stop: the controller must release every assignment,
	// so nothing is left for another run's controller.
	t.Cleanup(func() { tu.waitAssignmentsGone(ns) })

	ids := tu.createIdentities()
	for _, name := range []string{"demo", "vault"} {
		tu.applyIdentity(ns, name, ids[name])
	}
	tu.env.CreateNode(tu.node, "azure://"+tu.instanceID())
	for _, name := range []string{"vault", "demo", "intruder"} {
		p := tu.pods[name]
		tu.env.CreatePod(k8stest.Pod{Namespace: ns, Name: name, Labels: p.labels, NodeName: tu.node, IP: p.ip})
	}
	// `kubectl get pods`: wait until the controller has assigned both
	// identities to the node.
	for _, name := range []string{"vault", "demo"} {
		tu.waitAssigned(ns, name)
	}

	tu.configureVault()

	t.Run("demo pod reads the secret", func(t *testing.T) {
		out := tu.inPod(t, "demo", podScript(tu.vaultAddr()))
		var secret struct {
			Data map[string]string `json:"data"`
		}
		if err := json.Unmarshal([]byte(out.stdout), &secret); err != nil {
			t.Fatalf("secret read in the demo pod is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, out.stdout, out.stderr)
		}
		if diff := cmp.Diff(map[string]string{"foo": "bar"}, secret.Data); diff != "" {
			t.Errorf("aks/mysecret (-want +got):\n%s\nstderr:\n%s", diff, out.stderr)
		}
		// The token the pod got is the demo identity's, for ARM.
		claims := jwtClaims(t, filepath.Join(tu.podDir("demo"), "claims.b64"))
		want := map[string]any{"appid": ids["demo"].clientID, "aud": armResource}
		got := map[string]any{"appid": claims["appid"], "aud": claims["aud"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("demo pod's token claims (-want +got):\n%s", diff)
		}
		// ARM IDs compare case-insensitively (Azure itself writes
		// "resourcegroups" in xms_mirid and "resourceGroups" elsewhere).
		if mirid, _ := claims["xms_mirid"].(string); !strings.EqualFold(mirid, ids["demo"].resourceID) {
			t.Errorf("demo pod's token xms_mirid = %q, want %q", mirid, ids["demo"].resourceID)
		}
	})

	t.Run("metadata of the node", func(t *testing.T) {
		out := tu.inPod(t, "demo", `metadata=$(curl -s -H Metadata:true "http://169.254.169.254/metadata/instance?api-version=2017-08-01")
echo $metadata | jq -c '{s: .compute.subscriptionId, g: .compute.resourceGroupName, n: .compute.name, v: .compute.vmScaleSetName}'`)
		var got map[string]string
		if err := json.Unmarshal([]byte(out.stdout), &got); err != nil {
			t.Fatalf("metadata: %v\n%s\n%s", err, out.stdout, out.stderr)
		}
		want := map[string]string{"s": tu.sub, "g": nodeRG, "n": scaleSet + "_0", "v": scaleSet}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("instance metadata seen by the pod (-want +got):\n%s", diff)
		}
	})

	t.Run("intruder is refused", func(t *testing.T) {
		// The bare token request: 403, no token.
		out := tu.inPod(t, "intruder", `curl -s -o body.json -w '%{http_code}' 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F' -H Metadata:true; echo; jq -r '.access_token // "none"' body.json`)
		if diff := cmp.Diff("403\nnone\n", out.stdout); diff != "" {
			t.Errorf("intruder token request (-want +got):\n%s\nstderr:\n%s", diff, out.stderr)
		}
		// Asking for a bound identity by client_id does not help.
		out = tu.inPod(t, "intruder", fmt.Sprintf(`curl -s -o /dev/null -w '%%{http_code}' 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%%3A%%2F%%2Fmanagement.azure.com%%2F&client_id=%s' -H Metadata:true`, ids["demo"].clientID))
		if out.stdout != "403" {
			t.Errorf("intruder token request naming the demo identity: status %q, want 403", out.stdout)
		}
		// The whole tutorial flow gets no Vault token and no secret.
		out = tu.inPod(t, "intruder", podScript(tu.vaultAddr()))
		if strings.Contains(out.stdout, `"foo"`) || strings.Contains(out.stdout, "bar") {
			t.Errorf("intruder read the secret:\n%s", out.stdout)
		}
		var reply struct {
			Errors []string `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out.stdout), &reply); err != nil || len(reply.Errors) == 0 {
			t.Errorf("intruder's secret read: want a Vault error, got %q (%v)", out.stdout, err)
		}
	})
}

// identity is what the tutorial's az commands print about an identity.
type identity struct {
	clientID, resourceID, assignmentID string
}

func lookPath(bin string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, bin)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not in PATH", bin)
}

func (tu *tutorial) cliEnv(extra ...string) []string {
	env := []string{"PATH=" + tu.path, "HOME=" + tu.home, "LANG=C", "KEYWARD_CLOUD_DIR=" + tu.cloudDir}
	return append(env, extra...)
}

func (tu *tutorial) vaultAddr() string {
	return fmt.Sprintf("http://%s:%d", tu.vaultIP, tu.vaultPort)
}

func (tu *tutorial) instanceID() string {
	return "/subscriptions/" + tu.sub + "/resourceGroups/" + nodeRG +
		"/providers/Microsoft.Compute/virtualMachineScaleSets/" + scaleSet + "/virtualMachines/0"
}

// startCloud runs `keyward cloud serve` with the cluster's node resource
// group and scale set (what `az aks create` makes) and an IMDS listener
// for the node.
func (tu *tutorial) startCloud() {
	t := tu.t
	tu.tenant, tu.sub = newGUID(), newGUID()
	bootstrap := fmt.Sprintf(`tenantId: %s
subscriptionId: %s
resourceGroups:
- name: %s
  location: %s
  scaleSets: [{name: %s, instances: 1}]
`, tu.tenant, tu.sub, nodeRG, location, scaleSet)
	bf := filepath.Join(tu.dir, "bootstrap.yaml")
	if err := os.WriteFile(bf, []byte(bootstrap), 0o600); err != nil {
		t.Fatal(err)
	}
	// In netns mode the server (in the vault namespace) reaches Entra ID
	// and ARM at the host end of its veth.
	host := "127.0.0.1"
	if tu.netns {
		host = tu.net.pods["vault"].hostIP
	}
	tu.imds = "127.0.0.1:" + itoa(freePort(t, "127.0.0.1"))
	p := start(t, "cloud", tu.cliEnv(), keywardBin, "cloud", "serve", "--data-dir", tu.cloudDir,
		"--login-addr", host+":0", "--arm-addr", host+":0", "--tls-host", host,
		"--bootstrap", bf, "--imds", tu.imds+"="+tu.instanceID(), "--log-level", "debug")
	poll(t, "keyward cloud profile", 2*time.Minute, func() (bool, string, error) {
		if p.exited() {
			return false, "", fmt.Errorf("keyward cloud exited:\n%s", tail(p.log, 30))
		}
		prof, err := cloud.ReadProfile(tu.cloudDir)
		if err != nil {
			return false, err.Error(), nil
		}
		tu.profile = prof
		return true, "", nil
	})
	poll(t, "keyward cloud IMDS", 2*time.Minute, func() (bool, string, error) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+tu.imds+"/metadata/instance?api-version=2017-08-01", nil)
		if err != nil {
			return false, "", err
		}
		req.Header.Set("Metadata", "true")
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}

func newGUID() string {
	b := []byte(randomID(16))
	return fmt.Sprintf("%s-%s-4%s-a%s-%s", b[0:8], b[8:12], b[13:16], b[17:20], b[20:32])
}

// writeKubeconfig writes a kubeconfig for the controller and agent (the
// test apiserver's admin; RBAC of the chart is tested in internal/chart).
func (tu *tutorial) writeKubeconfig() string {
	rc := tu.env.RESTConfig
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "admin"}
	cfg.CurrentContext = "test"
	path := filepath.Join(tu.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		tu.t.Fatal(err)
	}
	return path
}

// startAgent runs the node agent in listener mode on 127.0.0.1, like
// NMI's 127.0.0.1:2579; in netns mode the test's DNAT (limited to its own
// veths) plays the node's iptables rule.
func (tu *tutorial) startAgent(kubeconfig string) {
	t := tu.t
	probe := "127.0.0.1:" + itoa(freePort(t, "127.0.0.1"))
	p := start(t, "agent", tu.cliEnv(), keywardBin, "identity", "agent",
		"--kubeconfig", kubeconfig, "--node", tu.node, "--listen-address", tu.agent,
		"--upstream", "http://"+tu.imds, "--probe-address", probe, "--log-level", "debug")
	waitHTTP(t, p, "agent /healthz", "http://"+probe+"/healthz", func(code int, body string) bool {
		return code == http.StatusOK && body == "Active"
	})
}

// startController runs the identity controller with ARM credentials in an
// azure.json, as on AKS (here keyward cloud's admin principal).
func (tu *tutorial) startController(kubeconfig string) {
	t := tu.t
	azureJSON, err := json.Marshal(map[string]any{
		"cloud": "AzurePublicCloud", "tenantId": tu.profile.TenantID, "subscriptionId": tu.sub,
		"aadClientId": tu.profile.ClientID, "aadClientSecret": tu.profile.ClientSecret,
		"resourceGroup": nodeRG, "vmType": "vmss", "location": location,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc := filepath.Join(tu.dir, "azure.json")
	if err := os.WriteFile(cc, azureJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	probe := "127.0.0.1:" + itoa(freePort(t, "127.0.0.1"))
	p := start(t, "controller", tu.cliEnv(), keywardBin, "identity", "controller",
		"--kubeconfig", kubeconfig, "--cloudconfig", cc,
		"--arm-endpoint", tu.profile.ARMEndpoint, "--authority-host", tu.profile.AuthorityHost, "--ca-file", tu.profile.CAFile,
		"--http-probe-address", probe, "--prometheus-address", "",
		"--leader-election-namespace", "default", "--leader-election-name", "keyward-e2e-"+randomID(3),
		"--log-level", "debug")
	waitHTTP(t, p, "controller /healthz", "http://"+probe+"/healthz", func(code int, _ string) bool {
		return code == http.StatusOK
	})
}

// startServer runs `keyward server` with the tutorial's configuration
// (file storage in the test's directory). In netns mode it runs inside the
// vault pod's namespace with the tutorial's listener address verbatim, and
// its managed identity requests go to 169.254.169.254 like any pod's.
func (tu *tutorial) startServer() {
	t := tu.t
	addr, cluster := "[::]:8200", "[::]:8201"
	env := tu.cliEnv("KEYWARD_AZURE_CA_FILE=" + tu.profile.CAFile)
	argv := []string{keywardBin, "server"}
	if tu.netns {
		argv = append([]string{"ip", "netns", "exec", tu.pods["vault"].netns}, argv...)
	} else {
		addr = fmt.Sprintf("127.0.0.1:%d", tu.vaultPort)
		cluster = fmt.Sprintf("127.0.0.1:%d", freePort(t, "127.0.0.1"))
		env = append(env, "AZURE_POD_IDENTITY_AUTHORITY_HOST=http://"+tu.agent)
	}
	hcl := fmt.Sprintf(tutorialHCL0, addr, cluster, filepath.Join(tu.dir, "vault-data"))
	cf := filepath.Join(tu.dir, "vault.hcl")
	if err := os.WriteFile(cf, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	p := start(t, "server", env, append(argv, "-config", cf)...)
	waitHTTP(t, p, "server /v1/sys/health", tu.vaultAddr()+"/v1/sys/health", func(code int, _ string) bool {
		return code == http.StatusNotImplemented // not initialised yet
	})
}

// waitHTTP polls url until ok accepts the answer or p exits.
func waitHTTP(t *testing.T, p *proc, what, url string, ok func(code int, body string) bool) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second}
	poll(t, what, 2*time.Minute, func() (bool, string, error) {
		if p.exited() {
			return false, "", fmt.Errorf("%s exited:\n%s", p.name, tail(p.log, 30))
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return ok(resp.StatusCode, strings.TrimSpace(string(b))), resp.Status + " " + string(b), nil
	})
}

// identitiesScript is the tutorial's "Creating Azure identity" section:
// its az commands verbatim, az being keyward cloud. IDENTITY_RESOURCE_GROUP,
// which the tutorial never sets, is the cluster's node resource group (as
// in the AKS documentation): the role below binds logins to it.
const identitiesScript = `set -euo pipefail
az() { keyward cloud "$@"; }

az group create --location canadacentral --name aks-demo-rg

export RESOURCE_GROUP="aks-demo-rg"
export CLUSTER_NAME="demo-cluster"
export CLUSTER_LOCATION="canadacluster"
export SUBSCRIPTION_ID="$(az account show --query id -o tsv)"
export IDENTITY_RESOURCE_GROUP="` + nodeRG + `"

export IDENTITY_NAME="demo"
az identity create -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME}
export IDENTITY_CLIENT_ID="$(az identity show -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME} --query clientId -otsv)"
export IDENTITY_RESOURCE_ID="$(az identity show -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME} --query id -otsv)"
export IDENTITY_ASSIGNMENT_ID="$(az role assignment create --role Reader --assignee ${IDENTITY_CLIENT_ID} --scope /subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${IDENTITY_RESOURCE_GROUP} --query id -otsv)"
echo "${IDENTITY_NAME} ${IDENTITY_CLIENT_ID} ${IDENTITY_RESOURCE_ID} ${IDENTITY_ASSIGNMENT_ID}" >> identities.txt

export IDENTITY_NAME="vault"
az identity create -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME}
export IDENTITY_CLIENT_ID="$(az identity show -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME} --query clientId -otsv)"
export IDENTITY_RESOURCE_ID="$(az identity show -g ${IDENTITY_RESOURCE_GROUP} -n ${IDENTITY_NAME} --query id -otsv)"
export IDENTITY_ASSIGNMENT_ID="$(az role assignment create --role Reader --assignee ${IDENTITY_CLIENT_ID} --scope /subscriptions/${SUBSCRIPTION_ID}/resourceGroups/${IDENTITY_RESOURCE_GROUP} --query id -otsv)"
echo "${IDENTITY_NAME} ${IDENTITY_CLIENT_ID} ${IDENTITY_RESOURCE_ID} ${IDENTITY_ASSIGNMENT_ID}" >> identities.txt
`

func (tu *tutorial) createIdentities() map[string]identity {
	t := tu.t
	dir := filepath.Join(tu.dir, "admin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, tu.cliEnv(), "", "bash", "-c", identitiesScript)
	b, err := os.ReadFile(filepath.Join(dir, "identities.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]identity{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("identities.txt line %q: want name, client ID, resource ID, assignment ID", line)
		}
		ids[f[0]] = identity{clientID: f[1], resourceID: f[2], assignmentID: f[3]}
	}
	for _, name := range []string{"demo", "vault"} {
		id := ids[name]
		wantID := "/subscriptions/" + tu.sub + "/resourcegroups/" + strings.ToLower(nodeRG) + "/providers/microsoft.managedidentity/userassignedidentities/" + name
		if !strings.EqualFold(id.resourceID, wantID) || len(id.clientID) != 36 || !strings.Contains(id.assignmentID, "/providers/Microsoft.Authorization/roleAssignments/") {
			t.Fatalf("identity %s = %+v", name, id)
		}
	}
	return ids
}

// The tutorial's manifests ("Deploying Azure Identity on AKS"), with the
// parts lost in the published page restored from aad-pod-identity's docs.
const (
	identityYAML = `apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentity
metadata:
  name: ${IDENTITY_NAME}
spec:
  type: 0
  resourceID: ${IDENTITY_RESOURCE_ID}
  clientID: ${IDENTITY_CLIENT_ID}
`
	bindingYAML = `apiVersion: "aadpodidentity.k8s.io/v1"
kind: AzureIdentityBinding
metadata:
  name: ${IDENTITY_NAME}-binding
spec:
  azureIdentity: ${IDENTITY_NAME}
  selector: ${IDENTITY_NAME}
`
)

// applyIdentity is `cat <<EOF | kubectl apply -f -` of both manifests;
// the objects are deleted when the test ends.
func (tu *tutorial) applyIdentity(ns, name string, id identity) {
	t := tu.t
	vars := map[string]string{"IDENTITY_NAME": name, "IDENTITY_RESOURCE_ID": id.resourceID, "IDENTITY_CLIENT_ID": id.clientID}
	for _, m := range []string{identityYAML, bindingYAML} {
		objs, err := tu.env.Apply(t.Context(), ns, []byte(os.Expand(m, func(k string) string { return vars[k] })))
		if err != nil {
			t.Fatalf("kubectl apply (%s): %v", name, err)
		}
		for _, o := range objs {
			t.Cleanup(func() {
				if err := tu.env.Client.Delete(context.WithoutCancel(t.Context()), o); client.IgnoreNotFound(err) != nil {
					t.Errorf("delete %s %s: %v", o.GetKind(), o.GetName(), err)
				}
			})
		}
	}
}

// waitAssigned waits until the pod's AzureAssignedIdentity is Assigned.
func (tu *tutorial) waitAssigned(ns, podName string) {
	t := tu.t
	poll(t, "identity of pod "+podName+" assigned", 3*time.Minute, func() (bool, string, error) {
		var list aadv1.AzureAssignedIdentityList
		if err := tu.env.Client.List(t.Context(), &list); err != nil {
			return false, "", err
		}
		var states []string
		for _, a := range list.Items {
			if a.Spec.Pod == podName && a.Spec.PodNamespace == ns {
				if a.Status.Status == aadv1.AssignedIDAssigned {
					return true, "", nil
				}
				states = append(states, a.Name+"="+a.Status.Status)
			}
		}
		return false, fmt.Sprint(states), nil
	})
}

// waitAssignmentsGone waits until no AzureAssignedIdentity of the
// namespace's pods is left.
func (tu *tutorial) waitAssignmentsGone(ns string) {
	t := tu.t
	ctx := context.WithoutCancel(t.Context())
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list aadv1.AzureAssignedIdentityList
		if err := tu.env.Client.List(ctx, &list); err != nil {
			t.Errorf("list assigned identities: %v", err)
			return
		}
		var left []string
		for _, a := range list.Items {
			if a.Spec.PodNamespace == ns {
				left = append(left, a.Namespace+"/"+a.Name+"="+a.Status.Status)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("assigned identities left 2 minutes after their pods were deleted: %v", left)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// configureVault is the tutorial's "Deploying Vault" section after the
// helm install, with vault being the keyward CLI: init, unseal, login,
// azure auth, the role, kv and the policy.
func (tu *tutorial) configureVault() {
	t := tu.t
	script := `set -euo pipefail
az() { keyward cloud "$@"; }
vault() { keyward "$@"; }
export SUBSCRIPTION_ID="$(az account show --query id -o tsv)"
export IDENTITY_RESOURCE_GROUP="` + nodeRG + `"

export VAULT_SKIP_VERIFY=true
export VAULT_ADDR=` + tu.vaultAddr() + `
init="$(vault operator init -key-shares 1 -key-threshold 1)"
unseal_key="$(echo "$init" | sed -n 's/^Unseal Key 1: //p')"
root_token="$(echo "$init" | sed -n 's/^Initial Root Token: //p')"
vault operator unseal "$unseal_key"

vault login "$root_token"
vault auth enable azure
vault write auth/azure/config tenant_id=$(az account show --query tenantId -o tsv) resource=https://management.azure.com/ \
    authority_host=` + tu.profile.AuthorityHost + ` resource_manager_endpoint=` + tu.profile.ARMEndpoint + `
vault write auth/azure/role/aks-role policies="aks" bound_subscription_ids=${SUBSCRIPTION_ID} bound_resource_groups=${IDENTITY_RESOURCE_GROUP}

vault secrets enable -path=aks kv
vault kv put aks/mysecret foo=bar

vault policy write aks - << EOF
path "aks/*" {
  capabilities = ["read", "list"]
}
EOF
`
	dir := filepath.Join(tu.dir, "admin")
	mustRun(t, dir, tu.cliEnv(), "", "bash", "-c", script)
}

// podScript is the tutorial's "Verify Azure Identity binding" section, run
// in a pod: its commands verbatim (the vm_name line, cut in the published
// page, completed), VAULT_ADDR the server's address. The last line keeps
// the token's claims (not the signed token) for the test.
func podScript(vaultAddr string) string {
	return `metadata=$(curl -H Metadata:true "http://169.254.169.254/metadata/instance?api-version=2017-08-01")

subscription_id=$(echo $metadata | jq -r .compute.subscriptionId)
vm_name=$(echo $metadata | jq -r .compute.name)
vmss_name=$(echo $metadata | jq -r .compute.vmScaleSetName)
resource_group_name=$(echo $metadata | jq -r .compute.resourceGroupName)

response=$(curl 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fmanagement.azure.com%2F' -H Metadata:true -s)

jwt=$(echo $response | jq -r .access_token)

cat <<EOF > auth_payload_complete.json
{
    "role": "aks-role",
    "jwt": "$jwt",
    "subscription_id": "$subscription_id",
    "resource_group_name": "$resource_group_name",
    "vm_name": "$vm_name",
    "vmss_name": "$vmss_name"
}
EOF

export VAULT_ADDR=` + vaultAddr + `
VAULT_TOKEN=$(curl -s --request POST --data @auth_payload_complete.json $VAULT_ADDR/v1/auth/azure/login | jq .auth.client_token | sed 's/"//g')

curl -s --header "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/aks/mysecret | jq

echo "$jwt" | cut -d. -f2 > claims.b64; rm -f auth_payload_complete.json
`
}

func (tu *tutorial) podDir(name string) string {
	d := filepath.Join(tu.dir, "pod-"+name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		tu.t.Fatal(err)
	}
	return d
}

// inPod runs a bash script as the pod: inside its network namespace, or
// (loopback mode) with curl bound to the pod's address and the metadata
// address connected to the agent, which is what the DNAT does.
func (tu *tutorial) inPod(t *testing.T, name, script string) result {
	t.Helper()
	p := tu.pods[name]
	dir := tu.podDir(name)
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C"}
	if p.netns != "" {
		return run(t, dir, env, "", "ip", "netns", "exec", p.netns, "bash", "-c", script)
	}
	prelude := fmt.Sprintf("curl() { command curl --interface %s --connect-to 169.254.169.254:80:%s \"$@\"; }\n", p.ip, tu.agent)
	return run(t, dir, env, "", "bash", "-c", prelude+script)
}

// jwtClaims decodes the base64url claims the pod script saved.
func jwtClaims(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(string(b)), "="))
	if err != nil {
		t.Fatalf("token claims: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("token claims: %v", err)
	}
	return c
}
