package keel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/cli"
	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/telemetry"
	"github.com/keel-go/keel/tiered"
	"github.com/keel-go/keel/transport/file"
	"github.com/keel-go/keel/transport/httptransport"
	"github.com/keel-go/keel/transport/inmem"
	"github.com/keel-go/keel/transport/kafka"
	"github.com/keel-go/keel/transport/pipe"
)

// configCheck is the config-check command: build every component from the
// whole configuration without starting anything, then print the redacted
// effective configuration as JSON on stdout and a summary on stderr. With
// --strict (or CONFIG_STRICT) a key inside a section the service reads
// that matches no setting is an error naming the key.
func configCheck(ctx context.Context, app *App, o *options, stdout, stderr io.Writer) error {
	if o.flags != nil && o.flags.Strict {
		oo := *o
		oo.configOpts = append(slices.Clone(o.configOpts), func(c *config.Options) { c.Strict = true })
		o = &oo
	}
	rt, err := build(ctx, app, o, modeCheck)
	if err != nil {
		return err
	}
	defer rt.release()
	dump, err := rt.configJSON()
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, dump, "", "  "); err != nil {
		return fmt.Errorf("keel: render the effective configuration: %w", err)
	}
	pretty.WriteByte('\n')
	files := rt.cfg.Files()
	if len(files) == 0 {
		files = []string{"(none: defaults, environment and flags only)"}
	}
	addr := rt.sections.admin.Addr
	if addr == "" {
		addr = admin.DefaultAddr
	}
	summary := fmt.Sprintf("configuration is valid\nservice:   %s %s\nenv:       %s\nfiles:     %s\nlog level: %s\nadmin:     %s\n",
		rt.app.Name, rt.version, rt.cfg.AppEnv(), strings.Join(files, ", "), rt.level.Level(), addr)
	if _, err := io.WriteString(stderr, logging.MaskString(summary)); err != nil {
		return err
	}
	_, err = stdout.Write(pretty.Bytes())
	return err
}

// configJSON is the redacted configuration dump of config-check and
// /config: config.Config.DumpJSON with the values in effect laid over
// what the sections decoded (see effectiveSections), both in "sections"
// (each one's "effective") and in the "effective" tree.
func (rt *Runtime) configJSON() ([]byte, error) {
	raw, err := rt.cfg.DumpJSON()
	if err != nil {
		return nil, fmt.Errorf("keel: render the effective configuration: %w", err)
	}
	var dump map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&dump); err != nil {
		return nil, fmt.Errorf("keel: render the effective configuration: %w", err)
	}
	sections, _ := dump["sections"].(map[string]any)
	if sections == nil {
		sections = make(map[string]any)
		dump["sections"] = sections
	}
	tree, _ := dump["effective"].(map[string]any)
	if tree == nil {
		tree = make(map[string]any)
		dump["effective"] = tree
	}
	effective := rt.effectiveSections()
	for _, key := range sortedKeys(effective) {
		v := config.Redact(effective[key])
		info, _ := sections[key].(map[string]any)
		if info == nil {
			info = map[string]any{"type": fmt.Sprintf("%T", effective[key])}
			sections[key] = info
		}
		info["effective"] = v
		nest(tree, strings.Split(key, "."), v)
	}
	out, err := json.Marshal(dump)
	if err != nil {
		return nil, fmt.Errorf("keel: render the effective configuration: %w", err)
	}
	return out, nil
}

// effectiveSections returns, by key, the values in effect of the sections
// whose zero values stand for defaults: the runtime sections with the
// defaults their zeros mean (logging.level as the logger has it now, after
// flags and reloads), and every built-in transport sub-section the
// registry holds (a section whose type key names it) with its defaults
// and, for Kafka, the KAFKA_* environment variables the builder lays over
// it. A sub-section that no longer decodes keeps what the registry shows.
func (rt *Runtime) effectiveSections() map[string]any {
	out := resolvedDefaults(rt.sections)
	lg := out[SectionLogging].(LoggingConfig)
	lg.Level = strings.ToLower(rt.level.Level().String())
	out[SectionLogging] = lg
	for _, info := range rt.cfg.Sections() {
		i := strings.LastIndexByte(info.Name, '.')
		if i < 0 {
			continue
		}
		section, typ := info.Name[:i], info.Name[i+1:]
		if typ == tiered.Section {
			if v, err := tieredDefaults(rt.cfg, section); err == nil {
				out[info.Name] = v
			}
			continue
		}
		eff, builtin := transportEffective[typ]
		if _, replaced := rt.opts.transports[typ]; !builtin || replaced {
			continue
		}
		if t, err := rt.cfg.String(section + ".type"); err != nil || strings.ToLower(strings.TrimSpace(t)) != typ {
			continue
		}
		if v, err := eff(rt.cfg, info.Name, true); err == nil {
			out[info.Name] = v
		}
	}
	return out
}

