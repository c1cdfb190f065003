// Package cli implements every keyward subcommand: the long-running
// components (server, cloud, identity controller and agent, demo, dev) and
// the client commands with the vault CLI's syntax (operator, login, read,
// write, kv, policy, ...). Each area keeps its commands in its own file and
// contributes them through one function listed in commandSets.
package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Env is the process environment a command runs in. Commands read the
// environment only through Getenv, so tests can run them in-process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv looks up an environment variable ("" when unset).
	Getenv func(string) string
}

// Command is one subcommand.
type Command struct {
	// Name is the space-separated command path, e.g. "operator init".
	Name string
	// Synopsis is a one-line description for help output.
	Synopsis string
	// Run executes the command with the arguments after its name and
	// returns the process exit code as the vault CLI does: 0 ok, 1 local
	// or usage error, 2 server error (and `status` when sealed).
	Run func(ctx context.Context, env *Env, args []string) int
}

// commandSets lists where commands come from, one function per area. It
// is a function, not a variable, because commands such as demo run other
// commands through Main.
func commandSets() []func() []*Command {
	return []func() []*Command{
		serverCommands,
		vaultCommands,
		kvCommands,
		cloudCommands,
		identityCommands,
		demoCommands,
	}
}

func allCommands() []*Command {
	var all []*Command
	for _, set := range commandSets() {
		all = append(all, set()...)
	}
	return all
}

// Main runs the command named by args and returns its exit code.
func Main(ctx context.Context, env *Env, args []string) int {
	cmds := allCommands()
	var best *Command
	bestLen := 0
	for _, c := range cmds {
		words := strings.Fields(c.Name)
		if len(words) > len(args) || len(words) <= bestLen {
			continue
		}
		if slices.Equal(args[:len(words)], words) {
			best, bestLen = c, len(words)
		}
	}
	if best == nil {
		usage(env.Stderr, cmds, args)
		return 1
	}
	return best.Run(ctx, env, args[bestLen:])
}

func usage(w io.Writer, cmds []*Command, args []string) {
	prefix := ""
	if len(args) > 0 && args[0] != "-h" && args[0] != "-help" && args[0] != "--help" && args[0] != "help" {
		fmt.Fprintf(w, "Unknown command: %q\n\n", strings.Join(args, " "))
		prefix = args[0]
	}
	fmt.Fprintln(w, "Usage: keyward <command> [args]")
	fmt.Fprintln(w)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	shown := 0
	for _, c := range cmds {
		if prefix != "" && !strings.HasPrefix(c.Name, prefix) {
			continue
		}
		fmt.Fprintf(w, "    %-32s %s\n", c.Name, c.Synopsis)
		shown++
	}
	if shown == 0 && prefix != "" {
		usage(w, cmds, nil)
	}
}
