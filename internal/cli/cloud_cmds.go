package cli

// cloudCommands returns the cloud commands. Owned by the cloud area.
func cloudCommands() []*Command { return nil }
