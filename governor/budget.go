package governor

import (
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Budget is the AIMD byte budget: the byte cap of each governed receive
// and the size of its sub-blocks, learnt from what each block cost. It
// satisfies the batch engine's ByteBudget (Bytes, RecordCap, Observe).
//
// Each Observe(bytes, process, ingest) updates two exponential moving
// averages, in seconds, with alpha = ema_alpha (default 0.3); the first
// observation seeds both:
//
//	ema_p = alpha × process + (1 − alpha) × ema_p
//	ema_i = alpha × ingest  + (1 − alpha) × ema_i
//	rho   = ema_p / ema_i    (the share of wall time spent processing)
//
// and then moves the budget once:
//
//  1. pressure (the pressure signal given with WithPressureSignal is true;
//     a Governor's is true when its hard sources alone hold or held the
//     pause_at/resume_at latch: at a gate evaluation since the previous
//     Observe, or now, so pressure seen while a block was in flight counts
//     even though the block released its memory before Observe; soft
//     sources never force it): budget = max(floor(budget ×
//     decrease_factor), min_bytes), whatever rho says;
//  2. behind (rho > target_rho, default 0.7; or ema_i = 0 while
//     ema_p > 0, blocks arriving back to back) while memory is at risk:
//     the same decrease. Memory is at risk when no risk signal was given
//     (WithMemoryRisk), or when the signal is true; a Governor's is true
//     when its hard level, at a gate evaluation since the previous
//     Observe or now, is at or above self_regulation.resume_at (0.65);
//  3. otherwise (slack, both averages 0, or behind while memory is not at
//     risk) the increase: budget = min(budget + step_bytes, max_bytes).
//
// Behind at low memory pressure grows the budget, unlike the reference
// design, where every behind block shrinks it. The receive interval the
// engine reports runs from the end of one receive to the end of the next,
// so it holds the previous block's processing: under a backlog every
// receive returns at once, rho is close to 1 whatever the block size, and
// the reference rule walks the budget to min_bytes. Smaller blocks do not
// help a pipeline catch up (each block has a fixed cost), they only hold
// less memory, so keel shrinks on behind only when memory is at risk and
// otherwise lets the budget climb back to the size that processes a
// backlog cheapest. Hard pressure still forces the decrease (rule 1), and
// the block ceiling (see BlockCeiling) bounds every block whatever the
// budget. A budget built alone, without WithMemoryRisk, follows the
// reference rule.
//
// The budget is never below min_bytes, which is at least 1, and never
// above max_bytes. Decreases are multiplicative and increases linear, so
// recovery from the floor is a gentle climb rather than a jump.
//
// Bytes and RecordCap are single atomic loads; Observe, called once per
// block, takes one uncontended mutex. All methods are safe for concurrent
// use. A nil *Budget imposes no limit: Bytes returns math.MaxInt64,
// RecordCap 0 and Observe does nothing.
type Budget struct {
	bytes     atomic.Int64
	env       BudgetConfig // sanitised, every field set
	ceiling   int64        // the block ceiling applied to env; 0 = none
	pressured func() bool
	atRisk    func() bool

	mu          sync.Mutex
	seeded      bool
	emaP, emaI  float64
	obs, incs   uint64
	decBehind   uint64
	decPressure uint64
	behindSafe  uint64

	gauge, block             prometheus.Gauge
	behindCount, pressureCnt prometheus.Counter
}

// BudgetStats is a budget's state.
type BudgetStats struct {
	// Bytes is the current budget.
	Bytes int64 `json:"bytes"`
	// ProcessEMA is the moving average of the block process time, seconds.
	ProcessEMA float64 `json:"process_ema_seconds"`
	// IngestEMA is the moving average of the receive interval, seconds.
	IngestEMA float64 `json:"ingest_ema_seconds"`
	// Rho is ProcessEMA / IngestEMA: 0 when both are 0, +Inf when only
	// IngestEMA is.
	Rho float64 `json:"-"`
	// Observations counts Observe calls.
	Observations uint64 `json:"observations"`
	// Increases counts additive increases.
	Increases uint64 `json:"increases"`
	// DecreasesBehind counts decreases because the pipeline was behind.
	DecreasesBehind uint64 `json:"decreases_behind"`
	// DecreasesPressure counts decreases forced by hard pressure.
	DecreasesPressure uint64 `json:"decreases_pressure"`
	// BehindNotAtRisk counts observations that found the pipeline behind
	// while memory was not at risk (WithMemoryRisk false): each grew the
	// budget and is counted in Increases too.
	BehindNotAtRisk uint64 `json:"behind_not_at_risk"`
}

// NewBudget returns a budget with the envelope of profile p, overridden by
// the non-zero fields of over. It never fails: an unknown profile gives
// the default profile, and each bad override (negative, NaN, out of range,
// min_bytes above max_bytes, start_bytes outside [min_bytes, max_bytes])
// is replaced by the profile's value (or clamped) with a warning that
// names the key, such as self_regulation.budget.max_bytes. With
// WithBlockCeiling, start_bytes, min_bytes and max_bytes are then capped
// at the ceiling, with a warning for each override the cap lowers. It
// takes WithMetrics, WithLogger, WithPressureSignal, WithMemoryRisk and
// WithBlockCeiling.
func NewBudget(p Profile, over BudgetConfig, opts ...Option) *Budget {
	o := collect(opts)
	env, warnings := sanitizeBudget(p, over, o.ceiling)
	log := o.logger()
	for _, w := range warnings {
		log.Warn("governor: "+w.msg, "key", w.key)
	}
	m := newBudgetInstruments(o.registry())
	b := &Budget{
		env: env, ceiling: max(o.ceiling, 0), pressured: o.pressured, atRisk: o.atRisk,
		gauge: m.bytes, block: m.block,
		behindCount: m.decreases.With("behind"), pressureCnt: m.decreases.With("pressure"),
	}
	b.bytes.Store(env.StartBytes)
	b.gauge.Set(float64(env.StartBytes))
	return b
}

type budgetWarning struct{ key, msg string }

// sanitizeBudget merges over into the envelope of p, repairs every bad
// value and caps min and max (and so start) at ceiling when ceiling > 0.
// The result has every field set and min <= start <= max.
func sanitizeBudget(p Profile, over BudgetConfig, ceiling int64) (BudgetConfig, []budgetWarning) {
	var warns []budgetWarning
	warn := func(key, format string, args ...any) {
		k := Section + "." + key
		warns = append(warns, budgetWarning{key: k, msg: k + " " + fmt.Sprintf(format, args...)})
	}
	if !p.Valid() {
		warn("profile", "is %q, not a profile; using %s", truncate(string(p), 64), DefaultProfile)
		p = DefaultProfile
	}
	prof := p.Budget()
	env := prof
	ints := []struct {
		key  string
		v    int64
		dst  *int64
		what string
	}{
		{"budget.start_bytes", over.StartBytes, &env.StartBytes, "bytes"},
		{"budget.min_bytes", over.MinBytes, &env.MinBytes, "bytes"},
		{"budget.max_bytes", over.MaxBytes, &env.MaxBytes, "bytes"},
		{"budget.step_bytes", over.StepBytes, &env.StepBytes, "bytes"},
	}
	for _, f := range ints {
		switch {
		case f.v < 0:
			warn(f.key, "must be >= 1, got %d; using the %s profile's %d %s", f.v, p, *f.dst, f.what)
		case f.v > 0:
			*f.dst = f.v
		}
	}
	switch {
	case over.RecordCap < 0:
		warn("budget.record_cap", "must be >= 1, got %d; using the %s profile's %d records", over.RecordCap, p, env.RecordCap)
	case over.RecordCap > 0:
		env.RecordCap = over.RecordCap
	}
	floats := []struct {
		key      string
		v        float64
		dst      *float64
		rng      string
		inclOne  bool
		fallback float64
	}{
		{"budget.target_rho", over.TargetRho, &env.TargetRho, "(0, 1)", false, DefaultTargetRho},
		{"budget.decrease_factor", over.DecreaseFactor, &env.DecreaseFactor, "(0, 1)", false, DefaultDecreaseFactor},
		{"budget.ema_alpha", over.EMAAlpha, &env.EMAAlpha, "(0, 1]", true, DefaultEMAAlpha},
	}
	for _, f := range floats {
		if f.v == 0 {
			continue
		}
		ok := !math.IsNaN(f.v) && f.v > 0 && (f.v < 1 || (f.inclOne && f.v == 1))
		if !ok {
			warn(f.key, "must be in %s, got %s; using %s", f.rng, fmtFloat(f.v), fmtFloat(f.fallback))
			continue
		}
		*f.dst = f.v
	}
	if ceiling > 0 {
		for _, f := range []struct {
			key string
			v   int64
			dst *int64
		}{
			{"budget.max_bytes", over.MaxBytes, &env.MaxBytes},
			{"budget.min_bytes", over.MinBytes, &env.MinBytes},
		} {
			if *f.dst <= ceiling {
				continue
			}
			if f.v > 0 {
				warn(f.key, "(%d) is above the block ceiling (%d bytes: the memory guard's limit times %s.max_block_fraction); using %d: "+
					"raise max_block_fraction if the process step holds little more memory than its input",
					f.v, ceiling, Section, ceiling)
			}
			*f.dst = ceiling
		}
	}
	if env.MinBytes > env.MaxBytes {
		repaired := min(prof.MinBytes, env.MaxBytes)
		if over.MinBytes > 0 {
			warn("budget.min_bytes", "(%d) is above %s.budget.max_bytes (%d); using %d: lower min_bytes or raise max_bytes",
				env.MinBytes, Section, env.MaxBytes, repaired)
		} else {
			warn("budget.min_bytes", "of the %s profile (%d) is above %s.budget.max_bytes (%d); using %d: set min_bytes explicitly",
				p, env.MinBytes, Section, env.MaxBytes, repaired)
		}
		env.MinBytes = repaired
	}
	if env.StartBytes < env.MinBytes || env.StartBytes > env.MaxBytes {
		clamped := min(max(env.StartBytes, env.MinBytes), env.MaxBytes)
		if over.StartBytes > 0 {
			why := ""
			if ceiling > 0 && env.MaxBytes == ceiling && env.StartBytes > ceiling {
				why = " (max_bytes is the block ceiling: the memory guard's limit times " + Section + ".max_block_fraction)"
			}
			warn("budget.start_bytes", "(%d) is outside [min_bytes, max_bytes] = [%d, %d]%s; using %d",
				env.StartBytes, env.MinBytes, env.MaxBytes, why, clamped)
		}
		env.StartBytes = clamped
	}
	return env, warns
}

// BlockCeiling returns the largest budget, in payload bytes, that a
// memory limit of limit bytes allows: floor(limit × fraction), at least 1;
// 0, no ceiling, when limit <= 0. A fraction outside (0, 1], or NaN,
// counts as DefaultMaxBlockFraction. New passes the memory guard's limit
// and self_regulation.max_block_fraction, and caps the budget's start,
// floor and ceiling at the result (WithBlockCeiling).
//
// Why 1/16. A governed receive holds at most the budget b plus one record,
// and the engine processes it one sub-block of at most b at a time, so a
// process step that holds X times its input until the sub-block is sunk
// peaks at about (1 + X) × b of live memory. The memory guard only
// accounts the b bytes of the sub-block in flight, so it cannot see the
// expansion: the ceiling has to keep it in memory by construction. With C
// the container limit, the guard's limit L = 0.8 × C and the Go memory
// limit G = 0.9 × C (package memory), and X = 10:
//
//	b <= L/16                      block ceiling
//	(1 + 10) × L/16 = 0.6875 × L   peak live memory of the pipeline
//	                = 0.55 × C     under G = 0.9 × C by 0.35 × C
//
// The 0.35 × C left under G holds the garbage of the previous block until
// the collector frees it (the Go memory limit makes it run before the heap
// reaches G), the runtime's own memory and the rest of the service. In a
// 128 MiB container: L = 102.4 MiB, b <= 6.4 MiB, a peak of 70.4 MiB; in
// a 1 GiB one: L = 819.2 MiB, b <= 51.2 MiB (the throughput profile's
// 128 MiB ceiling is lowered, its 16 MiB start is not).
func BlockCeiling(limit int64, fraction float64) int64 {
	if limit <= 0 {
		return 0
	}
	if math.IsNaN(fraction) || fraction <= 0 || fraction > 1 {
		fraction = DefaultMaxBlockFraction
	}
	v := math.Floor(float64(limit) * fraction)
	if v >= float64(limit) { // fraction 1, or rounding near math.MaxInt64
		return limit
	}
	return max(int64(v), 1)
}

// Ceiling returns the block ceiling the budget was built under
// (WithBlockCeiling): start_bytes, min_bytes and max_bytes are at most
// this. 0 means none.
func (b *Budget) Ceiling() int64 {
	if b == nil {
		return 0
	}
	return b.ceiling
}

// Bytes returns the current budget, always in [min_bytes, max_bytes].
func (b *Budget) Bytes() int64 {
	if b == nil {
		return math.MaxInt64
	}
	return b.bytes.Load()
}

// RecordCap returns the most records one receive may return (record_cap,
// at least 1).
func (b *Budget) RecordCap() int {
	if b == nil {
		return 0
	}
	return b.env.RecordCap
}

// Config returns the effective envelope: the profile with the overrides,
// sanitised.
func (b *Budget) Config() BudgetConfig {
	if b == nil {
		return BudgetConfig{}
	}
	return b.env
}

// Observe reports one block: its payload bytes, its process time (from the
// start of its processing to its commit) and the time since the previous
// receive returned (0 for the first). A receive that returned nothing is
// reported with zero bytes and zero process time, which lets a quiet
// pipeline regrow its budget. Negative durations count as 0.
func (b *Budget) Observe(bytes int64, processTime, ingestInterval time.Duration) {
	if b == nil {
		return
	}
	// Both signals are read at every Observe: each consumes what it saw
	// since the previous one.
	pressured := b.pressured != nil && b.pressured()
	atRisk := b.atRisk == nil || b.atRisk()
	ps, is := seconds(processTime), seconds(ingestInterval)

	b.mu.Lock()
	if !b.seeded {
		b.emaP, b.emaI, b.seeded = ps, is, true
	} else {
		a := b.env.EMAAlpha
		b.emaP = a*ps + (1-a)*b.emaP
		b.emaI = a*is + (1-a)*b.emaI
	}
	cur := b.bytes.Load()
	var next int64
	var reason prometheus.Counter
	switch {
	case pressured:
		next, reason = b.decrease(cur), b.pressureCnt
		b.decPressure++
	case b.behind():
		if atRisk {
			next, reason = b.decrease(cur), b.behindCount
			b.decBehind++
			break
		}
		b.behindSafe++
		next = b.increase(cur)
		b.incs++
	default:
		next = b.increase(cur)
		b.incs++
	}
	b.bytes.Store(next)
	b.obs++
	b.mu.Unlock()

	b.gauge.Set(float64(next))
	b.block.Set(float64(max(bytes, 0)))
	if reason != nil {
		reason.Inc()
	}
}

// behind reports rho > target_rho, or blocks back to back with work.
// Called with mu held.
func (b *Budget) behind() bool {
	if b.emaI <= 0 {
		return b.emaP > 0
	}
	return b.emaP/b.emaI > b.env.TargetRho
}

func (b *Budget) decrease(cur int64) int64 {
	return max(int64(float64(cur)*b.env.DecreaseFactor), b.env.MinBytes)
}

func (b *Budget) increase(cur int64) int64 {
	if cur > b.env.MaxBytes-b.env.StepBytes {
		return b.env.MaxBytes
	}
	return max(cur+b.env.StepBytes, b.env.MinBytes)
}

// Stats returns the budget's state.
func (b *Budget) Stats() BudgetStats {
	if b == nil {
		return BudgetStats{Bytes: math.MaxInt64}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	s := BudgetStats{
		Bytes: b.bytes.Load(), ProcessEMA: b.emaP, IngestEMA: b.emaI, Observations: b.obs,
		Increases: b.incs, DecreasesBehind: b.decBehind, DecreasesPressure: b.decPressure, BehindNotAtRisk: b.behindSafe,
	}
	switch {
	case b.emaI > 0:
		s.Rho = b.emaP / b.emaI
	case b.emaP > 0:
		s.Rho = math.Inf(1)
	}
	return s
}

// LogValue describes the envelope in one structured log value.
func (c BudgetConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("start_bytes", c.StartBytes), slog.Int64("min_bytes", c.MinBytes),
		slog.Int64("max_bytes", c.MaxBytes), slog.Int64("step_bytes", c.StepBytes),
		slog.Int("record_cap", c.RecordCap), slog.Float64("target_rho", c.TargetRho),
		slog.Float64("decrease_factor", c.DecreaseFactor), slog.Float64("ema_alpha", c.EMAAlpha),
	)
}

func seconds(d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return d.Seconds()
}
