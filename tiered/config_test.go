package tiered

import (
	"errors"
	"math"
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
		RateLimit: math.NaN(),
		Spool:     spool.Config{MaxBytes: -5},
		Breaker:   breaker.Config{FailureThreshold: -1},
	}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	if !errors.Is(err, spool.ErrInvalidConfig) || !errors.Is(err, breaker.ErrInvalidConfig) {
		t.Fatalf("sub-section errors lost: %v", err)
	}
	for _, key := range []string{"tiered.send_timeout", "tiered.ordering", "tiered.drain_batch", "tiered.drain_bytes",
		"tiered.max_attempts", "tiered.backoff.max", "tiered.rate_limit", "tiered.spool.max_bytes", "tiered.breaker.failure_threshold"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
	n := cfg.normalized()
	if (Config{}).normalized().Ordering != OrderingStrict || n.Backoff.Max < n.Backoff.Initial {
		t.Fatal("normalized defaults")
	}
}
