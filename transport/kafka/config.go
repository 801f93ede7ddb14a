package kafka

import (
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
)

// Section is the configuration section this package reads.
const Section = "kafka"

// Defaults of a zero Config.
const (
	// DefaultBroker is the bootstrap broker when brokers is empty.
	DefaultBroker = "localhost:9092"
	// DefaultClientID is the client id sent to the brokers.
	DefaultClientID = "keel"
	// DefaultTopicRefresh is the auto-discovery refresh period.
	DefaultTopicRefresh = time.Minute
	// DefaultLagInterval is how often a consumer reads its group's lag.
	DefaultLagInterval = 15 * time.Second
	// DefaultLagMaxPartitions caps the partitions that get their own lag
	// series.
	DefaultLagMaxPartitions = 100
	// DefaultTopicExclude is the exclude pattern of auto-discovery when
	// topic_exclude is unset: internal topics.
	DefaultTopicExclude = "^__"
)

// Role says which clients a Transport builds.
type Role string

// Roles.
const (
	// RoleBoth builds a consumer and a producer (the default).
	RoleBoth Role = "both"
	// RoleConsumer builds only the consumer; Send fails with ErrWrongRole.
	RoleConsumer Role = "consumer"
	// RoleProducer builds only the producer; Recv and Commit fail with
	// ErrWrongRole.
	RoleProducer Role = "producer"
)

func (r Role) consumes() bool { return r == "" || r == RoleBoth || r == RoleConsumer }
func (r Role) produces() bool { return r == "" || r == RoleBoth || r == RoleProducer }

// Profile is the deployment profile: timeouts, retry backoff and metadata
// refresh. See the package documentation for the table.
type Profile string

// Profiles. "prod" is accepted for production; "dev", "test" and
// "development" for devtest.
const (
	// ProfileProduction: 45 s session, 3 s heartbeat, 60 s rebalance
	// timeout, 10 s revoke wait, 2 min delivery timeout, client default
	// retry backoff and 5 min metadata age (the default).
	ProfileProduction Profile = "production"
	// ProfileDevTest: 10 s session, 1 s heartbeat, 20 s rebalance timeout,
	// 5 s revoke wait, 30 s delivery timeout, 10-100 ms retry backoff,
	// 30 s metadata age; fast to recover against a local broker.
	ProfileDevTest Profile = "devtest"
)

// Sizing is the sizing profile: fetch sizes, poll cap and producer
// batching. See the package documentation for the table.
type Sizing string

// Sizing profiles.
const (
	// SizingThroughput favours large fetches and batches (the default).
	SizingThroughput Sizing = "throughput"
	// SizingBalanced sits between throughput and low latency.
	SizingBalanced Sizing = "balanced"
	// SizingLowLatency answers fetches at once (10 ms wait) and sends
	// without linger.
	SizingLowLatency Sizing = "low_latency"
)

// Security protocols (the Kafka names, case-insensitive in config).
const (
	ProtocolPlaintext     = "plaintext"
	ProtocolSSL           = "ssl"
	ProtocolSASLPlaintext = "sasl_plaintext"
	ProtocolSASLSSL       = "sasl_ssl"
)

// SASL mechanisms (case-insensitive in config).
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// RouteFunc picks the topic of an outgoing record. It never sees a topic
// in the record key: the key is the partition key. An error fails that
// record: wrap transport.ErrDeadLettered to route it to the dead-letter
// path, anything else is fatal for the batch.
type RouteFunc func(rec *transport.Record) (string, error)

