package keel_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/keel-go/keel"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/httptransport"
)

// TestFactoryHTTPThroughEngineWithBrake: an http section builds a receiver
// whose clients get 200 only once the engine committed their records, and
// that the governor brakes by itself: under pressure new requests get 503
// with Retry-After, and 200 again once the pressure is gone.
func TestFactoryHTTPThroughEngineWithBrake(t *testing.T) {
	var pressure level
	addrs := make(chan string, 1)
	delivered := make(chan int, 16)
	overrides := map[string]any{
		"input.type": "http", "input.http.listen": "127.0.0.1:0",
		"output.type": "inmem", "output.inmem.buffer_size": 1000,
		"self_regulation.interval": "2ms",
	}
	ctx := testCtx(t)
	signals := make(chan os.Signal, 2)
	done := make(chan error, 1)
	go func() {
		done <- runWith(t, overrides, func(ctx context.Context, rt *keel.Runtime) error {
			rt.Governor().Pressure().AddSoft(governor.FuncSource("test", pressure.get), 1)
			in, err := rt.Receiver(ctx, "input")
			if err != nil {
				return err
			}
			hr, ok := keel.As[*httptransport.Receiver](in)
			if !ok {
				return errors.New("the http section did not build an *httptransport.Receiver")
			}
			out, err := rt.Sender(ctx, "output")
			if err != nil {
				return err
			}
			addrs <- hr.Addr()
			rt.MarkStarted()
			send := rt.Engine().SinkTo(out)
			return rt.Engine().Run(ctx, in, passThrough, func(ctx context.Context, b transport.Batch) error {
				if err := send(ctx, b); err != nil {
					return err
				}
				delivered <- len(b.Records)
				return nil
			})
		}, keel.WithSignals(signals))
	}()
	addr := wait(t, ctx, addrs, "the http receiver")
	post := func() (int, string) {
		resp, err := http.Post("http://"+addr+"/ingest", "application/x-ndjson", strings.NewReader("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	// Commit mode: the 200 comes after the engine delivered and committed.
	if code, _ := post(); code != http.StatusOK {
		t.Fatalf("POST: %d, want 200", code)
	}
	n := 0
	for n < 3 {
		n += wait(t, ctx, delivered, "the posted records at the sink")
	}

	// Pressure: the gate pauses the receiver, which answers 503.
	pressure.set(1)
	eventually(t, ctx, "503 under pressure", func() bool {
		code, retry := post()
		return code == http.StatusServiceUnavailable && retry == "1"
	})
	pressure.set(0)
	eventually(t, ctx, "200 once the pressure is gone", func() bool {
		code, _ := post()
		return code == http.StatusOK
	})
	signals <- syscall.SIGTERM
	if err := wait(t, ctx, done, "Run"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
