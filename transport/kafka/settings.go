package kafka

import (
	"regexp"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// settings is a Config resolved to concrete values: profile, then sizing
// profile, then named knobs, then overrides.
type settings struct {
	role    Role
	profile Profile
	sizing  Sizing
	prod    bool

	// connection
	brokers          []string
	clientID         string
	group            string
	instanceID       string
	topics           []string
	securityProtocol string
	saslMechanism    string
	saslUser         string
	saslPass         secret.String
	caFile           string
	certFile         string
	keyFile          string
	skipVerify       bool
	allowInsecure    bool
	dialTimeout      time.Duration
	connIdle         time.Duration
	metadataMaxAge   time.Duration
	metadataMinAge   time.Duration
	retryBackoffMin  time.Duration
	retryBackoffMax  time.Duration

	// consumer
	fetchMinBytes     int32
	fetchMaxBytes     int32
	fetchMaxWait      time.Duration
	fetchMaxPartBytes int32
	pollCap           int
	sessionTimeout    time.Duration
	heartbeat         time.Duration
	rebalanceTimeout  time.Duration
	revokeWait        time.Duration
	offsetReset       string
	isolation         string
	autoDiscover      bool
	include           []*regexp.Regexp
	exclude           []*regexp.Regexp
	topicRefresh      time.Duration
	lagInterval       time.Duration
	lagMaxPartitions  int

	// producer
	produceTopic       string
	linger             time.Duration
	batchMaxBytes      int32
	compression        string
	maxBufferedBytes   int
	maxBufferedRecords int
	maxInFlight        int
	acks               string
	idempotent         bool
	requestTimeout     time.Duration
	deliveryTimeout    time.Duration
	recordTries        int // 0: retry until deliveryTimeout
	closeTimeout       time.Duration
}

// minFetchWait is the shortest fetch wait the client accepts.
const minFetchWait = 10 * time.Millisecond

// profileBase returns the settings of a deployment profile.
func profileBase(p Profile) settings {
	s := settings{
		profile:          p,
		clientID:         DefaultClientID,
		brokers:          []string{DefaultBroker},
		securityProtocol: ProtocolPlaintext,
		sessionTimeout:   45 * time.Second,
		heartbeat:        3 * time.Second,
		rebalanceTimeout: 60 * time.Second,
		revokeWait:       10 * time.Second,
		offsetReset:      "earliest",
		isolation:        "read_uncommitted",
		topicRefresh:     DefaultTopicRefresh,
		lagInterval:      DefaultLagInterval,
		lagMaxPartitions: DefaultLagMaxPartitions,
		acks:             "all",
		idempotent:       true,
		requestTimeout:   10 * time.Second,
		deliveryTimeout:  2 * time.Minute,
		dialTimeout:      10 * time.Second,
		metadataMaxAge:   5 * time.Minute,
		metadataMinAge:   5 * time.Second,
		closeTimeout:     10 * time.Second,
		maxInFlight:      5,
	}
	if p == ProfileDevTest {
		s.sessionTimeout = 10 * time.Second
		s.heartbeat = time.Second
		s.rebalanceTimeout = 20 * time.Second
		s.revokeWait = 5 * time.Second
		s.deliveryTimeout = 30 * time.Second
		s.dialTimeout = 5 * time.Second
		s.metadataMaxAge = 30 * time.Second
		s.metadataMinAge = 250 * time.Millisecond
		s.retryBackoffMin = 10 * time.Millisecond
		s.retryBackoffMax = 100 * time.Millisecond
	}
	return s
}

// applySizing sets the fetch, poll and batching values of a sizing
// profile.
func (s *settings) applySizing(z Sizing) {
	s.sizing = z
	const kib, mib = 1 << 10, 1 << 20
	switch z {
	case SizingBalanced:
		s.fetchMinBytes, s.fetchMaxWait, s.fetchMaxPartBytes, s.fetchMaxBytes = 256*kib, 25*time.Millisecond, 5*mib, 50*mib
		s.pollCap = 1000
		s.batchMaxBytes, s.linger, s.compression, s.maxBufferedBytes = 64*kib, 5*time.Millisecond, "lz4", 32*mib
	case SizingLowLatency:
		s.fetchMinBytes, s.fetchMaxWait, s.fetchMaxPartBytes, s.fetchMaxBytes = 1, 10*time.Millisecond, 1*mib, 10*mib
		s.pollCap = 500
		s.batchMaxBytes, s.linger, s.compression, s.maxBufferedBytes = 16*kib, 0, "lz4", 16*mib
	default:
		s.fetchMinBytes, s.fetchMaxWait, s.fetchMaxPartBytes, s.fetchMaxBytes = 1*mib, 50*time.Millisecond, 10*mib, 100*mib
		s.pollCap = 2000
		s.batchMaxBytes, s.linger, s.compression, s.maxBufferedBytes = 128*kib, 20*time.Millisecond, "lz4", 64*mib
	}
	s.maxBufferedRecords = 100_000
}

// resolve validates c and returns its settings.
func (c Config) resolve() (*settings, error) {
	prof, ok := normalizeProfile(c.Profile)
	if !ok {
		return nil, configError("%s.profile is %q: use production or devtest", Section, string(c.Profile))
	}
	siz, ok := normalizeSizing(c.Sizing)
	if !ok {
		return nil, configError("%s.sizing is %q: use throughput, balanced or low_latency", Section, string(c.Sizing))
	}
	role, ok := normalizeRole(c.Role)
	if !ok {
		return nil, configError("%s.role is %q: use consumer, producer or both", Section, string(c.Role))
	}
	if err := c.validateKnobs(); err != nil {
		return nil, err
	}
	s := profileBase(prof)
	s.applySizing(siz)
	s.role = role
	s.prod = c.production()

	// Connection and identity.
	if c.Brokers != nil {
		s.brokers = trimList(c.Brokers)
		if len(s.brokers) == 0 {
			return nil, configError("%s.brokers is empty: list at least one bootstrap broker as host:port (KAFKA_BOOTSTRAP_SERVERS)", Section)
		}
	}
	if c.ClientID != "" {
		s.clientID = c.ClientID
	}
	s.group = strings.TrimSpace(c.Group)
	s.instanceID = strings.TrimSpace(c.GroupInstanceID)
	s.topics = trimList(c.Topics)
	if c.SecurityProtocol != "" {
		s.securityProtocol = strings.ToLower(strings.TrimSpace(c.SecurityProtocol))
	}
	s.saslMechanism = strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
	s.saslUser = c.SASLUsername
	s.saslPass = c.SASLPassword
	s.caFile = c.SSLCALocation
	s.certFile = c.SSLCertificateLocation
	s.keyFile = c.SSLKeyLocation
	s.skipVerify = c.SSLSkipVerify
	s.allowInsecure = c.AllowInsecure

	// Discovery and lag.
	s.autoDiscover = c.AutoDiscover
	var err error
	if s.include, err = compileAll("topic_include", c.TopicInclude); err != nil {
		return nil, err
	}
	if s.exclude, err = compileAll("topic_exclude", c.topicExclude()); err != nil {
		return nil, err
	}
	if c.TopicRefresh > 0 {
		s.topicRefresh = c.TopicRefresh
	}
	if c.LagInterval != 0 {
		s.lagInterval = c.LagInterval
	}
	if c.LagMaxPartitions > 0 {
		s.lagMaxPartitions = c.LagMaxPartitions
	}

	// Named knobs.
	cc, pc := c.Consumer, c.Producer
	setI32(&s.fetchMinBytes, cc.FetchMinBytes)
	setI32(&s.fetchMaxBytes, cc.FetchMaxBytes)
	setI32(&s.fetchMaxPartBytes, cc.FetchMaxPartitionBytes)
	setDur(&s.fetchMaxWait, cc.FetchMaxWait)
	setInt(&s.pollCap, cc.MaxPollRecords)
	setDur(&s.sessionTimeout, cc.SessionTimeout)
	setDur(&s.heartbeat, cc.HeartbeatInterval)
	setDur(&s.rebalanceTimeout, cc.RebalanceTimeout)
	setDur(&s.revokeWait, cc.RevokeWait)
	if cc.AutoOffsetReset != "" {
		s.offsetReset = strings.ToLower(strings.TrimSpace(cc.AutoOffsetReset))
	}
	if cc.IsolationLevel != "" {
		s.isolation = strings.ToLower(strings.TrimSpace(cc.IsolationLevel))
	}
	s.produceTopic = strings.TrimSpace(pc.Topic)
	setDur(&s.linger, pc.Linger)
	setI32(&s.batchMaxBytes, pc.BatchMaxBytes)
	if pc.Compression != "" {
		s.compression = strings.ToLower(strings.TrimSpace(pc.Compression))
	}
	setInt(&s.maxBufferedBytes, pc.MaxBufferedBytes)
	setInt(&s.maxBufferedRecords, pc.MaxBufferedRecords)
	setInt(&s.maxInFlight, pc.MaxInFlight)
	if pc.Acks != "" {
		s.acks = strings.ToLower(strings.TrimSpace(pc.Acks))
	}
	if pc.DisableIdempotence {
		s.idempotent = false
	}
	setDur(&s.requestTimeout, pc.RequestTimeout)
	setDur(&s.deliveryTimeout, pc.DeliveryTimeout)
	setDur(&s.closeTimeout, pc.CloseTimeout)

	// Overrides win over everything else.
	if err := s.applyOverrides(c.Overrides); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// check validates the resolved values and the security policy.
func (s *settings) check() error {
	if len(s.brokers) == 0 {
		return configError("%s.brokers is empty: list at least one bootstrap broker as host:port (KAFKA_BOOTSTRAP_SERVERS)", Section)
	}
	for i, b := range s.brokers {
		if !strings.Contains(b, ":") && !strings.HasPrefix(b, "[") {
			return configError("%s.brokers[%d] is %q: use host:port", Section, i, b)
		}
	}
	if err := mustBeOneOf("consumer.auto_offset_reset", s.offsetReset, "earliest", "latest", "none"); err != nil {
		return err
	}
	if err := mustBeOneOf("consumer.isolation_level", s.isolation, "read_uncommitted", "read_committed"); err != nil {
		return err
	}
	if err := mustBeOneOf("producer.compression", s.compression, "none", "gzip", "snappy", "lz4", "zstd"); err != nil {
		return err
	}
	if err := mustBeOneOf("producer.acks", s.acks, "all", "leader", "none"); err != nil {
		return err
	}
	if s.idempotent && s.acks != "all" {
		return configError("%s.producer.acks is %q: the idempotent producer needs acks all; set %s.producer.disable_idempotence to use %q", Section, s.acks, Section, s.acks)
	}
	if s.fetchMaxPartBytes > s.fetchMaxBytes {
		return configError("%s.consumer.fetch_max_partition_bytes (%d) is above %s.consumer.fetch_max_bytes (%d): lower it or raise fetch_max_bytes", Section, s.fetchMaxPartBytes, Section, s.fetchMaxBytes)
	}
	if s.heartbeat >= s.sessionTimeout {
		return configError("%s.consumer.heartbeat_interval (%s) must be below %s.consumer.session_timeout (%s)", Section, s.heartbeat, Section, s.sessionTimeout)
	}
	if s.revokeWait >= s.rebalanceTimeout {
		return configError("%s.consumer.revoke_wait (%s) must be below %s.consumer.rebalance_timeout (%s), or the member is expelled while it waits", Section, s.revokeWait, Section, s.rebalanceTimeout)
	}
	if s.fetchMaxWait < minFetchWait {
		return configError("%s.consumer.fetch_max_wait is %s: use at least %s", Section, s.fetchMaxWait, minFetchWait)
	}
	if s.pollCap <= 0 {
		return configError("%s.consumer.max_poll_records is %d: use a positive count", Section, s.pollCap)
	}
	if s.maxBufferedBytes <= 0 || s.maxBufferedRecords <= 0 {
		return configError("%s.producer.max_buffered_bytes and max_buffered_records must be positive", Section)
	}
	if s.maxInFlight <= 0 {
		return configError("%s.producer.max_in_flight is %d: use a positive count", Section, s.maxInFlight)
	}
	return s.checkSecurity()
}

// checkSecurity validates the protocol, SASL settings and the production
// policy.
func (s *settings) checkSecurity() error {
	if err := mustBeOneOf("security_protocol", s.securityProtocol, ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL); err != nil {
		return err
	}
	sasl := s.securityProtocol == ProtocolSASLPlaintext || s.securityProtocol == ProtocolSASLSSL
	if sasl {
		if s.saslMechanism == "" {
			return configError("%s.sasl_mechanism is empty but %s.security_protocol is %s: set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", Section, Section, s.securityProtocol)
		}
		if err := mustBeOneOf("sasl_mechanism", s.saslMechanism, MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512); err != nil {
			return err
		}
		if s.saslUser == "" {
			return configError("%s.sasl_username is empty but %s.security_protocol is %s: set it (KAFKA_SASL_USERNAME)", Section, Section, s.securityProtocol)
		}
		if s.saslPass.Expose() == "" {
			return configError("%s.sasl_password is empty but %s.security_protocol is %s: set it (KAFKA_SASL_PASSWORD)", Section, Section, s.securityProtocol)
		}
	} else if s.saslMechanism != "" {
		return configError("%s.sasl_mechanism is set but %s.security_protocol is %s: use sasl_ssl (or sasl_plaintext)", Section, Section, s.securityProtocol)
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return configError("%s.ssl_certificate_location and %s.ssl_key_location must be set together for a client certificate", Section, Section)
	}
	tlsOn := s.securityProtocol == ProtocolSSL || s.securityProtocol == ProtocolSASLSSL
	if !tlsOn && (s.caFile != "" || s.certFile != "" || s.skipVerify) {
		return configError("%s.ssl_* is set but %s.security_protocol is %s: use ssl or sasl_ssl", Section, Section, s.securityProtocol)
	}
	if s.prod && !s.allowInsecure {
		if !tlsOn {
			return configError("%w: %s.security_protocol is %s in production: use ssl or sasl_ssl, or set %s.allow_insecure to accept an unencrypted connection", ErrInsecure, Section, s.securityProtocol, Section)
		}
		if s.skipVerify {
			return configError("%w: %s.ssl_skip_verify is true in production: give the CA with %s.ssl_ca_location, or set %s.allow_insecure", ErrInsecure, Section, Section, Section)
		}
	}
	return nil
}

func trimList(in []string) []string {
	var out []string
	for _, v := range in {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func setI32(dst *int32, v int32) {
	if v > 0 {
		*dst = v
	}
}

func setInt(dst *int, v int) {
	if v > 0 {
		*dst = v
	}
}

func setDur(dst *time.Duration, v time.Duration) {
	if v > 0 {
		*dst = v
	}
}
