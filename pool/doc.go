// Package pool runs work on a bounded, resizable set of workers: an ordered
// parallel Map for CPU work such as parsing a block of records, and Go and
// FanOut for calls that wait (I/O), with a per-item timeout.
//
// Every call that shares a Pool shares one concurrency target: the number
// of items that may run at once. The target moves at run time between
// worker_pool.min_workers and worker_pool.max_workers with SetTarget, which
// is the lever a scaler pulls when CPU or memory pressure changes. Raising
// it lets waiting work start at once; lowering it never interrupts an item,
// but no item starts while more slots are busy than the new target allows.
//
// Start with the defaults (a target of GOMAXPROCS, which follows the
// container's CPU limit):
//
//	p, err := pool.New(pool.Config{})
//	if err != nil {
//		return err // names the bad worker_pool key
//	}
//	defer p.Close()
//
//	parsed, errs := pool.Map(ctx, p, payloads, func(ctx context.Context, i int, b []byte) (Event, error) {
//		return parse(b)
//	})
//	// parsed[i] belongs to payloads[i]; errs is nil when all succeeded,
//	// else errs[i] is item i's error (a *PanicError if it panicked).
//
// Map is built for many cheap items: small calls run on the caller's
// goroutine, larger ones are split into chunks of consecutive items claimed
// by at most target workers, with the caller as one of them, so the cost per
// item is a few nanoseconds (see BENCHMARKS.md). FanOut streams a Result per
// item as it completes; Go returns a Future. Both block for a free slot, so
// the target is also their back-pressure.
//
// A panic in an item is recovered on the goroutine that ran it and returned
// as that item's error; the other items and the pool carry on. Close (or
// Shutdown with a deadline) refuses new work with ErrClosed and waits for
// the accepted work.
//
// # Adaptive scaling
//
// A Scaler moves the target with the load. Every worker_pool.scale_interval
// (5 s) it measures the process's own CPU utilisation (its CPU time over the
// wall time, over the CPUs it may use: the cgroup CPU quota, else
// GOMAXPROCS; never the host's load) and the memory pressure (a
// MemoryPressure such as *memory.Guard; 0 when none is wired), then applies
// Decide:
//
//   - memory pressure above memory_pressure_cap (0.80, strictly): min_workers;
//   - CPU below grow_below (0.60): +2;
//   - CPU up to and including shrink_above (0.85): unchanged;
//   - CPU up to and including emergency_above (0.95): −1;
//   - CPU above emergency_above: −2;
//
// clamped to [min_workers, max_workers]. Without a CPU reading the target
// holds. Wire it at start-up:
//
//	s, err := pool.NewScaler(p, pool.WithMemoryPressure(guard))
//	if err != nil {
//		return err
//	}
//	go s.Run(ctx) // returns nil when ctx ends
//
// worker_pool.scaling_enabled: false makes Run return at once and leaves the
// target where initial_workers put it. Tick runs one step by hand.
//
// # Configuration and metrics
//
// Configuration is the worker_pool section (see Config); every field's zero
// value means its default, and New rejects a bad section with an error that
// names the key. Metrics, labelled pool=<name>: keel_pool_target_workers,
// keel_pool_active_workers, keel_pool_min_workers, keel_pool_max_workers,
// keel_pool_saturation_ratio (target / max_workers),
// keel_pool_items_total, keel_pool_item_errors_total, keel_pool_panics_total,
// keel_pool_timeouts_total and keel_pool_item_duration_seconds (sampled in
// Map: one item per chunk); with a Scaler also
// keel_pool_cpu_utilisation_ratio, keel_pool_memory_utilisation_ratio and
// keel_pool_scale_events_total{direction} (up, down, emergency_down,
// memory_cap; counted only when the target moved).
package pool
