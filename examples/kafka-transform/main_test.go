package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport/kafka"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// TestTransformKafkaToKafka: every good event reaches the output topic
// with user renamed to user_id and processed_by added; the event that is
// not JSON and the one that is not an object are in the DLQ files with
// their reasons; the group's committed offset covers every input record.
func TestTransformKafkaToKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", "") // the overrides name the brokers
	cluster := kafkatest.Start(t, kfake.SeedTopics(1, "events", "events-enriched"))

	const good = 18
	var recs []*kgo.Record
	for i := range good {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"user":"u%d"}`, i, i)})
		if i == 5 {
			recs = append(recs, &kgo.Record{Value: []byte(`{"id": broken`)})
		}
		if i == 11 {
			recs = append(recs, &kgo.Record{Value: []byte(`[1,2,3]`)})
		}
	}
	cluster.Produce(t, "events", recs...)

	dlqDir := t.TempDir()
	logs := &syncBuffer{}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- keel.Run(runCtx, newApp(),
			keel.WithConfigOptions(func(c *config.Options) {
				c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = t.TempDir(), true, true, true
			}),
			keel.WithConfigWatch(config.WatchOptions{PollInterval: -1, DisableSIGHUP: true}),
			keel.WithLogOutput(logs),
			keel.WithOverrides(map[string]any{
				"admin.addr":              "127.0.0.1:0",
				"lifecycle.prestop_delay": "-1s",
				"input.kafka.brokers":     cluster.Addrs(),
				"input.kafka.profile":     "devtest",
				"input.kafka.sizing":      "low_latency",
				"output.kafka.brokers":    cluster.Addrs(),
				"output.kafka.profile":    "devtest",
				"dlq.file.path":           dlqDir,
			}))
	}()

	got := cluster.ReadAll(ctx, t, "events-enriched", good)
	if len(got) != good {
		stop()
		<-done
		t.Fatalf("%d records on events-enriched, want %d\n%s", len(got), good, logs.String())
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}

	seen := map[int]bool{}
	for _, r := range got {
		var ev map[string]any
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("output %q is not JSON: %v", r.Value, err)
		}
		id := int(ev["id"].(float64))
		if ev["user_id"] != fmt.Sprintf("u%d", id) || ev["processed_by"] != appName {
			t.Fatalf("output %s: want user_id u%d and processed_by %s", r.Value, id, appName)
		}
		if _, ok := ev["user"]; ok {
			t.Fatalf("output %s still has the field user", r.Value)
		}
		seen[id] = true
	}
	if len(seen) != good {
		t.Fatalf("%d distinct events on the output, want %d", len(seen), good)
	}

	// Both bad records are in the DLQ, with their reasons.
	var entries []dlq.Entry
	err := filepath.WalkDir(dlqDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		es, err := dlq.ReadFile(path)
		entries = append(entries, es...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, e := range entries {
		reasons[string(e.Payload)] = e.Reason
	}
	if len(entries) != 2 || !strings.Contains(reasons[`{"id": broken`], "parse error") ||
		!strings.Contains(reasons[`[1,2,3]`], "not a JSON object") {
		t.Fatalf("DLQ entries %v, want the broken record (parse error) and the array (not a JSON object)", reasons)
	}

	// The group committed past every input record, the bad ones included.
	adm, err := kafka.NewAdmin(ctx, kafka.Config{Brokers: cluster.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	committed, err := adm.Committed(ctx, appName, "events")
	if err != nil {
		t.Fatal(err)
	}
	if off := committed["events"][0]; off != int64(len(recs)) {
		t.Fatalf("committed offset %d, want %d", off, len(recs))
	}
}
