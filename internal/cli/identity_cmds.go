package cli

// identityCommands returns the identity commands. Owned by the identity area.
func identityCommands() []*Command {
	return []*Command{identityControllerCommand(), identityAgentCommand()}
}
