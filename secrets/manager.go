package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/keel-go/keel/metrics"
	"github.com/keel-go/keel/platform"
	"github.com/keel-go/keel/secret"
)

// staleWarnEvery is the most often one cached secret logs that it is served
// stale.
const staleWarnEvery = time.Minute

// DefaultSubscriberBuffer is the channel capacity Subscribe uses when asked
// for none.
const DefaultSubscriberBuffer = 16

// Options are the dependencies of a Manager. The zero value works.
type Options struct {
	// Logger receives the manager's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the registry of keel_secrets_*; nil means
	// metrics.Default().
	Metrics *metrics.Registry
	// Env is the application environment (config.Config.AppEnv). Empty
	// means APP_ENV, else ENVIRONMENT, else ENV. In production a plaintext
	// disk cache and Vault's skip_verify are refused.
	Env string
	// AppName names the default cache directory
	// (<cache dir>/<app>/secrets); empty means APP_NAME, else "app".
	AppName string
	// Platform locates the default cache directory; the zero value reads
	// the real machine.
	Platform platform.Detector
	// Providers adds custom providers, or replaces built-in ones, by
	// Name. A provider that also has a Close(context.Context) error
	// method is closed by Manager.Close.
	Providers []Provider
	// LookupEnv reads environment variables (the env provider, VAULT_*,
	// AWS_*); nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)

	clock clock          // tests
	rand  func() float64 // tests
}

// Value is a secret with what the manager knows about it.
type Value struct {
	// Secret is the value.
	Secret secret.String
	// Version is the provider's version of it ("" when it has none).
	Version string
	// Provider is the provider it came from.
	Provider string
	// FetchedAt is when the provider returned it.
	FetchedAt time.Time
	// Stale is true when the provider failed and the value was served
	// from the cache past its TTL, within the stale grace.
	Stale bool
}

// RotationEvent says that a provider returned a new version of a secret.
type RotationEvent struct {
	// Ref is the canonical reference of the secret.
	Ref string
	// Sources are the configured source names that point to Ref, sorted.
	Sources []string
	// Provider is the provider's name.
	Provider string
	// OldVersion and NewVersion are the provider's version identifiers.
	OldVersion string
	// NewVersion is the version just fetched.
	NewVersion string
	// RotatedAt is when the new version was fetched.
	RotatedAt time.Time
}

// ProviderHealth is what the manager saw of one provider.
type ProviderHealth struct {
	// Provider is the provider's name.
	Provider string `json:"provider"`
	// Configured is false for a built-in provider without configuration
	// (Vault without an address); LastError then says what to set.
	Configured bool `json:"configured"`
	// Up is false when the last fetch failed.
	Up bool `json:"up"`
	// Fetches and Failures count fetches since start.
	Fetches uint64 `json:"fetches"`
	// Failures counts failed fetches since start.
	Failures uint64 `json:"failures"`
	// ConsecutiveFailures counts the failures since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// LastSuccess and LastFailure are the times of the last outcomes.
	LastSuccess time.Time `json:"last_success,omitzero"`
	// LastFailure is the time of the last failed fetch.
	LastFailure time.Time `json:"last_failure,omitzero"`
	// LastError is the last failure's message (never a secret value).
	LastError string `json:"last_error,omitempty"`
}

// Stats are the manager's counters.
type Stats struct {
	// MemoryEntries is the number of secrets in the memory cache.
	MemoryEntries int `json:"memory_entries"`
	// DiskEntries is the number of files in the disk cache.
	DiskEntries int `json:"disk_entries"`
	// Hits counts reads served fresh from a cache.
	Hits uint64 `json:"hits"`
	// Misses counts reads that went to the provider.
	Misses uint64 `json:"misses"`
	// StaleHits counts reads served stale after a provider failure.
	StaleHits uint64 `json:"stale_hits"`
	// Fetches counts provider fetches, failed or not.
	Fetches uint64 `json:"fetches"`
	// Failures counts failed provider fetches.
	Failures uint64 `json:"failures"`
	// Rotations counts new versions seen.
	Rotations uint64 `json:"rotations"`
}

