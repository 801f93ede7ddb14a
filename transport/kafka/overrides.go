package kafka

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// override applies one Kafka property to the settings.
type override func(s *settings, v string) error

// overrides maps the usual Kafka client property names (Java client and
// librdkafka spellings) to the settings they drive. A name not here is
// refused at start-up.
var overrides = map[string]override{
	// Connection and identity.
	"bootstrap.servers":                  func(s *settings, v string) error { s.brokers = trimList([]string{v}); return nil },
	"metadata.broker.list":               func(s *settings, v string) error { s.brokers = trimList([]string{v}); return nil },
	"client.id":                          func(s *settings, v string) error { s.clientID = strings.TrimSpace(v); return nil },
	"group.id":                           func(s *settings, v string) error { s.group = strings.TrimSpace(v); return nil },
	"group.instance.id":                  func(s *settings, v string) error { s.instanceID = strings.TrimSpace(v); return nil },
	"socket.connection.setup.timeout.ms": msInto(func(s *settings) *time.Duration { return &s.dialTimeout }),
	"connections.max.idle.ms":            msInto(func(s *settings) *time.Duration { return &s.connIdle }),
	"metadata.max.age.ms":                msInto(func(s *settings) *time.Duration { return &s.metadataMaxAge }),
	"topic.metadata.refresh.interval.ms": msInto(func(s *settings) *time.Duration { return &s.metadataMaxAge }),
	"retry.backoff.ms":                   msInto(func(s *settings) *time.Duration { return &s.retryBackoffMin }),
	"retry.backoff.max.ms":               msInto(func(s *settings) *time.Duration { return &s.retryBackoffMax }),

	// Security.
	"security.protocol": func(s *settings, v string) error {
		s.securityProtocol = strings.ToLower(strings.TrimSpace(v))
		return nil
	},
	"sasl.mechanism":  saslMechanism,
	"sasl.mechanisms": saslMechanism,
	"sasl.username":   func(s *settings, v string) error { s.saslUser = v; return nil },
	"sasl.password": func(*settings, string) error {
		return fmt.Errorf("a password in overrides would be printed with the config; set %s.sasl_password (KAFKA_SASL_PASSWORD) instead", Section)
	},
	"ssl.ca.location":          func(s *settings, v string) error { s.caFile = v; return nil },
	"ssl.certificate.location": func(s *settings, v string) error { s.certFile = v; return nil },
	"ssl.key.location":         func(s *settings, v string) error { s.keyFile = v; return nil },
	"enable.ssl.certificate.verification": func(s *settings, v string) error {
		b, err := parseBool(v)
		s.skipVerify = !b
		return err
	},

	// Consumer.
	"fetch.min.bytes":           i32Into(func(s *settings) *int32 { return &s.fetchMinBytes }),
	"fetch.max.bytes":           i32Into(func(s *settings) *int32 { return &s.fetchMaxBytes }),
	"max.partition.fetch.bytes": i32Into(func(s *settings) *int32 { return &s.fetchMaxPartBytes }),
	"fetch.wait.max.ms":         msInto(func(s *settings) *time.Duration { return &s.fetchMaxWait }),
	"fetch.max.wait.ms":         msInto(func(s *settings) *time.Duration { return &s.fetchMaxWait }),
	"max.poll.records":          intInto(func(s *settings) *int { return &s.pollCap }),
	"session.timeout.ms":        msInto(func(s *settings) *time.Duration { return &s.sessionTimeout }),
	"heartbeat.interval.ms":     msInto(func(s *settings) *time.Duration { return &s.heartbeat }),
	"max.poll.interval.ms":      msInto(func(s *settings) *time.Duration { return &s.rebalanceTimeout }),
	"rebalance.timeout.ms":      msInto(func(s *settings) *time.Duration { return &s.rebalanceTimeout }),
	"auto.offset.reset": func(s *settings, v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "earliest", "smallest", "beginning":
			s.offsetReset = "earliest"
		case "latest", "largest", "end":
			s.offsetReset = "latest"
		case "none", "error":
			s.offsetReset = "none"
		default:
			return fmt.Errorf("use earliest, latest or none")
		}
		return nil
	},
	"isolation.level": func(s *settings, v string) error {
		s.isolation = strings.ToLower(strings.TrimSpace(v))
		return nil
	},
	"enable.auto.commit": func(s *settings, v string) error {
		b, err := parseBool(v)
		if err != nil {
			return err
		}
		if b {
			return fmt.Errorf("keel commits offsets itself, after the sink, so automatic commits cannot be enabled; remove it")
		}
		return nil
	},
	"partition.assignment.strategy": func(s *settings, v string) error {
		if strings.ToLower(strings.TrimSpace(v)) != "cooperative-sticky" {
			return fmt.Errorf("only cooperative-sticky is supported; remove it")
		}
		return nil
	},

	// Producer.
	"linger.ms":                    msInto(func(s *settings) *time.Duration { return &s.linger }),
	"queue.buffering.max.ms":       msInto(func(s *settings) *time.Duration { return &s.linger }),
	"batch.size":                   i32Into(func(s *settings) *int32 { return &s.batchMaxBytes }),
	"compression.type":             compression,
	"compression.codec":            compression,
	"buffer.memory":                intInto(func(s *settings) *int { return &s.maxBufferedBytes }),
	"queue.buffering.max.messages": intInto(func(s *settings) *int { return &s.maxBufferedRecords }),
	"queue.buffering.max.kbytes": func(s *settings, v string) error {
		n, err := parsePositive(v, math.MaxInt32)
		s.maxBufferedBytes = int(n) << 10
		return err
	},
	"max.in.flight.requests.per.connection": intInto(func(s *settings) *int { return &s.maxInFlight }),
	"max.in.flight":                         intInto(func(s *settings) *int { return &s.maxInFlight }),
	"acks":                                  acks,
	"request.required.acks":                 acks,
	"enable.idempotence": func(s *settings, v string) error {
		b, err := parseBool(v)
		s.idempotent = b
		return err
	},
	"request.timeout.ms":       msInto(func(s *settings) *time.Duration { return &s.requestTimeout }),
	"delivery.timeout.ms":      msInto(func(s *settings) *time.Duration { return &s.deliveryTimeout }),
	"message.timeout.ms":       msInto(func(s *settings) *time.Duration { return &s.deliveryTimeout }),
	"retries":                  retries,
	"message.send.max.retries": retries,
}

