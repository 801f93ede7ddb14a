package secrets

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// metricSet holds the manager's metrics. Labels are bounded: provider
// names (the built-in four plus registered ones), auth methods, outcomes.
// No metric ever carries a secret, a path or a source name.
type metricSet struct {
	hits          *metrics.CounterVec
	misses        *metrics.CounterVec
	staleHits     *metrics.CounterVec
	fetches       *metrics.CounterVec
	failures      *metrics.CounterVec
	rotations     *metrics.CounterVec
	fetchSeconds  *metrics.HistogramVec
	providerUp    *metrics.GaugeVec
	diskErrors    *metrics.CounterVec
	droppedEvents prometheus.Counter
	refreshes     *metrics.CounterVec
	vaultLogins   *metrics.CounterVec
	vaultRenewals *metrics.CounterVec

	perProvider sync.Map // provider name -> *providerMetrics
}

// providerMetrics are the hot-path counters of one provider, resolved
// once so that a cache hit does not look labels up.
type providerMetrics struct {
	hits, misses, staleHits prometheus.Counter
}

func (m *metricSet) provider(name string) *providerMetrics {
	if pm, ok := m.perProvider.Load(name); ok {
		return pm.(*providerMetrics)
	}
	pm, _ := m.perProvider.LoadOrStore(name, &providerMetrics{
		hits: m.hits.With(name), misses: m.misses.With(name), staleHits: m.staleHits.With(name),
	})
	return pm.(*providerMetrics)
}

func newMetricSet(reg *metrics.Registry, entries func() float64) *metricSet {
	reg = metrics.OrDefault(reg)
	o := func(name, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "secrets", Name: name, Help: help, Unit: unit, Group: "secrets"}
	}
	m := &metricSet{
		hits:          reg.CounterVec(o("cache_hits_total", "Secret reads served fresh from the memory or disk cache.", ""), "provider"),
		misses:        reg.CounterVec(o("cache_misses_total", "Secret reads that found no fresh cached value and went to the provider.", ""), "provider"),
		staleHits:     reg.CounterVec(o("stale_hits_total", "Secret reads served from an expired cached value within the stale grace because the provider failed.", ""), "provider"),
		fetches:       reg.CounterVec(o("fetches_total", "Provider fetches, by outcome.", ""), "provider", "outcome"),
		failures:      reg.CounterVec(o("fetch_failures_total", "Provider fetches that failed, by error kind.", ""), "provider", "kind"),
		rotations:     reg.CounterVec(o("rotations_total", "New secret versions seen by a fetch.", ""), "provider"),
		fetchSeconds:  reg.HistogramVec(o("fetch_duration_seconds", "Duration of provider fetches.", "seconds"), metrics.LatencyBuckets, "provider"),
		providerUp:    reg.GaugeVec(o("provider_up", "1 when the provider's last fetch succeeded, 0 when it failed.", ""), "provider"),
		diskErrors:    reg.CounterVec(o("disk_cache_errors_total", "Disk cache files that could not be read, decrypted or written.", ""), "op"),
		droppedEvents: reg.Counter(o("rotation_events_dropped_total", "Rotation events not delivered because a subscriber's buffer was full.", "")),
		refreshes:     reg.CounterVec(o("refreshes_total", "Background refresh rounds, by outcome.", ""), "outcome"),
		vaultLogins:   reg.CounterVec(o("vault_logins_total", "Vault authentications (login or token lookup), by method and outcome.", ""), "method", "outcome"),
		vaultRenewals: reg.CounterVec(o("vault_token_renewals_total", "Vault token renewals, by outcome.", ""), "outcome"),
	}
	if entries != nil {
		reg.GaugeFunc(o("cache_entries", "Secrets held in the memory cache.", ""), entries)
	}
	return m
}

func outcome(ok bool) string {
	if ok {
		return "ok"
	}
	return "error"
}

func (m *metricSet) fetched(provider string, d time.Duration, err error) {
	m.fetches.With(provider, outcome(err == nil)).Inc()
	m.fetchSeconds.With(provider).Observe(d.Seconds())
	if err != nil {
		m.failures.With(provider, errorKind(err)).Inc()
		m.providerUp.With(provider).Set(0)
		return
	}
	m.providerUp.With(provider).Set(1)
}

func (m *metricSet) vaultLogin(method string, ok bool) {
	m.vaultLogins.With(method, outcome(ok)).Inc()
}

func (m *metricSet) vaultRenewal(ok bool) { m.vaultRenewals.With(outcome(ok)).Inc() }
