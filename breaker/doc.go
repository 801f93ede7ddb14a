// Package breaker is a small circuit breaker that protects a downstream from
// being hammered while it is down, and its callers from waiting on it.
//
// # States
//
//   - closed: calls go through. Consecutive failures are counted; a success
//     resets the count. At breaker.failure_threshold (default 5) consecutive
//     failures the breaker opens.
//   - open: calls are refused at once with ErrOpen. After breaker.open_timeout
//     (default 30 s) the next Allow moves it to half-open (lazily: no timer
//     runs).
//   - half-open: exactly one call, the probe, is let through; every other
//     call is refused with ErrOpen while the probe is in flight. The probe
//     decides: success closes the breaker, failure opens it again for another
//     open_timeout. A probe whose outcome is excluded (see below) frees the
//     slot for the next probe without deciding.
//
// # Outcomes
//
// Allow returns a Ticket; the caller reports how the call ended with exactly
// one of Ticket.Success, Ticket.Failure, Ticket.Ignore or Ticket.Done(err).
// Done classifies an error: nil is a success; a backpressure error
// (transport.ErrBackpressure, a downstream that is up but full) and a
// cancelled caller context are excluded, so they neither count as failures
// nor close the breaker; anything else is a failure. A ticket issued before a
// state change reports into a past generation and is ignored, so a slow call
// that started while the breaker was closed cannot close a breaker that has
// opened since.
//
// # Metrics
//
// keel_breaker_state{target} (0 closed, 1 half-open, 2 open) and
// keel_breaker_transitions_total{target,from,to}.
//
// # Why not a library
//
// A breaker of this shape is about a hundred lines. Owning it gives an
// injectable clock for deterministic tests, tickets whose outcome can be
// "excluded" after the fact (a *transport.BatchError is only classified once
// the call returned), generation-checked reports and the metrics above,
// without adapting a generic execute-callback API.
package breaker
