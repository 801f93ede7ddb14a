package metrics

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Descriptor describes one metric in the manifest.
type Descriptor struct {
	Name    string    `json:"name"`
	Type    string    `json:"type"`
	Help    string    `json:"help"`
	Unit    string    `json:"unit,omitempty"`
	Labels  []string  `json:"labels"`
	Buckets []float64 `json:"buckets,omitempty"`
	Group   string    `json:"group,omitempty"`
}

// Manifest is the JSON document served at /metrics/manifest.
type Manifest struct {
	Namespace string       `json:"namespace"`
	Metrics   []Descriptor `json:"metrics"`
}

// Manifest returns every metric the registry knows, sorted by name: those
// built through the registry, and those of registered collectors that have
// a series (runtime, process, plugins).
func (r *Registry) Manifest() Manifest {
	r.mu.Lock()
	out := make([]Descriptor, 0, len(r.entries)+64)
	known := make(map[string]bool, len(r.entries))
	for name, e := range r.entries {
		known[name] = true
		out = append(out, e.desc)
	}
	r.mu.Unlock()
	if fams, err := r.reg.Gather(); err == nil {
		for _, f := range fams {
			if known[f.GetName()] {
				continue
			}
			out = append(out, describeFamily(f))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	for i := range out {
		if out[i].Labels == nil {
			out[i].Labels = []string{}
		}
	}
	return Manifest{Namespace: r.ns, Metrics: out}
}

func describeFamily(f *dto.MetricFamily) Descriptor {
	d := Descriptor{Name: f.GetName(), Help: f.GetHelp(), Type: strings.ToLower(f.GetType().String())}
	if strings.HasPrefix(d.Name, "go_") || strings.HasPrefix(d.Name, "process_") {
		d.Group = "runtime"
	}
	switch {
	case strings.HasSuffix(d.Name, "_seconds") || strings.HasSuffix(d.Name, "_seconds_total"):
		d.Unit = "seconds"
	case strings.HasSuffix(d.Name, "_bytes") || strings.HasSuffix(d.Name, "_bytes_total"):
		d.Unit = "bytes"
	}
	if ms := f.GetMetric(); len(ms) > 0 {
		for _, lp := range ms[0].GetLabel() {
			d.Labels = append(d.Labels, lp.GetName())
		}
		if h := ms[0].GetHistogram(); h != nil {
			for _, b := range h.GetBucket() {
				d.Buckets = append(d.Buckets, b.GetUpperBound())
			}
		}
	}
	return d
}

// ManifestHandler serves the manifest as JSON.
func (r *Registry) ManifestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r.Manifest())
	})
}
