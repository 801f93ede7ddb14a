// Package inmem is a real in-process transport: a bounded queue that is
// both a transport.Receiver and a transport.Sender, with Kafka-like
// cumulative commits (the committed sequence is the highest committed
// token). It is the substrate for tests and demos, not a mock: Send
// reports backpressure when the queue is full, Recv honours limits and
// never loses a record on cancellation, and faults can be injected.
//
//	t := inmem.New(inmem.Config{Capacity: 1000})
//	_ = t.Inject(ctx, transport.Record{Payload: []byte(`{"a":1}`)})
//	b, _ := t.Recv(ctx, transport.Limits{MaxRecords: 100})
//	_ = t.Commit(ctx, b.Tokens)
package inmem