// ConsumerConfig holds the named consumer knobs (section kafka.consumer).
// A zero field takes the value of the profile and sizing profile.
type ConsumerConfig struct {
	// FetchMinBytes is the least data a broker gathers before answering a
	// fetch (fetch.min.bytes).
	FetchMinBytes int32 `koanf:"fetch_min_bytes"`
	// FetchMaxBytes caps one fetch response (fetch.max.bytes).
	FetchMaxBytes int32 `koanf:"fetch_max_bytes"`
	// FetchMaxWait is how long a broker waits for FetchMinBytes
	// (fetch.max.wait.ms).
	FetchMaxWait time.Duration `koanf:"fetch_max_wait"`
	// FetchMaxPartitionBytes caps one partition in a fetch response
	// (max.partition.fetch.bytes).
	FetchMaxPartitionBytes int32 `koanf:"fetch_max_partition_bytes"`
	// MaxPollRecords caps the records of one Recv, whatever the limits
	// passed to it (max.poll.records).
	MaxPollRecords int `koanf:"max_poll_records"`
	// SessionTimeout is the group session timeout (session.timeout.ms).
	SessionTimeout time.Duration `koanf:"session_timeout"`
	// HeartbeatInterval is the group heartbeat period
	// (heartbeat.interval.ms).
	HeartbeatInterval time.Duration `koanf:"heartbeat_interval"`
	// RebalanceTimeout is how long the group waits for members to rejoin
	// during a rebalance (max.poll.interval.ms).
	RebalanceTimeout time.Duration `koanf:"rebalance_timeout"`
	// RevokeWait is how long a revoke waits for the block in flight on the
	// revoked partitions to be committed before it fences them: after it,
	// their offsets are no longer committed by this member (the new owner
	// re-delivers them). Must be below RebalanceTimeout.
	RevokeWait time.Duration `koanf:"revoke_wait"`
	// AutoOffsetReset is where a partition without a committed offset
	// starts: earliest (the default), latest, or none (such partitions
	// are not consumed until an offset is committed for them).
	AutoOffsetReset string `koanf:"auto_offset_reset"`
	// IsolationLevel is read_uncommitted (the default) or read_committed.
	IsolationLevel string `koanf:"isolation_level"`
}

// ProducerConfig holds the named producer knobs (section kafka.producer).
// A zero field takes the value of the profile and sizing profile.
type ProducerConfig struct {
	// Topic is the topic of every record the producer sends unless
	// Config.Route picks one.
	Topic string `koanf:"topic"`
	// Linger is how long a partition waits for more records before a
	// batch is sent (linger.ms). A synchronous SendBatch never waits for
	// it: the batch is sent as soon as it is buffered.
	Linger time.Duration `koanf:"linger"`
	// BatchMaxBytes caps one partition batch (batch.size).
	BatchMaxBytes int32 `koanf:"batch_max_bytes"`
	// Compression is none, gzip, snappy, lz4 or zstd (compression.type).
	Compression string `koanf:"compression"`
	// MaxBufferedBytes caps the bytes waiting for acknowledgement; a
	// batch that does not fit is refused as backpressure
	// (buffer.memory).
	MaxBufferedBytes int `koanf:"max_buffered_bytes"`
	// MaxBufferedRecords caps the records waiting for acknowledgement
	// (queue.buffering.max.messages).
	MaxBufferedRecords int `koanf:"max_buffered_records"`
	// MaxInFlight caps produce requests in flight per broker when
	// idempotence is disabled (idempotent producers use 5).
	MaxInFlight int `koanf:"max_in_flight"`
	// Acks is all (the default), leader or none. leader and none need
	// DisableIdempotence.
	Acks string `koanf:"acks"`
	// DisableIdempotence turns off the idempotent producer
	// (enable.idempotence=false).
	DisableIdempotence bool `koanf:"disable_idempotence"`
	// RequestTimeout bounds one produce request (request.timeout.ms).
	RequestTimeout time.Duration `koanf:"request_timeout"`
	// DeliveryTimeout bounds how long SendBatch waits for the
	// acknowledgement, counted from the call (not from the record
	// timestamp); records not acknowledged by then fail with
	// transport.ErrTimeout (delivery.timeout.ms).
	DeliveryTimeout time.Duration `koanf:"delivery_timeout"`
	// CloseTimeout bounds the flush of Close when its context has no
	// deadline. Default 10 s.
	CloseTimeout time.Duration `koanf:"close_timeout"`
}

