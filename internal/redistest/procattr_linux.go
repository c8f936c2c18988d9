package redistest

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process end with the test binary that started
// it, even when the binary is killed (a timeout, a mutation run): no server
// is left behind holding a port.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
