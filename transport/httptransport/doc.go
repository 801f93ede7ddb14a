// Package httptransport is the HTTP transport: a Receiver that serves a
// POST endpoint and turns request bodies into records, and a Sender that
// posts batches of records to a URL. It uses net/http only.
// Configuration lives in the "transport.http" section.
//
// Receiving:
//
//	r, err := httptransport.NewReceiver(httptransport.Config{Listen: ":8080"})
//	if err != nil { ... }
//	defer r.Close(ctx)
//	for {
//		b, err := r.Recv(ctx, transport.Limits{MaxRecords: 500})
//		if err != nil { ... }          // ctx.Err(), or transport.ErrClosed
//		deliver(b.Records)
//		if err := r.Commit(ctx, b.Tokens); err != nil { ... }
//	}
//
// Clients POST to Config.Path ("/ingest"). The body is read whole, at most
// Config.MaxBodyBytes (16 MiB; a larger body gets 413 before it is
// buffered), and framed by Config.Framing: "ndjson" (default, one record
// per non-blank line, "\r\n" accepted), "json_array" (one record per
// element of a top-level array) or "single" (the whole body is one record,
// its format taken from Content-Type). An empty or malformed body gets 400
// with the reason, another method 405. Each record's Token is "http:<seq>";
// the header named by Config.KeyHeader becomes the record key and the
// headers listed in Config.CopyHeaders become record headers.
//
// Trace context crosses the hop whatever Config.CopyHeaders says: the
// request's traceparent, tracestate and baggage headers (and any other
// header the global OpenTelemetry propagator uses) are copied to every
// record of the request, so the engine's block span (telemetry.StartBlock)
// continues the sender's trace; several lines of one header are joined
// with ",".
//
// Accepted records wait in a queue of Config.QueueRecords (10 000) records
// for Recv; a request that does not fit gets 503 with Retry-After
// (Config.RetryAfter, 1 s, rounded up to whole seconds). Receiver.QueueFill
// reports the queue's fill in records, from 0 to 1, for the scaling
// signal. Recv returns batches under transport.Limits and waits at most
// Config.RecvTimeout for the first record (zero: until one arrives).
//
// Guarantees, by Config.AckMode:
//
//   - "commit" (default): the client gets 200 only after every record of
//     its request was committed through Receiver.Commit. When that cannot
//     happen (the receiver closes, or Config.AckTimeout, 30 s, passes) it
//     gets 503 and retries: records may then be delivered twice, but an
//     answered 200 means they were processed. At-least-once end to end, as
//     long as clients retry on 503 and on a lost connection.
//   - "enqueue": 200 as soon as the records are queued in memory. Records
//     queued but not yet processed are lost if the process stops or the
//     receiver closes: at-most-once across a crash. Commit does nothing.
//
// The Receiver is the governor's actuator (governor.Actuator): after Pause,
// new requests get 503 with Retry-After before their body is read, until
// Resume; requests already queued still complete. Close stops accepting
// (later requests get 503, then connections are refused), answers waiting
// commit-mode requests 503, drops records Recv has not taken, and shuts the
// server down gracefully within its ctx. Health reports Close and a failed
// listener.
//
// Sending:
//
//	s, err := httptransport.NewSender(httptransport.Config{URL: "http://collector:8080/ingest"})
//	if err != nil { ... }
//	defer s.Close(ctx)
//	err = s.SendBatch(ctx, records)
//
// A batch is one POST framed like the receiver expects (Content-Type
// application/x-ndjson or application/json; with "single", one POST per
// record), within Config.Timeout (30 s), with the static Config.Headers and
// "Authorization: Bearer" from Config.BearerToken, a secret that is never
// logged nor put in an error. 2xx is success; 429, 502, 503 and 504 are
// transport.ErrBackpressure and 408 or a timeout transport.ErrTimeout
// (retry); any other status, 500 included, is a fatal transport.ErrSend
// naming the status and quoting the start of the response body. Without an
// answer (connection refused or reset) the error wraps both
// transport.ErrConnection and transport.ErrBackpressure: retryable, since a
// restarting receiver looks like this. A payload that cannot be framed
// (ErrUnframable: a newline in an "ndjson" payload, a payload that is not
// one JSON value for "json_array", an empty one) is refused at its index in
// a *transport.BatchError, and the other records are sent.
//
// Each request carries the trace context of the send's ctx, injected by
// the global propagator (traceparent, tracestate and baggage with keel's
// default). When ctx holds no span and every record of the request carries
// the same trace headers (always true with "single" framing, one record
// per request), the records' own traceparent, tracestate and baggage are
// sent, so a relay without tracing keeps the upstream trace. Record keys,
// other record headers and timestamps are not sent.
//
// Metrics (namespace keel, subsystem http, group transport):
// requests_total{code}, received_records_total, received_bytes_total,
// rejected_requests_total{reason} (too_large, bad_body, paused, queue_full,
// closed, ack_timeout), queued_records, paused, sent_records_total,
// sent_bytes_total and send_failures_total{class} (backpressure, fatal;
// counted in records). RegisterMetrics lists them before first use.
package httptransport
