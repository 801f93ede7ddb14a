// Command kafka-transform is a Kafka -> transform -> Kafka service: it
// consumes JSON events from the topic of section input, parses each block
// ahead of processing (the engine's pre-parsed path), renames the field
// "user" to "user_id", adds "processed_by", and produces the result to the
// topic of section output. A record that is not JSON, or not a JSON
// object, goes to the dead-letter queue (section dlq, on by default, file
// backend under dlq.file.path) with the reason, and its offset is
// committed like the others.
//
// Against a real Kafka, give the brokers in the environment:
//
//	KAFKA_BOOTSTRAP_SERVERS=kafka-0:9092 go run ./examples/kafka-transform
//
// or in a config file (go run ./examples/kafka-transform --config transform.yaml):
//
//	input:
//	  type: kafka
//	  kafka:
//	    brokers: [kafka-0:9092]
//	    group: kafka-transform
//	    topics: [events]
//	output:
//	  type: kafka
//	  kafka:
//	    brokers: [kafka-0:9092]
//	    producer:
//	      topic: events-enriched
//	dlq:
//	  file:
//	    path: /var/lib/kafka-transform/dlq
//
// Every key can also come from a KAFKA_TRANSFORM_* variable
// (KAFKA_TRANSFORM_OUTPUT__KAFKA__PRODUCER__TOPIC=enriched). The admin
// server serves /metrics and the probes on :9090; SIGTERM drains the block
// in flight, commits it and exits 0. go run ./examples/kafka-transform
// config-check prints the effective configuration, redacted.
package main

import (
	"context"
	"errors"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/transport"
)

// appName names the service, its consumer group and its environment prefix.
const appName = "kafka-transform"

func main() {
	keel.Main(newApp())
}

// newApp returns the service with its defaults: consume "events", produce
// "events-enriched" on localhost:9092, dead letters to files.
func newApp() keel.App {
	return keel.App{
		Name:       appName,
		Short:      "Kafka -> rename and add a field -> Kafka, with a dead-letter queue",
		Transports: []string{"input", "output"},
		Defaults: map[string]any{
			"input.type":                  keel.TransportKafka,
			"input.kafka.group":           appName,
			"input.kafka.topics":          []string{"events"},
			"input.kafka.role":            "consumer",
			"output.type":                 keel.TransportKafka,
			"output.kafka.role":           "producer",
			"output.kafka.producer.topic": "events-enriched",
			"dlq.enabled":                 true,
			"dlq.file.enabled":            true,
		},
		Run: serve,
	}
}

// serve runs the engine from input to output until the shutdown.
func serve(ctx context.Context, rt *keel.Runtime) error {
	in, err := rt.Receiver(ctx, "input")
	if err != nil {
		return err
	}
	out, err := rt.Sender(ctx, "output")
	if err != nil {
		return err
	}
	rt.MarkStarted()
	err = rt.Engine().RunParsed(ctx, in, transform, rt.Engine().SinkTo(out))
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// transform renames user to user_id and adds processed_by. Records that
// failed to parse were already routed by the engine; a value that parsed
// but is not an object becomes a dead letter here.
func transform(_ context.Context, b *engine.ParsedBatch) (transport.Batch, error) {
	out := transport.Batch{Records: make([]transport.Record, 0, b.Len()), Tokens: b.Tokens}
	for i, v := range b.Values {
		rec := b.Records[i]
		if !v.IsObject() {
			out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: rec, Reason: "not a JSON object"})
			continue
		}
		if user := v.Field(b.Intern("user")); user.Exists() {
			if err := v.Set(b.Intern("user_id"), user.Interface()); err != nil {
				out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: rec, Reason: "rename user: " + err.Error()})
				continue
			}
			v.Delete(b.Intern("user"))
		}
		if err := v.Set(b.Intern("processed_by"), appName); err != nil {
			out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: rec, Reason: "add processed_by: " + err.Error()})
			continue
		}
		payload, err := v.Bytes()
		if err != nil {
			out.DeadLetters = append(out.DeadLetters, transport.DeadLetter{Record: rec, Reason: "encode: " + err.Error()})
			continue
		}
		rec.Payload = payload
		out.Records = append(out.Records, rec)
	}
	return out, nil
}
