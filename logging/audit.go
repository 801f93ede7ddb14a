package logging

import (
	"context"
	"log/slog"
	"runtime"
	"time"

	"github.com/keel-go/keel/metrics"
)

// AuditType names a security event. The vocabulary is fixed: use the
// constants below so that alerts and dashboards can rely on the names.
type AuditType string

// The security event vocabulary.
const (
	AuthSuccess           AuditType = "auth_success"
	AuthFailure           AuditType = "auth_failure"
	AccessDenied          AuditType = "access_denied"
	ConfigChanged         AuditType = "config_changed"
	RateLimited           AuditType = "rate_limited"
	TokenRotated          AuditType = "token_rotated"
	InputValidationFailed AuditType = "input_validation_failed"
	RecordDeadLettered    AuditType = "record_dead_lettered"
)

// Valid reports whether t is one of the vocabulary constants.
func (t AuditType) Valid() bool {
	switch t {
	case AuthSuccess, AuthFailure, AccessDenied, ConfigChanged, RateLimited,
		TokenRotated, InputValidationFailed, RecordDeadLettered:
		return true
	}
	return false
}

// DefaultOutcome is the outcome an event of type t has when none is given.
func (t AuditType) DefaultOutcome() Outcome {
	switch t {
	case AuthSuccess, ConfigChanged, TokenRotated:
		return OutcomeSuccess
	case AccessDenied, RateLimited:
		return OutcomeDenied
	}
	return OutcomeFailure
}

// Outcome is the result of the audited action.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
	OutcomeDenied  Outcome = "denied"
	OutcomeError   Outcome = "error"
)

// Level is the log level of an outcome: success info, failure and denied
// warn, error error; an unknown outcome warns.
func (o Outcome) Level() slog.Level {
	switch o {
	case OutcomeSuccess:
		return slog.LevelInfo
	case OutcomeError:
		return slog.LevelError
	}
	return slog.LevelWarn
}

// AuditEvent is one security event. Empty fields are left out of the line.
type AuditEvent struct {
	// Event is the event type, one of the AuditType constants.
	Event AuditType
	// Outcome defaults to Event.DefaultOutcome().
	Outcome Outcome
	// Actor is who acted: a user, a client id, a service account.
	Actor string
	// Resource is what was acted on: a topic, a path, a config key.
	Resource string
	// Action is what was attempted ("login", "read", "reload").
	Action string
	// Reason says why the outcome is what it is.
	Reason string
	// SourceIP is the remote address, when there is one.
	SourceIP string
	// Attrs are extra attributes; they are masked like any other.
	Attrs []slog.Attr
}

// Auditor writes security events and counts them in
// keel_logging_audit_events_total{event,outcome}. The zero value uses
// slog.Default() and metrics.Default().
type Auditor struct {
	// Logger receives the events; nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the counter; nil means metrics.Default().
	Metrics *metrics.Registry
}

// Audit writes ev through logger (nil means slog.Default()). See
// Auditor.Emit.
func Audit(ctx context.Context, logger *slog.Logger, ev AuditEvent) {
	a := Auditor{Logger: logger}
	a.emit(ctx, ev, 3)
}

// Emit writes ev as one line with audit=true, event, outcome and the
// non-empty fields, at the outcome's level. Audit lines bypass flood
// control: a security trail must not have holes. An Event outside the
// vocabulary (or an unknown Outcome) is written as given and counted as
// "other".
func (a *Auditor) Emit(ctx context.Context, ev AuditEvent) { a.emit(ctx, ev, 3) }

func (a *Auditor) emit(ctx context.Context, ev AuditEvent, skip int) {
	if ctx == nil {
		ctx = context.Background()
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.Default()
	}
	outcome := ev.Outcome
	if outcome == "" {
		outcome = ev.Event.DefaultOutcome()
	}
	label, outLabel := string(ev.Event), string(outcome)
	if !ev.Event.Valid() {
		label = "other"
	}
	switch outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied, OutcomeError:
	default:
		outLabel = "other"
	}
	metrics.OrDefault(a.Metrics).CounterVec(auditMetric, "event", "outcome").With(label, outLabel).Inc()

	level := outcome.Level()
	h := logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(skip, pcs[:])
	r := slog.NewRecord(time.Now(), level, "audit "+string(ev.Event), pcs[0])
	r.AddAttrs(
		slog.Bool("audit", true),
		slog.String("event", string(ev.Event)),
		slog.String("outcome", string(outcome)),
	)
	for _, kv := range [...][2]string{
		{"actor", ev.Actor}, {"resource", ev.Resource}, {"action", ev.Action},
		{"reason", ev.Reason}, {"source_ip", ev.SourceIP},
	} {
		if kv[1] != "" {
			r.AddAttrs(slog.String(kv[0], kv[1]))
		}
	}
	r.AddAttrs(ev.Attrs...)
	_ = h.Handle(withFloodExempt(ctx), r)
}
