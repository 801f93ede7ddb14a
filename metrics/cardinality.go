package metrics

import (
	"hash/maphash"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

var capSeed = maphash.MakeSeed()

// capper admits at most limit distinct label sets for one metric.
type capper struct {
	name     string
	limit    int
	overflow prometheus.Counter
	fold     []string

	mu   sync.RWMutex
	seen map[uint64]struct{}
}

func (r *Registry) newCapper(name string, nLabels int) *capper {
	fold := make([]string, nLabels)
	for i := range fold {
		fold[i] = OverflowLabelValue
	}
	return &capper{
		name:     name,
		limit:    r.limit,
		overflow: r.overflow.WithLabelValues(name),
		fold:     fold,
		seen:     make(map[uint64]struct{}),
	}
}

// admit returns the label values to use: the given ones while the metric
// is under its limit or the set is already known, else the overflow set.
func (c *capper) admit(values []string) []string {
	if c.limit < 0 {
		return values
	}
	var h maphash.Hash
	h.SetSeed(capSeed)
	for _, v := range values {
		h.WriteString(v)
		h.WriteByte(0xff)
	}
	k := h.Sum64()
	c.mu.RLock()
	_, ok := c.seen[k]
	n := len(c.seen)
	c.mu.RUnlock()
	if ok {
		return values
	}
	if n < c.limit {
		c.mu.Lock()
		if len(c.seen) < c.limit {
			c.seen[k] = struct{}{}
			c.mu.Unlock()
			return values
		}
		_, ok = c.seen[k]
		c.mu.Unlock()
		if ok {
			return values
		}
	}
	c.overflow.Inc()
	return c.fold
}

// CounterVec is a labelled counter whose label sets are capped.
type CounterVec struct {
	vec    *prometheus.CounterVec
	capper *capper
}

// With returns the counter for the label values (in the order the labels
// were declared). A wrong number of values is a programming error and
// panics, as in client_golang.
func (v *CounterVec) With(values ...string) prometheus.Counter {
	return v.vec.WithLabelValues(v.capper.admit(values)...)
}

// Describe implements prometheus.Collector.
func (v *CounterVec) Describe(ch chan<- *prometheus.Desc) { v.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (v *CounterVec) Collect(ch chan<- prometheus.Metric) { v.vec.Collect(ch) }

// GaugeVec is a labelled gauge whose label sets are capped.
type GaugeVec struct {
	vec    *prometheus.GaugeVec
	capper *capper
}

// With returns the gauge for the label values.
func (v *GaugeVec) With(values ...string) prometheus.Gauge {
	return v.vec.WithLabelValues(v.capper.admit(values)...)
}

// Describe implements prometheus.Collector.
func (v *GaugeVec) Describe(ch chan<- *prometheus.Desc) { v.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (v *GaugeVec) Collect(ch chan<- prometheus.Metric) { v.vec.Collect(ch) }

// HistogramVec is a labelled histogram whose label sets are capped.
type HistogramVec struct {
	vec    *prometheus.HistogramVec
	capper *capper
}

// With returns the observer for the label values.
func (v *HistogramVec) With(values ...string) prometheus.Observer {
	return v.vec.WithLabelValues(v.capper.admit(values)...)
}

// Describe implements prometheus.Collector.
func (v *HistogramVec) Describe(ch chan<- *prometheus.Desc) { v.vec.Describe(ch) }

// Collect implements prometheus.Collector.
func (v *HistogramVec) Collect(ch chan<- prometheus.Metric) { v.vec.Collect(ch) }
