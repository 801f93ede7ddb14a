package keel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
)

// deadLetterApp feeds n records into the inmem input and runs the engine
// over them with a process step that dead-letters every odd record (its
// source token's text as Source); the even ones go to the inmem output.
// It reports the input queue and the runtime's DLQ through the pointers.
func deadLetterApp(n int, in **inmem.Transport, q **dlq.DLQ) keel.App {
	return keel.App{
		Name:     "dlqtest",
		Defaults: map[string]any{"transport.type": "inmem", "out.type": "inmem"},
		Run: func(ctx context.Context, rt *keel.Runtime) error {
			*q = rt.DLQ()
			r, err := rt.Receiver(ctx, "")
			if err != nil {
				return err
			}
			out, err := rt.Sender(ctx, "out")
			if err != nil {
				return err
			}
			*in = queue(r)
			for i := range n {
				if err := (*in).InjectPayloads(ctx, fmt.Appendf(nil, `{"i":%d}`, i)); err != nil {
					return err
				}
			}
			(*in).CloseInput()
			process := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
				var keep []transport.Record
				for i, rec := range b.Records {
					var n int
					if _, err := fmt.Sscanf(string(rec.Payload), `{"i":%d}`, &n); err != nil {
						return b, err
					}
					if n%2 == 1 {
						b.DeadLetters = append(b.DeadLetters, transport.DeadLetter{
							Record: rec, Reason: "odd", Destination: "odds", Source: b.Tokens[i].String(),
						})
						continue
					}
					keep = append(keep, rec)
				}
				b.Records = keep
				return b, nil
			}
			return rt.Engine().Run(ctx, r, process, rt.Engine().SinkTo(out))
		},
	}
}

// TestDLQFromConfig: with dlq.enabled the runtime builds the DLQ from its
// section, routes the engine's dead letters into it and flushes it at
// shutdown: the files hold exactly the dead-lettered records with their
// source tokens, and the input is committed up to its last record.
func TestDLQFromConfig(t *testing.T) {
	const n = 8
	dir := t.TempDir()
	var in *inmem.Transport
	var q *dlq.DLQ
	// A long sync interval and flush interval: only the shutdown hook's
	// flush makes the entries durable before Run returns.
	opts := isolated(t, &syncBuffer{}, map[string]any{
		"dlq.enabled": true, "dlq.mode": "single", "dlq.file.enabled": true, "dlq.file.path": dir,
		"dlq.flush_interval": "1h", "dlq.sync_interval": "1h", "dlq.batch_size": 1000,
	})
	if err := keel.Run(testCtx(t), deadLetterApp(n, &in, &q), opts...); err != nil {
		t.Fatal(err)
	}
	if q == nil || !q.Enabled() || !slices.Equal(q.Backends(), []string{dlq.BackendFile}) {
		t.Fatalf("rt.DLQ() = %v, want the enabled file DLQ", q)
	}
	if err := q.Push(context.Background(), dlq.Entry{Reason: "late", Payload: []byte("x")}); !errors.Is(err, dlq.ErrClosed) {
		t.Fatalf("the DLQ was not closed at shutdown: Push = %v", err)
	}
	if got := in.Committed(); got != n {
		t.Fatalf("committed sequence %d, want %d (every record, dead-lettered or delivered)", got, n)
	}
	files, err := filepath.Glob(filepath.Join(dir, "dlqtest", "*.ndjson"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no DLQ file under %s: %v", dir, err)
	}
	var got []string
	for _, f := range files {
		entries, err := dlq.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Service != "dlqtest" || e.Reason != "odd" || e.Destination != "odds" || e.Source == nil {
				t.Fatalf("entry %+v", e)
			}
			got = append(got, string(e.Payload)+" "+e.Source.Token)
		}
	}
	slices.Sort(got)
	var want []string
	for i := 1; i < n; i += 2 {
		// inmem tokens count from 1: record i has sequence i+1.
		want = append(want, fmt.Sprintf(`{"i":%d} inmem:%d`, i, i+1))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("DLQ entries\n got %q\nwant %q", got, want)
	}
}

