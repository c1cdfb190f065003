package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Interceptor redirects pods' traffic for the metadata address to the
// agent. Install must be idempotent (Run calls it again periodically to
// re-assert the redirection); Remove undoes it.
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
	// MetadataPort is the intercepted TCP port; "" means 80.
	MetadataPort string
	// Target is the agent's address ("127.0.0.1:2579").
	Target string
	// InInterface limits interception to one interface (e.g. a test's
	// veth); "" means all interfaces.
	InInterface string
	// Binary is the iptables executable; "" means "iptables".
	Binary string

	mu    sync.Mutex
	saved map[string][]byte // guarded by mu; sysctl path -> value before Install
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
		// DNAT to 127.0.0.0/8 from another interface needs route_localnet
		// (the kernel uses the input interface's value or "all"'s).
		paths := []string{"/proc/sys/net/ipv4/conf/all/route_localnet"}
		if t.InInterface != "" {
			paths = []string{"/proc/sys/net/ipv4/conf/" + t.InInterface + "/route_localnet"}
		}
		for _, p := range paths {
			if err := t.setSysctl(p, "1"); err != nil {
				return fmt.Errorf("enabling route_localnet: %w", err)
			}
		}
	}
	port := t.MetadataPort
	if port == "" {
		port = "80"
	}
	// Like NMI, traffic from the node's own loopback is never redirected.
	dnat := []string{"-p", "tcp", "!", "-s", "127.0.0.1/32", "-d", ip + "/32", "--dport", port}
	if t.InInterface != "" {
		dnat = append(dnat, "-i", t.InInterface)
	}
	dnat = append(dnat, "-j", "DNAT", "--to-destination", t.Target)
	if _, err := t.run(ctx, "-t", "nat", "-N", chain); err != nil {
		// The chain exists: keep it when it holds exactly our two rules
		// (re-asserting must not open a window without interception),
		// else rebuild it.
		if !t.chainIntact(ctx, chain, dnat) {
			if _, ferr := t.run(ctx, "-t", "nat", "-F", chain); ferr != nil {
				return err
			}
			if err := t.fillChain(ctx, chain, dnat); err != nil {
				return err
			}
		}
	} else if err := t.fillChain(ctx, chain, dnat); err != nil {
		return err
	}
	if _, err := t.run(ctx, "-t", "nat", "-C", "PREROUTING", "-j", chain); err != nil {
		if _, err := t.run(ctx, "-t", "nat", "-I", "PREROUTING", "1", "-j", chain); err != nil {
			return err
		}
	}
	return nil
}

func (t *IPTables) fillChain(ctx context.Context, chain string, dnat []string) error {
	if _, err := t.run(ctx, append([]string{"-t", "nat", "-A", chain}, dnat...)...); err != nil {
		return err
	}
	_, err := t.run(ctx, "-t", "nat", "-A", chain, "-j", "RETURN")
	return err
}

// chainIntact reports whether chain holds exactly the DNAT rule and RETURN.
func (t *IPTables) chainIntact(ctx context.Context, chain string, dnat []string) bool {
	out, err := t.run(ctx, "-t", "nat", "-S", chain)
	if err != nil || len(strings.Split(strings.TrimSpace(out), "\n")) != 3 {
		return false
	}
	if _, err = t.run(ctx, append([]string{"-t", "nat", "-C", chain}, dnat...)...); err != nil {
		return false
	}
	_, err = t.run(ctx, "-t", "nat", "-C", chain, "-j", "RETURN")
	return err == nil
}

// setSysctl writes v to the sysctl file p, remembering the previous value
// for Remove.
func (t *IPTables) setSysctl(p, v string) error {
	old, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.saved == nil {
		t.saved = map[string][]byte{}
	}
	if _, ok := t.saved[p]; !ok {
		t.saved[p] = old
	}
	return os.WriteFile(p, []byte(v), 0o644) //nolint:gosec // sysctl files are world-readable by design
}

// Remove deletes the PREROUTING jump and the chain, and restores the
// sysctls Install changed.
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
	t.mu.Lock()
	for p, v := range t.saved {
		if err := os.WriteFile(p, v, 0o644); err != nil && firstErr == nil && !errors.Is(err, os.ErrNotExist) { //nolint:gosec // as above
			firstErr = err
		}
	}
	t.saved = nil
	t.mu.Unlock()
	return firstErr
}
