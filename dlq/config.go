package dlq

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/secret"
)

// Section is the config section of the DLQ.
const Section = "dlq"

// Backend names, used in dlq.order, logs and metric labels.
const (
	BackendFile  = "file"
	BackendKafka = "kafka"
	BackendHTTP  = "http"
	BackendRedis = "redis"
)

// DefaultOrder is the cascade order: remote stores first, the local file
// last, as the fallback that is almost always there.
var DefaultOrder = []string{BackendKafka, BackendRedis, BackendHTTP, BackendFile}

// Defaults of Config.
const (
	// DefaultSyncInterval is how soon written entries are made durable
	// without a barrier.
	DefaultSyncInterval = time.Second
	// DefaultRouteWait is how long the engine route waits for queue room.
	DefaultRouteWait = 5 * time.Second
	// DefaultFilePath is the directory of the file backend, relative to the
	// working directory. Set dlq.file.path to a persistent volume in
	// production.
	DefaultFilePath = "dlq"
	// DefaultFilePrefix starts every file name.
	DefaultFilePrefix = "dlq"
	// DefaultMaxAge is how long rotated files are kept.
	DefaultMaxAge = 30 * 24 * time.Hour
	// DefaultKafkaTopic is the common Kafka topic.
	DefaultKafkaTopic = "keel.dlq"
	// DefaultKafkaTopicSuffix is appended to the destination under
	// per-destination routing.
	DefaultKafkaTopicSuffix = ".dlq"
	// DefaultKafkaSendTimeout bounds one batch's produce.
	DefaultKafkaSendTimeout = 5 * time.Second
	// DefaultKafkaClientID is the Kafka client id.
	DefaultKafkaClientID = "keel-dlq"
	// DefaultHTTPTimeout bounds one POST.
	DefaultHTTPTimeout = 30 * time.Second
	// DefaultRedisURL is the Redis server.
	DefaultRedisURL = "redis://127.0.0.1:6379"
	// DefaultRedisStreamKey is the stream the entries are added to.
	DefaultRedisStreamKey = "keel:dlq"
	// DefaultRedisTimeout bounds one pipelined batch.
	DefaultRedisTimeout = 5 * time.Second
)

// Mode says how entries are spread over the backends.
type Mode uint8

const (
	// ModeCascade (the default) tries the backends in order and stops at
	// the first that takes an entry; each fall-through is counted.
	ModeCascade Mode = iota
	// ModeFanOut writes every entry to every backend; it is written if any
	// took it.
	ModeFanOut
	// ModeSingle uses exactly one backend.
	ModeSingle
)