// Manager reads secrets from named sources and references, through a
// memory cache (and an optional encrypted disk cache), refreshes them in
// the background and tells subscribers about new versions. It is safe for
// concurrent use.
type Manager struct {
	cfg       Config
	log       *slog.Logger
	met       *metricSet
	clock     clock
	rand      func() float64
	providers map[string]Provider
	missing   map[string]error // known provider names without configuration
	sources   map[string]source
	refNames  map[string][]string // canonical ref -> source names
	disk      *diskCache

	mu        sync.RWMutex
	entries   map[string]entry
	versions  map[string]string
	flights   map[string]*flight
	staleWarn map[string]time.Time
	health    map[string]*providerState
	subs      map[*subscriber]struct{}
	closed    bool
	closing   chan struct{}
	joined    chan<- struct{} // tests: told when a caller waits on a fetch in flight

	hits, misses, staleHits, fetches, failures, rotations atomic.Uint64
}

type source struct {
	name string
	ref  Ref
	key  string // ref.String(), the cache key
	ttl  time.Duration
}

func newSource(name string, ref Ref, ttl time.Duration) source {
	return source{name: name, ref: ref, key: ref.String(), ttl: ttl}
}

type entry struct {
	ref       Ref
	data      string
	version   string
	provider  string
	fetchedAt time.Time
}

type flight struct {
	done      chan struct{}
	val       Value
	err       error
	leaderErr error // the leader's own context error, if it ended
}

type providerState struct {
	fetches, failures uint64
	consecutive       int
	lastOK, lastFail  time.Time
	lastErr           string
}

type subscriber struct{ ch chan RotationEvent }

