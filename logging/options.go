package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/keel-go/keel/metrics"
)

// Formats accepted by Options.Format and LOG_FORMAT.
const (
	// FormatAuto picks FormatText with colours when the output is a
	// terminal and NO_COLOR is unset, FormatJSON otherwise.
	FormatAuto = "auto"
	// FormatJSON writes one JSON object per line.
	FormatJSON = "json"
	// FormatText writes human-readable lines.
	FormatText = "text"
)

// Environment variables read by NewHandler when the matching option is
// empty.
const (
	EnvLevel          = "LOG_LEVEL"               // debug, info, warn, error
	EnvFormat         = "LOG_FORMAT"              // json, text, auto
	EnvNoColor        = "NO_COLOR"                // set, even empty: no colours
	EnvService        = "SERVICE_NAME"            // the service field
	EnvVersion        = "SERVICE_VERSION"         // the version field
	EnvPod            = "POD_NAME"                // the pod field
	EnvHostname       = "HOSTNAME"                // the pod field inside a pod, when POD_NAME is unset
	EnvNamespace      = "POD_NAMESPACE"           // the namespace field
	EnvNode           = "NODE_NAME"               // the node field
	EnvKubernetesHost = "KUBERNETES_SERVICE_HOST" // set inside every pod
)

var (
	// ErrInvalidLevel is returned by ParseLevel for an unknown level name.
	ErrInvalidLevel = errors.New("logging: invalid level")
	// ErrInvalidFormat is returned by ParseFormat for an unknown format.
	ErrInvalidFormat = errors.New("logging: invalid format")
	// ErrInvalidFloodControl is returned by Options.Validate for negative
	// flood-control settings.
	ErrInvalidFloodControl = errors.New("logging: invalid flood control")
)

// Options configures a Handler. The zero value is valid: level from
// LOG_LEVEL (default info), format from LOG_FORMAT (default auto), output
// stderr, source on, masking on with the default names, service and
// Kubernetes fields from the environment, no flood control. An explicit
// option always wins over the environment.
type Options struct {
	// Level is the minimum level; nil means LOG_LEVEL, else info. Pass a
	// *slog.LevelVar to change it at run time.
	Level slog.Leveler
	// Format is "json", "text" or "auto"; "" means LOG_FORMAT, else auto.
	// "pretty", "human" and "console" are accepted as text.
	Format string
	// Output receives the lines; nil means os.Stderr. Each line is one
	// Write call.
	Output io.Writer
	// AddSource adds the caller's file:line as "source"; nil means true.
	AddSource *bool
	// Color turns ANSI colours in the text format on or off; nil means on
	// when Output is a terminal and NO_COLOR is unset. JSON is never
	// coloured.
	Color *bool
	// Service and Version are added to every line when set; "" means
	// SERVICE_NAME and SERVICE_VERSION.
	Service, Version string
	// Pod, Namespace and Node are added to every line when set; "" means
	// POD_NAME (else HOSTNAME when KUBERNETES_SERVICE_HOST is set, as it is
	// in every pod), POD_NAMESPACE and NODE_NAME.
	Pod, Namespace, Node string
	// ExtraSensitiveKeys extends the default sensitive names (see Masker).
	ExtraSensitiveKeys []string
	// DisableMasking turns all masking off. secret.String values still
	// print as [REDACTED]: they never reveal themselves.
	DisableMasking bool
	// Flood turns on per-message flood control; the zero value is off.
	Flood FloodControl
	// Metrics receives keel_logging_lines_total and
	// keel_logging_suppressed_total; nil means metrics.Default().
	Metrics *metrics.Registry
}

// FloodControl limits how often the same message text is written: a
// token bucket per distinct message, refilled at Rate per second up to
// Burst. Lines over the limit are dropped and counted; the next line of
// that message that passes carries the count as "suppressed". Security
// audit events (Audit) are never dropped.
type FloodControl struct {
	// Rate is the sustained lines per second per message; 0 turns flood
	// control off.
	Rate float64
	// Burst is the number of lines a message may write at once; default 50.
	Burst int
	// MaxMessages bounds the number of distinct messages tracked; default
	// 10000. Idle messages are forgotten first; while the table is full of
	// busy ones, new messages share one overflow bucket.
	MaxMessages int
}

const (
	defaultFloodBurst       = 50
	defaultFloodMaxMessages = 10000
)

func (f FloodControl) enabled() bool { return f.Rate > 0 }

func (f FloodControl) withDefaults() FloodControl {
	if f.Burst <= 0 {
		f.Burst = defaultFloodBurst
	}
	if f.MaxMessages <= 0 {
		f.MaxMessages = defaultFloodMaxMessages
	}
	return f
}