// Config configures the Kafka transport (config section "kafka"). The
// zero value connects to localhost:9092 as a producer and consumer with
// the production profile and throughput sizing; a consumer needs Group
// and Topics (or AutoDiscover), a producer needs Producer.Topic or Route.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Default
	// ["localhost:9092"].
	Brokers []string `koanf:"brokers"`
	// ClientID is the client id sent to the brokers. Default "keel".
	ClientID string `koanf:"client_id"`
	// Group is the consumer group. Required for the consumer.
	Group string `koanf:"group"`
	// GroupInstanceID enables static membership: a member that restarts
	// within the session timeout keeps its partitions without a
	// rebalance.
	GroupInstanceID string `koanf:"group_instance_id"`
	// Topics are the topics the consumer subscribes to.
	Topics []string `koanf:"topics"`
	// Role is consumer, producer or both (the default). Only the clients
	// the role needs are built.
	Role Role `koanf:"role"`
	// Profile is production (the default) or devtest.
	Profile Profile `koanf:"profile"`
	// Sizing is throughput (the default), balanced or low_latency.
	Sizing Sizing `koanf:"sizing"`
	// Environment is the application environment. Empty means the one
	// the platform reports (APP_ENV, ENVIRONMENT, ENV). In production,
	// plaintext connections and skipped certificate checks are refused
	// unless AllowInsecure is set.
	Environment string `koanf:"environment"`

	// AutoDiscover subscribes the consumer to every topic that matches
	// TopicInclude and not TopicExclude, refreshed every TopicRefresh.
	// Topics, when also set, are always subscribed.
	AutoDiscover bool `koanf:"auto_discover"`
	// TopicInclude are regular expressions (RE2); a topic matching any is
	// included. Empty includes every topic.
	TopicInclude []string `koanf:"topic_include"`
	// TopicExclude are regular expressions; a topic matching any is
	// excluded, whatever TopicInclude says. Unset means ["^__"] (internal
	// topics); set it to [] to exclude nothing.
	TopicExclude []string `koanf:"topic_exclude"`
	// TopicRefresh is the discovery period. Default 1 min.
	TopicRefresh time.Duration `koanf:"topic_refresh"`

	// Consumer holds the named consumer knobs.
	Consumer ConsumerConfig `koanf:"consumer"`
	// Producer holds the named producer knobs.
	Producer ProducerConfig `koanf:"producer"`
	// Overrides are Kafka client properties by their usual names
	// (fetch.min.bytes, linger.ms, compression.type, ...). They win over
	// the named knobs. A property keel does not know is an error at
	// start-up that names it.
	Overrides map[string]string `koanf:"overrides"`

	// SecurityProtocol is plaintext (the default), ssl, sasl_plaintext or
	// sasl_ssl.
	SecurityProtocol string `koanf:"security_protocol"`
	// SASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SASLMechanism string `koanf:"sasl_mechanism"`
	// SASLUsername is the SASL user.
	SASLUsername string `koanf:"sasl_username"`
	// SASLPassword is the SASL password.
	SASLPassword secret.String `koanf:"sasl_password"`
	// SSLCALocation is a PEM file of CA certificates to verify the
	// brokers with. Empty means the system roots.
	SSLCALocation string `koanf:"ssl_ca_location"`
	// SSLCertificateLocation is the PEM client certificate (mutual TLS).
	SSLCertificateLocation string `koanf:"ssl_certificate_location"`
	// SSLKeyLocation is the PEM private key of the client certificate.
	SSLKeyLocation string `koanf:"ssl_key_location"`
	// SSLSkipVerify disables broker certificate verification. Refused in
	// production unless AllowInsecure.
	SSLSkipVerify bool `koanf:"ssl_skip_verify"`
	// AllowInsecure allows plaintext and skipped verification in
	// production.
	AllowInsecure bool `koanf:"allow_insecure"`

	// LagInterval is how often the consumer reads its group's lag and
	// updates the lag and partition_limited metrics. Default 15 s;
	// negative disables the loop (Consumer.Lag still works).
	LagInterval time.Duration `koanf:"lag_interval"`
	// LagMaxPartitions caps the partitions that get their own lag series;
	// the total covers all of them. Default 100.
	LagMaxPartitions int `koanf:"lag_max_partitions"`

	// Route picks the topic of each outgoing record; nil means
	// Producer.Topic.
	Route RouteFunc `koanf:"-"`
	// Metrics receives the keel_kafka_* metrics; nil means
	// metrics.Default().
	Metrics *metrics.Registry `koanf:"-"`
	// Logger receives the transport's logs; nil means slog.Default().
	Logger *slog.Logger `koanf:"-"`
	// Health, when set, gets the consumer's checks "transport:kafka" and
	// "kafka:partition_limited" (degraded while more pods would not help);
	// they are removed on Close. Check names are unique per registry, so
	// give it to one consumer.
	Health *health.Registry `koanf:"-"`
	// ClientOptions are extra franz-go options applied last to every
	// client (a custom dialer, hooks).
	ClientOptions []kgo.Opt `koanf:"-"`
}

