package kafka

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
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

// docTables parses the profile and sizing tables of the package
// documentation (doc.go) into first header cell -> row -> column -> cell.
// Tables that share their first header cell are merged.
func docTables(t *testing.T) map[string]map[string]map[string]string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	sep := regexp.MustCompile(`\s{2,}`)
	out := map[string]map[string]map[string]string{}
	var header []string
	for _, line := range strings.Split(string(src), "\n") {
		body, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			header = nil
			continue
		}
		cells := sep.Split(strings.TrimSpace(body), -1)
		if header == nil {
			if cells[0] == "profile" || cells[0] == "sizing" {
				header = cells
			}
			continue
		}
		if len(cells) != len(header) {
			t.Fatalf("doc.go table row %q has %d cells, its header %d", body, len(cells), len(header))
		}
		rows := out[header[0]]
		if rows == nil {
			rows = map[string]map[string]string{}
			out[header[0]] = rows
		}
		row := rows[cells[0]]
		if row == nil {
			row = map[string]string{}
			rows[cells[0]] = row
		}
		for i := 1; i < len(cells); i++ {
			row[header[i]] = cells[i]
		}
	}
	return out
}

// docBytes reads a doc table size: "1 B", "256 KiB", "10 MiB" or a bare
// count.
func docBytes(t *testing.T, cell string) int64 {
	t.Helper()
	f := strings.Fields(cell)
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || len(f) > 2 {
		t.Fatalf("doc table cell %q is not a size", cell)
	}
	if len(f) == 1 {
		return n
	}
	unit, ok := map[string]int64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20}[f[1]]
	if !ok {
		t.Fatalf("doc table cell %q: unknown unit", cell)
	}
	return n * unit
}

// docDuration reads a doc table duration: "0", "10 ms", "45 s", "2 min".
func docDuration(t *testing.T, cell string) time.Duration {
	t.Helper()
	if cell == "0" {
		return 0
	}
	f := strings.Fields(cell)
	n, err := strconv.Atoi(f[0])
	if err != nil || len(f) != 2 {
		t.Fatalf("doc table cell %q is not a duration", cell)
	}
	unit, ok := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "min": time.Minute}[f[1]]
	if !ok {
		t.Fatalf("doc table cell %q: unknown unit", cell)
	}
	return time.Duration(n) * unit
}

