//go:build unix

package pool

import (
	"fmt"
	"syscall"
	"time"
)

func processCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("pool: reading the process CPU time with getrusage(RUSAGE_SELF): %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}
