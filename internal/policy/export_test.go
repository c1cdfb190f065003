package policy

// DefaultPolicyText exposes the built-in default policy text to tests.
func DefaultPolicyText() string { return defaultPolicyText }
