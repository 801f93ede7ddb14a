// Package health holds the service's health state: named checks that
// report healthy, degraded or unhealthy, and the started and draining flags
// that the probes and the shutdown sequence share.
//
// The three Kubernetes probes read one Registry:
//
//   - liveness (Live) is always true: it never looks at dependencies, so a
//     broken database cannot make Kubernetes restart every pod at once;
//   - startup (Started) turns true when the service calls MarkStarted;
//   - readiness (Ready) is started, not draining, and no check unhealthy.
//     A degraded check still serves traffic; an empty registry is ready.
//
// Start with the process-wide Default registry or your own:
//
//	reg := health.New(health.Config{})
//	reg.Register("kafka", func(ctx context.Context) (health.Status, string) {
//		if !client.Connected() { // an atomic load, not I/O
//			return health.Unhealthy, "no broker connection"
//		}
//		return health.Healthy, ""
//	})
//	reg.MarkStarted()
//	ready := reg.Ready(ctx)
//	report := reg.Report(ctx) // JSON detail: status, message, duration
//
// Checks run on every probe, so they must be cheap: read state that the
// component keeps up to date, never do I/O. They run concurrently, each
// under a timeout (Config.Timeout, one second by default, or WithTimeout);
// a check that times out or panics counts as unhealthy with a message, and
// never takes the caller down. Concurrent probes share one run of a check,
// and a check that hangs past its timeout is not started again until it
// returns, so a stuck dependency costs one goroutine, not one per probe.
//
// Status changes are logged once per transition, not once per probe.
package health
