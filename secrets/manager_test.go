package secrets

import (
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/health"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFileAndEnvSources(t *testing.T) {
	dir := t.TempDir()
	tok := writeFile(t, dir, "token", "file-token-Aq1\n")
	raw := writeFile(t, dir, "raw", "raw-line-Bq2\n")
	js := writeFile(t, dir, "creds.json", `{"user":"svc","password":"file-json-pw-Cq3"}`)
	h := newHarness(t, Config{Sources: map[string]SourceConfig{
		"token":  {Ref: "file:" + tok},
		"json":   {Provider: "file", Path: js, Key: "password"},
		"dbpw":   {Ref: "env:DB_PASSWORD"},
		"empty":  {Ref: "env:EMPTY_ONE"},
		"envkey": {Ref: "env:CREDS_JSON#password"},
	}}, withEnv(map[string]string{"DB_PASSWORD": "env-pw-Dq4", "EMPTY_ONE": "", "CREDS_JSON": `{"password":"env-json-Eq5"}`}))
	h.secret("file-token-Aq1", "file-json-pw-Cq3", "env-pw-Dq4", "env-json-Eq5", "raw-line-Bq2")
	for name, want := range map[string]string{
		"token": "file-token-Aq1", "json": "file-json-pw-Cq3", "dbpw": "env-pw-Dq4", "empty": "", "envkey": "env-json-Eq5",
	} {
		if got := h.get(name).Secret.Expose(); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if v := h.get("token"); v.Version == "" || v.Provider != "file" {
		t.Errorf("file version %q provider %q", v.Version, v.Provider)
	}
	// keep_trailing_newline keeps it.
	h2 := newHarness(t, Config{File: FileConfig{KeepTrailingNewline: true}})
	if s, err := h2.m.Resolve(context.Background(), "file:"+raw); err != nil || s.Expose() != "raw-line-Bq2\n" {
		t.Fatalf("kept newline: %q, %v", s.Expose(), err)
	}
	// Missing file and unset variable are ErrNotFound naming them; a file
	// over max_bytes is ErrInvalidData.
	ctx := context.Background()
	_, err := h.m.Resolve(ctx, "file:"+dir+"/missing")
	if !errors.Is(h.checkErr(err), ErrNotFound) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: %v", err)
	}
	_, err = h.m.Resolve(ctx, "env:NOT_SET_ANYWHERE")
	if !errors.Is(h.checkErr(err), ErrNotFound) || !strings.Contains(err.Error(), "NOT_SET_ANYWHERE") {
		t.Fatalf("unset env: %v", err)
	}
	h3 := newHarness(t, Config{File: FileConfig{MaxBytes: 4}})
	_, err = h3.m.Resolve(ctx, "file:"+tok)
	if !errors.Is(err, ErrInvalidData) {
		t.Fatalf("oversize: %v", err)
	}
	_, err = h3.m.Resolve(ctx, "file:"+dir)
	if !errors.Is(err, ErrInvalidData) {
		t.Fatalf("directory: %v", err)
	}
}

func TestCacheServesWithinTTLAndRefetchesAfter(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "pw", "first-Fa1")
	h := newHarness(t, Config{Cache: CacheConfig{TTL: time.Minute}, Sources: map[string]SourceConfig{
		"pw":    {Ref: "file:" + p},
		"short": {Ref: "file:" + p, TTL: 10 * time.Second},
	}})
	h.secret("first-Fa1", "second-Fa2")
	if got := h.get("pw").Secret.Expose(); got != "first-Fa1" {
		t.Fatal(got)
	}
	writeFile(t, dir, "pw", "second-Fa2")
	h.clk.Advance(59 * time.Second)
	if got := h.get("pw").Secret.Expose(); got != "first-Fa1" {
		t.Fatalf("within TTL: %q, want the cached value", got)
	}
	// The same reference under a source with a shorter TTL is refetched.
	if got := h.get("short").Secret.Expose(); got != "second-Fa2" {
		t.Fatalf("per-source TTL: %q", got)
	}
	h.clk.Advance(2 * time.Second)
	writeFile(t, dir, "pw", "third-Fa3")
	h.secret("third-Fa3")
	if got := h.get("pw").Secret.Expose(); got != "first-Fa1" && got != "second-Fa2" {
		t.Fatalf("got %q", got)
	}
	st := h.m.Stats()
	if st.Hits != 2 || st.Misses != 2 || st.Fetches != 2 || st.MemoryEntries != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := testutil.ToFloat64(h.m.met.hits.With("file")); n != 2 {
		t.Fatalf("cache_hits_total = %v", n)
	}
	if n := testutil.ToFloat64(h.m.met.misses.With("file")); n != 2 {
		t.Fatalf("cache_misses_total = %v", n)
	}
	if n := testutil.ToFloat64(h.m.met.fetches.With("file", "ok")); n != 2 {
		t.Fatalf("fetches_total = %v", n)
	}
}

