package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// podNet is one pod's network: a namespace with one end of a veth pair,
// the other end in the host namespace, a /24 of its own.
type podNet struct {
	name   string // pod name
	netns  string // network namespace
	hostIf string // host-side veth
	podIf  string // pod-side veth
	hostIP string // host-side address (the pod's gateway)
	podIP  string // the pod's address
}

// network is the test's pods-as-namespaces setup and the iptables rules
// that intercept their metadata traffic, as on a node.
type network struct {
	id          string // random, in every name the test creates
	natChain    string // nat chain jumped to from PREROUTING
	filterChain string // filter chain jumped to from FORWARD
	pods        map[string]*podNet
}

// netnsUsable tells whether pods can be network namespaces here: root and
// the ip, iptables, curl, jq and bash commands.
func netnsUsable() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "not root"
	}
	for _, bin := range []string{"ip", "iptables", "curl", "jq", "bash"} {
		if _, err := exec.LookPath(bin); err != nil {
			return false, bin + " not found"
		}
	}
	return true, ""
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sh runs a setup command and fails the test if it fails.
func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// pickSubnet returns a second octet b such that 10.b.0.0/16 is unused on
// this host (no address or route in it).
func pickSubnet(t *testing.T) int {
	t.Helper()
	addrs, err := exec.Command("ip", "-4", "-o", "addr").CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, addrs)
	}
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v: %s", err, routes)
	}
	used := string(addrs) + string(routes)
	for range 50 {
		n, _ := rand.Int(rand.Reader, big.NewInt(50))
		b := 200 + int(n.Int64())
		if !strings.Contains(used, fmt.Sprintf(" 10.%d.", b)) {
			return b
		}
	}
	t.Fatal("no free 10.x.0.0/16 for the pods")
	return 0
}

// newNetwork creates one namespace per pod name, in the order given
// (pod i gets 10.b.i.2, its gateway 10.b.i.1), DNATs their TCP traffic for
// 169.254.169.254:80 to agentAddr (like the node agent's rule, but only
// from the test's interfaces), lets them reach each other through the
// host, and removes all of it when the test ends.
func newNetwork(t *testing.T, agentAddr string, names ...string) *network {
	t.Helper()
	id := randomID(3)
	n := &network{
		id:          id,
		natChain:    "KW-E2E-" + id,
		filterChain: "KW-E2E-" + id,
		pods:        map[string]*podNet{},
	}
	b := pickSubnet(t)
	t.Cleanup(func() { n.remove(t) })

	sh(t, "iptables", "-w", "-t", "nat", "-N", n.natChain)
	sh(t, "iptables", "-w", "-t", "nat", "-I", "PREROUTING", "1", "-j", n.natChain)
	sh(t, "iptables", "-w", "-t", "filter", "-N", n.filterChain)
	sh(t, "iptables", "-w", "-t", "filter", "-I", "FORWARD", "1", "-j", n.filterChain)
	for i, name := range names {
		p := &podNet{
			name:   name,
			netns:  "kw" + id + "-" + name,
			hostIf: fmt.Sprintf("kw%sh%d", id, i+1),
			podIf:  fmt.Sprintf("kw%sp%d", id, i+1),
			hostIP: fmt.Sprintf("10.%d.%d.1", b, i+1),
			podIP:  fmt.Sprintf("10.%d.%d.2", b, i+1),
		}
		n.pods[name] = p
		sh(t, "ip", "netns", "add", p.netns)
		sh(t, "ip", "link", "add", p.hostIf, "type", "veth", "peer", "name", p.podIf)
		sh(t, "ip", "link", "set", p.podIf, "netns", p.netns)
		sh(t, "ip", "addr", "add", p.hostIP+"/24", "dev", p.hostIf)
		sh(t, "ip", "link", "set", p.hostIf, "up")
		sh(t, "ip", "netns", "exec", p.netns, "ip", "addr", "add", p.podIP+"/24", "dev", p.podIf)
		sh(t, "ip", "netns", "exec", p.netns, "ip", "link", "set", p.podIf, "up")
		sh(t, "ip", "netns", "exec", p.netns, "ip", "link", "set", "lo", "up")
		sh(t, "ip", "netns", "exec", p.netns, "ip", "route", "add", "default", "via", p.hostIP)
		// Only this test's interfaces forward (pod to pod) and accept DNAT
		// to a loopback address; the host's own settings stay untouched.
		for _, s := range []string{"forwarding", "route_localnet"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+p.hostIf+"/"+s, []byte("1"), 0o644); err != nil {
				t.Fatalf("sysctl %s on %s: %v", s, p.hostIf, err)
			}
		}
		sh(t, "iptables", "-w", "-t", "nat", "-A", n.natChain, "-i", p.hostIf, "-p", "tcp",
			"-d", "169.254.169.254/32", "--dport", "80", "-j", "DNAT", "--to-destination", agentAddr)
	}
	// Pods reach each other through the host, and nothing else: no packet
	// of theirs is forwarded off the machine.
	pods := "kw" + id + "h+"
	sh(t, "iptables", "-w", "-t", "filter", "-A", n.filterChain, "-i", pods, "-o", pods, "-j", "ACCEPT")
	sh(t, "iptables", "-w", "-t", "filter", "-A", n.filterChain, "-i", pods, "-j", "DROP")
	return n
}

// remove deletes the rules, links and namespaces the network created,
// reporting (not stopping at) failures.
func (n *network) remove(t *testing.T) {
	try := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Errorf("cleanup: %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exists := func(args ...string) bool { return exec.Command(args[0], args[1:]...).Run() == nil }
	for exists("iptables", "-w", "-t", "nat", "-C", "PREROUTING", "-j", n.natChain) {
		try("iptables", "-w", "-t", "nat", "-D", "PREROUTING", "-j", n.natChain)
	}
	if exists("iptables", "-w", "-t", "nat", "-L", n.natChain, "-n") {
		try("iptables", "-w", "-t", "nat", "-F", n.natChain)
		try("iptables", "-w", "-t", "nat", "-X", n.natChain)
	}
	for exists("iptables", "-w", "-t", "filter", "-C", "FORWARD", "-j", n.filterChain) {
		try("iptables", "-w", "-t", "filter", "-D", "FORWARD", "-j", n.filterChain)
	}
	if exists("iptables", "-w", "-t", "filter", "-L", n.filterChain, "-n") {
		try("iptables", "-w", "-t", "filter", "-F", n.filterChain)
		try("iptables", "-w", "-t", "filter", "-X", n.filterChain)
	}
	for _, p := range n.pods {
		if exists("ip", "link", "show", p.hostIf) {
			try("ip", "link", "del", p.hostIf) // removes the peer too
		}
		if exists("ip", "netns", "pids", p.netns) {
			// Processes still in the namespace would keep it alive.
			if out, _ := exec.Command("ip", "netns", "pids", p.netns).Output(); len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("cleanup: processes left in %s: %s", p.netns, out)
			}
			try("ip", "netns", "del", p.netns)
		}
	}
}
