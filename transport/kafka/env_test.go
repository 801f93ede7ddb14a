package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keel-go/keel/transport"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// Standard names, aliases and a prefixed form; the prefixed form wins
// over KAFKA_, and the standard name wins over an alias.
func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"KAFKA_BROKERS":            "alias:1",
		"KAFKA_BOOTSTRAP_SERVERS":  "std:1, std:2",
		"KAFKA_GROUP":              "alias-group",
		"KAFKA_CONSUMER_GROUP":     "alias-group-2",
		"KAFKA_GROUP_ID":           "std-group",
		"KAFKA_TOPIC":              "alias-topic",
		"KAFKA_TOPICS":             "a,b, ,c",
		"KAFKA_SASL_USER":          "alias-user",
		"KAFKA_SASL_USERNAME":      "std-user",
		"KAFKA_SASL_PASSWORD":      "pw",
		"KAFKA_SASL_MECHANISMS":    "SCRAM-SHA-512",
		"KAFKA_SECURITY_PROTOCOL":  "sasl_ssl",
		"KAFKA_SSL_CA":             "/alias/ca.pem",
		"KAFKA_CA_CERT":            "/alias2/ca.pem",
		"KAFKA_SSL_CERT":           "/c.pem",
		"KAFKA_SSL_KEY_LOCATION":   "/k.pem",
		"KAFKA_SSL_INSECURE":       "true",
		"KAFKA_CLIENT_ID":          "kafka-client",
		"KAFKA_GROUP_INSTANCE_ID":  "",
		"KAFKA_PROFILE":            "dev",
		"ORDERS_CLIENT_ID":         "orders-client",
		"ORDERS_GROUP":             "orders-alias-group",
		"ORDERS_SSL_CA_LOCATION":   "/orders/ca.pem",
		"ORDERS_BOOTSTRAP_SERVERS": "   ",
	}
	var c Config
	c.GroupInstanceID = "from-file"
	if err := c.ApplyEnvFunc("orders_", envMap(env)); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"brokers":   "[std:1 std:2]",
		"group":     "orders-alias-group",
		"topics":    "[a b c]",
		"user":      "std-user",
		"password":  "pw",
		"mechanism": "SCRAM-SHA-512",
		"protocol":  "sasl_ssl",
		"ca":        "/orders/ca.pem",
		"cert":      "/c.pem",
		"key":       "/k.pem",
		"skip":      "true",
		"client":    "orders-client",
		"instance":  "from-file",
		"profile":   "dev",
	}
	got := map[string]string{
		"brokers":   fmt.Sprint(c.Brokers),
		"group":     c.Group,
		"topics":    fmt.Sprint(c.Topics),
		"user":      c.SASLUsername,
		"password":  c.SASLPassword.Expose(),
		"mechanism": c.SASLMechanism,
		"protocol":  c.SecurityProtocol,
		"ca":        c.SSLCALocation,
		"cert":      c.SSLCertificateLocation,
		"key":       c.SSLKeyLocation,
		"skip":      fmt.Sprint(c.SSLSkipVerify),
		"client":    c.ClientID,
		"instance":  c.GroupInstanceID,
		"profile":   string(c.Profile),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}

	// Without a prefix only the KAFKA_ names count.
	var d Config
	if err := d.ApplyEnvFunc("", envMap(env)); err != nil {
		t.Fatal(err)
	}
	if d.Group != "std-group" || d.ClientID != "kafka-client" || d.SSLCALocation != "/alias/ca.pem" {
		t.Fatalf("unprefixed: group %q client %q ca %q", d.Group, d.ClientID, d.SSLCALocation)
	}
}

func TestApplyEnvBadBool(t *testing.T) {
	var c Config
	err := c.ApplyEnvFunc("APP", envMap(map[string]string{"APP_SSL_SKIP_VERIFY": "maybe"}))
	wantErrContains(t, err, "APP_SSL_SKIP_VERIFY", "maybe")
	if !errors.Is(err, transport.ErrConfig) {
		t.Fatalf("%v does not wrap ErrConfig", err)
	}
}
