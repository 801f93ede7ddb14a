package engine_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// FuzzProcessRecords feeds arbitrary payloads (split on 0xff) through the
// parse, the pre-route filters and a transform. The engine must not panic
// and must account for every record: each one has a result, or was
// filtered, or skipped.
func FuzzProcessRecords(f *testing.F) {
	for _, seed := range []string{
		`{"_table":"a","n":1}`,
		`{"_table":"quarantine"}` + "\xff" + `{"n":2}` + "\xff" + `[[[[`,
		"\x81\xa6_table\xa1x",
		"\x00\x00\xff\xff{",
		`{"_table":42}` + "\xff" + `"str"` + "\xff" + `null`,
		"",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(1))
	}
	reg := metrics.New(metrics.Config{NoRuntimeCollectors: true})
	f.Fuzz(func(t *testing.T, data []byte, action uint8) {
		cfg := engine.Config{
			Metrics:          reg,
			MaxRecords:       3,
			ParseErrorAction: engine.ParseErrorAction(action % 2), // dead_letter or skip
			RoutingField:     "_table",
			PreRouteFilters: []engine.PreRouteFilter{
				{Type: engine.DropFieldMissing},
				{Type: engine.DeadLetterFieldValue, Value: "quarantine"},
			},
		}
		e, err := engine.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		parts := bytes.Split(data, []byte{0xff})
		recs := make([]transport.Record, len(parts))
		for i, p := range parts {
			recs[i] = transport.Record{Payload: p}
		}
		res := engine.ProcessRecords(context.Background(), e, recs, func(_ context.Context, m *engine.Message) (int, error) {
			_ = m.Field("_table")
			return m.Index, nil
		})
		st := e.Stats()
		if uint64(len(res))+st.Filtered+st.Skipped != uint64(len(recs)) {
			t.Fatalf("%d results + %d filtered + %d skipped != %d records", len(res), st.Filtered, st.Skipped, len(recs))
		}
		last := -1
		for _, r := range res {
			if r.Index <= last {
				t.Fatalf("results out of order: %d after %d", r.Index, last)
			}
			last = r.Index
			if r.Err == nil && r.Value != r.Index {
				t.Fatalf("result %d carries %d", r.Index, r.Value)
			}
		}
	})
}
