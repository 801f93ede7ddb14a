package logging

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAuditLevelsByOutcome(t *testing.T) {
	cleanEnv(t)
	for _, tc := range []struct {
		ev      AuditType
		outcome Outcome
		level   string
		wantOut string
	}{
		{AuthSuccess, "", "INFO", "success"},
		{AuthFailure, "", "WARN", "failure"},
		{AccessDenied, "", "WARN", "denied"},
		{ConfigChanged, "", "INFO", "success"},
		{RateLimited, "", "WARN", "denied"},
		{TokenRotated, "", "INFO", "success"},
		{InputValidationFailed, "", "WARN", "failure"},
		{RecordDeadLettered, "", "WARN", "failure"},
		{TokenRotated, OutcomeError, "ERROR", "error"},
		{ConfigChanged, OutcomeFailure, "WARN", "failure"},
		{AuthSuccess, "odd", "WARN", "odd"},
	} {
		var out syncBuffer
		l := New(Options{Format: FormatJSON, Output: &out, Metrics: testRegistry()})
		Audit(context.Background(), l, AuditEvent{Event: tc.ev, Outcome: tc.outcome})
		m := oneJSON(t, out.String())
		if m["level"] != tc.level || m["outcome"] != tc.wantOut || m["event"] != string(tc.ev) || m["audit"] != true {
			t.Errorf("%s/%q: %v", tc.ev, tc.outcome, m)
		}
		if !tc.ev.Valid() {
			t.Errorf("%s not in the vocabulary", tc.ev)
		}
	}
	if AuditType("made_up").Valid() {
		t.Error("made_up is not in the vocabulary")
	}
}

func TestAuditFieldsMaskedAndCounted(t *testing.T) {
	cleanEnv(t)
	var out syncBuffer
	reg := testRegistry()
	l := New(Options{Format: FormatJSON, Output: &out, Metrics: reg})
	a := Auditor{Logger: l, Metrics: reg}
	ctx, tid, _ := spanContext(t)
	a.Emit(ctx, AuditEvent{
		Event: AuthFailure, Actor: "alice@example.com", Resource: "topic/orders", Action: "login",
		Reason: "rejected, password=hunter2", SourceIP: "10.1.2.3",
		Attrs: []slog.Attr{slog.String("api_key", "k-123"), slog.Int("attempt", 3)},
	})
	a.Emit(ctx, AuditEvent{Event: AuthFailure})
	a.Emit(ctx, AuditEvent{Event: "made_up", Outcome: "weird"})
	lines := jsonLines(t, out.String())
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %d", len(lines))
	}
	m := lines[0]
	for k, v := range map[string]any{
		"msg": "audit auth_failure", "actor": "alice@example.com", "resource": "topic/orders", "action": "login",
		"reason": "rejected, password=[REDACTED]", "source_ip": "10.1.2.3", "api_key": "[REDACTED]",
		"attempt": 3.0, "trace_id": tid,
	} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if src, _ := m["source"].(string); !strings.HasPrefix(src, "logging/audit_test.go:") {
		t.Errorf("source = %q, want the caller of Emit", src)
	}
	for _, k := range []string{"actor", "resource", "reason", "source_ip"} {
		if _, ok := lines[1][k]; ok {
			t.Errorf("empty %s written: %v", k, lines[1])
		}
	}
	vec := reg.CounterVec(auditMetric, "event", "outcome")
	if v := testutil.ToFloat64(vec.With("auth_failure", "failure")); v != 2 {
		t.Errorf("audit_events_total{auth_failure,failure} = %v, want 2", v)
	}
	if v := testutil.ToFloat64(vec.With("other", "other")); v != 1 {
		t.Errorf("audit_events_total{other,other} = %v, want 1", v)
	}
}

func TestAuditBypassesFloodControl(t *testing.T) {
	cleanEnv(t)
	var out syncBuffer
	l := New(Options{Format: FormatJSON, Output: &out, Metrics: testRegistry(), Flood: FloodControl{Rate: 1e-9, Burst: 1}})
	for range 5 {
		Audit(context.Background(), l, AuditEvent{Event: AuthFailure, Actor: "mallory"})
		l.Warn("audit auth_failure") // the same message through the normal path
	}
	var audits, plain int
	for _, m := range jsonLines(t, out.String()) {
		if m["audit"] == true {
			audits++
		} else {
			plain++
		}
	}
	if audits != 5 || plain != 1 {
		t.Fatalf("audit lines %d (want 5), plain lines %d (want 1)", audits, plain)
	}
}

func TestAuditDefaultLoggerAndLevel(t *testing.T) {
	cleanEnv(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var out syncBuffer
	reg := testRegistry()
	slog.SetDefault(New(Options{Format: FormatJSON, Output: &out, Level: slog.LevelWarn, Metrics: reg}))
	a := Auditor{Metrics: reg}
	a.Emit(nil, AuditEvent{Event: AuthSuccess, Actor: "bob"}) // a nil context is tolerated
	a.Emit(context.Background(), AuditEvent{Event: AccessDenied, Actor: "eve"})
	lines := jsonLines(t, out.String())
	if len(lines) != 1 || lines[0]["actor"] != "eve" {
		t.Fatalf("lines: %v", lines)
	}
	// the filtered success is still counted
	if v := testutil.ToFloat64(reg.CounterVec(auditMetric, "event", "outcome").With("auth_success", "success")); v != 1 {
		t.Fatalf("filtered audit event not counted: %v", v)
	}
}
