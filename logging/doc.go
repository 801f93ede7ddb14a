// Package logging is keel's structured logging: a log/slog handler that
// writes JSON or human-readable text, masks secrets, adds the service and
// Kubernetes fields and trace ids, and keeps hot paths from flooding.
//
// # Start
//
// One call at start-up reads LOG_LEVEL (debug, info, warn, error) and
// LOG_FORMAT (json, text, auto) and installs the logger as slog's default:
//
//	logger := logging.Setup(logging.Options{Service: "orders", Version: "1.4.2"})
//	logger.Info("started", "port", 8080)
//	slog.Info("also through keel's handler")
//
// Explicit options win over the environment. Auto means text with colours
// when stderr is a terminal and NO_COLOR is unset, JSON otherwise. A bad
// LOG_LEVEL or LOG_FORMAT never makes Setup fail: the default is used and
// the new logger writes one warning line that says so. (keel.Main checks
// the same variables first and refuses to start on a bad value.)
//
// # Lines
//
// A JSON line holds timestamp (RFC 3339, UTC, microseconds), level, msg,
// source (pkg/file.go:line, the last element of the caller's import path
// and the file's name, on by default), then service and version when
// set, pod, namespace and node on Kubernetes (POD_NAME, or HOSTNAME in a
// pod; POD_NAMESPACE; NODE_NAME), trace_id and span_id when the context
// carries a valid OpenTelemetry span, and the attributes:
//
//	{"timestamp":"2026-01-02T15:04:05.123456Z","level":"INFO","msg":"started","source":"main/main.go:21","service":"orders","port":8080}
//
// The text format prints the same fields as "time LEVEL msg key=value ...
// source=file:line", the level coloured when colours are on.
//
// # Masking
//
// Masking is on by default. The value of an attribute, map key or struct
// field whose name is sensitive prints as [REDACTED]: password, token,
// secret, api_key, authorization, session, cookie, credentials, dsn,
// cert, pin, ... matched by words, not substrings, with the rules of the
// configuration dump (see Masker), so "db_password", "X-Api-Key",
// "userPassword" and "sentry_dsn" are masked while "mapping" and "author"
// are not. Masking reaches into groups, With attributes, maps, slices and
// structs (walked by reflection, depth-bounded), error texts, the message
// and every string value, which go through MaskString; and every
// secret.String prints as [REDACTED] wherever it sits. MaskString also
// cleans text that arrives already formatted: "password=hunter2",
// `"token": "abc"`, "Authorization: Bearer xyz", "postgres://u:pw@h/db",
// "https://token@host", a JSON list or object under a sensitive key, a
// Go map printed with %v ("map[tokens:[a b]]"), and YAML: a whole line
// ("password: correct horse staple") and a whole block (a PEM block
// scalar, a list of tokens).
// In the message and in error texts the leading "pkg: " labels of the Go
// convention are not read as a key: "secrets: manager ready" stays as it
// is, "password: hunter2" does not.
//
// # Floods
//
// Options.Flood limits each distinct message to a token bucket and
// reports the lines it dropped on the next line that passes. For one call
// site, StateChange logs only when a value changes, EveryN one event in
// N, and Sampler (Every) at most once per interval; each counts every
// event, logged or not.
//
// # Security events
//
// Audit writes events from a fixed vocabulary (auth_success, auth_failure,
// access_denied, config_changed, rate_limited, token_rotated,
// input_validation_failed, record_dead_lettered) with audit=true, event,
// outcome, actor, resource and reason, at a level chosen by the outcome.
//
// # Metrics
//
// keel_logging_lines_total{level}, keel_logging_suppressed_total and
// keel_logging_audit_events_total{event,outcome}.
package logging
