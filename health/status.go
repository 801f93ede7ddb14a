package health

import "fmt"

// Status is the state a check reports.
type Status int

// The statuses, from best to worst.
const (
	// Healthy: the component works.
	Healthy Status = iota
	// Degraded: the component works with reduced capacity or redundancy.
	// The service stays ready.
	Degraded
	// Unhealthy: the component cannot do its job. The service is not
	// ready while any check is unhealthy.
	Unhealthy
)

// String returns "healthy", "degraded", "unhealthy", or "invalid(N)".
func (s Status) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	case Unhealthy:
		return "unhealthy"
	}
	return fmt.Sprintf("invalid(%d)", int(s))
}

// Valid reports whether s is one of Healthy, Degraded and Unhealthy.
func (s Status) Valid() bool { return s >= Healthy && s <= Unhealthy }

// MarshalText writes the String form, so JSON shows "healthy" and so on.
func (s Status) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("health: cannot marshal invalid status %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads "healthy", "degraded" or "unhealthy".
func (s *Status) UnmarshalText(b []byte) error {
	switch string(b) {
	case "healthy":
		*s = Healthy
	case "degraded":
		*s = Degraded
	case "unhealthy":
		*s = Unhealthy
	default:
		return fmt.Errorf("health: unknown status %q, want healthy, degraded or unhealthy", b)
	}
	return nil
}

// worse returns the worse of two statuses.
func worse(a, b Status) Status {
	if b > a {
		return b
	}
	return a
}
