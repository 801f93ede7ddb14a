package tiered

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/breaker"
	"github.com/keel-go/keel/spool"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	cfg := Config{
		SendTimeout: -1, Ordering: "fifo", DrainBatch: -1, DrainBytes: -1, MaxAttempts: -2,
		Backoff:   Backoff{Initial: time.Second, Max: time.Millisecond},
		RateLimit: math.NaN(), StallTimeout: -time.Second, CloseDrainTimeout: -time.Second,
		Spool:   spool.Config{MaxBytes: -5},
		Breaker: breaker.Config{FailureThreshold: -1},
	}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if !errors.Is(err, spool.ErrInvalidConfig) || !errors.Is(err, breaker.ErrInvalidConfig) {
		t.Fatalf("sub-section errors lost: %v", err)
	}
	for _, key := range []string{"tiered.send_timeout", "tiered.ordering", "tiered.drain_batch", "tiered.drain_bytes",
		"tiered.max_attempts", "tiered.backoff.max", "tiered.rate_limit", "tiered.stall_timeout", "tiered.close_drain_timeout",
		"tiered.spool.max_bytes", "tiered.breaker.failure_threshold"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
	n := cfg.normalized()
	if (Config{}).normalized().Ordering != OrderingStrict || n.Backoff.Max < n.Backoff.Initial {
		t.Fatal("normalized defaults")
	}
}

func TestConfigWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.SendTimeout != DefaultSendTimeout || c.Ordering != OrderingStrict || c.DrainBatch != DefaultDrainBatch ||
		c.DrainBytes != DefaultDrainBytes || c.MaxAttempts != DefaultMaxAttempts ||
		c.Backoff.Initial != DefaultBackoffInitial || c.Backoff.Max != DefaultBackoffMax ||
		c.StallTimeout != 30*time.Second || c.CloseDrainTimeout != 10*time.Second {
		t.Fatalf("sink defaults not applied: %+v", c)
	}
	if !reflect.DeepEqual(c.Spool, spool.Config{}.WithDefaults()) {
		t.Fatalf("spool defaults not applied: %+v", c.Spool)
	}
	if c.Breaker.FailureThreshold != breaker.DefaultFailureThreshold || c.Breaker.OpenTimeout != breaker.DefaultOpenTimeout {
		t.Fatalf("breaker defaults not applied: %+v", c.Breaker)
	}
	// Values that are set are kept, and the result passes Validate.
	set := Config{SendTimeout: 3 * time.Second, Ordering: OrderingInterleaved, Breaker: breaker.Config{FailureThreshold: 2}}
	got := set.WithDefaults()
	if got.SendTimeout != 3*time.Second || got.Ordering != OrderingInterleaved || got.Breaker.FailureThreshold != 2 {
		t.Fatalf("set values overwritten: %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}
