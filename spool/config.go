package spool

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keel-go/keel/metrics"
)

// Section is the config section the spool reads: spool.
const Section = "spool"

// Defaults of the fields of Config whose zero value means "use the default",
// and hard limits.
const (
	// DefaultDir is the spool directory when spool.dir is unset, relative
	// to the working directory. Point it at a persistent volume in
	// production.
	DefaultDir = "spool"
	// DefaultName is the spool's name (the spool label of its metrics).
	DefaultName = "default"
	// DefaultSegmentBytes is the size at which a segment file is sealed
	// and the next one started, when max_bytes leaves room for at least
	// four such segments; otherwise the default is max_bytes / 4.
	DefaultSegmentBytes = 64 << 20
	// DefaultMaxBytes bounds the unacknowledged bytes of the spool: 1 GiB.
	DefaultMaxBytes = 1 << 30
	// DefaultMaxRecordBytes is the largest payload Append accepts: 16 MiB.
	DefaultMaxRecordBytes = 16 << 20
	// DefaultMinFreeBytes is the free-disk watermark: appends that would
	// leave less free space on the spool's volume count as full.
	DefaultMinFreeBytes = 64 << 20
	// DefaultSyncInterval is the fsync period of the "interval" policy.
	DefaultSyncInterval = 500 * time.Millisecond

	// MinSegmentBytes is the smallest accepted segment_bytes.
	MinSegmentBytes = 4 << 10
	// MaxSegmentBytes is the largest accepted segment_bytes.
	MaxSegmentBytes = 1 << 30
	// HardMaxRecordBytes is the largest accepted max_record_bytes. Readers
	// never accept a frame longer than this, whatever the configuration,
	// so a damaged length field cannot make them allocate more.
	HardMaxRecordBytes = 256 << 20
)

// FullPolicy says what an append does when the record does not fit under
// max_bytes, max_records or min_free_bytes.
type FullPolicy string

// Full policies.
const (
	// Block waits until acknowledgements (or freed disk space) make room,
	// or the context ends (then a *FullError wrapping the context error).
	// This is the default: back-pressure, no loss.
	Block FullPolicy = "block"
	// DropNewest discards the record being appended (and the rest of its
	// batch), counts it and returns ErrDropped.
	DropNewest FullPolicy = "drop_newest"
	// DropOldest discards the oldest unacknowledged records, counting each,
	// until the new record fits. A discarded record that a reader already
	// holds may still be delivered by that reader; its later Ack is a
	// no-op. When only the free-disk watermark is short and the oldest
	// records are in the segment being written (dropping them would free
	// no disk), the append fails with a *FullError instead.
	DropOldest FullPolicy = "drop_oldest"
	// Error returns a *FullError at once.
	Error FullPolicy = "error"
)

// SyncPolicy says when appended data is fsynced. See the package
// documentation for what each guarantees after a crash.
type SyncPolicy string

// Sync policies.
const (
	// SyncAlways writes each append to the operating system and fsyncs it
	// (fdatasync on Linux) before Append returns: a record whose Append
	// returned survives a crash of the process or of the machine.
	// Concurrent appenders share one fsync (group commit).
	SyncAlways SyncPolicy = "always"
	// SyncInterval buffers appends (up to 64 KiB, written out in
	// page-aligned chunks) and, every sync_interval, writes the buffer
	// out and fsyncs in the background what was written since the last
	// fsync (segments sealed meanwhile included); also on Close. A crash
	// of the process loses at most the buffer (records appended since the
	// last tick); a crash of the machine at most the records appended
	// since the last completed tick. This is the default.
	SyncInterval SyncPolicy = "interval"
	// SyncNever buffers appends like SyncInterval, writes the buffer out
	// every second, and leaves write-back to the operating system; only
	// Sync and Close fsync (and the background loop, once 16 sealed
	// segments await an fsync, so that open files stay bounded). A crash
	// of the process loses at most the buffer (records appended in the
	// last second); a crash of the machine whatever the operating system
	// had not written back.
	SyncNever SyncPolicy = "never"
)

// Compression is the codec of newly written segments. It is recorded in
// each segment's header, so a segment is always read with the codec it was
// written with, whatever the configuration says later.
type Compression string

// Codecs.
const (
	// CompressionNone stores payloads as given. The default.
	CompressionNone Compression = "none"
	// CompressionZstd compresses each payload with zstd (fastest level).
	CompressionZstd Compression = "zstd"
)

