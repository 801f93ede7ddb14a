// Package metrics is keel's Prometheus registry: typed builders for
// counters, gauges and histograms under the app namespace, a manifest of
// every metric (name, type, help, unit, labels, buckets, group) served as
// JSON, a per-metric cardinality cap that folds new label sets into one
// overflow series, and the Go runtime, process, build and container
// collectors.
//
// Start with Default (or New for a private registry):
//
//	reg := metrics.Default()
//	requests := reg.CounterVec(metrics.Opts{Name: "requests_total", Help: "Requests served."}, "route")
//	requests.With("/items").Inc()
//	http.Handle("/metrics", reg.Handler())
//	http.Handle("/metrics/manifest", reg.ManifestHandler())
//
// Library metrics use the namespace "keel" (Opts.Namespace); an empty
// namespace means the registry's app namespace. Asking twice for the same
// metric returns the same collector, so several instances of a component
// can share a registry.
package metrics
