package docgen

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/httpclient"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport/file"
	"github.com/keel-go/keel/transport/inmem"
	"github.com/keel-go/keel/transport/pipe"
)

// buildComponents builds, with their code defaults and reg, the
// components the runtime builds only when the service runs: a tiered sink
// (with its spool and breaker) over an in-memory sender, the DLQ with its
// file backend, the file and pipe transports and the HTTP client. Each is
// closed again; close errors go to closeErrs. The Kafka transport is not
// built: it registers its metrics once connected to a broker.
func buildComponents(ctx context.Context, dir string, reg *metrics.Registry, log *slog.Logger, closeErrs *errs) error {
	down := inmem.New(inmem.Config{})
	defer func() { closeErrs.add(down.Close(ctx)) }()
	tc := tiered.Config{}
	tc.Spool.Dir = filepath.Join(dir, "spool")
	tc.Spool.Metrics = reg
	sink, err := tiered.New(ctx, down, tc, tiered.Options{Name: "docs", Metrics: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("docgen: build a tiered sink: %w", err)
	}
	closeErrs.add(sink.Close(ctx))

	dc := dlq.Config{Enabled: true}
	dc.File.Enabled = true
	dc.File.Path = filepath.Join(dir, "dlq")
	q, err := dlq.New(ctx, dc, dlq.Options{Service: "docs", Metrics: reg, Logger: log})
	if err != nil {
		return fmt.Errorf("docgen: build the DLQ: %w", err)
	}
	closeErrs.add(q.Close(ctx))

	fc := file.Config{Path: filepath.Join(dir, "data.ndjson"), Metrics: reg, Logger: log}
	fr, err := file.NewReceiver(fc)
	if err != nil {
		return fmt.Errorf("docgen: build a file receiver: %w", err)
	}
	closeErrs.add(fr.Close(ctx))
	fs, err := file.NewSender(fc)
	if err != nil {
		return fmt.Errorf("docgen: build a file sender: %w", err)
	}
	closeErrs.add(fs.Close(ctx))

	var out bytes.Buffer
	pc := pipe.Config{Input: strings.NewReader(""), Output: &out, Metrics: reg, Logger: log}
	pr, err := pipe.NewReceiver(pc)
	if err != nil {
		return fmt.Errorf("docgen: build a pipe receiver: %w", err)
	}
	closeErrs.add(pr.Close(ctx))
	ps, err := pipe.NewSender(pc)
	if err != nil {
		return fmt.Errorf("docgen: build a pipe sender: %w", err)
	}
	closeErrs.add(ps.Close(ctx))

	hc, err := httpclient.New(httpclient.Config{}, httpclient.WithMetrics(reg))
	if err != nil {
		return fmt.Errorf("docgen: build the HTTP client: %w", err)
	}
	hc.CloseIdleConnections()
	return nil
}
