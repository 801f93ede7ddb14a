package governor

import (
	"math"
	"sync"
	"sync/atomic"
)

// Source is one pressure signal. PressureRatio is sampled on every
// evaluation, so it must be cheap and safe for concurrent use. A
// *memory.Guard is a Source.
type Source interface {
	// Name identifies the source in snapshots, logs and
	// self_regulation.weights.
	Name() string
	// PressureRatio returns the pressure, nominally in [0, 1]. Values are
	// clamped (see ClampRatio): above 1 counts as 1, and NaN or negative
	// as 0, so an unreadable source means "no pressure" and cannot wedge
	// the gate shut.
	PressureRatio() float64
}

// HardSource is the optional method of a Source that says whether it is
// hard: a hard source's ratio enters the level as it is, never weighted
// down, because it answers "will the process run out of memory". The
// memory guard is hard when it is enabled and has a limit.
type HardSource interface {
	Source
	// Hard reports whether the source is hard.
	Hard() bool
}

// IsHard reports whether s is a hard source: it implements HardSource
// and its Hard method returns true.
func IsHard(s Source) bool {
	h, ok := s.(HardSource)
	return ok && h.Hard()
}

// FuncSource returns a Source named name whose ratio is f(). It adapts a
// queue depth, a lag or any other signal into a soft pressure source. A
// nil f reads as 0.
func FuncSource(name string, f func() float64) Source { return funcSource{name: name, f: f} }

type funcSource struct {
	name string
	f    func() float64
}

func (s funcSource) Name() string { return s.name }

func (s funcSource) PressureRatio() float64 {
	if s.f == nil {
		return 0
	}
	return s.f()
}

// ClampRatio maps v into [0, 1]: NaN and values below 0 (including -Inf)
// give 0, values above 1 (including +Inf) give 1.
func ClampRatio(v float64) float64 {
	switch {
	case math.IsNaN(v) || v <= 0:
		return 0
	case v >= 1:
		return 1
	}
	return v
}

// clampWeight maps a soft source's weight into [0, 1]: a non-finite
// weight is 1 (an unreadable weight must not silence a source), a
// negative one 0.
func clampWeight(w float64) float64 {
	switch {
	case math.IsNaN(w) || math.IsInf(w, 1):
		return 1
	case w <= 0:
		return 0
	case w >= 1:
		return 1
	}
	return w
}

// Pressure combines sources into one level in [0, 1]:
//
//	level = max( max over hard sources of ratio,
//	             max over soft sources of ratio × weight )
//
// with every ratio clamped into [0, 1] and every weight into [0, 1]. A hard
// source is taken as it is, so memory pressure can never be masked by
// weights or diluted by calm soft sources; a soft source's weight is the
// most it can add (a queue-depth source of weight 0.5 saturated alone
// gives 0.5, under the default pause threshold). With no source the level
// is 0. The zero Pressure and a nil *Pressure have no sources.
//
// Sources may be added while the level is read: the set is copied on
// write, so Level takes no lock.
type Pressure struct {
	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[[]pressureEntry]
}

type pressureEntry struct {
	src    Source
	hard   bool
	weight float64 // clamped; 1 for hard sources
}

// NewPressure returns a Pressure with the given sources, each hard or soft
// as IsHard says; soft ones weigh 1.
func NewPressure(sources ...Source) *Pressure {
	p := &Pressure{}
	for _, s := range sources {
		if IsHard(s) {
			p.AddHard(s)
		} else {
			p.AddSoft(s, DefaultSoftWeight)
		}
	}
	return p
}

// AddHard adds a hard source. A nil source is ignored.
func (p *Pressure) AddHard(s Source) { p.add(s, true, 1) }

// AddSoft adds a soft source with a weight, clamped into [0, 1] (NaN or
// +Inf count as 1, negative as 0). A nil source is ignored.
func (p *Pressure) AddSoft(s Source, weight float64) { p.add(s, false, clampWeight(weight)) }

func (p *Pressure) add(s Source, hard bool, w float64) {
	if p == nil || s == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var next []pressureEntry
	if cur := p.entries.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, pressureEntry{src: s, hard: hard, weight: w})
	p.entries.Store(&next)
}

func (p *Pressure) list() []pressureEntry {
	if p == nil {
		return nil
	}
	if cur := p.entries.Load(); cur != nil {
		return *cur
	}
	return nil
}

// Level samples every source and returns the combined level in [0, 1].
func (p *Pressure) Level() float64 {
	level, _ := p.levels()
	return level
}

// levels samples every source once and returns the combined level and
// the highest hard ratio.
func (p *Pressure) levels() (level, hard float64) {
	var soft float64
	for _, e := range p.list() {
		v := ClampRatio(e.src.PressureRatio())
		if e.hard {
			hard = max(hard, v)
		} else {
			soft = max(soft, v*e.weight)
		}
	}
	return max(hard, soft), hard
}

// HardLevel samples the hard sources only and returns the highest ratio.
func (p *Pressure) HardLevel() float64 {
	var hard float64
	for _, e := range p.list() {
		if e.hard {
			hard = max(hard, ClampRatio(e.src.PressureRatio()))
		}
	}
	return hard
}

// Len returns the number of sources.
func (p *Pressure) Len() int { return len(p.list()) }

// SourceSample is one source in a PressureSnapshot.
type SourceSample struct {
	// Name is the source's name.
	Name string `json:"name"`
	// Hard reports a hard source.
	Hard bool `json:"hard"`
	// Raw is the ratio the source returned, unclamped (NaN shows as NaN).
	Raw float64 `json:"-"`
	// Ratio is Raw clamped into [0, 1].
	Ratio float64 `json:"ratio"`
	// Weight is the clamped weight applied (1 for hard sources).
	Weight float64 `json:"weight"`
	// Effective is Ratio × Weight: the source's contribution to the level.
	Effective float64 `json:"effective"`
}

// PressureSnapshot is one sampling of every source with the combination.
type PressureSnapshot struct {
	// Level is max(HardMax, SoftMax).
	Level float64 `json:"level"`
	// HardMax is the highest clamped ratio of a hard source.
	HardMax float64 `json:"hard_max"`
	// SoftMax is the highest weighted ratio of a soft source.
	SoftMax float64 `json:"soft_max"`
	// Sources lists the samples in the order the sources were added.
	Sources []SourceSample `json:"sources"`
}

// Snapshot samples every source once and returns the breakdown. Its Level
// equals what Level would have returned for the same samples.
func (p *Pressure) Snapshot() PressureSnapshot {
	entries := p.list()
	s := PressureSnapshot{Sources: make([]SourceSample, 0, len(entries))}
	for _, e := range entries {
		raw := e.src.PressureRatio()
		v := ClampRatio(raw)
		eff := v * e.weight
		if e.hard {
			s.HardMax = max(s.HardMax, v)
		} else {
			s.SoftMax = max(s.SoftMax, eff)
		}
		s.Sources = append(s.Sources, SourceSample{Name: e.src.Name(), Hard: e.hard, Raw: raw, Ratio: v, Weight: e.weight, Effective: eff})
	}
	s.Level = max(s.HardMax, s.SoftMax)
	return s
}
