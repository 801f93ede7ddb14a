package secrets

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-go/keel/secret"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	cacheKey  = "cache-encryption-key-0123456789abcdef"
	cacheKey2 = "another-encryption-key-fedcba9876543210"
)

func diskCfg(dir, key string, sources map[string]SourceConfig) Config {
	return Config{Sources: sources, Cache: CacheConfig{TTL: time.Minute, StaleGrace: time.Hour, Directory: dir, EncryptionKey: secret.New(key)}}
}

func mode(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+diskFileExt))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDiskCacheIsEncryptedPrivateAndAtomic(t *testing.T) {
	src := t.TempDir()
	p := writeFile(t, src, "pw", "disk-plain-Ma1")
	dir := filepath.Join(t.TempDir(), "cache", "secrets")
	h := newHarness(t, diskCfg(dir, cacheKey, map[string]SourceConfig{"pw": {Ref: "file:" + p}}))
	h.secret("disk-plain-Ma1", cacheKey)
	h.get("pw")

	files := cacheFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range leakForms("disk-plain-Ma1") {
		if bytes.Contains(raw, []byte(form)) {
			t.Fatalf("plaintext %q in the cache file: %s", form, raw)
		}
	}
	if bytes.Contains(raw, []byte(p)) {
		t.Fatal("the reference is in the cache file in clear")
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.Alg != algGCM || len(env.Nonce) != 12 || env.Entry != nil {
		t.Fatalf("envelope %+v, %v", env, err)
	}
	if m := mode(t, files[0]); m != 0o600 {
		t.Fatalf("file mode %o", m)
	}
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("dir mode %o", m)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, diskTempPrefix+"*")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
	if st := h.m.Stats(); st.DiskEntries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDiskCacheSurvivesRestartAndOutage(t *testing.T) {
	src := t.TempDir()
	p := writeFile(t, src, "pw", "persisted-Na1")
	dir := t.TempDir()
	cfg := diskCfg(dir, cacheKey, map[string]SourceConfig{"pw": {Ref: "file:" + p}})
	h1 := newHarness(t, cfg)
	h1.secret("persisted-Na1")
	h1.get("pw")
	if err := h1.m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A new process, the provider gone: the disk serves, fresh first.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, cfg)
	h2.secret("persisted-Na1")
	h2.clk.now = h1.clk.Now().Add(30 * time.Second)
	v := h2.get("pw")
	if v.Secret.Expose() != "persisted-Na1" || v.Stale {
		t.Fatalf("fresh from disk: %+v", v)
	}
	if st := h2.m.Stats(); st.Hits != 1 || st.Fetches != 0 {
		t.Fatalf("a fresh disk entry is a hit without a fetch: %+v", st)
	}
	// Past the TTL: stale within the grace.
	h2.clk.Advance(5 * time.Minute)
	if v := h2.get("pw"); !v.Stale {
		t.Fatalf("want stale, got %+v", v)
	}
}

