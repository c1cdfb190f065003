package cli

// demoCommands returns the demo commands. Owned by the demo area.
func demoCommands() []*Command { return nil }
