package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keel-go/keel/secret"
)

// Modes of the disk cache. They are applied explicitly (chmod), so the
// umask cannot widen them, and again at every start and after Clear.
const (
	diskDirMode  fs.FileMode = 0o700
	diskFileMode fs.FileMode = 0o600
)

const (
	diskFileExt    = ".secret"
	diskTempPrefix = ".tmp-"
	diskMaxFile    = 8 << 20
	// Domain separation: the derived key and the associated data are
	// specific to this file format and version.
	hkdfSalt  = "keel/secrets-cache/salt/v1"
	hkdfInfo  = "keel/secrets-cache/aes-256-gcm/v1"
	aadPrefix = "keel/secrets-cache/v1\x00"
	algGCM    = "AES-256-GCM"
	algNone   = "none"
)

// diskEntry is one cached secret as stored on disk (inside the envelope).
type diskEntry struct {
	Key       string    `json:"key"`
	Data      []byte    `json:"data"`
	Version   string    `json:"version,omitempty"`
	Provider  string    `json:"provider"`
	FetchedAt time.Time `json:"fetched_at"`
}

// envelope is the file format: either a sealed entry (alg AES-256-GCM,
// nonce, ct) or, with the plaintext opt-in, the entry itself (alg none).
type envelope struct {
	V     int        `json:"v"`
	Alg   string     `json:"alg"`
	Nonce []byte     `json:"nonce,omitempty"`
	CT    []byte     `json:"ct,omitempty"`
	Entry *diskEntry `json:"entry,omitempty"`
}

// diskCache stores one file per cache key in a private directory. Files
// are sealed with AES-256-GCM under a key derived from the configured
// passphrase with HKDF-SHA256; the cache key is the associated data, so a
// file copied or renamed into another key's slot does not open.
type diskCache struct {
	dir  string
	aead cipher.AEAD // nil: plaintext opt-in
}

// deriveKey derives the AES-256 key from the configured passphrase.
func deriveKey(pass secret.String) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(pass.Expose()), []byte(hkdfSalt), hkdfInfo, 32)
}

// openDiskCache creates (or tightens) dir and returns the cache. An empty
// pass means plaintext files; the caller has checked the opt-in.
func openDiskCache(dir string, pass secret.String) (*diskCache, error) {
	c := &diskCache{dir: dir}
	if !pass.IsZero() {
		k, err := deriveKey(pass)
		if err != nil {
			return nil, fmt.Errorf("%w: deriving the cache key: %v", ErrCache, err)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCache, err)
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCache, err)
		}
	}
	if err := c.ensureDir(); err != nil {
		return nil, err
	}
	// Re-apply the file mode to what an earlier run (or a copy) left.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrCache, dir, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), diskFileExt) {
			if err := os.Chmod(filepath.Join(dir, e.Name()), diskFileMode); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrCache, err)
			}
		}
	}
	return c, nil
}

func (c *diskCache) ensureDir() error {
	if err := os.MkdirAll(c.dir, diskDirMode); err != nil {
		return fmt.Errorf("%w: creating %s: %v; set secrets.cache.directory to a writable directory", ErrCache, c.dir, err)
	}
	if err := os.Chmod(c.dir, diskDirMode); err != nil {
		return fmt.Errorf("%w: making %s private (0700): %v", ErrCache, c.dir, err)
	}
	return nil
}

// encrypted reports whether files are sealed.
func (c *diskCache) encrypted() bool { return c.aead != nil }

// path returns the file of a cache key: a hash, so that file names reveal
// nothing about the references and have a fixed length.
func (c *diskCache) path(key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+diskFileExt)
}

func aad(key string) []byte { return []byte(aadPrefix + key) }

// seal encodes e for the file of key.
func (c *diskCache) seal(key string, e diskEntry) ([]byte, error) {
	e.Key = key
	if c.aead == nil {
		return json.Marshal(envelope{V: 1, Alg: algNone, Entry: &e})
	}
	plain, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	ct := c.aead.Seal(nil, nonce, plain, aad(key))
	clear(plain)
	return json.Marshal(envelope{V: 1, Alg: algGCM, Nonce: nonce, CT: ct})
}

