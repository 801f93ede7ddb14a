// Package keel wires every pillar of a data service — configuration,
// logging, secrets, metrics, telemetry, health, graceful shutdown, the
// admin server, the memory guard, self-regulation, the worker pool, the
// scaling signal, the batch engine and the transports — in the right
// order, from config, and shuts them down in the right order.
//
// # Start
//
//	func main() {
//		keel.Main(keel.App{Name: "orders", Run: serve})
//	}
//
//	func serve(ctx context.Context, rt *keel.Runtime) error {
//		in, err := rt.Receiver(ctx, "input")
//		if err != nil { return err }
//		out, err := rt.Sender(ctx, "output")
//		if err != nil { return err }
//		rt.MarkStarted()
//		return rt.Engine().RunGoverned(ctx, in, transform, rt.Engine().SinkTo(out))
//	}
//
// Main parses the command line (package cli: run, version, config-check,
// config-defaults, metrics-manifest, and the flags -c/--config,
// --log-level, --log-format, --metrics-addr, -v, -q, each with its
// environment fallback), runs the command,
// and is the only place in keel that exits the process: 0 after a clean
// shutdown, 1 on an error, 2 when a second signal forced the exit. Run is
// the same without the command line, for tests and embedding.
//
// # Build order
//
// Each step reads its own config section with config.Section, so every
// section is in the config registry and config-check and /config show the
// whole effective configuration, redacted. A section that does not decode
// or validate is a start-up error (*SectionError) naming the key.
//
//  1. the standard flags, parsed by the cli, and their environment
//     fallbacks;
//  2. the config cascade (config.Load with the app name, so the
//     environment prefix is the upper-cased name; App.Defaults below the
//     files; the flags on top), then every runtime section and
//     App.Sections;
//  3. logging (section logging: level, format, masking, the service and
//     version fields), installed as slog's default; a reload changes the
//     level;
//  4. metrics: a registry whose app namespace is the app name, installed
//     as metrics.Default; App.RegisterMetrics;
//  5. secrets (section secrets; its own file: and env: references are
//     resolved first): the manager, then every secret reference in the
//     runtime sections and App.Sections is replaced by its secret (see
//     Secrets below);
//  6. telemetry (section telemetry): telemetry.Setup installs the W3C
//     propagators and, when an endpoint is configured (telemetry.endpoint
//     or OTEL_EXPORTER_OTLP_ENDPOINT), the OTLP exporters as the
//     OpenTelemetry globals; without one nothing is started;
//  7. health: the registry behind the probes, installed as health.Default,
//     with the "secrets" check;
//  8. lifecycle (section lifecycle: prestop_delay, shutdown_timeout);
//  9. the admin server (section admin; --metrics-addr overrides
//     admin.addr; /config only with admin.enable_config);
//  10. the memory guard (section memory), ApplyGoMemoryLimit, and
//     /memory/pressure;
//  11. self-regulation (section self_regulation, on by default): the
//     governor, with the memory guard as its hard pressure source;
//     self_regulation.enabled: false builds nothing;
//  12. the worker pool (section worker_pool) and its Scaler, fed by the
//     memory guard;
//  13. the scaling pressure (section scaling) with the memory guard, the
//     pool's saturation and the process CPU as sources, at
//     /scaling/pressure; the transports the factory builds add theirs
//     (the lag of every Kafka consumer, the largest queue fill of the
//     receivers that report one);
//  14. the dead-letter queue (section dlq, off by default; with
//     dlq.enabled and no WithDeadLetterRouter it is built with the app's
//     name as its service, exposed as Runtime.DLQ, and its Router becomes
//     the engine's route, with dead_letter_policy route unless set to
//     reject or discard), the byte budget (WithByteBudget, else the
//     governor's AIMD budget) and the dead-letter route
//     (WithDeadLetterRouter, else the DLQ's), then the batch
//     engine (section batch_processing) on the pool, with the memory guard
//     as its MemoryAccountant;
//  15. the transport sections the app declares (App.Transports) are
//     checked;
//
// then the admin server starts listening, the scaler, the scaling loop,
// the governor's gate loop, the secrets refresh and the config watch (hot
// reload) start in the background, signal handling starts, and App.Run is
// called with the Runtime handle.
//
// config-check and metrics-manifest build the same components from the
// same configuration without starting any: the telemetry pipeline is
// built switched off, the secrets manager without its disk cache, and no
// reference is resolved except those of the secrets section itself, which
// is checked with them.
//
// # Transports
//
// Runtime.Receiver and Runtime.Sender build a transport from a config
// section with a type key: transport.type: kafka, http, inmem, file or
// pipe (or a type added with WithTransport), whose settings are in the
// sub-section of the type's name (transport.file.path). A missing or
// unknown type is an error listing the known ones. Every transport built
// is a health check, so readiness reflects it, and is closed at shutdown.
// The pipe type reads standard input and writes standard output, or the
// streams given with WithPipeIO.
//
// The kafka type decodes <section>.kafka into kafka.Config and overlays
// the Kafka environment variables (KAFKA_BOOTSTRAP_SERVERS, KAFKA_GROUP_ID,
// ..., and the same names under the app's prefix, which win). The role
// follows the use: Receiver builds a consumer group member, Sender a
// producer; kafka.role, when set, must allow the use. At start-up and in
// config-check a section must be able to serve one side.
//
//	input:
//	  type: kafka
//	  kafka:
//	    brokers: [kafka-0:9092]
//	    group: orders
//	    topics: [orders]
//	    sasl_password: vault:secret/data/kafka#password
//
// # Tiered senders
//
// A sender section with a tiered sub-section whose enabled key is true
// gets its sender wrapped in a tiered sink (package tiered; see
// TieredSection): the keys of tiered.Config sit beside enabled, with the
// spool and breaker sub-sections under them, and errors name them in
// full (output.tiered.spool.max_bytes). Start-up and config-check
// validate the sub-section of every App.Transports section.
//
//	output:
//	  type: file
//	  file:
//	    path: /data/out.ndjson
//	  tiered:
//	    enabled: true
//	    send_timeout: 1s
//	    spool:
//	      dir: /var/lib/myapp/spool/output   # default spool/<section>
//	      max_bytes: 1073741824
//	    breaker:
//	      failure_threshold: 5
//	      open_timeout: 30s
//
// The sink is named after the section (label sink=output), puts records
// it can never deliver into the dead-letter queue when one is built, and
// is the section's health check. Its spool fill level is a soft pressure
// source of the governor named tiered:<section> (weigh it with
// self_regulation.weights); while any tiered sink cannot drain (breaker
// open, spool stalled for stall_timeout, or spool full) the scaling
// pressure reports its circuit open, which forces the scaling pressure to
// zero. At shutdown, in the senders phase, the sink drains its spool for at
// most close_drain_timeout and leaves the rest spooled for the next start.
//
// # Self-regulation
//
// With self_regulation on (the default), Engine().RunGoverned sizes every
// receive and sub-block from the governor's AIMD byte budget (unless
// WithByteBudget gives another), and every receiver the factory builds is
// braked when the pressure level reaches self_regulation.pause_at: a
// Kafka consumer (any receiver with a native Pause and Resume) pauses its
// partitions and stays in its group, through a gate of its own; any other
// receiver is wrapped with gated.Governed and stops receiving until the
// level falls to resume_at. Senders are never braked. Use As to reach the
// transport under the wrapper. Runtime.Governor exposes the governor; add
// the app's own pressure signals to Governor().Pressure().
//
// # Secrets
//
// Any secret.String field of any section the runtime decodes — its own,
// App.Sections, and the transport sub-sections (TransportContext.Decode)
// — may hold a reference instead of a value: vault:secret/data/kafka#password,
// aws:prod/db#password, file:/var/run/secrets/token or env:DB_PASSWORD.
// It is resolved before use through Runtime.Secrets; one that does not
// resolve is a start-up error naming the key and the reference, never a
// value. Dumps and logs only ever show the field redacted.
//
// # Readiness
//
// The startup probe passes once the app calls Runtime.MarkStarted;
// readiness is started, not draining, and no health check unhealthy.
//
// # Shutdown
//
// A signal (SIGTERM, SIGINT), the end of the ctx given to Run, or App.Run
// returning starts the shutdown. In order:
//
//  1. readiness fails (the health registry is marked draining);
//  2. the pre-stop delay passes (lifecycle.prestop_delay; 5 s on
//     Kubernetes, none elsewhere), so the endpoints are updated;
//  3. the app's ctx is cancelled: intake stops, and the engine finishes
//     the block in flight within batch_processing.drain_timeout, commits
//     it or, past the deadline, commits nothing of it;
//
// then, under one deadline (lifecycle.shutdown_timeout, 30 s), the phases:
//
//  4. app: wait for App.Run to return;
//  5. background: stop the Runtime.Go tasks, the scalers and the config
//     watch;
//  6. shutdown_hooks: the Runtime.OnShutdown hooks (flush a dead-letter
//     queue or a spool here), newest first, then the runtime's DLQ is
//     flushed (HookDLQ), after everything that may feed it;
//  7. senders: flush and close every sender (a tiered sink drains its
//     spool here and may still dead-letter), then receivers: close every
//     receiver;
//  8. worker_pool: close the pool;
//  9. final_hooks: the Runtime.OnShutdownLast hooks, the runtime's DLQ is
//     flushed again and closed (HookDLQClose), then the secrets
//     manager closes and the telemetry exporters flush, last of all, so
//     the spans of everything before are exported;
//  10. admin: stop the admin server, which answered probes until then.
//
// Run then returns nil (exit 0). When the deadline passes first, the rest
// is skipped and Run returns an error wrapping ErrShutdownIncomplete that
// names what was still running (and logs it); a second signal at any
// point returns an error wrapping lifecycle.ErrForced at once, also
// naming what was still running (exit 2).
package keel
