package kafka

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
)

func validBase() Config {
	return Config{Brokers: []string{"b1:9092"}, Group: "g", Topics: []string{"t"}, Environment: "test", Producer: ProducerConfig{Topic: "out"}}
}

// Bad configuration gives errors that name the key (and wrap ErrConfig).
func TestConfigErrorsNameTheKey(t *testing.T) {
	cases := []struct {
		name   string
		mod    func(c *Config)
		want   []string
		target error
	}{
		{"unknown override", func(c *Config) { c.Overrides = map[string]string{"fetch.min.bytes": "1", "no.such.property": "x"} }, []string{"no.such.property", "kafka.overrides"}, ErrUnknownOverride},
		{"bad override value", func(c *Config) { c.Overrides = map[string]string{"linger.ms": "soon"} }, []string{"linger.ms", "soon", "not an integer"}, nil},
		{"auto commit override", func(c *Config) { c.Overrides = map[string]string{"enable.auto.commit": "true"} }, []string{"enable.auto.commit"}, nil},
		{"eager balancer override", func(c *Config) { c.Overrides = map[string]string{"partition.assignment.strategy": "range"} }, []string{"cooperative-sticky"}, nil},
		{"negative retries", func(c *Config) { c.Overrides = map[string]string{"retries": "-1"} }, []string{"retries", "out of range"}, nil},
		{"password in overrides", func(c *Config) { c.Overrides = map[string]string{"sasl.password": "hunter3"} }, []string{"kafka.sasl_password"}, nil},
		{"plaintext in production", func(c *Config) { c.Environment = "production" }, []string{"kafka.security_protocol", "plaintext", "allow_insecure"}, ErrInsecure},
		{"sasl_plaintext in production", func(c *Config) {
			c.Environment = "prod"
			c.SecurityProtocol, c.SASLMechanism, c.SASLUsername, c.SASLPassword = "SASL_PLAINTEXT", "PLAIN", "u", secret.New("p")
		}, []string{"kafka.security_protocol"}, ErrInsecure},
		{"skip verify in production", func(c *Config) {
			c.Environment, c.SecurityProtocol, c.SSLSkipVerify = "production", "ssl", true
		}, []string{"kafka.ssl_skip_verify"}, ErrInsecure},
		{"empty brokers", func(c *Config) { c.Brokers = []string{} }, []string{"kafka.brokers"}, nil},
		{"blank brokers", func(c *Config) { c.Brokers = []string{" , "} }, []string{"kafka.brokers"}, nil},
		{"broker without port", func(c *Config) { c.Brokers = []string{"localhost"} }, []string{"kafka.brokers[0]"}, nil},
		{"no group", func(c *Config) { c.Group = "" }, []string{"kafka.group"}, nil},
		{"no topics", func(c *Config) { c.Topics = nil }, []string{"kafka.topics"}, nil},
		{"no producer topic", func(c *Config) { c.Producer.Topic = "" }, []string{"kafka.producer.topic"}, nil},
		{"bad role", func(c *Config) { c.Role = "sideways" }, []string{"kafka.role"}, nil},
		{"bad profile", func(c *Config) { c.Profile = "staging" }, []string{"kafka.profile"}, nil},
		{"bad sizing", func(c *Config) { c.Sizing = "huge" }, []string{"kafka.sizing"}, nil},
		{"bad regex", func(c *Config) { c.AutoDiscover, c.TopicInclude = true, []string{"("} }, []string{"kafka.topic_include[0]"}, nil},
		{"sasl without mechanism", func(c *Config) { c.SecurityProtocol = "sasl_ssl" }, []string{"kafka.sasl_mechanism"}, nil},
		{"sasl without user", func(c *Config) { c.SecurityProtocol, c.SASLMechanism = "sasl_ssl", "SCRAM-SHA-512" }, []string{"kafka.sasl_username"}, nil},
		{"sasl without password", func(c *Config) {
			c.SecurityProtocol, c.SASLMechanism, c.SASLUsername = "sasl_ssl", "SCRAM-SHA-512", "u"
		}, []string{"kafka.sasl_password"}, nil},
		{"bad mechanism", func(c *Config) {
			c.SecurityProtocol, c.SASLMechanism, c.SASLUsername, c.SASLPassword = "sasl_ssl", "GSSAPI", "u", secret.New("p")
		}, []string{"kafka.sasl_mechanism", "GSSAPI"}, nil},
		{"mechanism without sasl", func(c *Config) { c.SASLMechanism = "PLAIN" }, []string{"kafka.sasl_mechanism"}, nil},
		{"ssl files on plaintext", func(c *Config) { c.SSLCALocation = "/ca.pem" }, []string{"kafka.ssl_"}, nil},
		{"cert without key", func(c *Config) { c.SecurityProtocol, c.SSLCertificateLocation = "ssl", "/c.pem" }, []string{"kafka.ssl_key_location"}, nil},
		{"bad protocol", func(c *Config) { c.SecurityProtocol = "tls" }, []string{"kafka.security_protocol"}, nil},
		{"acks without disabling idempotence", func(c *Config) { c.Producer.Acks = "leader" }, []string{"kafka.producer.acks", "disable_idempotence"}, nil},
		{"bad compression", func(c *Config) { c.Producer.Compression = "brotli" }, []string{"kafka.producer.compression"}, nil},
		{"bad offset reset", func(c *Config) { c.Consumer.AutoOffsetReset = "middle" }, []string{"kafka.consumer.auto_offset_reset"}, nil},
		{"negative knob", func(c *Config) { c.Consumer.FetchMaxBytes = -1 }, []string{"kafka.consumer.fetch_max_bytes"}, nil},
		{"negative duration", func(c *Config) { c.Producer.Linger = -time.Second }, []string{"kafka.producer.linger"}, nil},
		{"partition bytes above fetch bytes", func(c *Config) { c.Consumer.FetchMaxBytes, c.Consumer.FetchMaxPartitionBytes = 1000, 2000 }, []string{"fetch_max_partition_bytes"}, nil},
		{"heartbeat above session", func(c *Config) { c.Consumer.HeartbeatInterval = time.Minute }, []string{"kafka.consumer.heartbeat_interval"}, nil},
		{"revoke wait above rebalance timeout", func(c *Config) { c.Consumer.RevokeWait = 2 * time.Minute }, []string{"kafka.consumer.revoke_wait"}, nil},
		{"fetch wait too short", func(c *Config) { c.Consumer.FetchMaxWait = time.Millisecond }, []string{"kafka.consumer.fetch_max_wait"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase()
			tc.mod(&c)
			err := c.Validate()
			wantErrContains(t, err, tc.want...)
			if !errors.Is(err, transport.ErrConfig) {
				t.Fatalf("%v does not wrap transport.ErrConfig", err)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Fatalf("%v does not wrap %v", err, tc.target)
			}
			if strings.Contains(err.Error(), "hunter3") {
				t.Fatalf("error leaks a password: %v", err)
			}
		})
	}
	if err := validBase().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	allowed := validBase()
	allowed.Environment, allowed.AllowInsecure = "production", true
	if err := allowed.Validate(); err != nil {
		t.Fatalf("plaintext in production with allow_insecure: %v", err)
	}
}