// Validate reports the first invalid setting as a transport.ErrConfig
// error that names the key and the fix, including what the role needs
// (group and topics for a consumer, a topic or Route for a producer). It
// does no I/O: certificate files are read by New.
func (c Config) Validate() error {
	s, err := c.resolve()
	if err != nil {
		return err
	}
	return s.checkRole(c.Route)
}

// normalizeProfile maps the accepted spellings to a Profile.
// WithDefaults returns c with every zero setting replaced by the value it
// stands for: brokers [localhost:9092], client_id keel, the production
// profile and throughput sizing, topic_exclude ["^__"], the discovery
// and lag defaults, security_protocol plaintext, and each zero consumer
// and producer knob set to the value of the profile and sizing profile.
// Overrides are not folded in (they win when the client is built), and
// role (both when empty), environment and the credentials are left as
// they are. An unknown profile or sizing leaves c unchanged: Validate
// reports it. WithDefaults does not validate c.
func (c Config) WithDefaults() Config {
	prof, okp := normalizeProfile(c.Profile)
	siz, oks := normalizeSizing(c.Sizing)
	if !okp || !oks {
		return c
	}
	s := profileBase(prof)
	s.applySizing(siz)
	c.Profile, c.Sizing = prof, siz
	if c.Brokers == nil {
		c.Brokers = append([]string(nil), s.brokers...)
	}
	str := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	dur := func(dst *time.Duration, def time.Duration) {
		if *dst == 0 {
			*dst = def
		}
	}
	i32 := func(dst *int32, def int32) {
		if *dst == 0 {
			*dst = def
		}
	}
	num := func(dst *int, def int) {
		if *dst == 0 {
			*dst = def
		}
	}
	str(&c.ClientID, s.clientID)
	str(&c.SecurityProtocol, s.securityProtocol)
	c.TopicExclude = c.topicExclude()
	dur(&c.TopicRefresh, s.topicRefresh)
	dur(&c.LagInterval, s.lagInterval)
	num(&c.LagMaxPartitions, s.lagMaxPartitions)
	cc, pc := &c.Consumer, &c.Producer
	i32(&cc.FetchMinBytes, s.fetchMinBytes)
	i32(&cc.FetchMaxBytes, s.fetchMaxBytes)
	dur(&cc.FetchMaxWait, s.fetchMaxWait)
	i32(&cc.FetchMaxPartitionBytes, s.fetchMaxPartBytes)
	num(&cc.MaxPollRecords, s.pollCap)
	dur(&cc.SessionTimeout, s.sessionTimeout)
	dur(&cc.HeartbeatInterval, s.heartbeat)
	dur(&cc.RebalanceTimeout, s.rebalanceTimeout)
	dur(&cc.RevokeWait, s.revokeWait)
	str(&cc.AutoOffsetReset, s.offsetReset)
	str(&cc.IsolationLevel, s.isolation)
	dur(&pc.Linger, s.linger)
	i32(&pc.BatchMaxBytes, s.batchMaxBytes)
	str(&pc.Compression, s.compression)
	num(&pc.MaxBufferedBytes, s.maxBufferedBytes)
	num(&pc.MaxBufferedRecords, s.maxBufferedRecords)
	num(&pc.MaxInFlight, s.maxInFlight)
	str(&pc.Acks, s.acks)
	dur(&pc.RequestTimeout, s.requestTimeout)
	dur(&pc.DeliveryTimeout, s.deliveryTimeout)
	dur(&pc.CloseTimeout, s.closeTimeout)
	return c
}

func normalizeProfile(p Profile) (Profile, bool) {
	switch strings.ToLower(strings.TrimSpace(string(p))) {
	case "", "production", "prod":
		return ProfileProduction, true
	case "devtest", "dev", "test", "development":
		return ProfileDevTest, true
	}
	return p, false
}

