package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
	"github.com/keel-go/keel/tiered"
)

// progressLoop prints a progress line every --progress until ctx ends:
// the rates in and out, the consumer group's lag as the Kafka consumer
// last read it ("-" before its first reading), the memory pressure, the
// byte budget, the spool's depth, the dead letters, and this run's
// consumed and generated events.
func (d *demo) progressLoop(ctx context.Context, rt *keel.Runtime, sink *tiered.Sink, lag func() (int64, bool)) {
	t := time.NewTicker(d.opts.progress)
	defer t.Stop()
	last := time.Now()
	var lastIn, lastOut int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			in, out := d.stats.consumed.Load()+d.stats.otherRuns.Load(), d.stats.sent.Load()
			secs := now.Sub(last).Seconds()
			var budget int64
			if b := rt.Governor().Budget(); b != nil {
				budget = b.Bytes()
			}
			var depth int64
			if sink != nil {
				depth = sink.Spool().Len()
			}
			lagText := "-"
			if n, ok := lag(); ok {
				lagText = strconv.FormatInt(n, 10)
			}
			fmt.Fprintf(d.out, "progress: in %.0f/s out %.0f/s lag %s memory_pressure %.2f byte_budget %d spool_depth %d dlq %d consumed %d generated %d\n",
				float64(in-lastIn)/secs, float64(out-lastOut)/secs, lagText,
				rt.Memory().PressureRatio(), budget, depth, d.stats.dead.Load(), d.stats.consumed.Load(), d.gen.generated())
			last, lastIn, lastOut = now, in, out
		}
	}
}

// summary accounts for every event this run generated.
type summary struct {
	runID        string
	generated    int64
	produceFails int64
	consumed     int64
	delivered    int64
	deadLettered int64
	spooled      int64
	// routes is delivered by route: this run's lines of each route's file.
	routes  map[string]int64
	dataDir string
	topic   string
	// otherRuns are the events of other runs (a reused topic) the service
	// consumed and processed; they are not counted above.
	otherRuns int64
	// carriedOver is what the spool held at start (a reused --data-dir):
	// records of earlier runs, not counted above.
	carriedOver int64
}

func (s *summary) balanced() bool {
	return s != nil && s.generated == s.delivered+s.deadLettered+s.spooled
}

func (s *summary) print(w io.Writer) {
	verdict := "balanced"
	if !s.balanced() {
		verdict = fmt.Sprintf("NOT balanced: %d unaccounted for", s.generated-(s.delivered+s.deadLettered+s.spooled))
	}
	fmt.Fprintf(w, "summary: generated=%d delivered=%d dead_lettered=%d spooled=%d (delivered+dead_lettered+spooled=%d) %s\n",
		s.generated, s.delivered, s.deadLettered, s.spooled, s.delivered+s.deadLettered+s.spooled, verdict)
	if len(s.routes) > 0 {
		parts := make([]string, 0, len(s.routes))
		for _, route := range slices.Sorted(maps.Keys(s.routes)) {
			parts = append(parts, fmt.Sprintf("%s=%d", route, s.routes[route]))
		}
		fmt.Fprintf(w, "summary: delivered by route: %s\n", strings.Join(parts, " "))
	}
	if s.otherRuns > 0 {
		fmt.Fprintf(w, "summary: other runs' events: %d consumed from topic %s and processed, not counted above\n", s.otherRuns, s.topic)
	}
	if s.carriedOver > 0 {
		fmt.Fprintf(w, "summary: the spool held %d records of earlier runs at start, not counted above\n", s.carriedOver)
	}
	fmt.Fprintf(w, "summary: run=%s consumed=%d produce_failures=%d data_dir=%s\n", s.runID, s.consumed, s.produceFails, s.dataDir)
}

// account counts, after the service stopped, this run's events: the
// delivered ones in the output files (one per route), the dead letters in
// the DLQ files and the records left in the spool.
func (d *demo) account(ctx context.Context) (*summary, error) {
	s := &summary{
		runID: d.runID, dataDir: d.opts.dataDir, topic: d.opts.topic,
		consumed: d.stats.consumed.Load(), otherRuns: d.stats.otherRuns.Load(),
	}
	if d.gen != nil {
		s.generated, s.produceFails = d.gen.generated(), d.gen.failed.Load()
	}
	var errs []error
	routes, err := countRoutes(d.outPattern, d.ofThisRun)
	if err != nil {
		errs = append(errs, err)
	}
	s.routes = routes
	for _, n := range routes {
		s.delivered += n
	}
	files, err := filepath.Glob(filepath.Join(d.dlqDir, "*", "*.ndjson*"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, f := range files {
		entries, err := dlq.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("read the DLQ file %s: %w", f, err))
		}
		for _, e := range entries {
			if d.ofThisRun(e.Payload) {
				s.deadLettered++
			}
		}
	}
	s.spooled, _, err = d.countSpool(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// countSpool counts the records in the spool (closed by then): this run's
// and all of them. A spool that was never created holds none.
func (d *demo) countSpool(ctx context.Context) (mine, total int64, err error) {
	if _, err := os.Stat(d.spoolDir); err != nil {
		return 0, 0, nil
	}
	sp, err := spool.Open(ctx, spool.Config{
		Dir: d.spoolDir, Name: "summary",
		Metrics: metrics.New(metrics.Config{Namespace: "keel_demo_summary", NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("open the spool %s to count it: %w", d.spoolDir, err)
	}
	// Reading without acknowledging leaves every record in place.
	for {
		entries, rerr := sp.TryPeek(1024, 0)
		if rerr != nil {
			err = fmt.Errorf("read the spool %s to count it: %w", d.spoolDir, rerr)
			break
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			total++
			rec, derr := tiered.DecodeRecord(e.Payload)
			if derr == nil && d.ofThisRun(rec.Payload) {
				mine++
			}
		}
	}
	if cerr := sp.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the spool %s: %w", d.spoolDir, cerr))
	}
	return mine, total, err
}

// countRoutes counts the lines of every route file of the output path
// template that match (every line when match is nil), by route.
func countRoutes(pathTemplate string, match func(line []byte) bool) (map[string]int64, error) {
	files, err := filepath.Glob(routeGlob(pathTemplate))
	if err != nil {
		return map[string]int64{}, fmt.Errorf("list the route files %s: %w", routeGlob(pathTemplate), err)
	}
	out := make(map[string]int64, len(files))
	var errs []error
	for _, f := range files {
		route := routeName(pathTemplate, f)
		if route == "" {
			continue
		}
		n, err := countLines(f, match)
		if err != nil {
			errs = append(errs, err)
		}
		out[route] += n
	}
	return out, errors.Join(errs...)
}

// countLines counts the non-empty lines of an NDJSON file that match
// (every one when match is nil); a missing file has none.
func countLines(path string, match func(line []byte) bool) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open the output file: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var n int64
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 && (match == nil || match(line)) {
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read the output file %s: %w", path, err)
		}
	}
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
