//go:build !unix

package codec

import "time"

var start0 = time.Now()

// cpuNow falls back to wall time where getrusage is not available.
func cpuNow() time.Duration { return time.Since(start0) }

const cpuClock = "wall"
