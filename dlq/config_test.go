package dlq_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/secret"
)

func TestConfigZeroValueIsValidAndDisabled(t *testing.T) {
	var cfg dlq.Config
	if err := cfg.Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	q, err := dlq.New(ctxT(t), cfg, dlq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if q.Enabled() {
		t.Fatal("zero Config must be disabled")
	}
	if err := q.Push(ctxT(t), entry(1)); !errors.Is(err, dlq.ErrDisabled) {
		t.Fatalf("Push to a disabled DLQ: %v", err)
	}
	if err := q.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesEveryBadKey(t *testing.T) {
	cfg := dlq.Config{
		Mode:          9,
		Order:         []string{"file", "s3", "file"},
		QueueCapacity: -1,
		BatchSize:     -1,
		FlushInterval: -1,
		RouteWait:     -1,
		File:          dlq.FileConfig{Rotation: 7, MaxAge: -time.Hour, Prefix: "a/b"},
		Kafka:         dlq.KafkaConfig{Enabled: true, Brokers: []string{"nohost"}, Topic: "bad topic", TopicSuffix: "/x", Routing: 5, SendTimeout: -1},
		HTTP:          dlq.HTTPConfig{Enabled: true, Endpoint: "ftp://x", Timeout: -1},
		Redis:         dlq.RedisConfig{URL: secret.New("mysql://user:hunter2@h"), MaxLen: -1, Timeout: -1},
	}
	err := cfg.Validate()
	if !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Fatalf("not ErrInvalidConfig: %v", err)
	}
	for _, key := range []string{"dlq.mode", "dlq.order[1]", "dlq.order[2]", "dlq.queue_capacity", "dlq.batch_size",
		"dlq.flush_interval", "dlq.route_wait", "dlq.file.rotation", "dlq.file.max_age", "dlq.file.prefix",
		"dlq.kafka.brokers[0]", "dlq.kafka.topic", "dlq.kafka.topic_suffix", "dlq.kafka.routing", "dlq.kafka.send_timeout",
		"dlq.http.endpoint", "dlq.http.timeout", "dlq.redis.url", "dlq.redis.max_len", "dlq.redis.timeout"} {
		if !strings.Contains(err.Error(), key+" ") {
			t.Errorf("Validate does not name %s", key)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatal("the Redis URL's password leaked into the error")
	}
	for name, c := range map[string]dlq.Config{
		"kafka without brokers":   {Kafka: dlq.KafkaConfig{Enabled: true}},
		"http without endpoint":   {HTTP: dlq.HTTPConfig{Enabled: true}},
		"single with two enabled": {Mode: dlq.ModeSingle, File: dlq.FileConfig{Enabled: true}, HTTP: dlq.HTTPConfig{Enabled: true, Endpoint: "http://x"}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := dlq.New(ctxT(t), dlq.Config{Enabled: true, BatchSize: -1}, dlq.Options{}); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Fatalf("New with a bad config: %v", err)
	}
}

func TestConfigSectionDecodes(t *testing.T) {
	c, err := config.Load(ctxT(t), config.Options{
		AppName: "dlqtest", WorkDir: t.TempDir(), SkipSystemDir: true, SkipUserConfigDir: true,
		Overrides: map[string]any{
			"dlq.enabled":         true,
			"dlq.mode":            "fan_out",
			"dlq.order":           "file,http",
			"dlq.flush_interval":  "250ms",
			"dlq.overflow":        "drop",
			"dlq.file.rotation":   "daily",
			"dlq.file.max_age":    "48h",
			"dlq.file.compress":   true,
			"dlq.kafka.routing":   "per_destination",
			"dlq.redis.url":       "redis://:pw@127.0.0.1:6379/2",
			"dlq.http.headers":    map[string]any{"Authorization": "Bearer abc"},
			"dlq.redis.max_len":   1000,
			"dlq.route_durable":   "true",
			"dlq.queue_capacity":  "500",
			"dlq.kafka.brokers":   "a:9092,b:9092",
			"dlq.http.endpoint":   "https://collector/dlq",
			"dlq.http.timeout":    "3s",
			"dlq.sync_interval":   2,
			"dlq.max_attempts":    -1,
			"dlq.kafka.client_id": "x",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg dlq.Config
	if err := c.Section(dlq.Section, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if !cfg.Enabled || cfg.Mode != dlq.ModeFanOut || strings.Join(cfg.Order, ",") != "file,http" ||
		cfg.FlushInterval != 250*time.Millisecond || cfg.File.Rotation != dlq.RotationDaily || cfg.File.MaxAge != 48*time.Hour ||
		!cfg.File.Compress || cfg.Kafka.Routing != dlq.RoutingPerDestination || cfg.Redis.MaxLen != 1000 ||
		!cfg.RouteDurable || cfg.QueueCapacity != 500 || len(cfg.Kafka.Brokers) != 2 || cfg.SyncInterval != 2*time.Second ||
		cfg.MaxAttempts != -1 || cfg.HTTP.Headers["Authorization"].Expose() != "Bearer abc" {
		t.Fatalf("decoded %+v", cfg)
	}
	dump, err := c.DumpJSON()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(dump), "Bearer abc") || strings.Contains(string(dump), ":pw@") {
		t.Fatalf("secrets in the config dump: %s", dump)
	}
}

func TestModeRotationRoutingText(t *testing.T) {
	var m dlq.Mode
	for in, want := range map[string]dlq.Mode{"": dlq.ModeCascade, "fan-out": dlq.ModeFanOut, "FANOUT": dlq.ModeFanOut, "single": dlq.ModeSingle} {
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("mode %q: %v %v", in, m, err)
		}
	}
	if err := m.UnmarshalText([]byte("round_robin")); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Error(err)
	}
	var r dlq.Rotation
	if err := r.UnmarshalText([]byte("size")); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Error(err)
	}
	var ro dlq.Routing
	if err := ro.UnmarshalText([]byte("per_table")); !errors.Is(err, dlq.ErrInvalidConfig) {
		t.Error(err)
	}
	for _, v := range []interface{ MarshalText() ([]byte, error) }{dlq.ModeFanOut, dlq.RotationDaily, dlq.RoutingPerDestination} {
		b, _ := v.MarshalText()
		if len(b) == 0 {
			t.Error("empty text")
		}
	}
}

// TestConfigWithDefaults: every zero that stands for a default shows the
// default the DLQ applies; values that are set are kept.
func TestConfigWithDefaults(t *testing.T) {
	d := dlq.Config{}.WithDefaults()
	if d.QueueCapacity != 10000 || d.BatchSize != 256 || d.FlushInterval != 100*time.Millisecond ||
		d.SyncInterval != time.Second || d.MaxAttempts != 3 || d.RouteWait != dlq.DefaultRouteWait {
		t.Fatalf("queue defaults: %+v", d)
	}
	if !slices.Equal(d.Order, dlq.DefaultOrder) || d.File.Path != "dlq" || d.File.MaxAge != 30*24*time.Hour ||
		d.Kafka.Topic != "keel.dlq" || d.Redis.URL.Expose() != "redis://127.0.0.1:6379" || d.Redis.StreamKey != "keel:dlq" {
		t.Fatalf("backend defaults: %+v", d)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	set := dlq.Config{QueueCapacity: 5, MaxAttempts: -1, File: dlq.FileConfig{Path: "/var/dlq"}}.WithDefaults()
	if set.QueueCapacity != 5 || set.MaxAttempts != -1 || set.File.Path != "/var/dlq" {
		t.Fatalf("set values were replaced: %+v", set)
	}
}