// transportEffective decodes, for each built-in transport type, its
// sub-section at key with every zero replaced by the default it stands
// for; with env the Kafka sub-section also gets the environment variables
// its builder reads (config-defaults shows the code defaults only).
var transportEffective = map[string]func(cfg *config.Config, key string, env bool) (any, error){
	TransportKafka: func(cfg *config.Config, key string, env bool) (any, error) {
		var c kafka.Config
		if err := cfg.Section(key, &c); err != nil {
			return nil, err
		}
		if env {
			if err := kafkaEnv(cfg, &c); err != nil {
				return nil, err
			}
		}
		role := c.Role
		c = c.WithDefaults()
		// An empty role follows the use: Receiver builds a consumer,
		// Sender a producer.
		c.Role = role
		return c, nil
	},
	TransportFile:  withDefaultsOf[file.Config],
	TransportPipe:  withDefaultsOf[pipe.Config],
	TransportHTTP:  withDefaultsOf[httptransport.Config],
	TransportInmem: withDefaultsOf[inmem.Config],
}

// withDefaultsOf decodes key into a C and returns it with its defaults.
func withDefaultsOf[C interface{ WithDefaults() C }](cfg *config.Config, key string, _ bool) (any, error) {
	var c C
	if err := cfg.Section(key, &c); err != nil {
		return nil, err
	}
	return c.WithDefaults(), nil
}

// configDefaults is the config-defaults command: every section the
// runtime and the app read, decoded from the code defaults alone (no
// files, no environment, no flags), redacted, as YAML or JSON.
func configDefaults(ctx context.Context, app *App, o *options, format string, stdout io.Writer) error {
	if err := app.check(false); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "keel-defaults-")
	if err != nil {
		return fmt.Errorf("keel: config-defaults needs an empty directory to load from: %w", err)
	}
	defer os.RemoveAll(dir)
	reg := metrics.New(metrics.Config{Namespace: app.namespace(), NoRuntimeCollectors: true})
	log := logging.New(logging.Options{Output: o.logOutput, Level: slog.LevelWarn, Metrics: reg})
	cfg, err := config.Load(ctx, config.Options{
		Defaults: app.Defaults, WorkDir: dir, SkipSystemDir: true, SkipUserConfigDir: true, SkipDotEnv: true,
		Logger: log, Metrics: reg,
	})
	if err != nil {
		return fmt.Errorf("keel: load the code defaults: %w", err)
	}
	var rs runtimeSections
	if err := errors.Join(decodeRuntimeSections(cfg, &rs), decodeAppSections(cfg, app, false)); err != nil {
		return err
	}
	rt := &Runtime{app: app, opts: o, mode: modeCheck, cfg: cfg, reg: reg, log: log}
	rt.builders = rt.builtinTransports()
	for k, b := range o.transports {
		rt.builders[k] = b
	}
	for _, s := range app.Transports {
		tc, b, terr := rt.transportContext(s)
		switch {
		case errors.Is(terr, ErrUnknownTransport) && !cfg.Contains(s+".type"):
			// No default type: there is no sub-section to show.
			continue
		case terr != nil:
			return terr
		case b.Validate != nil:
			// Validate registers the type's sub-section. Code defaults may
			// leave out what only a deployment knows (brokers, a group, a
			// path): that is not an error of the defaults listing.
			if err := b.Validate(tc); err != nil {
				log.Warn("config-defaults: the code defaults of a transport section are incomplete; the service needs the missing keys from a file, the environment or a flag",
					"section", s, "error", err)
			}
		}
	}
	tree := make(map[string]any)
	for _, info := range cfg.Sections() {
		nest(tree, strings.Split(info.Name, "."), info.Effective)
	}
	// A transport sub-section means "default" by a zero value too.
	for _, s := range app.Transports {
		t, err := cfg.String(s + ".type")
		if err != nil {
			continue
		}
		typ := strings.ToLower(strings.TrimSpace(t))
		eff, builtin := transportEffective[typ]
		if _, replaced := o.transports[typ]; !builtin || replaced {
			continue
		}
		v, err := eff(cfg, s+"."+typ, false)
		if err != nil {
			return &SectionError{Key: s + "." + typ, Err: err}
		}
		nest(tree, strings.Split(s+"."+typ, "."), config.Redact(v))
	}
	// The runtime sections mean "default" by a zero value: show the values
	// those zeros stand for.
	for name, v := range resolvedDefaults(rs) {
		tree[name] = config.Redact(v)
	}
	for _, s := range app.Transports {
		if cfg.Contains(s + ".type") {
			if t, err := cfg.String(s + ".type"); err == nil {
				nest(tree, strings.Split(s+".type", "."), t)
			}
		}
		ts, err := tieredDefaults(cfg, s)
		if err != nil {
			return err
		}
		nest(tree, strings.Split(tieredKey(s), "."), ts)
	}
	var out []byte
	if format == cli.FormatJSON {
		out, err = json.MarshalIndent(tree, "", "  ")
		out = append(out, '\n')
	} else {
		out, err = yaml.Marshal(tree)
	}
	if err != nil {
		return fmt.Errorf("keel: render the defaults as %s: %w", format, err)
	}
	_, err = stdout.Write(out)
	return err
}