// String returns cascade, fan_out or single.
func (m Mode) String() string {
	switch m {
	case ModeCascade:
		return "cascade"
	case ModeFanOut:
		return "fan_out"
	case ModeSingle:
		return "single"
	default:
		return fmt.Sprintf("Mode(%d)", uint8(m))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads cascade, fan_out (or fanout, fan-out) or single.
func (m *Mode) UnmarshalText(b []byte) error {
	switch norm(b) {
	case "", "cascade":
		*m = ModeCascade
	case "fan_out", "fanout":
		*m = ModeFanOut
	case "single":
		*m = ModeSingle
	default:
		return fmt.Errorf("%w: mode %q: use cascade, fan_out or single", ErrInvalidConfig, string(b))
	}
	return nil
}

// Rotation is how often the file backend starts a new file.
type Rotation uint8

const (
	// RotationHourly (the default) starts a file every UTC hour.
	RotationHourly Rotation = iota
	// RotationDaily starts a file every UTC day.
	RotationDaily
)

// String returns hourly or daily.
func (r Rotation) String() string {
	switch r {
	case RotationHourly:
		return "hourly"
	case RotationDaily:
		return "daily"
	default:
		return fmt.Sprintf("Rotation(%d)", uint8(r))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (r Rotation) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads hourly or daily.
func (r *Rotation) UnmarshalText(b []byte) error {
	switch norm(b) {
	case "", "hourly":
		*r = RotationHourly
	case "daily":
		*r = RotationDaily
	default:
		return fmt.Errorf("%w: rotation %q: use hourly or daily", ErrInvalidConfig, string(b))
	}
	return nil
}

// Routing chooses the Kafka topic of an entry.
type Routing uint8

const (
	// RoutingCommon (the default) sends every entry to the common topic.
	RoutingCommon Routing = iota
	// RoutingPerDestination sends an entry to its destination plus the
	// topic suffix, or to the common topic when it has no destination (or
	// the result is not a legal topic name).
	RoutingPerDestination
)

// String returns common or per_destination.
func (r Routing) String() string {
	switch r {
	case RoutingCommon:
		return "common"
	case RoutingPerDestination:
		return "per_destination"
	default:
		return fmt.Sprintf("Routing(%d)", uint8(r))
	}
}

// MarshalText implements encoding.TextMarshaler.
func (r Routing) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads common or per_destination.
func (r *Routing) UnmarshalText(b []byte) error {
	switch norm(b) {
	case "", "common":
		*r = RoutingCommon
	case "per_destination":
		*r = RoutingPerDestination
	default:
		return fmt.Errorf("%w: routing %q: use common or per_destination", ErrInvalidConfig, string(b))
	}
	return nil
}

func norm(b []byte) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(string(b))), "-", "_")
}

// Config is the dlq section. The zero value is a disabled DLQ: entries
// handed to it are refused with ErrDisabled, never dropped silently.
// Enabled with nothing else set, it writes hourly NDJSON files under
// ./dlq/<service>/, through a queue of 10 000 entries written in batches
// of 256 at least every 100 ms and fsynced at least every second.
//
//	dlq:
//	  enabled: false
//	  mode: cascade            # cascade | fan_out | single
//	  order: [kafka, redis, http, file]
//	  queue_capacity: 10000
//	  batch_size: 256
//	  flush_interval: 100ms
//	  sync_interval: 1s
//	  overflow: block          # block | drop (Push on a full queue)
//	  max_attempts: 3          # per batch, over all backends; -1: until Close gives up
//	  retry_backoff: 100ms
//	  write_timeout: 30s
//	  route_wait: 5s           # engine route: wait for queue room
//	  route_durable: false     # engine route: wait until written and durable
//	  file:  {enabled: false, path: dlq, prefix: dlq, rotation: hourly, max_age: 720h, compress: false}
//	  kafka: {enabled: false, brokers: [], routing: common, topic: keel.dlq, topic_suffix: .dlq,
//	          send_timeout: 5s, client_id: keel-dlq, allow_auto_topic_creation: false}
//	  http:  {enabled: false, endpoint: "", timeout: 30s, headers: {}}
//	  redis: {enabled: false, url: redis://127.0.0.1:6379, stream_key: "keel:dlq", max_len: 0, timeout: 5s}
//
// With no backend enabled, the file backend is used.
type Config struct {
	// Enabled turns the DLQ on.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Mode is cascade, fan_out or single.
	Mode Mode `koanf:"mode" json:"mode" yaml:"mode"`
	// Order is the order in which enabled backends are tried (cascade) or
	// written (fan_out). Backends left out come after, in DefaultOrder.
	Order []string `koanf:"order" json:"order" yaml:"order"`
	// QueueCapacity bounds the entries held in memory. 0 means 10 000.
	QueueCapacity int `koanf:"queue_capacity" json:"queue_capacity" yaml:"queue_capacity"`
	// BatchSize is the largest batch written at once. 0 means 256.
	BatchSize int `koanf:"batch_size" json:"batch_size" yaml:"batch_size"`
	// FlushInterval is the longest a partial batch waits. 0 means 100 ms.
	FlushInterval time.Duration `koanf:"flush_interval" json:"flush_interval" yaml:"flush_interval"`
	// SyncInterval is how soon written entries are made durable (file
	// fsync) without a barrier. 0 means DefaultSyncInterval.
	SyncInterval time.Duration `koanf:"sync_interval" json:"sync_interval" yaml:"sync_interval"`
	// Overflow is what Push does on a full queue: block (wait) or drop
	// (refuse at once with ErrQueueFull).
	Overflow background.Overflow `koanf:"overflow" json:"overflow" yaml:"overflow"`
	// MaxAttempts is how often a batch is offered to the backends before
	// the entries no backend took are dropped (counted and logged). 0 means
	// 3; -1 retries until Close gives up.
	MaxAttempts int `koanf:"max_attempts" json:"max_attempts" yaml:"max_attempts"`
	// RetryBackoff is the first wait between attempts (doubling). 0 means
	// 100 ms.
	RetryBackoff time.Duration `koanf:"retry_backoff" json:"retry_backoff" yaml:"retry_backoff"`
	// WriteTimeout bounds one batch write over all backends. 0 means 30 s.
	WriteTimeout time.Duration `koanf:"write_timeout" json:"write_timeout" yaml:"write_timeout"`
	// RouteWait is how long the engine route waits for queue room before
	// it fails (and the engine stops without committing). 0 means
	// DefaultRouteWait.
	RouteWait time.Duration `koanf:"route_wait" json:"route_wait" yaml:"route_wait"`
	// RouteDurable makes the engine route wait until its entries are
	// written and durable, so the input is committed only after that.
	RouteDurable bool `koanf:"route_durable" json:"route_durable" yaml:"route_durable"`

	// File configures the file backend.
	File FileConfig `koanf:"file" json:"file" yaml:"file"`
	// Kafka configures the Kafka backend.
	Kafka KafkaConfig `koanf:"kafka" json:"kafka" yaml:"kafka"`
	// HTTP configures the HTTP backend.
	HTTP HTTPConfig `koanf:"http" json:"http" yaml:"http"`
	// Redis configures the Redis stream backend.
	Redis RedisConfig `koanf:"redis" json:"redis" yaml:"redis"`
}

// FileConfig is dlq.file: NDJSON files rotated by the hour or day.
type FileConfig struct {
	// Enabled turns the backend on.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Path is the directory; files go to <path>/<service>/. Empty means
	// DefaultFilePath.
	Path string `koanf:"path" json:"path" yaml:"path"`
	// Prefix starts every file name: <prefix>-20260302T14.ndjson. Empty
	// means DefaultFilePrefix.
	Prefix string `koanf:"prefix" json:"prefix" yaml:"prefix"`
	// Rotation is hourly or daily (UTC).
	Rotation Rotation `koanf:"rotation" json:"rotation" yaml:"rotation"`
	// MaxAge removes files whose period ended longer ago than this. 0
	// means DefaultMaxAge.
	MaxAge time.Duration `koanf:"max_age" json:"max_age" yaml:"max_age"`
	// Compress gzips a file once its period is over.
	Compress bool `koanf:"compress" json:"compress" yaml:"compress"`
}

// KafkaConfig is dlq.kafka.
type KafkaConfig struct {
	// Enabled turns the backend on.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Brokers are the seed brokers, host:port.
	Brokers []string `koanf:"brokers" json:"brokers" yaml:"brokers"`
	// Routing is common or per_destination.
	Routing Routing `koanf:"routing" json:"routing" yaml:"routing"`
	// Topic is the common topic. Empty means DefaultKafkaTopic.
	Topic string `koanf:"topic" json:"topic" yaml:"topic"`
	// TopicSuffix is appended to the destination under per_destination.
	// Empty means DefaultKafkaTopicSuffix.
	TopicSuffix string `koanf:"topic_suffix" json:"topic_suffix" yaml:"topic_suffix"`
	// SendTimeout bounds one batch's produce. 0 means
	// DefaultKafkaSendTimeout.
	SendTimeout time.Duration `koanf:"send_timeout" json:"send_timeout" yaml:"send_timeout"`
	// ClientID is the Kafka client id. Empty means DefaultKafkaClientID.
	ClientID string `koanf:"client_id" json:"client_id" yaml:"client_id"`
	// AllowAutoTopicCreation lets producing create missing topics (when
	// the brokers allow it).
	AllowAutoTopicCreation bool `koanf:"allow_auto_topic_creation" json:"allow_auto_topic_creation" yaml:"allow_auto_topic_creation"`
}

// HTTPConfig is dlq.http: each batch is POSTed as NDJSON.
type HTTPConfig struct {
	// Enabled turns the backend on.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// Endpoint is the http or https URL.
	Endpoint string `koanf:"endpoint" json:"endpoint" yaml:"endpoint"`
	// Timeout bounds one POST. 0 means DefaultHTTPTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
	// Headers are sent with every POST (e.g. Authorization); values are
	// secrets and never printed.
	Headers map[string]secret.String `koanf:"headers" json:"headers" yaml:"headers"`
}

// RedisConfig is dlq.redis: entries are added to a stream.
type RedisConfig struct {
	// Enabled turns the backend on.
	Enabled bool `koanf:"enabled" json:"enabled" yaml:"enabled"`
	// URL is redis://[user:password@]host:port[/db] (rediss:// for TLS).
	// Empty means DefaultRedisURL.
	URL secret.String `koanf:"url" json:"url" yaml:"url"`
	// StreamKey is the stream. Empty means DefaultRedisStreamKey.
	StreamKey string `koanf:"stream_key" json:"stream_key" yaml:"stream_key"`
	// MaxLen, when positive, trims the stream to about that many entries
	// (XADD MAXLEN ~).
	MaxLen int64 `koanf:"max_len" json:"max_len" yaml:"max_len"`
	// Timeout bounds one batch. 0 means DefaultRedisTimeout.
	Timeout time.Duration `koanf:"timeout" json:"timeout" yaml:"timeout"`
}

// Validate reports every problem of the section, each naming its key and
// the fix, joined; each matches ErrInvalidConfig. The zero Config is
// valid.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: Section + "." + key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Mode > ModeSingle {
		bad("mode", "is %s; use cascade, fan_out or single", c.Mode)
	}
	seen := map[string]bool{}
	for i, name := range c.Order {
		switch name {
		case BackendFile, BackendKafka, BackendHTTP, BackendRedis:
		default:
			bad(fmt.Sprintf("order[%d]", i), "is %q; use kafka, redis, http or file", name)
		}
		if seen[name] {
			bad(fmt.Sprintf("order[%d]", i), "repeats %q; name each backend once", name)
		}
		seen[name] = true
	}
	if c.Mode == ModeSingle && len(c.enabledBackends()) > 1 {
		bad("mode", "is single but %d backends are enabled (%s); enable one, or use cascade or fan_out",
			len(c.enabledBackends()), strings.Join(c.enabledBackends(), ", "))
	}
	if err := c.sinkConfig().ValidateAt(Section); err != nil {
		for _, e := range unjoin(err) {
			var ce *background.ConfigError
			if errors.As(e, &ce) {
				errs = append(errs, &ConfigError{Key: ce.Key, Msg: ce.Msg})
			} else {
				errs = append(errs, fmt.Errorf("%w: %w", ErrInvalidConfig, e))
			}
		}
	}
	if c.RouteWait < 0 {
		bad("route_wait", "must be >= 0 (got %s); leave it unset for %s", c.RouteWait, DefaultRouteWait)
	}
	// file
	if c.File.Rotation > RotationDaily {
		bad("file.rotation", "is %s; use hourly or daily", c.File.Rotation)
	}
	if c.File.MaxAge < 0 {
		bad("file.max_age", "must be >= 0 (got %s); leave it unset for %s", c.File.MaxAge, DefaultMaxAge)
	}
	if strings.ContainsAny(c.File.Prefix, `/\`) || c.File.Prefix == "." || c.File.Prefix == ".." {
		bad("file.prefix", "is %q; use a plain file-name prefix without path separators", c.File.Prefix)
	}
	// kafka
	if c.Kafka.Enabled {
		if len(c.Kafka.Brokers) == 0 {
			bad("kafka.brokers", "is empty; list at least one broker as host:port, or disable dlq.kafka")
		}
		for i, b := range c.Kafka.Brokers {
			if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
				bad(fmt.Sprintf("kafka.brokers[%d]", i), "is %q; use host:port", b)
			}
		}
	}
	if c.Kafka.Topic != "" && !validTopic(c.Kafka.Topic) {
		bad("kafka.topic", "is %q; a Kafka topic is 1 to 249 of [a-zA-Z0-9._-], not . or ..", c.Kafka.Topic)
	}
	if c.Kafka.TopicSuffix != "" && !validTopic("x"+c.Kafka.TopicSuffix) {
		bad("kafka.topic_suffix", "is %q; use only [a-zA-Z0-9._-]", c.Kafka.TopicSuffix)
	}
	if c.Kafka.Routing > RoutingPerDestination {
		bad("kafka.routing", "is %s; use common or per_destination", c.Kafka.Routing)
	}
	if c.Kafka.SendTimeout < 0 {
		bad("kafka.send_timeout", "must be >= 0 (got %s); leave it unset for %s", c.Kafka.SendTimeout, DefaultKafkaSendTimeout)
	}
	// http
	if c.HTTP.Enabled && c.HTTP.Endpoint == "" {
		bad("http.endpoint", "is empty; set the http(s) URL to POST entries to, or disable dlq.http")
	}
	if c.HTTP.Endpoint != "" {
		u, err := url.Parse(c.HTTP.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("http.endpoint", "is not an http(s) URL with a host; use e.g. https://collector.example/dlq")
		}
	}
	if c.HTTP.Timeout < 0 {
		bad("http.timeout", "must be >= 0 (got %s); leave it unset for %s", c.HTTP.Timeout, DefaultHTTPTimeout)
	}
	// redis
	if !c.Redis.URL.IsZero() {
		if _, err := redis.ParseURL(c.Redis.URL.Expose()); err != nil {
			// The URL may hold a password: do not repeat it.
			bad("redis.url", "is not a redis:// or rediss:// URL; use redis://[user:password@]host:port[/db]")
		}
	}
	if c.Redis.MaxLen < 0 {
		bad("redis.max_len", "must be >= 0 (got %d); use 0 for no trimming", c.Redis.MaxLen)
	}
	if c.Redis.Timeout < 0 {
		bad("redis.timeout", "must be >= 0 (got %s); leave it unset for %s", c.Redis.Timeout, DefaultRedisTimeout)
	}
	return errors.Join(errs...)
}

// enabledBackends returns the enabled backends in cascade order.
func (c *Config) enabledBackends() []string {
	on := map[string]bool{
		BackendFile:  c.File.Enabled,
		BackendKafka: c.Kafka.Enabled,
		BackendHTTP:  c.HTTP.Enabled,
		BackendRedis: c.Redis.Enabled,
	}
	var out []string
	for _, name := range c.order() {
		if on[name] {
			out = append(out, name)
		}
	}
	return out
}

// order returns Order followed by the backends it leaves out.
func (c *Config) order() []string {
	out := make([]string, 0, len(DefaultOrder))
	seen := map[string]bool{}
	for _, n := range append(append([]string(nil), c.Order...), DefaultOrder...) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// sinkConfig returns the queue's configuration.
func (c *Config) sinkConfig() background.Config {
	sync := c.SyncInterval
	if sync == 0 {
		sync = DefaultSyncInterval
	}
	return background.Config{
		QueueCapacity: c.QueueCapacity,
		BatchSize:     c.BatchSize,
		FlushInterval: c.FlushInterval,
		SyncInterval:  sync,
		Overflow:      c.Overflow,
		MaxAttempts:   c.MaxAttempts,
		RetryBackoff:  c.RetryBackoff,
		WriteTimeout:  c.WriteTimeout,
	}
}

func (c *Config) routeWait() time.Duration {
	if c.RouteWait == 0 {
		return DefaultRouteWait
	}
	return c.RouteWait
}

// validTopic reports a legal Kafka topic name.
func validTopic(t string) bool {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// unjoin returns the errors of an errors.Join, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// WithDefaults returns c with every zero that stands for a default
// replaced by that default, as the DLQ and its backends apply them: for
// showing the effective section (config-defaults, config-check, /config).
// Enabled flags, the mode, routing, rotation and the overflow policy keep
// their values (their zero is itself the default).
func (c Config) WithDefaults() Config {
	if len(c.Order) == 0 {
		c.Order = append([]string(nil), DefaultOrder...)
	}
	c.QueueCapacity = cmp.Or(c.QueueCapacity, background.DefaultQueueCapacity)
	c.BatchSize = cmp.Or(c.BatchSize, background.DefaultBatchSize)
	c.FlushInterval = cmp.Or(c.FlushInterval, background.DefaultFlushInterval)
	c.SyncInterval = cmp.Or(c.SyncInterval, DefaultSyncInterval)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, background.DefaultMaxAttempts)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, background.DefaultRetryBackoff)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, background.DefaultWriteTimeout)
	c.RouteWait = cmp.Or(c.RouteWait, DefaultRouteWait)
	c.File.Path = cmp.Or(c.File.Path, DefaultFilePath)
	c.File.Prefix = cmp.Or(c.File.Prefix, DefaultFilePrefix)
	c.File.MaxAge = cmp.Or(c.File.MaxAge, DefaultMaxAge)
	c.Kafka.Topic = cmp.Or(c.Kafka.Topic, DefaultKafkaTopic)
	c.Kafka.TopicSuffix = cmp.Or(c.Kafka.TopicSuffix, DefaultKafkaTopicSuffix)
	c.Kafka.SendTimeout = cmp.Or(c.Kafka.SendTimeout, DefaultKafkaSendTimeout)
	c.Kafka.ClientID = cmp.Or(c.Kafka.ClientID, DefaultKafkaClientID)
	c.HTTP.Timeout = cmp.Or(c.HTTP.Timeout, DefaultHTTPTimeout)
	if c.Redis.URL.Expose() == "" {
		c.Redis.URL = secret.New(DefaultRedisURL)
	}
	c.Redis.StreamKey = cmp.Or(c.Redis.StreamKey, DefaultRedisStreamKey)
	c.Redis.Timeout = cmp.Or(c.Redis.Timeout, DefaultRedisTimeout)
	return c
}
