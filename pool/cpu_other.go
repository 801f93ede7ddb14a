//go:build !unix && !windows

package pool

import "time"

func processCPUTime() (time.Duration, error) { return 0, ErrCPUTimeUnsupported }
