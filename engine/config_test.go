package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

func TestConfigFromYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := `
batch_processing:
  max_chunk_size: 500
  max_bytes: 1048576
  commit_mode: sink_managed
  dead_letter_policy: discard
  parse_error_action: fail_batch
  format: msgpack
  format_relock_after: 4
  max_depth: 32
  sub_block_bytes: 65536
  tick_interval: 250ms
  drain_timeout: 3s
  routing_field: _table
  pre_route_filters:
    - type: drop_field_missing
    - type: dlq_field_value
      value: quarantine
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	var cfg engine.Config
	if err := k.Unmarshal(engine.Section, &cfg); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	want := engine.Config{
		MaxRecords: 500, MaxBytes: 1 << 20, CommitMode: engine.CommitSinkManaged,
		DeadLetterPolicy: engine.DeadLetterDiscard, ParseErrorAction: engine.ParseFailBatch,
		Format: codec.MsgPack, MaxDepth: 32, SubBlockBytes: 65536, TickInterval: 250 * time.Millisecond,
		RoutingField: "_table",
	}
	got := cfg
	got.PreRouteFilters = nil
	if got.MaxRecords != want.MaxRecords || got.MaxBytes != want.MaxBytes || got.CommitMode != want.CommitMode ||
		got.DeadLetterPolicy != want.DeadLetterPolicy || got.ParseErrorAction != want.ParseErrorAction ||
		got.Format != want.Format || got.MaxDepth != want.MaxDepth || got.SubBlockBytes != want.SubBlockBytes ||
		got.TickInterval != want.TickInterval || got.RoutingField != want.RoutingField ||
		got.DrainTimeout != 3*time.Second || got.FormatRelockAfter != 4 || got.FormatLock {
		t.Fatalf("decoded %+v", cfg)
	}
	if len(cfg.PreRouteFilters) != 2 || cfg.PreRouteFilters[0].Type != engine.DropFieldMissing ||
		cfg.PreRouteFilters[1].Type != engine.DeadLetterFieldValue || cfg.PreRouteFilters[1].Value != "quarantine" {
		t.Fatalf("filters %+v", cfg.PreRouteFilters)
	}
	// The section names a tick interval; without a tick function it is
	// refused with the key.
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "batch_processing.tick_interval") {
		t.Fatalf("Validate: %v", err)
	}
	cfg.OnTick = func(context.Context) error { return nil }
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	lock := `
batch_processing:
  format_lock: true
`
	if err := os.WriteFile(path, []byte(lock), 0o600); err != nil {
		t.Fatal(err)
	}
	k = koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	var lockCfg engine.Config
	if err := k.Unmarshal(engine.Section, &lockCfg); err != nil || !lockCfg.FormatLock || lockCfg.Validate() != nil {
		t.Fatalf("format_lock: decoded %v (err %v), validate %v", lockCfg.FormatLock, err, lockCfg.Validate())
	}

	bad := `
