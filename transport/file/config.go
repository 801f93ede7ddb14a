package file

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Section is the configuration section this package reads.
const Section = "transport.file"

// Defaults of a zero Config.
const (
	// DefaultMaxLineBytes is the longest line, without its terminator,
	// that is delivered as a record: 1 MiB.
	DefaultMaxLineBytes = 1 << 20
	// DefaultPollInterval is how often a receiver at the end of the file
	// looks for new data.
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultSyncInterval is the fsync period of SyncOnInterval.
	DefaultSyncInterval = time.Second
	// DefaultWriteBufferBytes is the sender's write buffer size.
	DefaultWriteBufferBytes = 64 << 10
	// DefaultFlushInterval is the flush period of FlushOnInterval.
	DefaultFlushInterval = time.Second
	// PositionSuffix is appended to Path to name the default position file.
	PositionSuffix = ".pos"
)

// FlushPolicy says when the sender hands the records buffered in the
// process to the operating system. Records the operating system holds
// survive a crash of the process (kill -9, panic, OOM kill); records still
// in the buffer do not. The sender is at least once only when what it
// accepted survives: a source committed after a send acknowledged under a
// lazy policy ("bytes" or "interval") can lose those records if the
// process dies before the next flush. Close and Flush always flush.
type FlushPolicy string

const (
	// FlushBatch flushes before every Send and SendBatch returns, so an
	// accepted record survives a process crash. This is the default, and
	// the policy to use when the source is committed after the send (the
	// engine does that).
	FlushBatch FlushPolicy = "batch"
	// FlushBytes flushes when Config.FlushBytes or more are buffered after
	// a call (and whenever the write buffer fills). A process crash loses
	// the records accepted since the last flush: less than FlushBytes.
	FlushBytes FlushPolicy = "bytes"
	// FlushOnInterval flushes in the background every
	// Config.FlushInterval while records are buffered (and whenever the
	// write buffer fills). A process crash loses at most the last interval
	// of accepted records.
	FlushOnInterval FlushPolicy = "interval"
)

// SyncPolicy says when the sender fsyncs the file: what survives a crash
// of the machine (power loss, kernel panic). An fsync covers what was
// flushed to the operating system (see FlushPolicy), so "every_write"
// needs the default flush policy "batch".
type SyncPolicy string

const (
	// SyncEveryWrite fsyncs before every Send and SendBatch returns: an
	// accepted record is on stable storage and survives a machine crash.
	// This is the default, so that a source committed after the send can
	// never lose the data. Cost: one fsync per call; send in batches.
	SyncEveryWrite SyncPolicy = "every_write"
	// SyncOnInterval fsyncs in the background every Config.SyncInterval
	// while there are unsynced writes, and on Close. A machine crash loses
	// at most the last interval of accepted records.
	SyncOnInterval SyncPolicy = "interval"
	// SyncNone never fsyncs except on Close: the operating system writes
	// the data back when it chooses. A machine crash can lose any record
	// accepted since the last write-back (typically up to 30 s).
	SyncNone SyncPolicy = "none"
)

// Config configures a Receiver or a Sender (config section
// "transport.file"). The zero value is invalid only because Path is
// required; every other field has a documented default.
type Config struct {
	// Path is the NDJSON file to read or write. Required.
	Path string `koanf:"path"`
	// PositionPath is where a Receiver keeps its committed byte offset.
	// Default Path + ".pos".
	PositionPath string `koanf:"position_path"`
	// MaxLineBytes is the longest line, without its "\n" or "\r\n"
	// terminator, that is delivered. A longer line goes to the batch's
	// dead letters (its token still advances the position) and a Sender
	// refuses a longer payload. Default 1 MiB.
	MaxLineBytes int `koanf:"max_line_bytes"`
	// PollInterval is how often a Receiver at the end of the file (or
	// waiting for the file to appear) checks for new data. Default 100 ms.
	PollInterval time.Duration `koanf:"poll_interval"`
	// StopAtEOF makes the Receiver treat the file as finished: at the end
	// of the file it delivers an unterminated last line, then Recv returns
	// transport.ErrClosed; a missing file is an error. By default the
	// Receiver follows the file like tail -f: it waits for the file to
	// appear, holds a partial last line back until its newline arrives,
	// and waits for more data at the end.
	StopAtEOF bool `koanf:"stop_at_eof"`
	// Append makes a Sender append to an existing file; false truncates it
	// when the Sender opens it. Nil means true.
	Append *bool `koanf:"append"`
	// Sync is the Sender's fsync policy: "every_write" (default),
	// "interval" or "none". See SyncPolicy for what survives a crash.
	Sync SyncPolicy `koanf:"sync"`
	// SyncInterval is the fsync period of the "interval" policy.
	// Default 1 s.
	SyncInterval time.Duration `koanf:"sync_interval"`
	// WriteBufferBytes is the Sender's write buffer. Records are coalesced
	// in it and written to the operating system when it fills and as Flush
	// says. Default 64 KiB; under flush "bytes" it is at least FlushBytes.
	WriteBufferBytes int `koanf:"write_buffer_bytes"`
	// Flush is the Sender's flush policy: "batch" (default), "bytes" or
	// "interval". See FlushPolicy for what survives a crash of the
	// process. A lazy policy needs Sync "interval" or "none".
	Flush FlushPolicy `koanf:"flush"`
	// FlushBytes is the buffered size at which the "bytes" policy flushes.
	// Default WriteBufferBytes.
	FlushBytes int `koanf:"flush_bytes"`
	// FlushInterval is the flush period of the "interval" policy.
	// Default 1 s.
	FlushInterval time.Duration `koanf:"flush_interval"`

	// Metrics receives the keel_file_* metrics; nil means metrics.Default().
	Metrics *metrics.Registry `koanf:"-"`
	// Logger receives warnings (truncation, rotation); nil means
	// slog.Default().
	Logger *slog.Logger `koanf:"-"`
}

