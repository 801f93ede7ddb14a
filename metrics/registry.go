package metrics

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/keel-go/keel/platform"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultNamespace is the app namespace of a registry whose Config names none.
const DefaultNamespace = "app"

// DefaultCardinalityLimit is the number of label sets a metric may hold
// before new ones fold into the overflow series.
const DefaultCardinalityLimit = 1000

// OverflowLabelValue is the value every label takes in the overflow series
// of a metric that reached its cardinality limit.
const OverflowLabelValue = "__overflow__"

// Config configures a Registry. The zero value is valid.
type Config struct {
	// Namespace prefixes the app's own metrics. Default "app". It must be
	// a valid Prometheus name segment ([a-zA-Z_][a-zA-Z0-9_]*).
	Namespace string
	// CardinalityLimit is the number of distinct label sets each labelled
	// metric accepts; later new sets fold into one overflow series.
	// Default 1000; negative disables the cap.
	CardinalityLimit int
	// NoRuntimeCollectors leaves out the Go runtime, process, container
	// and build info collectors (useful in tests that count series).
	NoRuntimeCollectors bool
	// Platform reads the cgroup files for the container collector; the
	// zero value reads the real machine.
	Platform platform.Detector
}

// Opts names and describes one metric.
type Opts struct {
	// Namespace of the metric; "" means the registry's app namespace.
	// Library code uses "keel".
	Namespace string
	// Subsystem is the optional middle segment of the name.
	Subsystem string
	// Name is the last segment, e.g. "requests_total".
	Name string
	// Help is the help text; required.
	Help string
	// Unit is the base unit for the manifest ("seconds", "bytes", ...).
	Unit string
	// Group groups metrics in the manifest (e.g. "engine", "kafka").
	Group string
}

// Registry is a Prometheus registry that records a manifest and caps the
// cardinality of labelled metrics. It is safe for concurrent use.
type Registry struct {
	ns    string
	limit int
	reg   *prometheus.Registry

	mu      sync.Mutex
	entries map[string]*entry

	overflow *prometheus.CounterVec
}

type entry struct {
	desc      Descriptor
	collector any
}

var validName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// New returns a registry with the runtime collectors registered (unless
// disabled). An invalid namespace is replaced by the default and the
// returned registry still works; use Config.Validate to refuse it.
func New(cfg Config) *Registry {
	if cfg.Validate() != nil || cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.CardinalityLimit == 0 {
		cfg.CardinalityLimit = DefaultCardinalityLimit
	}
	r := &Registry{
		ns:      cfg.Namespace,
		limit:   cfg.CardinalityLimit,
		reg:     prometheus.NewRegistry(),
		entries: make(map[string]*entry),
	}
	r.overflow = r.register(Opts{
		Namespace: "keel", Subsystem: "metrics", Name: "cardinality_overflow_total",
		Help:  "Observations folded into the overflow series because the metric reached its label-set limit.",
		Group: "metrics",
	}, kindCounter, nil, []string{"metric"}, func(o prometheus.Opts) prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts(o), []string{"metric"})
	}).(*prometheus.CounterVec)
	if !cfg.NoRuntimeCollectors {
		r.reg.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
		_ = r.Register(newContainerCollector(cfg.Platform), containerDescriptors...)
		registerBuildInfo(r)
	}
	return r
}

// Validate reports a namespace that is not a valid metric name segment.
func (c Config) Validate() error {
	if c.Namespace != "" && !validName.MatchString(c.Namespace) {
		return fmt.Errorf("metrics.namespace %q is not a valid Prometheus name: use letters, digits and underscores, not starting with a digit", c.Namespace)
	}
	return nil
}

var (
	defaultMu  sync.Mutex
	defaultReg *Registry
)

// Default returns the process-wide registry, created on first use with the
// default Config. Replace it with SetDefault at start-up.
func Default() *Registry {
	defaultMu.Lock()
	defer defaultMu.Unlock()
	if defaultReg == nil {
		defaultReg = New(Config{})
	}
	return defaultReg
}

// SetDefault replaces the process-wide registry. Components created after
// the call that take a nil registry use r.
func SetDefault(r *Registry) {
	defaultMu.Lock()
	defaultReg = r
	defaultMu.Unlock()
}

// OrDefault returns r, or Default when r is nil. Components call it on
// their optional registry field.
func OrDefault(r *Registry) *Registry {
	if r != nil {
		return r
	}
	return Default()
}

// Namespace returns the app namespace.
func (r *Registry) Namespace() string { return r.ns }

// Gatherer returns the underlying Prometheus gatherer.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Registerer returns the underlying Prometheus registerer, for collectors
// built elsewhere (client plugins). Prefer Register, which also records the
// metrics in the manifest.
func (r *Registry) Registerer() prometheus.Registerer { return r.reg }

// Register adds an existing collector and records the given descriptors in
// the manifest. Metrics it exports that are not described still appear in
// the manifest, with their help text, once they have a series.
func (r *Registry) Register(c prometheus.Collector, descs ...Descriptor) error {
	if err := r.reg.Register(c); err != nil {
		return fmt.Errorf("metrics: register collector: %w", err)
	}
	r.mu.Lock()
	for _, d := range descs {
		if _, ok := r.entries[d.Name]; !ok {
			r.entries[d.Name] = &entry{desc: d, collector: c}
		}
	}
	r.mu.Unlock()
	return nil
}

