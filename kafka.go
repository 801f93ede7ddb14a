package keel

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka"
)

// TransportKafka is the built-in Kafka transport type (package
// transport/kafka).
const TransportKafka = "kafka"

// kafkaBuilder builds the kafka transport type. Its settings are the
// sub-section <section>.kafka, decoded into kafka.Config (secret
// references resolved), overlaid with the Kafka environment variables
// (KAFKA_BOOTSTRAP_SERVERS, KAFKA_GROUP_ID, ... and the same names under
// the app's prefix, which win; see kafka.Config.ApplyEnvFunc). The role
// follows the use: Receiver builds a consumer, Sender a producer; a role
// set in the section that does not allow the use is an error naming
// <section>.kafka.role.
func kafkaBuilder() TransportBuilder {
	return TransportBuilder{
		Validate: func(tc TransportContext) error {
			_, err := decodeKafka(tc, "")
			return err
		},
		Receiver: func(ctx context.Context, tc TransportContext) (transport.Receiver, error) {
			c, err := decodeKafka(tc, kafka.RoleConsumer)
			if err != nil {
				return nil, err
			}
			cons, err := kafka.NewConsumer(ctx, c)
			if err != nil {
				return nil, rekey(err, kafka.Section, tc.Key)
			}
			tc.Runtime.addLagSource(cons.LastLag)
			return cons, nil
		},
		Sender: func(ctx context.Context, tc TransportContext) (transport.Sender, error) {
			c, err := decodeKafka(tc, kafka.RoleProducer)
			if err != nil {
				return nil, err
			}
			prod, err := kafka.NewProducer(ctx, c)
			if err != nil {
				return nil, rekey(err, kafka.Section, tc.Key)
			}
			return prod, nil
		},
	}
}

// decodeKafka decodes, overlays and validates the kafka settings of tc for
// use (kafka.RoleConsumer or kafka.RoleProducer), or, with use "", for
// whichever side the section will serve: a section without a role is
// valid when it can serve as a receiver or as a sender, and the side it
// is built for is checked again when it is built.
func decodeKafka(tc TransportContext, use kafka.Role) (kafka.Config, error) {
	var c kafka.Config
	if err := tc.Decode(&c); err != nil {
		return c, err
	}
	fail := func(err error) (kafka.Config, error) {
		return c, &SectionError{Key: tc.Key, Err: rekey(err, kafka.Section, tc.Key)}
	}
	if err := kafkaEnv(tc.Runtime.cfg, &c); err != nil {
		return fail(err)
	}
	c.Metrics, c.Logger = tc.Runtime.reg, tc.Runtime.log
	role := kafka.Role(strings.ToLower(strings.TrimSpace(string(c.Role))))
	switch {
	case use == "" && role != "":
		if err := c.Validate(); err != nil {
			return fail(err)
		}
		return c, nil
	case use == "":
		asReceiver, asSender := c, c
		asReceiver.Role, asSender.Role = kafka.RoleConsumer, kafka.RoleProducer
		rerr, serr := asReceiver.Validate(), asSender.Validate()
		if rerr != nil && serr != nil {
			if rerr.Error() == serr.Error() {
				return fail(rerr)
			}
			return fail(fmt.Errorf("%w: the section can serve neither side: as a receiver: %w; as a sender: %w",
				transport.ErrConfig, rerr, serr))
		}
		return c, nil
	}
	switch role {
	case kafka.RoleConsumer, kafka.RoleProducer:
		if role != use {
			side := map[kafka.Role]string{kafka.RoleConsumer: "receiver", kafka.RoleProducer: "sender"}[use]
			return c, &SectionError{Key: tc.Key, Err: transport.NewError(transport.ErrConfig, TransportKafka, "config", fmt.Errorf(
				"%s.role is %q but section %q is used as a %s: set it to %s or both, or remove it (the role follows the use): %w",
				tc.Key, role, tc.Section, side, use, kafka.ErrWrongRole))}
		}
	case "", kafka.RoleBoth, "duplex":
	default:
		// Not a role: kafka's own check names the key and the choices.
		if err := c.Validate(); err != nil {
			return fail(err)
		}
		return c, &SectionError{Key: tc.Key, Err: fmt.Errorf("%w: %s.role is %q: use consumer, producer or both", transport.ErrConfig, tc.Key, c.Role)}
	}
	c.Role = use
	if err := c.Validate(); err != nil {
		return fail(err)
	}
	return c, nil
}

// kafkaEnv overlays the Kafka environment variables (KAFKA_BOOTSTRAP_SERVERS,
// ... and the same names under the app's prefix) onto c and fills an
// empty environment with the configuration's: what the section holds
// once the builder has read it, and what the dump shows.
func kafkaEnv(cfg *config.Config, c *kafka.Config) error {
	if err := c.ApplyEnv(cfg.EnvPrefix()); err != nil {
		return err
	}
	if c.Environment == "" {
		c.Environment = cfg.AppEnv()
	}
	return nil
}

// addLagSource adds a Kafka consumer's lag to the lag signal of the
// scaling pressure: the signal is the sum of the last lag reading of every
// consumer built (each reads it every lag_interval), and no reading until
// one of them has read it.
func (rt *Runtime) addLagSource(last func() (int64, bool)) {
	rt.mu.Lock()
	first := len(rt.lags) == 0
	rt.lags = append(rt.lags, last)
	rt.mu.Unlock()
	if !first {
		return
	}
	if err := rt.scaling.Source(scaling.Lag, rt.totalLag); err != nil {
		// The scaling expression or weights leave lag out.
		rt.log.Debug("the Kafka consumer lag is not fed to the scaling pressure", "error", err)
	}
}

// totalLag is the scaling pressure's lag source: the sum of the last lag
// of every Kafka consumer, or NaN (no reading) before any has one.
func (rt *Runtime) totalLag() float64 {
	rt.mu.Lock()
	lags := rt.lags
	rt.mu.Unlock()
	var (
		sum  int64
		read bool
	)
	for _, last := range lags {
		if v, ok := last(); ok {
			sum += v
			read = true
		}
	}
	if !read {
		return math.NaN()
	}
	return float64(sum)
}
