// Package logtest is a test helper of the transports: a slog.Handler that
// records what is logged, so that a test can assert which warnings a
// component wrote and with which attributes.
//
//	var logs logtest.Recorder
//	cfg.Logger = slog.New(&logs)
//	// ... exercise the component ...
//	for _, w := range logs.Find(slog.LevelWarn, "line over the size limit sent to dead letters") {
//		_ = w["suppressed_since_last"]
//	}
package logtest