func TestStaleWithinGraceServedAndLoggedThenRefused(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{
		Cache:   CacheConfig{TTL: time.Minute, StaleGrace: 10 * time.Minute},
		Vault:   appRoleCfg(vs),
		Sources: vaultSources(),
	})
	h.secret(kafkaPW, vs.secretID)
	h.get("kafka")
	vs.setDown(true)

	h.clk.Advance(2 * time.Minute) // expired, within ttl + grace
	v := h.get("kafka")
	if !v.Stale || v.Secret.Expose() != kafkaPW {
		t.Fatalf("want the stale value, got %+v", v)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "serving the cached value past its TTL") || !strings.Contains(logs, `"source":"kafka"`) {
		t.Fatalf("stale serve not logged:\n%s", logs)
	}
	if n := testutil.ToFloat64(h.m.met.staleHits.With("vault")); n != 1 {
		t.Fatalf("stale_hits_total = %v", n)
	}
	// A second stale serve within a minute does not log again.
	before := strings.Count(h.logs.String(), "past its TTL")
	h.get("kafka")
	if after := strings.Count(h.logs.String(), "past its TTL"); after != before {
		t.Fatalf("stale warning not rate-limited: %d -> %d", before, after)
	}

	h.clk.Advance(9 * time.Minute) // 11 min old: beyond 1 min + 10 min
	_, err := h.m.Get(context.Background(), "kafka")
	h.checkErr(err)
	var se *Error
	if !errors.As(err, &se) || se.Source != "kafka" || se.Provider != "vault" || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("beyond grace: %v", err)
	}
	if !strings.Contains(err.Error(), "beyond ttl") {
		t.Fatalf("error does not say why the cache did not help: %v", err)
	}
	st := h.m.Stats()
	if st.StaleHits != 2 || st.Failures != 3 {
		t.Fatalf("stats %+v", st)
	}
	// The provider recovers: fresh again.
	vs.setDown(false)
	if v := h.get("kafka"); v.Stale {
		t.Fatal("still stale after recovery")
	}
}

