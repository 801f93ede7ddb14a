package httptransport

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Reasons a Receiver rejects a request, the values of the reason label of
// keel_http_rejected_requests_total.
const (
	reasonTooLarge   = "too_large"
	reasonBadBody    = "bad_body"
	reasonPaused     = "paused"
	reasonQueueFull  = "queue_full"
	reasonClosed     = "closed"
	reasonAckTimeout = "ack_timeout"
)

// httpMetrics are the keel_http_* collectors. Instances sharing a
// registry share them.
type httpMetrics struct {
	requests        *metrics.CounterVec
	receivedRecords prometheus.Counter
	receivedBytes   prometheus.Counter
	rejected        *metrics.CounterVec
	queued          prometheus.Gauge
	paused          prometheus.Gauge
	sentRecords     prometheus.Counter
	sentBytes       prometheus.Counter
	sendFailures    *metrics.CounterVec
}

func newHTTPMetrics(reg *metrics.Registry) *httpMetrics {
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "http", Name: n, Help: help, Unit: unit, Group: "transport"}
	}
	return &httpMetrics{
		requests:        reg.CounterVec(o("requests_total", "Requests the HTTP receiver answered, by status code.", ""), "code"),
		receivedRecords: reg.Counter(o("received_records_total", "Records the HTTP receiver accepted into its queue.", "")),
		receivedBytes:   reg.Counter(o("received_bytes_total", "Body bytes of the requests the HTTP receiver accepted.", "bytes")),
		rejected: reg.CounterVec(o("rejected_requests_total",
			"Requests the HTTP receiver refused, by reason: too_large, bad_body, paused, queue_full, closed, ack_timeout.", ""), "reason"),
		queued:      reg.Gauge(o("queued_records", "Records accepted by the HTTP receiver and not yet taken by Recv.", "")),
		paused:      reg.Gauge(o("paused", "HTTP receivers currently paused by the inbound gate.", "")),
		sentRecords: reg.Counter(o("sent_records_total", "Records the HTTP sender delivered (answered 2xx).", "")),
		sentBytes:   reg.Counter(o("sent_bytes_total", "Request body bytes the HTTP sender delivered.", "bytes")),
		sendFailures: reg.CounterVec(o("send_failures_total",
			"Records the HTTP sender failed to deliver, by class: backpressure (retryable) or fatal.", ""), "class"),
	}
}

// RegisterMetrics registers the keel_http_* metrics on reg (nil means
// metrics.Default()) without building a receiver or sender, so that a
// metrics manifest lists them before the transport is used. NewReceiver and
// NewSender register them too.
func RegisterMetrics(reg *metrics.Registry) { newHTTPMetrics(metrics.OrDefault(reg)) }