// TestDLQDisabledByDefault: without dlq.enabled there is no DLQ, no file,
// and the engine's default policy rejects a dead letter: the loop stops
// with ErrDeadLettersRejected before committing that block.
func TestDLQDisabledByDefault(t *testing.T) {
	const n = 4
	var in *inmem.Transport
	q := &dlq.DLQ{}
	wd := t.TempDir()
	opts := isolated(t, &syncBuffer{}, map[string]any{"dlq.file.path": wd})
	err := keel.Run(testCtx(t), deadLetterApp(n, &in, &q), opts...)
	if !errors.Is(err, engine.ErrDeadLettersRejected) {
		t.Fatalf("Run = %v, want ErrDeadLettersRejected", err)
	}
	if q != nil {
		t.Fatalf("rt.DLQ() = %v with dlq.enabled false", q)
	}
	if got := in.Committed(); got >= n {
		t.Fatalf("committed sequence %d: the block with a rejected dead letter was committed", got)
	}
	if ents, _ := os.ReadDir(wd); len(ents) != 0 {
		t.Fatalf("a disabled DLQ wrote %v", ents)
	}
}

// TestDLQBadKey: an invalid dlq key fails the start-up and config-check,
// naming the key, and the app never runs; config-check shows the section.
func TestDLQBadKey(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml, key string
	}{
		"order":       {"dlq:\n  enabled: true\n  order: [file, tape]\n", "dlq.order[1]"},
		"mode":        {"dlq:\n  enabled: true\n  mode: file_only\n", "file_only"},
		"single":      {"dlq:\n  enabled: true\n  mode: single\n  file: {enabled: true}\n  http: {enabled: true, endpoint: \"http://127.0.0.1:1\"}\n", "dlq.mode"},
		"unknown key": {"dlq:\n  enabled: true\n  bogus_key: 1\n", "bogus_key"},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeFile(t, "dlq.yaml", tc.yaml)
			strict := keel.WithConfigOptions(func(o *config.Options) { o.Strict = true })
			ran := false
			app := keel.App{Name: "dlqtest", Run: func(context.Context, *keel.Runtime) error { ran = true; return nil }}
			err := keel.Run(testCtx(t), app, append(isolated(t, &syncBuffer{}, nil), keel.WithConfigFile(path), strict)...)
			if err == nil || !strings.Contains(err.Error(), tc.key) || ran {
				t.Fatalf("start-up: ran %v, err %v; want the key %q named", ran, err, tc.key)
			}
			var out, errb syncBuffer
			root, err := keel.Command(app, append(isolated(t, &errb, nil), strict)...)
			if err != nil {
				t.Fatal(err)
			}
			root.SetOut(&out)
			root.SetErr(&errb)
			root.SetArgs([]string{"config-check", "-c", path})
			if err := root.ExecuteContext(testCtx(t)); err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("config-check: %v; want the key %q named", err, tc.key)
			}
		})
	}
}

// TestConfigCheckDLQStartsNothing: config-check with an enabled file DLQ
// validates it, shows the section, and creates no directory.
func TestConfigCheckDLQStartsNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "never")
	path := writeFile(t, "dlq.yaml", "dlq:\n  enabled: true\n  file: {enabled: true, path: "+dir+"}\n")
	var out, errb syncBuffer
	root, err := keel.Command(keel.App{Name: "dlqtest", Run: func(context.Context, *keel.Runtime) error { return nil }},
		isolated(t, &errb, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs([]string{"config-check", "-c", path})
	if err := root.ExecuteContext(testCtx(t)); err != nil {
		t.Fatalf("config-check: %v\n%s", err, errb.String())
	}
	contains(t, out.String(), `"dlq"`, "config-check output")
	contains(t, out.String(), dir, "config-check output")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("config-check created the DLQ directory: %v", err)
	}
}