// The zero Config (with a role's essentials) resolves to the documented
// defaults.
func TestConfigDefaults(t *testing.T) {
	s, err := Config{Role: RoleProducer, Producer: ProducerConfig{Topic: "x"}, Environment: "test"}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.brokers, ",") != DefaultBroker || s.clientID != DefaultClientID || s.profile != ProfileProduction || s.sizing != SizingThroughput {
		t.Fatalf("defaults: brokers %v client %q profile %q sizing %q", s.brokers, s.clientID, s.profile, s.sizing)
	}
	if s.securityProtocol != ProtocolPlaintext || s.offsetReset != "earliest" || !s.idempotent || s.acks != "all" || s.compression != "lz4" {
		t.Fatalf("defaults: %+v", s)
	}
	if s.topicRefresh != DefaultTopicRefresh || s.lagInterval != DefaultLagInterval || s.lagMaxPartitions != DefaultLagMaxPartitions {
		t.Fatalf("defaults: refresh %s lag %s max %d", s.topicRefresh, s.lagInterval, s.lagMaxPartitions)
	}
	if len(s.exclude) != 1 || s.exclude[0].String() != DefaultTopicExclude {
		t.Fatalf("default exclude %v", s.exclude)
	}
}

// Precedence: profile < sizing profile < named knob < override.
func TestConfigPrecedence(t *testing.T) {
	base := Config{Role: RoleProducer, Producer: ProducerConfig{Topic: "x"}, Environment: "test"}
	s, _ := base.resolve()
	if s.linger != 20*time.Millisecond || s.fetchMinBytes != 1<<20 || s.pollCap != 2000 {
		t.Fatalf("throughput sizing: linger %s fetch.min %d poll %d", s.linger, s.fetchMinBytes, s.pollCap)
	}
	base.Sizing = SizingBalanced
	s, _ = base.resolve()
	if s.linger != 5*time.Millisecond || s.pollCap != 1000 {
		t.Fatalf("balanced sizing: linger %s poll %d", s.linger, s.pollCap)
	}
	base.Profile = "dev"
	s, _ = base.resolve()
	if s.sessionTimeout != 10*time.Second || s.retryBackoffMin != 10*time.Millisecond {
		t.Fatalf("devtest profile: session %s backoff %s", s.sessionTimeout, s.retryBackoffMin)
	}
	base.Producer.Linger = 7 * time.Millisecond
	base.Consumer.MaxPollRecords = 42
	s, _ = base.resolve()
	if s.linger != 7*time.Millisecond || s.pollCap != 42 {
		t.Fatalf("named knobs: linger %s poll %d", s.linger, s.pollCap)
	}
	base.Overrides = map[string]string{
		"linger.ms": "9", "max.poll.records": "43", "compression.type": "zstd", "queue.buffering.max.kbytes": "2",
		"acks": "1", "enable.idempotence": "false", "auto.offset.reset": "largest", "retries": "0",
		"bootstrap.servers": "x:1, y:2", "sasl.username": "u", "session.timeout.ms": "30000",
	}
	s, err := base.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if s.linger != 9*time.Millisecond || s.pollCap != 43 || s.compression != "zstd" || s.maxBufferedBytes != 2048 ||
		s.acks != "leader" || s.idempotent || s.offsetReset != "latest" || s.recordTries != 1 ||
		strings.Join(s.brokers, ",") != "x:1,y:2" || s.saslUser != "u" || s.sessionTimeout != 30*time.Second {
		t.Fatalf("overrides not applied: %+v", s)
	}
	if len(OverrideNames()) < 40 {
		t.Fatalf("OverrideNames lists %d names", len(OverrideNames()))
	}
}

