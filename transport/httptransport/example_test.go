package httptransport_test

import (
	"context"
	"fmt"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/httptransport"
)

// A Sender posts a batch to a Receiver in commit mode: SendBatch returns
// only once the receiving side has committed the records.
func Example() {
	ctx := context.Background()
	in, err := httptransport.NewReceiver(httptransport.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer in.Close(ctx)
	out, err := httptransport.NewSender(httptransport.Config{URL: "http://" + in.Addr() + httptransport.DefaultPath})
	if err != nil {
		panic(err)
	}
	defer out.Close(ctx)

	sent := make(chan error, 1)
	go func() {
		sent <- out.SendBatch(ctx, []transport.Record{
			{Payload: []byte(`{"id":1}`), Format: codec.JSON},
			{Payload: []byte(`{"id":2}`), Format: codec.JSON},
		})
	}()
	b, err := in.Recv(ctx, transport.Limits{MaxRecords: 100})
	if err != nil {
		panic(err)
	}
	for i, r := range b.Records {
		fmt.Println(b.Tokens[i], string(r.Payload))
	}
	if err := in.Commit(ctx, b.Tokens); err != nil { // the client gets 200 now
		panic(err)
	}
	fmt.Println("sent:", <-sent)
	// Output:
	// http:1 {"id":1}
	// http:2 {"id":2}
	// sent: <nil>
}
