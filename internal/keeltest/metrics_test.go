package keeltest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricValueSumsTheMatchingSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"a", "b"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	reg.MustRegister(c, h)
	c.WithLabelValues("x", "1").Add(2)
	c.WithLabelValues("x", "2").Add(3)
	c.WithLabelValues("y", "1").Add(5)
	h.Observe(1)
	h.Observe(2)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"c_total", map[string]string{"a": "x"}, 5},
		{"c_total", map[string]string{"a": "x", "b": "2"}, 3},
		{"c_total", nil, 10},
		{"c_total", map[string]string{"a": "z"}, 0},
		{"h_seconds", nil, 2},
		{"absent", nil, 0},
	} {
		if got := MetricValue(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("MetricValue(%s, %v) = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
