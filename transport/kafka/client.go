package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// commonOpts returns the options every client shares: brokers, identity,
// timeouts, TLS, SASL and logging.
func (s *settings) commonOpts(log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ClientID(s.clientID),
		kgo.DialTimeout(s.dialTimeout),
		kgo.MetadataMaxAge(s.metadataMaxAge),
		kgo.MetadataMinAge(min(s.metadataMinAge, s.metadataMaxAge)),
		kgo.WithLogger(&kgoLogger{log: log.With("component", "franz-go")}),
	}
	if s.connIdle > 0 {
		opts = append(opts, kgo.ConnIdleTimeout(s.connIdle))
	}
	if s.retryBackoffMin > 0 {
		lo, hi := s.retryBackoffMin, max(s.retryBackoffMax, s.retryBackoffMin)
		opts = append(opts, kgo.RetryBackoffFn(func(tries int) time.Duration {
			d := lo
			for i := 1; i < tries && d < hi; i++ {
				d *= 2
			}
			return min(d, hi)
		}))
	}
	if s.securityProtocol == ProtocolSSL || s.securityProtocol == ProtocolSASLSSL {
		tc, err := s.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s.securityProtocol == ProtocolSASLPlaintext || s.securityProtocol == ProtocolSASLSSL {
		opts = append(opts, kgo.SASL(s.saslMechanismImpl()))
	}
	return opts, nil
}

// tlsConfig builds the client TLS configuration from the CA, certificate
// and key files, naming the key of a file that cannot be used.
func (s *settings) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.skipVerify} //nolint:gosec // skip-verify is refused in production unless allowed
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, configError("%s.ssl_ca_location %q cannot be read: %v", Section, s.caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configError("%s.ssl_ca_location %q holds no PEM certificate", Section, s.caFile)
		}
		tc.RootCAs = pool
	}
	if s.certFile != "" {
		cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, configError("%s.ssl_certificate_location %q with %s.ssl_key_location %q is not a usable key pair: %v", Section, s.certFile, Section, s.keyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s *settings) saslMechanismImpl() sasl.Mechanism {
	user, pass := s.saslUser, s.saslPass.Expose()
	switch s.saslMechanism {
	case MechanismSCRAMSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case MechanismSCRAMSHA512:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	default:
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	}
}

// fetchOpts returns the consumer fetch options.
func (s *settings) fetchOpts() []kgo.Opt {
	start := kgo.NewOffset().AtStart()
	switch s.offsetReset {
	case "latest":
		start = kgo.NewOffset().AtEnd()
	case "none":
		start = kgo.NewOffset().AtCommitted()
	}
	iso := kgo.ReadUncommitted()
	if s.isolation == "read_committed" {
		iso = kgo.ReadCommitted()
	}
	return []kgo.Opt{
		kgo.FetchMinBytes(s.fetchMinBytes),
		kgo.FetchMaxBytes(s.fetchMaxBytes),
		kgo.FetchMaxWait(s.fetchMaxWait),
		kgo.FetchMaxPartitionBytes(s.fetchMaxPartBytes),
		kgo.BrokerMaxReadBytes(max(s.fetchMaxBytes, 100<<20) + 1<<20),
		kgo.ConsumeStartOffset(start),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(iso),
	}
}

// groupOpts returns the consumer group options: cooperative-sticky,
// manual commits only.
func (s *settings) groupOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup(s.group),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(s.sessionTimeout),
		kgo.HeartbeatInterval(s.heartbeat),
		kgo.RebalanceTimeout(s.rebalanceTimeout),
	}
	if s.instanceID != "" {
		opts = append(opts, kgo.InstanceID(s.instanceID))
	}
	return opts
}

// producerOpts returns the producer options.
func (s *settings) producerOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ProducerLinger(s.linger),
		kgo.ProducerBatchMaxBytes(s.batchMaxBytes),
		kgo.ProducerBatchCompression(codec(s.compression)),
		kgo.MaxBufferedBytes(s.maxBufferedBytes),
		kgo.MaxBufferedRecords(s.maxBufferedRecords),
		kgo.ProduceRequestTimeout(s.requestTimeout),
		// The record key is the partition key: a keyed record goes to the
		// partition of the murmur2 hash of its key (the Java client's
		// mapping), so records with one key stay in order on one
		// partition; unkeyed records stick to a partition per batch.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		// No RecordDeliveryTimeout: franz-go measures it from the record
		// timestamp, which keel keeps from the source, so forwarded
		// records would time out at once. SendBatch bounds delivery with
		// a context deadline from the call instead.
	}
	switch s.acks {
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	}
	if !s.idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(s.maxInFlight))
	}
	if s.recordTries > 0 {
		opts = append(opts, kgo.RecordRetries(s.recordTries))
	}
	return opts
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}

// newClient builds a franz-go client and checks that the options are
// valid together.
func newClient(op string, opts []kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, configError("%s: the client options are invalid: %v", op, err)
	}
	return cl, nil
}

// ping checks that a broker answers within ctx, so that a wrong address or
// a refused handshake is reported by New instead of by the first Recv.
func ping(ctx context.Context, cl *kgo.Client, brokers []string) error {
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("no broker of %v answered: %w (check %s.brokers, the security settings and the network)", brokers, err, Section)
	}
	return nil
}

// kgoLogger passes franz-go's warnings and errors to slog (its info lines
// too when the logger is at debug).
type kgoLogger struct{ log *slog.Logger }

// Level implements kgo.Logger: info when the logger is at debug, else
// warnings and errors only.
func (l *kgoLogger) Level() kgo.LogLevel {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

// Log implements kgo.Logger; franz-go's info lines are logged at debug.
func (l *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lv := slog.LevelDebug
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, msg, keyvals...)
}