// Validate reports explicit options that NewHandler would replace by a
// default (an unknown Format, negative flood-control numbers). The
// environment is not checked: bad LOG_LEVEL and LOG_FORMAT values fall
// back to defaults with a warning line instead.
func (o Options) Validate() error {
	var errs []error
	if o.Format != "" {
		if _, err := ParseFormat(o.Format); err != nil {
			errs = append(errs, fmt.Errorf("logging option Format: %w", err))
		}
	}
	if o.Flood.Rate < 0 || o.Flood.Burst < 0 || o.Flood.MaxMessages < 0 {
		errs = append(errs, fmt.Errorf("%w: Flood.Rate %v, Flood.Burst %d and Flood.MaxMessages %d must not be negative (Rate 0 turns flood control off)",
			ErrInvalidFloodControl, o.Flood.Rate, o.Flood.Burst, o.Flood.MaxMessages))
	}
	return errors.Join(errs...)
}

// ParseLevel reads a level name: debug, info, warn (or warning), error,
// any case, optionally with an offset as slog prints it ("DEBUG-4",
// "INFO+2").
func ParseLevel(s string) (slog.Level, error) {
	t := strings.TrimSpace(s)
	if strings.EqualFold(t, "warning") {
		return slog.LevelWarn, nil
	}
	var l slog.Level
	if t == "" || l.UnmarshalText([]byte(t)) != nil {
		return slog.LevelInfo, fmt.Errorf("%w %q: use debug, info, warn or error", ErrInvalidLevel, s)
	}
	return l, nil
}

// ParseFormat reads a format name (json, text, auto; pretty, human and
// console mean text), any case, and returns its canonical form.
func ParseFormat(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "json":
		return FormatJSON, nil
	case "text", "pretty", "human", "console":
		return FormatText, nil
	case "auto":
		return FormatAuto, nil
	}
	return FormatAuto, fmt.Errorf("%w %q: use json, text or auto", ErrInvalidFormat, s)
}

// settings are Options resolved against the environment.
type settings struct {
	level     slog.Leveler
	json      bool
	color     bool
	addSource bool
	out       io.Writer
	service   string
	version   string
	pod       string
	namespace string
	node      string
	flood     FloodControl
	// problems found on the way, reported in one warning line
	problems []slog.Attr
}

func (o Options) resolve() settings {
	st := settings{out: o.Output, addSource: true}
	if st.out == nil {
		st.out = os.Stderr
	}
	if o.AddSource != nil {
		st.addSource = *o.AddSource
	}

	st.level = o.Level
	if st.level == nil {
		st.level = slog.LevelInfo
		if v, ok := os.LookupEnv(EnvLevel); ok && strings.TrimSpace(v) != "" {
			if l, err := ParseLevel(v); err == nil {
				st.level = l
			} else {
				st.problems = append(st.problems, slog.String("log_level", v))
			}
		}
	}

	format := FormatAuto
	if o.Format != "" {
		f, err := ParseFormat(o.Format)
		if err != nil {
			st.problems = append(st.problems, slog.String("format_option", o.Format))
		}
		format = f
	} else if v, ok := os.LookupEnv(EnvFormat); ok && strings.TrimSpace(v) != "" {
		f, err := ParseFormat(v)
		if err != nil {
			st.problems = append(st.problems, slog.String("log_format", v))
		}
		format = f
	}
	_, noColor := os.LookupEnv(EnvNoColor)
	terminal := isTerminal(st.out)
	switch format {
	case FormatJSON:
		st.json = true
	case FormatText:
		st.json = false
	default:
		st.json = !(terminal && !noColor)
	}
	if !st.json {
		if o.Color != nil {
			st.color = *o.Color
		} else {
			st.color = terminal && !noColor
		}
	}

	st.service = firstNonEmpty(o.Service, os.Getenv(EnvService))
	st.version = firstNonEmpty(o.Version, os.Getenv(EnvVersion))
	st.pod = o.Pod
	if st.pod == "" {
		st.pod = os.Getenv(EnvPod)
		if st.pod == "" && os.Getenv(EnvKubernetesHost) != "" {
			st.pod = os.Getenv(EnvHostname)
		}
	}
	st.namespace = firstNonEmpty(o.Namespace, os.Getenv(EnvNamespace))
	st.node = firstNonEmpty(o.Node, os.Getenv(EnvNode))

	if o.Flood.Rate < 0 || o.Flood.Burst < 0 || o.Flood.MaxMessages < 0 {
		st.problems = append(st.problems, slog.Group("flood",
			slog.Float64("rate", o.Flood.Rate), slog.Int("burst", o.Flood.Burst), slog.Int("max_messages", o.Flood.MaxMessages)))
	} else if o.Flood.enabled() {
		st.flood = o.Flood.withDefaults()
	}
	return st
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// isTerminal reports whether w is a character device (a terminal), by
// its file mode. Any writer with a Stat method is checked, so wrappers
// around *os.File can take part.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}
