package admin_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
)

func ExampleServer() {
	reg := health.New(health.Config{})
	srv, err := admin.New(admin.Config{Addr: "127.0.0.1:0"}, admin.Deps{
		Health:  reg,
		Metrics: metrics.New(metrics.Config{Namespace: "orders"}),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := srv.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())

	get := func(path string) {
		resp, err := http.Get("http://" + srv.Addr() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	get("/startupz")
	reg.MarkStarted()
	get("/startupz")
	get("/readyz")
	// Output:
	// /startupz 503 {"status":"starting"}
	// /startupz 200 {"status":"ok"}
	// /readyz 200 {"status":"ok","started":true,"draining":false,"health":"healthy"}
}
