package metrics

import (
	"github.com/keel-go/keel/platform"
	"github.com/prometheus/client_golang/prometheus"
)

// containerCollector exports the cgroup memory limit and usage and the CPU
// quota of the process, read at scrape time.
type containerCollector struct {
	detector platform.Detector
	limit    *prometheus.Desc
	usage    *prometheus.Desc
	cpu      *prometheus.Desc
}

var containerDescriptors = []Descriptor{
	{Name: "keel_container_memory_limit_bytes", Type: kindGauge, Unit: "bytes", Group: "runtime", Labels: []string{},
		Help: "Memory limit of the process's cgroup (memory.max capped by memory.high, or v1 limit_in_bytes); 0 when unlimited."},
	{Name: "keel_container_memory_usage_bytes", Type: kindGauge, Unit: "bytes", Group: "runtime", Labels: []string{},
		Help: "Memory usage of the process's cgroup (memory.current or v1 usage_in_bytes)."},
	{Name: "keel_container_cpu_quota_cores", Type: kindGauge, Group: "runtime", Labels: []string{},
		Help: "CPU quota of the process's cgroup in cores; 0 when there is no quota."},
}

func newContainerCollector(d platform.Detector) *containerCollector {
	return &containerCollector{
		detector: d,
		limit:    prometheus.NewDesc(containerDescriptors[0].Name, containerDescriptors[0].Help, nil, nil),
		usage:    prometheus.NewDesc(containerDescriptors[1].Name, containerDescriptors[1].Help, nil, nil),
		cpu:      prometheus.NewDesc(containerDescriptors[2].Name, containerDescriptors[2].Help, nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *containerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.limit
	ch <- c.usage
	ch <- c.cpu
}

// Collect implements prometheus.Collector. Unreadable cgroup files leave
// the value at what could be read (limits 0 = unlimited).
func (c *containerCollector) Collect(ch chan<- prometheus.Metric) {
	mem, _ := c.detector.Memory()
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(mem.Limit()))
	if mem.HasUsage {
		ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, float64(mem.Usage))
	}
	cpu, _ := c.detector.CPUQuota()
	ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.GaugeValue, cpu)
}
