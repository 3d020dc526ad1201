//go:build !linux

package azuritetest

import "os/exec"

// setParentDeath has no portable equivalent outside Linux; t.Cleanup stops
// the emulator in every orderly exit.
func setParentDeath(*exec.Cmd) {}
