package dlq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
)

// dispatcher is the queue's drain: it spreads each batch over the
// backends by mode and makes written entries durable at barriers.
type dispatcher struct {
	mode     Mode
	backends []Backend
	syncers  []Syncer
	// unsynced[i] holds the entries written to backends[i] (a Syncer)
	// since its last Sync, to hand them on if the Sync fails.
	unsynced    [][]Encoded
	maxUnsynced int
	// pendingErr collects failures of durable points taken inside
	// WriteBatch, for the next barrier.
	pendingErr error
	m          *dlqMetrics
	logger     *slog.Logger
	warn       *logging.Sampler
	dropLog    *logging.Sampler
	// now stamps drops for Health.
	now func() time.Time
	// state is what Health reports from.
	state backendState
}

type dlqMetrics struct {
	entries       *metrics.CounterVec
	writeSeconds  *metrics.HistogramVec
	fallthroughs  *metrics.CounterVec
	syncErrors    *metrics.CounterVec
	dropped       *metrics.CounterVec
	routed        prometheus.Counter
	routeRejected prometheus.Counter
}

func newDLQMetrics(reg *metrics.Registry) *dlqMetrics {
	r := metrics.OrDefault(reg)
	o := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "dlq", Name: name, Help: help, Unit: unit, Group: "dlq"}
	}
	return &dlqMetrics{
		entries:      r.CounterVec(o("backend_entries_total", "Dead-letter entries offered to a backend by result (ok, error).", ""), "backend", "result"),
		writeSeconds: r.HistogramVec(o("backend_write_seconds", "Duration of one batch write to a dead-letter backend.", "seconds"), metrics.LatencyBuckets, "backend"),
		fallthroughs: r.CounterVec(o("fallthrough_total", "Dead-letter entries a backend failed to take and that the cascade handed to the next backend.", ""), "backend"),
		syncErrors:   r.CounterVec(o("sync_errors_total", "Failed durability syncs of a dead-letter backend.", ""), "backend"),
		dropped: r.CounterVec(o("dropped_total",
			"Dead-letter entries lost for good: no backend took them within max_attempts (write_failed) or a failed sync left none to hand them to (sync_failed).", ""), "reason"),
		routed:        r.Counter(o("routed_total", "Dead letters taken from the engine's dead-letter route.", "")),
		routeRejected: r.Counter(o("route_rejected_total", "Dead letters the engine's route could not queue; the engine stopped without committing them.", "")),
	}
}

func newDispatcher(mode Mode, backends []Backend, maxUnsynced int, m *dlqMetrics, logger *slog.Logger, now func() time.Time) *dispatcher {
	d := &dispatcher{
		mode: mode, backends: backends, maxUnsynced: maxUnsynced, m: m, logger: logger, now: now,
		state:    backendState{last: make([]error, len(backends))},
		syncers:  make([]Syncer, len(backends)),
		unsynced: make([][]Encoded, len(backends)),
		warn:     logging.Every(10 * time.Second),
		dropLog:  logging.Every(10 * time.Second),
	}
	for i, b := range backends {
		if s, ok := b.(Syncer); ok {
			d.syncers[i] = s
		}
	}
	return d
}

// WriteBatch writes items by mode. It returns nil when every entry was
// taken by a backend, a *PartialError naming the ones no backend took, or
// an *AllBackendsFailedError when none was taken.
func (d *dispatcher) WriteBatch(ctx context.Context, items []Encoded) error {
	var err error
	if d.mode == ModeFanOut {
		err = d.fanOut(ctx, items, -1)
	} else {
		err = d.cascade(ctx, items, 0)
	}
	if err == nil || errAny(err) {
		d.state.setBatch(err)
	}
	return err
}

