//go:build !linux

package k8stest

import "syscall"

// procAttr has no parent-death signal outside Linux; Main stops the
// processes.
func procAttr() *syscall.SysProcAttr { return nil }