// New builds a manager from the secrets section. It validates cfg, applies
// the environment (VAULT_*, OPENBAO_*, BAO_*, AWS_*), refuses a plaintext
// disk cache or Vault skip_verify in production, creates the disk cache
// directory, and checks that every source routes to a configured provider.
// It does no network I/O: Vault logs in, and the AWS client is built, on
// first use. A ctx already done is returned as the error.
func New(ctx context.Context, cfg Config, opts Options) (*Manager, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	lookup := lookupEnvFunc(opts.LookupEnv)
	if lookup == nil {
		lookup = os.LookupEnv
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	clk := opts.clock
	if clk == nil {
		clk = realClock{}
	}
	rnd := opts.rand
	if rnd == nil {
		rnd = randFloat
	}
	env := opts.Env
	if env == "" {
		env, _ = firstEnv(lookup, "APP_ENV", "ENVIRONMENT", "ENV")
	}
	production := platform.IsProduction(env)

	m := &Manager{
		cfg: cfg, log: log, clock: clk, rand: rnd,
		providers: map[string]Provider{},
		missing:   map[string]error{},
		sources:   map[string]source{},
		refNames:  map[string][]string{},
		entries:   map[string]entry{},
		versions:  map[string]string{},
		flights:   map[string]*flight{},
		staleWarn: map[string]time.Time{},
		health:    map[string]*providerState{},
		subs:      map[*subscriber]struct{}{},
		closing:   make(chan struct{}),
	}
	m.met = newMetricSet(opts.Metrics, nil)

	// The disk cache.
	if cfg.Cache.diskEnabled() {
		if cfg.Cache.EncryptionKey.IsZero() && production {
			return nil, &ConfigError{Key: Section + ".cache.allow_plaintext_disk",
				Msg: fmt.Sprintf("%s.cache.allow_plaintext_disk is refused in production (environment %q): set %s.cache.encryption_key for an encrypted disk cache, or turn the opt-in off", Section, env, Section)}
		}
		dir := cfg.Cache.Directory
		if dir == "" {
			dir = filepath.Join(opts.Platform.Paths(opts.AppName).Cache, "secrets")
		}
		d, err := openDiskCache(dir, cfg.Cache.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("secrets: %s.cache.directory: %w", Section, err)
		}
		m.disk = d
		if d.encrypted() {
			log.Info("secrets: encrypted disk cache", "directory", dir)
		} else {
			log.Warn("secrets: PLAINTEXT disk cache: secrets are written unencrypted to disk; set secrets.cache.encryption_key instead",
				"directory", dir, "env", env)
		}
	}

	// Built-in providers.
	m.providers[ProviderFile] = NewFileProvider(cfg.File)
	m.providers[ProviderEnv] = NewEnvProvider(lookup)
	m.providers[ProviderAWS] = newAWSProvider(resolveAWS(cfg.AWS, lookup))
	rv, ok, err := resolveVault(cfg.Vault, lookup)
	switch {
	case !ok:
		m.missing[ProviderVault] = fmt.Errorf("%w: vault has no address; set %s.vault.address or VAULT_ADDR", ErrProviderNotConfigured, Section)
	case err != nil:
		m.missing[ProviderVault] = fmt.Errorf("%w: %w", ErrProviderNotConfigured, err)
	case rv.SkipVerify && production:
		return nil, &ConfigError{Key: Section + ".vault.skip_verify",
			Msg: fmt.Sprintf("%s.vault.skip_verify (or VAULT_SKIP_VERIFY) is refused in production (environment %q): set %s.vault.ca_cert to the CA file instead", Section, env, Section)}
	default:
		vp, err := newVaultProvider(rv, clk, log, m.met)
		if err != nil {
			return nil, err
		}
		m.providers[ProviderVault] = vp
		if rv.SkipVerify {
			log.Warn("secrets: vault TLS verification is OFF (skip_verify)", "address", rv.Address)
		}
	}
	for _, p := range opts.Providers {
		if p == nil {
			continue
		}
		name := p.Name()
		if !validScheme(name) {
			m.closeProviders(context.Background())
			return nil, &ConfigError{Key: Section, Msg: fmt.Sprintf("custom provider name %q is not a valid reference scheme (lower-case letters, digits, '_' and '-', starting with a letter)", name)}
		}
		if old, ok := m.providers[name]; ok && old != p {
			if c, ok := old.(closer); ok {
				_ = c.Close(context.Background())
			}
		}
		m.providers[name] = p
		delete(m.missing, name)
	}

	// Sources.
	var errs []error
	names := make([]string, 0, len(cfg.Sources))
	for name := range cfg.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		sc := cfg.Sources[name]
		ref, err := sc.ref() // Validate checked it
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := m.provider(ref.Provider); err != nil {
			k := Section + ".sources." + name
			errs = append(errs, &ConfigError{Key: k, Msg: fmt.Sprintf("%s routes to provider %s: %v", k, ref.Provider, err), Err: err})
			continue
		}
		ttl := sc.TTL
		if ttl == 0 {
			ttl = cfg.Cache.TTL
		}
		m.sources[name] = newSource(name, ref, ttl)
		m.refNames[ref.String()] = append(m.refNames[ref.String()], name)
	}
	if len(errs) > 0 {
		m.closeProviders(context.Background())
		return nil, errors.Join(errs...)
	}
	reg := metrics.OrDefault(opts.Metrics)
	reg.GaugeFunc(metrics.Opts{Namespace: "keel", Subsystem: "secrets", Name: "cache_entries", Help: "Secrets held in the memory cache.", Group: "secrets"},
		func() float64 { return float64(m.memoryEntries()) })

	provs := make([]string, 0, len(m.providers))
	for n := range m.providers {
		provs = append(provs, n)
	}
	sort.Strings(provs)
	log.Info("secrets: manager ready", "providers", provs, "sources", len(m.sources),
		"cache", cfg.Cache.IsEnabled(), "disk_cache", m.disk != nil, "ttl", cfg.Cache.TTL.String())
	return m, nil
}

// provider returns the provider registered under name (aliases allowed).
func (m *Manager) provider(name string) (Provider, error) {
	name = canonicalProvider(name)
	if p, ok := m.providers[name]; ok {
		return p, nil
	}
	if err, ok := m.missing[name]; ok {
		return nil, err
	}
	return nil, fmt.Errorf("%w: no provider named %q (built-in: file, env, vault, aws)", ErrProviderNotConfigured, name)
}

