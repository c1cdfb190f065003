package cli

// kvCommands returns the kv commands. Owned by the kv area.
func kvCommands() []*Command { return nil }
