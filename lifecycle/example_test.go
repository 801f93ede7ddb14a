package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/metrics"
)

func ExampleManager() {
	reg := health.New(health.Config{})
	sigs := make(chan os.Signal, 1) // nil in production: SIGTERM and SIGINT from the OS
	m, err := lifecycle.New(lifecycle.Config{
		Signals:      sigs,
		PreStopDelay: -1, // none here; 5 s by default on Kubernetes
		OnForce:      func() { /* the runtime exits non-zero here */ },
		Metrics:      metrics.New(metrics.Config{}),
		Logger:       slog.New(slog.DiscardHandler),
	}, reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = m.OnShutdown("flush", func(ctx context.Context) error { fmt.Println("flush"); return nil })
	_ = m.OnShutdown("consumer", func(ctx context.Context) error { fmt.Println("close consumer"); return nil })
	m.Start(context.Background())
	reg.MarkStarted()

	sigs <- syscall.SIGTERM
	err = m.Wait()
	fmt.Println("ready:", reg.Ready(context.Background()), "forced:", errors.Is(err, lifecycle.ErrForced), "err:", err)
	fmt.Println("root context:", m.Context().Err())
	// Output:
	// close consumer
	// flush
	// ready: false forced: false err: <nil>
	// root context: context canceled
}
