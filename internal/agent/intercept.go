package agent

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// Interceptor redirects pods' traffic for the metadata address to the
// agent. Install must be idempotent; Remove undoes it.
type Interceptor interface {
	Install(ctx context.Context) error
	Remove(ctx context.Context) error
}

// IPTables intercepts with a nat PREROUTING DNAT of MetadataIP:80 to the
// agent, as a node does. Only traffic entering from pod interfaces is
// redirected; the node itself (and so the agent) still reaches the real
// IMDS. When the target is a loopback address, route_localnet is enabled
// on the interfaces so DNAT to 127.0.0.0/8 is routable.
type IPTables struct {
	// Chain is the nat chain to manage; "" means KEYWARD-METADATA.
	Chain string
	// MetadataIP is the intercepted address; "" means 169.254.169.254.
	MetadataIP string
	// Target is the agent's address ("127.0.0.1:2579").
	Target string
	// InInterface limits interception to one interface (e.g. a test's
	// veth); "" means all interfaces.
	InInterface string
	// Binary is the iptables executable; "" means "iptables".
	Binary string
}

var _ Interceptor = (*IPTables)(nil)

func (t *IPTables) defaults() (chain, ip, bin string) {
	chain, ip, bin = t.Chain, t.MetadataIP, t.Binary
	if chain == "" {
		chain = "KEYWARD-METADATA"
	}
	if ip == "" {
		ip = "169.254.169.254"
	}
	if bin == "" {
		bin = "iptables"
	}
	return chain, ip, bin
}

func (t *IPTables) run(ctx context.Context, args ...string) (string, error) {
	_, _, bin := t.defaults()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-w"}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Install creates (or resets) the chain and the PREROUTING jump.
func (t *IPTables) Install(ctx context.Context) error {
	chain, ip, _ := t.defaults()
	host, _, err := net.SplitHostPort(t.Target)
	if err != nil {
		return fmt.Errorf("iptables target %q: %w", t.Target, err)
	}
	if net.ParseIP(host).IsLoopback() {
		if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/route_localnet", []byte("1"), 0o644); err != nil { //nolint:gosec // sysctl files are world-readable by design
			return fmt.Errorf("enabling route_localnet: %w", err)
		}
		if t.InInterface != "" {
			p := "/proc/sys/net/ipv4/conf/" + t.InInterface + "/route_localnet"
			if err := os.WriteFile(p, []byte("1"), 0o644); err != nil { //nolint:gosec // as above
				return fmt.Errorf("enabling route_localnet on %s: %w", t.InInterface, err)
			}
		}
	}
	if _, err := t.run(ctx, "-t", "nat", "-N", chain); err != nil {
		if _, ferr := t.run(ctx, "-t", "nat", "-F", chain); ferr != nil {
			return err
		}
	}
	rule := []string{"-t", "nat", "-A", chain, "-p", "tcp", "-d", ip + "/32", "--dport", "80"}
	if t.InInterface != "" {
		rule = append(rule, "-i", t.InInterface)
	}
	rule = append(rule, "-j", "DNAT", "--to-destination", t.Target)
	if _, err := t.run(ctx, rule...); err != nil {
		return err
	}
	if _, err := t.run(ctx, "-t", "nat", "-A", chain, "-j", "RETURN"); err != nil {
		return err
	}
	if _, err := t.run(ctx, "-t", "nat", "-C", "PREROUTING", "-j", chain); err != nil {
		if _, err := t.run(ctx, "-t", "nat", "-I", "PREROUTING", "1", "-j", chain); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the PREROUTING jump and the chain.
func (t *IPTables) Remove(ctx context.Context) error {
	chain, _, _ := t.defaults()
	var firstErr error
	for {
		if _, err := t.run(ctx, "-t", "nat", "-D", "PREROUTING", "-j", chain); err != nil {
			break
		}
	}
	if _, err := t.run(ctx, "-t", "nat", "-F", chain); err != nil && firstErr == nil {
		firstErr = err
	}
	if _, err := t.run(ctx, "-t", "nat", "-X", chain); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}
