package kafka

import (
	"context"
	"errors"

	"github.com/keel-go/keel/transport"
)

// Transport is the Kafka transport of one config section: the consumer,
// the producer or both, as Config.Role says. It is a transport.Receiver
// and a transport.Sender; using the side its role did not build returns an
// error wrapping ErrWrongRole and transport.ErrConfig.
type Transport struct {
	role     Role
	consumer *Consumer
	producer *Producer
}

var (
	_ transport.Receiver = (*Transport)(nil)
	_ transport.Sender   = (*Transport)(nil)
)

// New validates cfg and builds the clients its role needs: a consumer
// (group, topics) for consumer and both, a producer (producer.topic or
// Route) for producer and both. ctx bounds the start-up.
func New(ctx context.Context, cfg Config) (*Transport, error) {
	s, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := s.checkRole(cfg.Route); err != nil {
		return nil, err
	}
	t := &Transport{role: s.role}
	if s.role.consumes() {
		if t.consumer, err = newConsumer(ctx, cfg, s); err != nil {
			return nil, err
		}
	}
	if s.role.produces() {
		if t.producer, err = newProducer(ctx, cfg, s); err != nil {
			if t.consumer != nil {
				_ = t.consumer.Close(ctx)
			}
			return nil, err
		}
	}
	return t, nil
}

// checkRole checks what the role's clients need.
func (s *settings) checkRole(route RouteFunc) error {
	if s.role.consumes() {
		if err := s.checkConsumer(); err != nil {
			return err
		}
	}
	if s.role.produces() {
		return s.checkProducer(route)
	}
	return nil
}

// Role returns the transport's role.
func (t *Transport) Role() Role { return t.role }

// Consumer returns the consumer, or nil for the producer role.
func (t *Transport) Consumer() *Consumer { return t.consumer }

// Producer returns the producer, or nil for the consumer role.
func (t *Transport) Producer() *Producer { return t.producer }

// Name returns "kafka".
func (t *Transport) Name() string { return name }

// Recv receives from the consumer; see Consumer.Recv.
func (t *Transport) Recv(ctx context.Context, limits transport.Limits) (transport.Batch, error) {
	if t.consumer == nil {
		return transport.Batch{}, wrongRole("recv", t.role, "consumer or both")
	}
	return t.consumer.Recv(ctx, limits)
}

// Commit commits on the consumer; see Consumer.Commit.
func (t *Transport) Commit(ctx context.Context, tokens []transport.Token) error {
	if t.consumer == nil {
		return wrongRole("commit", t.role, "consumer or both")
	}
	return t.consumer.Commit(ctx, tokens)
}

// Pause pauses the consumer; see Consumer.Pause.
func (t *Transport) Pause(ctx context.Context) error {
	if t.consumer == nil {
		return wrongRole("pause", t.role, "consumer or both")
	}
	return t.consumer.Pause(ctx)
}

// Resume resumes the consumer; see Consumer.Resume.
func (t *Transport) Resume(ctx context.Context) error {
	if t.consumer == nil {
		return wrongRole("resume", t.role, "consumer or both")
	}
	return t.consumer.Resume(ctx)
}

// Send sends on the producer; see Producer.Send.
func (t *Transport) Send(ctx context.Context, rec transport.Record) error {
	if t.producer == nil {
		return wrongRole("send", t.role, "producer or both")
	}
	return t.producer.Send(ctx, rec)
}

// SendBatch sends on the producer; see Producer.SendBatch.
func (t *Transport) SendBatch(ctx context.Context, records []transport.Record) error {
	if t.producer == nil {
		return wrongRole("send", t.role, "producer or both")
	}
	return t.producer.SendBatch(ctx, records)
}

// Health joins the health of the clients the role built.
func (t *Transport) Health(ctx context.Context) error {
	var errs []error
	if t.consumer != nil {
		errs = append(errs, t.consumer.Health(ctx))
	}
	if t.producer != nil {
		errs = append(errs, t.producer.Health(ctx))
	}
	return errors.Join(errs...)
}

// Close closes the producer first (flushing it), then the consumer.
func (t *Transport) Close(ctx context.Context) error {
	var errs []error
	if t.producer != nil {
		errs = append(errs, t.producer.Close(ctx))
	}
	if t.consumer != nil {
		errs = append(errs, t.consumer.Close(ctx))
	}
	return errors.Join(errs...)
}
