package kafka

import (
	"os"
	"strings"

	"github.com/keel-go/keel/secret"
)

// EnvPrefix is the prefix of the standard Kafka environment variables.
const EnvPrefix = "KAFKA"

// envVar is one setting read from the environment: its names in order of
// precedence (the standard name first, then aliases) and how it is set.
type envVar struct {
	names []string
	set   func(c *Config, v, variable string) error
}

var envVars = []envVar{
	{[]string{"BOOTSTRAP_SERVERS", "BROKERS"}, func(c *Config, v, _ string) error { c.Brokers = splitList(v); return nil }},
	{[]string{"GROUP_ID", "GROUP", "CONSUMER_GROUP"}, func(c *Config, v, _ string) error { c.Group = v; return nil }},
	{[]string{"CLIENT_ID"}, func(c *Config, v, _ string) error { c.ClientID = v; return nil }},
	{[]string{"GROUP_INSTANCE_ID"}, func(c *Config, v, _ string) error { c.GroupInstanceID = v; return nil }},
	{[]string{"TOPICS", "TOPIC"}, func(c *Config, v, _ string) error { c.Topics = splitList(v); return nil }},
	{[]string{"PROFILE"}, func(c *Config, v, _ string) error { c.Profile = Profile(v); return nil }},
	{[]string{"SECURITY_PROTOCOL"}, func(c *Config, v, _ string) error { c.SecurityProtocol = v; return nil }},
	{[]string{"SASL_MECHANISM", "SASL_MECHANISMS"}, func(c *Config, v, _ string) error { c.SASLMechanism = v; return nil }},
	{[]string{"SASL_USERNAME", "SASL_USER"}, func(c *Config, v, _ string) error { c.SASLUsername = v; return nil }},
	{[]string{"SASL_PASSWORD"}, func(c *Config, v, _ string) error { c.SASLPassword = secret.New(v); return nil }},
	{[]string{"SSL_CA_LOCATION", "SSL_CA", "CA_CERT", "SSL_CAFILE"}, func(c *Config, v, _ string) error { c.SSLCALocation = v; return nil }},
	{[]string{"SSL_CERTIFICATE_LOCATION", "SSL_CERT", "SSL_CERTFILE"}, func(c *Config, v, _ string) error { c.SSLCertificateLocation = v; return nil }},
	{[]string{"SSL_KEY_LOCATION", "SSL_KEY", "SSL_KEYFILE"}, func(c *Config, v, _ string) error { c.SSLKeyLocation = v; return nil }},
	{[]string{"SSL_SKIP_VERIFY", "SSL_INSECURE", "INSECURE"}, func(c *Config, v, variable string) error {
		b, err := parseBool(v)
		if err != nil {
			return configError("environment variable %s=%q: %v", variable, v, err)
		}
		c.SSLSkipVerify = b
		return nil
	}},
}

// ApplyEnv overlays the Kafka environment variables onto c, reading the
// process environment. See ApplyEnvFunc.
func (c *Config) ApplyEnv(prefix string) error {
	return c.ApplyEnvFunc(prefix, os.LookupEnv)
}

// ApplyEnvFunc overlays Kafka environment variables onto c, read through
// lookup. For each setting the first non-empty variable wins, in this
// order: <prefix>_<NAME>, the prefix's aliases, KAFKA_<NAME>, KAFKA's
// aliases. So a prefixed variable wins over the standard one, and the
// standard name wins over an alias. An empty prefix (or "KAFKA") reads
// only the KAFKA_ names.
//
// Names (aliases in brackets): BOOTSTRAP_SERVERS [BROKERS], GROUP_ID
// [GROUP, CONSUMER_GROUP], CLIENT_ID, GROUP_INSTANCE_ID, TOPICS [TOPIC]
// (comma-separated), PROFILE, SECURITY_PROTOCOL, SASL_MECHANISM
// [SASL_MECHANISMS], SASL_USERNAME [SASL_USER], SASL_PASSWORD,
// SSL_CA_LOCATION [SSL_CA, CA_CERT, SSL_CAFILE], SSL_CERTIFICATE_LOCATION
// [SSL_CERT, SSL_CERTFILE], SSL_KEY_LOCATION [SSL_KEY, SSL_KEYFILE],
// SSL_SKIP_VERIFY [SSL_INSECURE, INSECURE].
//
// A value that does not parse is an error naming the variable.
func (c *Config) ApplyEnvFunc(prefix string, lookup func(string) (string, bool)) error {
	prefixes := []string{EnvPrefix}
	if p := strings.TrimRight(strings.ToUpper(strings.TrimSpace(prefix)), "_"); p != "" && p != EnvPrefix {
		prefixes = []string{p, EnvPrefix}
	}
	for _, ev := range envVars {
		variable, v, ok := firstSet(prefixes, ev.names, lookup)
		if !ok {
			continue
		}
		if err := ev.set(c, v, variable); err != nil {
			return err
		}
	}
	return nil
}

// firstSet returns the first non-empty variable of prefixes x names.
func firstSet(prefixes, names []string, lookup func(string) (string, bool)) (string, string, bool) {
	for _, p := range prefixes {
		for _, n := range names {
			variable := p + "_" + n
			if v, ok := lookup(variable); ok {
				if v = strings.TrimSpace(v); v != "" {
					return variable, v, true
				}
			}
		}
	}
	return "", "", false
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
