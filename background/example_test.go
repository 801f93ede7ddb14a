package background_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keel-go/keel/background"
	"github.com/keel-go/keel/metrics"
)

// lineDrain collects lines; a real drain would write a file or a socket.
type lineDrain struct{ out []string }

func (d *lineDrain) WriteBatch(_ context.Context, items []string) error {
	d.out = append(d.out, strings.Join(items, ","))
	return nil
}
func (d *lineDrain) Flush(context.Context) error { return nil }
func (d *lineDrain) Close(context.Context) error { return nil }

func ExampleNew() {
	ctx := context.Background()
	drain := &lineDrain{}
	sink, err := background.New[string](background.Config{
		Name: "audit", BatchSize: 2,
		Metrics: metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true}),
	}, drain)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = sink.Push(ctx, "a", "b", "c")
	if err := sink.Flush(ctx); err != nil { // a, b, c are written and durable
		fmt.Println(err)
	}
	_ = sink.Close(ctx)
	fmt.Println(drain.out)
	// Output: [a,b c]
}

func ExamplePeriodic() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ticks := 0
	w, err := background.Periodic{
		Name: "cleanup", Interval: time.Millisecond, Jitter: 0.1,
		Metrics: metrics.New(metrics.Config{Namespace: "example", NoRuntimeCollectors: true}),
		OnStop:  func() { close(done) },
	}.Start(ctx, func(context.Context) error {
		ticks++
		if ticks == 3 {
			cancel()
		}
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	<-done
	w.Stop()
	fmt.Println("ticks:", ticks)
	// Output: ticks: 3
}
