package azuritetest

import (
	"os/exec"
	"syscall"
)

// setParentDeath kills the emulator if the test binary dies without cleanup
// (a panic, a timeout, kill -9), so no orphaned node process keeps a port.
func setParentDeath(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
