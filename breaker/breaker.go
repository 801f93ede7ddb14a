package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/transport"
)

// Defaults of the Config fields whose zero value means "use the default".
const (
	// DefaultFailureThreshold is the number of consecutive failures that
	// opens the breaker.
	DefaultFailureThreshold = 5
	// DefaultOpenTimeout is how long the breaker stays open before it lets
	// a probe through.
	DefaultOpenTimeout = 30 * time.Second
)

// Section is the config section name of a breaker inside its owner's
// section (for example tiered.breaker).
const Section = "breaker"

// ErrOpen is returned by Allow while the breaker is open, or half-open with
// its probe in flight.
var ErrOpen = errors.New("breaker: circuit open")

// ErrInvalidConfig is matched by every error of Config.Validate and New.
var ErrInvalidConfig = errors.New("breaker: invalid breaker config")

// State is the state of a breaker. Its numeric value is the value of the
// keel_breaker_state gauge.
type State uint8

// The states.
const (
	// Closed lets calls through and counts consecutive failures.
	Closed State = 0
	// HalfOpen lets one probe through.
	HalfOpen State = 1
	// Open refuses calls.
	Open State = 2
)

// String returns closed, half_open or open.
func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half_open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Clock tells the time. Tests inject a fake one.
type Clock interface {
	Now() time.Time
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Config is the breaker section. The zero value opens after 5 consecutive
// failures and probes after 30 s.
//
//	breaker:
//	  failure_threshold: 5
//	  open_timeout: 30s
type Config struct {
	// FailureThreshold is the number of consecutive failures that opens
	// the breaker. 0 means DefaultFailureThreshold.
	FailureThreshold int `koanf:"failure_threshold" json:"failure_threshold" yaml:"failure_threshold"`
	// OpenTimeout is how long the breaker stays open before one probe is
	// let through. 0 means DefaultOpenTimeout.
	OpenTimeout time.Duration `koanf:"open_timeout" json:"open_timeout" yaml:"open_timeout"`
}

// ConfigError is one bad key of a breaker section. It matches
// ErrInvalidConfig.
type ConfigError struct {
	// Key is the full key, such as tiered.breaker.open_timeout.
	Key string
	// Msg says what is wrong and how to fix it.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Msg }

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Validate reports every bad key, named with the prefix "breaker.". Use
// ValidateAt to name them under an owner's section.
func (c Config) Validate() error { return c.ValidateAt(Section) }

// ValidateAt is Validate with the keys named under prefix (such as
// "tiered.breaker").
func (c Config) ValidateAt(prefix string) error {
	var errs []error
	if c.FailureThreshold < 0 {
		k := prefix + ".failure_threshold"
		errs = append(errs, &ConfigError{Key: k, Msg: fmt.Sprintf("%s is %d: use a positive count, or 0 for the default %d", k, c.FailureThreshold, DefaultFailureThreshold)})
	}
	if c.OpenTimeout < 0 {
		k := prefix + ".open_timeout"
		errs = append(errs, &ConfigError{Key: k, Msg: fmt.Sprintf("%s is %s: use a positive duration such as 30s, or 0 for the default %s", k, c.OpenTimeout, DefaultOpenTimeout)})
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field replaced by its default. It
// does not validate; call Validate for that.
func (c Config) WithDefaults() Config {
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	return c
}

// Options wires a Breaker: what does not come from the config file.
type Options struct {
	// Target names the protected downstream (label target). Default
	// "default".
	Target string
	// Clock tells the time; nil means the wall clock.
	Clock Clock
	// Metrics receives keel_breaker_*; nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives a line per transition; nil means slog.Default().
	Logger *slog.Logger
	// OnStateChange, when set, is called after each transition, outside
	// the breaker's lock.
	OnStateChange func(from, to State)
}

// Breaker is a circuit breaker. It is safe for concurrent use.
type Breaker struct {
	cfg    Config
	target string
	clock  Clock
	log    *slog.Logger
	onCh   func(from, to State)

	gauge  prometheus.Gauge
	trans  *metrics.CounterVec
	mu     sync.Mutex
	state  State
	gen    uint64
	fails  int
	opened time.Time
	probe  bool // a half-open probe is in flight
}

// New returns a closed breaker.
func New(cfg Config, opts Options) (*Breaker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if opts.Target == "" {
		opts.Target = "default"
	}
	if opts.Clock == nil {
		opts.Clock = wallClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	reg := metrics.OrDefault(opts.Metrics)
	b := &Breaker{
		cfg:    cfg,
		target: opts.Target,
		clock:  opts.Clock,
		log:    opts.Logger,
		onCh:   opts.OnStateChange,
	}
	gauge, trans := registerVecs(reg)
	b.gauge, b.trans = gauge.With(opts.Target), trans
	b.gauge.Set(float64(Closed))
	return b, nil
}

// Target returns the target name.
func (b *Breaker) Target() string { return b.target }

// State returns the current state, moving open to half-open when the open
// timeout has passed.
func (b *Breaker) State() State {
	b.mu.Lock()
	tr := b.refreshLocked()
	s := b.state
	b.mu.Unlock()
	b.notify(tr)
	return s
}

// IsOpen reports an open breaker (not half-open). It suits
// scaling.CircuitSource.
func (b *Breaker) IsOpen() bool { return b.State() == Open }

// OpenUntil returns when an open breaker lets a probe through; the zero time
// when it is not open.
func (b *Breaker) OpenUntil() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != Open {
		return time.Time{}
	}
	return b.opened.Add(b.cfg.OpenTimeout)
}

// Ticket is the permission for one call. Report its outcome exactly once;
// later reports are ignored.
type Ticket struct {
	b     *Breaker
	gen   uint64
	probe bool
	done  *bool
}

// Allow asks to make a call. It returns ErrOpen while the breaker is open or
// a half-open probe is in flight.
func (b *Breaker) Allow() (Ticket, error) {
	b.mu.Lock()
	tr := b.refreshLocked()
	var (
		t   Ticket
		err error
	)
	switch b.state {
	case Closed:
		t = Ticket{b: b, gen: b.gen, done: new(bool)}
	case HalfOpen:
		if b.probe {
			err = ErrOpen
		} else {
			b.probe = true
			t = Ticket{b: b, gen: b.gen, probe: true, done: new(bool)}
		}
	default:
		err = ErrOpen
	}
	b.mu.Unlock()
	b.notify(tr)
	if err != nil {
		return Ticket{}, fmt.Errorf("%w (target %s)", err, b.target)
	}
	return t, nil
}

// Success reports a call that succeeded.
func (t Ticket) Success() { t.report(outSuccess) }

// Failure reports a call that failed.
func (t Ticket) Failure() { t.report(outFailure) }

// Ignore reports a call whose outcome says nothing about the downstream's
// health (such as backpressure). A half-open probe frees its slot.
func (t Ticket) Ignore() { t.report(outIgnore) }

// Done reports err: nil is a success, an excluded error (Excluded) is
// ignored, anything else is a failure.
func (t Ticket) Done(err error) {
	switch {
	case err == nil:
		t.Success()
	case Excluded(err):
		t.Ignore()
	default:
		t.Failure()
	}
}

// Excluded reports an error that must not count as a failure: backpressure
// (a downstream that is up but full) and a cancelled context (the caller
// gave up, the downstream did nothing wrong).
func Excluded(err error) bool {
	return errors.Is(err, transport.ErrBackpressure) || errors.Is(err, context.Canceled)
}

type outcome uint8

const (
	outSuccess outcome = iota
	outFailure
	outIgnore
)

type transition struct {
	from, to State
	ok       bool
}

func (t Ticket) report(o outcome) {
	b := t.b
	if b == nil || t.done == nil {
		return
	}
	b.mu.Lock()
	if *t.done {
		b.mu.Unlock()
		return
	}
	*t.done = true
	if t.gen != b.gen {
		b.mu.Unlock()
		return
	}
	var tr transition
	switch b.state {
	case Closed:
		switch o {
		case outSuccess:
			b.fails = 0
		case outFailure:
			b.fails++
			if b.fails >= b.cfg.FailureThreshold {
				tr = b.setLocked(Open)
			}
		}
	case HalfOpen:
		if t.probe {
			b.probe = false
			switch o {
			case outSuccess:
				tr = b.setLocked(Closed)
			case outFailure:
				tr = b.setLocked(Open)
			}
		}
	}
	b.mu.Unlock()
	b.notify(tr)
}

// Reset closes the breaker and clears the failure count.
func (b *Breaker) Reset() {
	b.mu.Lock()
	tr := b.setLocked(Closed)
	b.mu.Unlock()
	b.notify(tr)
}

// refreshLocked moves open to half-open once the timeout has passed.
func (b *Breaker) refreshLocked() transition {
	if b.state == Open && !b.clock.Now().Before(b.opened.Add(b.cfg.OpenTimeout)) {
		return b.setLocked(HalfOpen)
	}
	return transition{}
}

func (b *Breaker) setLocked(to State) transition {
	from := b.state
	b.fails = 0
	b.probe = false
	if to == Open {
		b.opened = b.clock.Now()
	}
	if from == to {
		return transition{}
	}
	b.state = to
	b.gen++
	b.gauge.Set(float64(to))
	return transition{from: from, to: to, ok: true}
}

func (b *Breaker) notify(tr transition) {
	if !tr.ok {
		return
	}
	b.trans.With(b.target, tr.from.String(), tr.to.String()).Inc()
	lvl := slog.LevelInfo
	if tr.to == Open {
		lvl = slog.LevelWarn
	}
	b.log.Log(context.Background(), lvl, "circuit breaker state changed",
		"target", b.target, "from", tr.from.String(), "to", tr.to.String())
	if b.onCh != nil {
		b.onCh(tr.from, tr.to)
	}
}

// Threshold returns the effective failure threshold.
func (c Config) Threshold() int { return c.WithDefaults().FailureThreshold }

// RegisterMetrics registers the keel_breaker_* metrics on reg (nil means
// metrics.Default()) without building a breaker, so that a metrics
// manifest lists them before any breaker exists. New registers them too.
func RegisterMetrics(reg *metrics.Registry) { registerVecs(metrics.OrDefault(reg)) }

// registerVecs registers the breaker's metric vectors on reg, or returns
// them when they already are.
func registerVecs(reg *metrics.Registry) (state *metrics.GaugeVec, transitions *metrics.CounterVec) {
	state = reg.GaugeVec(metrics.Opts{Namespace: "keel", Subsystem: "breaker", Name: "state",
		Help: "Circuit breaker state per target: 0 closed, 1 half-open, 2 open.", Group: "breaker"}, "target")
	transitions = reg.CounterVec(metrics.Opts{Namespace: "keel", Subsystem: "breaker", Name: "transitions_total",
		Help: "Circuit breaker state transitions per target.", Group: "breaker"}, "target", "from", "to")
	return state, transitions
}
