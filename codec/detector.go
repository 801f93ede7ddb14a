package codec

import (
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// DefaultRelockAfter is the run of consecutive mismatching payloads after
// which a Detector follows the new format, when DetectorConfig.RelockAfter
// is zero. Sixteen in a row is a producer that switched formats, not a stray
// record, and a switch costs at most sixteen dead-lettered records.
const DefaultRelockAfter = 16

// DetectorConfig configures a Detector. The zero value locks to the first
// format seen and relocks after DefaultRelockAfter mismatches.
type DetectorConfig struct {
	// Format is Auto (default) to lock to the first detected format, or JSON
	// or MsgPack to force that format: a forced Detector always answers
	// with it and never flags a payload, leaving the judgement to Parse.
	Format Format
	// RelockAfter is the run of consecutive mismatches that relocks the
	// detector to the new format. Default DefaultRelockAfter.
	RelockAfter int
	// Metrics receives keel_codec_format_mismatches_total{format} and
	// keel_codec_format_relocks_total{format}. nil means metrics.Default().
	Metrics *metrics.Registry
	// Logger receives a warning on every relock. nil means slog.Default().
	Logger *slog.Logger
}

// Detector decides the format of each payload of a stream that should
// carry one format. In Auto mode the first payload whose format Detect can
// tell locks the detector to that format; a later payload of the other
// format is a mismatch, reported with an ErrFormatMismatch error so the
// caller dead-letters it. A run of RelockAfter consecutive mismatches means
// the producer switched: the payload that completes the run is still
// reported, and the detector then locks to the new format and logs a
// warning. A payload of the locked format ends a run. A payload Detect
// cannot tell (a scalar, binary data, an empty payload) neither matches nor
// mismatches: it gets the locked format, leaves the run as it is, and
// Parse judges it.
//
// A Detector is safe for concurrent use: its state is one atomic word, so
// Check never blocks and every transition is seen whole.
type Detector struct {
	forced      Format
	relockAfter uint32
	log         *slog.Logger
	mismatches  [MsgPack + 1]prometheus.Counter
	relocks     [MsgPack + 1]prometheus.Counter

	// state packs the locked format (low 8 bits) and the current run of
	// consecutive mismatches (high 32 bits).
	state atomic.Uint64
}

// MismatchError reports a payload whose format differs from the locked
// one. It matches ErrFormatMismatch with errors.Is.
type MismatchError struct {
	// Locked is the format the detector expects (before any relock).
	Locked Format
	// Detected is the payload's format.
	Detected Format
	// Run is the number of consecutive mismatches so far, this one
	// included.
	Run int
	// Relocked is true when this payload completed the run and the
	// detector now expects Detected.
	Relocked bool
}

// Error describes the mismatch, e.g. "codec: payload format mismatch:
// expected json, got msgpack (3 in a row, relock after 16)".
func (e *MismatchError) Error() string {
	if e.Relocked {
		return fmt.Sprintf("codec: %v: expected %s, got %s (%d in a row; now locked to %s)",
			ErrFormatMismatch, e.Locked, e.Detected, e.Run, e.Detected)
	}
	return fmt.Sprintf("codec: %v: expected %s, got %s (%d in a row)", ErrFormatMismatch, e.Locked, e.Detected, e.Run)
}

// Unwrap returns ErrFormatMismatch.
func (e *MismatchError) Unwrap() error { return ErrFormatMismatch }

// NewDetector returns a Detector. It fails, wrapping ErrInvalidOptions,
// on a Format outside the enumeration or a negative RelockAfter.
func NewDetector(cfg DetectorConfig) (*Detector, error) {
	if !cfg.Format.Valid() {
		return nil, fmt.Errorf("codec: %w: DetectorConfig.Format is %s: use Auto, JSON or MsgPack", ErrInvalidOptions, cfg.Format)
	}
	if cfg.RelockAfter < 0 || int64(cfg.RelockAfter) > int64(^uint32(0)) {
		return nil, fmt.Errorf("codec: %w: DetectorConfig.RelockAfter is %d: use 0 for the default %d or a positive count",
			ErrInvalidOptions, cfg.RelockAfter, DefaultRelockAfter)
	}
	d := &Detector{forced: cfg.Format, relockAfter: uint32(cfg.RelockAfter), log: cfg.Logger}
	if d.relockAfter == 0 {
		d.relockAfter = DefaultRelockAfter
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	reg := metrics.OrDefault(cfg.Metrics)
	mm := reg.CounterVec(metrics.Opts{
		Namespace: "keel", Subsystem: "codec", Name: "format_mismatches_total", Group: "codec",
		Help: "Payloads whose detected format differed from the format the detector was locked to, by detected format.",
	}, "format")
	rl := reg.CounterVec(metrics.Opts{
		Namespace: "keel", Subsystem: "codec", Name: "format_relocks_total", Group: "codec",
		Help: "Times a format detector relocked to a new payload format after a run of mismatches, by new format.",
	}, "format")
	for _, f := range []Format{JSON, MsgPack} {
		d.mismatches[f] = mm.With(f.String())
		d.relocks[f] = rl.With(f.String())
	}
	d.state.Store(pack(cfg.Format, 0))
	return d, nil
}

func pack(f Format, run uint32) uint64 { return uint64(f) | uint64(run)<<32 }

func unpack(s uint64) (Format, uint32) { return Format(s & 0xff), uint32(s >> 32) }

// Check returns the format to parse data as, or a *MismatchError (matching
// ErrFormatMismatch) with the locked format when data is of the other
// format. Before anything is locked, an undetermined payload gets Auto.
func (d *Detector) Check(data []byte) (Format, error) {
	if d.forced != Auto {
		return d.forced, nil
	}
	det := Detect(data)
	for {
		s := d.state.Load()
		locked, run := unpack(s)
		switch {
		case det == Auto:
			return locked, nil
		case locked == Auto:
			if d.state.CompareAndSwap(s, pack(det, 0)) {
				return det, nil
			}
		case locked == det:
			if run == 0 || d.state.CompareAndSwap(s, pack(det, 0)) {
				return det, nil
			}
		default:
			run++
			relock := run >= d.relockAfter
			next := pack(locked, run)
			if relock {
				next = pack(det, 0)
			}
			if !d.state.CompareAndSwap(s, next) {
				continue
			}
			d.mismatches[det].Inc()
			if relock {
				d.relocks[det].Inc()
				d.log.Warn("payload format changed: detector relocked",
					"from_format", locked.String(), "to_format", det.String(), "mismatches", run)
			}
			return locked, &MismatchError{Locked: locked, Detected: det, Run: int(run), Relocked: relock}
		}
	}
}

// Locked returns the format the detector expects: the forced format, the
// locked one, or Auto before the first detectable payload.
func (d *Detector) Locked() Format {
	f, _ := unpack(d.state.Load())
	return f
}

// Reset forgets the locked format and the mismatch run, so the next
// detectable payload locks again. It does nothing on a forced Detector.
func (d *Detector) Reset() {
	if d.forced != Auto {
		return
	}
	d.state.Store(pack(Auto, 0))
}
