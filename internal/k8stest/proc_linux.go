package k8stest

import "syscall"

// procAttr makes the kernel kill a child when the test binary dies, so a
// crashed or interrupted test run leaves no apiserver behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
