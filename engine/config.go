package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/keel-go/keel/codec"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/pool"
	"github.com/keel-go/keel/transport"
)

// Section is the config section the engine reads: batch_processing.
const Section = "batch_processing"

// DefaultMaxRecords is the record cap of one receive when
// batch_processing.max_chunk_size is unset.
const DefaultMaxRecords = 10000

// DefaultTokenWarnInterval is the least time between two warnings about a
// process step that changed the number of commit tokens.
const DefaultTokenWarnInterval = 10 * time.Second

// DefaultDrainTimeout is how long the block in flight when the run
// context is cancelled may take to finish (process, dead letters, sink,
// commit) when batch_processing.drain_timeout is unset.
const DefaultDrainTimeout = 10 * time.Second

// CommitMode says who acknowledges a block's input tokens.
type CommitMode uint8

const (
	// CommitAuto (the default) makes the engine commit the block's input
	// tokens after the sink accepted the whole out-batch.
	CommitAuto CommitMode = iota
	// CommitSinkManaged leaves the commit to the sink, which receives the
	// out-batch with its tokens (for example to commit after a downstream
	// flush). The engine never commits. It is refused by RunStreaming and
	// by RunGoverned with a budget, whose sub-blocks carry no tokens.
	CommitSinkManaged
)

// String returns "auto" or "sink_managed".
func (m CommitMode) String() string {
	switch m {
	case CommitAuto:
		return "auto"
	case CommitSinkManaged:
		return "sink_managed"
	default:
		return fmt.Sprintf("commit_mode(%d)", uint8(m))
	}
}

