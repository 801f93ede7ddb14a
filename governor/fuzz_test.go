package governor_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/governor"
)

// Profile names come from configuration: any input either parses to a
// known profile or is rejected with an error naming the key.
func FuzzProfileUnmarshalText(f *testing.F) {
	for _, s := range []string{"", "throughput", "Balanced", "low-latency", "LOW LATENCY", "turbo", "\x00", "lowlatency", " low_latency "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p governor.Profile
		err := p.UnmarshalText([]byte(s))
		if err != nil {
			if !strings.Contains(err.Error(), "self_regulation.profile") {
				t.Fatalf("error %q does not name the key", err)
			}
			return
		}
		if !p.Valid() {
			t.Fatalf("%q parsed to invalid profile %q", s, p)
		}
	})
}

// Whatever the overrides (from configuration) and whatever the
// observations, the budget stays within [min_bytes, max_bytes], never 0,
// with a record cap of at least 1.
func FuzzBudgetSanitised(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), int64(0), 0, 0.0, 0.0, 0.0, int64(1), int64(1))
	f.Add(int64(-1), int64(-5), int64(-1), int64(-1), -3, math.NaN(), 2.0, 1.5, int64(5e6), int64(0))
	f.Add(int64(100<<20), int64(4<<20), int64(1<<20), int64(1), 1, 0.99, 0.01, 1.0, int64(0), int64(7))
	f.Add(int64(1), int64(1), int64(1), int64(math.MaxInt64), 1<<30, 1e-9, 0.999, 1e-9, int64(-1), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, start, minB, maxB, step int64, recordCap int, rho, md, alpha float64, proc, ingest int64) {
		b := governor.NewBudget(governor.ProfileBalanced, governor.BudgetConfig{
			StartBytes: start, MinBytes: minB, MaxBytes: maxB, StepBytes: step, RecordCap: recordCap,
			TargetRho: rho, DecreaseFactor: md, EMAAlpha: alpha,
		}, governor.WithMetrics(testRegistry()), governor.WithLogger(quietLogger()))
		env := b.Config()
		if env.MinBytes < 1 || env.MinBytes > env.MaxBytes || env.RecordCap < 1 || env.StepBytes < 1 ||
			!(env.TargetRho > 0 && env.TargetRho < 1) || !(env.DecreaseFactor > 0 && env.DecreaseFactor < 1) ||
			!(env.EMAAlpha > 0 && env.EMAAlpha <= 1) {
			t.Fatalf("unsanitised envelope %+v", env)
		}
		for i := 0; i < 64; i++ {
			if v := b.Bytes(); v < env.MinBytes || v > env.MaxBytes {
				t.Fatalf("budget %d outside [%d, %d]", v, env.MinBytes, env.MaxBytes)
			}
			p, in := time.Duration(proc), time.Duration(ingest)
			if i%3 == 1 {
				p, in = 0, in/2
			}
			b.Observe(start, p, in)
		}
	})
}
