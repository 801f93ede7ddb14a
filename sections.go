package keel

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"

	"github.com/keel-go/keel/admin"
	"github.com/keel-go/keel/config"
	"github.com/keel-go/keel/dlq"
	"github.com/keel-go/keel/engine"
	"github.com/keel-go/keel/governor"
	"github.com/keel-go/keel/lifecycle"
	"github.com/keel-go/keel/logging"
	"github.com/keel-go/keel/memory"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/scaling"
	"github.com/keel-go/keel/secrets"
	"github.com/keel-go/keel/telemetry"
)

// The config sections the runtime reads. Each is decoded with
// config.Section, so config-check and /config show it with its defaults.
const (
	SectionLogging   = "logging"
	SectionLifecycle = "lifecycle"
	SectionAdmin     = "admin"
	SectionMemory    = memory.Section
	SectionPool      = pool.Section
	SectionScaling   = scaling.Section
	SectionEngine    = engine.Section
	// SectionSecrets is the secrets manager's section (package secrets).
	SectionSecrets = secrets.Section
	// SectionTelemetry is the OpenTelemetry export section (package
	// telemetry).
	SectionTelemetry = telemetry.Section
	// SectionSelfRegulation is the governor's section (package governor):
	// intake brakes and the engine's byte budget.
	SectionSelfRegulation = governor.Section
	// SectionTransport is the default transport section of Runtime.Receiver
	// and Runtime.Sender.
	SectionTransport = "transport"
)

// RuntimeSections lists the sections the runtime always reads, in build
// order.
func RuntimeSections() []string {
	return []string{
		SectionLogging, SectionSecrets, SectionTelemetry, SectionLifecycle, SectionAdmin, SectionMemory,
		SectionSelfRegulation, SectionPool, SectionScaling, SectionDLQ, SectionEngine,
	}
}

// LoggingConfig is the logging section. The zero value is valid: level
// info, format auto (text with colours on a terminal, JSON otherwise),
// caller source on, the default sensitive key names, no flood control.
// The --log-level and --log-format flags (and LOG_LEVEL and LOG_FORMAT)
// override level and format; -v and -q override the level. A reload that
// changes level takes effect at once.
//
//	logging:
//	  level: info          # debug | info | warn | error
//	  format: auto         # json | text | auto
//	  add_source: true
//	  sensitive_names: [] # extra key names to mask, e.g. [tenant_id]
//	  flood_rate: 0        # lines per second per message; 0 = off
//	  flood_burst: 50
type LoggingConfig struct {
	// Level is the minimum level: debug, info, warn or error. "" means
	// info.
	Level string `koanf:"level"`
	// Format is json, text or auto. "" means auto.
	Format string `koanf:"format"`
	// AddSource adds the caller's file:line; nil means true.
	AddSource *bool `koanf:"add_source"`
	// SensitiveNames extends the key names whose values are masked.
	SensitiveNames []string `koanf:"sensitive_names"`
	// FloodRate is the sustained lines per second of one message text;
	// 0 turns flood control off.
	FloodRate float64 `koanf:"flood_rate"`
	// FloodBurst is the lines one message may write at once; 0 means 50.
	FloodBurst int `koanf:"flood_burst"`
}

// Validate reports an unknown level or format and negative or non-finite
// flood settings, each naming its key.
func (c LoggingConfig) Validate() error {
	var errs []error
	if c.Level != "" {
		if _, err := logging.ParseLevel(c.Level); err != nil {
			errs = append(errs, fmt.Errorf("logging.level is %q: use debug, info, warn or error", c.Level))
		}
	}
	if c.Format != "" {
		if _, err := logging.ParseFormat(c.Format); err != nil {
			errs = append(errs, fmt.Errorf("logging.format is %q: use json, text or auto", c.Format))
		}
	}
	if c.FloodRate < 0 || math.IsNaN(c.FloodRate) || math.IsInf(c.FloodRate, 0) {
		errs = append(errs, fmt.Errorf("logging.flood_rate is %v: use a number of lines per second >= 0 (0 turns flood control off)", c.FloodRate))
	}
	if c.FloodBurst < 0 {
		errs = append(errs, fmt.Errorf("logging.flood_burst is %d: use a count >= 0 (0 means 50)", c.FloodBurst))
	}
	return errors.Join(errs...)
}

// level returns the parsed level (info when unset). Validate ran first.
func (c LoggingConfig) level() slog.Level {
	if c.Level == "" {
		return slog.LevelInfo
	}
	l, err := logging.ParseLevel(c.Level)
	if err != nil {
		return slog.LevelInfo
	}
	return l
}

