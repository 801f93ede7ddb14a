//go:build windows

package pool

import (
	"fmt"
	"syscall"
	"time"
)

func processCPUTime() (time.Duration, error) {
	h, err := syscall.GetCurrentProcess()
	if err != nil {
		return 0, fmt.Errorf("pool: reading the process CPU time: GetCurrentProcess: %w", err)
	}
	var created, exited, kernel, user syscall.Filetime
	if err := syscall.GetProcessTimes(h, &created, &exited, &kernel, &user); err != nil {
		return 0, fmt.Errorf("pool: reading the process CPU time with GetProcessTimes: %w", err)
	}
	return filetimeDuration(kernel) + filetimeDuration(user), nil
}

// filetimeDuration converts a FILETIME holding a duration (100 ns ticks),
// not a date: Filetime.Nanoseconds would subtract the 1601 epoch.
func filetimeDuration(ft syscall.Filetime) time.Duration {
	return time.Duration(uint64(ft.HighDateTime)<<32|uint64(ft.LowDateTime)) * 100
}