// tieredDefaults returns the tiered sub-section of the transport section
// (used when the section builds a sender) with every zero replaced by the
// default it stands for, as Runtime.Sender would build it.
func tieredDefaults(cfg *config.Config, section string) (any, error) {
	var ts TieredSection
	if cfg.Contains(tieredKey(section)) {
		if err := cfg.Section(tieredKey(section), &ts); err != nil {
			return nil, &SectionError{Key: tieredKey(section), Err: err}
		}
	}
	ts = ts.forSection(section)
	ts.Config = ts.Config.WithDefaults()
	return config.Redact(ts), nil
}

// resolvedDefaults returns the runtime sections with every zero value
// that means a documented default replaced by that default. Values that
// depend on the machine (worker_pool.max_workers and initial_workers,
// GOMAXPROCS) or on the environment (lifecycle.prestop_delay) keep their
// zero, which the section documents.
func resolvedDefaults(rs runtimeSections) map[string]any {
	lg := rs.logging
	if lg.Level == "" {
		lg.Level = "info"
	}
	if lg.Format == "" {
		lg.Format = logging.FormatAuto
	}
	if lg.AddSource == nil {
		on := true
		lg.AddSource = &on
	}
	if lg.FloodBurst == 0 {
		lg.FloodBurst = 50
	}
	lc := rs.lifecycle
	if lc.ShutdownTimeout == 0 {
		lc.ShutdownTimeout = lifecycle.DefaultShutdownTimeout
	}
	ad := rs.admin
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&ad.ReadHeaderTimeout, admin.DefaultReadHeaderTimeout}, {&ad.ReadTimeout, admin.DefaultReadTimeout},
		{&ad.WriteTimeout, admin.DefaultWriteTimeout}, {&ad.IdleTimeout, admin.DefaultIdleTimeout},
		{&ad.ShutdownTimeout, admin.DefaultShutdownTimeout},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if ad.Addr == "" {
		ad.Addr = admin.DefaultAddr
	}
	pc := rs.pool.WithDefaults()
	pc.MaxWorkers, pc.InitialWorkers = rs.pool.MaxWorkers, rs.pool.InitialWorkers
	ec := rs.engine
	if ec.MaxRecords == 0 {
		ec.MaxRecords = engine.DefaultMaxRecords
	}
	if ec.MaxDepth == 0 {
		ec.MaxDepth = codec.DefaultMaxDepth
	}
	if ec.DrainTimeout == 0 {
		ec.DrainTimeout = engine.DefaultDrainTimeout
	}
	return map[string]any{
		SectionLogging: lg, SectionLifecycle: lc, SectionAdmin: ad,
		SectionMemory: rs.memory.WithDefaults(), SectionPool: pc, SectionScaling: rs.scaling.WithDefaults(),
		SectionEngine: ec, SectionSelfRegulation: selfRegulationDefaults(rs.selfReg), SectionSecrets: rs.secrets.WithDefaults(),
		SectionTelemetry: telemetryDefaults(rs.telemetry), SectionDLQ: rs.dlq.WithDefaults(),
	}
}

