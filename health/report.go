package health

import (
	"context"
	"encoding/json"
	"time"
)

// Result is the outcome of one check.
type Result struct {
	// Name is the check's name.
	Name string
	// Status is what the check reported; Unhealthy when it timed out,
	// panicked or returned an invalid status.
	Status Status
	// Message is the check's message, or why it counts as unhealthy.
	Message string
	// Duration is how long the check ran (its timeout when it timed out).
	Duration time.Duration
	// TimedOut reports that the check did not finish within its timeout.
	TimedOut bool
}

// MarshalJSON writes {"name","status","message"?,"duration_seconds","timed_out"?}.
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string  `json:"name"`
		Status   Status  `json:"status"`
		Message  string  `json:"message,omitempty"`
		Duration float64 `json:"duration_seconds"`
		TimedOut bool    `json:"timed_out,omitempty"`
	}{r.Name, r.Status, r.Message, r.Duration.Seconds(), r.TimedOut})
}

// Report is the detail view of a registry.
type Report struct {
	// Status is the worst check status; Healthy when there are no checks.
	Status Status `json:"status"`
	// Ready is the readiness verdict: started, not draining and Status
	// not Unhealthy.
	Ready bool `json:"ready"`
	// Started reports whether MarkStarted was called.
	Started bool `json:"started"`
	// Draining reports whether the service is shutting down.
	Draining bool `json:"draining"`
	// Checks holds one result per check, in registration order.
	Checks []Result `json:"checks"`
}

// Report runs every check (concurrently, each under its timeout) and
// returns the detail view. Unlike Ready it runs the checks even when the
// service is not started or is draining.
func (r *Registry) Report(ctx context.Context) Report {
	started, draining := r.Started(), r.Draining()
	out := r.run(ctx)
	return Report{
		Status:   out.status,
		Ready:    started && !draining && out.status != Unhealthy,
		Started:  started,
		Draining: draining,
		Checks:   out.results,
	}
}
