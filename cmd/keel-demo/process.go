package main

import (
	"context"
	"fmt"
	"time"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

// routes maps an event's type to its destination.
var routes = map[string]string{
	"order":   "orders",
	"payment": "billing",
	"click":   "analytics",
	"view":    "analytics",
}

// defaultRoute is the destination of a type routes does not name.
const defaultRoute = "misc"

// process parses, enriches and routes one block, counting this run's
// events and those of other runs apart: a payload that is not
// JSON, or an event whose amount is not a number (a poison event), becomes
// a dead letter with the reason; every other event gets the fields route,
// amount_cents and processed_at, and its route as the record key and the
// route header, by which the output sender writes it to its route's file.
func (d *demo) process(_ context.Context, b transport.Batch) (transport.Batch, error) {
	var mine int64
	for _, rec := range b.Records {
		if d.ofThisRun(rec.Payload) {
			mine++
		}
	}
	for _, dl := range b.DeadLetters {
		if d.ofThisRun(dl.Record.Payload) {
			mine++
		}
	}
	d.stats.consumed.Add(mine)
	d.stats.otherRuns.Add(int64(len(b.Records)+len(b.DeadLetters)) - mine)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	out := make([]transport.Record, 0, len(b.Records))
	var dead []transport.DeadLetter
	for _, rec := range b.Records {
		enriched, route, reason := enrich(rec.Payload, now)
		if reason != "" {
			dead = append(dead, transport.DeadLetter{Record: rec, Reason: reason, Destination: route})
			continue
		}
		rec.Payload = enriched
		rec.Key = []byte(route)
		rec.Headers = append(rec.Headers[:len(rec.Headers):len(rec.Headers)], transport.Header{Key: routeHeader, Value: []byte(route)})
		rec.Format = codec.JSON
		out = append(out, rec)
	}
	d.stats.dead.Add(int64(len(b.DeadLetters) + len(dead)))
	res := transport.Batch{Records: out, Tokens: b.Tokens, DeadLetters: b.DeadLetters}
	if len(dead) > 0 {
		res = res.WithDeadLetters(dead...)
	}
	return res, nil
}

// enrich returns the enriched payload and its route, or the reason the
// event cannot be delivered.
func enrich(payload []byte, now string) (out []byte, route, reason string) {
	v, err := codec.Parse(payload, codec.ParseOptions{Format: codec.JSON})
	if err != nil {
		return nil, "", "malformed event: " + err.Error()
	}
	if !v.IsObject() {
		return nil, "", "malformed event: not a JSON object"
	}
	typ, _ := v.Field("type").Str()
	route = routes[typ]
	if route == "" {
		route = defaultRoute
	}
	amount, ok := v.Field("amount").Float()
	if !ok {
		var i int64
		i, ok = v.Field("amount").Int()
		amount = float64(i)
	}
	if !ok {
		return nil, route, "poison event: amount is not a number"
	}
	if err := v.Set("route", route); err != nil {
		return nil, route, "enrich: " + err.Error()
	}
	if err := v.Set("amount_cents", int64(amount*100+0.5)); err != nil {
		return nil, route, "enrich: " + err.Error()
	}
	if err := v.Set("processed_at", now); err != nil {
		return nil, route, "enrich: " + err.Error()
	}
	out, err = v.Bytes()
	if err != nil {
		return nil, route, fmt.Sprintf("encode: %v", err)
	}
	return out, route, ""
}

// countingSink sends through s and counts what it accepted.
func (d *demo) countingSink(s transport.Sender) engine.SinkFunc {
	send := engine.SinkTo(s)
	return func(ctx context.Context, b transport.Batch) error {
		if err := send(ctx, b); err != nil {
			return err
		}
		d.stats.sent.Add(int64(len(b.Records)))
		return nil
	}
}
