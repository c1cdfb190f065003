package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/demo"
)

// demoCommands returns `demo` and `dev`.
func demoCommands() []*Command {
	return []*Command{
		{Name: "demo", Synopsis: "Run the tutorial end to end on this machine (no Kubernetes, no Azure, no root)", Run: runDemo},
		{Name: "dev", Synopsis: "Start the tutorial's platform and leave it running to explore", Run: runDev},
	}
}

// platformCLI runs keyward commands in-process against the platform, with
// its own HOME (token helper) and cloud profile.
func platformCLI(p *demo.Platform, home string) demo.CLI {
	vars := map[string]string{
		"VAULT_ADDR":        p.ServerURL,
		"HOME":              home,
		"KEYWARD_CLOUD_DIR": p.CloudDir,
	}
	return func(ctx context.Context, stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		env := &Env{
			Stdin:  strings.NewReader(stdin),
			Stdout: &out,
			Stderr: &errOut,
			Getenv: func(k string) string { return vars[k] },
		}
		if code := Main(ctx, env, args); code != 0 {
			return out.String(), fmt.Errorf("keyward %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(errOut.String()))
		}
		return out.String(), nil
	}
}

func startPlatform(ctx context.Context, env *Env, dir, serverAddr string, verbose bool) (*demo.Platform, string, error) {
	opts := demo.Options{Dir: dir, ServerAddr: serverAddr}
	if verbose {
		opts.Logger = newLogger(env.Stderr, "debug")
	}
	p, err := demo.Start(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	home := filepath.Join(p.Dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		p.Close(ctx)
		return nil, "", err
	}
	return p, home, nil
}

func runDemo(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	verbose := fs.Bool("v", false, "Log what the components do.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	start := time.Now()
	fmt.Fprintln(env.Stdout, `Keyward demo: "Integrating HashiCorp Vault with Azure AKS using Azure Pod Identity", on this machine.`)
	p, home, err := startPlatform(ctx, env, "", "", *verbose)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error starting the platform: %v\n", err)
		return 1
	}
	defer p.Close(ctx)
	fmt.Fprintf(env.Stdout, "keyward cloud (Entra ID %s, ARM %s), node IMDS %s, node agent %s, server %s (the vault pod, %s)\n",
		p.Cloud.AuthorityHost(), p.Cloud.ARMEndpoint(), p.IMDSURL, p.AgentURL, p.ServerURL, demo.VaultPodIP)
	res, err := p.RunTutorial(ctx, env.Stdout, platformCLI(p, home))
	if perr := p.Err(); perr != nil {
		err = errors.Join(err, perr)
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "\nDemo failed: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.Stdout, "\nOK: the demo pod read aks/mysecret (foo=%v) and the unlabelled pod was refused, in %.1fs.\n",
		res.Secret["foo"], time.Since(start).Seconds())
	return 0
}

func runDev(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dir := fs.String("dir", "", "State directory (default: a new temporary directory, removed on exit).")
	addr := fs.String("address", "127.0.0.1:8200", "The secrets server's listen address.")
	verbose := fs.Bool("v", false, "Log what the components do.")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, home, err := startPlatform(ctx, env, *dir, *addr, *verbose)
	if err != nil {
		fmt.Fprintf(env.Stderr, "Error starting the platform: %v\n", err)
		return 1
	}
	defer p.Close(ctx)
	var log bytes.Buffer
	res, err := p.RunTutorial(ctx, &log, platformCLI(p, home))
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s\nError setting up the tutorial: %v\n", log.String(), err)
		return 1
	}
	fmt.Fprintf(env.Stdout, `Keyward dev platform: the tutorial's system is set up and running.

  secrets server   %s   (tutorial config, data in %s)
  node agent       %s   (what 169.254.169.254 is for the pods)
  node IMDS        %s   (keyward cloud, scale set %s instance 0)
  Entra ID         %s
  Resource Manager %s
  pods             demo %s (aadpodidbinding=demo), vault-0 %s (aadpodidbinding=vault), intruder %s (no label)

Export this to use it:

    export VAULT_ADDR=%s
    export VAULT_TOKEN=%s
    export AZURE_POD_IDENTITY_AUTHORITY_HOST=%s
    export KEYWARD_CLOUD_DIR=%s

Try: keyward read aks/mysecret
     curl --interface %s -H Metadata:true "$AZURE_POD_IDENTITY_AUTHORITY_HOST/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/"

Press Ctrl-C to stop.
`, p.ServerURL, filepath.Join(p.Dir, "vault-data"), p.AgentURL, p.IMDSURL, demo.ScaleSet,
		p.Cloud.AuthorityHost(), p.Cloud.ARMEndpoint(), demo.DemoPodIP, demo.VaultPodIP, demo.IntruderPodIP,
		p.ServerURL, res.RootToken, p.AgentURL, p.CloudDir, demo.DemoPodIP)
	<-ctx.Done()
	fmt.Fprintln(env.Stdout, "Stopping.")
	return 0
}
