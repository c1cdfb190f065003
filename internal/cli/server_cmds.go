package cli

// serverCommands returns the server commands. Owned by the server area.
func serverCommands() []*Command { return nil }
