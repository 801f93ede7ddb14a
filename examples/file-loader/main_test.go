package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/internal/keeltest"
	"github.com/keel-go/keel/transport/kafka/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = keeltest.SyncBuffer

// runLoader runs the loader in-process on path until it returns on its
// own; the brokers come from KAFKA_BOOTSTRAP_SERVERS, as in production.
func runLoader(ctx context.Context, t *testing.T, path string) (string, error) {
	t.Helper()
	logs := &syncBuffer{}
	err := keel.Run(ctx, newApp(),
		keel.WithConfigOptions(func(c *config.Options) {
			c.WorkDir, c.SkipSystemDir, c.SkipUserConfigDir, c.SkipDotEnv = t.TempDir(), true, true, true
		}),
		keel.WithConfigWatch(config.WatchOptions{PollInterval: -1, DisableSIGHUP: true}),
		keel.WithLogOutput(logs),
		keel.WithOverrides(map[string]any{
			"admin.addr":              "127.0.0.1:0",
			"lifecycle.prestop_delay": "-1s",
			"input.file.path":         path,
			"output.kafka.profile":    "devtest",
		}))
	return logs.String(), err
}

// TestLoadFileIntoKafka: the loader returns by itself at the end of the
// file, every line is a record on the topic in file order, the committed
// position is the file's size, and a second run loads nothing again.
func TestLoadFileIntoKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cluster := kafkatest.Start(t, kfake.SeedTopics(1, "events"))
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", strings.Join(cluster.Addrs(), ","))

	const n = 250
	var data bytes.Buffer
	for i := range n {
		fmt.Fprintf(&data, `{"id":%d,"name":"line %d"}`+"\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, data.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	logs, err := runLoader(ctx, t, path)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, `"msg":"file loaded"`) || !strings.Contains(logs, fmt.Sprintf(`"records":%d`, n)) {
		t.Fatalf("no \"file loaded\" line with %d records:\n%s", n, logs)
	}
	got := cluster.ReadAll(ctx, t, "events", n)
	if len(got) != n {
		t.Fatalf("%d records on the topic, want %d", len(got), n)
	}
	for i, r := range got {
		if want := fmt.Sprintf(`{"id":%d,"name":"line %d"}`, i, i); string(r.Value) != want {
			t.Fatalf("record %d is %q, want %q", i, r.Value, want)
		}
	}
	pos, err := os.ReadFile(path + ".pos")
	if err != nil {
		t.Fatalf("no committed position: %v", err)
	}
	if off, err := strconv.ParseInt(strings.TrimSpace(string(pos)), 10, 64); err != nil || off != int64(data.Len()) {
		t.Fatalf("committed position %q, want %d (the file's size)", pos, data.Len())
	}

	// A second run starts at the committed position: nothing is loaded twice.
	if logs, err = runLoader(ctx, t, path); err != nil {
		t.Fatalf("second Run: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, `"records":0`) {
		t.Fatalf("the second run loaded records again:\n%s", logs)
	}
}

// TestMissingFileFails: a missing input file stops the loader with an
// error naming it, instead of waiting for it.
func TestMissingFileFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cluster := kafkatest.Start(t)
	t.Setenv("KAFKA_BOOTSTRAP_SERVERS", strings.Join(cluster.Addrs(), ","))
	missing := filepath.Join(t.TempDir(), "absent.ndjson")
	logs, err := runLoader(ctx, t, missing)
	if err == nil || !strings.Contains(err.Error(), "absent.ndjson") {
		t.Fatalf("Run on a missing file: %v, want an error naming it\n%s", err, logs)
	}
}