// cascade offers items to backends[from:] in order; what one backend
// does not take goes to the next.
func (d *dispatcher) cascade(ctx context.Context, items []Encoded, from int) error {
	remaining := []int(nil) // nil: all of items
	var errs []error
	for i := from; i < len(d.backends); i++ {
		sub := items
		if remaining != nil {
			sub = gather(items, remaining)
		}
		failed, err := d.writeTo(ctx, i, sub)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		if remaining == nil {
			remaining = failed
		} else {
			next := make([]int, len(failed))
			for k, f := range failed {
				next[k] = remaining[f]
			}
			remaining = next
		}
		if i+1 < len(d.backends) {
			d.m.fallthroughs.With(d.backends[i].Name()).Add(float64(len(remaining)))
			if ok, skipped := d.warn.Allow(); ok {
				d.logger.Warn("dlq backend failed; handing entries to the next backend",
					"backend", d.backends[i].Name(), "next", d.backends[i+1].Name(), "entries", len(remaining),
					"error", err, "suppressed", skipped)
			}
		}
	}
	if remaining == nil {
		remaining = seqIdx(len(items))
	}
	return result(items, remaining, errs)
}

// fanOut writes items to every backend but skip; an entry is written if
// any backend took it.
func (d *dispatcher) fanOut(ctx context.Context, items []Encoded, skip int) error {
	took := make([]bool, len(items))
	var errs []error
	for i := range d.backends {
		if i == skip {
			continue
		}
		failed, err := d.writeTo(ctx, i, items)
		if err != nil {
			errs = append(errs, err)
		}
		bad := make(map[int]bool, len(failed))
		for _, f := range failed {
			bad[f] = true
		}
		for k := range items {
			if !bad[k] {
				took[k] = true
			}
		}
	}
	var remaining []int
	for k, ok := range took {
		if !ok {
			remaining = append(remaining, k)
		}
	}
	if len(remaining) == 0 {
		if len(errs) > 0 {
			if ok, skipped := d.warn.Allow(); ok {
				d.logger.Warn("dlq fan-out: a backend failed, another took the entries", "error", errors.Join(errs...), "suppressed", skipped)
			}
		}
		return nil
	}
	return result(items, remaining, errs)
}

// result builds the error for the entries at remaining that no backend
// took.
func result(items []Encoded, remaining []int, errs []error) error {
	all := &AllBackendsFailedError{Entries: len(remaining), Errs: errs}
	if len(remaining) == len(items) {
		return all
	}
	return &PartialError{Failed: remaining, Err: all}
}

// writeTo writes sub to backends[i] and returns the indices of sub that
// failed (nil with a nil error when all were taken).
func (d *dispatcher) writeTo(ctx context.Context, i int, sub []Encoded) ([]int, error) {
	b := d.backends[i]
	if d.syncers[i] != nil && len(d.unsynced[i])+len(sub) > d.maxUnsynced {
		// Bound what is kept for a failed sync: take a durable point now.
		if err := d.syncOne(ctx, i); err != nil {
			d.pendingErr = errors.Join(d.pendingErr, err)
		}
	}
	start := time.Now()
	err := b.Write(ctx, sub)
	d.m.writeSeconds.With(b.Name()).Observe(time.Since(start).Seconds())
	var failed []int
	if err != nil {
		var pe *PartialError
		if errors.As(err, &pe) && validIdx(pe.Failed, len(sub)) {
			failed = pe.Failed
		} else {
			failed = seqIdx(len(sub))
		}
		if _, ok := err.(*BackendError); !ok && !errors.Is(err, ErrBackend) {
			err = &BackendError{Backend: b.Name(), Op: "write", Err: err}
		}
	}
	if err == nil || errAny(err) {
		d.state.setBackend(i, err)
	}
	d.m.entries.With(b.Name(), "ok").Add(float64(len(sub) - len(failed)))
	if len(failed) > 0 {
		d.m.entries.With(b.Name(), "error").Add(float64(len(failed)))
	}
	if d.syncers[i] != nil && len(failed) < len(sub) {
		fi := 0
		for k := range sub {
			if fi < len(failed) && failed[fi] == k {
				fi++
				continue
			}
			d.unsynced[i] = append(d.unsynced[i], sub[k])
		}
	}
	if err != nil {
		return failed, err
	}
	return nil, nil
}

