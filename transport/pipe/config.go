package pipe

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Section is the configuration section this package reads.
const Section = "transport.pipe"

// name is the backend name in errors, logs and Name.
const name = "pipe"

// Defaults of a zero Config.
const (
	// DefaultMaxLineBytes is the longest line, without its terminator,
	// that is delivered as a record: 1 MiB.
	DefaultMaxLineBytes = 1 << 20
	// DefaultReadBufferBytes is the size of one read from the input.
	DefaultReadBufferBytes = 64 << 10
	// DefaultWriteBufferBytes is the sender's write buffer size.
	DefaultWriteBufferBytes = 64 << 10
	// readQueueChunks is how many reads the background reader may hold
	// ahead of Recv: input buffered in memory is at most this many
	// ReadBufferBytes plus one line.
	readQueueChunks = 4
)

// Config configures a Receiver or a Sender (config section
// "transport.pipe"). The zero value reads standard input and writes
// standard output with the documented defaults.
type Config struct {
	// RecvTimeout bounds how long Recv waits for the first line before it
	// returns an empty batch and a nil error. Zero waits until a line
	// arrives, the input ends or ctx is done.
	RecvTimeout time.Duration `koanf:"recv_timeout"`
	// MaxLineBytes is the longest line, without its "\n" or "\r\n"
	// terminator, that is delivered. A longer line goes to the batch's
	// dead letters and a Sender refuses a longer payload. Default 1 MiB.
	MaxLineBytes int `koanf:"max_line_bytes"`
	// ReadBufferBytes is the size of one read from the input. Default
	// 64 KiB.
	ReadBufferBytes int `koanf:"read_buffer_bytes"`
	// WriteBufferBytes is the Sender's write buffer; it is flushed at the
	// end of every call. Default 64 KiB.
	WriteBufferBytes int `koanf:"write_buffer_bytes"`

	// Input is what a Receiver reads; nil means os.Stdin. The Receiver
	// never closes it.
	Input io.Reader `koanf:"-"`
	// Output is what a Sender writes; nil means os.Stdout. The Sender
	// never closes it.
	Output io.Writer `koanf:"-"`
	// Metrics receives the keel_pipe_* metrics; nil means
	// metrics.Default().
	Metrics *metrics.Registry `koanf:"-"`
	// Logger receives warnings (oversize lines, write failures); nil means
	// slog.Default().
	Logger *slog.Logger `koanf:"-"`
}

// Validate reports the first invalid setting as a transport.ErrConfig
// error that names the key and the fix.
func (c Config) Validate() error {
	var msg string
	switch {
	case c.RecvTimeout < 0:
		msg = fmt.Sprintf("%s.recv_timeout is %s: use a positive duration, or 0 to wait for the first line", Section, c.RecvTimeout)
	case c.MaxLineBytes < 0:
		msg = fmt.Sprintf("%s.max_line_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.MaxLineBytes, DefaultMaxLineBytes)
	case c.ReadBufferBytes < 0:
		msg = fmt.Sprintf("%s.read_buffer_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.ReadBufferBytes, DefaultReadBufferBytes)
	case c.WriteBufferBytes < 0:
		msg = fmt.Sprintf("%s.write_buffer_bytes is %d: use a positive byte count, or 0 for the default %d", Section, c.WriteBufferBytes, DefaultWriteBufferBytes)
	default:
		return nil
	}
	return transport.NewError(transport.ErrConfig, name, "config", errors.New(msg))
}

// WithDefaults returns c with every zero setting replaced by the default
// it stands for (max_line_bytes 1 MiB, read_buffer_bytes and
// write_buffer_bytes 64 KiB; recv_timeout 0 waits). It does not validate
// c and leaves Input, Output, Metrics and Logger as they are.
func (c Config) WithDefaults() Config {
	c.MaxLineBytes = cmp.Or(c.MaxLineBytes, DefaultMaxLineBytes)
	c.ReadBufferBytes = cmp.Or(c.ReadBufferBytes, DefaultReadBufferBytes)
	c.WriteBufferBytes = cmp.Or(c.WriteBufferBytes, DefaultWriteBufferBytes)
	return c
}

// withDefaults returns the config with defaults applied, or a
// transport.ErrConfig error naming the bad key.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c = c.WithDefaults()
	if c.Input == nil {
		c.Input = os.Stdin
	}
	if c.Output == nil {
		c.Output = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Metrics = metrics.OrDefault(c.Metrics)
	return c, nil
}

// pipeMetrics are the keel_pipe_* collectors. Instances sharing a
// registry share them.
type pipeMetrics struct {
	linesRead    prometheus.Counter
	bytesRead    prometheus.Counter
	oversize     prometheus.Counter
	linesWritten prometheus.Counter
	bytesWritten prometheus.Counter
	rejected     prometheus.Counter
}

func newPipeMetrics(reg *metrics.Registry) *pipeMetrics {
	c := func(n, help, unit string) prometheus.Counter {
		return reg.Counter(metrics.Opts{Namespace: "keel", Subsystem: "pipe", Name: n, Help: help, Unit: unit, Group: "transport"})
	}
	return &pipeMetrics{
		linesRead:    c("lines_read_total", "Lines the pipe receiver delivered as records.", ""),
		bytesRead:    c("read_bytes_total", "Bytes the pipe receiver read from its input.", "bytes"),
		oversize:     c("oversize_lines_total", "Lines over max_line_bytes the pipe receiver sent to dead letters.", ""),
		linesWritten: c("lines_written_total", "Lines the pipe sender wrote.", ""),
		bytesWritten: c("written_bytes_total", "Bytes the pipe sender wrote, terminators included.", "bytes"),
		rejected:     c("rejected_records_total", "Records the pipe sender refused because they would break NDJSON framing or exceed max_line_bytes.", ""),
	}
}

func errClosed(op string) error {
	return transport.NewError(transport.ErrClosed, name, op, nil)
}

// RegisterMetrics registers the keel_pipe_* metrics on reg (nil means
// metrics.Default()) without building a receiver or sender, so that a
// metrics manifest lists them before the transport is used. NewReceiver and
// NewSender register them too.
func RegisterMetrics(reg *metrics.Registry) { newPipeMetrics(metrics.OrDefault(reg)) }
