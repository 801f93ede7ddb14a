package secrets_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/secrets"
)

// A manager over a named source backed by a file (a Kubernetes secret
// volume, say) and a lookup by reference.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "secrets-example")
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "token")
	_ = os.WriteFile(tokenFile, []byte("s3cr3t-token\n"), 0o600)

	cfg := secrets.Config{Sources: map[string]secrets.SourceConfig{
		"api_token": {Ref: "file:" + tokenFile},
	}}
	mgr, err := secrets.New(ctx, cfg, secrets.Options{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		LookupEnv: func(k string) (string, bool) {
			return map[string]string{"DB_PASSWORD": "hunter2"}[k], k == "DB_PASSWORD"
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mgr.Close(ctx)

	tok, err := mgr.Get(ctx, "api_token")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok, tok.Len()) // a secret.String never prints its value

	pw, _ := mgr.Resolve(ctx, "env:DB_PASSWORD")
	fmt.Println(pw.Expose() == "hunter2")

	_, err = mgr.Get(ctx, "nope")
	fmt.Println(err)
	// Output:
	// [REDACTED] 12
	// true
	// secrets: source "nope": secrets: unknown source: "nope" is not under secrets.sources
}

// Resolving the references of a decoded configuration section.
func ExampleResolveStruct() {
	ctx := context.Background()
	mgr, err := secrets.New(ctx, secrets.Config{}, secrets.Options{
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		LookupEnv: func(k string) (string, bool) {
			return map[string]string{"KAFKA_PASSWORD": "pa55"}[k], k == "KAFKA_PASSWORD"
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mgr.Close(ctx)

	type SASL struct {
		User     string        `koanf:"user"`
		Password secret.String `koanf:"password"`
	}
	type Kafka struct {
		SASL SASL `koanf:"sasl"`
	}
	// What cfg.Section("kafka", &k) leaves when the file says
	// password: env:KAFKA_PASSWORD
	k := Kafka{SASL: SASL{User: "svc", Password: secret.New("env:KAFKA_PASSWORD")}}
	if err := secrets.ResolveStruct(ctx, mgr, "kafka", &k); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(k.SASL.Password.Expose() == "pa55", k.SASL.Password)

	bad := Kafka{SASL: SASL{Password: secret.New("env:MISSING")}}
	fmt.Println(secrets.ResolveStruct(ctx, mgr, "kafka", &bad))
	// Output:
	// true [REDACTED]
	// secrets: config key kafka.sasl.password: reference "env:MISSING" did not resolve: secrets: (provider env, env:MISSING): secrets: not found: environment variable MISSING is not set
}

func ExampleParseRef() {
	r, err := secrets.ParseRef("vault:secret/data/kafka#password")
	fmt.Println(r.Provider, r.Path, r.Key, err)
	r, _ = secrets.ParseRef("openbao:secret/data/kafka")
	fmt.Println(r)
	// Output:
	// vault secret/data/kafka password <nil>
	// vault:secret/data/kafka
}