// Config is the spool section. The zero value is valid: a spool in
// ./spool named "default", 64 MiB segments, at most 1 GiB of
// unacknowledged records of up to 16 MiB each, no record-count bound,
// appends refused below 64 MiB of free disk, blocking when full, fsync
// every 500 ms, no compression.
//
//	spool:
//	  dir: /var/lib/myapp/spool
//	  name: default
//	  segment_bytes: 67108864
//	  max_bytes: 1073741824
//	  max_records: 0            # 0 = no record-count bound
//	  max_record_bytes: 16777216
//	  min_free_bytes: 67108864  # -1 = no free-disk watermark
//	  full_policy: block        # block | drop_newest | drop_oldest | error
//	  sync: interval            # always | interval | never
//	  sync_interval: 500ms
//	  compression: none         # none | zstd
type Config struct {
	// Dir is the spool directory; it is created if missing. Default
	// "spool" (relative to the working directory).
	Dir string `koanf:"dir" json:"dir" yaml:"dir"`
	// Name labels the spool's metrics (label spool) and logs. Give each
	// spool that shares a metrics registry its own name. Default
	// "default".
	Name string `koanf:"name" json:"name" yaml:"name"`
	// SegmentBytes is the size at which a segment file is sealed and a new
	// one started. A record larger than a segment gets a segment of its
	// own. Disk space is returned a whole segment at a time, once every
	// record in it is acknowledged. Default 64 MiB, or max_bytes / 4 when
	// that is smaller (but at least MinSegmentBytes); between
	// MinSegmentBytes and MaxSegmentBytes, and at most max_bytes.
	SegmentBytes int64 `koanf:"segment_bytes" json:"segment_bytes" yaml:"segment_bytes"`
	// MaxBytes bounds the unacknowledged bytes (frames, headers included).
	// The disk holds at most about one segment more: acknowledged records
	// whose segment is not yet wholly acknowledged. Default 1 GiB.
	MaxBytes int64 `koanf:"max_bytes" json:"max_bytes" yaml:"max_bytes"`
	// MaxRecords bounds the unacknowledged records. 0 means no bound
	// (max_bytes still applies).
	MaxRecords int64 `koanf:"max_records" json:"max_records" yaml:"max_records"`
	// MaxRecordBytes is the largest payload accepted, before compression.
	// Default 16 MiB, at most HardMaxRecordBytes.
	MaxRecordBytes int64 `koanf:"max_record_bytes" json:"max_record_bytes" yaml:"max_record_bytes"`
	// MinFreeBytes is the free-disk watermark: an append that would leave
	// less free space on the spool's volume counts as full. Free space is
	// read with statfs at most once a second (and again before refusing),
	// minus what was written since. 0 means DefaultMinFreeBytes (64 MiB);
	// -1 turns the watermark off. Not available on every platform (see
	// the package documentation).
	MinFreeBytes int64 `koanf:"min_free_bytes" json:"min_free_bytes" yaml:"min_free_bytes"`
	// FullPolicy is what an append does when the record does not fit:
	// "block" (default), "drop_newest", "drop_oldest" or "error".
	FullPolicy FullPolicy `koanf:"full_policy" json:"full_policy" yaml:"full_policy"`
	// Sync is the fsync policy: "always", "interval" (default) or "never".
	// It decides what survives a crash; see SyncPolicy and the package
	// documentation.
	Sync SyncPolicy `koanf:"sync" json:"sync" yaml:"sync"`
	// SyncInterval is the fsync period of the "interval" policy, and how
	// often acknowledgements are fsynced under "always". Default 500 ms.
	SyncInterval time.Duration `koanf:"sync_interval" json:"sync_interval" yaml:"sync_interval"`
	// Compression is the codec of new segments: "none" (default) or
	// "zstd". Changing it never makes existing segments unreadable.
	Compression Compression `koanf:"compression" json:"compression" yaml:"compression"`

	// Metrics receives the keel_spool_* metrics; nil means
	// metrics.Default().
	Metrics *metrics.Registry `koanf:"-" json:"-" yaml:"-"`
	// Logger receives recovery reports and rate-limited warnings; nil
	// means slog.Default().
	Logger *slog.Logger `koanf:"-" json:"-" yaml:"-"`

	// Test hooks.
	now    func() time.Time
	statfs func(dir string) (free uint64, ok bool, err error)
	fsync  func(f *os.File) error // replaces fsync of files; directories are then not fsynced
	// prealloc replaces the allocation of the space reserve's blocks.
	prealloc func(f *os.File, n int64) error
}

