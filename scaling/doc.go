// Package scaling computes the horizontal scaling signal of a service: a
// pressure from 0 to 100 that KEDA scales the number of pods on. It never
// touches the data path; it only reports.
//
// # Signals
//
// The application reports named component signals, each a fraction in
// [0,1]:
//
//	cpu     CPU utilisation of the pod
//	memory  memory in use over the pod's limit
//	queue   fill of the inbound queue or buffer
//	lag     consumer lag, set in messages and normalised by
//	        scaling.lag_full (min(lag/lag_full, 1))
//	pool    worker pool saturation
//
// with Pressure.Set (push) or Pressure.Source (a func() float64 sampled at
// every evaluation; NaN means no reading). Values are clamped to [0,1];
// NaN clears a component. The application may register up to
// MaxCustomComponents more with WithCustom. Any other name is refused with
// ErrUnknownSignal, so the label values of keel_scaling_component stay a
// fixed, small set. The downstream circuit state is reported with
// SetCircuitOpen or CircuitSource.
//
// # Weighted formula
//
// By default the pressure is
//
//	100 × Σ weight_i × signal_i / Σ weight_i
//
// over the components that are reported and have a weight above 0, so a
// component the service never reports (no Kafka, no lag) does not hold the
// pressure down. Default weights: lag 0.35, queue 0.25, cpu 0.20, memory
// 0.10, pool 0.10 (scaling.weights overrides any of them; weights are
// relative, and 0 removes a component from the formula).
//
// # Gates
//
// Two hard gates come before the formula, in this order of precedence:
//
//  1. circuit open → 0: the downstream cannot take data, so pods added now
//     could not drain either;
//  2. memory at or above scaling.memory_gate (0.9) → 100.
//
// When both hold the open circuit wins and the pressure is 0: new pods
// would only fill up like this one, and relieving this pod's memory is the
// job of its own backpressure. The memory gate reads the memory signal
// whatever its weight. A disabled section (scaling.enabled: false) gives 0.
//
// # Expression
//
// scaling.expression replaces the weighted formula with a CEL expression
// over the signals, declared as double variables (custom components too),
// for example
//
//	max(cpu, memory) * 100
//	lag > 0.5 ? 100 : cpu * 100
//	clamp(lag * 150, 0, 100)
//
// Every number in it is a double (write 100 or 100.0 alike). The language
// is small on purpose: arithmetic (+ - * /), comparisons, && || !, the
// conditional ?:, and the functions max and min (2 to 8 arguments), abs
// and clamp(x, lo, hi). There are no macros, string functions, regular
// expressions, time functions or loops, and an evaluation is capped by a
// CEL cost limit (ExpressionCostLimit). The result is clamped to [0,100];
// the gates still apply first.
//
// An expression that does not parse, uses an unknown name or function, or
// does not yield a number is an *ExpressionError from New (and, for syntax
// alone, from Config.Validate) that gives the line:column of each problem
// and the expression. A run-time failure (a division by zero, which gives
// a non-finite result, or the cost limit) falls back to the weighted
// formula for that evaluation; it is counted in
// keel_scaling_expression_errors_total and logged at most once a minute.
//
// # Getting started
//
//	p, err := scaling.New(cfg) // cfg: the scaling config section
//	if err != nil {
//		return err // names the key and the fix
//	}
//	_ = p.Source(scaling.Lag, func() float64 { lag, _ := consumer.LastLag(); return float64(lag) })
//	_ = p.Source(scaling.Queue, func() float64 { return q.Fill() })
//	p.CircuitSource(breaker.IsOpen)
//	adminServer.Handle(scaling.HandlerPath, p.Handler())
//	go p.Run(ctx) // evaluates every scaling.interval (5 s)
//
// Metrics (library namespace keel):
//
//	keel_scaling_pressure                  the value, 0..100 (scale on this)
//	keel_scaling_component{component}      each reported signal, 0..1
//	keel_scaling_gate{gate}                1 while circuit_open / memory holds
//	keel_scaling_expression_errors_total   run-time expression failures
//	keel_scaling_evaluations_total{method} weighted, expression, fallback, gate
//
// A KEDA Prometheus trigger then reads, for example,
// avg(keel_scaling_pressure{app="x"}) with metricType Value and a threshold
// such as 70; average the pressure over pods, never sum it.
//
// # Rates
//
// RateWindow turns a stream of events (records, bytes, errors) into a
// per-second rate over a sliding window of buckets, for a signal such as
// "records in per second over capacity". Its clock is injectable for tests.
package scaling
