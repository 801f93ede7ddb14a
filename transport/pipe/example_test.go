package pipe_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/pipe"
)

// A filter in a shell pipeline: read lines, keep some, write them out.
// Input is a string here; by default it is standard input, and the Sender
// writes standard output.
func Example() {
	ctx := context.Background()
	in, err := pipe.NewReceiver(pipe.Config{
		Input: strings.NewReader("{\"level\":\"info\"}\n{\"level\":\"error\"}\n\n{\"level\":\"error\",\"n\":2}\n"),
	})
	if err != nil {
		panic(err)
	}
	defer in.Close(ctx)
	out, err := pipe.NewSender(pipe.Config{})
	if err != nil {
		panic(err)
	}
	defer out.Close(ctx)
	for {
		b, err := in.Recv(ctx, transport.Limits{MaxRecords: 100})
		if errors.Is(err, transport.ErrClosed) {
			break
		}
		if err != nil {
			panic(err)
		}
		kept := b.MapRecords(func(r transport.Record) []transport.Record {
			if strings.Contains(string(r.Payload), `"error"`) {
				return []transport.Record{r}
			}
			return nil
		})
		if err := out.SendBatch(ctx, kept.Records); err != nil {
			panic(err)
		}
	}
	// Output:
	// {"level":"error"}
	// {"level":"error","n":2}
}

// Tokens number the lines; Commit has nothing to do on a stream.
func ExampleReceiver_Recv() {
	ctx := context.Background()
	r, err := pipe.NewReceiver(pipe.Config{Input: strings.NewReader("a\nb\n")})
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx)
	b, err := r.Recv(ctx, transport.Limits{})
	if err != nil {
		panic(err)
	}
	fmt.Println(b.Tokens, r.Commit(ctx, b.Tokens))
	_, err = r.Recv(ctx, transport.Limits{})
	fmt.Println(errors.Is(err, transport.ErrClosed))
	// Output:
	// [pipe:1 pipe:2] <nil>
	// true
}