// IsReference reports whether s has the form of a reference to a provider
// the manager knows (configured or not): "vault:...", "aws:...",
// "file:...", "env:..." or "<custom provider>:...".
func (m *Manager) IsReference(s string) bool {
	scheme, _, ok := splitScheme(s)
	if !ok {
		return false
	}
	scheme = canonicalProvider(scheme)
	if _, ok := m.providers[scheme]; ok {
		return true
	}
	_, ok = m.missing[scheme]
	return ok
}

// Sources returns the configured source names, sorted.
func (m *Manager) Sources() []string {
	out := make([]string, 0, len(m.sources))
	for n := range m.sources {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the secret of the named source (secrets.sources.<name>).
func (m *Manager) Get(ctx context.Context, name string) (secret.String, error) {
	v, err := m.GetValue(ctx, name)
	return v.Secret, err
}

// GetValue is Get with the version, provider and staleness of the value.
//
// Reading order: a fresh value from the memory cache, else a fresh value
// from the disk cache, else the provider; when the provider fails, a cached
// value still within its TTL plus the stale grace (served with Stale set
// and a warning logged); else an *Error naming the source and the
// provider.
func (m *Manager) GetValue(ctx context.Context, name string) (Value, error) {
	src, ok := m.sources[name]
	if !ok {
		return Value{}, &Error{Source: name, Err: fmt.Errorf("%w: %q is not under %s.sources", ErrUnknownSource, name, Section)}
	}
	return m.lookup(ctx, src)
}

// Resolve returns the secret a reference points to, such as
// "vault:secret/data/kafka#password", through the same cache as Get.
func (m *Manager) Resolve(ctx context.Context, ref string) (secret.String, error) {
	v, err := m.ResolveValue(ctx, ref)
	return v.Secret, err
}

// ResolveValue is Resolve with the version, provider and staleness.
func (m *Manager) ResolveValue(ctx context.Context, ref string) (Value, error) {
	r, err := ParseRef(ref)
	if err != nil {
		e := &Error{Err: err}
		if _, _, ok := splitScheme(ref); ok {
			e.Source = ref // a reference, not a value: safe to name
		}
		return Value{}, e
	}
	return m.lookup(ctx, newSource(r.String(), r, m.cfg.Cache.TTL))
}

func (m *Manager) lookup(ctx context.Context, src source) (Value, error) {
	key := src.key
	p, err := m.provider(src.ref.Provider)
	if err != nil {
		return Value{}, &Error{Source: src.name, Provider: src.ref.Provider, Ref: key, Err: err}
	}
	pname := p.Name()
	if m.isClosed() {
		return Value{}, &Error{Source: src.name, Provider: pname, Ref: key, Err: ErrClosed}
	}
	if !m.cfg.Cache.IsEnabled() {
		m.misses.Add(1)
		m.met.provider(pname).misses.Inc()
		v, err := m.fetch(ctx, src, p)
		if err != nil {
			return Value{}, &Error{Source: src.name, Provider: pname, Ref: key, Err: err}
		}
		return v, nil
	}
	e, cached := m.cached(key, src.ref)
	if cached && m.clock.Now().Sub(e.fetchedAt) < src.ttl {
		m.hits.Add(1)
		m.met.provider(pname).hits.Inc()
		return e.value(false), nil
	}
	m.misses.Add(1)
	m.met.provider(pname).misses.Inc()
	v, ferr := m.fetch(ctx, src, p)
	if ferr == nil {
		return v, nil
	}
	if cached {
		now := m.clock.Now()
		age := now.Sub(e.fetchedAt)
		grace := m.cfg.Cache.StaleGrace
		if grace > 0 && age < src.ttl+grace {
			m.staleHits.Add(1)
			m.met.provider(pname).staleHits.Inc()
			if m.shouldWarnStale(key, now) {
				m.log.Warn("secrets: provider failed, serving the cached value past its TTL",
					"source", src.name, "provider", pname, "ref", key, "age", age.Round(time.Second).String(),
					"ttl", src.ttl.String(), "stale_grace", grace.String(), "error", ferr.Error())
			}
			return e.value(true), nil
		}
		ferr = fmt.Errorf("%w; the cached value is %s old, beyond ttl %s + stale_grace %s", ferr, age.Round(time.Second), src.ttl, max(grace, 0))
	}
	return Value{}, &Error{Source: src.name, Provider: pname, Ref: key, Err: ferr}
}

func (e entry) value(stale bool) Value {
	return Value{Secret: secret.New(e.data), Version: e.version, Provider: e.provider, FetchedAt: e.fetchedAt, Stale: stale}
}

func (m *Manager) shouldWarnStale(key string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	last, ok := m.staleWarn[key]
	if ok && now.Sub(last) < staleWarnEvery {
		return false
	}
	m.staleWarn[key] = now
	return true
}

func (m *Manager) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// cached returns the entry of key from memory, else from the disk cache
// (which it then keeps in memory).
func (m *Manager) cached(key string, ref Ref) (entry, bool) {
	m.mu.RLock()
	e, ok := m.entries[key]
	m.mu.RUnlock()
	if ok || m.disk == nil {
		return e, ok
	}
	de, found, err := m.disk.load(key)
	if err != nil {
		m.met.diskErrors.With("read").Inc()
		m.log.Warn("secrets: disk cache file skipped", "ref", key, "error", err.Error())
		return entry{}, false
	}
	if !found {
		return entry{}, false
	}
	e = entry{ref: ref, data: string(de.Data), version: de.Version, provider: de.Provider, fetchedAt: de.FetchedAt}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.entries[key]; ok { // a fetch won the race
		return cur, true
	}
	m.entries[key] = e
	if _, ok := m.versions[key]; !ok {
		m.versions[key] = e.version
	}
	return e, true
}

// fetch asks the provider, one request per key at a time: concurrent
// callers for the same key share the result.
func (m *Manager) fetch(ctx context.Context, src source, p Provider) (Value, error) {
	key := src.key
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return Value{}, ErrClosed
		}
		if f, ok := m.flights[key]; ok {
			joined := m.joined
			m.mu.Unlock()
			if joined != nil {
				joined <- struct{}{}
			}
			select {
			case <-f.done:
				if f.leaderErr != nil && ctx.Err() == nil {
					continue // the leader gave up, not the provider: try again
				}
				return f.val, f.err
			case <-ctx.Done():
				return Value{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
			}
		}
		f := &flight{done: make(chan struct{})}
		m.flights[key] = f
		m.mu.Unlock()

		f.val, f.err = m.doFetch(ctx, src, p)
		if f.err != nil {
			f.leaderErr = ctx.Err()
		}
		m.mu.Lock()
		delete(m.flights, key)
		m.mu.Unlock()
		close(f.done)
		return f.val, f.err
	}
}

func (m *Manager) doFetch(ctx context.Context, src source, p Provider) (Value, error) {
	key := src.key
	pname := p.Name()
	fctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
	start := time.Now()
	got, err := p.Fetch(fctx, src.ref.Path, src.ref.Key)
	cancel()
	m.met.fetched(pname, time.Since(start), err)
	m.fetches.Add(1)
	now := m.clock.Now()
	m.recordHealth(pname, now, err)
	if err != nil {
		m.failures.Add(1)
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrUnavailable) {
			err = fmt.Errorf("%w: no answer within %s: %w", ErrUnavailable, m.cfg.FetchTimeout, err)
		}
		return Value{}, err
	}
	e := entry{ref: src.ref, data: string(got.Data), version: got.Version, provider: pname, fetchedAt: now}
	m.mu.Lock()
	old, had := m.versions[key]
	m.versions[key] = got.Version
	if m.cfg.Cache.IsEnabled() {
		m.entries[key] = e
		delete(m.staleWarn, key)
	}
	m.mu.Unlock()
	if m.disk != nil {
		if err := m.disk.store(key, diskEntry{Data: got.Data, Version: got.Version, Provider: pname, FetchedAt: now}); err != nil {
			m.met.diskErrors.With("write").Inc()
			m.log.Warn("secrets: disk cache write failed", "ref", key, "error", err.Error())
		}
	}
	if had && old != "" && got.Version != "" && old != got.Version {
		m.rotated(RotationEvent{Ref: key, Sources: m.refNames[key], Provider: pname, OldVersion: old, NewVersion: got.Version, RotatedAt: now})
	}
	return e.value(false), nil
}

