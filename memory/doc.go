// Package memory is the memory guard: it accounts the bytes a service
// holds in flight against a limit derived from the container, publishes
// the pressure, and gives the Go runtime a soft memory limit just above
// the guard's.
//
// The guard is a guard, not an allocator: it never frees, never kills and
// never blocks. TryReserve says no when bytes would not fit, and
// UnderPressure says "slow down"; callers decide what to do. Brake the
// intake (pause the Kafka consumer, answer 503), never the drain: the
// drain is what frees memory.
//
// # Start
//
//	g, err := memory.New(cfg)                 // cfg: the "memory" section; the zero value works
//	if err != nil { return err }              // names the bad key and the fix
//	g.ApplyGoMemoryLimit()                    // explicit: the Go runtime memory limit from the cgroup
//	_ = g.Mount(adminServer)                  // GET /memory/pressure
//
//	release, ok := g.TryLease(int64(len(payload)))
//	if !ok { return errBackpressure }         // over the limit: refuse, retry later
//	defer release()
//
// The batch engine takes the guard as its MemoryAccountant (Add and
// Release); the governor samples PressureRatio and Hard.
//
// # The limits and their arithmetic
//
// Three numbers matter, from the top down:
//
//  1. The container limit C: cgroup v2 memory.max capped by memory.high,
//     else cgroup v1 memory.limit_in_bytes ("max", and v1's
//     9223372036854771712, mean no limit), else the system memory
//     (MemTotal of /proc/meminfo). Read through platform.Detector.
//  2. The Go runtime memory limit G = C × go_memory_limit_fraction
//     (default 0.90), set by ApplyGoMemoryLimit with debug.SetMemoryLimit
//     when GOMEMLIMIT is absent and C comes from a cgroup. Go has a garbage
//     collector: the heap holds garbage until the next cycle, and near G the
//     collector runs more often, trading CPU for memory, so the process
//     stays under C instead of being OOM-killed. G sits under C because the
//     runtime's limit is soft (it can be overshot briefly) and because the
//     cgroup also charges memory the Go runtime does not count.
//  3. The guard's limit L = C × headroom_fraction (default 0.80), with
//     headroom_fraction < go_memory_limit_fraction (Validate checks it),
//     so L < G. The guard reports pressure from L × pressure_threshold
//     (default 0.80) and refuses reservations beyond L, so intake slows
//     down before the collector has to run flat out near G.
//
// Worked example, a pod with a 1 GiB limit (1073741824 bytes), defaults:
//
//	Go memory limit   1073741824 × 0.90 = 966367641 bytes  (921.6 MiB)
//	guard limit       1073741824 × 0.80 = 858993459 bytes  (819.2 MiB)
//	under pressure    858993459 × 0.80  ≈ 687194768 bytes  (655.4 MiB, 64% of the pod)
//	refusals          beyond 858993459 accounted bytes
//	block ceiling     858993459 / 16    = 53687091 bytes   (51.2 MiB, package governor)
//
// When the user set GOMEMLIMIT (any value the runtime accepts, such as
// 700MiB), keel leaves it alone and derives the guard from the lower of C
// and GOMEMLIMIT: with GOMEMLIMIT=700MiB in that pod, L = 700 MiB × 0.80 =
// 560 MiB. GOMEMLIMIT=off keeps the runtime without a limit and the guard
// at C × 0.80. An empty GOMEMLIMIT counts as unset, as it does for the
// runtime. A lower limit the process already set with debug.SetMemoryLimit
// is treated like GOMEMLIMIT.
//
// An explicit memory.limit_bytes is the guard's limit as given, without
// headroom; it must not exceed G (New fails and says so). On Linux there
// is always a limit: without a cgroup limit (bare metal, a VM, a container
// without a memory limit) C is the system memory, so the pressure ratio
// and every signal derived from it (the governor's gate, the worker
// pool's scaler, the scaling signal) mean something everywhere. Only
// without any limit (no cgroup limit, no readable /proc/meminfo, no
// GOMEMLIMIT: not Linux, or a broken /proc) does the guard admit
// everything and report a ratio of 0, and it logs a warning saying to set
// memory.limit_bytes. On a host without a cgroup limit ApplyGoMemoryLimit
// does not set a runtime limit: the machine's memory is shared with other
// processes.
//
// ApplyGoMemoryLimit is an explicit call, never a side effect of New or of
// importing the package, so tests and libraries that build a guard do not
// change the process. It returns what it did (GoLimitResult).
//
// # Accounting
//
// TryReserve(n) admits n bytes when accounted+n <= L (a compare-and-swap
// loop: the count never exceeds L through TryReserve, even for an instant,
// and a refusal changes nothing); Add(n) accounts bytes unconditionally,
// for data already in memory; Release(n) gives them back and never takes
// the count below zero. TryReserve, Add and Release use atomics only: no
// lock, no allocation, no metric (a refusal increments one counter and
// logs at most one warning per 10 seconds). Lease and TryLease wrap them
// in an idempotent release function for defer, at the cost of one small
// allocation.
//
// # Pressure
//
// PressureRatio is current/L and may exceed 1 after Add. UnderPressure is
// true from pressure_threshold up, and also after a refused reservation
// until enough has been released for it to fit; it is computed from live
// counts on every call, so it never sticks. Level gives Normal (below
// 0.5), Elevated (0.5 to the threshold), High (threshold to 1) and
// Critical (1 and above). Hard reports that the guard is a hard pressure
// source whose ratio must never be weighted down.
//
// # Accounted bytes or the live heap
//
// By default current bytes are the accounted bytes: exact for what the
// caller accounts, blind to the rest (decoded copies, client buffers,
// caches, what a process step allocates), and the Go memory limit is the
// safety net for that rest. The batch engine accounts the payload bytes
// of the sub-block in flight, so a process step that expands its input
// ten times is invisible to the guard; what keeps it in memory is the
// governor's block ceiling, which caps every block at L/16 by default
// (package governor, self_regulation.max_block_fraction):
//
//	block and expansion   (1 + 10) × L/16 = 0.6875 × L = 0.55 × C
//	Go memory limit       G = 0.9 × C, so 0.35 × C remains for the
//	                      garbage of the previous block and the runtime
//
// In a 128 MiB container that is 6.4 MiB blocks and a 70.4 MiB peak
// under a 115.2 MiB Go memory limit.
//
// With use_heap the guard also reads the live heap (runtime/metrics
// /gc/heap/live:bytes, the bytes the last GC found reachable, at most once
// per heap_sample_interval, default 100ms) and uses the larger of the two
// views: a reservation must fit in both. The accounting API is the same in
// both modes, so code that reserves also releases. The live heap, unlike
// the total heap, holds no garbage awaiting collection and does not swing
// with the GC cycle, so it does not refuse work for memory about to be
// freed; it lags by at most one GC cycle, which the accounted view covers.
//
// # Metrics and endpoint
//
// keel_memory_current_bytes, keel_memory_accounted_bytes,
// keel_memory_limit_bytes, keel_memory_pressure_ratio,
// keel_memory_under_pressure (0/1) and keel_memory_go_memory_limit_bytes
// are read at scrape time; keel_memory_reservations_refused_total counts
// refusals. Handler serves the Snapshot as JSON for /memory/pressure:
// {"ratio":..,"current_bytes":..,"limit_bytes":..,"under_pressure":..,
// "level":"..","source":"accounted|heap",...}.
//
// # Config
//
// The section is "memory": enabled (true), limit_bytes (0 = detect),
// headroom_fraction (0.80), pressure_threshold (0.80),
// go_memory_limit_fraction (0.90), use_heap (false), heap_sample_interval
// (100ms). Fractions must be in (0, 1]; 0 means the default. A bad value
// is a start-up error naming the key, for example
// "memory.headroom_fraction must be in (0, 1], got 1.5".
package memory
