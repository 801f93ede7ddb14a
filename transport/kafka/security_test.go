package kafka

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

// SASL SCRAM and PLAIN over TLS (with a client certificate) and plain TLS
// against a cluster that requires them: records go through; a wrong password or a
// missing client certificate is refused at New.
func TestSecurity(t *testing.T) {
	certs := kafkatest.NewCerts(t)
	cases := []struct {
		name       string
		mech       string
		protocol   string
		clientCert bool
	}{
		{"scram-sha-256 with mutual TLS", MechanismSCRAMSHA256, ProtocolSASLSSL, true},
		{"scram-sha-512 over TLS", MechanismSCRAMSHA512, ProtocolSASLSSL, false},
		{"plain over TLS", MechanismPlain, ProtocolSASLSSL, false},
		{"TLS without SASL", "", ProtocolSSL, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			opts := []kfake.Opt{kfake.SeedTopics(1, "sec"), kfake.TLS(certs.ServerTLS(tc.clientCert))}
			if tc.mech != "" {
				opts = append(opts, kfake.EnableSASL(), kfake.Superuser(tc.mech, "keel", "s3cret"))
			}
			c := startCluster(t, opts...)
			cfg := testConfig(t, c, "sg", "sec")
			cfg.Producer.Topic = "sec"
			cfg.Environment = "production"
			cfg.SecurityProtocol = tc.protocol
			cfg.SSLCALocation = certs.CAFile
			if tc.clientCert {
				cfg.SSLCertificateLocation, cfg.SSLKeyLocation = certs.ClientCertFile, certs.ClientKeyFile
			}
			if tc.mech != "" {
				cfg.SASLMechanism, cfg.SASLUsername, cfg.SASLPassword = tc.mech, "keel", secret.New("s3cret")
			}
			tr, err := New(ctx, cfg)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer tr.Close(ctx)
			if err := tr.SendBatch(ctx, numbered("s", 5)); err != nil {
				t.Fatal(err)
			}
			b := recvN(ctx, t, tr, 5, transport.Limits{})
			if err := tr.Commit(ctx, b.Tokens); err != nil {
				t.Fatal(err)
			}

			if tc.mech != "" {
				bad := cfg
				bad.SASLPassword = secret.New("wrong")
				if _, err := New(ctx, bad); !errors.Is(err, transport.ErrConnection) {
					t.Fatalf("wrong password: %v, want a connection error", err)
				} else if containsSecret(err, "wrong") {
					t.Fatalf("error leaks the password: %v", err)
				}
			}
			if tc.clientCert {
				bad := cfg
				bad.SSLCertificateLocation, bad.SSLKeyLocation = "", ""
				if _, err := New(ctx, bad); !errors.Is(err, transport.ErrConnection) {
					t.Fatalf("no client certificate: %v, want a connection error", err)
				}
			}
			untrusted := cfg
			untrusted.SSLCALocation = ""
			if _, err := New(ctx, untrusted); !errors.Is(err, transport.ErrConnection) {
				t.Fatalf("untrusted broker certificate: %v, want a connection error", err)
			}
		})
	}
}

func containsSecret(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}