// open decodes the content of the file of key. Every failure (tampering,
// wrong passphrase, a file from another slot, a malformed envelope) wraps
// ErrCache; the message never holds file content.
func (c *diskCache) open(key string, raw []byte) (diskEntry, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil || env.V != 1 {
		return diskEntry{}, fmt.Errorf("%w: malformed cache file", ErrCache)
	}
	var e diskEntry
	switch env.Alg {
	case algGCM:
		if c.aead == nil {
			return diskEntry{}, fmt.Errorf("%w: encrypted cache file but no secrets.cache.encryption_key is set", ErrCache)
		}
		if len(env.Nonce) != c.aead.NonceSize() {
			return diskEntry{}, fmt.Errorf("%w: malformed cache file (nonce)", ErrCache)
		}
		plain, err := c.aead.Open(nil, env.Nonce, env.CT, aad(key))
		if err != nil {
			return diskEntry{}, fmt.Errorf("%w: cache file does not decrypt: tampered, written under another encryption key, or moved from another slot", ErrCache)
		}
		err = json.Unmarshal(plain, &e)
		clear(plain)
		if err != nil {
			return diskEntry{}, fmt.Errorf("%w: malformed cache entry", ErrCache)
		}
	case algNone:
		if c.aead != nil {
			return diskEntry{}, fmt.Errorf("%w: plaintext cache file while encryption is on; ignored (it is replaced at the next fetch)", ErrCache)
		}
		if env.Entry == nil {
			return diskEntry{}, fmt.Errorf("%w: malformed cache file (no entry)", ErrCache)
		}
		e = *env.Entry
	default:
		return diskEntry{}, fmt.Errorf("%w: unknown cache file algorithm %q", ErrCache, env.Alg)
	}
	if e.Key != key {
		return diskEntry{}, fmt.Errorf("%w: cache file belongs to another slot", ErrCache)
	}
	return e, nil
}

// load reads the entry of key; found is false when there is no file.
func (c *diskCache) load(key string) (e diskEntry, found bool, err error) {
	f, err := os.Open(c.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return diskEntry{}, false, nil
	}
	if err != nil {
		return diskEntry{}, true, fmt.Errorf("%w: %v", ErrCache, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, diskMaxFile+1))
	if err != nil {
		return diskEntry{}, true, fmt.Errorf("%w: %v", ErrCache, err)
	}
	if len(raw) > diskMaxFile {
		return diskEntry{}, true, fmt.Errorf("%w: cache file larger than %d bytes", ErrCache, diskMaxFile)
	}
	e, err = c.open(key, raw)
	clear(raw)
	return e, true, err
}

// store writes the entry of key atomically: a private temporary file in
// the same directory, synced, then renamed over the old one.
func (c *diskCache) store(key string, e diskEntry) error {
	content, err := c.seal(key, e)
	if err != nil {
		return fmt.Errorf("%w: encoding: %v", ErrCache, err)
	}
	defer clear(content)
	if err := c.ensureDir(); err != nil {
		return err
	}
	f, err := os.CreateTemp(c.dir, diskTempPrefix+"*"+diskFileExt)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCache, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: writing %s: %v", ErrCache, tmp, err)
	}
	if err := f.Chmod(diskFileMode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(content); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %v", ErrCache, err)
	}
	if err := os.Rename(tmp, c.path(key)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %v", ErrCache, err)
	}
	if d, err := os.Open(c.dir); err == nil {
		_ = d.Sync() // make the rename durable; not supported everywhere
		_ = d.Close()
	}
	return nil
}

// files lists the cache files (and leftover temporary files).
func (c *diskCache) files() (cache, temp []string, err error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCache, err)
	}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, diskFileExt) {
			continue
		}
		p := filepath.Join(c.dir, n)
		if strings.HasPrefix(n, diskTempPrefix) {
			temp = append(temp, p)
		} else {
			cache = append(cache, p)
		}
	}
	return cache, temp, nil
}

// count returns the number of cache files.
func (c *diskCache) count() int {
	files, _, _ := c.files()
	return len(files)
}

// clear removes every cache file (only this cache's files: the directory
// may be shared) and makes the directory private again.
func (c *diskCache) clear() error {
	files, temp, err := c.files()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range append(files, temp...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := c.ensureDir(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: clearing %s: %v", ErrCache, c.dir, errors.Join(errs...))
	}
	return nil
}
