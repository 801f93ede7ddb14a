package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/file"
)

// Write records with a Sender, then read them back with a Receiver that
// stops at the end of the file, committing each batch.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keel-file-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cfg := file.Config{Path: filepath.Join(dir, "events.ndjson")}

	s, err := file.NewSender(cfg)
	if err != nil {
		panic(err)
	}
	err = s.SendBatch(ctx, []transport.Record{
		{Payload: []byte(`{"id":1}`)},
		{Payload: []byte(`{"id":2}`)},
		{Payload: []byte(`{"id":3}`)},
	})
	if err != nil {
		panic(err)
	}
	if err := s.Close(ctx); err != nil {
		panic(err)
	}

	cfg.StopAtEOF = true
	r, err := file.NewReceiver(cfg)
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx)
	for {
		b, err := r.Recv(ctx, transport.Limits{MaxRecords: 2})
		if errors.Is(err, transport.ErrClosed) {
			break
		}
		if err != nil {
			panic(err)
		}
		for i, rec := range b.Records {
			fmt.Println(string(rec.Payload), b.Tokens[i])
		}
		if err := r.Commit(ctx, b.Tokens); err != nil {
			panic(err)
		}
	}
	fmt.Println("committed offset:", r.Committed())
	// Output:
	// {"id":1} file:9
	// {"id":2} file:18
	// {"id":3} file:27
	// committed offset: 27
}

// A receiver restarted on the same file resumes after its last commit.
func ExampleNewReceiver() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keel-file-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cfg := file.Config{Path: filepath.Join(dir, "in.ndjson")}
	if err := os.WriteFile(cfg.Path, []byte("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), 0o644); err != nil {
		panic(err)
	}

	r, err := file.NewReceiver(cfg)
	if err != nil {
		panic(err)
	}
	b, err := r.Recv(ctx, transport.Limits{MaxRecords: 1})
	if err != nil {
		panic(err)
	}
	if err := r.Commit(ctx, b.Tokens); err != nil {
		panic(err)
	}
	_ = r.Close(ctx)

	r, err = file.NewReceiver(cfg) // a restart
	if err != nil {
		panic(err)
	}
	defer r.Close(ctx)
	b, err = r.Recv(ctx, transport.Limits{})
	if err != nil {
		panic(err)
	}
	for _, rec := range b.Records {
		fmt.Println(string(rec.Payload))
	}
	// Output:
	// {"n":2}
	// {"n":3}
}

// A payload that would not read back as one line is refused at its index.
func ExampleSender_SendBatch() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "keel-file-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := file.NewSender(file.Config{Path: filepath.Join(dir, "out.ndjson"), Sync: file.SyncNone})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)
	err = s.SendBatch(ctx, []transport.Record{
		{Payload: []byte(`{"ok":true}`)},
		{Payload: []byte("{\n\"pretty\": true\n}")},
	})
	var be *transport.BatchError
	if errors.As(err, &be) {
		fmt.Println("refused:", be.Indices(), errors.Is(err, file.ErrUnframable))
	}
	// Output:
	// refused: [1] true
}
