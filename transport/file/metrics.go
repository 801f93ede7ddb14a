package file

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// fileMetrics are the keel_file_* collectors. Instances sharing a registry
// share them.
type fileMetrics struct {
	linesRead    prometheus.Counter
	bytesRead    prometheus.Counter
	oversize     prometheus.Counter
	commits      prometheus.Counter
	resets       prometheus.Counter
	linesWritten prometheus.Counter
	bytesWritten prometheus.Counter
	rejected     prometheus.Counter
	fsyncs       prometheus.Counter
}

func newFileMetrics(reg *metrics.Registry) *fileMetrics {
	c := func(n, help, unit string) prometheus.Counter {
		return reg.Counter(metrics.Opts{Namespace: "keel", Subsystem: "file", Name: n, Help: help, Unit: unit, Group: "transport"})
	}
	return &fileMetrics{
		linesRead:    c("lines_read_total", "Lines the file receiver delivered as records.", ""),
		bytesRead:    c("read_bytes_total", "Bytes of input the file receiver consumed, terminators, blank and oversize lines included.", "bytes"),
		oversize:     c("oversize_lines_total", "Lines over max_line_bytes the file receiver sent to dead letters.", ""),
		commits:      c("commits_total", "Positions the file receiver persisted to its position file.", ""),
		resets:       c("resets_total", "Times the file receiver restarted from offset 0 because the file was truncated or replaced.", ""),
		linesWritten: c("lines_written_total", "Lines the file sender wrote.", ""),
		bytesWritten: c("written_bytes_total", "Bytes the file sender wrote, terminators included.", "bytes"),
		rejected:     c("rejected_records_total", "Records the file sender refused because they would break NDJSON framing or exceed max_line_bytes.", ""),
		fsyncs:       c("fsyncs_total", "fsync calls made by the file transport (data file, position file and directory).", ""),
	}
}

// RegisterMetrics registers the keel_file_* metrics on reg (nil means
// metrics.Default()) without building a receiver or sender, so that a
// metrics manifest lists them before the transport is used. NewReceiver and
// NewSender register them too.
func RegisterMetrics(reg *metrics.Registry) { newFileMetrics(metrics.OrDefault(reg)) }
