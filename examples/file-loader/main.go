// Command file-loader loads an NDJSON file into Kafka: every line of the
// file of section input (type file, stop_at_eof on) is produced as one
// record to the topic of section output (type kafka), block by block
// through the engine, and the file position is committed after each block
// is acknowledged, in <path>.pos. When the file ends the loader exits 0; run
// again, it resumes from the committed position, so a file is loaded once.
//
// Against a real Kafka, give the brokers and the file in the environment:
//
//	KAFKA_BOOTSTRAP_SERVERS=kafka-0:9092 FILE_LOADER_INPUT__FILE__PATH=/data/events.ndjson \
//	  go run ./examples/file-loader
//
// or in a config file (go run ./examples/file-loader --config loader.yaml):
//
//	input:
//	  type: file
//	  file:
//	    path: /data/events.ndjson
//	    stop_at_eof: true
//	output:
//	  type: kafka
//	  kafka:
//	    brokers: [kafka-0:9092]
//	    producer:
//	      topic: events
//
// Lines are loaded as they are: nothing is parsed. A line longer than
// input.file.max_line_bytes is a dead letter: it stops the loader with an
// error, before that block is committed, unless the dead-letter queue is
// enabled (dlq.enabled: true), which then takes it.
package main

import (
	"context"
	"errors"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/transport"
)

// appName names the service and its environment prefix (FILE_LOADER_).
const appName = "file-loader"

func main() {
	keel.Main(newApp())
}

// newApp returns the loader with its defaults: events.ndjson in the working
// directory to the topic "events" on localhost:9092.
func newApp() keel.App {
	return keel.App{
		Name:       appName,
		Short:      "load an NDJSON file into a Kafka topic, then exit",
		Transports: []string{"input", "output"},
		Defaults: map[string]any{
			"input.type":                  keel.TransportFile,
			"input.file.path":             "events.ndjson",
			"input.file.stop_at_eof":      true,
			"output.type":                 keel.TransportKafka,
			"output.kafka.role":           "producer",
			"output.kafka.producer.topic": "events",
		},
		Run: load,
	}
}

// load runs the engine from the file to Kafka; it returns when the file
// ends or at the shutdown.
func load(ctx context.Context, rt *keel.Runtime) error {
	in, err := rt.Receiver(ctx, "input")
	if err != nil {
		return err
	}
	out, err := rt.Sender(ctx, "output")
	if err != nil {
		return err
	}
	rt.MarkStarted()
	var lines int
	count := func(_ context.Context, b transport.Batch) (transport.Batch, error) {
		lines += len(b.Records)
		return b, nil
	}
	err = rt.Engine().RunGoverned(ctx, in, count, rt.Engine().SinkTo(out))
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err == nil {
		rt.Logger().Info("file loaded", "records", lines)
	}
	return err
}
