// Package e2e holds the end-to-end test of the tutorial: `keyward cloud`,
// `keyward server`, `keyward identity controller` and `keyward identity
// agent` as separate processes against a real kube-apiserver, with pods as
// network namespaces (as root) or loopback addresses, and the tutorial's
// own shell commands run inside them. It has no non-test code.
package e2e