// Every profile x sizing resolves to the values of the tables in the
// package documentation, and the clients New builds carry them as
// franz-go options: fetch sizes and wait, group timeouts, metadata age,
// retry backoff, linger, batch size, compression, buffer caps, in-flight
// requests, the balancer, manual commits and the key partitioner.
func TestProfileAndSizingMapping(t *testing.T) {
	tables := docTables(t)
	profiles, sizings := tables["profile"], tables["sizing"]
	if len(profiles) != 2 || len(sizings) != 3 || len(sizings["balanced"]) != 11 {
		t.Fatalf("doc.go tables not found or incomplete: %v", tables)
	}
	codecs := map[string]kgo.CompressionCodec{"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(), "none": kgo.NoCompression()}
	def, err := kgo.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	defaultBackoff := reflect.ValueOf(def.OptValue(kgo.RetryBackoffFn)).Pointer()

	ctx := testCtx(t)
	c := startCluster(t, kfake.SeedTopics(1, "t"))
	for _, p := range []Profile{ProfileProduction, ProfileDevTest} {
		for _, z := range []Sizing{SizingThroughput, SizingBalanced, SizingLowLatency} {
			t.Run(string(p)+"/"+string(z), func(t *testing.T) {
				pr, sz := profiles[string(p)], sizings[string(z)]
				cfg := validBase()
				cfg.Brokers, cfg.Profile, cfg.Sizing = c.Addrs(), p, z
				cfg.LagInterval, cfg.Metrics, cfg.Logger = -1, testMetrics(), testLogger(t)
				s, err := cfg.resolve()
				if err != nil {
					t.Fatal(err)
				}
				tr, err := New(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close(ctx)
				cc, pc := tr.Consumer().Client(), tr.Producer().Client()
				noIdem := cfg
				noIdem.Role, noIdem.Producer.DisableIdempotence = RoleProducer, true
				np, err := NewProducer(ctx, noIdem)
				if err != nil {
					t.Fatal(err)
				}
				defer np.Close(ctx)

				fetchMin, fetchMax := docBytes(t, sz["fetch min"]), docBytes(t, sz["fetch max"])
				partFetch, fetchWait := docBytes(t, sz["partition fetch"]), docDuration(t, sz["fetch wait"])
				batch, linger := docBytes(t, sz["batch"]), docDuration(t, sz["linger"])
				bufBytes, bufRecs := docBytes(t, sz["buffer bytes"]), docBytes(t, sz["buffer records"])
				inFlight := int(docBytes(t, sz["in flight"]))
				codec, ok := codecs[sz["codec"]]
				if !ok {
					t.Fatalf("doc codec %q", sz["codec"])
				}
				session, heartbeat := docDuration(t, pr["session"]), docDuration(t, pr["heartbeat"])
				rebalance, metaAge := docDuration(t, pr["rebalance"]), docDuration(t, pr["metadata age"])
				for _, m := range []struct {
					name      string
					got, want any
				}{
					{"fetch min", s.fetchMinBytes, int32(fetchMin)},
					{"fetch max", s.fetchMaxBytes, int32(fetchMax)},
					{"partition fetch", s.fetchMaxPartBytes, int32(partFetch)},
					{"fetch wait", s.fetchMaxWait, fetchWait},
					{"poll cap", s.pollCap, int(docBytes(t, sz["poll cap"]))},
					{"batch", s.batchMaxBytes, int32(batch)},
					{"linger", s.linger, linger},
					{"codec", s.compression, sz["codec"]},
					{"buffer bytes", s.maxBufferedBytes, int(bufBytes)},
					{"buffer records", s.maxBufferedRecords, int(bufRecs)},
					{"in flight", s.maxInFlight, inFlight},
					{"session", s.sessionTimeout, session},
					{"heartbeat", s.heartbeat, heartbeat},
					{"rebalance", s.rebalanceTimeout, rebalance},
					{"revoke_wait", s.revokeWait, docDuration(t, pr["revoke_wait"])},
					{"delivery", s.deliveryTimeout, docDuration(t, pr["delivery"])},
					{"metadata age", s.metadataMaxAge, metaAge},

					{"client FetchMinBytes", cc.OptValue(kgo.FetchMinBytes), int32(fetchMin)},
					{"client FetchMaxBytes", cc.OptValue(kgo.FetchMaxBytes), int32(fetchMax)},
					{"client FetchMaxPartitionBytes", cc.OptValue(kgo.FetchMaxPartitionBytes), int32(partFetch)},
					{"client FetchMaxWait", cc.OptValue(kgo.FetchMaxWait), fetchWait},
					{"client SessionTimeout", cc.OptValue(kgo.SessionTimeout), session},
					{"client HeartbeatInterval", cc.OptValue(kgo.HeartbeatInterval), heartbeat},
					{"client RebalanceTimeout", cc.OptValue(kgo.RebalanceTimeout), rebalance},
					{"client MetadataMaxAge", cc.OptValue(kgo.MetadataMaxAge), metaAge},
					{"client DisableAutoCommit", cc.OptValue(kgo.DisableAutoCommit), true},
					{"client ProducerLinger", pc.OptValue(kgo.ProducerLinger), linger},
					{"client ProducerBatchMaxBytes", pc.OptValue(kgo.ProducerBatchMaxBytes), int32(batch)},
					{"client ProducerBatchCompression", pc.OptValue(kgo.ProducerBatchCompression), []kgo.CompressionCodec{codec}},
					{"client MaxBufferedBytes", pc.OptValue(kgo.MaxBufferedBytes), bufBytes},
					{"client MaxBufferedRecords", pc.OptValue(kgo.MaxBufferedRecords), bufRecs},
					{"client MetadataMaxAge (producer)", pc.OptValue(kgo.MetadataMaxAge), metaAge},
					{"client DisableIdempotentWrite", pc.OptValue(kgo.DisableIdempotentWrite), false},
					{"client MaxProduceRequestsInflightPerBroker without idempotence", np.Client().OptValue(kgo.MaxProduceRequestsInflightPerBroker), inFlight},
					{"client partitioner", reflect.TypeOf(pc.OptValue(kgo.RecordPartitioner)), reflect.TypeOf(kgo.StickyKeyPartitioner(nil))},
				} {
					if !reflect.DeepEqual(m.got, m.want) {
						t.Errorf("%s = %v (%T), want %v (%T)", m.name, m.got, m.got, m.want, m.want)
					}
				}
				if bs, _ := cc.OptValue(kgo.Balancers).([]kgo.GroupBalancer); len(bs) != 1 || bs[0].ProtocolName() != "cooperative-sticky" {
					t.Errorf("client balancers %v, want cooperative-sticky alone", bs)
				}
				backoff, _ := cc.OptValue(kgo.RetryBackoffFn).(func(int) time.Duration)
				if backoff == nil {
					t.Fatal("client has no retry backoff function")
				}
				if cell := pr["retry backoff"]; cell == "client default" {
					if reflect.ValueOf(backoff).Pointer() != defaultBackoff {
						t.Errorf("retry backoff is not the client default")
					}
				} else {
					lo, hi, ok := strings.Cut(cell, "-")
					if !ok {
						t.Fatalf("doc retry backoff %q", cell)
					}
					unit := strings.Fields(hi)[1]
					want := [2]time.Duration{docDuration(t, lo+" "+unit), docDuration(t, hi)}
					if got := [2]time.Duration{backoff(1), backoff(30)}; got != want {
						t.Errorf("retry backoff first %s, longest %s; want %s and %s", got[0], got[1], want[0], want[1])
					}
				}
			})
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
