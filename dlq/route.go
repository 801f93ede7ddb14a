package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

// RouteOption adjusts a Router.
type RouteOption func(*routeOpts)

type routeOpts struct {
	wait    time.Duration
	durable bool
}

// RouteWait sets how long the route waits for queue room before it fails
// (default dlq.route_wait, 5 s). d <= 0 means it never waits.
func RouteWait(d time.Duration) RouteOption { return func(o *routeOpts) { o.wait = d } }

// RouteDurable makes the route return only after its entries were
// written and made durable (default dlq.route_durable).
func RouteDurable(on bool) RouteOption { return func(o *routeOpts) { o.durable = on } }

// EntryFromDeadLetter converts an engine dead letter: its reason (or
// "dead-lettered" when empty), its record's payload, key and headers, its
// destination and its source token's text (a Kafka token also fills topic, partition and
// offset). Time and Service are left for the DLQ to fill.
func EntryFromDeadLetter(dl transport.DeadLetter) Entry {
	reason := dl.Reason
	if reason == "" {
		reason = "dead-lettered"
	}
	return Entry{
		Reason:      reason,
		Payload:     dl.Record.Payload,
		Destination: dl.Destination,
		Source:      SourceFromToken(dl.Source),
		Key:         dl.Record.Key,
		Headers:     dl.Record.Headers,
	}
}

// Router returns the engine's dead-letter route into this DLQ (set it as
// engine.Config.RouteDeadLetters).
//
// The route converts the dead letters with EntryFromDeadLetter and hands
// them to the queue, all of them or none. By default that is queue
// admission only, which is quick: the engine then sinks and commits the
// block while the entries are written in the background (durable within
// dlq.sync_interval). If the queue has no room within dlq.route_wait (or
// the engine's ctx ends) the route returns an error matching ErrQueueFull
// (or the context's error), so the engine stops before committing the
// block, which the source delivers again: entries are never dropped.
//
// With RouteDurable (dlq.route_durable) the route returns only once the
// entries are written and durable, so the source is committed only after
// that; the engine then waits for the backends on every block with dead
// letters.
//
// A disabled DLQ's route fails with ErrDisabled. A block with more dead
// letters than the queue capacity is queued in parts; if a later part is
// refused, the earlier parts are written and will be written again when
// the block comes again (a duplicate, never a loss).
func (d *DLQ) Router(opts ...RouteOption) engine.DeadLetterRouter {
	ro := routeOpts{wait: d.cfg.routeWait(), durable: d.cfg.RouteDurable}
	for _, o := range opts {
		o(&ro)
	}
	return func(ctx context.Context, letters []transport.DeadLetter) error {
		if len(letters) == 0 {
			return nil
		}
		if !d.enabled {
			return fmt.Errorf("dlq: %d dead letter(s) not taken: %w", len(letters), ErrDisabled)
		}
		entries := make([]Entry, len(letters))
		for i := range letters {
			entries[i] = EntryFromDeadLetter(letters[i])
		}
		enc := d.encode(entries)
		var err error
		switch {
		case ro.durable:
			err = d.sink.Write(ctx, enc...)
		case ro.wait > 0:
			wctx, cancel := context.WithTimeout(ctx, ro.wait)
			err = d.sink.PushWait(wctx, enc...)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				err = fmt.Errorf("no room within %s (dlq.route_wait, dlq.queue_capacity %d): %w", ro.wait, d.sink.Capacity(), ErrQueueFull)
			}
		default:
			err = d.sink.TryPush(enc...)
		}
		if err != nil {
			d.m.routeRejected.Add(float64(len(letters)))
			return fmt.Errorf("dlq: %d dead letter(s) not taken; the block is not committed and will come again: %w", len(letters), err)
		}
		d.m.routed.Add(float64(len(letters)))
		return nil
	}
}