batch_processing:
  commit_mode: later
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	k = koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	err := k.Unmarshal(engine.Section, &cfg)
	if err == nil || !strings.Contains(err.Error(), "batch_processing.commit_mode") {
		t.Fatalf("bad commit_mode: %v", err)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	route := func(context.Context, []transport.DeadLetter) error { return nil }
	for _, tc := range []struct {
		cfg engine.Config
		key string
	}{
		{engine.Config{MaxRecords: -1}, "batch_processing.max_chunk_size"},
		{engine.Config{MaxBytes: -1}, "batch_processing.max_bytes"},
		{engine.Config{CommitMode: 9}, "batch_processing.commit_mode"},
		{engine.Config{DeadLetterPolicy: engine.DeadLetterRoute}, "batch_processing.dead_letter_policy"},
		{engine.Config{DeadLetterPolicy: engine.DeadLetterReject, RouteDeadLetters: route}, "batch_processing.dead_letter_policy"},
		{engine.Config{DeadLetterPolicy: 9}, "batch_processing.dead_letter_policy"},
		{engine.Config{ParseErrorAction: 9}, "batch_processing.parse_error_action"},
		{engine.Config{Format: 9}, "batch_processing.format"},
		{engine.Config{FormatLock: true, Format: codec.JSON}, "batch_processing.format_lock"},
		{engine.Config{FormatRelockAfter: -1}, "batch_processing.format_relock_after"},
		{engine.Config{MaxDepth: -1}, "batch_processing.max_depth"},
		{engine.Config{MaxDepth: codec.MaxDepthLimit + 1}, "batch_processing.max_depth"},
		{engine.Config{SubBlockBytes: -1}, "batch_processing.sub_block_bytes"},
		{engine.Config{TickInterval: -time.Second}, "batch_processing.tick_interval"},
		{engine.Config{PreRouteFilters: []engine.PreRouteFilter{{Type: engine.DropFieldMissing}}}, "batch_processing.routing_field"},
		{engine.Config{RoutingField: "t", PreRouteFilters: []engine.PreRouteFilter{{Type: engine.DeadLetterFieldValue}}}, "batch_processing.pre_route_filters[0].value"},
		{engine.Config{RoutingField: "t", PreRouteFilters: []engine.PreRouteFilter{{}}}, "batch_processing.pre_route_filters[0].type"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !errors.Is(err, engine.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%+v: err = %v, want one naming %s", tc.cfg, err, tc.key)
		}
		if _, nerr := engine.New(tc.cfg); nerr == nil {
			t.Errorf("New accepted %+v", tc.cfg)
		}
		var ce *engine.ConfigError
		if !errors.As(err, &ce) || ce.Key != tc.key {
			t.Errorf("ConfigError key %v, want %s", ce, tc.key)
		}
	}
	if err := (engine.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if err := (engine.Config{RouteDeadLetters: route, DeadLetterPolicy: engine.DeadLetterRoute}).Validate(); err != nil {
		t.Fatalf("route config: %v", err)
	}
	if err := (engine.Config{FormatLock: true, FormatRelockAfter: 3}).Validate(); err != nil {
		t.Fatalf("format lock with format auto: %v", err)
	}
}

func TestEnumText(t *testing.T) {
	for _, m := range []engine.CommitMode{engine.CommitAuto, engine.CommitSinkManaged} {
		b, _ := m.MarshalText()
		var back engine.CommitMode
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Fatalf("%v round trip: %v %v", m, back, err)
		}
	}
	for _, p := range []engine.DeadLetterPolicy{engine.DeadLetterDefault, engine.DeadLetterReject, engine.DeadLetterDiscard, engine.DeadLetterRoute} {
		b, _ := p.MarshalText()
		var back engine.DeadLetterPolicy
		if err := back.UnmarshalText(b); err != nil || back != p {
			t.Fatalf("%v round trip: %v %v", p, back, err)
		}
	}
	for _, a := range []engine.ParseErrorAction{engine.ParseDeadLetter, engine.ParseSkip, engine.ParseFailBatch} {
		b, _ := a.MarshalText()
		var back engine.ParseErrorAction
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Fatalf("%v round trip: %v %v", a, back, err)
		}
	}
	for _, ty := range []engine.PreRouteType{engine.DropFieldMissing, engine.DeadLetterFieldValue} {
		b, _ := ty.MarshalText()
		var back engine.PreRouteType
		if err := back.UnmarshalText(b); err != nil || back != ty {
			t.Fatalf("%v round trip: %v %v", ty, back, err)
		}
	}
	var a engine.ParseErrorAction
	if err := a.UnmarshalText([]byte("DLQ")); err != nil || a != engine.ParseDeadLetter {
		t.Fatalf("dlq alias: %v", err)
	}
	for _, bad := range []func() error{
		func() error { var x engine.CommitMode; return x.UnmarshalText([]byte("x")) },
		func() error { var x engine.DeadLetterPolicy; return x.UnmarshalText([]byte("x")) },
		func() error { var x engine.ParseErrorAction; return x.UnmarshalText([]byte("x")) },
		func() error { var x engine.PreRouteType; return x.UnmarshalText([]byte("x")) },
	} {
		if err := bad(); !errors.Is(err, engine.ErrInvalidConfig) {
			t.Fatalf("bad name accepted: %v", err)
		}
	}
}
