package keel

import (
	"context"
	"errors"
	"fmt"

	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/platform"
	"github.com/keel-go/keel/secret"
	"github.com/keel-go/keel/secrets"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/transport"
	"github.com/keel-go/keel/transport/gated"
)

// Names of the checks and background tasks the runtime adds for the
// pillars it builds.
const (
	// HealthCheckSecrets is the health check of the secrets manager:
	// degraded while a provider in use fails (values are then served from
	// the cache).
	HealthCheckSecrets = "secrets"
	// TaskSelfRegulation is the background task that evaluates the
	// governor's intake gates.
	TaskSelfRegulation = "self_regulation"
	// TaskSecretsRefresh is the background task that refreshes the cached
	// secrets.
	TaskSecretsRefresh = "secrets_refresh"
	// HookTelemetry is the final shutdown hook that flushes and stops the
	// telemetry exporters, after everything else.
	HookTelemetry = "telemetry"
	// HookSecrets is the final shutdown hook that closes the secrets
	// manager.
	HookSecrets = "secrets"
)

// Governor returns the self-regulation governor (section
// self_regulation): its byte budget sizes the engine's RunGoverned, and
// its gates brake every receiver the factory builds. Nil when
// self_regulation.enabled is false; a nil *governor.Governor is safe to
// use and does nothing.
func (rt *Runtime) Governor() *governor.Governor { return rt.gov }

// Secrets returns the secrets manager (section secrets). The runtime
// resolves the secret references of every section it decodes (its own,
// App.Sections and the transport sub-sections) with it; a section the app
// decodes itself, or re-decodes after a reload, is resolved with
// secrets.ResolveStruct(ctx, rt.Secrets(), key, &section). Rotations are
// announced on Subscribe: resolved fields are not updated in place.
func (rt *Runtime) Secrets() *secrets.Manager { return rt.secrets }

// Telemetry returns the OpenTelemetry pipeline (section telemetry). It
// exports nothing unless an endpoint is configured (telemetry.endpoint or
// OTEL_EXPORTER_OTLP_ENDPOINT); the W3C propagators are installed either
// way. It is flushed by the last shutdown hook.
func (rt *Runtime) Telemetry() *telemetry.Telemetry { return rt.tel }

// buildSecrets builds the secrets manager from the secrets section. The
// section's own secret fields (cache.encryption_key, vault.auth.token,
// ...) may be file: or env: references (and vault: or aws: ones when the
// provider is configured from its environment variables): they are
// resolved by a short-lived manager without cache before the section is
// validated. In modeCheck the manager is built without its disk cache,
// so config-check creates no directory.
func (rt *Runtime) buildSecrets(ctx context.Context) error {
	sc := rt.sections.secrets
	opts := secrets.Options{Logger: rt.log, Metrics: rt.reg, Env: rt.cfg.AppEnv(), AppName: rt.app.Name}
	off := false
	boot, err := secrets.New(ctx, secrets.Config{File: sc.File, Cache: secrets.CacheConfig{Enabled: &off}, RefreshInterval: -1}, opts)
	if err != nil {
		return &SectionError{Key: SectionSecrets, Err: err}
	}
	rerr := secrets.ResolveStruct(ctx, boot, SectionSecrets, &sc)
	_ = boot.Close(ctx)
	if rerr != nil {
		return &SectionError{Key: SectionSecrets, Err: rerr}
	}
	if err := sc.Validate(); err != nil {
		return &SectionError{Key: SectionSecrets, Err: err}
	}
	if rt.mode != modeRun {
		if sc.Cache.IsEnabled() && sc.Cache.EncryptionKey.IsZero() && sc.Cache.AllowPlaintextDisk && platform.IsProduction(rt.cfg.AppEnv()) {
			return &SectionError{Key: SectionSecrets, Err: fmt.Errorf(
				"%s.cache.allow_plaintext_disk is refused in production (environment %q): set %s.cache.encryption_key instead",
				SectionSecrets, rt.cfg.AppEnv(), SectionSecrets)}
		}
		sc.Cache.EncryptionKey, sc.Cache.AllowPlaintextDisk = secret.String{}, false
	}
	if rt.secrets, err = secrets.New(ctx, sc, opts); err != nil {
		return &SectionError{Key: SectionSecrets, Err: err}
	}
	return nil
}

