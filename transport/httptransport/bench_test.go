package httptransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-go/keel/transport"
)

// benchRecords is the number of NDJSON records in one benchmark request.
const benchRecords = 100

func benchBody() []byte {
	var b bytes.Buffer
	for i := range benchRecords {
		fmt.Fprintf(&b, `{"id":%d,"name":"record-%d","ok":true,"tags":["a","b","c"]}`+"\n", i, i)
	}
	return b.Bytes()
}

// BenchmarkRecvNDJSON posts NDJSON requests of 100 records from parallel
// clients over loopback into a Receiver drained by one Recv loop (which
// commits, in commit mode), against a bare net/http handler that only
// reads the body (the baseline). An iteration is one request; records/s
// counts records taken by Recv (for the baseline, records posted).
func BenchmarkRecvNDJSON(b *testing.B) {
	body := benchBody()
	for _, mode := range []AckMode{AckEnqueue, AckCommit} {
		b.Run("receiver_"+string(mode), func(b *testing.B) {
			cfg := testConfig()
			cfg.AckMode = mode
			cfg.QueueRecords = 1 << 20
			r, err := NewReceiver(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			var taken atomic.Int64
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					batch, err := r.Recv(ctx, transport.Limits{MaxRecords: 1000})
					if err != nil {
						return
					}
					taken.Add(int64(len(batch.Records)))
					if err := r.Commit(ctx, batch.Tokens); err != nil {
						return
					}
				}
			}()
			runClients(b, r.url(), body)
			for taken.Load() < int64(b.N)*benchRecords {
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportMetric(float64(taken.Load())/b.Elapsed().Seconds(), "records/s")
			cancel()
			<-done
		})
	}
	b.Run("baseline_net_http", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		})}
		served := make(chan struct{})
		go func() { defer close(served); _ = srv.Serve(ln) }()
		runClients(b, "http://"+ln.Addr().String()+"/ingest", body)
		b.ReportMetric(float64(b.N)*benchRecords/b.Elapsed().Seconds(), "records/s")
		_ = srv.Shutdown(context.Background())
		<-served
	})
}

// runClients posts body b.N times from parallel clients and fails on any
// answer but 200.
func runClients(b *testing.B, url string, body []byte) {
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Post(url, "application/x-ndjson", bytes.NewReader(body))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
