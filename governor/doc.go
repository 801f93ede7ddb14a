// Package governor is keel's self-regulation: it answers "should this
// service pull more work now?" and acts on the answer by braking intake
// and sizing each block, so that a service under load slows down instead
// of running out of memory.
//
// Three parts share one pressure level:
//
//   - Pressure combines sources into a level in [0, 1]. The memory guard
//     (memory.Guard) is the hard source; other signals (a queue depth, a
//     downstream lag) are soft, each with a weight. The level is
//     max(highest hard ratio, highest soft ratio × weight): a hard source
//     is never weighted down, and a soft source's weight is the most it
//     can add. Ratios are clamped into [0, 1]; NaN counts as 0, so a
//     broken source cannot wedge the gate shut.
//   - Latch and Gate: the latch engages at level >= pause_at (0.80) and
//     releases at level <= resume_at (0.65), both inclusive, and keeps its
//     state in between. A Gate turns the latch into edges: it calls its
//     Actuator's Pause once per rising edge and Resume once per falling
//     edge. A Kafka consumer pauses its partitions; an HTTP receiver
//     checks Admit and answers 503 with Retry-After; any other receiver is
//     wrapped by package transport/gated, which does not call the inner
//     Recv while the gate is held (it waits on Gate.Watch).
//   - Budget, the AIMD byte budget: the batch engine's RunGoverned caps
//     each receive and sizes each sub-block at Budget.Bytes and reports
//     every block to Budget.Observe. Utilisation rho = EMA(process time) /
//     EMA(receive interval); above target_rho (0.7), or blocks back to
//     back, while the hard level is at or above resume_at, the budget
//     halves down to a floor; otherwise it grows by a step up to a
//     ceiling; hard pressure (the hard sources alone at pause_at, with
//     the latch's hysteresis) halves it whatever rho says. Soft sources
//     brake intake through the gate but never shrink the budget. See
//     Budget for the arithmetic.
//
// The brake is applied to sources only. Nothing here wraps or gates a
// sender: the drain is what frees memory, and gating it would deadlock.
//
// # Start
//
//	gov, err := governor.New(cfg, governor.WithMemory(guard)) // cfg: the self_regulation section
//	if err != nil { return err }                             // names the bad key
//	go gov.Run(ctx)                                          // evaluates the gates
//	eng, _ := engine.New(engine.Config{Memory: guard, Budget: gov.Budget()})
//	err = eng.RunGoverned(ctx, gated.Governed(gov, receiver), process, sink)
//
// Adoption takes both steps: RunGoverned with gov.Budget() sizes the
// blocks, and the gate brakes intake, through gated.Governed (package
// transport/gated, which wraps the receiver with gov.Gate()) or through an
// actuator given to WithActuator or NewGate. This package sits below the
// transports and imports none of them: the receiver wrapper lives with
// the transports. With self_regulation.enabled false, New returns a nil
// *Governor: gov.Budget() is nil, so RunGoverned runs exactly as Run;
// gov.Gate() is nil, a gate that never holds, and gated.Governed returns
// the receiver unchanged; gov.Run returns at once. The same wiring serves
// both cases.
//
// # Profiles
//
// self_regulation.profile picks the budget envelope (throughput, the
// default; balanced; low_latency); self_regulation.budget overrides any
// field. See Profile for the table.
//
// # Departure from the reference design
//
// In the reference design every block found behind halves the budget.
// Under a sustained backlog every receive returns at once, and the
// receive interval (from the end of one receive to the end of the next)
// holds the previous block's processing, so the utilisation is about 1
// whatever the block size: the reference budget settles at min_bytes
// while memory is nowhere near its limit, and throughput drops with the
// smaller blocks (10 to 20% fewer records per second with a CPU-bound
// step of a few microseconds per record). Here a behind block shrinks the
// budget only while memory is at risk: the hard level, at a gate
// evaluation since the previous block or now, at or above resume_at.
// Under it the budget grows by a step, up to the largest block the
// profile and the block ceiling allow, which processes a backlog
// cheapest. Hard pressure at pause_at still halves the budget whatever
// the utilisation, and with no hard source the reference rule applies.
// BudgetStats.BehindNotAtRisk counts the blocks the rule let through.
//
// # The block ceiling
//
// The first block is sized at the start value, before any feedback, and
// the memory guard only accounts the payload bytes of the sub-block in
// flight: it does not see what the process step allocates. A step that
// holds ten times its input would take a 16 MiB block to 176 MiB, which a
// 128 MiB container cannot survive, and no pressure signal would come in
// time. So New caps the budget's start, floor and ceiling at the block
// ceiling, the guard's limit L times self_regulation.max_block_fraction
// (default 1/16):
//
//	block ceiling b = L/16              (L = 0.8 × the container limit C)
//	peak            ≈ (1 + 10) × b      (the block and its 10× expansion)
//	                = 0.6875 × L = 0.55 × C, under the Go limit 0.9 × C
//
// In a 128 MiB container every profile's start and ceiling become
// 6.4 MiB; the throughput profile keeps its 16 MiB start from 320 MiB up
// and its 128 MiB ceiling from 2.5 GiB up. An override above the ceiling
// is lowered with a warning; raise max_block_fraction (up to 1) for a
// process step that holds little more than its input. See BlockCeiling.
//
// # Metrics
//
// keel_self_regulation_pressure_ratio (the level, read at scrape time),
// keel_self_regulation_byte_budget_bytes,
// keel_self_regulation_recv_block_bytes,
// keel_self_regulation_byte_budget_decreases_total{reason},
// keel_self_regulation_inbound_paused{source} (0 or 1),
// keel_self_regulation_inbound_pauses_total{source} and
// keel_self_regulation_actuator_errors_total{source,op}. Each edge is
// logged: a warning when intake pauses, an info line when it resumes.
//
// # Config
//
// The section is self_regulation: enabled (true), profile (throughput),
// pause_at (0.80), resume_at (0.65), interval (100ms), max_block_fraction
// (0.0625), budget (overrides of the profile) and weights (soft source
// name to weight in [0, 1]).
// Validate names the key of each problem, for example
// "self_regulation.resume_at (0.9) must be below self_regulation.pause_at
// (0.8)". Bad budget overrides are repaired with a warning instead.
package governor