// resolveSecrets replaces the secret references of the runtime sections
// and of App.Sections with their secrets. Every unresolvable reference is
// reported, each a *SectionError naming its section whose cause, a
// *secrets.ResolveError, names the key and the reference (never a
// value). Only Run resolves: config-check and metrics-manifest fetch no
// secret.
func (rt *Runtime) resolveSecrets(ctx context.Context) error {
	if rt.mode != modeRun {
		return nil
	}
	sections := rt.sections.resolvable()
	for _, key := range sortedKeys(rt.app.Sections) {
		sections = append(sections, keyedSection{key, rt.app.Sections[key]})
	}
	var errs []error
	for _, s := range sections {
		if err := secrets.ResolveStruct(ctx, rt.secrets, s.key, s.ptr); err != nil {
			errs = append(errs, &SectionError{Key: s.key, Err: err})
		}
	}
	return errors.Join(errs...)
}

// buildTelemetry sets up the telemetry pipeline. In modeRun it becomes
// the OpenTelemetry global; in modeCheck it is built switched off and
// private, which registers its metrics and checks the section without
// starting an exporter.
func (rt *Runtime) buildTelemetry(ctx context.Context) error {
	tc := rt.sections.telemetry
	opts := telemetry.Options{ServiceName: rt.app.Name, ServiceVersion: rt.version, Metrics: rt.reg, Logger: rt.log}
	if rt.mode != modeRun {
		off := false
		tc.Enabled, opts.NoGlobal = &off, true
	}
	tel, err := telemetry.Setup(ctx, tc, opts)
	if err != nil {
		return &SectionError{Key: SectionTelemetry, Err: err}
	}
	rt.tel = tel
	return nil
}

// buildGovernor builds the governor from the self_regulation section,
// with the memory guard as its hard pressure source. With enabled false
// it is nil.
func (rt *Runtime) buildGovernor() error {
	gov, err := governor.New(rt.sections.selfReg,
		governor.WithMemory(rt.guard), governor.WithMetrics(rt.reg), governor.WithLogger(rt.log))
	if err != nil {
		return &SectionError{Key: SectionSelfRegulation, Err: err}
	}
	rt.gov = gov
	return nil
}

// brake puts a receiver the factory built under the governor's intake
// brake. A receiver with a native pause (a governor.Actuator, such as a
// Kafka consumer, which pauses its partitions without leaving the group)
// gets a gate of its own, labelled "<type>:<section>", that drives it and
// is evaluated by the governor's Run; any other receiver is wrapped with
// gated.Governed, which stops calling its Recv while the governor's gate
// is held. Without a governor the receiver is returned as it is.
func (rt *Runtime) brake(tc TransportContext, r transport.Receiver) transport.Receiver {
	if rt.gov == nil {
		return r
	}
	if act, ok := r.(governor.Actuator); ok {
		rt.gov.NewGate(tc.Type+":"+tc.Section, act)
		return r
	}
	return gated.Governed(rt.gov, r)
}

// As finds, in r or in what r wraps, a receiver of type T: the factory
// returns receivers under the governor's brake (a *gated.Receiver) and
// the WithReceiverWrapper wrappers, so a type assertion on what
// Runtime.Receiver returned may not see the transport it built. As
// follows Unwrap() transport.Receiver methods from r inward and returns
// the first receiver that is a T.
//
//	in, _ := rt.Receiver(ctx, "input")
//	q, ok := keel.As[*inmem.Transport](in)
func As[T any](r transport.Receiver) (T, bool) {
	for range 64 {
		if t, ok := r.(T); ok {
			return t, true
		}
		u, ok := r.(interface{ Unwrap() transport.Receiver })
		if !ok {
			break
		}
		r = u.Unwrap()
	}
	var zero T
	return zero, false
}

// innermost returns what r wraps at the bottom of its Unwrap chain.
func innermost(r transport.Receiver) transport.Receiver {
	for range 64 {
		u, ok := r.(interface{ Unwrap() transport.Receiver })
		if !ok {
			return r
		}
		inner := u.Unwrap()
		if inner == nil {
			return r
		}
		r = inner
	}
	return r
}
