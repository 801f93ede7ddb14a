package inmem_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/inmem"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func payloads(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf(`{"i":%d}`, i))
	}
	return out
}

func TestSendBackpressureWhenFull(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{Capacity: 2})
	for i := 0; i < 2; i++ {
		if err := q.Send(ctx, transport.Record{Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	err := q.Send(ctx, transport.Record{Payload: []byte("y")})
	if !errors.Is(err, transport.ErrBackpressure) || transport.Classify(err) != transport.Backpressure {
		t.Fatalf("full queue: %v", err)
	}
	q2 := inmem.New(inmem.Config{Capacity: 3})
	err = q2.SendBatch(ctx, make([]transport.Record, 5))
	var be *transport.BatchError
	if !errors.As(err, &be) || fmt.Sprint(be.Indices()) != "[3 4]" {
		t.Fatalf("batch: %v", err)
	}
	if q2.Len() != 3 {
		t.Fatalf("prefix must stay queued, len=%d", q2.Len())
	}
}

func TestRecvLimitsAndCumulativeCommit(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{Capacity: 100})
	if err := q.InjectPayloads(ctx, payloads(10)...); err != nil {
		t.Fatal(err)
	}
	b, err := q.Recv(ctx, transport.Limits{MaxRecords: 4})
	if err != nil || b.Len() != 4 || len(b.Tokens) != 4 {
		t.Fatalf("record cap: %d %v", b.Len(), err)
	}
	if b.Tokens[0].String() != "inmem:1" || b.Tokens[3].String() != "inmem:4" {
		t.Fatalf("tokens %v", b.Tokens)
	}
	// each payload is 7 bytes: a soft cap of 10 stops after the second record
	b2, _ := q.Recv(ctx, transport.Limits{MaxRecords: 100, MaxBytes: 10})
	if b2.Len() != 2 {
		t.Fatalf("byte cap: got %d records", b2.Len())
	}
	// floor of one record even when a single record exceeds the cap
	b3, _ := q.Recv(ctx, transport.Limits{MaxRecords: 100, MaxBytes: 1})
	if b3.Len() != 1 {
		t.Fatalf("floor: got %d", b3.Len())
	}
	if err := q.Commit(ctx, b2.Tokens); err != nil {
		t.Fatal(err)
	}
	if err := q.Commit(ctx, b.Tokens); err != nil { // older tokens never move it back
		t.Fatal(err)
	}
	if q.Committed() != 6 {
		t.Fatalf("committed = %d, want 6", q.Committed())
	}
	type foreign struct{ transport.Token }
	_ = q.Commit(ctx, []transport.Token{foreign{}})
	if q.Committed() != 6 {
		t.Fatal("a foreign token changed the committed sequence")
	}
}

func TestFailNextCommit(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{})
	_ = q.InjectPayloads(ctx, payloads(1)...)
	b, _ := q.Recv(ctx, transport.Limits{})
	q.FailNextCommit(errors.New("broker gone"))
	err := q.Commit(ctx, b.Tokens)
	if !errors.Is(err, transport.ErrCommit) || q.Committed() != 0 {
		t.Fatalf("injected commit failure: %v committed=%d", err, q.Committed())
	}
	if err := q.Commit(ctx, b.Tokens); err != nil || q.Committed() != 1 {
		t.Fatalf("second commit: %v", err)
	}
}

func TestCancelLosesNothing(t *testing.T) {
	q := inmem.New(inmem.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Recv(ctx, transport.Limits{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled recv on empty queue: %v", err)
	}
	// a Recv blocked waiting is cancelled; records injected afterwards are all delivered
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = q.Recv(ctx2, transport.Limits{})
	}()
	cancel2()
	<-done
	_ = q.InjectPayloads(context.Background(), payloads(3)...)
	b, err := q.Recv(context.Background(), transport.Limits{})
	if err != nil || b.Len() != 3 {
		t.Fatalf("after cancel: %d %v", b.Len(), err)
	}
}

func TestCloseInputEndsStreamAfterDrain(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{})
	_ = q.InjectPayloads(ctx, payloads(2)...)
	q.CloseInput()
	if err := q.Send(ctx, transport.Record{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
	b, err := q.Recv(ctx, transport.Limits{})
	if err != nil || b.Len() != 2 {
		t.Fatalf("drain: %d %v", b.Len(), err)
	}
	if _, err := q.Recv(ctx, transport.Limits{}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("end of stream: %v", err)
	}
	_ = q.Close(ctx)
	if q.Health(ctx) == nil {
		t.Fatal("closed transport reports healthy")
	}
}

func TestRecvTimeoutReturnsEmpty(t *testing.T) {
	q := inmem.New(inmem.Config{RecvTimeout: time.Millisecond})
	b, err := q.Recv(context.Background(), transport.Limits{})
	if err != nil || !b.IsEmpty() {
		t.Fatalf("timeout: %v %v", b, err)
	}
}

func TestConcurrentProducersSequencesFollowQueueOrder(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{Capacity: 10000})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = q.InjectPayloads(ctx, payloads(500)...)
		}()
	}
	wg.Wait()
	q.CloseInput()
	var last uint64
	total := 0
	for {
		b, err := q.Recv(ctx, transport.Limits{MaxRecords: 333})
		if errors.Is(err, transport.ErrClosed) {
			break
		}
		for _, tk := range b.Tokens {
			s := tk.(inmem.Token).Seq
			if s != last+1 {
				t.Fatalf("sequence gap: %d after %d", s, last)
			}
			last = s
		}
		total += b.Len()
	}
	if total != 2000 {
		t.Fatalf("received %d, want 2000", total)
	}
}

func TestQueueFill(t *testing.T) {
	ctx := context.Background()
	q := inmem.New(inmem.Config{Capacity: 4})
	if got := q.QueueFill(); got != 0 {
		t.Fatalf("empty queue: fill %v, want 0", got)
	}
	if err := q.InjectPayloads(ctx, payloads(2)...); err != nil {
		t.Fatal(err)
	}
	if got := q.QueueFill(); got != 0.5 {
		t.Fatalf("2 of 4 queued: fill %v, want 0.5", got)
	}
	if err := q.InjectPayloads(ctx, payloads(2)...); err != nil {
		t.Fatal(err)
	}
	if got := q.QueueFill(); got != 1 {
		t.Fatalf("full queue: fill %v, want 1", got)
	}
	if _, err := q.Recv(ctx, transport.Limits{MaxRecords: 3}); err != nil {
		t.Fatal(err)
	}
	if got := q.QueueFill(); got != 0.25 {
		t.Fatalf("1 of 4 queued after a receive: fill %v, want 0.25", got)
	}
	// The default capacity is the denominator of a zero Config.
	d := inmem.New(inmem.Config{})
	if err := d.InjectPayloads(ctx, payloads(10)...); err != nil {
		t.Fatal(err)
	}
	if got, want := d.QueueFill(), 10.0/inmem.DefaultCapacity; got != want {
		t.Fatalf("10 queued at the default capacity: fill %v, want %v", got, want)
	}
	// A closed transport discards its records: it reports an empty queue.
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := q.QueueFill(); got != 0 {
		t.Fatalf("closed queue: fill %v, want 0", got)
	}
}
