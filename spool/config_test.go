package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/config"
)

func TestZeroConfigIsValidAndDefaults(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults()
	if d.Dir != DefaultDir || d.Name != DefaultName || d.SegmentBytes != DefaultSegmentBytes || d.MaxBytes != DefaultMaxBytes ||
		d.MaxRecordBytes != DefaultMaxRecordBytes || d.MinFreeBytes != DefaultMinFreeBytes || d.FullPolicy != Block ||
		d.Sync != SyncInterval || d.SyncInterval != 500*time.Millisecond || d.Compression != CompressionNone || d.MaxRecords != 0 {
		t.Fatalf("defaults %+v", d)
	}
	// A small max_bytes shrinks the default segment size.
	d = Config{MaxBytes: 1 << 20}.WithDefaults()
	if d.SegmentBytes != 256<<10 {
		t.Fatalf("segment_bytes for 1 MiB max_bytes = %d", d.SegmentBytes)
	}
	d = Config{MaxBytes: 8 << 10}.WithDefaults()
	if d.SegmentBytes != MinSegmentBytes || d.MaxRecordBytes != 8<<10-frameHeaderSize {
		t.Fatalf("defaults for 8 KiB max_bytes: %+v", d)
	}
}

func TestValidateNamesEveryBadKey(t *testing.T) {
	c := Config{
		MaxBytes: -1, SegmentBytes: 10, MaxRecords: -2, MaxRecordBytes: HardMaxRecordBytes + 1,
		MinFreeBytes: -5, FullPolicy: "explode", Sync: "sometimes", SyncInterval: -time.Second, Compression: "lz4",
	}
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v", err)
	}
	for _, key := range []string{"spool.max_bytes", "spool.segment_bytes", "spool.max_records", "spool.max_record_bytes",
		"spool.min_free_bytes", "spool.full_policy", "spool.sync", "spool.sync_interval", "spool.compression"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key == "" {
		t.Fatalf("not a *ConfigError: %v", err)
	}
}

func TestValidateCrossFieldRules(t *testing.T) {
	for _, tc := range []struct {
		c   Config
		key string
	}{
		{Config{MaxBytes: 64 << 10, SegmentBytes: 128 << 10}, "spool.segment_bytes"},
		{Config{MaxBytes: 64 << 10, MaxRecordBytes: 64 << 10}, "spool.max_record_bytes"},
		{Config{MaxBytes: 10, SegmentBytes: MinSegmentBytes}, "spool.segment_bytes"},
	} {
		err := tc.c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%+v: %v, want an error naming %s", tc.c, err, tc.key)
		}
	}
	// Enumerations are case-insensitive.
	if err := (Config{FullPolicy: "Drop_Oldest", Sync: "ALWAYS", Compression: " zstd "}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.FullPolicy = "nope"
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open = %v", err)
	}
}

func TestConfigDecodesFromTheCascade(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SPOOLTEST_SPOOL__FULL_POLICY", "drop_oldest")
	yaml := `
spool:
  dir: /data/spool
  name: orders
  segment_bytes: 1048576
  max_bytes: 8388608
  max_records: 1000
  max_record_bytes: 65536
  min_free_bytes: -1
  sync: always
  sync_interval: 250ms
  compression: zstd
`
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(context.Background(), config.Options{
		EnvPrefix: "SPOOLTEST", WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Strict: true, Logger: quietLogger(), Metrics: testRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := c.Section(Section, &cfg); err != nil {
		t.Fatal(err)
	}
	want := Config{Dir: "/data/spool", Name: "orders", SegmentBytes: 1 << 20, MaxBytes: 8 << 20, MaxRecords: 1000,
		MaxRecordBytes: 64 << 10, MinFreeBytes: -1, FullPolicy: DropOldest, Sync: SyncAlways,
		SyncInterval: 250 * time.Millisecond, Compression: CompressionZstd}
	if cfg.Dir != want.Dir || cfg.Name != want.Name || cfg.SegmentBytes != want.SegmentBytes || cfg.MaxBytes != want.MaxBytes ||
		cfg.MaxRecords != want.MaxRecords || cfg.MaxRecordBytes != want.MaxRecordBytes || cfg.MinFreeBytes != want.MinFreeBytes ||
		cfg.FullPolicy != want.FullPolicy || cfg.Sync != want.Sync || cfg.SyncInterval != want.SyncInterval || cfg.Compression != want.Compression {
		t.Fatalf("decoded %+v\nwant    %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFullErrorMessages(t *testing.T) {
	for _, e := range []*FullError{
		{Spool: "s", Reason: ReasonMaxBytes, Limit: 10, Policy: Error},
		{Spool: "s", Reason: ReasonMinFreeBytes, Limit: 10, Policy: Block, Err: context.Canceled},
		{Spool: "s", Dir: "/var/spool/s", Reason: ReasonDiskFull, Err: errors.New("no space left on device")},
	} {
		msg := e.Error()
		if !strings.Contains(msg, `spool "s"`) || !errors.Is(e, ErrFull) {
			t.Errorf("%q", msg)
		}
		if diskFull := e.Reason == ReasonDiskFull; errors.Is(e, ErrDiskFull) != diskFull ||
			diskFull && (!strings.Contains(msg, "disk full in /var/spool/s") || !strings.Contains(msg, "no space left")) {
			t.Errorf("%q: ErrDiskFull match or message wrong", msg)
		}
		if e.Reason != ReasonDiskFull && !strings.Contains(msg, "spool."+e.Reason) {
			t.Errorf("%q does not name the key", msg)
		}
	}
}
