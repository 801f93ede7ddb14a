package keel

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport"
)

// TieredSection is the tiered sub-section of a sender's transport
// section (<section>.tiered, e.g. output.tiered). With Enabled true,
// Runtime.Sender wraps the sender it built in a tiered.Sink; the other
// keys are those of tiered.Config at the same level (send_timeout,
// ordering, drain_batch, drain_bytes, max_attempts, drop_undeliverable,
// backoff, rate_limit, stall_timeout, close_drain_timeout, spool,
// breaker):
//
//	output:
//	  type: file
//	  file:
//	    path: /data/out.ndjson
//	  tiered:
//	    enabled: true
//	    spool:
//	      dir: /var/lib/myapp/spool/output
//	    breaker:
//	      failure_threshold: 5
//
// spool.dir defaults to spool/<section> and spool.name to the section, so
// that two tiered senders never share a spool or its metrics.
type TieredSection struct {
	// Enabled puts the sender behind a tiered sink. Default false.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Config is the tiered sink's settings (package tiered).
	tiered.Config `koanf:",squash"`
}

// Validate checks the tiered settings, naming each bad key under the
// tiered section (tiered.spool.max_bytes); decodeTiered names them under
// their transport section (output.tiered.spool.max_bytes).
func (s TieredSection) Validate() error { return s.Config.Validate() }

// tieredKey is the key of a transport section's tiered sub-section.
func tieredKey(section string) string { return section + "." + tiered.Section }

// decodeTiered decodes and validates the section's tiered sub-section.
// ok is false when the sub-section is absent or not enabled. An error is
// a *SectionError naming the sub-section, whose text names each bad key
// under it.
func (rt *Runtime) decodeTiered(section string) (TieredSection, bool, error) {
	key := tieredKey(section)
	var ts TieredSection
	if !rt.cfg.Contains(key) {
		return ts, false, nil
	}
	if err := rt.cfg.Section(key, &ts); err != nil {
		return ts, false, &SectionError{Key: key, Err: err}
	}
	if err := ts.Config.Validate(); err != nil {
		return ts, false, &SectionError{Key: key, Err: rekey(err, tiered.Section, key)}
	}
	if !ts.Enabled {
		return ts, false, nil
	}
	return ts.forSection(section), true, nil
}

// forSection returns s with the defaults that depend on its transport
// section: the spool directory spool/<section> and the spool name
// <section>, so that two tiered senders never share a spool.
func (s TieredSection) forSection(section string) TieredSection {
	if s.Spool.Dir == "" {
		s.Spool.Dir = filepath.Join("spool", section)
	}
	if s.Spool.Name == "" {
		s.Spool.Name = section
	}
	return s
}

// TieredSourceName is the name of the governor's soft pressure source for
// the spool of the tiered sender of section: "tiered:<section>". Weigh it
// with self_regulation.weights (default governor.DefaultSoftWeight).
func TieredSourceName(section string) string { return "tiered:" + section }

// wrapTiered puts s behind a tiered sink when the section's tiered
// sub-section is enabled. The sink takes ownership of s (it closes it)
// and, on error, s is closed here. Its undeliverable records go to the
// runtime's dead-letter queue (section dlq) or, when it built none, to the
// engine's dead-letter route (WithDeadLetterRouter); with neither, the
// sink holds them in the spool unless tiered.drop_undeliverable is set. The sink's spool fill level becomes a
// soft pressure source of the governor, and while the sink cannot drain
// (tiered.Sink.CannotDrain: breaker open, spool stalled for
// stall_timeout, or spool full) the scaling pressure's circuit is open,
// which forces the scaling pressure to zero; the sink's Health, the
// section's readiness check, fails under the same conditions.
func (rt *Runtime) wrapTiered(ctx context.Context, tc TransportContext, s transport.Sender) (transport.Sender, error) {
	ts, ok, err := rt.decodeTiered(tc.Section)
	if err != nil || !ok {
		if err != nil {
			_ = s.Close(ctx)
		}
		return s, err
	}
	opts := tiered.Options{Name: tc.Section, Metrics: rt.reg, Logger: rt.log}
	if d := rt.DLQ(); d != nil {
		opts.DeadLetters = d
	} else if route := rt.sections.engine.RouteDeadLetters; route != nil {
		// The app routes dead letters itself (WithDeadLetterRouter): the
		// sink's undeliverable records take the same route.
		opts.DeadLetters = routeDeadLetters(route)
	}
	sink, err := tiered.New(ctx, s, ts.Config, opts)
	if err != nil {
		_ = s.Close(ctx)
		return nil, &SectionError{Key: tieredKey(tc.Section), Err: rekey(err, tiered.Section, tieredKey(tc.Section))}
	}
	if rt.gov != nil {
		name := TieredSourceName(tc.Section)
		w := governor.DefaultSoftWeight
		if cw, found := rt.gov.Config().Weights[name]; found {
			w = cw
		}
		rt.gov.Pressure().AddSoft(governor.FuncSource(name, sink.PressureRatio), w)
	}
	rt.mu.Lock()
	first := len(rt.tiered) == 0
	rt.tiered = append(rt.tiered, sink)
	rt.mu.Unlock()
	if first {
		rt.scaling.CircuitSource(rt.tieredCannotDrain)
	}
	return sink, nil
}

// tieredCannotDrain reports whether any tiered sink cannot drain its
// spool: the scaling pressure's circuit source.
func (rt *Runtime) tieredCannotDrain() bool {
	rt.mu.Lock()
	sinks := rt.tiered
	rt.mu.Unlock()
	for _, s := range sinks {
		if s.CannotDrain() {
			return true
		}
	}
	return false
}

// checkTiered validates the tiered sub-section of a transport section at
// start-up and in config-check.
func (rt *Runtime) checkTiered(section string) error {
	_, _, err := rt.decodeTiered(section)
	return err
}

// routeDeadLetters makes the engine's dead-letter route a tiered sink's
// dead-letter sink. The sink acknowledges a record in its spool once Write
// returns nil, so the record is as durable as the route makes it: a route
// that returns before its entries are written loses them in a crash.
type routeDeadLetters engine.DeadLetterRouter

// Write converts the entries to dead letters (a transport.DeadLetter has no
// attempt count: the reason says it) and hands them to the route.
func (r routeDeadLetters) Write(ctx context.Context, entries ...dlq.Entry) error {
	letters := make([]transport.DeadLetter, len(entries))
	for i, e := range entries {
		reason := e.Reason
		if e.Attempts > 0 {
			reason = fmt.Sprintf("%s (attempts: %d)", reason, e.Attempts)
		}
		var source string
		if e.Source != nil {
			source = e.Source.Token
		}
		letters[i] = transport.DeadLetter{
			Record:      transport.Record{Payload: e.Payload, Key: e.Key, Headers: e.Headers},
			Reason:      reason,
			Destination: e.Destination,
			Source:      source,
		}
	}
	return r(ctx, letters)
}