func TestNegativeStaleGraceNeverServesStale(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "pw", "only-Ga1")
	h := newHarness(t, Config{Cache: CacheConfig{TTL: time.Minute, StaleGrace: -1}, Sources: map[string]SourceConfig{"pw": {Ref: "file:" + p}}})
	h.secret("only-Ga1")
	h.get("pw")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(61 * time.Second)
	if _, err := h.m.Get(context.Background(), "pw"); !errors.Is(h.checkErr(err), ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestCacheDisabledFetchesEveryTime(t *testing.T) {
	p := writeFile(t, t.TempDir(), "pw", "nc-Ha1")
	h := newHarness(t, Config{Cache: noCache(), Sources: map[string]SourceConfig{"pw": {Ref: "file:" + p}}})
	h.secret("nc-Ha1")
	for range 3 {
		h.get("pw")
	}
	if st := h.m.Stats(); st.Fetches != 3 || st.Hits != 0 || st.MemoryEntries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRefreshForcesFetchAndRotationFiresOncePerVersion(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Vault: appRoleCfg(vs), Sources: map[string]SourceConfig{
		"kafka":  {Ref: "vault:secret/data/kafka#password"},
		"kafka2": {Ref: "openbao:secret/data/kafka#password"}, // the same secret
	}})
	h.secret(kafkaPW, kafkaPW2, "third-pw-Tt3")
	ch, cancel := h.m.Subscribe(8)
	defer cancel()
	ctx := context.Background()
	h.get("kafka")
	// Nothing changed: a refresh fetches (whatever the age) but raises
	// nothing.
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, _, reads := vs.counts(); reads != 2 {
		t.Fatalf("Refresh must fetch even fresh entries: reads = %d", reads)
	}
	vs.put("secret/kafka", map[string]any{"password": kafkaPW2})
	for range 3 { // three refreshes of version 2: one event
		if err := h.m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	vs.put("secret/kafka", map[string]any{"password": "third-pw-Tt3"})
	if err := h.m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	var events []RotationEvent
	for ev := range ch {
		events = append(events, ev)
	}
	if len(events) != 2 {
		t.Fatalf("events %+v, want 2 (one per new version)", events)
	}
	if events[0].OldVersion != "1" || events[0].NewVersion != "2" || events[1].OldVersion != "2" || events[1].NewVersion != "3" {
		t.Fatalf("events %+v", events)
	}
	if strings.Join(events[0].Sources, ",") != "kafka,kafka2" || events[0].Ref != "vault:secret/data/kafka#password" {
		t.Fatalf("event sources/ref: %+v", events[0])
	}
	if got := h.get("kafka2").Secret.Expose(); got != "third-pw-Tt3" {
		t.Fatalf("after refresh %q", got)
	}
	if n := testutil.ToFloat64(h.m.met.rotations.With("vault")); n != 2 {
		t.Fatalf("rotations_total = %v", n)
	}
	// A refresh that fails keeps the value and names the sources.
	vs.setDown(true)
	err := h.m.Refresh(ctx)
	if !errors.Is(h.checkErr(err), ErrUnavailable) || !strings.Contains(err.Error(), "kafka,kafka2") {
		t.Fatalf("failed refresh: %v", err)
	}
	if got := h.get("kafka").Secret.Expose(); got != "third-pw-Tt3" {
		t.Fatalf("value lost after a failed refresh: %q", got)
	}
}

func TestFileRotationByModificationTime(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "pw", "v1-Ia1")
	h := newHarness(t, Config{Sources: map[string]SourceConfig{"pw": {Ref: "file:" + p}}})
	h.secret("v1-Ia1", "v2-Ia2")
	ch, cancel := h.m.Subscribe(0)
	defer cancel()
	h.get("pw")
	writeFile(t, dir, "pw", "v2-Ia2")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Provider != "file" || ev.OldVersion == ev.NewVersion {
		t.Fatalf("event %+v", ev)
	}
}

func TestSubscriberBufferFullDropsAndCounts(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Vault: appRoleCfg(vs), Sources: vaultSources()})
	h.secret(kafkaPW)
	ch, cancel := h.m.Subscribe(1)
	defer cancel()
	h.get("kafka")
	for i := range 2 {
		vs.put("secret/kafka", map[string]any{"password": "pw-" + string(rune('a'+i))})
		if err := h.m.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(ch) != 1 {
		t.Fatalf("buffered %d", len(ch))
	}
	if n := testutil.ToFloat64(h.m.met.droppedEvents); n != 1 {
		t.Fatalf("rotation_events_dropped_total = %v", n)
	}
	if !strings.Contains(h.logs.String(), "rotation event dropped") {
		t.Fatal("drop not logged")
	}
}

func TestJitteredIsBounded(t *testing.T) {
	interval, jitter := 30*time.Minute, 5*time.Minute
	for _, r := range []float64{0, 1e-9, 0.25, 0.5, 0.75, 0.999999, 1, -3, 7, math.NaN(), math.Inf(1), math.Inf(-1)} {
		d := jittered(interval, jitter, r)
		if d < interval-jitter || d > interval+jitter {
			t.Errorf("r=%v: %s outside [%s, %s]", r, d, interval-jitter, interval+jitter)
		}
	}
	if d := jittered(interval, jitter, 0); d != interval-jitter {
		t.Errorf("r=0: %s", d)
	}
	if d := jittered(interval, jitter, 0.5); d != interval {
		t.Errorf("r=0.5: %s", d)
	}
	if d := jittered(interval, 0, 0.9); d != interval {
		t.Errorf("no jitter: %s", d)
	}
	for i := range 1000 {
		d := jittered(interval, jitter, randFloat())
		if d < interval-jitter || d > interval+jitter {
			t.Fatalf("draw %d: %s", i, d)
		}
	}
}

