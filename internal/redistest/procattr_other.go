//go:build !linux

package redistest

import "os/exec"

// DieWithParent does nothing where the system cannot end a child with its
// parent: Stop and Kill still end the servers a test started.
func DieWithParent(*exec.Cmd) {}
