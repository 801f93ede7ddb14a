package memory

import (
	"fmt"
	"runtime/debug"
)

// GoLimitAction says what ApplyGoMemoryLimit did.
type GoLimitAction string

// Outcomes of ApplyGoMemoryLimit.
const (
	// GoLimitSet: the runtime memory limit was set to the cgroup limit
	// times memory.go_memory_limit_fraction.
	GoLimitSet GoLimitAction = "set"
	// GoLimitUserSet: GOMEMLIMIT is set; the user's limit stays.
	GoLimitUserSet GoLimitAction = "user_set"
	// GoLimitKeptLower: the process already runs with a lower limit (set
	// through debug.SetMemoryLimit); it stays.
	GoLimitKeptLower GoLimitAction = "kept_lower"
	// GoLimitNoContainerLimit: there is no cgroup limit to derive one from.
	// On a host the memory is shared with other processes, so the runtime
	// keeps its own default (no limit).
	GoLimitNoContainerLimit GoLimitAction = "no_container_limit"
	// GoLimitDisabled: memory.enabled is false.
	GoLimitDisabled GoLimitAction = "disabled"
)

// GoLimitResult reports what ApplyGoMemoryLimit did.
type GoLimitResult struct {
	// Action is what was done.
	Action GoLimitAction `json:"action"`
	// Bytes is the runtime memory limit in force after the call; 0 means
	// none.
	Bytes int64 `json:"bytes"`
	// Previous is the runtime memory limit before the call; 0 means none.
	Previous int64 `json:"previous"`
}

// String describes the result in one line.
func (r GoLimitResult) String() string {
	switch r.Action {
	case GoLimitSet:
		return fmt.Sprintf("Go memory limit set to %d bytes (%s), was %s", r.Bytes, humanBytes(r.Bytes), limitText(r.Previous))
	case GoLimitUserSet:
		return fmt.Sprintf("Go memory limit left as GOMEMLIMIT sets it: %s", limitText(r.Bytes))
	case GoLimitKeptLower:
		return fmt.Sprintf("Go memory limit kept at the lower %s already in force", limitText(r.Bytes))
	case GoLimitNoContainerLimit:
		return fmt.Sprintf("Go memory limit not set: no cgroup memory limit (in force: %s)", limitText(r.Bytes))
	case GoLimitDisabled:
		return fmt.Sprintf("Go memory limit not set: memory.enabled is false (in force: %s)", limitText(r.Bytes))
	}
	return fmt.Sprintf("Go memory limit: %s (%s)", r.Action, limitText(r.Bytes))
}

func limitText(b int64) string {
	if b == 0 {
		return "none"
	}
	return fmt.Sprintf("%d bytes (%s)", b, humanBytes(b))
}

// ApplyGoMemoryLimit gives the Go runtime its soft memory limit
// (debug.SetMemoryLimit), the runtime half of the memory guard: the
// garbage collector works harder as the heap nears it, and the guard's
// own limit sits below it.
//
// When the user did not set GOMEMLIMIT and the process runs under a
// cgroup memory limit, it sets the limit to that cgroup limit times
// memory.go_memory_limit_fraction (default 0.90), unless the process
// already runs with a lower one. When GOMEMLIMIT is set, when there is no
// cgroup limit, or when the guard is disabled, it changes nothing. It
// logs and returns what it did. Calling it again has the same outcome.
//
// New does not call it, so building a guard in a test or a library never
// changes the process; the service runtime calls it once at start-up.
func (g *Guard) ApplyGoMemoryLimit() GoLimitResult {
	prev := runtimeMemoryLimit()
	r := GoLimitResult{Bytes: prev, Previous: prev}
	switch {
	case !g.enabled:
		r.Action = GoLimitDisabled
	case g.limits.GoSource == GoLimitFromEnv:
		r.Action = GoLimitUserSet
	case g.limits.GoSource != GoLimitFromCgroup:
		r.Action = GoLimitNoContainerLimit
		if g.limits.GoSource == GoLimitFromRuntime {
			r.Action = GoLimitKeptLower
		}
	case prev > 0 && prev < g.limits.GoBytes:
		r.Action = GoLimitKeptLower
	default:
		debug.SetMemoryLimit(g.limits.GoBytes)
		r.Action, r.Bytes = GoLimitSet, g.limits.GoBytes
	}
	g.log.Info("memory: "+r.String(),
		"action", string(r.Action), "go_memory_limit_bytes", r.Bytes, "previous_bytes", r.Previous,
		"guard_limit_bytes", g.limit, "cgroup_limit_bytes", g.limits.CgroupBytes)
	return r
}