func TestRunRefreshesWithBoundedJitter(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	draws := []float64{0, 0.999999, 0.5}
	i := 0
	h := newHarness(t, Config{Vault: appRoleCfg(vs), Sources: vaultSources(), RefreshInterval: 10 * time.Minute, RefreshJitter: 2 * time.Minute},
		withRand(func() float64 { r := draws[i%len(draws)]; i++; return r }))
	h.secret(kafkaPW)
	h.get("kafka")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()

	req := h.clk.waitTimers(t, 1)
	if req[0] != 8*time.Minute {
		t.Fatalf("first wait %s, want interval-jitter = 8m", req[0])
	}
	h.clk.Advance(8 * time.Minute)
	req = h.clk.waitTimers(t, 2) // the refresh ran, the next wait is drawn
	if _, _, _, reads := vs.counts(); reads != 2 {
		t.Fatalf("reads = %d, want the refresh's fetch", reads)
	}
	if req[1] < 10*time.Minute || req[1] > 12*time.Minute || req[1] < 11*time.Minute+59*time.Second {
		t.Fatalf("second wait %s, want ~12m", req[1])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.m.met.refreshes.With("ok")); n != 1 {
		t.Fatalf("refreshes_total{ok} = %v", n)
	}
}

func TestRunStopsOnCloseAndWhenDisabled(t *testing.T) {
	h := newHarness(t, Config{})
	done := make(chan error, 1)
	go func() { done <- h.m.Run(context.Background()) }()
	h.clk.waitTimers(t, 1)
	if err := h.m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, Config{RefreshInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- h2.m.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h2.clk.pending() != 0 {
		t.Fatal("disabled refresh scheduled a timer")
	}
}

func TestHealthViewAndCheck(t *testing.T) {
	vs := newVaultServer(t)
	vs.loginTTL = 0
	vs.put("secret/kafka", map[string]any{"password": kafkaPW})
	h := newHarness(t, Config{Cache: noCache(), Vault: appRoleCfg(vs), Sources: vaultSources()})
	h.secret(kafkaPW)
	check := h.m.HealthCheck()
	if st, _ := check(context.Background()); st != health.Healthy {
		t.Fatalf("fresh manager: %v", st)
	}
	h.get("kafka")
	vs.setDown(true)
	for range 2 {
		_, err := h.m.Get(context.Background(), "kafka")
		h.checkErr(err)
	}
	hv := h.m.Health()["vault"]
	if hv.Up || hv.ConsecutiveFailures != 2 || hv.Fetches != 3 || hv.Failures != 2 || hv.LastError == "" || hv.LastSuccess.IsZero() {
		t.Fatalf("vault health %+v", hv)
	}
	if aws := h.m.Health()["aws"]; !aws.Up || !aws.Configured || aws.Fetches != 0 {
		t.Fatalf("unused provider %+v", aws)
	}
	st, msg := check(context.Background())
	if st != health.Degraded || !strings.Contains(msg, "vault (2 consecutive failures)") {
		t.Fatalf("check %v %q", st, msg)
	}
	if n := testutil.ToFloat64(h.m.met.providerUp.With("vault")); n != 0 {
		t.Fatalf("provider_up = %v", n)
	}
	if n := testutil.ToFloat64(h.m.met.failures.With("vault", "unavailable")); n != 2 {
		t.Fatalf("fetch_failures_total = %v", n)
	}
	vs.setDown(false)
	h.get("kafka")
	if st, _ := check(context.Background()); st != health.Healthy {
		t.Fatalf("after recovery %v", st)
	}
	if n := testutil.ToFloat64(h.m.met.providerUp.With("vault")); n != 1 {
		t.Fatalf("provider_up = %v", n)
	}
	// A provider without configuration shows why.
	h2 := newHarness(t, Config{})
	if v := h2.m.Health()["vault"]; v.Configured || !strings.Contains(v.LastError, "VAULT_ADDR") {
		t.Fatalf("unconfigured vault %+v", v)
	}
}

func TestSourceErrors(t *testing.T) {
	// A source routed to Vault without Vault is a start-up error naming
	// the source and what to set.
	_, err := tryHarness(t, Config{Sources: vaultSources()})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "secrets.sources.kafka") || !strings.Contains(err.Error(), "VAULT_ADDR") {
		t.Fatalf("err = %v", err)
	}
	// An address without credentials names the variables.
	_, err = tryHarness(t, Config{Sources: vaultSources()}, withEnv(map[string]string{"VAULT_ADDR": "http://127.0.0.1:8200"}))
	if !errors.Is(err, ErrProviderNotConfigured) || !strings.Contains(err.Error(), "VAULT_TOKEN") {
		t.Fatalf("err = %v", err)
	}
	// An unknown provider.
	_, err = tryHarness(t, Config{Sources: map[string]SourceConfig{"x": {Ref: "gcp:foo"}}})
	if !errors.Is(err, ErrProviderNotConfigured) || !strings.Contains(err.Error(), `"gcp"`) {
		t.Fatalf("err = %v", err)
	}
	h := newHarness(t, Config{})
	_, err = h.m.Get(context.Background(), "nope")
	if !errors.Is(err, ErrUnknownSource) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("err = %v", err)
	}
	_, err = h.m.Resolve(context.Background(), "vault:secret/data/x#y")
	if !errors.Is(err, ErrProviderNotConfigured) {
		t.Fatalf("err = %v", err)
	}
	// A value passed where a reference belongs is not echoed.
	h.secret("not a ref at all")
	_, err = h.m.Resolve(context.Background(), "not a ref at all")
	if !errors.Is(h.checkErr(err), ErrInvalidRef) {
		t.Fatalf("err = %v", err)
	}
}