// normalized lower-cases and trims the enumerated fields.
func (c Config) normalized() Config {
	c.FullPolicy = FullPolicy(strings.ToLower(strings.TrimSpace(string(c.FullPolicy))))
	c.Sync = SyncPolicy(strings.ToLower(strings.TrimSpace(string(c.Sync))))
	c.Compression = Compression(strings.ToLower(strings.TrimSpace(string(c.Compression))))
	return c
}

// WithDefaults returns c with every unset field replaced by its default.
// It does not validate; call Validate for that.
func (c Config) WithDefaults() Config {
	c = c.normalized()
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
		if q := c.MaxBytes / 4; q < c.SegmentBytes {
			c.SegmentBytes = max(q, MinSegmentBytes)
		}
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = min(DefaultMaxRecordBytes, max(c.MaxBytes-frameHeaderSize, 0))
	}
	if c.MinFreeBytes == 0 {
		c.MinFreeBytes = DefaultMinFreeBytes
	}
	if c.FullPolicy == "" {
		c.FullPolicy = Block
	}
	if c.Sync == "" {
		c.Sync = SyncInterval
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.Compression == "" {
		c.Compression = CompressionNone
	}
	return c
}

// Validate reports every problem in the section, each as a *ConfigError
// that names the key, the value found and the fix, joined with
// errors.Join. It returns nil for the zero Config.
func (c Config) Validate() error {
	c = c.normalized()
	var errs []error
	bad := func(key, format string, args ...any) {
		k := Section + "." + key
		errs = append(errs, &ConfigError{Key: k, Msg: k + " " + fmt.Sprintf(format, args...)})
	}
	if c.MaxBytes < 0 {
		bad("max_bytes", "is %d: use a positive byte count, or 0 for the default %d", c.MaxBytes, DefaultMaxBytes)
	}
	if c.SegmentBytes < 0 || (c.SegmentBytes > 0 && (c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes)) {
		bad("segment_bytes", "is %d: use %d to %d, or 0 for the default %d", c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes, DefaultSegmentBytes)
	}
	if c.MaxRecords < 0 {
		bad("max_records", "is %d: use a positive count, or 0 for no record-count bound", c.MaxRecords)
	}
	if c.MaxRecordBytes < 0 || c.MaxRecordBytes > HardMaxRecordBytes {
		bad("max_record_bytes", "is %d: use 1 to %d, or 0 for the default %d", c.MaxRecordBytes, HardMaxRecordBytes, DefaultMaxRecordBytes)
	}
	if c.MinFreeBytes < -1 {
		bad("min_free_bytes", "is %d: use a byte count, 0 for the default %d, or -1 to turn the free-disk watermark off", c.MinFreeBytes, DefaultMinFreeBytes)
	}
	switch c.FullPolicy {
	case "", Block, DropNewest, DropOldest, Error:
	default:
		bad("full_policy", "is %q: use block, drop_newest, drop_oldest or error", string(c.FullPolicy))
	}
	switch c.Sync {
	case "", SyncAlways, SyncInterval, SyncNever:
	default:
		bad("sync", "is %q: use always, interval or never", string(c.Sync))
	}
	if c.SyncInterval < 0 {
		bad("sync_interval", "is %s: use a positive duration, or 0 for the default %s", c.SyncInterval, DefaultSyncInterval)
	}
	switch c.Compression {
	case "", CompressionNone, CompressionZstd:
	default:
		bad("compression", "is %q: use none or zstd", string(c.Compression))
	}
	if len(errs) == 0 {
		d := c.WithDefaults()
		if d.SegmentBytes > d.MaxBytes {
			bad("segment_bytes", "(%d) exceeds spool.max_bytes (%d): lower segment_bytes or raise max_bytes", d.SegmentBytes, d.MaxBytes)
		}
		if d.MaxRecordBytes+frameHeaderSize > d.MaxBytes {
			bad("max_record_bytes", "(%d) plus the %d-byte frame header exceeds spool.max_bytes (%d): such a record could never fit; lower max_record_bytes or raise max_bytes",
				d.MaxRecordBytes, frameHeaderSize, d.MaxBytes)
		}
		if d.MaxRecordBytes == 0 {
			bad("max_bytes", "(%d) leaves no room for a record: raise it", d.MaxBytes)
		}
	}
	return errors.Join(errs...)
}
