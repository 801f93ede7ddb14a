package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keel-go/keel/transport"
)

// Backoff defaults of SinkTo.
const (
	// DefaultSinkBackoff is the first wait after a backpressured send.
	DefaultSinkBackoff = 10 * time.Millisecond
	// DefaultSinkMaxBackoff caps the doubling wait between attempts.
	DefaultSinkMaxBackoff = time.Second
)

// SinkOption configures SinkTo.
type SinkOption func(*sinkConfig)

type sinkConfig struct {
	initial, max time.Duration
	attempts     int
	route        DeadLetterRouter
}

// WithBackoff sets the first wait after backpressure and the cap of the
// doubling wait. Values of 0 or less keep the defaults.
func WithBackoff(initial, maxWait time.Duration) SinkOption {
	return func(c *sinkConfig) {
		if initial > 0 {
			c.initial = initial
		}
		if maxWait > 0 {
			c.max = maxWait
		}
	}
}

// WithMaxAttempts bounds the sends of one batch: after n attempts that
// still met backpressure the sink fails (terminal for the loop). 0, the
// default, retries until ctx is done: pressure brakes the source, it never
// drops data.
func WithMaxAttempts(n int) SinkOption {
	return func(c *sinkConfig) { c.attempts = max(n, 0) }
}

// WithDeadLetterRoute sets where records that an outbound filter of the
// sender dead-lettered go. Engine.SinkTo defaults it to the engine's
// dead-letter policy; the package SinkTo has no default and fails on such
// records.
func WithDeadLetterRoute(route DeadLetterRouter) SinkOption {
	return func(c *sinkConfig) { c.route = route }
}

// SinkTo adapts a transport.Sender to a SinkFunc. Each out-batch is sent
// with SendBatch; what failed is classified (transport.Classify, per index
// for a *transport.BatchError):
//
//   - backpressure (and timeouts): only the failed records are sent again,
//     after a wait that starts at DefaultSinkBackoff and doubles up to
//     DefaultSinkMaxBackoff, until they are accepted, ctx is done, or the
//     WithMaxAttempts bound is reached (then the sink fails);
//   - dead-lettered by an outbound filter: the records go to the
//     WithDeadLetterRoute route once the rest was accepted; without a route
//     the sink fails, because no record is dropped silently;
//   - fatal: the sink fails at once.
//
// A failure is terminal for the engine loop; records accepted before it
// may be sent again when the block is delivered again (at least once).
func SinkTo(s transport.Sender, opts ...SinkOption) SinkFunc {
	cfg := sinkConfig{initial: DefaultSinkBackoff, max: DefaultSinkMaxBackoff}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	return func(ctx context.Context, b transport.Batch) error {
		return sendAll(ctx, s, cfg, b.Records)
	}
}

// SinkTo is the package SinkTo with outbound dead letters routed by the
// engine's dead-letter policy (unless WithDeadLetterRoute overrides it).
func (e *Engine) SinkTo(s transport.Sender, opts ...SinkOption) SinkFunc {
	all := append([]SinkOption{WithDeadLetterRoute(e.routeDeadLetters)}, opts...)
	return SinkTo(s, all...)
}

func sendAll(ctx context.Context, s transport.Sender, cfg sinkConfig, pending []transport.Record) error {
	var dead []transport.DeadLetter
	wait := cfg.initial
	for attempt := 1; len(pending) > 0; attempt++ {
		err := s.SendBatch(ctx, pending)
		if err == nil {
			break
		}
		var retry []transport.Record
		var be *transport.BatchError
		if errors.As(err, &be) && len(be.Failed) > 0 {
			for _, f := range be.Failed {
				if f.Index < 0 || f.Index >= len(pending) {
					return fmt.Errorf("sender %s reported failed index %d of a batch of %d: %w", s.Name(), f.Index, len(pending), err)
				}
				switch transport.Classify(f.Err) {
				case transport.Backpressure:
					retry = append(retry, pending[f.Index])
				case transport.DeadLettered:
					dead = append(dead, transport.DeadLetter{Record: pending[f.Index], Reason: "outbound filter: " + f.Err.Error()})
				default:
					return fmt.Errorf("sender %s: record %d failed: %w", s.Name(), f.Index, f.Err)
				}
			}
		} else {
			switch transport.Classify(err) {
			case transport.Backpressure:
				retry = pending
			case transport.DeadLettered:
				for _, r := range pending {
					dead = append(dead, transport.DeadLetter{Record: r, Reason: "outbound filter: " + err.Error()})
				}
			default:
				return fmt.Errorf("sender %s: %w", s.Name(), err)
			}
		}
		pending = retry
		if len(pending) == 0 {
			break
		}
		if cfg.attempts > 0 && attempt >= cfg.attempts {
			return fmt.Errorf("sender %s: %d record(s) still backpressured after %d attempt(s): %w", s.Name(), len(pending), attempt, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sender %s: %d record(s) not sent: %w", s.Name(), len(pending), ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, cfg.max)
	}
	if len(dead) > 0 {
		if cfg.route == nil {
			return fmt.Errorf("sender %s dead-lettered %d record(s) and the sink has no dead-letter route (use Engine.SinkTo or WithDeadLetterRoute): %w",
				s.Name(), len(dead), transport.ErrDeadLettered)
		}
		if err := cfg.route(ctx, dead); err != nil {
			return fmt.Errorf("route %d record(s) dead-lettered by sender %s: %w", len(dead), s.Name(), err)
		}
	}
	return nil
}