func (m *Manager) recordHealth(provider string, now time.Time, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.health[provider]
	if st == nil {
		st = &providerState{}
		m.health[provider] = st
	}
	st.fetches++
	if err == nil {
		st.consecutive = 0
		st.lastOK = now
		return
	}
	st.failures++
	st.consecutive++
	st.lastFail = now
	st.lastErr = err.Error()
}

func (m *Manager) rotated(ev RotationEvent) {
	m.rotations.Add(1)
	m.met.rotations.With(ev.Provider).Inc()
	ev.Sources = append([]string(nil), ev.Sources...)
	m.log.Info("secrets: new secret version", "ref", ev.Ref, "provider", ev.Provider,
		"old_version", ev.OldVersion, "new_version", ev.NewVersion, "sources", ev.Sources)
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		select {
		case s.ch <- ev:
		default:
			m.met.droppedEvents.Inc()
			m.log.Warn("secrets: rotation event dropped, subscriber buffer full", "ref", ev.Ref, "new_version", ev.NewVersion)
		}
	}
}

// Subscribe returns a channel of rotation events, one per new version of a
// secret, and a function that unsubscribes and closes the channel. buffer
// <= 0 means DefaultSubscriberBuffer. Events that do not fit in the buffer
// are dropped, counted and logged: the manager never blocks on a
// subscriber. Close closes every channel.
func (m *Manager) Subscribe(buffer int) (<-chan RotationEvent, func()) {
	if buffer <= 0 {
		buffer = DefaultSubscriberBuffer
	}
	s := &subscriber{ch: make(chan RotationEvent, buffer)}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	m.subs[s] = struct{}{}
	m.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.subs[s]; ok {
				delete(m.subs, s)
				close(s.ch)
			}
		})
	}
}

