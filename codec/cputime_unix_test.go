//go:build unix

package codec

import (
	"syscall"
	"time"
)

// cpuNow returns the CPU time this process has used. Benchmarks compare
// CPU time rather than wall time, so other processes competing for the
// cores do not bias a ratio.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const cpuClock = "cpu"
