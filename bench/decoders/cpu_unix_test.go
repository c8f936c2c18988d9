//go:build unix

package decoders

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, on every thread: unlike
// the wall time of a benchmark, it does not grow when other processes take
// the cores, so decoders compare fairly on a busy machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