// Handler serves the Prometheus exposition format (for /metrics).
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		Registry:          r.reg,
	})
}

const (
	kindCounter   = "counter"
	kindGauge     = "gauge"
	kindHistogram = "histogram"
)

func (r *Registry) fqName(o Opts) string {
	ns := o.Namespace
	if ns == "" {
		ns = r.ns
	}
	return prometheus.BuildFQName(ns, o.Subsystem, o.Name)
}

// register returns the collector for the metric, creating and registering
// it on first use. A second request with another type or label set is a
// programming error and panics with both definitions.
func (r *Registry) register(o Opts, kind string, buckets []float64, labels []string, build func(prometheus.Opts) prometheus.Collector) any {
	name := r.fqName(o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entries[name]; ok {
		if e.desc.Type != kind || !slices.Equal(e.desc.Labels, labels) {
			panic(fmt.Sprintf("metrics: %s already registered as %s%v, asked again as %s%v", name, e.desc.Type, e.desc.Labels, kind, labels))
		}
		return e.collector
	}
	if strings.TrimSpace(o.Help) == "" {
		o.Help = name
	}
	ns := o.Namespace
	if ns == "" {
		ns = r.ns
	}
	c := build(prometheus.Opts{Namespace: ns, Subsystem: o.Subsystem, Name: o.Name, Help: o.Help})
	r.reg.MustRegister(c)
	group := o.Group
	if group == "" {
		group = o.Subsystem
	}
	r.entries[name] = &entry{
		desc: Descriptor{
			Name: name, Type: kind, Help: o.Help, Unit: o.Unit,
			Labels: slices.Clone(labels), Buckets: slices.Clone(buckets), Group: group,
		},
		collector: c,
	}
	return c
}

// Counter returns a counter without labels.
func (r *Registry) Counter(o Opts) prometheus.Counter {
	return r.register(o, kindCounter, nil, nil, func(po prometheus.Opts) prometheus.Collector {
		return prometheus.NewCounter(prometheus.CounterOpts(po))
	}).(prometheus.Counter)
}

// Gauge returns a gauge without labels.
func (r *Registry) Gauge(o Opts) prometheus.Gauge {
	return r.register(o, kindGauge, nil, nil, func(po prometheus.Opts) prometheus.Collector {
		return prometheus.NewGauge(prometheus.GaugeOpts(po))
	}).(prometheus.Gauge)
}

// GaugeFunc registers a gauge whose value is read from f at scrape time.
// f must be cheap and safe for concurrent use. A second call with the same
// name keeps the first function.
func (r *Registry) GaugeFunc(o Opts, f func() float64) {
	r.register(o, kindGauge, nil, nil, func(po prometheus.Opts) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts(po), f)
	})
}

// Histogram returns a histogram without labels. Nil buckets means
// LatencyBuckets.
func (r *Registry) Histogram(o Opts, buckets []float64) prometheus.Histogram {
	if buckets == nil {
		buckets = LatencyBuckets
	}
	return r.register(o, kindHistogram, buckets, nil, func(po prometheus.Opts) prometheus.Collector {
		return prometheus.NewHistogram(histogramOpts(po, buckets))
	}).(prometheus.Histogram)
}

// CounterVec returns a labelled counter with the cardinality cap.
func (r *Registry) CounterVec(o Opts, labels ...string) *CounterVec {
	name := r.fqName(o)
	v := r.register(o, kindCounter, nil, labels, func(po prometheus.Opts) prometheus.Collector {
		return &CounterVec{vec: prometheus.NewCounterVec(prometheus.CounterOpts(po), labels), capper: r.newCapper(name, len(labels))}
	})
	return v.(*CounterVec)
}

// GaugeVec returns a labelled gauge with the cardinality cap.
func (r *Registry) GaugeVec(o Opts, labels ...string) *GaugeVec {
	name := r.fqName(o)
	v := r.register(o, kindGauge, nil, labels, func(po prometheus.Opts) prometheus.Collector {
		return &GaugeVec{vec: prometheus.NewGaugeVec(prometheus.GaugeOpts(po), labels), capper: r.newCapper(name, len(labels))}
	})
	return v.(*GaugeVec)
}

// HistogramVec returns a labelled histogram with the cardinality cap. Nil
// buckets means LatencyBuckets.
func (r *Registry) HistogramVec(o Opts, buckets []float64, labels ...string) *HistogramVec {
	if buckets == nil {
		buckets = LatencyBuckets
	}
	name := r.fqName(o)
	v := r.register(o, kindHistogram, buckets, labels, func(po prometheus.Opts) prometheus.Collector {
		return &HistogramVec{vec: prometheus.NewHistogramVec(histogramOpts(po, buckets), labels), capper: r.newCapper(name, len(labels))}
	})
	return v.(*HistogramVec)
}

func histogramOpts(po prometheus.Opts, buckets []float64) prometheus.HistogramOpts {
	return prometheus.HistogramOpts{
		Namespace: po.Namespace, Subsystem: po.Subsystem, Name: po.Name, Help: po.Help,
		Buckets: buckets,
	}
}

// LatencyBuckets are histogram buckets in seconds from 100 µs to 30 s.
var LatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// SizeBuckets are histogram buckets in bytes from 64 B to 64 MiB.
var SizeBuckets = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20}

// CountBuckets are histogram buckets for item counts (records per batch).
var CountBuckets = []float64{1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 50000}
