package kafka

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func soak(t *testing.T) {
	if os.Getenv("KEEL_SOAK") != "1" {
		t.Skip("soak test: set KEEL_SOAK=1 to run it")
	}
}

// Members keep joining and leaving while records flow, and the broker
// restarts twice: nothing is lost and everything is committed in the end.
func TestSoakChurnAndRestarts(t *testing.T) {
	soak(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startCluster(t, kfake.SeedTopics(8, "soak"), kfake.DataDir(t.TempDir()))
	cfg := testConfig(t, c, "soakg", "soak")
	cfg.Consumer.RevokeWait = 500 * time.Millisecond
	col := newCollector()

	pcfg := cfg
	pcfg.Producer.Topic = "soak"
	prod := newTestProducer(t, pcfg)
	const total, batch = 40000, 200
	prodDone := make(chan error, 1)
	go func() {
		for i := 0; i < total; i += batch {
			recs := numbered(fmt.Sprintf("r%06d-", i), batch)
			for {
				err := prod.SendBatch(ctx, recs)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					prodDone <- err
					return
				}
			}
		}
		prodDone <- nil
	}()

	var mu sync.Mutex
	stops := map[int]func(){}
	start := func(i int) {
		_, stop := startMember(t, cfg, col, fmt.Sprint("m", i), 100)
		mu.Lock()
		stops[i] = stop
		mu.Unlock()
	}
	stop := func(i int) {
		mu.Lock()
		s := stops[i]
		delete(stops, i)
		mu.Unlock()
		s()
	}
	for i := 0; i < 3; i++ {
		start(i)
	}
	for round := 0; round < 12; round++ {
		d, _, _ := col.stats()
		eventually(ctx, t, "progress", func() bool { n, _, _ := col.stats(); return n > d || n == total })
		stop(round)
		start(round + 3)
		if round == 4 || round == 8 {
			c.Restart(t)
		}
	}
	if err := <-prodDone; err != nil {
		t.Fatalf("producer: %v", err)
	}
	eventually(ctx, t, "every record", func() bool { d, _, _ := col.stats(); return d == total })
	adm, err := NewAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	eventually(ctx, t, "everything committed", func() bool {
		lag, err := adm.ConsumerLag(ctx, "soakg", "soak")
		if err != nil {
			return false
		}
		var sum int64
		for _, l := range lag["soak"] {
			sum += l
		}
		return sum == 0
	})
	mu.Lock()
	for _, s := range stops {
		s()
	}
	mu.Unlock()
	d, n, by := col.stats()
	t.Logf("distinct %d, delivered %d, duplicates %d, per member %v", d, n, n-d, by)
}