// Flush makes everything written durable: it syncs every backend that
// took entries since its last sync. A failed sync hands those entries to
// the other backends (cascade: the later ones; fan_out: all the others);
// only if that fails too is the error returned.
func (d *dispatcher) Flush(ctx context.Context) error {
	errs := []error{d.pendingErr}
	d.pendingErr = nil
	for i := range d.backends {
		if d.syncers[i] == nil || len(d.unsynced[i]) == 0 {
			continue
		}
		errs = append(errs, d.syncOne(ctx, i))
	}
	return errors.Join(errs...)
}

// syncOne syncs backends[i] and hands its unsynced entries on when that
// fails.
func (d *dispatcher) syncOne(ctx context.Context, i int) error {
	b := d.backends[i]
	err := d.syncers[i].Sync(ctx)
	entries := d.unsynced[i]
	d.unsynced[i] = nil
	// Reuse the slice for the next round once done with it here (a hand-on
	// below may write to this same backend's slice, so only after).
	defer func() {
		if d.unsynced[i] == nil && cap(entries) <= 2*d.maxUnsynced {
			clear(entries)
			d.unsynced[i] = entries[:0]
		}
	}()
	if err == nil {
		return nil
	}
	if errAny(err) {
		d.state.setBackend(i, &BackendError{Backend: b.Name(), Op: "sync", Err: err})
	}
	d.m.syncErrors.With(b.Name()).Inc()
	serr := &BackendError{Backend: b.Name(), Op: "sync", Err: err}
	if len(entries) == 0 {
		return serr
	}
	var rerr error
	switch d.mode {
	case ModeFanOut:
		rerr = d.fanOut(ctx, entries, i)
	case ModeCascade:
		rerr = d.cascade(ctx, entries, i+1)
	default:
		rerr = serr
	}
	if rerr == nil {
		d.logger.Warn("dlq backend sync failed; its unsynced entries were written to another backend",
			"backend", b.Name(), "entries", len(entries), "error", err)
		return nil
	}
	lost := len(entries)
	var pe *PartialError
	if errors.As(rerr, &pe) {
		lost = len(pe.Failed)
	}
	d.m.dropped.With("sync_failed").Add(float64(lost))
	d.state.dropped(d.now())
	d.logger.Error("dlq entries may be lost: a backend sync failed and no other backend took them",
		"backend", b.Name(), "entries", lost, "error", err)
	return fmt.Errorf("%w: %d entr(ies) written to %s may not be durable: %w; handing them on failed: %w",
		ErrWriteFailed, lost, b.Name(), serr, rerr)
}

// Dropped is told of entries the queue dropped after max_attempts.
func (d *dispatcher) Dropped(items []Encoded, err error) {
	d.m.dropped.With("write_failed").Add(float64(len(items)))
	if len(items) > 0 {
		// The batch is given up: Health reports the drop, not a retry.
		d.state.dropped(d.now())
	}
	if ok, skipped := d.dropLog.Allow(); ok && len(items) > 0 {
		e := &items[0].Entry
		src := ""
		if e.Source != nil {
			src = e.Source.Token
		}
		d.logger.Error("dlq entries dropped: no backend took them",
			"entries", len(items), "reason", e.Reason, "destination", e.Destination, "source", src,
			"error", err, "suppressed", skipped)
	}
}

// Close closes every backend.
func (d *dispatcher) Close(ctx context.Context) error {
	var errs []error
	for _, b := range d.backends {
		if err := b.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func gather(items []Encoded, idx []int) []Encoded {
	out := make([]Encoded, len(idx))
	for k, i := range idx {
		out[k] = items[i]
	}
	return out
}

func seqIdx(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// validIdx reports ascending indices within n, at least one.
func validIdx(idx []int, n int) bool {
	if len(idx) == 0 {
		return false
	}
	prev := -1
	for _, i := range idx {
		if i <= prev || i >= n {
			return false
		}
		prev = i
	}
	return true
}