func normalizeSizing(s Sizing) (Sizing, bool) {
	switch strings.ToLower(strings.TrimSpace(string(s))) {
	case "", "throughput":
		return SizingThroughput, true
	case "balanced":
		return SizingBalanced, true
	case "low_latency", "low-latency", "lowlatency":
		return SizingLowLatency, true
	}
	return s, false
}

func normalizeRole(r Role) (Role, bool) {
	switch strings.ToLower(strings.TrimSpace(string(r))) {
	case "", "both", "duplex":
		return RoleBoth, true
	case "consumer":
		return RoleConsumer, true
	case "producer":
		return RoleProducer, true
	}
	return r, false
}

// production reports whether the configured or detected environment is
// production.
func (c Config) production() bool {
	env := c.Environment
	if env == "" {
		env = platform.Detector{}.AppEnv()
	}
	return platform.IsProduction(env)
}

// topicExclude returns the effective exclude patterns.
func (c Config) topicExclude() []string {
	if c.TopicExclude == nil {
		return []string{DefaultTopicExclude}
	}
	return c.TopicExclude
}

// compileAll compiles patterns, naming the key of the first bad one.
func compileAll(key string, patterns []string) ([]*regexp.Regexp, error) {
	out := make([]*regexp.Regexp, 0, len(patterns))
	for i, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, configError("%s.%s[%d] %q is not a valid regular expression: %v", Section, key, i, p, err)
		}
		out = append(out, re)
	}
	return out, nil
}

func positive(key string, v int64, def string) error {
	if v < 0 {
		return configError("%s.%s is %d: use a positive value, or 0 for the default (%s)", Section, key, v, def)
	}
	return nil
}

func positiveDur(key string, v time.Duration) error {
	if v < 0 {
		return configError("%s.%s is %s: use a positive duration, or 0 for the profile's value", Section, key, v)
	}
	return nil
}

// validateKnobs checks the named knobs' ranges.
func (c Config) validateKnobs() error {
	cc, pc := c.Consumer, c.Producer
	for _, k := range []struct {
		key string
		v   int64
	}{
		{"consumer.fetch_min_bytes", int64(cc.FetchMinBytes)},
		{"consumer.fetch_max_bytes", int64(cc.FetchMaxBytes)},
		{"consumer.fetch_max_partition_bytes", int64(cc.FetchMaxPartitionBytes)},
		{"consumer.max_poll_records", int64(cc.MaxPollRecords)},
		{"producer.batch_max_bytes", int64(pc.BatchMaxBytes)},
		{"producer.max_buffered_bytes", int64(pc.MaxBufferedBytes)},
		{"producer.max_buffered_records", int64(pc.MaxBufferedRecords)},
		{"producer.max_in_flight", int64(pc.MaxInFlight)},
		{"lag_max_partitions", int64(c.LagMaxPartitions)},
	} {
		if err := positive(k.key, k.v, "the profile's value"); err != nil {
			return err
		}
	}
	for _, k := range []struct {
		key string
		v   time.Duration
	}{
		{"consumer.fetch_max_wait", cc.FetchMaxWait},
		{"consumer.session_timeout", cc.SessionTimeout},
		{"consumer.heartbeat_interval", cc.HeartbeatInterval},
		{"consumer.rebalance_timeout", cc.RebalanceTimeout},
		{"consumer.revoke_wait", cc.RevokeWait},
		{"producer.linger", pc.Linger},
		{"producer.request_timeout", pc.RequestTimeout},
		{"producer.delivery_timeout", pc.DeliveryTimeout},
		{"producer.close_timeout", pc.CloseTimeout},
		{"topic_refresh", c.TopicRefresh},
	} {
		if err := positiveDur(k.key, k.v); err != nil {
			return err
		}
	}
	return nil
}

// String returns the role name.
func (r Role) String() string { return string(r) }

// describe returns a short, secret-free summary for start-up logs.
func (s *settings) describe() []any {
	return []any{
		"brokers", strings.Join(s.brokers, ","),
		"client_id", s.clientID,
		"profile", string(s.profile),
		"sizing", string(s.sizing),
		"security_protocol", s.securityProtocol,
		"sasl_mechanism", s.saslMechanism,
	}
}

// mustBeOneOf returns a config error when v is not in allowed.
func mustBeOneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return configError("%s.%s is %q: use one of %s", Section, key, v, strings.Join(allowed, ", "))
}