func TestClosedManager(t *testing.T) {
	p := writeFile(t, t.TempDir(), "pw", "closed-Ja1")
	h := newHarness(t, Config{Sources: map[string]SourceConfig{"pw": {Ref: "file:" + p}}})
	h.secret("closed-Ja1")
	ch, _ := h.m.Subscribe(1)
	h.get("pw")
	if err := h.m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Close(context.Background()); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, ok := <-ch; ok {
		t.Fatal("subscriber channel not closed")
	}
	if _, err := h.m.Get(context.Background(), "pw"); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
	ch2, _ := h.m.Subscribe(1)
	if _, ok := <-ch2; ok {
		t.Fatal("subscription after Close must be closed")
	}
}

func TestExtractJSONKeyNeverQuotesTheSecret(t *testing.T) {
	for _, data := range []string{"hunter2-Ka1", `{"a":`, `["x-Ka2"]`, `null`, `"str-Ka3"`} {
		_, err := ExtractJSONKey([]byte(data), "password")
		if !errors.Is(err, ErrInvalidData) {
			t.Errorf("%q: %v", data, err)
			continue
		}
		for _, frag := range []string{"hunter", "x-Ka2", "str-Ka3", "invalid character"} {
			if strings.Contains(err.Error(), frag) {
				t.Errorf("%q: error quotes the input: %v", data, err)
			}
		}
	}
	if _, err := ExtractJSONKey([]byte(`{"a":"b"}`), "password"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if v, err := ExtractJSONKey([]byte(`{"password":null}`), "password"); err != nil || string(v) != "" {
		t.Fatalf("%q %v", v, err)
	}
}

func TestErrorAndFetchedFormattingRedact(t *testing.T) {
	f := Fetched{Data: []byte("fmt-secret-La1"), Version: "7"}
	for _, s := range []string{fmtSprintf("%v", f), fmtSprintf("%+v", f), fmtSprintf("%#v", f), fmtSprintf("%s", f)} {
		if strings.Contains(s, "fmt-secret-La1") || !strings.Contains(s, "7") {
			t.Fatalf("Fetched printed %q", s)
		}
	}
	v := Value{Secret: secretNew("val-secret-La2"), Version: "3"}
	if s := fmtSprintf("%+v", v); strings.Contains(s, "val-secret-La2") {
		t.Fatalf("Value printed %q", s)
	}
	e := &Error{Source: "db", Provider: "aws", Ref: "aws:prod/db#password", Err: ErrNotFound}
	if e.Error() != `secrets: source "db" (provider aws, aws:prod/db#password): secrets: not found` {
		t.Fatalf("%q", e.Error())
	}
	e = &Error{Source: "x", Err: ErrUnknownSource}
	if e.Error() != `secrets: source "x": secrets: unknown source` {
		t.Fatalf("%q", e.Error())
	}
}