func TestDiskCacheWrongKeyTamperedAndMovedFilesFail(t *testing.T) {
	dir := t.TempDir()
	dc, err := openDiskCache(dir, secret.New(cacheKey))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	a, b := "file:/run/a", "file:/run/b"
	if err := dc.store(a, diskEntry{Data: []byte("value-A-Oa1"), Provider: "file", FetchedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := dc.store(b, diskEntry{Data: []byte("value-B-Ob2"), Provider: "file", FetchedAt: now}); err != nil {
		t.Fatal(err)
	}
	if e, found, err := dc.load(a); err != nil || !found || string(e.Data) != "value-A-Oa1" {
		t.Fatalf("round trip: %q %v %v", e.Data, found, err)
	}

	// Wrong key.
	other, err := openDiskCache(dir, secret.New(cacheKey2))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.load(a); !errors.Is(err, ErrCache) {
		t.Fatalf("wrong key: %v", err)
	}

	// A's file moved into B's slot.
	if err := os.Rename(dc.path(a), dc.path(b)); err != nil {
		t.Fatal(err)
	}
	_, _, err = dc.load(b)
	if !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), "does not decrypt") {
		t.Fatalf("moved file: %v", err)
	}
	if strings.Contains(err.Error(), "value-A") {
		t.Fatal("error quotes the value")
	}

	// Tampered ciphertext, nonce, envelope.
	if err := dc.store(a, diskEntry{Data: []byte("value-A-Oa1"), FetchedAt: now}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(dc.path(a))
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(e *envelope){
		"ciphertext": func(e *envelope) { e.CT[len(e.CT)/2] ^= 1 },
		"tag":        func(e *envelope) { e.CT[len(e.CT)-1] ^= 0x80 },
		"nonce":      func(e *envelope) { e.Nonce[0] ^= 1 },
		"short":      func(e *envelope) { e.Nonce = e.Nonce[:4] },
		"alg":        func(e *envelope) { e.Alg = "ROT13" },
		"version":    func(e *envelope) { e.V = 2 },
		"plaintext":  func(e *envelope) { e.Alg, e.Entry = algNone, &diskEntry{Key: a, Data: []byte("planted")} },
	} {
		cp := env
		cp.CT = bytes.Clone(env.CT)
		cp.Nonce = bytes.Clone(env.Nonce)
		mutate(&cp)
		b, _ := json.Marshal(cp)
		if _, err := dc.open(a, b); !errors.Is(err, ErrCache) {
			t.Errorf("%s tampering accepted: %v", name, err)
		}
	}
	for _, junk := range []string{"", "{", "null", `{"v":1}`, `{"v":1,"alg":"none"}`} {
		if _, err := dc.open(a, []byte(junk)); !errors.Is(err, ErrCache) {
			t.Errorf("junk %q accepted: %v", junk, err)
		}
	}

	// Nonces never repeat: the same entry sealed twice differs.
	s1, _ := dc.seal(a, diskEntry{Data: []byte("x")})
	s2, _ := dc.seal(a, diskEntry{Data: []byte("x")})
	if bytes.Equal(s1, s2) {
		t.Fatal("two seals of the same entry are identical")
	}
	// Without a key, encrypted files are skipped.
	plain, err := openDiskCache(dir, secret.String{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := plain.load(a); !errors.Is(err, ErrCache) || !strings.Contains(err.Error(), "encryption_key") {
		t.Fatalf("encrypted file without a key: %v", err)
	}
}

func TestManagerSkipsUndecryptableFilesAndCountsThem(t *testing.T) {
	src := t.TempDir()
	p := writeFile(t, src, "pw", "wk-Pa1")
	dir := t.TempDir()
	h1 := newHarness(t, diskCfg(dir, cacheKey, map[string]SourceConfig{"pw": {Ref: "file:" + p}}))
	h1.secret("wk-Pa1")
	h1.get("pw")
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	// Another key cannot read it: no stale value, the provider error.
	h2 := newHarness(t, diskCfg(dir, cacheKey2, map[string]SourceConfig{"pw": {Ref: "file:" + p}}))
	h2.secret("wk-Pa1")
	_, err := h2.m.Get(context.Background(), "pw")
	if !errors.Is(h2.checkErr(err), ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if n := testutil.ToFloat64(h2.m.met.diskErrors.With("read")); n != 1 {
		t.Fatalf("disk_cache_errors_total{read} = %v", n)
	}
	if !strings.Contains(h2.logs.String(), "disk cache file skipped") {
		t.Fatal("skip not logged")
	}
}

func TestDiskCachePermissionsTightenedAndKeptAfterClear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(dir, strings.Repeat("a", 64)+diskFileExt)
	if err := os.WriteFile(loose, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "not-ours.txt")
	if err := os.WriteFile(other, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, t.TempDir(), "pw", "perm-Qa1")
	h := newHarness(t, diskCfg(dir, cacheKey, map[string]SourceConfig{"pw": {Ref: "file:" + p}}))
	h.secret("perm-Qa1")
	if mode(t, dir) != 0o700 || mode(t, loose) != 0o600 {
		t.Fatalf("not tightened at start: dir %o file %o", mode(t, dir), mode(t, loose))
	}
	h.get("pw")
	if err := os.Chmod(dir, 0o755); err != nil { // someone loosens it
		t.Fatal(err)
	}
	if err := h.m.Clear(); err != nil {
		t.Fatal(err)
	}
	if n := len(cacheFiles(t, dir)); n != 0 {
		t.Fatalf("%d cache files after Clear", n)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("Clear removed a file that is not the cache's")
	}
	if mode(t, dir) != 0o700 {
		t.Fatalf("dir mode after Clear %o", mode(t, dir))
	}
	if st := h.m.Stats(); st.MemoryEntries != 0 || st.DiskEntries != 0 {
		t.Fatalf("stats after Clear %+v", st)
	}
	h.clk.Advance(time.Second)
	h.get("pw") // a miss again, written again
	files := cacheFiles(t, dir)
	if len(files) != 1 || mode(t, files[0]) != 0o600 {
		t.Fatalf("after Clear and a fetch: %v", files)
	}
	if st := h.m.Stats(); st.Misses != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlaintextDiskCache(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Cache: CacheConfig{Directory: dir, AllowPlaintextDisk: true}}
	for _, env := range []harnessOpt{withAppEnv("production"), withAppEnv("PROD"),
		func(o *Options) { o.Env = ""; o.LookupEnv = envMap(map[string]string{"ENVIRONMENT": "production"}) }} {
		_, err := tryHarness(t, cfg, env)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Key != "secrets.cache.allow_plaintext_disk" || !strings.Contains(err.Error(), "production") {
			t.Fatalf("production must refuse plaintext: %v", err)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatal("refused configuration still wrote to the directory")
	}
	// With a key in production, the disk cache is encrypted and allowed.
	if _, err := tryHarness(t, Config{Cache: CacheConfig{Directory: dir, AllowPlaintextDisk: true, EncryptionKey: secret.New(cacheKey)}}, withAppEnv("production")); err != nil {
		t.Fatalf("encrypted cache in production: %v", err)
	}
	// Outside production the opt-in works, loudly, and files are plain.
	p := writeFile(t, t.TempDir(), "pw", "plain-ok-Ra1")
	cfg.Sources = map[string]SourceConfig{"pw": {Ref: "file:" + p}}
	pdir := t.TempDir()
	cfg.Cache.Directory = pdir
	h := newHarness(t, cfg, withAppEnv("staging"))
	h.get("pw")
	if !strings.Contains(h.logs.String(), "PLAINTEXT disk cache") {
		t.Fatal("plaintext opt-in not warned about")
	}
	raw, err := os.ReadFile(cacheFiles(t, pdir)[0])
	if err != nil || !bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString([]byte("plain-ok-Ra1")))) {
		t.Fatalf("plaintext file: %s %v", raw, err)
	}
	// Without the opt-in and without a key nothing is written anywhere.
	p2 := writeFile(t, t.TempDir(), "pw", "mem-only-Sa1")
	mdir := t.TempDir()
	h2 := newHarness(t, Config{Cache: CacheConfig{Directory: mdir}, Sources: map[string]SourceConfig{"pw": {Ref: "file:" + p2}}})
	h2.secret("mem-only-Sa1")
	h2.get("pw")
	if files, _ := os.ReadDir(mdir); len(files) != 0 || h2.m.disk != nil {
		t.Fatal("memory-only default wrote to disk")
	}
}

func TestPlaintextFileIgnoredWhenEncryptionIsOn(t *testing.T) {
	dir := t.TempDir()
	plain, err := openDiskCache(dir, secret.String{})
	if err != nil {
		t.Fatal(err)
	}
	ref := "env:PLANTED"
	if err := plain.store(ref, diskEntry{Data: []byte("planted-Ua1"), Provider: "env", FetchedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, diskCfg(dir, cacheKey, nil), withEnv(map[string]string{"PLANTED": "real-Ua2"}))
	h.secret("real-Ua2")
	s, err := h.m.Resolve(context.Background(), ref)
	if err != nil || s.Expose() != "real-Ua2" {
		t.Fatalf("a plaintext file must not be trusted when encryption is on: %q %v", s.Expose(), err)
	}
	// and it has been replaced by an encrypted one.
	e, found, err := h.m.disk.load(ref)
	if err != nil || !found || string(e.Data) != "real-Ua2" {
		t.Fatalf("%v %v", found, err)
	}
}
