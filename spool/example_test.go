package spool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/spool"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	cfg := spool.Config{
		Dir:     dir,
		Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	}

	sp, err := spool.Open(ctx, cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range []string{"one", "two", "three"} {
		if _, err := sp.Append(ctx, []byte(p)); err != nil {
			fmt.Println(err)
			return
		}
	}
	entries, _ := sp.Peek(ctx, 2, 0)
	for _, e := range entries {
		fmt.Println(e.Seq, string(e.Payload))
	}
	_ = sp.Ack(entries[len(entries)-1].Seq) // "one" and "two" are done
	_ = sp.Close()

	// After a restart, what was not acknowledged is still there.
	sp, _ = spool.Open(ctx, cfg)
	defer sp.Close()
	entries, _ = sp.Peek(ctx, 10, 0)
	fmt.Println(sp.Len(), entries[0].Seq, string(entries[0].Payload))
	// Output:
	// 1 one
	// 2 two
	// 1 3 three
}

// A consumer that delivers records downstream, acknowledging each batch
// only once it was delivered and handing it out again when it was not.
func ExampleSpool_Peek() {
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	sp, err := spool.Open(ctx, spool.Config{
		Dir:     dir,
		Metrics: metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sp.Close()
	for i := range 5 {
		_, _ = sp.Append(ctx, []byte(fmt.Sprintf("record-%d", i)))
	}

	attempts := 0
	deliver := func(entries []spool.Entry) error {
		attempts++
		if attempts == 1 {
			return errors.New("downstream unavailable")
		}
		for _, e := range entries {
			fmt.Println("delivered", string(e.Payload))
		}
		return nil
	}
	for sp.Len() > 0 {
		entries, err := sp.Peek(ctx, 3, 1<<20)
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := deliver(entries); err != nil {
			sp.Rewind() // hand the same records out again
			continue
		}
		_ = sp.Ack(entries[len(entries)-1].Seq)
	}
	// Output:
	// delivered record-0
	// delivered record-1
	// delivered record-2
	// delivered record-3
	// delivered record-4
}

func ExampleSpool_Append_fullPolicy() {
	dir, _ := os.MkdirTemp("", "spool-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	sp, _ := spool.Open(ctx, spool.Config{
		Dir:        dir,
		MaxRecords: 2,
		FullPolicy: spool.Error,
		Metrics:    metrics.New(metrics.Config{NoRuntimeCollectors: true}),
		Logger:     slog.New(slog.DiscardHandler),
	})
	defer sp.Close()
	for i := range 3 {
		_, err := sp.Append(ctx, []byte("x"))
		var full *spool.FullError
		if errors.As(err, &full) {
			fmt.Println("append", i, "refused:", full.Reason)
		}
	}
	// Output:
	// append 2 refused: max_records
}