// OverrideNames returns the Kafka property names accepted in overrides,
// sorted.
func OverrideNames() []string {
	out := make([]string, 0, len(overrides))
	for k := range overrides {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// applyOverrides applies the properties in name order, so the result does
// not depend on map iteration.
func (s *settings) applyOverrides(m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		norm := strings.ToLower(strings.TrimSpace(k))
		apply, ok := overrides[norm]
		if !ok {
			return configError("%w %q in %s.overrides: remove it or use one of the supported Kafka properties (see OverrideNames)", ErrUnknownOverride, k, Section)
		}
		if err := apply(s, m[k]); err != nil {
			v := m[k]
			if isSensitiveProperty(norm) {
				v = secret.Redacted
			}
			return configError("%s.overrides %q = %q: %v", Section, k, v, err)
		}
	}
	return nil
}

func isSensitiveProperty(name string) bool {
	return strings.Contains(name, "password") || strings.Contains(name, "secret")
}

func saslMechanism(s *settings, v string) error {
	s.saslMechanism = strings.ToUpper(strings.TrimSpace(v))
	return nil
}

// retries sets the number of tries: n retries after the first attempt.
func retries(s *settings, v string) error {
	n, err := parsePositive(v, math.MaxInt32-1)
	s.recordTries = int(n) + 1
	return err
}

func compression(s *settings, v string) error {
	s.compression = strings.ToLower(strings.TrimSpace(v))
	return nil
}

func acks(s *settings, v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "all", "-1":
		s.acks = "all"
	case "1", "leader":
		s.acks = "leader"
	case "0", "none":
		s.acks = "none"
	default:
		return fmt.Errorf("use all (-1), 1 or 0")
	}
	return nil
}

// parseBool accepts the spellings Kafka property files use.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: use true or false")
}

// parsePositive parses a non-negative integer up to limit.
func parsePositive(v string, limit int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < 0 || n > limit {
		return 0, fmt.Errorf("out of range 0..%d", limit)
	}
	return n, nil
}

func msInto(field func(*settings) *time.Duration) override {
	return func(s *settings, v string) error {
		n, err := parsePositive(v, math.MaxInt32)
		if err != nil {
			return err
		}
		*field(s) = time.Duration(n) * time.Millisecond
		return nil
	}
}

func i32Into(field func(*settings) *int32) override {
	return func(s *settings, v string) error {
		n, err := parsePositive(v, math.MaxInt32)
		if err != nil {
			return err
		}
		*field(s) = int32(n)
		return nil
	}
}

func intInto(field func(*settings) *int) override {
	return func(s *settings, v string) error {
		n, err := parsePositive(v, math.MaxInt32)
		if err != nil {
			return err
		}
		*field(s) = int(n)
		return nil
	}
}