// selfRegulationDefaults returns the self_regulation section with its
// defaults and the budget envelope of its profile under the overrides it
// sets (a zero budget field takes the profile's value).
func selfRegulationDefaults(c governor.Config) governor.Config {
	c = c.WithDefaults()
	env := c.Profile.Budget()
	o := c.Budget
	pick := func(v, def int64) int64 {
		if v != 0 {
			return v
		}
		return def
	}
	pickF := func(v, def float64) float64 {
		if v != 0 {
			return v
		}
		return def
	}
	c.Budget = governor.BudgetConfig{
		StartBytes: pick(o.StartBytes, env.StartBytes), MinBytes: pick(o.MinBytes, env.MinBytes),
		MaxBytes: pick(o.MaxBytes, env.MaxBytes), StepBytes: pick(o.StepBytes, env.StepBytes),
		RecordCap:      int(pick(int64(o.RecordCap), int64(env.RecordCap))),
		TargetRho:      pickF(o.TargetRho, env.TargetRho),
		DecreaseFactor: pickF(o.DecreaseFactor, env.DecreaseFactor),
		EMAAlpha:       pickF(o.EMAAlpha, env.EMAAlpha),
	}
	return c
}

// telemetryDefaults returns the telemetry section with the code defaults
// its zero values stand for when no OTEL_* variable is set. enabled and
// traces.enabled stay null: on when an endpoint is configured.
func telemetryDefaults(c telemetry.Config) telemetry.Config {
	str := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	dur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	num := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	str(&c.Protocol, telemetry.ProtocolGRPC)
	str(&c.Compression, "none")
	str(&c.Traces.Sampler, telemetry.DefaultSampler)
	dur(&c.Timeout, telemetry.DefaultTimeout)
	dur(&c.ShutdownTimeout, telemetry.DefaultShutdownTimeout)
	dur(&c.Traces.Batch.ScheduleDelay, telemetry.DefaultScheduleDelay)
	dur(&c.Traces.Batch.ExportTimeout, telemetry.DefaultBatchExportTimeout)
	dur(&c.Metrics.Interval, telemetry.DefaultMetricInterval)
	dur(&c.Metrics.Timeout, telemetry.DefaultMetricTimeout)
	num(&c.Traces.Batch.MaxQueueSize, telemetry.DefaultMaxQueueSize)
	num(&c.Traces.Batch.MaxExportBatchSize, telemetry.DefaultMaxExportBatchSize)
	if len(c.Propagators) == 0 {
		c.Propagators = []string{telemetry.PropagatorTraceContext, telemetry.PropagatorBaggage}
	}
	if c.Traces.SamplerArg == nil {
		one := 1.0
		c.Traces.SamplerArg = &one
	}
	if c.Metrics.Enabled == nil {
		off := false
		c.Metrics.Enabled = &off
	}
	if c.Metrics.PrometheusBridge == nil {
		on := true
		c.Metrics.PrometheusBridge = &on
	}
	return c
}

// nest sets path in tree to v, creating the maps on the way.
func nest(tree map[string]any, path []string, v any) {
	for _, p := range path[:len(path)-1] {
		next, ok := tree[p].(map[string]any)
		if !ok {
			next = make(map[string]any)
			tree[p] = next
		}
		tree = next
	}
	last := path[len(path)-1]
	if existing, ok := tree[last].(map[string]any); ok {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				existing[k] = x
			}
			return
		}
	}
	tree[last] = v
}

// metricsManifest is the metrics-manifest command: build every component
// without starting anything, so that each registers its metrics, register
// those of the components built only when the service runs (transports,
// the DLQ, tiered sinks with their spool and breaker), and print the
// registry's manifest as JSON.
func metricsManifest(ctx context.Context, app *App, o *options, stdout io.Writer) error {
	rt, err := build(ctx, app, o, modeCheck)
	if err != nil {
		return err
	}
	defer rt.release()
	registerComponentMetrics(rt.reg)
	out, err := json.MarshalIndent(rt.reg.Manifest(), "", "  ")
	if err != nil {
		return fmt.Errorf("keel: render the metrics manifest: %w", err)
	}
	_, err = stdout.Write(append(out, '\n'))
	return err
}

// registerComponentMetrics registers on reg the metrics of every component
// the runtime can build when the service runs, whatever the config
// selects, so that the manifest describes every metric the service can
// export.
func registerComponentMetrics(reg *metrics.Registry) {
	file.RegisterMetrics(reg)
	pipe.RegisterMetrics(reg)
	httptransport.RegisterMetrics(reg)
	kafka.RegisterMetrics(reg)
	dlq.RegisterMetrics(reg)
	tiered.RegisterMetrics(reg)
}
