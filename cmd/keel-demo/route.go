package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
)

// routePlaceholder is replaced by the route in output.file.path: each
// route gets its own NDJSON file.
const routePlaceholder = "{route}"

// routeHeader is the record header process sets to the event's route.
const routeHeader = "route"

// routeRE is what a route must look like to name a file; anything else
// goes to defaultRoute.
var routeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// routeOf returns the route of a record: its route header, else its key,
// else defaultRoute.
func routeOf(rec transport.Record) string {
	route := string(rec.Key)
	for _, h := range rec.Headers {
		if h.Key == routeHeader {
			route = string(h.Value)
			break
		}
	}
	if !routeRE.MatchString(route) {
		return defaultRoute
	}
	return route
}

// routeGlob returns the glob that matches every file of the path template.
func routeGlob(pathTemplate string) string {
	return strings.ReplaceAll(pathTemplate, routePlaceholder, "*")
}

// routeName returns the route a file of the path template is for, or ""
// when path is not one of its files.
func routeName(pathTemplate, path string) string {
	before, after, ok := strings.Cut(filepath.Base(pathTemplate), routePlaceholder)
	base := filepath.Base(path)
	if !ok || !strings.HasPrefix(base, before) || !strings.HasSuffix(base, after) || len(base) <= len(before)+len(after) {
		return ""
	}
	return base[len(before) : len(base)-len(after)]
}

// routedSender is a transport.Sender that writes each record to the NDJSON
// file of its route: the file sender of cfg with the route in place of
// {route} in cfg.Path, opened on the first record of that route. It is
// safe for concurrent use.
type routedSender struct {
	cfg file.Config

	mu     sync.Mutex
	outs   map[string]*file.Sender
	closed bool
}

var _ transport.Sender = (*routedSender)(nil)

// newRoutedSender checks that cfg.Path holds {route} and returns the
// sender; it opens no file yet.
func newRoutedSender(cfg file.Config, key string) (*routedSender, error) {
	if !strings.Contains(filepath.Base(cfg.Path), routePlaceholder) {
		return nil, transport.NewError(transport.ErrConfig, "file", "config", fmt.Errorf(
			"%s.path is %q: put %s in the file name, such as out/%s.ndjson, so that each route gets its own file",
			key, cfg.Path, routePlaceholder, routePlaceholder))
	}
	return &routedSender{cfg: cfg, outs: make(map[string]*file.Sender)}, nil
}

// Name returns "file".
func (s *routedSender) Name() string { return "file" }

// sender returns the file sender of route, opening it on first use.
func (s *routedSender) sender(route string) (*file.Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, transport.NewError(transport.ErrClosed, s.Name(), "send", nil)
	}
	if out, ok := s.outs[route]; ok {
		return out, nil
	}
	c := s.cfg
	c.Path = filepath.Join(filepath.Dir(c.Path), strings.ReplaceAll(filepath.Base(c.Path), routePlaceholder, route))
	out, err := file.NewSender(c)
	if err != nil {
		return nil, err
	}
	s.outs[route] = out
	return out, nil
}

// Send writes rec to the file of its route.
func (s *routedSender) Send(ctx context.Context, rec transport.Record) error {
	out, err := s.sender(routeOf(rec))
	if err != nil {
		return err
	}
	return out.Send(ctx, rec)
}

// SendBatch writes the records of each route to its file, in order within
// a route. When every record goes to one route, the error is that file
// sender's own; otherwise a failure is a *transport.BatchError naming the
// records (by their index in records) that were not written.
func (s *routedSender) SendBatch(ctx context.Context, records []transport.Record) error {
	var order []string
	groups := make(map[string][]int)
	for i, rec := range records {
		route := routeOf(rec)
		if _, ok := groups[route]; !ok {
			order = append(order, route)
		}
		groups[route] = append(groups[route], i)
	}
	if len(order) == 1 {
		out, err := s.sender(order[0])
		if err != nil {
			return err
		}
		return out.SendBatch(ctx, records)
	}
	be := &transport.BatchError{}
	for _, route := range order {
		idx := groups[route]
		fail := func(err error) {
			for _, i := range idx {
				be.Failed = append(be.Failed, transport.FailedRecord{Index: i, Err: err})
			}
		}
		out, err := s.sender(route)
		if err != nil {
			fail(err)
			continue
		}
		recs := make([]transport.Record, len(idx))
		for j, i := range idx {
			recs[j] = records[i]
		}
		err = out.SendBatch(ctx, recs)
		if err == nil {
			continue
		}
		var part *transport.BatchError
		if !errors.As(err, &part) {
			fail(err)
			continue
		}
		for _, f := range part.Failed {
			if f.Index >= 0 && f.Index < len(idx) {
				be.Failed = append(be.Failed, transport.FailedRecord{Index: idx[f.Index], Err: f.Err})
			}
		}
	}
	if len(be.Failed) == 0 {
		return nil
	}
	slices.SortFunc(be.Failed, func(a, b transport.FailedRecord) int { return a.Index - b.Index })
	return be
}

// Health returns the first route file sender's failure, nil while every
// one can write.
func (s *routedSender) Health(ctx context.Context) error {
	s.mu.Lock()
	outs := make([]*file.Sender, 0, len(s.outs))
	for _, route := range slices.Sorted(maps.Keys(s.outs)) {
		outs = append(outs, s.outs[route])
	}
	s.mu.Unlock()
	for _, out := range outs {
		if err := out.Health(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes and closes every route file. Later sends fail with
// transport.ErrClosed.
func (s *routedSender) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	outs := s.outs
	s.outs = map[string]*file.Sender{}
	s.mu.Unlock()
	var errs []error
	for _, out := range outs {
		errs = append(errs, out.Close(ctx))
	}
	return errors.Join(errs...)
}