// Refresh fetches every cached secret again, whatever its age, so that
// values are renewed before they expire and new versions are seen. A
// failure keeps the cached value (served stale within the grace) and is
// logged; the failures are returned joined, each naming its reference.
func (m *Manager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	refs := make([]Ref, 0, len(m.entries))
	for _, e := range m.entries {
		refs = append(refs, e.ref)
	}
	m.mu.Unlock()
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	var errs []error
	for _, r := range refs {
		if ctx.Err() != nil {
			break
		}
		key := r.String()
		p, err := m.provider(r.Provider)
		if err == nil {
			_, err = m.fetch(ctx, newSource(key, r, m.cfg.Cache.TTL), p)
		}
		if err != nil {
			ee := &Error{Source: key, Provider: r.Provider, Ref: key, Err: err}
			if names := m.refNames[key]; len(names) > 0 {
				ee.Source = strings.Join(names, ",")
			}
			errs = append(errs, ee)
			m.log.Warn("secrets: refresh failed, keeping the cached value", "ref", key, "provider", r.Provider, "error", err.Error())
		}
	}
	m.met.refreshes.With(outcome(len(errs) == 0)).Inc()
	return errors.Join(errs...)
}

// Run refreshes every cached secret (Refresh) every refresh_interval, each
// wait drawn from [interval-jitter, interval+jitter], until ctx is done or
// the manager is closed; then it returns nil. With background refresh off
// it just waits.
func (m *Manager) Run(ctx context.Context) error {
	if m.cfg.RefreshInterval < 0 {
		select {
		case <-ctx.Done():
		case <-m.closing:
		}
		return nil
	}
	for {
		d := m.nextRefresh()
		t := m.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-m.closing:
			t.Stop()
			return nil
		case <-t.C():
		}
		_ = m.Refresh(ctx) // failures are logged and counted by Refresh
	}
}

