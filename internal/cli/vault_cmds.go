package cli

// vaultCommands returns the vault commands. Owned by the vault area.
func vaultCommands() []*Command { return nil }
