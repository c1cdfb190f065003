package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	aadv1 "github.com/keyward/keyward/api/aadpodidentity/v1"
	"github.com/keyward/keyward/internal/agent"
)

// run runs a command and fails the test on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(context.WithoutCancel(t.Context()), name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestIPTablesInterception puts a "pod" in its own network namespace
// behind a veth, intercepts its traffic to 169.254.169.254:80 with the
// agent's IPTables interceptor (DNAT to the agent on 127.0.0.1, with
// route_localnet on the veth), and checks that curl in the pod reaches the
// agent, is identified by its own address and gets its identity's token;
// everything is removed afterwards.
func TestIPTablesInterception(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces and iptables)")
	}
	for _, bin := range []string{"iptables", "ip", "curl"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	suffix := hex.EncodeToString(b)
	nsName, hostIf, podIf, chain := "kwagent-"+suffix, "kwh"+suffix, "kwp"+suffix, "KW-TEST-"+strings.ToUpper(suffix)
	// Addresses in a /30 of 10.251.0.0/16 chosen by the suffix; nothing is
	// routed off the machine.
	third, fourth := int(b[0]), int(b[1]&0xfc)
	hostIP, podIP := fmt.Sprintf("10.251.%d.%d", third, fourth+1), fmt.Sprintf("10.251.%d.%d", third, fourth+2)

	run(t, "ip", "netns", "add", nsName)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", nsName).Run() })
	run(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", podIf)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	run(t, "ip", "link", "set", podIf, "netns", nsName)
	run(t, "ip", "addr", "add", hostIP+"/30", "dev", hostIf)
	run(t, "ip", "link", "set", hostIf, "up")
	run(t, "ip", "netns", "exec", nsName, "ip", "addr", "add", podIP+"/30", "dev", podIf)
	run(t, "ip", "netns", "exec", nsName, "ip", "link", "set", podIf, "up")
	run(t, "ip", "netns", "exec", nsName, "ip", "link", "set", "lo", "up")
	run(t, "ip", "netns", "exec", nsName, "ip", "route", "add", "default", "via", hostIP)

	n := newNode(t, nil)
	id := n.identity(t, "netns", true)
	reg, err := agent.NewLocalRegistry(agent.LocalRegistryFile{
		Pods:       []agent.LocalPod{{Namespace: "demo", Name: "netns", IP: podIP, Labels: map[string]string{aadv1.CRDLabelKey: "netns"}}},
		Identities: []aadv1.AzureIdentity{*azureIdentity("demo", "netns", id)},
		Bindings:   []aadv1.AzureIdentityBinding{binding("demo", "netns", "netns", "netns")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The agent must know its port before installing the DNAT: reserve a
	// free one.
	port := freePort(t)
	ipt := &agent.IPTables{Chain: chain, Target: fmt.Sprintf("127.0.0.1:%d", port), InInterface: hostIf}
	localnet := "/proc/sys/net/ipv4/conf/" + hostIf + "/route_localnet"
	before, err := os.ReadFile(localnet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ipt.Remove(context.Background()) })
	a, err := agent.New(agent.Config{
		ListenAddr: fmt.Sprintf("127.0.0.1:%d", port), Upstream: n.imds.URL,
		Pods: reg, Identities: reg, Interceptor: ipt, HTTPClient: n.cloud.HTTPClient(),
		InterceptRefresh: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(cancel)
	select {
	case <-a.Ready():
	case runErr := <-done:
		t.Fatalf("Run: %v", runErr)
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	if rules := run(t, "iptables", "-w", "-t", "nat", "-S", chain); !strings.Contains(rules, "--to-destination 127.0.0.1:") {
		t.Fatalf("DNAT rule missing:\n%s", rules)
	}

	// Someone removes the jump: the agent puts it back.
	run(t, "iptables", "-w", "-t", "nat", "-D", "PREROUTING", "-j", chain)
	waitFor(t, func() bool {
		return exec.Command("iptables", "-w", "-t", "nat", "-C", "PREROUTING", "-j", chain).Run() == nil
	})
	// Someone flushes the chain: the agent rebuilds it.
	run(t, "iptables", "-w", "-t", "nat", "-F", chain)
	waitFor(t, func() bool {
		out, sErr := exec.Command("iptables", "-w", "-t", "nat", "-S", chain).Output()
		return sErr == nil && strings.Contains(string(out), "DNAT") && strings.Contains(string(out), "RETURN")
	})
	body := run(t, "ip", "netns", "exec", nsName, "curl", "-sS", "--max-time", "10", "-H", "Metadata: true",
		"http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net")
	if diff := cmp.Diff(identityClaims(id), tokenClaims(t, reply{status: 200, body: []byte(body)})); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	// The pod is identified by its own address: removing it from the
	// registry makes the same request unknown.
	reg.RemovePod("demo", "netns")
	code := run(t, "ip", "netns", "exec", nsName, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
		"-H", "Metadata: true", "http://169.254.169.254/metadata/identity/oauth2/token?resource=x")
	if code != "403" {
		t.Errorf("removed pod: status %s, want 403", code)
	}

	cancel()
	if runErr := <-done; runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	if out, listErr := exec.Command("iptables", "-w", "-t", "nat", "-S", chain).CombinedOutput(); listErr == nil {
		t.Errorf("chain %s still exists after Run:\n%s", chain, out)
	}
	if out := run(t, "iptables", "-w", "-t", "nat", "-S", "PREROUTING"); strings.Contains(out, chain) {
		t.Errorf("PREROUTING still jumps to %s:\n%s", chain, out)
	}
	after, err := os.ReadFile(localnet)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("route_localnet not restored: %q, was %q", after, before)
	}
}