// runtimeSections holds the decoded runtime sections.
type runtimeSections struct {
	logging   LoggingConfig
	secrets   secrets.Config
	telemetry telemetry.Config
	lifecycle lifecycle.Config
	admin     admin.Config
	memory    memory.Config
	selfReg   governor.Config
	pool      pool.Config
	scaling   scaling.Config
	dlq       dlq.Config
	engine    engine.Config
}

// resolvable lists the decoded runtime sections whose secret.String
// fields may hold secret references, by key. The secrets section is not
// among them: it is resolved on its own, before the manager is built
// (see buildSecrets).
func (s *runtimeSections) resolvable() []keyedSection {
	return []keyedSection{
		{SectionLogging, &s.logging}, {SectionTelemetry, &s.telemetry}, {SectionLifecycle, &s.lifecycle},
		{SectionAdmin, &s.admin}, {SectionMemory, &s.memory}, {SectionSelfRegulation, &s.selfReg},
		{SectionPool, &s.pool}, {SectionScaling, &s.scaling}, {SectionDLQ, &s.dlq}, {SectionEngine, &s.engine},
	}
}

// keyedSection is a decoded section and its key.
type keyedSection struct {
	key string
	ptr any
}

// section decodes key into dst and validates it: a decode error or a
// validation error is a *SectionError naming key.
func section(cfg *config.Config, key string, dst any, validate func() error) error {
	if err := cfg.Section(key, dst); err != nil {
		return &SectionError{Key: key, Err: err}
	}
	if validate != nil {
		if err := validate(); err != nil {
			return &SectionError{Key: key, Err: err}
		}
	}
	return nil
}

// decodeRuntimeSections decodes and validates every runtime section. All
// are decoded even after a failure, so that one run of config-check
// reports every bad section.
func decodeRuntimeSections(cfg *config.Config, s *runtimeSections) error {
	return errors.Join(
		section(cfg, SectionLogging, &s.logging, func() error { return s.logging.Validate() }),
		// The secrets section may hold file: and env: references of its
		// own: it is validated once they are resolved (see buildSecrets).
		section(cfg, SectionSecrets, &s.secrets, nil),
		section(cfg, SectionTelemetry, &s.telemetry, func() error { return s.telemetry.Validate() }),
		section(cfg, SectionLifecycle, &s.lifecycle, func() error {
			var errs []error
			if s.lifecycle.ShutdownTimeout < 0 {
				errs = append(errs, fmt.Errorf("lifecycle.shutdown_timeout is %s: use a positive duration (0 means %s)",
					s.lifecycle.ShutdownTimeout, lifecycle.DefaultShutdownTimeout))
			}
			return errors.Join(errs...)
		}),
		section(cfg, SectionAdmin, &s.admin, func() error { return s.admin.Validate() }),
		section(cfg, SectionMemory, &s.memory, func() error { return s.memory.Validate() }),
		section(cfg, SectionSelfRegulation, &s.selfReg, func() error { return s.selfReg.Validate() }),
		section(cfg, SectionPool, &s.pool, func() error { return s.pool.Validate() }),
		section(cfg, SectionScaling, &s.scaling, func() error { return s.scaling.Validate() }),
		// dlq's secret references (http headers, redis url) are resolved
		// after validation; Validate checks no secret value.
		section(cfg, SectionDLQ, &s.dlq, func() error { return s.dlq.Validate() }),
		// The engine's section is validated once its wiring is set (a
		// route policy needs a route): see buildEngine.
		section(cfg, SectionEngine, &s.engine, nil),
	)
}

// checkSectionPointer reports an App.Sections value that is not a non-nil
// pointer (Section needs one to decode into).
func checkSectionPointer(key string, v any) error {
	rv := reflect.ValueOf(v)
	if key == "" || !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("%w: Sections[%q] is %T: it must be a non-nil pointer to a struct (or map) pre-filled with the section's defaults",
			ErrInvalidApp, key, v)
	}
	return nil
}

// decodeAppSections decodes and validates the app's own sections. With
// inPlace the app's pointers are decoded into (Run reads them); otherwise
// copies are, so that config-check and config-defaults leave the app's
// defaults untouched.
func decodeAppSections(cfg *config.Config, app *App, inPlace bool) error {
	var errs []error
	for _, key := range sortedKeys(app.Sections) {
		dst := app.Sections[key]
		if !inPlace {
			rv := reflect.ValueOf(dst)
			cp := reflect.New(rv.Elem().Type())
			cp.Elem().Set(rv.Elem())
			dst = cp.Interface()
		}
		var validate func() error
		if v, ok := dst.(interface{ Validate() error }); ok {
			validate = v.Validate
		}
		errs = append(errs, section(cfg, key, dst, validate))
	}
	return errors.Join(errs...)
}