// Every profile and sizing combination builds valid client options.
func TestProfilesBuildValidClients(t *testing.T) {
	for _, p := range []Profile{ProfileProduction, ProfileDevTest} {
		for _, z := range []Sizing{SizingThroughput, SizingBalanced, SizingLowLatency} {
			cfg := validBase()
			cfg.Profile, cfg.Sizing = p, z
			s, err := cfg.resolve()
			if err != nil {
				t.Fatalf("%s/%s: %v", p, z, err)
			}
			opts, err := s.commonOpts(testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			for _, extra := range [][]kgo.Opt{append(s.fetchOpts(), s.groupOpts()...), s.producerOpts()} {
				all := append(append([]kgo.Opt(nil), opts...), extra...)
				if err := kgo.ValidateOpts(all...); err != nil {
					t.Errorf("%s/%s: %v", p, z, err)
				}
			}
		}
	}
}

// Certificate files that cannot be used are reported by New with the key.
func TestTLSFileErrors(t *testing.T) {
	cfg := validBase()
	cfg.SecurityProtocol = "ssl"
	cfg.SSLCALocation = "/nonexistent/ca.pem"
	s, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.tlsConfig()
	wantErrContains(t, err, "kafka.ssl_ca_location", "/nonexistent/ca.pem")
	cfg.SSLCALocation = ""
	cfg.SSLCertificateLocation, cfg.SSLKeyLocation = "/nonexistent/c.pem", "/nonexistent/k.pem"
	s, _ = cfg.resolve()
	_, err = s.tlsConfig()
	wantErrContains(t, err, "kafka.ssl_certificate_location")
}

// A password never reaches an error or a formatted config.
func TestPasswordNeverPrinted(t *testing.T) {
	cfg := validBase()
	cfg.SASLPassword = secret.New("hunter2")
	cfg.SecurityProtocol = "bogus"
	err := cfg.Validate()
	if err == nil {
		t.Fatal("bogus protocol accepted")
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("password printed: %s", s)
		}
	}
}