// nextRefresh draws the next wait of Run.
func (m *Manager) nextRefresh() time.Duration {
	return jittered(m.cfg.RefreshInterval, m.cfg.RefreshJitter, m.rand())
}

// Warm fetches every configured source once, so that a start-up fails
// fast on a missing secret; it returns the failures joined.
func (m *Manager) Warm(ctx context.Context) error {
	var errs []error
	for _, n := range m.Sources() {
		if _, err := m.GetValue(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Clear empties the memory cache and deletes the disk cache files, leaving
// the directory in place with mode 0700.
func (m *Manager) Clear() error {
	m.mu.Lock()
	clear(m.entries)
	clear(m.staleWarn)
	m.mu.Unlock()
	if m.disk != nil {
		return m.disk.clear()
	}
	return nil
}

func (m *Manager) memoryEntries() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	s := Stats{
		MemoryEntries: m.memoryEntries(),
		Hits:          m.hits.Load(), Misses: m.misses.Load(), StaleHits: m.staleHits.Load(),
		Fetches: m.fetches.Load(), Failures: m.failures.Load(), Rotations: m.rotations.Load(),
	}
	if m.disk != nil {
		s.DiskEntries = m.disk.count()
	}
	return s
}

// Health returns what the manager saw of each provider, from the outcomes
// of its fetches; it does no I/O. Providers never used are up.
func (m *Manager) Health() map[string]ProviderHealth {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]ProviderHealth, len(m.providers)+len(m.missing))
	for name := range m.providers {
		h := ProviderHealth{Provider: name, Configured: true, Up: true}
		if st := m.health[name]; st != nil {
			h.Fetches, h.Failures, h.ConsecutiveFailures = st.fetches, st.failures, st.consecutive
			h.LastSuccess, h.LastFailure, h.LastError = st.lastOK, st.lastFail, st.lastErr
			h.Up = st.consecutive == 0
		}
		out[name] = h
	}
	for name, err := range m.missing {
		out[name] = ProviderHealth{Provider: name, LastError: err.Error()}
	}
	return out
}

// HealthCheck returns a check for the health registry (name it "secrets"):
// healthy when the last fetch of every used provider succeeded, degraded
// (still serving, from the cache) when one failed. It only reads state.
func (m *Manager) HealthCheck() health.CheckFunc {
	return func(context.Context) (health.Status, string) {
		var down []string
		for name, h := range m.Health() {
			if h.Configured && !h.Up {
				down = append(down, fmt.Sprintf("%s (%d consecutive failures)", name, h.ConsecutiveFailures))
			}
		}
		if len(down) == 0 {
			return health.Healthy, ""
		}
		sort.Strings(down)
		return health.Degraded, "secrets providers failing: " + strings.Join(down, ", ")
	}
}

// CheckProviders actively asks the providers in use whether they answer
// (Vault sys/health, AWS ListSecrets) and returns the errors by provider
// name (nil for a healthy one). A provider is in use when a configured
// source routes to it or a lookup went to it; the others are not probed,
// so a service that never reads AWS never calls it.
func (m *Manager) CheckProviders(ctx context.Context) map[string]error {
	inUse := map[string]bool{}
	for _, s := range m.sources {
		inUse[canonicalProvider(s.ref.Provider)] = true
	}
	m.mu.Lock()
	for name := range m.health {
		inUse[name] = true
	}
	m.mu.Unlock()
	out := make(map[string]error, len(inUse))
	for name, p := range m.providers {
		if !inUse[name] {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, m.cfg.FetchTimeout)
		out[name] = p.Health(cctx)
		cancel()
	}
	return out
}

// Close stops Run, the Vault token renewal and idle connections, closes
// subscriber channels and drops the memory cache. Lookups after Close fail
// with ErrClosed. It is safe to call more than once.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.closing)
	for s := range m.subs {
		close(s.ch)
	}
	clear(m.subs)
	clear(m.entries)
	m.mu.Unlock()
	return m.closeProviders(ctx)
}

func (m *Manager) closeProviders(ctx context.Context) error {
	var errs []error
	for _, p := range m.providers {
		if c, ok := p.(closer); ok {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
