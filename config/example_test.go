package config_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
)

// KafkaConfig is a section struct: koanf tags name the keys.
type KafkaConfig struct {
	Brokers  []string      `koanf:"brokers"`
	Timeout  time.Duration `koanf:"timeout"`
	Password secret.String `koanf:"password"`
}

// DefaultKafkaConfig returns the documented defaults.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{Brokers: []string{"localhost:9092"}, Timeout: 10 * time.Second}
}

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte("kafka:\n  brokers: [k1:9092, k2:9092]\n"), 0o600)
	os.Setenv("MYAPP_KAFKA__TIMEOUT", "30s")
	os.Setenv("MYAPP_KAFKA__PASSWORD", "hunter2")
	defer os.Unsetenv("MYAPP_KAFKA__TIMEOUT")
	defer os.Unsetenv("MYAPP_KAFKA__PASSWORD")

	cfg, err := config.Load(context.Background(), config.Options{
		AppName:       "myapp",
		WorkDir:       dir,
		SkipSystemDir: true, SkipUserConfigDir: true,
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	kafka := DefaultKafkaConfig()
	if err := cfg.Section("kafka", &kafka); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(kafka.Brokers, kafka.Timeout, kafka.Password)
	fmt.Println(cfg.Source("kafka.timeout"))
	// Output:
	// [k1:9092 k2:9092] 30s [REDACTED]
	// env MYAPP_KAFKA__TIMEOUT
}

func ExampleConfig_Section_error() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	os.Setenv("MYAPP_KAFKA__TIMEOUT", "soon")
	defer os.Unsetenv("MYAPP_KAFKA__TIMEOUT")
	cfg, _ := config.Load(context.Background(), config.Options{
		AppName: "myapp", WorkDir: dir,
		SkipSystemDir: true, SkipUserConfigDir: true,
		Logger: slog.New(slog.DiscardHandler),
	})
	kafka := DefaultKafkaConfig()
	fmt.Println(cfg.Section("kafka", &kafka))
	// Output:
	// config: kafka.timeout (field KafkaConfig.Timeout): invalid value "soon" from env MYAPP_KAFKA__TIMEOUT: not a duration (use Go syntax such as 1m30s or 250ms, or a number of seconds) (fix it in env MYAPP_KAFKA__TIMEOUT)
}

func ExampleSubscribe() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "settings.yaml")
	_ = os.WriteFile(file, []byte("kafka:\n  timeout: 5s\n"), 0o600)
	cfg, _ := config.Load(context.Background(), config.Options{
		WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, Logger: slog.New(slog.DiscardHandler),
	})
	kafka := DefaultKafkaConfig()
	_ = cfg.Section("kafka", &kafka)
	config.Subscribe(cfg, "kafka", func(k KafkaConfig) {
		fmt.Println("new timeout:", k.Timeout, "brokers kept:", k.Brokers)
	})
	_ = os.WriteFile(file, []byte("kafka:\n  timeout: 7s\n"), 0o600)
	_ = cfg.Reload(context.Background()) // Watch does this on change, SIGHUP or a period
	// Output:
	// new timeout: 7s brokers kept: [localhost:9092]
}

func ExampleIsSensitiveKey() {
	for _, k := range []string{"kafka.sasl.password", "api_key", "keyboard", "tls.cert_file", "monkey"} {
		fmt.Println(k, config.IsSensitiveKey(k))
	}
	// Output:
	// kafka.sasl.password true
	// api_key true
	// keyboard false
	// tls.cert_file true
	// monkey false
}

func ExampleConfig_DumpJSON() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	cfg, _ := config.Load(context.Background(), config.Options{
		WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true,
		Defaults: map[string]any{"db": map[string]any{"host": "h", "password": "pw", "url": "postgres://u:pw@h/db"}},
		Logger:   slog.New(slog.DiscardHandler),
	})
	fmt.Println(cfg.Effective())
	// Output:
	// map[db:map[host:h password:[REDACTED] url:postgres://u:REDACTED@h/db]]
}