// MarshalText writes the mode name.
func (m CommitMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads "auto" (or "") and "sink_managed", case-insensitive.
func (m *CommitMode) UnmarshalText(b []byte) error {
	switch normalise(b) {
	case "", "auto":
		*m = CommitAuto
	case "sink_managed", "sinkmanaged", "sink":
		*m = CommitSinkManaged
	default:
		return fmt.Errorf("%w: %s.commit_mode %q: use auto or sink_managed", ErrInvalidConfig, Section, string(b))
	}
	return nil
}

// DeadLetterPolicy says what the engine does with dead letters: those a
// receiver put on a batch (inbound filters) and those a process step or a
// parse failure produced.
type DeadLetterPolicy uint8

const (
	// DeadLetterDefault is the zero value: route when Config.RouteDeadLetters
	// is set, reject otherwise.
	DeadLetterDefault DeadLetterPolicy = iota
	// DeadLetterReject makes any dead letter a terminal error
	// (ErrDeadLettersRejected): nothing is dropped without a configured
	// decision.
	DeadLetterReject
	// DeadLetterDiscard drops dead letters, counting them in
	// keel_engine_dead_letters_total{action="discarded"} and logging a
	// rate-limited warning.
	DeadLetterDiscard
	// DeadLetterRoute hands dead letters to Config.RouteDeadLetters before
	// the sink and the commit; a routing error is terminal.
	DeadLetterRoute
)

// String returns "default", "reject", "discard" or "route".
func (p DeadLetterPolicy) String() string {
	switch p {
	case DeadLetterDefault:
		return "default"
	case DeadLetterReject:
		return "reject"
	case DeadLetterDiscard:
		return "discard"
	case DeadLetterRoute:
		return "route"
	default:
		return fmt.Sprintf("dead_letter_policy(%d)", uint8(p))
	}
}

// MarshalText writes the policy name.
func (p DeadLetterPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads "", "default", "reject", "discard" and "route",
// case-insensitive.
func (p *DeadLetterPolicy) UnmarshalText(b []byte) error {
	switch normalise(b) {
	case "", "default":
		*p = DeadLetterDefault
	case "reject":
		*p = DeadLetterReject
	case "discard", "discard_with_metric":
		*p = DeadLetterDiscard
	case "route":
		*p = DeadLetterRoute
	default:
		return fmt.Errorf("%w: %s.dead_letter_policy %q: use reject, discard or route", ErrInvalidConfig, Section, string(b))
	}
	return nil
}

// ParseErrorAction says what the pre-parsed path and ProcessRecords do
// with a record whose payload does not parse.
type ParseErrorAction uint8

const (
	// ParseDeadLetter (the default) turns the record into a dead letter
	// with the reason "parse error: ..." and goes on with the others.
	ParseDeadLetter ParseErrorAction = iota
	// ParseSkip drops the record and counts it
	// (keel_engine_records_skipped_total): a configured, counted loss.
	ParseSkip
	// ParseFailBatch fails the whole block with a terminal *ParseError:
	// nothing of it is sunk or committed.
	ParseFailBatch
)

// String returns "dead_letter", "skip" or "fail_batch".
func (a ParseErrorAction) String() string {
	switch a {
	case ParseDeadLetter:
		return "dead_letter"
	case ParseSkip:
		return "skip"
	case ParseFailBatch:
		return "fail_batch"
	default:
		return fmt.Sprintf("parse_error_action(%d)", uint8(a))
	}
}

// MarshalText writes the action name.
func (a ParseErrorAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads "dead_letter" (or "dlq", or ""), "skip" and
// "fail_batch", case-insensitive.
func (a *ParseErrorAction) UnmarshalText(b []byte) error {
	switch normalise(b) {
	case "", "dead_letter", "deadletter", "dlq":
		*a = ParseDeadLetter
	case "skip":
		*a = ParseSkip
	case "fail_batch", "failbatch", "fail":
		*a = ParseFailBatch
	default:
		return fmt.Errorf("%w: %s.parse_error_action %q: use dead_letter, skip or fail_batch", ErrInvalidConfig, Section, string(b))
	}
	return nil
}

// PreRouteType names a pre-route rule.
type PreRouteType uint8

const (
	// DropFieldMissing drops a record whose routing field is missing,
	// counting it as filtered (keel_engine_records_filtered_total).
	DropFieldMissing PreRouteType = iota + 1
	// DeadLetterFieldValue dead-letters a record whose routing field equals
	// the rule's value, with the reason "field value '<v>' matches
	// dead-letter rule".
	DeadLetterFieldValue
)

// String returns "drop_field_missing" or "dead_letter_field_value".
func (t PreRouteType) String() string {
	switch t {
	case DropFieldMissing:
		return "drop_field_missing"
	case DeadLetterFieldValue:
		return "dead_letter_field_value"
	default:
		return fmt.Sprintf("pre_route_type(%d)", uint8(t))
	}
}

// MarshalText writes the rule type name.
func (t PreRouteType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads "drop_field_missing" and "dead_letter_field_value"
// (or "dlq_field_value"), case-insensitive.
func (t *PreRouteType) UnmarshalText(b []byte) error {
	switch normalise(b) {
	case "drop_field_missing":
		*t = DropFieldMissing
	case "dead_letter_field_value", "dlq_field_value":
		*t = DeadLetterFieldValue
	default:
		return fmt.Errorf("%w: %s.pre_route_filters type %q: use drop_field_missing or dead_letter_field_value",
			ErrInvalidConfig, Section, string(b))
	}
	return nil
}

// PreRouteFilter is one rule on the routing field, applied by
// ProcessRecords before the transform runs.
//
//	batch_processing:
//	  routing_field: _table
//	  pre_route_filters:
//	    - type: drop_field_missing
//	    - type: dead_letter_field_value
//	      value: quarantine
type PreRouteFilter struct {
	// Type is the rule.
	Type PreRouteType `koanf:"type" json:"type" yaml:"type"`
	// Value is the routing-field value a DeadLetterFieldValue rule matches.
	// A string field compares by its text, any other value by its JSON
	// text (so 42 matches "42" and true matches "true").
	Value string `koanf:"value" json:"value" yaml:"value"`
}

// MemoryAccountant tracks the payload bytes in flight. The engine calls
// Add with a block's (or sub-block's) payload bytes before processing it
// and Release with the same number when the block leaves the engine, on
// every path. It must be safe for concurrent use.
type MemoryAccountant interface {
	// Add accounts n bytes as in flight.
	Add(n int64)
	// Release gives back n bytes accounted by Add.
	Release(n int64)
}

// ByteBudget is the self-regulation lever of RunGoverned: it sizes each
// receive and each sub-block in bytes and learns from what each block
// cost. It must be safe for concurrent use.
type ByteBudget interface {
	// Bytes returns the current budget: the soft byte cap of the next
	// receive and the sub-block target of the next block. Values below one
	// are treated as one byte (one record per sub-block).
	Bytes() int64
	// RecordCap returns the most records one receive may return, a safety
	// cap against floods of tiny records; 0 or less means no cap beyond
	// batch_processing.max_chunk_size.
	RecordCap() int
	// Observe reports one block: its payload bytes, the time from the start
	// of its processing to its commit, and the time since the previous
	// receive returned (0 for the first). A receive that returned nothing
	// is reported with zero bytes and zero process time.
	Observe(bytes int64, processTime, ingestInterval time.Duration)
}

// DeadLetterRouter receives dead letters under DeadLetterRoute. It runs on
// the engine's loop before the block is sunk and committed, so it should
// be quick (hand the entries to a queue). An error is terminal for the
// loop: the block is not committed and will be delivered again.
type DeadLetterRouter func(ctx context.Context, letters []transport.DeadLetter) error

// Config configures an Engine. The zero value is valid: blocks of up to
// 10 000 records, engine-managed commits, dead letters rejected, parse
// errors dead-lettered, format detected per record (no format lock),
// streaming one record per sub-block, no ticker, a 10 s graceful drain at
// cancellation, no memory accounting, no byte budget, a private worker
// pool and the default metrics registry.
//
// The fields with koanf tags are the batch_processing config section,
// shown with its defaults (as in docs/configuration.md):
//
//	batch_processing:
//	  max_chunk_size: 10000
//	  max_bytes: 0                 # 0: no byte cap
//	  commit_mode: auto            # auto | sink_managed
//	  dead_letter_policy: default  # default | reject | discard | route
//	  parse_error_action: dead_letter  # dead_letter | skip | fail_batch
//	  format: auto                 # auto | json | msgpack
//	  format_lock: false           # RunParsed: lock to the first format seen
//	  format_relock_after: 0       # 0: codec.DefaultRelockAfter (16)
//	  max_depth: 64
//	  intern_keys: false
//	  sub_block_bytes: 0           # RunStreaming: 0 is one record per sub-block
//	  tick_interval: 0s            # 0: no ticker; > 0 needs Config.OnTick
//	  routing_field: ""
//	  pre_route_filters: null
//	  drain_timeout: 10s           # negative: abandon the block in flight at once
//
// The other fields are wiring set in code.
type Config struct {
	// MaxRecords caps the records of one receive (max_chunk_size). 0 means
	// DefaultMaxRecords.
	MaxRecords int `koanf:"max_chunk_size" json:"max_chunk_size" yaml:"max_chunk_size"`
	// MaxBytes is the soft byte cap of one receive (floor one record).
	// 0 means none. RunGoverned with a budget takes it from the budget.
	MaxBytes int64 `koanf:"max_bytes" json:"max_bytes" yaml:"max_bytes"`
	// CommitMode says who commits: the engine after the sink (auto) or the
	// sink itself.
	CommitMode CommitMode `koanf:"commit_mode" json:"commit_mode" yaml:"commit_mode"`
	// DeadLetterPolicy says what happens to dead letters; see
	// DeadLetterPolicy. The default rejects them unless RouteDeadLetters
	// is set.
	DeadLetterPolicy DeadLetterPolicy `koanf:"dead_letter_policy" json:"dead_letter_policy" yaml:"dead_letter_policy"`
	// ParseErrorAction applies to RunParsed and ProcessRecords.
	ParseErrorAction ParseErrorAction `koanf:"parse_error_action" json:"parse_error_action" yaml:"parse_error_action"`
	// Format is the payload format assumed for records whose own Format is
	// Auto; Auto detects each payload.
	Format codec.Format `koanf:"format" json:"format" yaml:"format"`
	// FormatLock makes RunParsed expect one payload format per loop: the
	// first record whose format Detect can tell locks the loop to it, and a
	// later record of the other format is dead-lettered (by the dead-letter
	// policy, whatever parse_error_action says) with the reason
	// "format mismatch: ...". After FormatRelockAfter consecutive
	// mismatches the producer is taken to have switched: the record that
	// completes the run is still dead-lettered and the loop then locks to
	// the new format (codec.Detector). Records whose transport declares a
	// format (Record.Format) are parsed as declared and not checked. It
	// needs format auto. Off by default: each payload's format is detected
	// on its own, so a stream that mixes formats parses as it always did.
	FormatLock bool `koanf:"format_lock" json:"format_lock" yaml:"format_lock"`
	// FormatRelockAfter is the run of consecutive mismatching records after
	// which a format_lock loop relocks. 0 means codec.DefaultRelockAfter.
	FormatRelockAfter int `koanf:"format_relock_after" json:"format_relock_after" yaml:"format_relock_after"`
	// MaxDepth is the nesting limit of a parsed payload. 0 means
	// codec.DefaultMaxDepth.
	MaxDepth int `koanf:"max_depth" json:"max_depth" yaml:"max_depth"`
	// InternKeys makes the parse of RunParsed and ProcessRecords pass the
	// top-level keys of every payload through the shared Interner, so
	// values kept beyond a block share their key strings. It saves memory
	// on retained values and costs parse throughput (about a third on
	// small JSON log lines; see BENCHMARKS.md), so it is off by default.
	// ParsedBatch.Intern works either way.
	InternKeys bool `koanf:"intern_keys" json:"intern_keys" yaml:"intern_keys"`
	// SubBlockBytes is the target payload size of one sub-block in
	// RunStreaming. A sub-block takes records while their sum stays within
	// the target, and always at least one record, so 0 means one record per
	// sub-block.
	SubBlockBytes int64 `koanf:"sub_block_bytes" json:"sub_block_bytes" yaml:"sub_block_bytes"`
	// TickInterval is the period of OnTick. 0 disables the ticker.
	TickInterval time.Duration `koanf:"tick_interval" json:"tick_interval" yaml:"tick_interval"`
	// RoutingField is the top-level field the pre-route filters of
	// ProcessRecords look at.
	RoutingField string `koanf:"routing_field" json:"routing_field" yaml:"routing_field"`
	// PreRouteFilters are applied by ProcessRecords, in order, to each
	// parsed record before the transform; the first that matches decides.
	PreRouteFilters []PreRouteFilter `koanf:"pre_route_filters" json:"pre_route_filters" yaml:"pre_route_filters"`
	// DrainTimeout bounds the graceful drain. Cancelling the run context
	// stops intake at once (no further receive), but a block already
	// received is finished (processed, its dead letters routed, sunk and
	// committed) under a context that ignores the cancellation and expires
	// DrainTimeout after it; a streaming block finishes its remaining
	// sub-blocks within the same deadline and commits once. A block that
	// does not finish in time is not committed (nothing of it is) and comes
	// again from the source. 0 means DefaultDrainTimeout (10 s); a negative
	// value abandons the block in flight at once, as a terminal
	// cancellation.
	DrainTimeout time.Duration `koanf:"drain_timeout" json:"drain_timeout" yaml:"drain_timeout"`

	// RouteDeadLetters receives dead letters under DeadLetterRoute (and
	// under the default policy when set).
	RouteDeadLetters DeadLetterRouter `koanf:"-" json:"-" yaml:"-"`
	// OnTick runs every TickInterval on the loop goroutine, between blocks,
	// never while a block is being processed or sunk. The first tick comes
	// one interval after the loop starts; ticks missed while a block was in
	// flight are folded into one. An error is logged, not fatal.
	OnTick func(ctx context.Context) error `koanf:"-" json:"-" yaml:"-"`
	// Memory, when set, accounts each block's payload bytes while the block
	// is in flight (one sub-block at a time when streaming).
	Memory MemoryAccountant `koanf:"-" json:"-" yaml:"-"`
	// Budget, when set, makes RunGoverned stream with budget-sized
	// sub-blocks and receives; without it RunGoverned is Run.
	Budget ByteBudget `koanf:"-" json:"-" yaml:"-"`
	// Pool runs the parse of RunParsed and ProcessRecords. Nil means a
	// private pool with the default worker_pool settings.
	Pool *pool.Pool `koanf:"-" json:"-" yaml:"-"`
	// Interner is the field-name interner handed to every ParsedBatch
	// (ParsedBatch.Intern) and, with InternKeys, used for the keys of
	// every parsed payload. Nil means a private interner with the codec
	// defaults.
	Interner *codec.Interner `koanf:"-" json:"-" yaml:"-"`
	// Metrics receives the keel_engine_* metrics. Nil means
	// metrics.Default().
	Metrics *metrics.Registry `koanf:"-" json:"-" yaml:"-"`
	// Logger is the engine's logger. Nil means slog.Default() at the time
	// of each log line.
	Logger *slog.Logger `koanf:"-" json:"-" yaml:"-"`
	// Tracer starts the run loops' block spans (BlockSpanName), one per
	// block, linked to the trace contexts in the records' headers and a
	// child of the producer's span when the records share one trace (see
	// telemetry.StartBlock); the span's context is the one process, the
	// sink and the dead-letter route receive, so what they send carries
	// the trace on. Sub-blocks of the streaming and governed loops are
	// events on it (SubBlockEventName). Nil means the tracer TracerName of
	// the global provider (otel.GetTracerProvider), taken at New, or at the
	// first block after a provider is installed when New ran before.
	//
	// Tracing off costs nothing per record: with a no-op tracer (the
	// default global provider, the one telemetry.Setup installs when it
	// exports nothing, or go.opentelemetry.io/otel/trace/noop) no span is
	// started and no header is read. Pass a noop tracer to turn block spans
	// off whatever the global provider.
	Tracer trace.Tracer `koanf:"-" json:"-" yaml:"-"`
}

// Validate reports every problem of the section, each naming its key and
// the fix, joined with errors.Join; every one matches ErrInvalidConfig. It
// returns nil for the zero Config.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Key: Section + "." + key, Msg: Section + "." + key + " " + fmt.Sprintf(format, args...)})
	}
	if c.MaxRecords < 0 {
		bad("max_chunk_size", "must be >= 1 (got %d); leave it unset for the default %d", c.MaxRecords, DefaultMaxRecords)
	}
	if c.MaxBytes < 0 {
		bad("max_bytes", "must be >= 0 (got %d); use 0 for no byte cap", c.MaxBytes)
	}
	if c.CommitMode > CommitSinkManaged {
		bad("commit_mode", "is %s; use auto or sink_managed", c.CommitMode)
	}
	switch c.DeadLetterPolicy {
	case DeadLetterDefault, DeadLetterDiscard:
	case DeadLetterReject:
		if c.RouteDeadLetters != nil {
			bad("dead_letter_policy", "is reject but a dead-letter route is set; set it to route, or leave it unset to route")
		}
	case DeadLetterRoute:
		if c.RouteDeadLetters == nil {
			bad("dead_letter_policy", "is route but no route is set; set Config.RouteDeadLetters, or use reject or discard")
		}
	default:
		bad("dead_letter_policy", "is %s; use reject, discard or route", c.DeadLetterPolicy)
	}
	if c.ParseErrorAction > ParseFailBatch {
		bad("parse_error_action", "is %s; use dead_letter, skip or fail_batch", c.ParseErrorAction)
	}
	if c.Format > codec.MsgPack {
		bad("format", "is %s; use auto, json or msgpack", c.Format)
	}
	if c.FormatLock && c.Format != codec.Auto {
		bad("format_lock", "is true but format is %s: the lock follows detected formats, so set format to auto or leave format_lock unset", c.Format)
	}
	if c.FormatRelockAfter < 0 {
		bad("format_relock_after", "must be >= 0 (got %d); leave it unset for the default %d", c.FormatRelockAfter, codec.DefaultRelockAfter)
	}
	if c.MaxDepth < 0 || c.MaxDepth > codec.MaxDepthLimit {
		bad("max_depth", "must be within 1..%d (got %d); leave it unset for the default %d", codec.MaxDepthLimit, c.MaxDepth, codec.DefaultMaxDepth)
	}
	if c.SubBlockBytes < 0 {
		bad("sub_block_bytes", "must be >= 0 (got %d); 0 means one record per sub-block", c.SubBlockBytes)
	}
	if c.TickInterval < 0 {
		bad("tick_interval", "must be >= 0 (got %s); use 0 to disable the ticker", c.TickInterval)
	}
	if c.TickInterval > 0 && c.OnTick == nil {
		bad("tick_interval", "is %s but no tick function is set; set Config.OnTick or leave tick_interval unset", c.TickInterval)
	}
	if len(c.PreRouteFilters) > 0 && strings.TrimSpace(c.RoutingField) == "" {
		bad("routing_field", "is empty but pre_route_filters are set; name the field the filters look at")
	}
	for i, f := range c.PreRouteFilters {
		switch f.Type {
		case DropFieldMissing:
		case DeadLetterFieldValue:
			if f.Value == "" {
				bad(fmt.Sprintf("pre_route_filters[%d].value", i), "is empty; a dead_letter_field_value rule needs the value to match")
			}
		default:
			bad(fmt.Sprintf("pre_route_filters[%d].type", i), "is %s; use drop_field_missing or dead_letter_field_value", f.Type)
		}
	}
	return errors.Join(errs...)
}

// maxRecords returns the record cap with its default.
func (c *Config) maxRecords() int {
	if c.MaxRecords == 0 {
		return DefaultMaxRecords
	}
	return c.MaxRecords
}

// drainTimeout returns the drain timeout with its default; negative means
// no drain.
func (c *Config) drainTimeout() time.Duration {
	if c.DrainTimeout == 0 {
		return DefaultDrainTimeout
	}
	return c.DrainTimeout
}

// policy returns the effective dead-letter policy.
func (c *Config) policy() DeadLetterPolicy {
	if c.DeadLetterPolicy == DeadLetterDefault {
		if c.RouteDeadLetters != nil {
			return DeadLetterRoute
		}
		return DeadLetterReject
	}
	return c.DeadLetterPolicy
}

func normalise(b []byte) string {
	s := strings.ToLower(strings.TrimSpace(string(b)))
	return strings.ReplaceAll(s, "-", "_")
}