// WithDefaults returns c with every zero setting replaced by the default
// it stands for (position_path <path>.pos once path is set, max_line_bytes
// 1 MiB, poll_interval 100 ms, append true, sync every_write, sync_interval 1 s,
// write_buffer_bytes 64 KiB, flush batch, flush_bytes write_buffer_bytes,
// flush_interval 1 s). It does not validate c and leaves Metrics and
// Logger as they are.
func (c Config) WithDefaults() Config {
	if c.PositionPath == "" && c.Path != "" {
		c.PositionPath = c.Path + PositionSuffix
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Append == nil {
		on := true
		c.Append = &on
	}
	if c.Sync == "" {
		c.Sync = SyncEveryWrite
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.WriteBufferBytes == 0 {
		c.WriteBufferBytes = DefaultWriteBufferBytes
	}
	if c.Flush == "" {
		c.Flush = FlushBatch
	}
	if c.FlushBytes == 0 {
		c.FlushBytes = c.WriteBufferBytes
	}
	if c.Flush == FlushBytes {
		c.WriteBufferBytes = max(c.WriteBufferBytes, c.FlushBytes)
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	return c
}

// withDefaults returns the config with defaults applied, or a
// transport.ErrConfig error naming the bad key.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c = c.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Metrics = metrics.OrDefault(c.Metrics)
	return c, nil
}

// Validate reports the first invalid setting as a transport.ErrConfig
// error that names the key and the fix.
func (c Config) Validate() error {
	var msg string
	switch {
	case c.Path == "":
		msg = Section + ".path is empty: set it to the NDJSON file to read or write"
	case c.PositionPath != "" && c.PositionPath == c.Path:
		msg = Section + ".position_path must differ from " + Section + ".path: leave it empty for the default <path>.pos"
	case c.MaxLineBytes < 0:
		msg = fmt.Sprintf("%s.max_line_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.MaxLineBytes, DefaultMaxLineBytes)
	case c.PollInterval < 0:
		msg = fmt.Sprintf("%s.poll_interval is %s: use a positive duration, or 0 for the default %s", Section, c.PollInterval, DefaultPollInterval)
	case c.Sync != "" && c.Sync != SyncEveryWrite && c.Sync != SyncOnInterval && c.Sync != SyncNone:
		msg = fmt.Sprintf("%s.sync is %q: use every_write, interval or none", Section, string(c.Sync))
	case c.SyncInterval < 0:
		msg = fmt.Sprintf("%s.sync_interval is %s: use a positive duration, or 0 for the default %s", Section, c.SyncInterval, DefaultSyncInterval)
	case c.WriteBufferBytes < 0:
		msg = fmt.Sprintf("%s.write_buffer_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.WriteBufferBytes, DefaultWriteBufferBytes)
	case c.Flush != "" && c.Flush != FlushBatch && c.Flush != FlushBytes && c.Flush != FlushOnInterval:
		msg = fmt.Sprintf("%s.flush is %q: use batch, bytes or interval", Section, string(c.Flush))
	case c.FlushBytes < 0:
		msg = fmt.Sprintf("%s.flush_bytes is %d: use a positive byte count, or 0 for write_buffer_bytes", Section, c.FlushBytes)
	case c.FlushBytes > 0 && c.Flush != FlushBytes:
		msg = fmt.Sprintf("%s.flush_bytes is set but %s.flush is %q: set flush to bytes, or leave flush_bytes unset", Section, Section, c.flushName())
	case c.FlushInterval < 0:
		msg = fmt.Sprintf("%s.flush_interval is %s: use a positive duration, or 0 for the default %s", Section, c.FlushInterval, DefaultFlushInterval)
	case c.FlushInterval > 0 && c.Flush != FlushOnInterval:
		msg = fmt.Sprintf("%s.flush_interval is set but %s.flush is %q: set flush to interval, or leave flush_interval unset", Section, Section, c.flushName())
	case c.Flush != "" && c.Flush != FlushBatch && (c.Sync == "" || c.Sync == SyncEveryWrite):
		msg = fmt.Sprintf("%s.flush is %s, which can leave accepted records in the process buffer, but %s.sync is every_write (the default), "+
			"which promises each accepted record is on disk: set sync to interval or none, or flush to batch", Section, c.Flush, Section)
	default:
		return nil
	}
	return transport.NewError(transport.ErrConfig, name, "config", errors.New(msg))
}

// flushName returns the flush policy as configured, "batch" when unset.
func (c Config) flushName() string {
	if c.Flush == "" {
		return string(FlushBatch)
	}
	return string(c.Flush)
}

// appendMode reports the effective Append setting.
func (c Config) appendMode() bool { return c.Append == nil || *c.Append }
